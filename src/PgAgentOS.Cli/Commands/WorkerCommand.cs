using System.Collections;
using System.ComponentModel;
using PgAgentOS.Client;
using Npgsql;
using PgAgentOS.Embedded;
using PgAgentOS.Runtime;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PgAgentOS.Cli.Commands;

/// <summary>Options of aos worker.</summary>
public sealed class WorkerSettings : ClusterSettings
{
    /// <summary>--concurrency.</summary>
    [CommandOption("-c|--concurrency <N>")]
    [Description("How many turns to run at once.")]
    [DefaultValue(4)]
    public int Concurrency { get; init; } = 4;

    /// <summary>--id.</summary>
    [CommandOption("--id <NAME>")]
    [Description("Worker name recorded with each claim. Default: host name and process id.")]
    public string? Id { get; init; }

    /// <summary>--tenant.</summary>
    [CommandOption("--tenant <ID>")]
    [Description("Only run turns of this tenant (its id: a worker login does not see tenant names).")]
    public string? Tenant { get; init; }

    /// <summary>--offline-search.</summary>
    [CommandOption("--offline-search")]
    [Description("Without AOS_SEARXNG_URL, answer web_search from the small fixed index aos demo uses (no network) instead of failing.")]
    public bool OfflineSearch { get; init; }

    /// <summary>--until-idle.</summary>
    [CommandOption("--until-idle")]
    [Description("Exit when no turn is ready (for scripts and CI) instead of waiting for more.")]
    public bool UntilIdle { get; init; }

    /// <inheritdoc />
    public override ValidationResult Validate()
    {
        if (Concurrency is < 1 or > 256)
        {
            return ValidationResult.Error("--concurrency must be between 1 and 256");
        }
        return Tenant is not null && !Guid.TryParse(Tenant, out _)
            ? ValidationResult.Error($"--tenant takes the tenant's id (aos tenant list shows it), not '{Tenant}'")
            : ValidationResult.Success();
    }
}

/// <summary>
/// aos worker: runs the pgAgentOS runtime (PgAgentOS.Runtime.WorkerHost) until Ctrl+C: claims
/// queued turns, calls the agents' models, runs approved tools, records every step.
/// </summary>
public sealed class WorkerCommand : AosCommand<WorkerSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(WorkerSettings settings, CancellationToken ct)
    {
        // On the embedded cluster the worker logs in as its own login (a member of aos_worker);
        // with --db it uses the login given.
        var cs = await DbTarget.ResolveAsync(Ctx, settings, settings.DataDir, ClusterLifecycle.WorkerLogin, ct);
        cs.ApplicationName = "aos worker";
        await using var ds = AosClient.CreateDataSource(cs.ConnectionString);
        var options = Workers.Options(Ctx, settings.Id, settings.Concurrency, settings.Tenant is null ? null : Guid.Parse(settings.Tenant));
        if (settings.OfflineSearch && options.Providers.SearxngUrl is null)
        {
            options = options with { ExtraTools = new Dictionary<string, PgAgentOS.Runtime.Tools.ITool> { ["web_search"] = new DemoSearchTool() } };
        }
        await using var host = new WorkerHost(ds, options);
        var printer = new WorkerEventPrinter(Ctx, settings.Json);
        host.Event += printer.Print;
        if (settings.UntilIdle)
        {
            var n = await host.RunUntilIdleAsync(ct);
            if (settings.Json)
            {
                Output.JsonLine(Ctx, new { type = "idle", worker = options.WorkerId, turns = n });
            }
            else
            {
                Ctx.Console.MarkupLine($"[dim]Worker {Render.Esc(options.WorkerId)}: nothing left to do after {n} turn(s).[/]");
            }
            return ExitCodes.Ok;
        }
        if (!settings.Json)
        {
            Ctx.Console.MarkupLine($"[dim]Worker {Render.Esc(options.WorkerId)}: {options.Concurrency} slots on {Render.Esc(cs.Host)}:{cs.Port}/{Render.Esc(cs.Database)} as {Render.Esc(cs.Username)}. Ctrl+C stops.[/]");
        }
        await host.RunAsync(ct);
        if (!settings.Json)
        {
            Ctx.Console.MarkupLine($"[dim]Worker {Render.Esc(options.WorkerId)} stopped.[/]");
        }
        return ExitCodes.Ok;
    }
}

/// <summary>Worker options and output shared by aos worker and aos demo.</summary>
public static class Workers
{
    private static readonly string[] ProviderVariables =
    [
        "OPENAI_API_KEY", "OPENAI_BASE_URL", "AOS_OPENAI_COMPATIBLE_URL", "AOS_OPENAI_COMPATIBLE_KEY", "GOOGLE_API_KEY",
        "GOOGLE_OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OLLAMA_HOST", "AOS_SEARXNG_URL",
    ];

    /// <summary>Options for a worker of this invocation: providers come from the invocation's environment.</summary>
    public static WorkerOptions Options(CliContext ctx, string? id, int concurrency, Guid? tenant)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        var env = new Hashtable();
        foreach (var name in ProviderVariables)
        {
            if (ctx.Env(name) is { } value)
            {
                env[name] = value;
            }
        }
        var options = new WorkerOptions
        {
            Concurrency = concurrency,
            TenantId = tenant,
            Providers = ProviderSettings.FromEnvironment(env),
        };
        return id is null ? options : options with { WorkerId = id };
    }
}

/// <summary>Prints what a worker does, one line per event (answer deltas are left to aos tail).</summary>
public sealed class WorkerEventPrinter(CliContext ctx, bool json)
{
    private readonly Lock _lock = new();

    /// <summary>Prints one event (called from the worker's threads).</summary>
    public void Print(WorkerEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e.Kind == WorkerEventKind.StreamDelta)
        {
            return;
        }
        lock (_lock)
        {
            if (json)
            {
                Output.JsonLine(ctx, new
                {
                    type = "worker_event",
                    kind = e.Kind.ToString(),
                    at = e.At,
                    turn_id = e.TurnId,
                    conversation_id = e.ConversationId,
                    tool_name = e.ToolName,
                    status = e.Status,
                    message = e.Message,
                });
                return;
            }
            var (label, colour) = e.Kind switch
            {
                WorkerEventKind.TurnClaimed => ("claimed", "blue"),
                WorkerEventKind.StepRecorded => ("recorded", "grey"),
                WorkerEventKind.ToolStarted => ("tool", "yellow"),
                WorkerEventKind.ToolFinished => ("tool done", "cyan"),
                WorkerEventKind.WaitingForApproval => ("waiting", "yellow"),
                WorkerEventKind.TurnFinished => ("finished", e.Status == "completed" ? "green" : "red"),
                WorkerEventKind.TurnDropped => ("dropped", "yellow"),
                _ => ("error", "red"),
            };
            var tool = e.ToolName is null ? "" : Render.Esc(e.ToolName) + " ";
            ctx.Console.MarkupLine($"[dim]{Render.Time(e.At)}[/] [{colour}]{label,-9}[/] turn {Ids.Short(e.TurnId)} {tool}{Render.Esc(Render.Clip(e.Message, 140))}");
        }
    }
}
