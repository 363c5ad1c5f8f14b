using System.Net.Sockets;
using Npgsql;
using PgAgentOS.Client;
using PgAgentOS.Embedded;
using Spectre.Console.Cli;

namespace PgAgentOS.Cli;

/// <summary>A user-facing failure with its exit code and what to do about it.</summary>
public sealed class CliException(string message, int exitCode, string? hint = null) : Exception(message)
{
    /// <summary>The exit code.</summary>
    public int ExitCode { get; } = exitCode;

    /// <summary>What to do about it.</summary>
    public string? Hint { get; } = hint;
}

/// <summary>Turns any failure into one readable line on standard error and an exit code. Never a stack trace.</summary>
public static class CliErrors
{
    /// <summary>Prints the error and returns its exit code.</summary>
    public static int Report(Exception e, CliContext ctx)
    {
        var (code, message, hint) = Classify(e);
        var line = hint is null ? $"aos: {message}" : $"aos: {message} — {hint}";
        ctx.Err.WriteLine(line.ReplaceLineEndings(" "));
        ctx.Err.Flush();
        return code;
    }

    /// <summary>Exit code, message and hint for an exception.</summary>
    public static (int Code, string Message, string? Hint) Classify(Exception e)
    {
        switch (e)
        {
            case CliException c:
                return (c.ExitCode, c.Message, c.Hint);
            case AosException a when a.SqlState is "3F000" or "42P01" or "42883" && a.Message.Contains("aos_", StringComparison.Ordinal):
                return (ExitCodes.Prerequisite, $"the pgAgentOS kernel is not installed in this database ({a.Message})",
                    "Install it with aos install (or aos up for the embedded cluster).");
            case AosException a when a.SqlState is "28P01" or "28000" or "3D000":
                return (ExitCodes.Unavailable, $"cannot connect: {a.Message}", "Check the user, password and database in --db / AOS_DATABASE_URL.");
            case AosException a when a.SqlState is "57P01" or "57P03" or "08006" or "08001":
                return (ExitCodes.Unavailable, $"the database is not available: {a.Message}", "Start it with aos up, or check --db / AOS_DATABASE_URL.");
            case AosException a when a.SqlState == "42501" && a.Hint is null:
                return (ExitCodes.Denied, a.Message, "This login lacks the privilege: use an administrator login (a member of aos_admin), or one granted the role that may do this.");
            case AosException a:
                return (a.ExitCode(), a.Message, a.Hint);
            case KernelInstallException k:
                return (ExitCodes.Prerequisite, k.Message, k.Hint);
            case ClusterException c:
                return (ExitCodes.Conflict, c.Message, c.Hint);
            case FileNotFoundException f when f.Message.Contains("PostgreSQL", StringComparison.Ordinal):
                return (ExitCodes.Prerequisite, f.Message, null);
            case FormatException f:
                return (ExitCodes.Usage, f.Message, null);
            case CommandParseException p:
                return (ExitCodes.Usage, p.Message, "Run the command with --help for its options.");
            case CommandConfigurationException c:
                return (ExitCodes.Failure, $"{c.Message} {c.InnerException?.Message}".Trim(), null);
            case CommandRuntimeException r:
                return (ExitCodes.Usage, r.Message, "Run the command with --help for its options.");
            case PostgresException pg:
                return Classify(AosException.From(pg));
            case NpgsqlException n when n.InnerException is SocketException or TimeoutException or IOException:
                return (ExitCodes.Unavailable, $"cannot reach the database: {n.InnerException!.Message}",
                    "Start it with aos up, or check --db / AOS_DATABASE_URL.");
            case NpgsqlException n:
                return (ExitCodes.Unavailable, $"database error: {n.Message}", "Check --db / AOS_DATABASE_URL.");
            case OperationCanceledException:
                return (ExitCodes.Interrupted, "interrupted", null);
            case TimeoutException t:
                return (ExitCodes.Unavailable, t.Message, null);
            default:
                return (ExitCodes.Failure, $"{e.GetType().Name}: {e.Message}", null);
        }
    }
}
