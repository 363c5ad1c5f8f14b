using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Npgsql;
using PgAgentOS.Client;
using PgAgentOS.Runtime.Models;
using PgAgentOS.Runtime.Tools;

namespace PgAgentOS.Runtime;

/// <summary>How a worker's work on a turn ended.</summary>
internal enum TurnOutcome
{
    Completed,
    Failed,
    WaitingForApproval,
    Dropped,
}

/// <summary>The model could not be called (after retries for transient errors).</summary>
internal sealed class ModelFailedException(string message, Exception? inner) : Exception(message, inner);

/// <summary>
/// Drives one claimed turn: runs approved tool calls first, then loops model call → record →
/// tools until the kernel says completed, failed or waiting for approval. No transaction is held
/// across a model or tool call: every kernel call is its own short transaction (Q11). The lease is
/// renewed every third of its length; when the kernel says the lease is gone (AO004), the
/// conversation was paused (AO008) or the turn finished (AO003), the worker stops at once.
/// </summary>
internal sealed class TurnRunner
{
    private static readonly TimeSpan DeadlineMargin = TimeSpan.FromSeconds(2);

    private readonly AosClient _client;
    private readonly WorkerOptions _options;
    private readonly ChatClientFactory _models;
    private readonly ToolRegistry _tools;
    private readonly ILogger _log;
    private readonly Action<WorkerEvent> _emit;
    private TurnContext _ctx;
    private readonly Guid _lease;
    private TimeSpan _dbClockOffset;
    private string? _lostReason;
    private bool _toolRunning;
    private List<ModelToolCall> _lastCalls = [];
    private decimal _costSeen;
    private Dictionary<string, SkillImplementation> _skills = new(StringComparer.Ordinal);
    private bool _contextFresh;

    public TurnRunner(AosClient client, WorkerOptions options, ChatClientFactory models, ToolRegistry tools, ILogger log,
        Action<WorkerEvent> emit, TurnContext ctx)
    {
        _client = client;
        _options = options;
        _models = models;
        _tools = tools;
        _log = log;
        _emit = emit;
        _ctx = ctx;
        _lease = ctx.LeaseToken ?? throw new ArgumentException("a claimed turn has a lease token", nameof(ctx));
        var expiresAt = ctx.LeaseExpiresAt ?? DateTimeOffset.UtcNow.AddSeconds(options.LeaseSeconds);
        _dbClockOffset = expiresAt.AddSeconds(-options.LeaseSeconds) - DateTimeOffset.UtcNow;
    }

    private Guid TurnId => _ctx.TurnId;

    /// <summary>The conversation's next turn, ready when this one completed (the kernel sends no aos_turn_ready for it).</summary>
    public Guid? HandedBackTurn { get; private set; }

    /// <summary>The turn finished (completed or failed) under this worker: aos_turn_done is due.</summary>
    public bool Finished { get; private set; }

    /// <summary>The turn this runner drives.</summary>
    public Guid Turn => _ctx.TurnId;

    private Guid ConversationId => _ctx.ConversationId;

    private DateTimeOffset DbNow => DateTimeOffset.UtcNow + _dbClockOffset;

    public async Task<TurnOutcome> RunAsync(CancellationToken stopping)
    {
        var watch = Stopwatch.StartNew();
        using var activity = RuntimeTelemetry.StartTurn(_ctx, _options.WorkerId);
        using var turnCts = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        Emit(WorkerEventKind.TurnClaimed, $"attempt {_ctx.Attempt}{(_ctx.Reclaimed ? " (reclaimed)" : "")} of turn {_ctx.TurnNumber} ({_ctx.AgentName})");
        var heartbeat = Task.Run(() => HeartbeatAsync(turnCts), CancellationToken.None);
        TurnOutcome outcome;
        try
        {
            outcome = await DriveAsync(turnCts.Token);
        }
        catch (OperationCanceledException) when (_lostReason is not null)
        {
            outcome = Drop(_lostReason);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            outcome = await ReleaseAsync("the worker is shutting down");
        }
        catch (LeaseLostException e)
        {
            outcome = Drop("lease lost: " + e.Message);
        }
        catch (AosConflictException e) when (e.SqlState is "AO003" or "AO008")
        {
            outcome = Drop(e.Message);
        }
        catch (AosConflictException e) when (e.SqlState == "AO007")
        {
            outcome = await FailAsync(e.Message.StartsWith("budget", StringComparison.Ordinal) ? e.Message : "budget: " + e.Message);
        }
        catch (Exception e) when (IsDatabaseFailure(e))
        {
            _emit(new WorkerEvent(WorkerEventKind.Error, TurnId, ConversationId, "database unreachable: " + e.Message));
            outcome = Drop("database unreachable; the lease will expire and the turn will be claimed again");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _log.LogError(e, "turn {Turn} failed in the worker", TurnId);
            outcome = await FailAsync("worker error: " + e.Message, retry: true);
        }
        finally
        {
            await turnCts.CancelAsync();
            await heartbeat;
        }
        activity?.SetTag("aos.turn.outcome", outcome.ToString());
        RuntimeTelemetry.Turns.Add(1, new KeyValuePair<string, object?>("outcome", outcome.ToString().ToLowerInvariant()));
        RuntimeTelemetry.TurnDuration.Record(watch.Elapsed.TotalSeconds);
        return outcome;
    }

    private async Task<TurnOutcome> DriveAsync(CancellationToken ct)
    {
        // The claim's context says how the tools are implemented (older kernels: ask).
        _skills = (_ctx.Skills ?? await _client.TurnSkillsAsync(TurnId, _lease, ct)).ToDictionary(s => s.SkillKey, StringComparer.Ordinal);

        // Calls the kernel approved earlier (after an approval, or idempotent ones after a reclaim).
        var refresh = false;
        var approved = _ctx.ApprovedToolCalls;
        for (var i = 0; i < approved.Count; i++)
        {
            var call = approved[i];
            var args = JsonNode.Parse(call.Arguments.GetRawText()) as JsonObject ?? [];
            // the claim starts the first one (its ticket comes with the turn); the others start here
            var ticket = call.Ticket ?? await _client.BeginToolExecutionAsync(TurnId, _lease, call.StepId, call.Name, args, ct);
            await ExecuteAsync(call.StepId, call.CallId, call.Name, args, ticket, ct, refreshContext: i == approved.Count - 1);
            refresh = true;
        }

        var chat = _models.Get(_ctx);
        while (true)
        {
            if (refresh)
            {
                if (!_contextFresh)
                {
                    _ctx = await _client.RefreshTurnAsync(TurnId, _lease, _ctx, ct);
                }
                _contextFresh = false;
                if (_ctx.Budget.CostUsd > _costSeen)
                {
                    // the kernel prices usage from the registry when the provider reports no cost
                    RuntimeTelemetry.Cost.Add((double)(_ctx.Budget.CostUsd - _costSeen));
                }
            }
            _costSeen = _ctx.Budget.CostUsd;
            refresh = true;
            if (BudgetExhausted() is { } budget)
            {
                return await FailAsync(budget);
            }

            var messages = ChatMessageBuilder.Build(_ctx);
            var options = ChatMessageBuilder.Options(_ctx);
            ChatResponse response;
            try
            {
                response = await CallModelAsync(chat, messages, options, ct);
            }
            catch (ModelFailedException e)
            {
                return await FailAsync(e.Message);
            }

            var recorded = await RecordAsync(response, ct);
            switch (recorded.Status)
            {
                case "completed":
                    Emit(WorkerEventKind.TurnFinished, "completed", status: "completed");
                    await NotifyDoneAsync(recorded.NextTurnId);
                    return TurnOutcome.Completed;
                case "failed":
                    Emit(WorkerEventKind.TurnFinished, recorded.Reason ?? "failed", status: "failed");
                    await NotifyDoneAsync();
                    return TurnOutcome.Failed;
                case "waiting_approval":
                    Emit(WorkerEventKind.WaitingForApproval,
                        "waiting for approval of " + string.Join(", ", recorded.ToolCalls.Where(c => c.Status == "awaiting_approval").Select(c => c.Name)),
                        status: "waiting_approval");
                    return TurnOutcome.WaitingForApproval;
            }
            var lastTicketed = -1;
            for (var i = 0; i < recorded.ToolCalls.Count; i++)
            {
                if (recorded.ToolCalls[i].Ticket is not null)
                {
                    lastTicketed = i;
                }
            }
            for (var i = 0; i < recorded.ToolCalls.Count; i++)
            {
                var decision = recorded.ToolCalls[i];
                if (decision.Ticket is { } ticket)
                {
                    // exactly the arguments that were recorded (and approved) for this call; decisions come in call order
                    var call = i < _lastCalls.Count && _lastCalls[i].Name == decision.Name
                        ? _lastCalls[i]
                        : _lastCalls.FirstOrDefault(c => c.Id == decision.CallId && c.Name == decision.Name);
                    var args = call?.Arguments as JsonObject ?? [];
                    await ExecuteAsync(decision.StepId, decision.CallId, decision.Name, args, ticket, ct, refreshContext: i == lastTicketed);
                }
            }
        }
    }

    /// <summary>Why the turn may not call the model again, or null.</summary>
    private string? BudgetExhausted()
    {
        var b = _ctx.Budget;
        if (_ctx.Iteration >= b.MaxIterations)
        {
            return $"budget: used all {b.MaxIterations} iterations of the turn";
        }
        if (b.MaxTokens is { } maxTokens && b.TokensUsed >= maxTokens)
        {
            return $"budget: {b.TokensUsed} tokens used, the limit is {maxTokens}";
        }
        if (b.MaxCostUsd is { } maxCost && b.CostUsd >= maxCost)
        {
            return $"budget: ${b.CostUsd} spent, the limit is ${maxCost}";
        }
        if (b.Deadline is { } deadline && deadline - DbNow < DeadlineMargin)
        {
            return $"budget: the turn's time{(b.MaxSeconds is { } s ? $" ({s} s)" : "")} is used up";
        }
        return null;
    }

    private async Task<ChatResponse> CallModelAsync(IChatClient chat, List<ChatMessage> messages, ChatOptions options, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        var stream = _ctx.Model?.SupportsStreaming ?? true;
        Exception? last = null;
        var attempts = Math.Max(1, _options.ModelAttempts);
        try
        {
            for (var attempt = 1; attempt <= attempts; attempt++)
            {
                var limit = _options.ModelCallTimeout;
                if (_ctx.Budget.Deadline is { } deadline)
                {
                    var left = deadline - DbNow - DeadlineMargin;
                    if (left <= TimeSpan.Zero)
                    {
                        throw new ModelFailedException($"budget: the turn's time ran out while calling the model{(last is null ? "" : " (" + last.Message + ")")}", last);
                    }
                    limit = left < limit ? left : limit;
                }
                using var callCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
                callCts.CancelAfter(limit);
                StreamPublisher? publisher = stream && _options.StreamDeltas && _ctx.StreamChannel is { } channel
                    ? new StreamPublisher(_client, channel, TurnId, ConversationId, _log, _options.StreamFlushInterval) : null;
                try
                {
                    if (!stream)
                    {
                        return await chat.GetResponseAsync(messages, options, callCts.Token);
                    }
                    var updates = new List<ChatResponseUpdate>();
                    await foreach (var u in chat.GetStreamingResponseAsync(messages, options, callCts.Token))
                    {
                        updates.Add(u);
                        foreach (var text in u.Contents.OfType<TextContent>())
                        {
                            if (!string.IsNullOrEmpty(text.Text))
                            {
                                publisher?.Publish(text.Text);
                                Emit(WorkerEventKind.StreamDelta, text.Text);
                            }
                        }
                    }
                    return updates.ToChatResponse();
                }
                catch (Exception e) when (!ct.IsCancellationRequested && e is not ModelFailedException
                                          && (TransientErrors.IsTransient(e) || (e is OperationCanceledException && callCts.IsCancellationRequested)))
                {
                    last = e;
                    var why = e is OperationCanceledException ? $"no answer within {limit.TotalSeconds:0.#} s" : e.Message;
                    if (attempt == attempts)
                    {
                        throw new ModelFailedException($"model provider failed after {attempts} attempts: {why}", e);
                    }
                    var delay = TimeSpan.FromMilliseconds(_options.ModelRetryDelay.TotalMilliseconds * Math.Pow(2, attempt - 1)
                                                          * (0.5 + Random.Shared.NextDouble()));
                    Emit(WorkerEventKind.Error, $"model call failed ({why}); attempt {attempt + 1} of {attempts} in {delay.TotalSeconds:0.##} s");
                    await Task.Delay(delay, ct);
                }
                catch (Exception e) when (!ct.IsCancellationRequested && e is not (OperationCanceledException or ModelFailedException))
                {
                    throw new ModelFailedException(e is ProviderConfigurationException
                        ? "model not configured: " + e.Message
                        : "model provider failed: " + e.Message, e);
                }
                finally
                {
                    if (publisher is not null)
                    {
                        await publisher.CompleteAsync();
                    }
                }
            }
            throw new ModelFailedException("model provider failed: " + (last?.Message ?? "no attempt was made"), last);
        }
        finally
        {
            RuntimeTelemetry.ModelDuration.Record(watch.Elapsed.TotalSeconds,
                new KeyValuePair<string, object?>("gen_ai.provider.name", RuntimeTelemetry.ProviderName(_ctx.Model?.Provider)));
        }
    }

    private async Task<ResponseResult> RecordAsync(ChatResponse response, CancellationToken ct)
    {
        var thinking = new StringBuilder();
        var text = new StringBuilder();
        var calls = new List<ModelToolCall>();
        foreach (var content in response.Messages.SelectMany(m => m.Contents))
        {
            switch (content)
            {
                case TextReasoningContent r when !string.IsNullOrEmpty(r.Text):
                    thinking.Append(r.Text);
                    break;
                case TextContent t:
                    text.Append(t.Text);
                    break;
                case FunctionCallContent f:
                    calls.Add(new ModelToolCall(string.IsNullOrEmpty(f.CallId) ? "call_" + Guid.NewGuid().ToString("N")[..20] : f.CallId,
                        f.Name, ChatMessageBuilder.ArgumentsToJson(f.Arguments)));
                    break;
            }
        }
        if (calls.Count > 0 && text.Length > 0)
        {
            // text said alongside tool calls is the model thinking aloud; the answer comes later
            if (thinking.Length > 0)
            {
                thinking.Append("\n\n");
            }
            thinking.Append(text);
        }
        Usage? usage = null;
        if (response.Usage is { } u && (u.InputTokenCount is not null || u.OutputTokenCount is not null))
        {
            usage = new Usage(u.InputTokenCount, u.OutputTokenCount);
            if (u.InputTokenCount is { } i)
            {
                RuntimeTelemetry.Tokens.Add(i, new KeyValuePair<string, object?>("gen_ai.token.type", "input"));
            }
            if (u.OutputTokenCount is { } o)
            {
                RuntimeTelemetry.Tokens.Add(o, new KeyValuePair<string, object?>("gen_ai.token.type", "output"));
            }
        }
        _lastCalls = calls;
        var final = calls.Count == 0;
        var result = await _client.RecordResponseAsync(TurnId, _lease, new ModelResponse
        {
            Thinking = thinking.Length > 0 ? thinking.ToString() : null,
            Text = final ? text.ToString() : null,
            ToolCalls = calls,
            Final = final,
            Usage = usage,
        }, ct);
        RuntimeTelemetry.Steps.Add(result.StepIds.Count);
        Emit(WorkerEventKind.StepRecorded,
            $"model response: {(thinking.Length > 0 ? "thinking, " : "")}{(calls.Count > 0 ? calls.Count + " tool call(s)" : "answer")} → {result.Status}",
            status: result.Status);
        return result;
    }

    /// <summary>
    /// Runs an approved tool and records its result. The last tool of a response also reads the
    /// turn's fresh context in the same round trip (refreshContext), for the next model call.
    /// </summary>
    private async Task ExecuteAsync(Guid stepId, string? callId, string name, JsonObject args, Guid ticket, CancellationToken ct,
        bool refreshContext = false)
    {
        var watch = Stopwatch.StartNew();
        _skills.TryGetValue(name, out var skill);
        using var activity = RuntimeTelemetry.StartTool(name, callId, skill?.ImplType, stepId);
        Emit(WorkerEventKind.ToolStarted, $"ticket {ticket}", name);
        ToolResult result;
        _toolRunning = true;
        try
        {
            if (skill is null)
            {
                result = ToolResult.Fail($"tool {name} is not available to this agent any more");
            }
            else if (ArgumentValidator.Validate(skill.InputSchema, args) is { } invalid)
            {
                result = ToolResult.Fail(invalid);
            }
            else if (_tools.Resolve(skill, out var why) is not { } tool)
            {
                result = ToolResult.Fail(why ?? "no runner for this tool");
            }
            else
            {
                using var toolCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
                toolCts.CancelAfter(TimeSpan.FromMilliseconds(skill.TimeoutMs));
                try
                {
                    result = await tool.RunAsync(new ToolCall(_ctx, _lease, stepId, callId, name, args, skill, _client), toolCts.Token);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    result = ToolResult.Fail($"the tool ran longer than its {skill.TimeoutMs} ms");
                }
                catch (Exception e) when (e is not OperationCanceledException && !IsLeaseOrStateError(e) && !IsDatabaseFailure(e))
                {
                    result = ToolResult.Fail($"the tool failed: {e.Message}");
                }
            }
            activity?.SetTag("aos.tool.success", result.Success);
            if (refreshContext)
            {
                (_, _ctx) = await _client.RecordToolResultAndContextAsync(TurnId, name, result.Output, result.Success, result.Error, _lease, ticket, ct,
                    held: _ctx);
                _contextFresh = true;
            }
            else
            {
                await _client.RecordToolResultAsync(TurnId, name, result.Output, result.Success, result.Error, _lease, ticket, ct: ct);
            }
        }
        finally
        {
            _toolRunning = false;
            RuntimeTelemetry.ToolDuration.Record(watch.Elapsed.TotalSeconds, new KeyValuePair<string, object?>("gen_ai.tool.name", name));
        }
        RuntimeTelemetry.Steps.Add(1);
        Emit(WorkerEventKind.ToolFinished, result.Success ? "ok" : "error: " + result.Error, name, result.Success ? "ok" : "error");
    }

    private async Task HeartbeatAsync(CancellationTokenSource turnCts)
    {
        var period = TimeSpan.FromSeconds(Math.Max(0.3, _options.LeaseSeconds / 3.0));
        var lastOk = DateTimeOffset.UtcNow;
        while (!turnCts.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(period, turnCts.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            try
            {
                var sent = DateTimeOffset.UtcNow;
                var expiry = await _client.HeartbeatAsync(TurnId, _lease, _options.LeaseSeconds, turnCts.Token);
                _dbClockOffset = expiry.AddSeconds(-_options.LeaseSeconds) - sent;
                lastOk = DateTimeOffset.UtcNow;
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e) when (IsLeaseOrStateError(e))
            {
                _lostReason = e.Message;
                await turnCts.CancelAsync();
                return;
            }
            catch (Exception e) when (IsDatabaseFailure(e))
            {
                if (DateTimeOffset.UtcNow - lastOk > TimeSpan.FromSeconds(_options.LeaseSeconds))
                {
                    _lostReason = "no heartbeat reached the database for a whole lease: " + e.Message;
                    await turnCts.CancelAsync();
                    return;
                }
            }
        }
    }

    private async Task<TurnOutcome> FailAsync(string reason, bool retry = false)
    {
        try
        {
            var r = await _client.FailTurnAsync(TurnId, reason, _lease, retry: retry);
            Emit(WorkerEventKind.TurnFinished, reason, status: r == "retry" ? "retry" : "failed");
            if (r != "retry")
            {
                await NotifyDoneAsync();
            }
            return TurnOutcome.Failed;
        }
        catch (Exception e) when (e is AosException || IsDatabaseFailure(e))
        {
            return Drop($"{reason} (and the failure could not be recorded: {e.Message})");
        }
    }

    private async Task<TurnOutcome> ReleaseAsync(string reason)
    {
        if (_toolRunning)
        {
            return Drop(reason + " while a tool ran; the lease will expire");
        }
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _client.ReleaseTurnAsync(TurnId, _lease, reason, cts.Token);
            Emit(WorkerEventKind.TurnDropped, "released: " + reason, status: "released");
            return TurnOutcome.Dropped;
        }
        catch (Exception e) when (e is AosException or OperationCanceledException || IsDatabaseFailure(e))
        {
            return Drop(reason);
        }
    }

    private TurnOutcome Drop(string reason)
    {
        Emit(WorkerEventKind.TurnDropped, reason, status: "dropped");
        return TurnOutcome.Dropped;
    }

    /// <summary>
    /// The turn finished: watchers are told (aos_turn_done) by the host, in the transaction of the
    /// slot's next claim (see WorkerHost), or on its own when the host is stopping. The kernel does
    /// not NOTIFY at completion: a transaction that notifies holds PostgreSQL's notification lock
    /// through its commit's WAL flush, which would make every turn completion wait for the others;
    /// the claim commits without waiting for a flush, so the lock is held only briefly there.
    /// </summary>
    private Task NotifyDoneAsync(Guid? nextTurn = null)
    {
        // The conversation's next turn (ready now) is handed back to the host: its slot claims again
        // at once, so no other worker needs waking unless the host is stopping (WorkerHost does that).
        HandedBackTurn = nextTurn;
        Finished = true;
        return Task.CompletedTask;
    }

    private void Emit(WorkerEventKind kind, string message, string? tool = null, string? status = null) =>
        _emit(new WorkerEvent(kind, TurnId, ConversationId, message, tool, status));

    private static bool IsLeaseOrStateError(Exception e) =>
        e is LeaseLostException || (e is AosException a && a.SqlState is "AO003" or "AO008" or "AO004");

    /// <summary>The database could not be reached or the connection broke (not an error of the kernel).</summary>
    internal static bool IsDatabaseFailure(Exception e) =>
        e is NpgsqlException and not PostgresException
        || (e is PostgresException p && (p.SqlState.StartsWith("08", StringComparison.Ordinal) || p.SqlState.StartsWith("57P", StringComparison.Ordinal)))
        || (e is AosException { InnerException: PostgresException ip } && IsDatabaseFailure(ip))
        || e is System.Net.Sockets.SocketException or TimeoutException
        || (e is InvalidOperationException && e.Message.Contains("connection", StringComparison.OrdinalIgnoreCase));
}
