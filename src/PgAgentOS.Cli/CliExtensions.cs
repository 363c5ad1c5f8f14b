using PgAgentOS.Client;

namespace PgAgentOS.Cli;

/// <summary>Exit codes for kernel errors.</summary>
public static class CliExtensions
{
    /// <summary>The exit code for a kernel error.</summary>
    public static int ExitCode(this AosException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e.SqlState is "AO012" or "AO013" or "AO014" or "23505")
        {
            return ExitCodes.Conflict; // exists already, inactive, immutable
        }
        return e.Kind switch
        {
            AosErrorKind.NotFound => ExitCodes.NotFound,
            AosErrorKind.Conflict or AosErrorKind.LeaseLost => ExitCodes.Conflict,
            AosErrorKind.Denied => ExitCodes.Denied,
            AosErrorKind.InvalidArgument => ExitCodes.Usage,
            _ => ExitCodes.Failure,
        };
    }
}
