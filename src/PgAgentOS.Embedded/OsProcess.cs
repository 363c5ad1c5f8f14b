using System.Diagnostics;
using System.Text;

namespace PgAgentOS.Embedded;

/// <summary>Result of a finished child process.</summary>
public sealed record ProcessResult(int ExitCode, string StdOut, string StdErr)
{
    /// <summary>Standard error, else standard output, trimmed: what to show a user when it failed.</summary>
    public string Message => (StdErr.Trim().Length > 0 ? StdErr : StdOut).Trim();
}

/// <summary>
/// Runs PostgreSQL's programs. PostgreSQL refuses to run as root, so when this process is root
/// the programs run as an unprivileged OS user (postgres, or AOS_PG_OS_USER) through runuser.
/// </summary>
public static class OsProcess
{
    /// <summary>True when this process runs as root.</summary>
    public static bool IsRoot { get; } = OperatingSystem.IsLinux() && Environment.UserName == "root";

    /// <summary>The OS user the cluster runs as when this process is root.</summary>
    public static string ServiceUser => Environment.GetEnvironmentVariable("AOS_PG_OS_USER") is { Length: > 0 } u ? u : "postgres";

    /// <summary>Runs a program (as the service user when root) and waits for it.</summary>
    public static async Task<ProcessResult> RunAsync(string fileName, IEnumerable<string> args, bool asServiceUser = true,
        TimeSpan? timeout = null, CancellationToken ct = default)
    {
        var psi = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
        };
        if (asServiceUser && IsRoot)
        {
            psi.FileName = "runuser";
            psi.ArgumentList.Add("-u");
            psi.ArgumentList.Add(ServiceUser);
            psi.ArgumentList.Add("--");
            psi.ArgumentList.Add(fileName);
        }
        else
        {
            psi.FileName = fileName;
        }
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        // A daemon started by pg_ctl inherits our pipes unless told otherwise; pg_ctl -l redirects
        // the server's output, so reading to the end here does not hang.
        psi.Environment["LC_ALL"] = "C.UTF-8";
        psi.Environment.Remove("PGPASSWORD");

        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {fileName}");
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        var outTask = PumpAsync(p.StandardOutput, stdout);
        var errTask = PumpAsync(p.StandardError, stderr);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout ?? TimeSpan.FromMinutes(2));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            try
            {
                p.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
            throw new TimeoutException($"{fileName} did not finish in time");
        }
        await Task.WhenAll(outTask, errTask);
        return new ProcessResult(p.ExitCode, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Gives a file or directory to the service user when running as root (chown -R).</summary>
    public static async Task ChownToServiceUserAsync(string path, CancellationToken ct = default)
    {
        if (!IsRoot)
        {
            return;
        }
        var r = await RunAsync("chown", ["-R", ServiceUser + ":", path], asServiceUser: false, ct: ct);
        if (r.ExitCode != 0)
        {
            throw new InvalidOperationException($"chown {path} to {ServiceUser} failed: {r.Message}");
        }
    }

    private static async Task PumpAsync(StreamReader reader, StringBuilder into)
    {
        var buffer = new char[4096];
        int n;
        while ((n = await reader.ReadAsync(buffer)) > 0)
        {
            into.Append(buffer, 0, n);
        }
    }
}
