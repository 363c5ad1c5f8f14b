using PgAgentOS.Cli.Commands;
using PgAgentOS.Client;
using Spectre.Console.Cli;

namespace PgAgentOS.Cli;

/// <summary>The aos command tree.</summary>
public static class AosApp
{
    /// <summary>Runs aos with <paramref name="args"/> in <paramref name="ctx"/>; returns the exit code.</summary>
    public static async Task<int> RunAsync(string[] args, CliContext ctx, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        CliContext.Current = ctx;
        var app = new CommandApp();
        app.Configure(c =>
        {
            c.SetApplicationName("aos");
            c.SetApplicationVersion(KernelScript.Version);
            c.ConfigureConsole(ctx.Console);
            c.UseStrictParsing();
            c.CancellationExitCode(ExitCodes.Interrupted);
            c.SetExceptionHandler((e, _) => CliErrors.Report(e, ctx));

            c.AddCommand<UpCommand>("up")
                .WithDescription("Start the embedded PostgreSQL (creating it on first use) and install the kernel.")
                .WithExample("up")
                .WithExample("up", "--data-dir", "/tmp/aos-cluster", "--json");
            c.AddCommand<DownCommand>("down")
                .WithDescription("Stop the embedded PostgreSQL.")
                .WithExample("down");
            c.AddCommand<StatusCommand>("status")
                .WithDescription("Show the embedded cluster (or the --db server) and the installed kernel.")
                .WithExample("status", "--json");
            c.AddCommand<InstallCommand>("install")
                .WithDescription("Install or upgrade the pgAgentOS kernel in a database.")
                .WithExample("install", "--db", "postgresql://admin:secret@db.example.com:5432/app")
                .WithExample("install", "--method", "manual");
        });
        try
        {
            return await app.RunAsync(args, ct);
        }
        catch (Exception e)
        {
            return CliErrors.Report(e, ctx);
        }
    }
}
