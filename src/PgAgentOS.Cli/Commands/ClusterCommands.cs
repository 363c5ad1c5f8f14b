using System.ComponentModel;
using Npgsql;
using PgAgentOS.Client;
using PgAgentOS.Embedded;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PgAgentOS.Cli.Commands;

/// <summary>aos up: create and start the embedded cluster, install the kernel.</summary>
public sealed class UpCommand : AosCommand<ClusterSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(ClusterSettings settings, CancellationToken ct)
    {
        if (DbTarget.ExplicitUrl(Ctx, settings) is { } url)
        {
            await using var conn = new NpgsqlConnection(ConnectionUrl.Parse(url).ConnectionString);
            await conn.OpenAsync(ct);
            var kernel = await Output.WithStatusAsync(Ctx, settings.Json, "installing the pgAgentOS kernel",
                () => KernelInstaller.InstallAsync(conn, InstallMethod.Auto, ct));
            if (settings.Json)
            {
                Output.Json(Ctx, new { action = "external", url = ConnectionUrl.Redact(url), kernel });
            }
            else
            {
                Ctx.Out.WriteLine($"Using {ConnectionUrl.Redact(url)} (not the embedded cluster).");
                Ctx.Out.WriteLine($"Kernel {kernel.Version}: {kernel.Action} ({kernel.Method}).");
            }
            return ExitCodes.Ok;
        }

        var dataDir = DbTarget.DataDir(Ctx, settings.DataDir);
        var result = await ClusterLifecycle.UpAsync(dataDir, null, Output.Progress(Ctx, settings.Json), ct);
        var state = result.Cluster.State!;
        if (settings.Json)
        {
            Output.Json(Ctx, new
            {
                action = result.Action,
                data_dir = result.Cluster.DataDir,
                port = state.Port,
                database = state.Database,
                url = result.AdminUrl,
                worker_url = result.WorkerUrl,
                kernel = result.Kernel,
            });
            return ExitCodes.Ok;
        }
        var verb = result.Action switch
        {
            "created" => "Created and started",
            "started" => "Started",
            _ => "Already running:",
        };
        Ctx.Out.WriteLine($"{verb} the embedded PostgreSQL {state.PgMajor} in {result.Cluster.DataDir} (port {state.Port}).");
        Ctx.Out.WriteLine($"Kernel {result.Kernel.Version}: {result.Kernel.Action} ({result.Kernel.Method}).");
        Ctx.Out.WriteLine();
        Ctx.Out.WriteLine($"  export AOS_DATABASE_URL='{result.AdminUrl}'");
        Ctx.Out.WriteLine($"  psql \"$AOS_DATABASE_URL\"");
        Ctx.Out.WriteLine();
        Ctx.Out.WriteLine($"Worker login: {result.WorkerUrl}");
        return ExitCodes.Ok;
    }
}

/// <summary>aos down: stop the embedded cluster.</summary>
public sealed class DownCommand : AosCommand<ClusterSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(ClusterSettings settings, CancellationToken ct)
    {
        if (settings.Db is not null)
        {
            throw new CliException("aos down stops only the embedded cluster, and --db names another server", ExitCodes.Usage,
                "Stop that server with its own tools, or drop --db.");
        }
        var cluster = new EmbeddedCluster(DbTarget.DataDir(Ctx, settings.DataDir));
        if (!cluster.Exists)
        {
            throw new CliException($"there is no embedded cluster in {cluster.DataDir}", ExitCodes.NotFound,
                "Nothing to stop; aos up creates one.");
        }
        var wasRunning = await cluster.IsRunningAsync(ct);
        if (wasRunning)
        {
            await cluster.StopAsync(ct: ct);
            // Pooled connections to the stopped server are dead; a later command in this process starts afresh.
            NpgsqlConnection.ClearAllPools();
        }
        if (settings.Json)
        {
            Output.Json(Ctx, new { action = wasRunning ? "stopped" : "not_running", data_dir = cluster.DataDir });
        }
        else
        {
            Ctx.Out.WriteLine(wasRunning ? $"Stopped the embedded PostgreSQL in {cluster.DataDir}."
                                         : $"The embedded PostgreSQL in {cluster.DataDir} was not running.");
        }
        return ExitCodes.Ok;
    }
}

/// <summary>aos status: the embedded cluster (or --db server) and the kernel installed there.</summary>
public sealed class StatusCommand : AosCommand<ClusterSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(ClusterSettings settings, CancellationToken ct)
    {
        string? url = DbTarget.ExplicitUrl(Ctx, settings);
        string? dataDir = null;
        bool running;
        int? port = null;
        NpgsqlConnectionStringBuilder? cs = null;
        if (url is null)
        {
            var cluster = new EmbeddedCluster(DbTarget.DataDir(Ctx, settings.DataDir));
            dataDir = cluster.DataDir;
            if (!cluster.Exists || !cluster.TryLoadState())
            {
                throw new CliException($"there is no embedded cluster in {cluster.DataDir}", ExitCodes.NotFound,
                    "Create one with aos up, or pass --db URL.");
            }
            running = await cluster.IsRunningAsync(ct);
            port = cluster.State!.Port;
            url = cluster.Url(ClusterLifecycle.AdminLogin);
            if (running)
            {
                cs = new NpgsqlConnectionStringBuilder(cluster.ConnectionString(cluster.State.Database, ClusterLifecycle.AdminLogin));
            }
        }
        else
        {
            cs = ConnectionUrl.Parse(url);
            running = true;
        }

        string? serverVersion = null, kernelVersion = null;
        if (cs is not null)
        {
            await using var conn = new NpgsqlConnection(cs.ConnectionString);
            await conn.OpenAsync(ct);
            serverVersion = conn.PostgreSqlVersion.ToString();
            kernelVersion = await KernelInstaller.InstalledVersionAsync(conn, ct);
        }

        if (settings.Json)
        {
            Output.Json(Ctx, new
            {
                embedded = dataDir is not null,
                data_dir = dataDir,
                running,
                port,
                url = dataDir is null ? ConnectionUrl.Redact(url) : url,
                server_version = serverVersion,
                kernel_version = kernelVersion,
                kernel_current = kernelVersion == KernelScript.Version,
            });
            return ExitCodes.Ok;
        }
        var table = new Table().HideHeaders().AddColumn("").AddColumn("");
        if (dataDir is not null)
        {
            table.AddRow("cluster", Markup.Escape(dataDir));
            table.AddRow("state", running ? "[green]running[/]" : "[yellow]stopped[/]");
            table.AddRow("port", port?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-");
        }
        table.AddRow("url", Markup.Escape(dataDir is null ? ConnectionUrl.Redact(url) : url));
        table.AddRow("server", serverVersion is null ? "-" : "PostgreSQL " + serverVersion);
        table.AddRow("kernel", kernelVersion is null ? (running ? "[yellow]not installed[/] (aos install)" : "-")
            : kernelVersion == KernelScript.Version ? kernelVersion : $"{kernelVersion} [yellow](aos {KernelScript.Version} can upgrade it: aos install)[/]");
        Ctx.Console.Write(table);
        return ExitCodes.Ok;
    }
}

/// <summary>Options of aos install.</summary>
public sealed class InstallSettings : ClusterSettings
{
    /// <summary>--method.</summary>
    [CommandOption("--method <METHOD>")]
    [Description("auto (extension when the server has its files, else manual), extension or manual.")]
    [DefaultValue("auto")]
    public string Method { get; init; } = "auto";

    /// <inheritdoc />
    public override ValidationResult Validate() =>
        Method is "auto" or "extension" or "manual"
            ? ValidationResult.Success()
            : ValidationResult.Error($"--method must be auto, extension or manual, not '{Method}'");
}

/// <summary>aos install: install or upgrade the kernel.</summary>
public sealed class InstallCommand : AosCommand<InstallSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(InstallSettings settings, CancellationToken ct)
    {
        var cs = await DbTarget.ResolveAsync(Ctx, settings, settings.DataDir, ct: ct);
        if (DbTarget.ExplicitUrl(Ctx, settings) is null)
        {
            // On the embedded cluster, install as its superuser (the kernel creates roles).
            var cluster = new EmbeddedCluster(DbTarget.DataDir(Ctx, settings.DataDir));
            cluster.TryLoadState();
            cs = new NpgsqlConnectionStringBuilder(cluster.ConnectionString(cluster.State!.Database));
        }
        await using var conn = new NpgsqlConnection(cs.ConnectionString);
        await conn.OpenAsync(ct);
        var method = settings.Method switch
        {
            "extension" => InstallMethod.Extension,
            "manual" => InstallMethod.Manual,
            _ => InstallMethod.Auto,
        };
        var result = await Output.WithStatusAsync(Ctx, settings.Json, "installing the pgAgentOS kernel",
            () => KernelInstaller.InstallAsync(conn, method, ct));
        if (settings.Json)
        {
            Output.Json(Ctx, result);
        }
        else
        {
            Ctx.Out.WriteLine(result.Action switch
            {
                "installed" => $"Installed the pgAgentOS kernel {result.Version} ({result.Method}).",
                "upgraded" => $"Upgraded the pgAgentOS kernel from {result.PreviousVersion} to {result.Version} ({result.Method}).",
                _ => $"The pgAgentOS kernel {result.Version} is already installed ({result.Method}); nothing to do.",
            });
        }
        return ExitCodes.Ok;
    }
}
