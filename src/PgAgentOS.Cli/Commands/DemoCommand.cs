using System.ComponentModel;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Npgsql;
using PgAgentOS.Cli.Live;
using PgAgentOS.Client;
using PgAgentOS.Embedded;
using PgAgentOS.Runtime;
using PgAgentOS.Runtime.Tools;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PgAgentOS.Cli.Commands;

/// <summary>Options of aos demo.</summary>
public sealed class DemoSettings : ClusterSettings
{
    /// <summary>--yes.</summary>
    [CommandOption("-y|--yes")]
    [Description("Approve the tool call without asking (for scripts and CI).")]
    public bool Yes { get; init; }

    /// <summary>--message.</summary>
    [CommandOption("--message <TEXT>")]
    [Description("What to ask the demo agent.")]
    [DefaultValue(DemoCommand.DefaultMessage)]
    public string Message { get; init; } = DemoCommand.DefaultMessage;

    /// <summary>--offline.</summary>
    [CommandOption("--offline")]
    [Description("Use the scripted stand-in model even when a real provider is configured.")]
    public bool Offline { get; init; }

    /// <summary>--model.</summary>
    [CommandOption("--model <MODEL>")]
    [Description("Use this model (provider/name) instead of picking one from the environment. Default: $AOS_DEMO_MODEL.")]
    public string? Model { get; init; }

    /// <summary>--worker-db.</summary>
    [CommandOption("--worker-db <URL>")]
    [Description("With --db: the login the demo's worker uses (a member of aos_worker). Default: $AOS_WORKER_DATABASE_URL, else --db.")]
    public string? WorkerDb { get; init; }

    /// <inheritdoc />
    public override ValidationResult Validate() =>
        string.IsNullOrWhiteSpace(Message) ? ValidationResult.Error("--message must not be empty") : ValidationResult.Success();
}

/// <summary>
/// aos demo: the README's first command. Sets up what is missing (the embedded PostgreSQL, the
/// kernel, a tenant, a persona, an agent with tools and a policy that holds web_search for
/// approval), starts a worker in this process, sends one message and shows the turn live:
/// thinking, the tool call waiting for approval, the approval, the tool result and the streamed
/// answer. Then prints the SQL that shows the same from psql. Runs offline on the scripted
/// stand-in model; with a provider configured in the environment it uses the real model.
/// Running it again reuses everything and starts a new conversation.
/// </summary>
public sealed class DemoCommand : AosCommand<DemoSettings>
{
    /// <summary>The question the demo asks.</summary>
    public const string DefaultMessage = "How do I do async programming in Python?";

    /// <summary>Names of what the demo creates.</summary>
    public const string TenantName = "demo", PersonaName = "demo-researcher", AgentName = "researcher", RuleName = "demo: web_search needs approval";

    private const string Prompt =
        "You are a careful research assistant. Before you answer, search the web with the web_search tool; then answer concisely "
        + "from what you found and name the links you used.";

    /// <inheritdoc />
    protected override async Task<int> RunAsync(DemoSettings settings, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var json = settings.Json;
        void Say(string markup)
        {
            if (!json)
            {
                Ctx.Console.MarkupLine(markup);
            }
        }
        void Stage(int n, string what, string result) =>
            Say($"[bold]{n}.[/] {Render.Esc(what),-13} {result}");

        Say("[bold]pgAgentOS demo[/] [dim]— every step below is a row in PostgreSQL, written the moment it happens.[/]");
        Say("");

        // 1. PostgreSQL and the kernel.
        NpgsqlConnectionStringBuilder adminCs, workerCs;
        string psqlTarget;
        var url = DbTarget.ExplicitUrl(Ctx, settings);
        if (url is not null)
        {
            adminCs = ConnectionUrl.Parse(url);
            var kernel = await Output.WithStatusAsync(Ctx, json, "installing the kernel", async () =>
            {
                await using var conn = new NpgsqlConnection(adminCs.ConnectionString);
                await conn.OpenAsync(ct);
                return await KernelInstaller.InstallAsync(conn, InstallMethod.Auto, ct);
            });
            var workerUrl = settings.WorkerDb ?? Ctx.Env("AOS_WORKER_DATABASE_URL") ?? url;
            workerCs = ConnectionUrl.Parse(workerUrl);
            psqlTarget = settings.Db is null ? "\"$AOS_DATABASE_URL\"" : $"\"{ConnectionUrl.Redact(url)}\"";
            Stage(1, "PostgreSQL", $"{Render.Esc(ConnectionUrl.Redact(url))} (from {(settings.Db is null ? "AOS_DATABASE_URL" : "--db")})");
            Stage(2, "kernel", $"pgagentos {Render.Esc(kernel.Version)}: {Render.Esc(kernel.Action)} ({Render.Esc(kernel.Method)})");
        }
        else
        {
            var dataDir = DbTarget.DataDir(Ctx, settings.DataDir);
            var up = await UpAsync(dataDir, json, ct);
            var state = up.Cluster.State!;
            adminCs = new NpgsqlConnectionStringBuilder(up.Cluster.ConnectionString(state.Database, ClusterLifecycle.AdminLogin));
            workerCs = new NpgsqlConnectionStringBuilder(up.Cluster.ConnectionString(state.Database, ClusterLifecycle.WorkerLogin));
            psqlTarget = $"\"{up.AdminUrl}\"";
            var verb = up.Action switch { "created" => "created and started", "started" => "started", _ => "already running" };
            Stage(1, "PostgreSQL", $"embedded PostgreSQL {state.PgMajor} in {Render.Esc(up.Cluster.DataDir)}: {verb} (port {state.Port})");
            Stage(2, "kernel", $"pgagentos {Render.Esc(up.Kernel.Version)}: {Render.Esc(up.Kernel.Action)} ({Render.Esc(up.Kernel.Method)})");
        }
        adminCs.ApplicationName = "aos demo";
        workerCs.ApplicationName = "aos demo worker";

        await using var session = Session.Open(adminCs);
        await using var workerSource = AosClient.CreateDataSource(workerCs.ConnectionString);
        if (!await new AosClient(workerSource).LoginHasRoleAsync("aos_worker", ct))
        {
            throw new CliException($"the demo's worker needs a login that is a member of aos_worker, and {workerCs.Username} is not",
                ExitCodes.Denied, "Pass --worker-db postgresql://WORKER:PASSWORD@HOST/DB (or set AOS_WORKER_DATABASE_URL).");
        }

        // 2. Tenant, persona, agent, policy: created when missing.
        var (model, why) = await ChooseModelAsync(session.Client, settings, ct);
        var tenantId = await session.Client.FindTenantAsync(TenantName, ct);
        var tenantCreated = tenantId is null;
        tenantId ??= await session.Client.CreateTenantAsync(TenantName, "pgAgentOS demo", ct: ct);
        var tenant = new TenantRef(tenantId.Value, TenantName);
        var client = session.For(tenant);
        Stage(3, "tenant", $"{TenantName} {(tenantCreated ? "(created)" : "(exists)")} [dim]{tenant.Id}[/]");

        var personaId = await client.FindPersonaAsync(PersonaName, ct);
        var personaCreated = personaId is null;
        personaId ??= await client.CreatePersonaAsync(PersonaName, Prompt, new JsonObject { ["careful"] = true, ["cites_sources"] = true }, ct: ct);
        Stage(4, "persona", $"{PersonaName} {(personaCreated ? "(created)" : "(exists)")}");

        var config = new JsonObject { ["auto_approve_tools"] = true, ["script"] = Script(settings.Message) };
        var agentId = await client.FindAgentAsync(AgentName, ct);
        var agentCreated = agentId is null;
        if (agentId is null)
        {
            agentId = await client.CreateAgentAsync(tenant.Id, AgentName, personaId, ["web_search", "clock"], config, model,
                "The pgAgentOS demo agent: searches, then answers.", ct);
        }
        else
        {
            await client.UpdateAgentAsync(agentId.Value, personaId, ["web_search", "clock"], config, model, isActive: true, ct: ct);
        }
        if (await client.FindPolicyRuleAsync(RuleName, ct) is null)
        {
            await client.CreatePolicyRuleAsync(RuleName, "require_approval", "web_search", agentId, 10, ct);
        }
        Stage(5, "agent", $"{AgentName} {(agentCreated ? "(created)" : "(exists)")}: model [bold]{Render.Esc(model)}[/] [dim]({Render.Esc(why)})[/]");
        Say($"   [dim]tools web_search (a policy rule holds every call for a person's approval) and clock (runs without asking)[/]");

        // 3. A worker, in this process.
        var options = Workers.Options(Ctx, $"aos-demo-{Environment.ProcessId}", 2, tenant.Id);
        var offlineSearch = options.Providers.SearxngUrl is null;
        if (offlineSearch)
        {
            options = options with { ExtraTools = new Dictionary<string, ITool> { ["web_search"] = new DemoSearchTool() } };
        }
        await using var host = new WorkerHost(workerSource, options);
        var errors = new List<WorkerEvent>();
        host.Event += e =>
        {
            if (e.Kind == WorkerEventKind.Error)
            {
                lock (errors)
                {
                    errors.Add(e);
                }
            }
        };
        using var stopWorker = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var worker = Task.Run(() => host.RunAsync(stopWorker.Token), CancellationToken.None);
        Stage(6, "worker", $"{Render.Esc(options.WorkerId)} (2 slots, in this process){(offlineSearch ? "; web_search answers from a small offline index (set AOS_SEARXNG_URL for real searches)" : "")}");

        // 4. One conversation, one message, the turn live.
        var conversation = await client.StartConversationAsync(agentId.Value, title: "aos demo", ct: ct);
        Stage(7, "conversation", $"[dim]{conversation}[/]");
        Say("");
        Say($"[blue]you>[/] {Render.Esc(settings.Message)}");
        var view = new TurnView(Ctx, AgentName);
        var approver = new Approver(Ctx, client, settings.Yes, "aos demo", quiet: json);
        TurnInfo? finished = null;
        Guid turnId = default;
        var unanswered = false;
        var streamed = false;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromMinutes(5));
        try
        {
            await foreach (var e in TurnFollower.FollowAsync(session.DataSource, client,
                               async c => turnId = await client.SendMessageAsync(conversation, settings.Message, ct: c), timeout.Token))
            {
                if (!json)
                {
                    view.Show(e);
                }
                streamed |= e is DeltaEvent;
                if (e is StepEvent { Step: { StepType: "tool_call", Status: "pending" } s })
                {
                    if (!await approver.DecideAsync(s, timeout.Token))
                    {
                        unanswered = true;
                        break;
                    }
                }
                if (e is FinishedEvent f)
                {
                    finished = f.Turn;
                }
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new CliException($"the demo turn did not finish within 5 minutes", ExitCodes.TimedOut,
                $"aos timeline {Ids.Short(conversation)} --tenant {TenantName} shows where it is.");
        }
        finally
        {
            await stopWorker.CancelAsync();
            await worker;
        }

        if (unanswered)
        {
            throw new CliException("nobody answered the approval question (standard input ended)", ExitCodes.Usage,
                "Run aos demo --yes to approve without asking, or approve it now: aos approvals --tenant demo.");
        }
        var turn = finished!;
        var steps = (await client.TimelineAsync(conversation, ct)).Where(r => r.TurnId == turn.TurnId).ToList();

        if (json)
        {
            Output.Json(Ctx, new
            {
                tenant_id = tenant.Id,
                agent_id = agentId,
                model,
                conversation_id = conversation,
                turn_id = turn.TurnId,
                status = turn.Status,
                answer = turn.AssistantMessage,
                error = turn.ErrorMessage,
                streamed,
                steps = steps.Select(r => new { r.StepNumber, r.StepType, r.Status, r.ToolName, r.Approval, r.ApprovedBySource }),
                seconds = Math.Round(clock.Elapsed.TotalSeconds, 1),
            });
        }
        else
        {
            Say("");
            Say($"[dim]The turn {(turn.Status == "completed" ? "completed" : Render.Esc(turn.Status))}: {steps.Count} steps, {Render.Num(turn.TokensUsed)} tokens, {Render.Usd(turn.CostUsd)}; "
                + $"{(streamed ? "the answer streamed in as the worker wrote it" : "the answer was not streamed")}. ({clock.Elapsed.TotalSeconds:0.0} s)[/]");
            lock (errors)
            {
                foreach (var e in errors.Take(5))
                {
                    Say($"[red]worker:[/] {Render.Esc(e.Message)}");
                }
            }
            Say("");
            Say("[bold]See the same in SQL[/] [dim](psql is PostgreSQL's shell):[/]");
            Say("");
            var sql = Sql(psqlTarget, tenant.Id, conversation);
            // Plain text, no frame: it is there to be copied.
            Ctx.Out.WriteLine(sql);
            Say("");
            Say("[bold]Next[/], in three terminals: [green]aos worker --offline-search[/] runs turns; [green]aos chat researcher[/] talks to the agent; "
                + "[green]aos tail[/] shows every step live.");
            Say($"Also: [green]aos timeline {Ids.Short(conversation)}[/], [green]aos approvals[/], [green]aos stats[/], [green]aos verify[/]. "
                + "[dim](Add --tenant demo once there are other tenants.)[/]");
        }
        return turn.Status == "completed" ? ExitCodes.Ok : ExitCodes.TurnFailed;
    }

    private async Task<UpResult> UpAsync(string dataDir, bool json, CancellationToken ct)
    {
        if (json || !Ctx.IsTerminal || !Ctx.Console.Profile.Capabilities.Interactive)
        {
            return await ClusterLifecycle.UpAsync(dataDir, null, Output.Progress(Ctx, json), ct);
        }
        return await Ctx.Console.Status().Spinner(Spinner.Known.Dots).StartAsync("starting PostgreSQL", async status =>
            await ClusterLifecycle.UpAsync(dataDir, null, new StatusProgress(m => status.Status(Markup.Escape(m))), ct));
    }

    /// <summary>The model: --model, $AOS_DEMO_MODEL, a provider configured in the environment, else the scripted stand-in.</summary>
    private async Task<(string Model, string Why)> ChooseModelAsync(AosClient client, DemoSettings settings, CancellationToken ct)
    {
        var models = await client.ListModelsAsync(ct);
        string Check(string model) => models.Any(m => m.Ref == model) ? model
            : throw new CliException($"model {model} is not in the registry", ExitCodes.NotFound,
                "SELECT provider || '/' || model_name FROM aos_meta.llm_model_registry lists the models.");
        if (settings.Model is not null)
        {
            return (Check(settings.Model), "--model");
        }
        if (!settings.Offline)
        {
            if (Ctx.Env("AOS_DEMO_MODEL") is { Length: > 0 } m)
            {
                return (Check(m), "AOS_DEMO_MODEL");
            }
            if (Ctx.Env("OPENAI_API_KEY") is { Length: > 0 })
            {
                return (Check("openai/gpt-4o-mini"), "OPENAI_API_KEY is set");
            }
            if (Ctx.Env("ANTHROPIC_API_KEY") is { Length: > 0 })
            {
                return (Check("anthropic/claude-3-5-haiku-20241022"), "ANTHROPIC_API_KEY is set");
            }
            if (Ctx.Env("OLLAMA_HOST") is { Length: > 0 })
            {
                return (Check("ollama/llama3.1:8b"), "OLLAMA_HOST is set");
            }
        }
        return ("builtin/scripted", settings.Offline
            ? "--offline: the deterministic stand-in, not an AI"
            : "offline: the deterministic stand-in, not an AI; set OPENAI_API_KEY, ANTHROPIC_API_KEY or OLLAMA_HOST for a real model");
    }

    /// <summary>What the scripted stand-in says: think, search, then answer from the result.</summary>
    private static JsonArray Script(string message)
    {
        var python = message.Contains("async", StringComparison.OrdinalIgnoreCase) || message.Contains("python", StringComparison.OrdinalIgnoreCase);
        var summary = python
            ? "In short: write coroutines with async def, await other coroutines inside them, start the program with asyncio.run(main()), "
              + "and run independent work concurrently with asyncio.gather() or a TaskGroup."
            : "Those are the places to start reading.";
        return
        [
            new JsonObject
            {
                ["thinking"] = "The user asks: \"{{user}}\". I should search for current documentation before I answer.",
                ["tool_calls"] = new JsonArray(new JsonObject { ["name"] = "web_search", ["arguments"] = new JsonObject { ["query"] = "{{user}}" } }),
                ["delay_ms"] = 300,
            },
            new JsonObject
            {
                ["thinking"] = "The search returned results; I will answer from them and name the links.",
                ["text"] = "Here is what the search found:\n{{tool:web_search}}\n\n" + summary
                           + "\n(Written by the scripted stand-in model from the search result; it is not an AI.)",
                ["delay_ms"] = 300,
                ["chunk_delay_ms"] = 40, // streamed at a readable pace, the way a model writes
            },
        ];
    }

    private static string Sql(string psqlTarget, Guid tenant, Guid conversation) => $"""
        psql {psqlTarget}

        SELECT aos_auth.set_tenant('{tenant}');

        -- the turn, step by step, with the approval decision
        SELECT turn_number AS turn, step_number AS step, step_type, status, approval, approved_by_source AS by, left(summary, 60) AS summary
          FROM aos_agent.conversation_timeline
         WHERE conversation_id = '{conversation}'
         ORDER BY turn_number, step_number;

        -- tool calls waiting for a person (empty now: you decided)
        SELECT step_id, agent_name, tool_name, arguments, reason FROM aos_agent.tool_call_queue;

        -- the agent's reasoning
        SELECT turn_number, step_number, reasoning
          FROM aos_agent.thinking_trace
         WHERE conversation_id = '{conversation}'
         ORDER BY turn_number, step_number;
        """;

    private sealed class StatusProgress(Action<string> report) : IProgress<string>
    {
        public void Report(string value) => report(value);
    }
}

/// <summary>
/// web_search for the demo's own worker when no search backend is configured: a handful of fixed
/// entries, clearly labelled as such, so that the demo runs without a network.
/// </summary>
public sealed class DemoSearchTool : ITool
{
    private static readonly (string[] Words, string Title, string Url, string Snippet)[] Index =
    [
        (["async", "asyncio", "await", "coroutine", "python", "concurren"], "asyncio — Asynchronous I/O (Python documentation)",
            "https://docs.python.org/3/library/asyncio.html", "asyncio is a library to write concurrent code using the async/await syntax."),
        (["async", "asyncio", "task", "gather", "python"], "Coroutines and Tasks (Python documentation)",
            "https://docs.python.org/3/library/asyncio-task.html", "asyncio.run() runs a coroutine; asyncio.gather() and TaskGroup run several at once."),
        (["postgres", "sql", "database", "agent", "pgagentos"], "PostgreSQL: Documentation",
            "https://www.postgresql.org/docs/current/", "The manual of PostgreSQL: SQL, row-level security, LISTEN/NOTIFY and more."),
    ];

    /// <inheritdoc />
    public Task<ToolResult> RunAsync(ToolCall call, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(call);
        var query = (call.Arguments["query"]?.GetValue<string>() ?? "").ToLowerInvariant();
        var hits = Index.Where(e => e.Words.Any(w => query.Contains(w, StringComparison.Ordinal))).ToList();
        if (hits.Count == 0)
        {
            hits = [Index[^1]];
        }
        var lines = hits.Select((h, i) => $"{i + 1}. {h.Title} — {h.Url}: {h.Snippet}");
        var text = string.Join("\n", lines) + "\n(offline demo index: fixed results, no network was used)";
        return Task.FromResult(ToolResult.Ok(JsonValue.Create(text)));
    }
}
