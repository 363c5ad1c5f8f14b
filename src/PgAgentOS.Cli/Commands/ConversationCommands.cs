using System.ComponentModel;
using System.Globalization;
using PgAgentOS.Cli.Live;
using PgAgentOS.Client;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PgAgentOS.Cli.Commands;

/// <summary>Options of aos conversation start.</summary>
public sealed class ConversationStartSettings : TenantSettings
{
    /// <summary>AGENT.</summary>
    [CommandArgument(0, "<AGENT>")]
    [Description("Agent name or id.")]
    public string Agent { get; init; } = "";

    /// <summary>--title.</summary>
    [CommandOption("--title <TEXT>")]
    [Description("A title for the conversation.")]
    public string? Title { get; init; }
}

/// <summary>aos conversation start.</summary>
public sealed class ConversationStartCommand : TenantCommand<ConversationStartSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, ConversationStartSettings settings, CancellationToken ct)
    {
        var agent = await Ids.ResolveAsync(client, AosIdKind.Agent, settings.Agent, ct, tenant);
        var id = await client.StartConversationAsync(agent, title: settings.Title, ct: ct);
        if (settings.Json)
        {
            Output.Json(Ctx, new { conversation_id = id, agent_id = agent, tenant = tenant.Name });
        }
        else
        {
            Ctx.Out.WriteLine(id);
        }
        return ExitCodes.Ok;
    }
}

/// <summary>Options of aos conversation list.</summary>
public sealed class ConversationListSettings : TenantSettings
{
    /// <summary>--agent.</summary>
    [CommandOption("--agent <AGENT>")]
    [Description("Only this agent's conversations (name or id).")]
    public string? Agent { get; init; }

    /// <summary>--limit.</summary>
    [CommandOption("--limit <N>")]
    [Description("How many, newest first.")]
    [DefaultValue(20)]
    public int Limit { get; init; } = 20;

    /// <inheritdoc />
    public override ValidationResult Validate() =>
        Limit is < 1 or > 1000 ? ValidationResult.Error("--limit must be between 1 and 1000") : ValidationResult.Success();
}

/// <summary>aos conversation list.</summary>
public sealed class ConversationListCommand : TenantCommand<ConversationListSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, ConversationListSettings settings, CancellationToken ct)
    {
        Guid? agent = settings.Agent is null ? null : await Ids.ResolveAsync(client, AosIdKind.Agent, settings.Agent, ct, tenant);
        var list = await client.ListConversationsAsync(agent, settings.Limit, ct);
        if (settings.Json)
        {
            Output.Json(Ctx, list);
            return ExitCodes.Ok;
        }
        if (list.Count == 0)
        {
            Ctx.Out.WriteLine("No conversations yet. Start one with aos chat AGENT or aos conversation start AGENT.");
            return ExitCodes.Ok;
        }
        var table = new Table().AddColumns("conversation", "agent", "title", "status", "state", "turns", "tokens", "last activity");
        foreach (var c in list)
        {
            table.AddRow(Ids.Short(c.ConversationId), Render.Esc(c.AgentName), Render.Esc(Render.Clip(c.Title ?? "-", 40)), Render.Status(c.Status),
                Render.Esc(c.RunState), c.TurnCount.ToString(CultureInfo.InvariantCulture), Render.Num(c.TotalTokens), Render.When(c.LastActivityAt));
        }
        Ctx.Console.Write(table);
        return ExitCodes.Ok;
    }
}

/// <summary>Options of aos send.</summary>
public sealed class SendSettings : TenantSettings
{
    /// <summary>CONVERSATION.</summary>
    [CommandArgument(0, "<CONVERSATION>")]
    [Description("Conversation id (or its first 8 characters).")]
    public string Conversation { get; init; } = "";

    /// <summary>MESSAGE.</summary>
    [CommandArgument(1, "<MESSAGE>")]
    [Description("The user's message.")]
    public string Message { get; init; } = "";

    /// <summary>--no-wait.</summary>
    [CommandOption("--no-wait")]
    [Description("Print the new turn's id and return; do not wait for the answer.")]
    public bool NoWait { get; init; }

    /// <summary>--timeout.</summary>
    [CommandOption("--timeout <SECONDS>")]
    [Description("How long to wait for the answer.")]
    [DefaultValue(300)]
    public int Timeout { get; init; } = 300;

    /// <inheritdoc />
    public override ValidationResult Validate() =>
        Timeout is < 1 or > 86400 ? ValidationResult.Error("--timeout must be between 1 and 86400 seconds") : ValidationResult.Success();
}

/// <summary>aos send: sends a message and (unless --no-wait) shows the turn until it is answered.</summary>
public sealed class SendCommand : TenantCommand<SendSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, SendSettings settings, CancellationToken ct)
    {
        var conversationId = await Ids.ResolveAsync(client, AosIdKind.Conversation, settings.Conversation, ct, tenant);
        var conversation = await client.GetConversationAsync(conversationId, ct)
            ?? throw new CliException($"conversation {settings.Conversation} does not exist in tenant {tenant.Name}", ExitCodes.NotFound,
                "aos conversation list shows the conversations (pass --tenant for another tenant).");
        if (settings.NoWait)
        {
            var turn = await client.SendMessageAsync(conversationId, settings.Message, ct: ct);
            if (settings.Json)
            {
                Output.Json(Ctx, new { turn_id = turn, conversation_id = conversationId, status = "queued" });
            }
            else
            {
                Ctx.Out.WriteLine(turn);
            }
            return ExitCodes.Ok;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(settings.Timeout));
        var view = new TurnView(Ctx, conversation.AgentName);
        Guid turnId = default;
        TurnInfo? finished = null;
        var told = new HashSet<Guid>();
        try
        {
            await foreach (var e in TurnFollower.FollowAsync(session.DataSource, client,
                               async c => turnId = await client.SendMessageAsync(conversationId, settings.Message, ct: c), timeout.Token))
            {
                if (!settings.Json)
                {
                    view.Show(e);
                }
                if (e is StepEvent { Step: { StepType: "tool_call", Status: "pending" or "needs_review" } s } && told.Add(s.StepId))
                {
                    Ctx.Err.WriteLine($"aos: waiting for a decision on {s.ToolName} (step {s.StepId}): aos approve {Ids.Short(s.StepId)}, or aos reject {Ids.Short(s.StepId)}");
                    Ctx.Err.Flush();
                }
                if (e is FinishedEvent f)
                {
                    finished = f.Turn;
                }
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            var now = turnId == default ? null : await client.GetTurnAsync(turnId, ct);
            throw new CliException($"turn {turnId} is still {now?.Status ?? "queued"} after {settings.Timeout} s", ExitCodes.TimedOut,
                $"It goes on without you: aos timeline {Ids.Short(conversationId)} shows where it is.");
        }
        var t = finished!;
        if (settings.Json)
        {
            Output.Json(Ctx, new
            {
                turn_id = t.TurnId,
                conversation_id = t.ConversationId,
                status = t.Status,
                answer = view.Answer ?? t.AssistantMessage,
                error = t.ErrorMessage,
                tokens_used = t.TokensUsed,
                cost_usd = t.CostUsd,
            });
        }
        return t.Status == "completed" ? ExitCodes.Ok : ExitCodes.TurnFailed;
    }
}

/// <summary>Options of aos chat.</summary>
public sealed class ChatSettings : TenantSettings
{
    /// <summary>AGENT.</summary>
    [CommandArgument(0, "<AGENT>")]
    [Description("Agent name or id.")]
    public string Agent { get; init; } = "";

    /// <summary>--conversation.</summary>
    [CommandOption("--conversation <ID>")]
    [Description("Continue this conversation instead of starting a new one.")]
    public string? Conversation { get; init; }

    /// <summary>--yes.</summary>
    [CommandOption("-y|--yes")]
    [Description("Approve the agent's tool calls without asking.")]
    public bool Yes { get; init; }
}

/// <summary>aos chat: a conversation in the terminal; answers stream in as the worker writes them.</summary>
public sealed class ChatCommand : TenantCommand<ChatSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, ChatSettings settings, CancellationToken ct)
    {
        var agentId = await Ids.ResolveAsync(client, AosIdKind.Agent, settings.Agent, ct, tenant);
        var agent = await client.GetAgentAsync(agentId, ct)
            ?? throw new CliException($"agent {settings.Agent} does not exist in tenant {tenant.Name}", ExitCodes.NotFound,
                "aos agent list shows the agents (pass --tenant for another tenant).");
        Guid conversationId;
        if (settings.Conversation is not null)
        {
            conversationId = await Ids.ResolveAsync(client, AosIdKind.Conversation, settings.Conversation, ct, tenant);
            var c = await client.GetConversationAsync(conversationId, ct);
            if (c is null || c.AgentId != agentId)
            {
                throw new CliException($"conversation {settings.Conversation} is not a conversation of agent {agent.Name}", ExitCodes.NotFound,
                    $"aos conversation list --agent {agent.Name} shows its conversations.");
            }
        }
        else
        {
            conversationId = await client.StartConversationAsync(agentId, title: "aos chat", ct: ct);
        }
        Ctx.Console.MarkupLine($"[dim]Chatting with {Render.Esc(agent.Name)} ({Render.Esc(agent.Model)}) in conversation {conversationId}. An empty line or /quit ends.[/]");
        var approver = new Approver(Ctx, client, settings.Yes, "aos chat");
        var failed = false;
        while (true)
        {
            Ctx.Console.Markup("[blue]you>[/] ");
            Ctx.Out.Flush();
            string? line;
            try
            {
                line = await Ctx.ReadLineAsync(ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                line = null; // Ctrl+C at the prompt ends the chat like end of input
            }
            if (line is null || line.Trim() is "" or "/quit" or "/exit")
            {
                if (line is null || !Ctx.IsTerminal)
                {
                    Ctx.Out.WriteLine(line ?? "");
                }
                break;
            }
            if (!Ctx.IsTerminal)
            {
                Ctx.Out.WriteLine(line);
            }
            var view = new TurnView(Ctx, agent.Name);
            var waiting = false;
            await foreach (var e in TurnFollower.FollowAsync(session.DataSource, client,
                               c => client.SendMessageAsync(conversationId, line, ct: c), ct))
            {
                view.Show(e);
                if (e is StepEvent { Step: { StepType: "tool_call", Status: "pending" } s } && !waiting)
                {
                    if (!await approver.DecideAsync(s, ct))
                    {
                        waiting = true;
                        break;
                    }
                }
                if (e is FinishedEvent f && f.Turn.Status != "completed")
                {
                    failed = true;
                }
            }
            if (waiting)
            {
                break;
            }
        }
        Ctx.Console.MarkupLine($"[dim]Conversation {conversationId}: aos timeline {Ids.Short(conversationId)} shows every step; aos chat {Render.Esc(agent.Name)} --conversation {Ids.Short(conversationId)} goes on with it.[/]");
        return failed ? ExitCodes.TurnFailed : ExitCodes.Ok;
    }
}

/// <summary>Options of aos timeline.</summary>
public sealed class TimelineSettings : TenantSettings
{
    /// <summary>CONVERSATION.</summary>
    [CommandArgument(0, "<CONVERSATION>")]
    [Description("Conversation id (or its first 8 characters).")]
    public string Conversation { get; init; } = "";
}

/// <summary>aos timeline: every step of a conversation with its approval decision.</summary>
public sealed class TimelineCommand : TenantCommand<TimelineSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, TimelineSettings settings, CancellationToken ct)
    {
        var id = await Ids.ResolveAsync(client, AosIdKind.Conversation, settings.Conversation, ct, tenant);
        var conversation = await client.GetConversationAsync(id, ct)
            ?? throw new CliException($"conversation {settings.Conversation} does not exist in tenant {tenant.Name}", ExitCodes.NotFound,
                "aos conversation list shows the conversations (pass --tenant for another tenant).");
        var rows = await client.TimelineAsync(id, ct);
        if (settings.Json)
        {
            Output.Json(Ctx, new { conversation, steps = rows });
            return ExitCodes.Ok;
        }
        var table = new Table()
            .Title($"{Render.Esc(conversation.AgentName)} · conversation {conversation.ConversationId} · {Render.Esc(conversation.Status)}")
            .AddColumns("turn", "step", "time", "type", "status", "approval", "summary", "step id");
        foreach (var r in rows)
        {
            var approval = r.Approval is null ? "" : $"{Render.Status(r.Approval)} [dim]({Render.Esc(r.ApprovedBySource)})[/]";
            table.AddRow($"{r.TurnNumber} {Render.Status(r.TurnStatus)}", r.StepNumber.ToString(CultureInfo.InvariantCulture), Render.Time(r.CreatedAt),
                $"[{Render.Colour(r.StepType)}]{Render.Esc(Render.Label(r.StepType))}[/]", Render.Status(r.Status), approval,
                Render.Esc(Render.Clip(r.Summary, 80)), Ids.Short(r.StepId));
        }
        Ctx.Console.Write(table);
        Ctx.Console.MarkupLine($"[dim]{conversation.TurnCount} turns, {Render.Num(conversation.TotalTokens)} tokens, {Render.Usd(conversation.TotalCostUsd)}.[/]");
        return ExitCodes.Ok;
    }
}
