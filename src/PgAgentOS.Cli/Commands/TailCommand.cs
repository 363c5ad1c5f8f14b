using System.ComponentModel;
using System.Diagnostics;
using PgAgentOS.Client;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PgAgentOS.Cli.Commands;

/// <summary>Options of aos tail.</summary>
public sealed class TailSettings : TenantSettings
{
    /// <summary>--agent.</summary>
    [CommandOption("--agent <AGENT>")]
    [Description("Only this agent's steps (name or id).")]
    public string? Agent { get; init; }

    /// <summary>--conversation.</summary>
    [CommandOption("--conversation <ID>")]
    [Description("Only this conversation's steps.")]
    public string? Conversation { get; init; }

    /// <summary>--last.</summary>
    [CommandOption("--last <N>")]
    [Description("Show the latest N steps first.")]
    [DefaultValue(10)]
    public int Last { get; init; } = 10;

    /// <summary>--for.</summary>
    [CommandOption("--for <SECONDS>")]
    [Description("Stop after this many seconds (default: run until Ctrl+C).")]
    public int? For { get; init; }

    /// <summary>--count.</summary>
    [CommandOption("--count <N>")]
    [Description("Stop after N new steps.")]
    public int? Count { get; init; }

    /// <inheritdoc />
    public override ValidationResult Validate()
    {
        if (Last is < 0 or > 1000)
        {
            return ValidationResult.Error("--last must be between 0 and 1000");
        }
        if (For is < 1)
        {
            return ValidationResult.Error("--for must be at least 1 second");
        }
        return Count is < 1 ? ValidationResult.Error("--count must be at least 1") : ValidationResult.Success();
    }
}

/// <summary>
/// aos tail: live steps of every tenant, one tenant, one agent or one conversation, with the
/// answers streaming in. Reads the steps after the last one seen on every notification
/// (aos_turn_ready, aos_turn_done, aos_approval_needed) and at least every 500 ms; shows the
/// answer deltas workers send on aos_stream as they arrive.
/// </summary>
public sealed class TailCommand : AosCommand<TailSettings>
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(500);

    // Steps are stamped inside their transaction, so one can commit a little after a later-stamped
    // one: every read looks this far back and drops what was already shown.
    private static readonly TimeSpan Overlap = TimeSpan.FromSeconds(5);

    /// <inheritdoc />
    protected override async Task<int> RunAsync(TailSettings settings, CancellationToken ct)
    {
        await using var session = await Session.OpenAsync(Ctx, settings, ct: ct);
        var scopes = new List<Scope>();
        Guid? agentId = null, conversationId = null;
        var everything = false;
        if (settings.Agent is not null || settings.Conversation is not null || settings.Tenant is not null || Ctx.Env("AOS_TENANT") is not null)
        {
            var tenant = await session.TenantAsync(Ctx, settings.Tenant, ct);
            var client = session.For(tenant);
            if (settings.Agent is not null)
            {
                agentId = await Ids.ResolveAsync(client, AosIdKind.Agent, settings.Agent, ct, tenant);
                _ = await client.GetAgentAsync(agentId.Value, ct)
                    ?? throw new CliException($"agent {settings.Agent} does not exist in tenant {tenant.Name}", ExitCodes.NotFound,
                        "aos agent list shows the agents (pass --tenant for another tenant).");
            }
            if (settings.Conversation is not null)
            {
                conversationId = await Ids.ResolveAsync(client, AosIdKind.Conversation, settings.Conversation, ct, tenant);
                _ = await client.GetConversationAsync(conversationId.Value, ct)
                    ?? throw new CliException($"conversation {settings.Conversation} does not exist in tenant {tenant.Name}", ExitCodes.NotFound,
                        "aos conversation list shows the conversations (pass --tenant for another tenant).");
            }
            scopes.Add(new Scope(tenant, client));
        }
        else
        {
            everything = true;
            await RefreshTenantsAsync(session, scopes, ct);
        }

        var tail = new Tail(Ctx, settings.Json, everything, agentId, conversationId);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        if (settings.For is { } seconds)
        {
            stop.CancelAfter(TimeSpan.FromSeconds(seconds));
        }
        try
        {
            // Start from the database's clock: what happened before is shown by --last only.
            var since = await session.Client.DatabaseNowAsync(stop.Token);
            var first = new List<(Scope Scope, StepRow Step)>();
            foreach (var s in scopes)
            {
                s.DecisionsAfter = s.Floor = since;
                if (settings.Last > 0)
                {
                    first.AddRange((await s.Client.StepsSinceAsync(null, agentId, conversationId, settings.Last, stop.Token)).Select(x => (s, x)));
                }
            }
            foreach (var (scope, step) in first.OrderBy(x => x.Step.CreatedAt).ThenBy(x => x.Step.StepNumber).TakeLast(settings.Last))
            {
                scope.Remember(step);
                tail.Step(scope.Tenant, step, counted: false);
            }
            var clock = Stopwatch.StartNew();
            var lastRead = TimeSpan.Zero;
            var lastTenantRefresh = TimeSpan.Zero;
            // Each tenant's answers stream on a channel of its own (named by the kernel); tenants that
            // appear after tail started show their steps, but not their deltas.
            var streamChannels = new HashSet<string>(StringComparer.Ordinal);
            foreach (var s in scopes)
            {
                streamChannels.Add(await s.Client.StreamChannelAsync(stop.Token));
            }
            var barrierChannel = streamChannels.FirstOrDefault();
            var channels = streamChannels.Concat([AosNotifications.TurnReady, AosNotifications.TurnDone, AosNotifications.ApprovalNeeded]).ToArray();
            // What a read found, in order; an answer is held back until the deltas sent before it
            // (on the stream channels) have arrived: a barrier notification comes back after all of them.
            var held = new List<(bool IsAnswer, Action Show)>();
            string? barrier = null;
            var barrierDeadline = TimeSpan.Zero;

            async Task ReadAsync()
            {
                lastRead = clock.Elapsed;
                if (everything && clock.Elapsed - lastTenantRefresh > TimeSpan.FromSeconds(5))
                {
                    lastTenantRefresh = clock.Elapsed;
                    await RefreshTenantsAsync(session, scopes, stop.Token);
                }
                var found = new List<(bool IsAnswer, Action Show)>();
                foreach (var s in scopes)
                {
                    s.DecisionsAfter ??= since;
                    s.Floor ??= since;
                    var after = s.LastSeen is null || s.LastSeen.Value - Overlap < s.Floor ? s.Floor : s.LastSeen.Value - Overlap;
                    var steps = await s.Client.StepsSinceAsync(after, agentId, conversationId, 500, stop.Token);
                    var decisions = await s.Client.ApprovalsSinceAsync(s.DecisionsAfter.Value, agentId, conversationId, stop.Token);
                    foreach (var d in decisions)
                    {
                        s.DecisionsAfter = d.DecidedAt;
                        found.Add((false, () => tail.Decision(s.Tenant, d)));
                    }
                    foreach (var step in steps)
                    {
                        if (s.Remember(step))
                        {
                            found.Add((step.StepType == "respond", () => tail.Step(s.Tenant, step, counted: true)));
                        }
                    }
                    s.Forget();
                }
                var answer = found.FindIndex(f => f.IsAnswer);
                foreach (var f in answer < 0 ? found : found[..answer])
                {
                    f.Show();
                }
                if (answer >= 0)
                {
                    held.AddRange(found[answer..]);
                    barrier = "aos-sync:" + Guid.NewGuid().ToString("N");
                    barrierDeadline = clock.Elapsed + TimeSpan.FromSeconds(2);
                    try
                    {
                        await session.Client.NotifyAsync(barrierChannel ?? AosNotifications.TurnDone, barrier, stop.Token);
                    }
                    catch (Exception e) when (e is AosException or Npgsql.NpgsqlException)
                    {
                        barrierDeadline = TimeSpan.Zero;
                    }
                }
            }

            var announced = false;
            await foreach (var n in AosNotifications.ListenAsync(session.DataSource, channels, Poll, stop.Token))
            {
                if (!announced)
                {
                    // The first item comes once LISTEN is in place: from here on nothing is missed.
                    announced = true;
                    var what = conversationId is not null ? $"conversation {conversationId}" : agentId is not null ? $"agent {settings.Agent}"
                        : everything ? $"all tenants ({scopes.Count})" : $"tenant {scopes[0].Tenant.Name}";
                    if (settings.Json)
                    {
                        Output.JsonLine(Ctx, new { type = "following", scope = what });
                    }
                    else
                    {
                        Ctx.Console.MarkupLine($"[dim]Following {Render.Esc(what)}; Ctrl+C stops.[/]");
                    }
                }
                var onStream = streamChannels.Contains(n.Channel) || n.Channel == AosNotifications.TurnDone;
                var released = barrier is not null && onStream && n.Payload == barrier;
                if (streamChannels.Contains(n.Channel) && StreamDelta.TryParse(n.Payload) is { } delta)
                {
                    if (!tail.IsStreaming(delta.TurnId) && held.Count == 0)
                    {
                        // What was recorded before the answer began (a tool result) is shown first.
                        await ReadAsync();
                    }
                    await tail.DeltaAsync(delta, scopes, stop.Token);
                    if (held.Count == 0 && clock.Elapsed - lastRead < Poll)
                    {
                        continue;
                    }
                }
                if (held.Count > 0)
                {
                    if (!released && clock.Elapsed < barrierDeadline)
                    {
                        continue;
                    }
                    foreach (var h in held)
                    {
                        h.Show();
                    }
                    held.Clear();
                    barrier = null;
                }
                else
                {
                    await ReadAsync();
                }
                if (settings.Count is { } max && tail.Counted >= max && held.Count == 0)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // --for ran out, or Ctrl+C: both are how tail ends.
        }
        tail.End();
        return ExitCodes.Ok;
    }

    private static async Task RefreshTenantsAsync(Session session, List<Scope> scopes, CancellationToken ct)
    {
        foreach (var t in await session.Client.ListTenantsAsync(ct))
        {
            if (scopes.All(s => s.Tenant.Id != t.TenantId))
            {
                var tref = new TenantRef(t.TenantId, t.Name);
                scopes.Add(new Scope(tref, session.For(tref)));
            }
        }
    }

    private sealed class Scope(TenantRef tenant, AosClient client)
    {
        private readonly Dictionary<Guid, DateTimeOffset> _seen = [];

        public TenantRef Tenant { get; } = tenant;

        public AosClient Client { get; } = client;

        public DateTimeOffset? LastSeen { get; private set; }

        public DateTimeOffset? DecisionsAfter { get; set; }

        /// <summary>Steps older than this were shown by --last (or not asked for).</summary>
        public DateTimeOffset? Floor { get; set; }

        public bool Remember(StepRow step)
        {
            if (!_seen.TryAdd(step.StepId, step.CreatedAt))
            {
                return false;
            }
            if (LastSeen is null || step.CreatedAt > LastSeen)
            {
                LastSeen = step.CreatedAt;
            }
            return true;
        }

        public void Forget()
        {
            if (LastSeen is null || _seen.Count < 1000)
            {
                return;
            }
            var horizon = LastSeen.Value - Overlap - Overlap;
            foreach (var old in _seen.Where(kv => kv.Value < horizon).Select(kv => kv.Key).ToList())
            {
                _seen.Remove(old);
            }
        }
    }

    /// <summary>What tail prints: step lines, decisions, and the answers streaming in.</summary>
    private sealed class Tail(CliContext ctx, bool json, bool withTenant, Guid? agentId, Guid? conversationId)
    {
        private readonly Dictionary<Guid, (TenantRef Tenant, string Agent)?> _conversations = [];
        private Guid? _streamingTurn;

        public int Counted { get; private set; }

        public void Step(TenantRef tenant, StepRow s, bool counted)
        {
            if (counted)
            {
                Counted++;
            }
            EndStream();
            if (json)
            {
                Output.JsonLine(ctx, new
                {
                    type = "step",
                    tenant = tenant.Name,
                    step_id = s.StepId,
                    created_at = s.CreatedAt,
                    conversation_id = s.ConversationId,
                    turn_id = s.TurnId,
                    turn_number = s.TurnNumber,
                    agent = s.AgentName,
                    step_number = s.StepNumber,
                    step_type = s.StepType,
                    status = s.Status,
                    tool_name = s.ToolName,
                    summary = s.Summary,
                });
                return;
            }
            var prefix = withTenant ? $"[dim]{Render.Esc(tenant.Name)}[/] " : "";
            ctx.Console.MarkupLine(prefix + Render.StepLine(s, withAgent: true));
        }

        public void Decision(TenantRef tenant, ApprovalDecision d)
        {
            EndStream();
            if (json)
            {
                Output.JsonLine(ctx, new
                {
                    type = "decision",
                    tenant = tenant.Name,
                    step_id = d.StepId,
                    decided_at = d.DecidedAt,
                    conversation_id = d.ConversationId,
                    turn_id = d.TurnId,
                    agent = d.AgentName,
                    tool_name = d.ToolName,
                    decision = d.Decision,
                    source = d.Source,
                    note = d.Note,
                });
                return;
            }
            var prefix = withTenant ? $"[dim]{Render.Esc(tenant.Name)}[/] " : "";
            var note = d.Note is null ? "" : $" — {Render.Esc(d.Note)}";
            ctx.Console.MarkupLine($"{prefix}[dim]{Render.Time(d.DecidedAt)}[/] {Render.Esc(d.AgentName)} {Ids.Short(d.ConversationId)} [yellow]{"decision",-11}[/] {Render.Esc(d.ToolName)} {Render.Status(d.Decision)} by {Render.Esc(d.Source)}{note} [dim]{Ids.Short(d.StepId)}[/]");
        }

        public bool IsStreaming(Guid turn) => _streamingTurn == turn;

        public async Task DeltaAsync(StreamDelta d, List<Scope> scopes, CancellationToken ct)
        {
            if (conversationId is not null && d.ConversationId != conversationId)
            {
                return;
            }
            if (!_conversations.TryGetValue(d.ConversationId, out var owner))
            {
                owner = null;
                foreach (var s in scopes)
                {
                    var c = await s.Client.GetConversationAsync(d.ConversationId, ct);
                    if (c is not null && (agentId is null || c.AgentId == agentId))
                    {
                        owner = (s.Tenant, c.AgentName);
                        break;
                    }
                }
                _conversations[d.ConversationId] = owner;
            }
            if (owner is null)
            {
                return;
            }
            if (json)
            {
                Output.JsonLine(ctx, new { type = "delta", tenant = owner.Value.Tenant.Name, turn_id = d.TurnId, conversation_id = d.ConversationId, seq = d.Seq, delta = d.Delta });
                return;
            }
            if (_streamingTurn != d.TurnId)
            {
                EndStream();
                var prefix = withTenant ? $"[dim]{Render.Esc(owner.Value.Tenant.Name)}[/] " : "";
                ctx.Console.Markup($"{prefix}[dim]{Render.Time(DateTimeOffset.Now)}[/] {Render.Esc(owner.Value.Agent)} {Ids.Short(d.ConversationId)} [green]{"streaming",-11}[/] ");
                _streamingTurn = d.TurnId;
            }
            ctx.Out.Write(d.Delta.ReplaceLineEndings(" "));
            ctx.Out.Flush();
        }

        public void End() => EndStream();

        private void EndStream()
        {
            if (_streamingTurn is null)
            {
                return;
            }
            ctx.Out.WriteLine();
            ctx.Out.Flush();
            _streamingTurn = null;
        }
    }
}
