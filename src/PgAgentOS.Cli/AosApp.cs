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
            if (ctx.ValidateExamples)
            {
                c.ValidateExamples();
            }
            Configure(c);
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

    private static void Configure(IConfigurator c)
    {
        // Getting started
        c.AddCommand<DemoCommand>("demo")
            .WithDescription("Run the guided demo: PostgreSQL, kernel, tenant, agent, worker, and one turn with an approval, live.")
            .WithExample("demo")
            .WithExample("demo", "--yes");
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
        c.AddCommand<WorkerCommand>("worker")
            .WithDescription("Run a worker: claim queued turns, call the models, run approved tools, record every step.")
            .WithExample("worker")
            .WithExample("worker", "--offline-search")
            .WithExample("worker", "--concurrency", "8", "--db", "postgresql://aos_runner:secret@db:5432/aos");

        // Tenants, personas, agents
        c.AddBranch("tenant", b =>
        {
            b.SetDescription("Create, list and show tenants (platform administrators).");
            b.AddCommand<TenantCreateCommand>("create")
                .WithDescription("Create a tenant.")
                .WithExample("tenant", "create", "acme", "--display-name", "ACME Corp");
            b.AddCommand<TenantListCommand>("list")
                .WithDescription("List the tenants.")
                .WithExample("tenant", "list", "--json");
            b.AddCommand<TenantShowCommand>("show")
                .WithDescription("Show a tenant and what is happening in it.")
                .WithExample("tenant", "show", "acme");
        });
        c.AddBranch("persona", b =>
        {
            b.SetDescription("Create, list and show personas (system prompt, traits, model).");
            b.AddCommand<PersonaCreateCommand>("create")
                .WithDescription("Create a persona.")
                .WithExample("persona", "create", "helper", "--prompt", "You are a helpful assistant. Answer concisely.", "--model", "openai/gpt-4o-mini");
            b.AddCommand<PersonaListCommand>("list")
                .WithDescription("List the personas of a tenant.")
                .WithExample("persona", "list", "--tenant", "acme");
            b.AddCommand<PersonaShowCommand>("show")
                .WithDescription("Show a persona.")
                .WithExample("persona", "show", "helper");
        });
        c.AddBranch("agent", b =>
        {
            b.SetDescription("Create, list and show agents (persona, model, tools, configuration).");
            b.AddCommand<AgentCreateCommand>("create")
                .WithDescription("Create an agent.")
                .WithExample("agent", "create", "researcher", "--persona", "helper", "--tools", "web_search,clock")
                .WithExample("agent", "create", "bot", "--model", "builtin/scripted", "--script", "script.json", "--auto-approve");
            b.AddCommand<AgentListCommand>("list")
                .WithDescription("List the agents of a tenant.")
                .WithExample("agent", "list");
            b.AddCommand<AgentShowCommand>("show")
                .WithDescription("Show an agent and its latest conversations.")
                .WithExample("agent", "show", "researcher");
        });
        c.AddBranch("conversation", b =>
        {
            b.SetDescription("Start and list conversations.");
            b.AddCommand<ConversationStartCommand>("start")
                .WithDescription("Start a conversation with an agent; prints its id.")
                .WithExample("conversation", "start", "researcher", "--title", "asyncio");
            b.AddCommand<ConversationListCommand>("list")
                .WithDescription("List the latest conversations.")
                .WithExample("conversation", "list", "--agent", "researcher");
        });

        // Talking to agents
        c.AddCommand<ChatCommand>("chat")
            .WithDescription("Chat with an agent in the terminal; answers stream in as the worker writes them.")
            .WithExample("chat", "researcher")
            .WithExample("chat", "researcher", "--conversation", "3f2a9c1e", "--yes");
        c.AddCommand<SendCommand>("send")
            .WithDescription("Send a message to a conversation and wait for the answer (or --no-wait).")
            .WithExample("send", "3f2a9c1e", "How do I do async programming in Python?")
            .WithExample("send", "3f2a9c1e", "Summarise that", "--no-wait", "--json");

        // Watching
        c.AddCommand<TailCommand>("tail")
            .WithDescription("Follow the steps of every tenant, one tenant, one agent or one conversation live, with answers streaming.")
            .WithExample("tail")
            .WithExample("tail", "--agent", "researcher", "--tenant", "acme")
            .WithExample("tail", "--conversation", "3f2a9c1e", "--json");
        c.AddCommand<TimelineCommand>("timeline")
            .WithDescription("Show every step of a conversation with its approvals, as a table.")
            .WithExample("timeline", "3f2a9c1e");
        c.AddCommand<StatsCommand>("stats")
            .WithDescription("Show the analytics of a tenant or one agent, as tables and bar charts.")
            .WithExample("stats")
            .WithExample("stats", "researcher", "--days", "30");
        c.AddCommand<VerifyCommand>("verify")
            .WithDescription("Verify the hash chains of the event log; export or check a checkpoint.")
            .WithExample("verify")
            .WithExample("verify", "--tenant", "acme", "--export", "acme-checkpoint.json")
            .WithExample("verify", "--checkpoint", "acme-checkpoint.json");

        // People in the loop
        c.AddCommand<ApprovalsCommand>("approvals")
            .WithDescription("Show the tool calls waiting for a decision.")
            .WithExample("approvals")
            .WithExample("approvals", "--tenant", "acme", "--json");
        c.AddCommand<ApproveCommand>("approve")
            .WithDescription("Approve a waiting tool call; a worker then runs it.")
            .WithExample("approve", "7c0e12ab", "--note", "looks safe");
        c.AddCommand<RejectCommand>("reject")
            .WithDescription("Reject a waiting tool call; the agent is told and carries on without it.")
            .WithExample("reject", "7c0e12ab", "--note", "no web access for this customer");
        c.AddCommand<InjectCommand>("inject")
            .WithDescription("Add a system (or user) message to a conversation.")
            .WithExample("inject", "3f2a9c1e", "Answer in French from now on.")
            .WithExample("inject", "3f2a9c1e", "Also cover trio", "--as", "user");
        c.AddCommand<OverrideCommand>("override")
            .WithDescription("Replace the answer of a completed turn (the original stays in the timeline).")
            .WithExample("override", "9d41b2c0", "The correct figure is 42.", "--reason", "wrong number");
        c.AddCommand<PauseCommand>("pause")
            .WithDescription("Pause a conversation: no worker takes its turns until it is resumed.")
            .WithExample("pause", "3f2a9c1e", "--reason", "checking the tool output");
        c.AddCommand<ResumeCommand>("resume")
            .WithDescription("Resume a paused conversation.")
            .WithExample("resume", "3f2a9c1e");
        c.AddCommand<RateCommand>("rate")
            .WithDescription("Rate a turn from 1 to 5.")
            .WithExample("rate", "9d41b2c0", "5")
            .WithExample("rate", "9d41b2c0", "3", "--aspects", "{\"accuracy\": 2}");
        c.AddCommand<FlagCommand>("flag")
            .WithDescription("Flag a problem with a step, turn or conversation.")
            .WithExample("flag", "7c0e12ab", "searched for private data", "--severity", "high");
    }
}
