using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using Npgsql;
using PgAgentOS.Client;
using PgAgentOS.Runtime.Models;

namespace PgAgentOS.Runtime.Tests;

/// <summary>A worker drives turns end to end on the scripted stand-in model.</summary>
public sealed class EndToEndTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    [Fact]
    public async Task ATurnWithAToolCallAnApprovalAndAStreamedAnswer()
    {
        var t = await Kit.TenantAsync(db, "e2e", ["clock"], Kit.Script(
            new { thinking = "I should look at the clock first.", tool_calls = new[] { new { name = "clock", arguments = new { timezone = "UTC" } } } },
            new { text = "Here is what the clock said: {{tool:clock}}. That is all I know about time, said the stand-in.", chunk_delay_ms = 30 }));
        var (conv, turn) = await t.AskAsync("What time is it?");
        var events = new ConcurrentQueue<WorkerEvent>();
        await using var stream = await ChannelListener.StartAsync(db.ConnectionString(TestCluster.App), await t.App.StreamChannelAsync());
        await using var host = new WorkerHost(t.WorkerSource, Kit.Options("w-e2e") with { TenantId = t.Tenant });
        host.Event += events.Enqueue;

        // First pass: the model calls clock, which needs an approval (no auto-approval): the turn parks.
        Assert.Equal(1, await host.RunUntilIdleAsync(CancellationToken.None));
        Assert.Equal("waiting_tool", await t.StatusAsync(turn));
        Assert.Contains(events, e => e.Kind == WorkerEventKind.WaitingForApproval && e.TurnId == turn);
        Assert.DoesNotContain(events, e => e.Kind == WorkerEventKind.ToolStarted);
        var pending = Assert.Single(await t.App.PendingApprovalsAsync());
        Assert.Equal("clock", pending.ToolName);

        // An approver decides through the SDK; the next pass runs the tool with its ticket and answers.
        var approver = await t.ApproverAsync();
        await approver.ApproveStepAsync(pending.StepId, true, note: "fine");
        Assert.Equal(1, await host.RunUntilIdleAsync(CancellationToken.None));

        Assert.Equal("completed", await t.StatusAsync(turn));
        Assert.Equal(["user_message", "think", "tool_call", "tool_result", "respond"], await t.StepTypesAsync(turn));
        var steps = await t.StepsAsync(turn);
        var result = steps.Single(s => (string)s!["step_type"]! == "tool_result")!;
        Assert.True((bool)result["content"]!["success"]!);
        Assert.NotNull(result["content"]!["output"]!["utc"]);
        var answer = (string)steps.Single(s => (string)s!["step_type"]! == "respond")!["content"]!["text"]!;
        Assert.StartsWith("Here is what the clock said: {", answer, StringComparison.Ordinal);
        Assert.Contains("\"utc\"", answer, StringComparison.Ordinal);

        // The answer streamed on aos_stream in several notifications, in order, adding up to the final text.
        await Kit.EventuallyAsync(() => Task.FromResult(stream.Payloads.Count >= 2 && string.Concat(stream.Payloads.Select(p =>
            (string)JsonNode.Parse(p)!["delta"]!)) == answer), TimeSpan.FromSeconds(10), "the stream notifications");
        var deltas = stream.Payloads.Select(p => JsonNode.Parse(p)!.AsObject()).ToList();
        Assert.True(deltas.Count >= 2);
        Assert.All(deltas, d =>
        {
            Assert.Equal(turn.ToString(), (string)d["turn_id"]!);
            Assert.Equal(conv.ToString(), (string)d["conversation_id"]!);
        });
        Assert.Equal(Enumerable.Range(1, deltas.Count).Select(i => (long)i), deltas.Select(d => (long)d["seq"]!));
        Assert.Contains(events, e => e.Kind == WorkerEventKind.StreamDelta);
        Assert.Contains(events, e => e.Kind == WorkerEventKind.ToolFinished && e.ToolName == "clock" && e.Status == "ok");
        Assert.Contains(events, e => e.Kind == WorkerEventKind.TurnFinished && e.Status == "completed");

        var state = await t.App.GetTurnStateAsync(turn);
        Assert.True((long)state["tokens_used"]! > 0);
        Assert.True((await t.App.VerifyEventChainAsync()).Ok);
    }

    [Fact]
    public async Task AnAnswerCompleteBeforeTheFirstFlushIsNotStreamedItsStepCarriesIt()
    {
        // An instant model: every delta arrives within the flush interval, so no notification is
        // sent (each would be a transaction); the answer is in the respond step all the same.
        var t = await Kit.TenantAsync(db, "instant", [], Kit.Script(new { text = "An instant answer, in several pieces, from the stand-in." }));
        var (_, turn) = await t.AskAsync("Quick?");
        await using var stream = await ChannelListener.StartAsync(db.ConnectionString(TestCluster.App), await t.App.StreamChannelAsync());
        await using var host = new WorkerHost(t.WorkerSource, Kit.Options("w-instant") with
        {
            TenantId = t.Tenant, StreamFlushInterval = TimeSpan.FromSeconds(5),
        });
        var deltas = 0;
        host.Event += e => { if (e.Kind == WorkerEventKind.StreamDelta) { Interlocked.Increment(ref deltas); } };
        Assert.Equal(1, await host.RunUntilIdleAsync(CancellationToken.None));
        Assert.Equal("completed", await t.StatusAsync(turn));
        var state = await t.App.GetTurnStateAsync(turn);
        Assert.Equal("An instant answer, in several pieces, from the stand-in.", (string)state["assistant_message"]!);
        Assert.True(deltas >= 2, $"the model streamed {deltas} pieces");
        // a barrier on the channel: once it is back, anything the worker sent before has arrived
        await t.App.NotifyAsync(await t.App.StreamChannelAsync(), "barrier");
        await Kit.EventuallyAsync(() => Task.FromResult(stream.Payloads.Contains("barrier")), TimeSpan.FromSeconds(10), "the barrier");
        Assert.Equal(["barrier"], stream.Payloads);
    }

    [Fact]
    public async Task TheSlotThatFinishesATurnTakesTheConversationsNextOneWithoutWakingOthers()
    {
        var t = await Kit.TenantAsync(db, "handback", []);
        var (conv, first) = await t.AskAsync("first");
        var second = await t.App.SendMessageAsync(conv, "second");
        await using var ready = await ChannelListener.StartAsync(db.ConnectionString(TestCluster.App), AosNotifications.TurnReady);
        await using var done = await ChannelListener.StartAsync(db.ConnectionString(TestCluster.App), AosNotifications.TurnDone);
        await using var host = new WorkerHost(t.WorkerSource, Kit.Options("w-handback") with { TenantId = t.Tenant });
        Assert.Equal(2, await host.RunUntilIdleAsync(CancellationToken.None));
        Assert.Equal("completed", await t.StatusAsync(first));
        Assert.Equal("completed", await t.StatusAsync(second));
        await t.App.NotifyAsync(AosNotifications.TurnReady, "barrier");
        await Kit.EventuallyAsync(() => Task.FromResult(ready.Payloads.Contains("barrier")), TimeSpan.FromSeconds(10), "the barrier");
        // the second turn became ready when the first completed; nobody was woken for it
        Assert.DoesNotContain(second.ToString(), ready.Payloads);
        // both completions were announced (the first in the claim of the second, the second in the
        // last, empty claim), each once
        await t.App.NotifyAsync(AosNotifications.TurnDone, "barrier");
        await Kit.EventuallyAsync(() => Task.FromResult(done.Payloads.Contains("barrier")), TimeSpan.FromSeconds(10), "the barrier");
        Assert.Equal([first.ToString(), second.ToString(), "barrier"], done.Payloads);
    }

    [Fact]
    public async Task AHostListensOnlyWhileASlotIsIdle()
    {
        // Every listening backend reads every notification of the database in a transaction of its
        // own: a host whose slots are all busy must not listen, and must listen again when one is idle.
        var t = await Kit.TenantAsync(db, "gate", [], Kit.Script(new { text = "a slow answer", delay_ms = 4000 }));
        await using var su = new NpgsqlConnection(db.ConnectionString(null));
        await su.OpenAsync();
        async Task<int> ListenersAsync()
        {
            await using var cmd = new NpgsqlCommand(
                "SELECT count(*)::int FROM pg_stat_activity WHERE datname = current_database() AND usename = @login " +
                "AND state = 'idle' AND query = 'LISTEN \"aos_turn_ready\"'", su);
            cmd.Parameters.AddWithValue("login", TestCluster.Worker);
            return (int)(await cmd.ExecuteScalarAsync())!;
        }
        await using var host = new WorkerHost(t.WorkerSource, Kit.Options("w-gate") with { TenantId = t.Tenant });
        using var cts = new CancellationTokenSource();
        var run = host.RunAsync(cts.Token);
        await Kit.EventuallyAsync(async () => await ListenersAsync() == 1, TimeSpan.FromSeconds(10), "the idle host to listen");

        var (_, first) = await t.AskAsync("take your time");
        // (one wait for both: the host can drop its LISTEN for a moment while its idle slot claims)
        await Kit.EventuallyAsync(async () => await ListenersAsync() == 0 && await t.StatusAsync(first) == "running", TimeSpan.FromSeconds(10),
            "the busy host to stop listening while it runs the turn");
        // and it stays so while the slot is busy (over more than two poll intervals of 200 ms)
        for (var i = 0; i < 5; i++)
        {
            await Task.Delay(100);
            Assert.Equal("running", await t.StatusAsync(first));
            Assert.Equal(0, await ListenersAsync());
        }
        await Kit.EventuallyAsync(async () => await t.StatusAsync(first) == "completed", TimeSpan.FromSeconds(20), "the first turn");
        await Kit.EventuallyAsync(async () => await ListenersAsync() == 1, TimeSpan.FromSeconds(10), "the idle host to listen again");

        // and it still takes new work
        var (_, second) = await t.AskAsync("again");
        await Kit.EventuallyAsync(async () => await t.StatusAsync(second) == "completed", TimeSpan.FromSeconds(20), "the second turn");
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task WithoutAScriptTheStandInEchoesWithALabel()
    {
        var t = await Kit.TenantAsync(db, "echo", []);
        var (_, turn) = await t.AskAsync("hello there");
        await using var host = new WorkerHost(t.WorkerSource, Kit.Options("w-echo") with { TenantId = t.Tenant });
        Assert.Equal(1, await host.RunUntilIdleAsync(CancellationToken.None));
        var state = await t.App.GetTurnStateAsync(turn);
        Assert.Equal("completed", (string)state["status"]!);
        Assert.Equal($"{ScriptedChatClient.EchoLabel} You said: hello there", (string)state["assistant_message"]!);
    }

    [Fact]
    public async Task AutoApprovedToolsRunWithoutStoppingAndRunAsyncStopsCleanly()
    {
        var t = await Kit.TenantAsync(db, "auto", ["clock", "memory_write", "memory_read"], new JsonObject
        {
            ["auto_approve_tools"] = true,
            ["script"] = new JsonArray(
                new JsonObject { ["tool_calls"] = new JsonArray(new JsonObject { ["name"] = "memory_write", ["arguments"] = new JsonObject { ["key"] = "color", ["value"] = "green" } }) },
                new JsonObject { ["tool_calls"] = new JsonArray(new JsonObject { ["name"] = "memory_read", ["arguments"] = new JsonObject { ["key"] = "color" } }) },
                new JsonObject { ["text"] = "remembered {{tool:memory_read}}" }),
        });
        var (_, turn) = await t.AskAsync("remember a color");
        await using var host = new WorkerHost(t.WorkerSource, Kit.Options("w-auto", concurrency: 2) with { TenantId = t.Tenant });
        using var cts = new CancellationTokenSource();
        var run = host.RunAsync(cts.Token);
        await Kit.EventuallyAsync(async () => await t.StatusAsync(turn) == "completed", TimeSpan.FromSeconds(20), "the turn to complete");
        await cts.CancelAsync();
        await run;
        var answer = (string)(await t.App.GetTurnStateAsync(turn))["assistant_message"]!;
        Assert.Contains("\"value\":\"green\"", answer.Replace(" ", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    /// <summary>Keeps what the model was sent, call by call.</summary>
    private sealed class CallSpy(IChatClient inner, List<List<ChatMessage>> calls) : DelegatingChatClient(inner)
    {
        public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            CancellationToken cancellationToken = default)
        {
            lock (calls)
            {
                calls.Add([.. messages]);
            }
            return base.GetStreamingResponseAsync(messages, options, cancellationToken);
        }

        public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            CancellationToken cancellationToken = default)
        {
            lock (calls)
            {
                calls.Add([.. messages]);
            }
            return base.GetResponseAsync(messages, options, cancellationToken);
        }
    }

    [Fact]
    public async Task AfterAToolTheModelSeesTheEarlierTurnsAndThisOnesResult()
    {
        // After a tool, the worker reads only the turn's own part of the context (refresh_turn) and
        // keeps the earlier turns' messages from its claim: the model's next call must still see
        // the whole conversation, in order.
        var config = Kit.Script(
            new { tool_calls = new[] { new { name = "clock", arguments = new { timezone = "UTC" } } } },
            new { text = "answer to {{user}}" });
        config["auto_approve_tools"] = true;
        var t = await Kit.TenantAsync(db, "refresh", ["clock"], config);
        var (conv, first) = await t.AskAsync("first question");
        var calls = new List<List<ChatMessage>>();
        await using var host = new WorkerHost(t.WorkerSource, Kit.Options("w-refresh") with
        {
            TenantId = t.Tenant,
            ChatClientMiddleware = inner => new CallSpy(inner, calls),
        });
        await host.RunUntilIdleAsync(CancellationToken.None);
        Assert.Equal("completed", await t.StatusAsync(first));
        var second = await t.App.SendMessageAsync(conv, "second question");
        await host.RunUntilIdleAsync(CancellationToken.None);
        Assert.Equal("completed", await t.StatusAsync(second));

        Assert.Equal(4, calls.Count);   // two model calls per turn: the tool call, the answer after it
        var last = calls[^1];
        Assert.Equal(["first question", "second question"], last.Where(m => m.Role == ChatRole.User).Select(m => m.Text).ToList());
        Assert.Equal(2, last.SelectMany(m => m.Contents).OfType<FunctionResultContent>().Count());
        Assert.Equal(2, last.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Count());
        Assert.Contains(last, m => m.Role == ChatRole.Assistant && m.Text.Contains("answer to first question", StringComparison.Ordinal));
        // the same messages, in the same order, as a full read of the context gives
        var full = calls[^2].Count + 2;  // the turn's first call, then its tool call and the result
        Assert.Equal(full, last.Count);
        Assert.Equal(calls[^2].Select(m => (m.Role, m.Text)), last.Take(calls[^2].Count).Select(m => (m.Role, m.Text)));
    }
}
