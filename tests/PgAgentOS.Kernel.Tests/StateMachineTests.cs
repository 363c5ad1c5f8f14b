using System.Text.Json.Nodes;
using Npgsql;

namespace PgAgentOS.Kernel.Tests;

/// <summary>
/// The turn, step and dispatch state machines of docs/state-machines.md: every allowed transition happens through the
/// public functions, every refused one raises our SQLSTATE (asserted by code, never by text) and changes nothing.
/// </summary>
public sealed class StateMachineTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    private async Task<(NpgsqlConnection Conn, World W)> SetupAsync(string config = "{}")
    {
        var conn = await db.OpenAsync(TestCluster.Admin);
        var w = await K.NewWorldAsync(conn, config);
        return (conn, w);
    }

    private static async Task<JsonNode?> ClaimAsync(NpgsqlConnection worker, Guid tenant, int leaseSeconds = 30, string id = "w1") =>
        JsonNode.Parse(await worker.ScalarAsync<string>("SELECT aos_agent.claim_turn($1, $2, $3)::text", id, leaseSeconds, tenant) ?? "null");

    private static Guid Token(JsonNode? claim) => Guid.Parse((string)claim!["lease_token"]!);

    // ------------------------------------------------------------------------------------------
    // Turns driven by hand (the spec's section 5)
    // ------------------------------------------------------------------------------------------

    [Fact]
    public async Task AManualTurnGoesQueuedRunningWaitingRunningCompleted()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        var c = await conn.NewConversationAsync(w.Agent);
        Assert.Equal("idle", await conn.RunStateAsync(c));
        var t = await conn.SendAsync(c);
        Assert.Equal("queued", await conn.TurnStatusAsync(t));
        Assert.Equal("ready", await conn.RunStateAsync(c));

        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t);
        Assert.Equal("running", await conn.TurnStatusAsync(t));
        Assert.Equal("manual", await conn.RunStateAsync(c));
        Assert.Equal("manual", await conn.ScalarAsync<string>("SELECT driver FROM aos_agent.turn WHERE turn_id = $1", t));

        var think = await conn.ScalarAsync<Guid>("SELECT aos_agent.record_thinking($1, 'search first', 'web_search')", t);
        Assert.Equal("completed", await conn.StepStatusAsync(think));

        var call = await conn.JsonAsync("SELECT aos_agent.process_tool_call($1, 'web_search', '{\"query\": \"asyncio\"}')::text", t);
        Assert.Equal("awaiting_approval", (string?)call["status"]);
        var step = Guid.Parse((string)call["step_id"]!);
        Assert.Equal("pending", await conn.StepStatusAsync(step));
        Assert.Equal("waiting_tool", await conn.TurnStatusAsync(t));
        Assert.Equal("waiting", await conn.RunStateAsync(c));

        await conn.ExecAsync("SELECT aos_agent.approve_step($1, true, $2, 'fine')", step, w.Admin);
        Assert.Equal("approved", await conn.StepStatusAsync(step));
        Assert.Equal("running", await conn.TurnStatusAsync(t)); // back to its manual driver
        Assert.Equal("manual", await conn.RunStateAsync(c));

        await conn.ExecAsync("SELECT aos_agent.record_tool_result($1, 'web_search', '{\"hits\": 3}')", t);
        Assert.Equal("completed", await conn.StepStatusAsync(step));
        await conn.ExecAsync("SELECT aos_agent.complete_turn($1, 'Use asyncio.run', 100, 0.001)", t);
        Assert.Equal("completed", await conn.TurnStatusAsync(t));
        Assert.Equal("idle", await conn.RunStateAsync(c));
        Assert.Equal(["user_message", "think", "tool_call", "tool_result", "respond"],
            await conn.ColumnAsync("SELECT step_type FROM aos_agent.step WHERE turn_id = $1 ORDER BY step_number", t));
        // one attempt, parked while it waited for the approval, then run on by its manual driver
        Assert.Equal(["parked", "succeeded"], await conn.ColumnAsync("SELECT status FROM aos_core.run WHERE turn_id = $1 ORDER BY started_at", t));
    }

    [Fact]
    public async Task ARejectedCallTellsTheModelAndTheTurnGoesOn()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        var c = await conn.NewConversationAsync(w.Agent);
        var t = await conn.SendAsync(c);
        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t);
        var step = Guid.Parse((string)(await conn.JsonAsync(
            "SELECT aos_agent.process_tool_call($1, 'code_execute', '{\"code\": \"1+1\"}')::text", t))["step_id"]!);
        await conn.ExecAsync("SELECT aos_agent.approve_step($1, false, $2, 'no code today')", step, w.Admin);
        Assert.Equal("rejected", await conn.StepStatusAsync(step));
        Assert.Equal("running", await conn.TurnStatusAsync(t));
        var result = await conn.JsonAsync(
            "SELECT content::text FROM aos_agent.step WHERE parent_step_id = $1 AND step_type = 'tool_result'", step);
        Assert.False((bool)result["success"]!);
        // the rejection is in the next model call's messages
        var ctx = await conn.JsonAsync("SELECT aos_agent.run_turn($1)::text", t);
        Assert.Contains(ctx["messages"]!.AsArray(), m => (string?)m!["role"] == "tool" && ((string?)m["content"])!.Contains("rejected", StringComparison.Ordinal));
        // a rejected call has no result to record
        await conn.RefusedAsync("AO005", "SELECT aos_agent.record_tool_result($1, 'code_execute', '{}')", t);
        await conn.ExecAsync("SELECT aos_agent.complete_turn($1, 'I will not run code.')", t);
        Assert.Equal("completed", await conn.TurnStatusAsync(t));
    }

    [Fact]
    public async Task AnAutoApprovedCallRunsWithoutWaiting()
    {
        var (conn, w) = await SetupAsync("""{"auto_approve_tools": true}""");
        await using var _ = conn;
        var c = await conn.NewConversationAsync(w.Agent);
        var t = await conn.SendAsync(c);
        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t);
        var call = await conn.JsonAsync("SELECT aos_agent.process_tool_call($1, 'web_search', '{\"query\": \"x\"}')::text", t);
        Assert.Equal("approved", (string?)call["status"]);
        Assert.Equal("auto", (string?)call["decided_by"]);
        Assert.Equal("running", await conn.TurnStatusAsync(t));
        // code_execute requires approval even when the agent auto-approves
        var held = await conn.JsonAsync("SELECT aos_agent.process_tool_call($1, 'code_execute', '{\"code\": \"1\"}')::text", t);
        Assert.Equal("awaiting_approval", (string?)held["status"]);
        Assert.Equal("waiting_tool", await conn.TurnStatusAsync(t));
    }

    [Fact]
    public async Task RefusedTurnTransitionsRaiseTheirCodesAndChangeNothing()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        var c = await conn.NewConversationAsync(w.Agent);
        var t1 = await conn.SendAsync(c, "first");
        var t2 = await conn.SendAsync(c, "second");
        var before = await K.FingerprintAsync(db);

        // a turn waits for the earlier one of its conversation
        await conn.RefusedAsync("AO003", "SELECT aos_agent.run_turn($1)", t2);
        // writes to a turn nobody started
        await conn.RefusedAsync("AO003", "SELECT aos_agent.record_thinking($1, 'x')", t1);
        await conn.RefusedAsync("AO003", "SELECT aos_agent.complete_turn($1, 'x')", t1);
        // writes to a later turn while the first is active
        await conn.RefusedAsync("AO003", "SELECT aos_agent.process_tool_call($1, 'web_search', '{\"query\": \"q\"}')", t2);
        // override of a turn that did not complete
        await conn.RefusedAsync("AO003", "SELECT aos_agent.override_response($1, 'better')", t1);
        // close with a turn in progress
        await conn.RefusedAsync("AO003", "SELECT aos_agent.close_conversation($1)", c);
        // resume what is not paused
        await conn.RefusedAsync("AO003", "SELECT aos_agent.resume_conversation($1)", c);
        Assert.Equal(before, await K.FingerprintAsync(db));

        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t1);
        await conn.ExecAsync("SELECT aos_agent.complete_turn($1, 'done')", t1);
        before = await K.FingerprintAsync(db);
        // a finished turn does not change
        await conn.RefusedAsync("AO003", "SELECT aos_agent.complete_turn($1, 'again')", t1);
        await conn.RefusedAsync("AO003", "SELECT aos_agent.record_thinking($1, 'late thought')", t1);
        await conn.RefusedAsync("AO003", "SELECT aos_agent.fail_turn($1, 'late error')", t1);
        await conn.RefusedAsync("AO003", "SELECT aos_agent.cancel_turn($1)", t1);
        await conn.RefusedAsync("AO003", "SELECT aos_agent.process_tool_call($1, 'web_search', '{\"query\": \"q\"}')", t1);
        Assert.Equal(before, await K.FingerprintAsync(db));
        // ... but turn 2 is now the active one
        Assert.Equal("ready", await conn.RunStateAsync(c));
        Assert.Equal(t2, await conn.ScalarAsync<Guid>("SELECT active_turn_id FROM aos_agent.conversation WHERE conversation_id = $1", c));
    }

    [Fact]
    public async Task ApprovalsAreDecidedOnceAndOnlyForToolCalls()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        var c = await conn.NewConversationAsync(w.Agent);
        var t = await conn.SendAsync(c);
        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t);
        var think = await conn.ScalarAsync<Guid>("SELECT aos_agent.record_thinking($1, 'hmm')", t);
        var step = Guid.Parse((string)(await conn.JsonAsync(
            "SELECT aos_agent.process_tool_call($1, 'web_search', '{\"query\": \"q\"}')::text", t))["step_id"]!);

        var before = await K.FingerprintAsync(db);
        await conn.RefusedAsync("AO003", "SELECT aos_agent.approve_step($1, true, $2)", think, w.Admin);
        await conn.RefusedAsync("AO002", "SELECT aos_agent.approve_step($1, true, $2)", Guid.NewGuid(), w.Admin);
        await conn.RefusedAsync("AO005", "SELECT aos_agent.record_tool_result($1, 'web_search', '{}')", t);
        Assert.Equal(before, await K.FingerprintAsync(db));

        await conn.ExecAsync("SELECT aos_agent.approve_step($1, true, $2)", step, w.Admin);
        before = await K.FingerprintAsync(db);
        await conn.RefusedAsync("AO009", "SELECT aos_agent.approve_step($1, true, $2)", step, w.Admin);
        await conn.RefusedAsync("AO009", "SELECT aos_agent.approve_step($1, false, $2)", step, w.Admin);
        await conn.RefusedAsync("AO009", "SELECT aos_agent.bulk_approve_tools(ARRAY[$1::uuid], $2)", step, w.Admin);
        Assert.Equal(before, await K.FingerprintAsync(db));
        Assert.Equal(1L, await conn.ScalarAsync<long>("SELECT count(*) FROM aos_agent.approval WHERE step_id = $1", step));
    }

    [Fact]
    public async Task BulkApprovalIsAllOrNothing()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        var c1 = await conn.NewConversationAsync(w.Agent);
        var c2 = await conn.NewConversationAsync(w.Agent);
        var steps = new List<Guid>();
        foreach (var c in new[] { c1, c2 })
        {
            var t = await conn.SendAsync(c);
            await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t);
            steps.Add(Guid.Parse((string)(await conn.JsonAsync(
                "SELECT aos_agent.process_tool_call($1, 'web_search', '{\"query\": \"q\"}')::text", t))["step_id"]!));
        }
        var before = await K.FingerprintAsync(db);
        await conn.RefusedAsync("AO002", "SELECT aos_agent.bulk_approve_tools(ARRAY[$1::uuid, $2::uuid, $3::uuid], $4)",
            steps[0], steps[1], Guid.NewGuid(), w.Admin);
        Assert.Equal(before, await K.FingerprintAsync(db));
        Assert.Equal(2, await conn.ScalarAsync<int>("SELECT aos_agent.bulk_approve_tools(ARRAY[$1::uuid, $2::uuid, $1::uuid], $3)",
            steps[0], steps[1], w.Admin));
        Assert.Equal(["approved", "approved"],
            await conn.ColumnAsync("SELECT status FROM aos_agent.step WHERE step_id = ANY($1)", steps.ToArray()));
        Assert.Equal(["manual", "manual"],
            await conn.ColumnAsync("SELECT run_state FROM aos_agent.conversation WHERE conversation_id IN ($1, $2)", c1, c2));
    }

    // ------------------------------------------------------------------------------------------
    // Pause, resume, cancel
    // ------------------------------------------------------------------------------------------

    [Fact]
    public async Task WritesAfterPauseAreRefusedUntilResume()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        var c = await conn.NewConversationAsync(w.Agent);
        var t = await conn.SendAsync(c);
        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t);
        await conn.ExecAsync("SELECT aos_agent.pause_conversation($1, 'looking')", c);
        Assert.Equal("waiting_human", await conn.TurnStatusAsync(t));
        Assert.Equal("waiting", await conn.RunStateAsync(c));

        var before = await K.FingerprintAsync(db);
        await conn.RefusedAsync("AO008", "SELECT aos_agent.record_thinking($1, 'x')", t);
        await conn.RefusedAsync("AO008", "SELECT aos_agent.process_tool_call($1, 'web_search', '{\"query\": \"q\"}')", t);
        await conn.RefusedAsync("AO008", "SELECT aos_agent.complete_turn($1, 'x')", t);
        await conn.RefusedAsync("AO008", "SELECT aos_agent.fail_turn($1, 'x')", t);
        await conn.RefusedAsync("AO008", "SELECT aos_agent.run_turn($1)", t);
        await conn.RefusedAsync("AO003", "SELECT aos_agent.pause_conversation($1)", c);
        Assert.Equal(before, await K.FingerprintAsync(db));

        // a message sent while paused waits too
        var t2 = await conn.SendAsync(c, "and then?");
        Assert.Equal("queued", await conn.TurnStatusAsync(t2));

        await conn.ExecAsync("SELECT aos_agent.resume_conversation($1)", c);
        Assert.Equal("running", await conn.TurnStatusAsync(t));
        Assert.Equal("manual", await conn.RunStateAsync(c));
        await conn.ExecAsync("SELECT aos_agent.complete_turn($1, 'done')", t);
        Assert.Equal(["pause", "resume", "respond"],
            await conn.ColumnAsync("SELECT step_type FROM aos_agent.step WHERE turn_id = $1 AND step_number > 1 ORDER BY step_number", t));
        Assert.Equal("ready", await conn.RunStateAsync(c));
        Assert.Equal(t2, await conn.ScalarAsync<Guid>("SELECT active_turn_id FROM aos_agent.conversation WHERE conversation_id = $1", c));
    }

    [Fact]
    public async Task PauseOfAnIdleOrQueuedConversationHoldsItsNextTurn()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        await using var worker = await db.OpenAsync(TestCluster.Worker);
        var c = await conn.NewConversationAsync(w.Agent);
        await conn.ExecAsync("SELECT aos_agent.pause_conversation($1)", c);
        var t = await conn.SendAsync(c);
        Assert.Equal("waiting", await conn.RunStateAsync(c));
        Assert.Null(await ClaimAsync(worker, w.Tenant));
        await conn.ExecAsync("SELECT aos_agent.resume_conversation($1)", c);
        Assert.Equal("ready", await conn.RunStateAsync(c));

        await conn.ExecAsync("SELECT aos_agent.pause_conversation($1)", c);
        Assert.Equal("waiting", await conn.RunStateAsync(c));
        Assert.Null(await ClaimAsync(worker, w.Tenant));
        await conn.ExecAsync("SELECT aos_agent.resume_conversation($1)", c);
        var claim = await ClaimAsync(worker, w.Tenant);
        Assert.Equal(t, Guid.Parse((string)claim!["turn_id"]!));
    }

    [Fact]
    public async Task CancelEndsQueuedRunningAndWaitingTurns()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        await using var worker = await db.OpenAsync(TestCluster.Worker);
        var c = await conn.NewConversationAsync(w.Agent);
        var t1 = await conn.SendAsync(c, "one");
        var t2 = await conn.SendAsync(c, "two");
        var t3 = await conn.SendAsync(c, "three");

        // a queued turn that is not active yet: cancelled, skipped later
        await conn.ExecAsync("SELECT aos_agent.cancel_turn($1, 'not needed')", t2);
        Assert.Equal("cancelled", await conn.TurnStatusAsync(t2));

        // a running turn held by a worker: the worker is stopped at its next write
        var claim = await ClaimAsync(worker, w.Tenant);
        Assert.Equal(t1, Guid.Parse((string)claim!["turn_id"]!));
        await conn.ExecAsync("SELECT aos_agent.cancel_turn($1)", t1);
        Assert.Equal("cancelled", await conn.TurnStatusAsync(t1));
        await worker.RefusedAsync("AO003", "SELECT aos_agent.record_response($1, $2, '{\"text\": \"late\"}')", t1, Token(claim));
        Assert.Equal(["cancelled"], await conn.ColumnAsync("SELECT status FROM aos_core.run WHERE turn_id = $1", t1));

        // the next runnable turn is three (two was cancelled); waiting for approval, then cancelled
        Assert.Equal(t3, await conn.ScalarAsync<Guid>("SELECT active_turn_id FROM aos_agent.conversation WHERE conversation_id = $1", c));
        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t3);
        var step = Guid.Parse((string)(await conn.JsonAsync(
            "SELECT aos_agent.process_tool_call($1, 'web_search', '{\"query\": \"q\"}')::text", t3))["step_id"]!);
        await conn.ExecAsync("SELECT aos_agent.cancel_turn($1)", t3);
        Assert.Equal("cancelled", await conn.StepStatusAsync(step));
        Assert.Equal("idle", await conn.RunStateAsync(c));
        await conn.RefusedAsync("AO009", "SELECT aos_agent.approve_step($1, true, $2)", step, w.Admin);
        await conn.RefusedAsync("AO003", "SELECT aos_agent.cancel_turn($1)", t3);
        Assert.Empty(await conn.ColumnAsync("SELECT 1 FROM aos_agent.tool_call_queue"));
    }

    [Fact]
    public async Task AClosedConversationTakesNoMessages()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        var c = await conn.NewConversationAsync(w.Agent);
        await conn.ExecAsync("SELECT aos_agent.close_conversation($1)", c);
        var before = await K.FingerprintAsync(db);
        await conn.RefusedAsync("AO003", "SELECT aos_agent.send_message($1, 'hello?')", c);
        await conn.RefusedAsync("AO003", "SELECT aos_agent.close_conversation($1)", c);
        await conn.RefusedAsync("AO003", "SELECT aos_agent.pause_conversation($1)", c);
        Assert.Equal(before, await K.FingerprintAsync(db));
    }

    // ------------------------------------------------------------------------------------------
    // Failures, retries, dead turns
    // ------------------------------------------------------------------------------------------

    [Fact]
    public async Task FailTurnWithRetryQueuesAgainUntilAttemptsRunOut()
    {
        var (conn, w) = await SetupAsync("""{"max_attempts": 2}""");
        await using var _ = conn;
        var c = await conn.NewConversationAsync(w.Agent);
        var t = await conn.SendAsync(c);
        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t);
        Assert.Equal("retry", await conn.ScalarAsync<string>("SELECT aos_agent.fail_turn($1, 'provider timeout', NULL, NULL, true)", t));
        Assert.Equal("queued", await conn.TurnStatusAsync(t));
        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t);
        Assert.Equal(2, await conn.ScalarAsync<int>("SELECT attempt FROM aos_agent.turn WHERE turn_id = $1", t));
        Assert.Equal("failed", await conn.ScalarAsync<string>("SELECT aos_agent.fail_turn($1, 'provider timeout again', NULL, NULL, true)", t));
        Assert.Equal("failed", await conn.TurnStatusAsync(t));
        var errors = (await conn.JsonAsync("SELECT errors::text FROM aos_agent.turn WHERE turn_id = $1", t)).AsArray();
        Assert.Equal(["provider timeout", "provider timeout again"], errors.Select(e => (string)e!["error"]!));
        Assert.Equal(["failed", "failed"], await conn.ColumnAsync("SELECT status FROM aos_core.run WHERE turn_id = $1 ORDER BY attempt", t));
        Assert.Equal("idle", await conn.RunStateAsync(c));
    }

    [Fact]
    public async Task AManualDispatchConversationIsNeverHandedToWorkers()
    {
        var (conn, w) = await SetupAsync("""{"dispatch": "manual"}""");
        await using var _ = conn;
        await using var worker = await db.OpenAsync(TestCluster.Worker);
        var c = await conn.NewConversationAsync(w.Agent);
        var t = await conn.SendAsync(c);
        Assert.Equal("manual", await conn.RunStateAsync(c));
        Assert.Null(await ClaimAsync(worker, w.Tenant));
        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t);
        Assert.Equal("retry", await conn.ScalarAsync<string>("SELECT aos_agent.fail_turn($1, 'flaky', NULL, NULL, true)", t));
        Assert.Equal("manual", await conn.RunStateAsync(c));
        Assert.Null(await ClaimAsync(worker, w.Tenant));
        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t);
        await conn.ExecAsync("SELECT aos_agent.complete_turn($1, 'ok')", t);
        Assert.Equal("completed", await conn.TurnStatusAsync(t));
    }

    [Fact]
    public async Task BudgetsEndTurns()
    {
        var (conn, w) = await SetupAsync("""{"max_iterations": 1, "max_tokens_per_turn": 100}""");
        await using var _ = conn;
        var c = await conn.NewConversationAsync(w.Agent);
        var t = await conn.SendAsync(c);
        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t);
        await conn.ExecAsync("SELECT aos_agent.record_thinking($1, 'first response')", t);
        // a second model response would be iteration 2
        await conn.ExecAsync("SELECT aos_agent.inject_message($1, 'think again', $2)", c, w.Admin);
        await conn.RefusedAsync("AO007", "SELECT aos_agent.record_thinking($1, 'second response')", t);

        var t2Conv = await conn.NewConversationAsync(w.Agent);
        var t2 = await conn.SendAsync(t2Conv);
        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t2);
        var r = await conn.JsonAsync("""SELECT aos_agent.record_response($1, NULL, '{"thinking": "long", "usage": {"input_tokens": 90, "output_tokens": 20}}')::text""", t2);
        Assert.Equal("failed", (string?)r["status"]);
        Assert.Equal("failed", await conn.TurnStatusAsync(t2));
        Assert.Equal(110L, await conn.ScalarAsync<long>("SELECT tokens_used FROM aos_agent.turn WHERE turn_id = $1", t2));
    }

    // ------------------------------------------------------------------------------------------
    // Workers: claims, leases, tickets
    // ------------------------------------------------------------------------------------------

    [Fact]
    public async Task AWorkerTurnWithApprovalAndTicket()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        await using var worker = await db.OpenAsync(TestCluster.Worker);
        var c = await conn.NewConversationAsync(w.Agent);
        var t = await conn.SendAsync(c);
        var claim = await ClaimAsync(worker, w.Tenant);
        Assert.Equal("leased", await conn.RunStateAsync(c));
        Assert.Equal("running", await conn.TurnStatusAsync(t));
        Assert.Null(await ClaimAsync(worker, w.Tenant));
        // nobody else drives a leased turn
        await conn.RefusedAsync("AO003", "SELECT aos_agent.run_turn($1)", t);
        await conn.RefusedAsync("AO003", "SELECT aos_agent.record_thinking($1, 'x')", t);

        var r = await worker.JsonAsync("""
            SELECT aos_agent.record_response($1, $2, '{"thinking": "look it up", "tool_calls": [{"id": "c1", "name": "web_search", "arguments": {"query": "q"}}]}')::text
            """, t, Token(claim));
        Assert.Equal("waiting_approval", (string?)r["status"]);
        var step = Guid.Parse((string)r["tool_calls"]![0]!["step_id"]!);
        Assert.Equal("waiting", await conn.RunStateAsync(c));
        Assert.Equal(["parked"], await conn.ColumnAsync("SELECT status FROM aos_core.run WHERE turn_id = $1", t));
        await worker.RefusedAsync("AO004", "SELECT aos_agent.heartbeat($1, $2)", t, Token(claim));
        Assert.Null(await ClaimAsync(worker, w.Tenant));

        await conn.ExecAsync("SELECT aos_agent.approve_step($1, true, $2)", step, w.Admin);
        Assert.Equal("ready", await conn.RunStateAsync(c));
        Assert.Equal("queued", await conn.TurnStatusAsync(t));
        var claim2 = await ClaimAsync(worker, w.Tenant, id: "w2");
        Assert.Equal(2, (int)claim2!["attempt"]!);
        var approved = claim2["approved_tool_calls"]!.AsArray().Single()!;
        Assert.Equal(step, Guid.Parse((string)approved["step_id"]!));

        // the ticket is bound to the step, the tool and the exact arguments
        await worker.RefusedAsync("AO005", "SELECT aos_agent.begin_tool_execution($1, $2, $3, 'web_search', '{\"query\": \"other\"}')",
            t, Token(claim2), step);
        await worker.RefusedAsync("AO005", "SELECT aos_agent.begin_tool_execution($1, $2, $3, 'code_execute', '{\"query\": \"q\"}')",
            t, Token(claim2), step);
        await worker.RefusedAsync("AO004", "SELECT aos_agent.begin_tool_execution($1, $2, $3, 'web_search', '{\"query\": \"q\"}')",
            t, Token(claim), step);
        var ticket = await worker.ScalarAsync<Guid>("SELECT aos_agent.begin_tool_execution($1, $2, $3, 'web_search', '{\"query\": \"q\"}')",
            t, Token(claim2), step);
        Assert.Equal("executing", await conn.StepStatusAsync(step));
        await worker.RefusedAsync("AO005", "SELECT aos_agent.begin_tool_execution($1, $2, $3, 'web_search', '{\"query\": \"q\"}')",
            t, Token(claim2), step);
        // a worker must present the ticket, and a ticket is good for one result
        await worker.RefusedAsync("AO005", "SELECT aos_agent.record_tool_result($1, 'web_search', '{}', true, NULL, $2)", t, Token(claim2));
        await worker.ExecAsync("SELECT aos_agent.record_tool_result($1, 'web_search', '{\"hits\": 1}', true, NULL, $2, $3)", t, Token(claim2), ticket);
        await worker.RefusedAsync("AO005", "SELECT aos_agent.record_tool_result($1, 'web_search', '{}', true, NULL, $2, $3)", t, Token(claim2), ticket);
        Assert.Equal("completed", await conn.StepStatusAsync(step));

        await worker.ExecAsync("SELECT aos_agent.complete_turn($1, 'done', 0, NULL, $2, '{\"input_tokens\": 10, \"output_tokens\": 5}')", t, Token(claim2));
        Assert.Equal("completed", await conn.TurnStatusAsync(t));
        await worker.RefusedAsync("AO003", "SELECT aos_agent.complete_turn($1, 'again', 0, NULL, $2)", t, Token(claim2));
        Assert.Equal("idle", await conn.RunStateAsync(c));
    }

    [Fact]
    public async Task AClaimCanStartTheFirstApprovedCallAndOnlyThatOne()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        await using var worker = await db.OpenAsync(TestCluster.Worker);
        var c = await conn.NewConversationAsync(w.Agent);
        var t = await conn.SendAsync(c);
        var claim = await ClaimAsync(worker, w.Tenant);
        var r = await worker.JsonAsync("""
            SELECT aos_agent.record_response($1, $2, '{"tool_calls": [{"id": "c1", "name": "web_search", "arguments": {"query": "one"}},
                                                                 {"id": "c2", "name": "web_search", "arguments": {"query": "two"}}]}')::text
            """, t, Token(claim));
        var steps = r["tool_calls"]!.AsArray().Select(x => Guid.Parse((string)x!["step_id"]!)).ToList();
        await conn.ExecAsync("SELECT aos_agent.bulk_approve_tools($1, $2)", steps.ToArray(), w.Admin);
        var events = await conn.ScalarAsync<long>("SELECT event_seq FROM aos_agent.conversation WHERE conversation_id = $1", c);

        // claimed as the SDK does, committing without waiting for the WAL flush: a claim that hands out a
        // ticket makes its commit durable again (the tool runs before the worker writes anything else)
        JsonNode claim2;
        await using (var tx = await worker.BeginTransactionAsync())
        {
            await worker.ExecAsync("SET LOCAL synchronous_commit = off");
            claim2 = JsonNode.Parse(await worker.ScalarAsync<string>("SELECT aos_agent.claim_turn('w2', 30, $1, true)::text", w.Tenant))!;
            Assert.Equal("on", await worker.ScalarAsync<string>("SHOW synchronous_commit"));
            await tx.CommitAsync();
        }
        var calls = claim2["approved_tool_calls"]!.AsArray();
        Assert.Equal(steps, calls.Select(x => Guid.Parse((string)x!["step_id"]!)));
        // the first call started with the claim: its ticket, a running execution and a tool.started event
        var ticket = Guid.Parse((string)calls[0]!["ticket"]!);
        Assert.Null(calls[1]!["ticket"]);
        Assert.Equal(["executing", "approved"], [await conn.StepStatusAsync(steps[0]), await conn.StepStatusAsync(steps[1])]);
        Assert.Equal(["running"], await conn.ColumnAsync("SELECT status FROM aos_agent.tool_execution WHERE turn_id = $1", t));
        Assert.Equal(["turn.started", "tool.started"], await conn.ColumnAsync(
            "SELECT event_type FROM aos_core.event_log WHERE chain_id = $1 AND seq > $2 ORDER BY seq", c, events));
        // it is started once: begin_tool_execution refuses it, the ticket records its result
        await worker.RefusedAsync("AO005", "SELECT aos_agent.begin_tool_execution($1, $2, $3, 'web_search', '{\"query\": \"one\"}')",
            t, Token(claim2), steps[0]);
        await worker.ExecAsync("SELECT aos_agent.record_tool_result($1, 'web_search', '{\"hits\": 1}', true, NULL, $2, $3)", t, Token(claim2), ticket);
        Assert.Equal("completed", await conn.StepStatusAsync(steps[0]));
        // the second starts when the worker reaches it
        var ticket2 = await worker.ScalarAsync<Guid>("SELECT aos_agent.begin_tool_execution($1, $2, $3, 'web_search', '{\"query\": \"two\"}')",
            t, Token(claim2), steps[1]);
        await worker.ExecAsync("SELECT aos_agent.record_tool_result($1, 'web_search', '{\"hits\": 2}', true, NULL, $2, $3)", t, Token(claim2), ticket2);
        // the refreshed context of the lease holder starts nothing
        var ctx = await worker.JsonAsync("SELECT aos_agent.run_turn($1, $2)::text", t, Token(claim2));
        Assert.Empty(ctx["approved_tool_calls"]!.AsArray());
        Assert.True(await conn.ScalarAsync<bool>("SELECT (aos_core.verify_event_chain() ->> 'ok')::boolean"));
    }

    [Fact]
    public async Task ReleaseHandsATurnBackWithoutCountingAFailure()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        await using var worker = await db.OpenAsync(TestCluster.Worker);
        var c = await conn.NewConversationAsync(w.Agent);
        var t = await conn.SendAsync(c);
        var claim = await ClaimAsync(worker, w.Tenant);
        await worker.ExecAsync("SELECT aos_agent.release_turn($1, $2, 'shutting down')", t, Token(claim));
        Assert.Equal("queued", await conn.TurnStatusAsync(t));
        Assert.Equal("ready", await conn.RunStateAsync(c));
        Assert.Equal(0, await conn.ScalarAsync<int>("SELECT failures FROM aos_agent.turn WHERE turn_id = $1", t));
        await worker.RefusedAsync("AO004", "SELECT aos_agent.release_turn($1, $2)", t, Token(claim));
        var claim2 = await ClaimAsync(worker, w.Tenant);
        Assert.Equal(t, Guid.Parse((string)claim2!["turn_id"]!));
        // fail with retry, through a worker
        Assert.Equal("retry", await worker.ScalarAsync<string>("SELECT aos_agent.fail_turn($1, 'oops', $2, NULL, true)", t, Token(claim2)));
        Assert.Equal(1, await conn.ScalarAsync<int>("SELECT failures FROM aos_agent.turn WHERE turn_id = $1", t));
        Assert.Equal(["released", "failed"], await conn.ColumnAsync("SELECT status FROM aos_core.run WHERE turn_id = $1 ORDER BY attempt", t));
    }

    [Fact]
    public async Task WorkerWritesAfterPauseAreRefused()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        await using var worker = await db.OpenAsync(TestCluster.Worker);
        var c = await conn.NewConversationAsync(w.Agent);
        var t = await conn.SendAsync(c);
        var claim = await ClaimAsync(worker, w.Tenant);
        await conn.ExecAsync("SELECT aos_agent.pause_conversation($1)", c);
        var before = await K.FingerprintAsync(db);
        await worker.RefusedAsync("AO008", "SELECT aos_agent.heartbeat($1, $2)", t, Token(claim));
        await worker.RefusedAsync("AO008", "SELECT aos_agent.record_response($1, $2, '{\"text\": \"x\"}')", t, Token(claim));
        await worker.RefusedAsync("AO008", "SELECT aos_agent.complete_turn($1, 'x', 0, NULL, $2)", t, Token(claim));
        Assert.Equal(before, await K.FingerprintAsync(db));
        await conn.ExecAsync("SELECT aos_agent.resume_conversation($1)", c);
        // after the resume the old lease is gone for good: the turn is queued for a new claim
        await worker.RefusedAsync("AO004", "SELECT aos_agent.heartbeat($1, $2)", t, Token(claim));
        var claim2 = await ClaimAsync(worker, w.Tenant);
        Assert.Equal(t, Guid.Parse((string)claim2!["turn_id"]!));
    }

    [Fact]
    public async Task OnlyWorkersAndAdministratorsClaim()
    {
        foreach (var login in new[] { TestCluster.App, TestCluster.Analytics, TestCluster.Nobody })
        {
            await using var conn = await db.OpenAsync(login);
            Assert.Equal("42501", (await conn.ErrorAsync("SELECT aos_agent.claim_turn('me', 30)")).SqlState);
        }
        await using var worker = await db.OpenAsync(TestCluster.Worker);
        await worker.RefusedAsync("22023", "SELECT aos_agent.claim_turn('me', 0)");
        await worker.RefusedAsync("22004", "SELECT aos_agent.claim_turn(NULL, 30)");
        await worker.RefusedAsync("22023", "SELECT aos_agent.claim_turn('', 30)");
    }

    [Fact]
    public async Task AnInterruptedToolRunIsReRunOnlyWhenIdempotentElseReviewed()
    {
        var (conn, w) = await SetupAsync("""{"auto_approve_tools": true}""");
        await using var _ = conn;
        await using var worker = await db.OpenAsync(TestCluster.Worker);
        var c1 = await conn.NewConversationAsync(w.Agent);
        var c2 = await conn.NewConversationAsync(w.Agent);
        var t1 = await conn.SendAsync(c1, "search");
        var t2 = await conn.SendAsync(c2, "compute");

        // t1: web_search (idempotent, auto-approved) starts and its worker dies
        var a1 = await ClaimAsync(worker, w.Tenant, 30, "dies-1");
        Assert.Equal(t1, Guid.Parse((string)a1!["turn_id"]!));
        var r1 = await worker.JsonAsync("""
            SELECT aos_agent.record_response($1, $2, '{"tool_calls": [{"name": "web_search", "arguments": {"query": "q"}}]}')::text
            """, t1, Token(a1));
        var s1 = Guid.Parse((string)r1["tool_calls"]![0]!["step_id"]!);
        Assert.NotNull(r1["tool_calls"]![0]!["ticket"]);
        Assert.Equal("executing", await conn.StepStatusAsync(s1));

        // t2: code_execute (not idempotent) waits for approval, then starts, and its worker dies
        var a2 = await ClaimAsync(worker, w.Tenant, 30, "dies-2");
        Assert.Equal(t2, Guid.Parse((string)a2!["turn_id"]!));
        var r2 = await worker.JsonAsync("""
            SELECT aos_agent.record_response($1, $2, '{"tool_calls": [{"name": "code_execute", "arguments": {"code": "1+1"}}]}')::text
            """, t2, Token(a2));
        var s2 = Guid.Parse((string)r2["tool_calls"]![0]!["step_id"]!);
        await conn.ExecAsync("SELECT aos_agent.approve_step($1, true, $2)", s2, w.Admin);
        var a2b = await ClaimAsync(worker, w.Tenant, 30, "dies-3");
        Assert.Equal(t2, Guid.Parse((string)a2b!["turn_id"]!));
        await worker.ExecAsync("SELECT aos_agent.begin_tool_execution($1, $2, $3, 'code_execute', '{\"code\": \"1+1\"}')", t2, Token(a2b), s2);
        Assert.Equal("executing", await conn.StepStatusAsync(s2));

        // both workers are gone: their leases end now (set by hand, so that a slow machine cannot end
        // them early, while the claims above still expect the other conversation)
        await using (var su = await db.OpenAsync(null))
        {
            await su.ExecAsync("UPDATE aos_agent.conversation SET lease_expires_at = clock_timestamp() - interval '1 second' WHERE conversation_id IN ($1, $2)", c1, c2);
        }
        // the reclaim: t1's search is approved again (to be re-run), t2's code waits for a person
        var b1 = await ClaimAsync(worker, w.Tenant, 30, "next");
        Assert.Equal(t1, Guid.Parse((string)b1!["turn_id"]!));
        Assert.True((bool)b1["reclaimed"]!);
        Assert.Equal("approved", await conn.StepStatusAsync(s1));
        Assert.Single(b1["approved_tool_calls"]!.AsArray());
        Assert.Null(await ClaimAsync(worker, w.Tenant, 30, "next"));
        Assert.Equal("needs_review", await conn.StepStatusAsync(s2));
        Assert.Equal("waiting_human", await conn.TurnStatusAsync(t2));
        Assert.Equal(["needs_review"], await conn.ColumnAsync("SELECT status FROM aos_agent.tool_call_queue"));
        Assert.Equal(["abandoned", "abandoned"],
            await conn.ColumnAsync("SELECT status FROM aos_agent.tool_execution WHERE step_id IN ($1, $2)", s1, s2));

        // the review decision lets it run again (a second decision, kind review)
        await conn.ExecAsync("SELECT aos_agent.approve_step($1, true, $2, 'checked: not run yet')", s2, w.Admin);
        Assert.Equal(["approval", "review"], await conn.ColumnAsync("SELECT kind FROM aos_agent.approval WHERE step_id = $1 ORDER BY kind", s2));
        var b2 = await ClaimAsync(worker, w.Tenant, 30, "next");
        Assert.Equal(t2, Guid.Parse((string)b2!["turn_id"]!));
        Assert.Equal(3, (int)b2["attempt"]!);
        var ticket = await worker.ScalarAsync<Guid>("SELECT aos_agent.begin_tool_execution($1, $2, $3, 'code_execute', '{\"code\": \"1+1\"}')",
            t2, Token(b2), s2);
        await worker.ExecAsync("SELECT aos_agent.record_tool_result($1, 'code_execute', '2', true, NULL, $2, $3)", t2, Token(b2), ticket);
        await worker.ExecAsync("SELECT aos_agent.complete_turn($1, '2', 0, NULL, $2)", t2, Token(b2));
        Assert.Equal("completed", await conn.TurnStatusAsync(t2));
        Assert.Equal(["parked", "lost", "succeeded"],
            await conn.ColumnAsync("SELECT status FROM aos_core.run WHERE turn_id = $1 ORDER BY attempt, started_at", t2));
    }

    [Fact]
    public async Task ATimeBudgetEndsTheTurn()
    {
        var (conn, w) = await SetupAsync("""{"max_turn_seconds": 1}""");
        await using var _ = conn;
        await using var worker = await db.OpenAsync(TestCluster.Worker);
        // by hand: a write after the deadline is refused
        var c1 = await conn.NewConversationAsync(w.Agent);
        var t1 = await conn.SendAsync(c1);
        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t1);
        // a worker's turn whose attempts used up the time: the next claim fails it (queued -> failed)
        var c2 = await conn.NewConversationAsync(w.Agent);
        var t2 = await conn.SendAsync(c2);
        Assert.Equal(t2, Guid.Parse((string)(await ClaimAsync(worker, w.Tenant, 1))!["turn_id"]!));
        await Task.Delay(1200);
        await conn.RefusedAsync("AO007", "SELECT aos_agent.record_thinking($1, 'too late')", t1);
        Assert.Null(await ClaimAsync(worker, w.Tenant));
        Assert.Equal("failed", await conn.TurnStatusAsync(t2));
        Assert.StartsWith("budget:", await conn.ScalarAsync<string>("SELECT error_message FROM aos_agent.turn WHERE turn_id = $1", t2),
            StringComparison.Ordinal);
        Assert.Equal("idle", await conn.RunStateAsync(c2));
        // ... but ending it is not
        Assert.Equal("failed", await conn.ScalarAsync<string>("SELECT aos_agent.fail_turn($1, 'out of time')", t1));
        Assert.Equal("failed", await conn.TurnStatusAsync(t1));
    }

    [Fact]
    public async Task ToolCallsBornRejectedFailedOrCancelled()
    {
        var (conn, w) = await SetupAsync("""{"auto_approve_tools": true}""");
        await using var _ = conn;
        await conn.ExecAsync("""
            INSERT INTO aos_policy.policy_rule (tenant_id, name, skill_key, args_match, action) VALUES ($1, 'no-secrets', 'web_search', '{"query": "secret"}', 'deny')
            """, w.Tenant);
        var c = await conn.NewConversationAsync(w.Agent);
        var t = await conn.SendAsync(c);
        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t);

        // rejected at birth: by a policy rule, and for missing arguments; the model hears why
        var denied = await conn.JsonAsync("SELECT aos_agent.process_tool_call($1, 'web_search', '{\"query\": \"secret\"}'::jsonb)::text", t);
        Assert.Equal(("rejected", "policy"), ((string?)denied["status"], (string?)denied["decided_by"]));
        var invalid = await conn.JsonAsync("SELECT aos_agent.process_tool_call($1, 'web_search', '{}'::jsonb)::text", t);
        Assert.Equal("rejected", (string?)invalid["status"]);
        Assert.Contains("missing query", (string)invalid["reason"]!, StringComparison.Ordinal);
        Assert.Equal(["rejected", "rejected"], await conn.ColumnAsync(
            "SELECT status FROM aos_agent.step WHERE turn_id = $1 AND step_type = 'tool_call' ORDER BY step_number", t));
        Assert.Equal(2L, await conn.ScalarAsync<long>(
            "SELECT count(*) FROM aos_agent.step WHERE turn_id = $1 AND step_type = 'tool_result' AND content ->> 'success' = 'false'", t));
        Assert.Equal("running", await conn.TurnStatusAsync(t));

        // approved -> failed: the tool failed
        var ok = Guid.Parse((string)(await conn.JsonAsync("SELECT aos_agent.process_tool_call($1, 'web_search', '{\"query\": \"q\"}'::jsonb)::text", t))["step_id"]!);
        await conn.ExecAsync("SELECT aos_agent.record_tool_result($1, 'web_search', NULL, false, 'search engine down')", t);
        Assert.Equal("failed", await conn.StepStatusAsync(ok));
        // approved -> cancelled: the model answered without running it
        var open = Guid.Parse((string)(await conn.JsonAsync("SELECT aos_agent.process_tool_call($1, 'web_search', '{\"query\": \"r\"}'::jsonb)::text", t))["step_id"]!);
        Assert.Equal("approved", await conn.StepStatusAsync(open));
        await conn.ExecAsync("SELECT aos_agent.complete_turn($1, 'answered without searching')", t);
        Assert.Equal("cancelled", await conn.StepStatusAsync(open));

        // executing -> failed, through a worker
        await using var worker = await db.OpenAsync(TestCluster.Worker);
        var t2 = await conn.SendAsync(c);
        var claim = await ClaimAsync(worker, w.Tenant);
        var r = await worker.JsonAsync("""
            SELECT aos_agent.record_response($1, $2, '{"tool_calls": [{"name": "web_search", "arguments": {"query": "q"}}]}')::text
            """, t2, Token(claim));
        var call = r["tool_calls"]![0]!;
        Assert.Equal("executing", await conn.StepStatusAsync(Guid.Parse((string)call["step_id"]!)));
        await worker.ExecAsync("SELECT aos_agent.record_tool_result($1, 'web_search', NULL, false, 'timeout', $2, $3)",
            t2, Token(claim), Guid.Parse((string)call["ticket"]!));
        Assert.Equal("failed", await conn.StepStatusAsync(Guid.Parse((string)call["step_id"]!)));
        Assert.Equal("failed", await conn.ScalarAsync<string>("SELECT status FROM aos_agent.tool_execution WHERE step_id = $1", Guid.Parse((string)call["step_id"]!)));
        await worker.ExecAsync("SELECT aos_agent.complete_turn($1, 'search is down', 0, NULL, $2)", t2, Token(claim));
    }

    [Fact]
    public async Task AnInterruptedRunThatAPersonRejectsTellsTheModel()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        await using var worker = await db.OpenAsync(TestCluster.Worker);
        var c = await conn.NewConversationAsync(w.Agent);
        var t = await conn.SendAsync(c);
        var a = await ClaimAsync(worker, w.Tenant, 1);
        var step = Guid.Parse((string)(await worker.JsonAsync("""
            SELECT aos_agent.record_response($1, $2, '{"tool_calls": [{"name": "code_execute", "arguments": {"code": "rm()"}}]}')::text
            """, t, Token(a)))["tool_calls"]![0]!["step_id"]!);
        await conn.ExecAsync("SELECT aos_agent.approve_step($1, true, $2)", step, w.Admin);
        var b = await ClaimAsync(worker, w.Tenant, 1);
        await worker.ExecAsync("SELECT aos_agent.begin_tool_execution($1, $2, $3, 'code_execute', '{\"code\": \"rm()\"}')", t, Token(b), step);
        await Task.Delay(1200);
        Assert.Null(await ClaimAsync(worker, w.Tenant));
        Assert.Equal("needs_review", await conn.StepStatusAsync(step));
        await conn.ExecAsync("SELECT aos_agent.approve_step($1, false, $2, 'it may have run; do not repeat')", step, w.Admin);
        Assert.Equal("rejected", await conn.StepStatusAsync(step));
        Assert.Equal(["approved", "rejected"], await conn.ColumnAsync("SELECT decision FROM aos_agent.approval WHERE step_id = $1 ORDER BY kind", step));
        var next = await ClaimAsync(worker, w.Tenant);
        Assert.Empty(next!["approved_tool_calls"]!.AsArray());
        Assert.Contains(next["messages"]!.AsArray(), m => (string?)m!["role"] == "tool" && ((string)m["content"]!).Contains("do not repeat", StringComparison.Ordinal));
        await worker.ExecAsync("SELECT aos_agent.complete_turn($1, 'I did not run it again.', 0, NULL, $2)", t, Token(next));
        Assert.Equal("completed", await conn.TurnStatusAsync(t));
    }

    [Fact]
    public async Task APausedTurnCanBeCancelled()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        var c = await conn.NewConversationAsync(w.Agent);
        var t = await conn.SendAsync(c);
        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t);
        await conn.ExecAsync("SELECT aos_agent.pause_conversation($1)", c);
        Assert.Equal("waiting_human", await conn.TurnStatusAsync(t));
        await conn.ExecAsync("SELECT aos_agent.cancel_turn($1, 'abandoned by the user')", t);
        Assert.Equal("cancelled", await conn.TurnStatusAsync(t));
        Assert.Equal(("paused", "idle"), (await conn.ScalarAsync<string>("SELECT status FROM aos_agent.conversation WHERE conversation_id = $1", c),
            await conn.RunStateAsync(c)));
    }

    // ------------------------------------------------------------------------------------------
    // Interventions on turns that are not running
    // ------------------------------------------------------------------------------------------

    [Fact]
    public async Task InjectNeedsATurnAndOverrideNeedsACompletedOne()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        var c = await conn.NewConversationAsync(w.Agent);
        var before = await K.FingerprintAsync(db);
        await conn.RefusedAsync("AO003", "SELECT aos_agent.inject_message($1, 'be brief', $2)", c, w.Admin);
        Assert.Equal(before, await K.FingerprintAsync(db));

        var t = await conn.SendAsync(c);
        await conn.ExecAsync("SELECT aos_agent.inject_message($1, 'be brief', $2)", c, w.Admin);
        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t);
        var ctx = await conn.JsonAsync("SELECT aos_agent.run_turn($1)::text", t);
        Assert.Equal(["user", "system"], ctx["messages"]!.AsArray().Select(m => (string)m!["role"]!));
        await conn.ExecAsync("SELECT aos_agent.complete_turn($1, 'long answer')", t);
        var o = await conn.ScalarAsync<Guid>("SELECT aos_agent.override_response($1, 'short answer', $2, 'too long')", t, w.Admin);
        Assert.Equal("override", await conn.ScalarAsync<string>("SELECT step_type FROM aos_agent.step WHERE step_id = $1", o));
        Assert.Equal("long answer", await conn.ScalarAsync<string>("SELECT assistant_message FROM aos_agent.turn WHERE turn_id = $1", t));
        var history = await conn.JsonAsync("SELECT aos_agent.get_conversation_history($1)::text", c);
        Assert.Equal("short answer", (string?)history["turns"]![0]!["final_answer"]);
        // the conversation is idle: an injection goes into its last (completed) turn
        await conn.ExecAsync("SELECT aos_agent.inject_message($1, 'answer in French from now on', $2)", c, w.Admin);
        // the completed turn keeps its messages for later turns, current after both interventions
        await using (var su = await db.OpenAsync(null))
        {
            Assert.True(await su.ScalarAsync<bool>(
                "SELECT messages = aos_agent._turn_messages(tenant_id, turn_id) AND jsonb_array_length(messages) = 4 FROM aos_agent.turn WHERE turn_id = $1", t));
        }
        // the next turn's model sees the corrected answer and the injection, in order
        var t2 = await conn.SendAsync(c, "and?");
        var ctx2 = await conn.JsonAsync("SELECT aos_agent.run_turn($1)::text", t2);
        Assert.Equal(["user:hello", "system:be brief", "assistant:short answer", "system:answer in French from now on", "user:and?"],
            ctx2["messages"]!.AsArray().Select(m => (string)m!["role"]! + ":" + (string?)m["content"]));
    }

    // ------------------------------------------------------------------------------------------
    // The guards behind the functions
    // ------------------------------------------------------------------------------------------

    [Fact]
    public async Task EvenTheSuperuserCannotMoveStatesAgainstTheMachine()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        var c = await conn.NewConversationAsync(w.Agent);
        var t = await conn.SendAsync(c);
        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t);
        var step = Guid.Parse((string)(await conn.JsonAsync(
            "SELECT aos_agent.process_tool_call($1, 'web_search', '{\"query\": \"q\"}')::text", t))["step_id"]!);
        await conn.ExecAsync("SELECT aos_agent.approve_step($1, false, $2)", step, w.Admin);
        await conn.ExecAsync("SELECT aos_agent.complete_turn($1, 'done')", t);

        await using var su = await db.OpenAsync(null);
        Assert.Equal("AO003", (await su.ErrorAsync("UPDATE aos_agent.step SET status = 'approved' WHERE step_id = $1", step)).SqlState);
        Assert.Equal("AO014", (await su.ErrorAsync("UPDATE aos_agent.step SET content = '{}' WHERE step_id = $1", step)).SqlState);
        Assert.Equal("AO014", (await su.ErrorAsync("UPDATE aos_agent.turn SET status = 'running' WHERE turn_id = $1", t)).SqlState);
        Assert.Equal("AO014", (await su.ErrorAsync("UPDATE aos_agent.turn SET assistant_message = 'forged' WHERE turn_id = $1", t)).SqlState);
    }
}
