using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Npgsql;
using PgAgentOS.Client;

namespace PgAgentOS.Kernel.Tests;

/// <summary>
/// The turn queue under real concurrency (RELIABILITY.md Q1–Q5, Q8, Q10, I3): many workers on their own
/// connections through the SDK, leases of a second or two, workers that die, zombies that come back.
/// </summary>
public sealed class ConcurrencyTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    /// <summary>One thing a worker saw or did, in the order the test observed it.</summary>
    private sealed record Seen(long Seq, string Kind, Guid Turn, int Attempt, Guid? Token, string Worker, DateTime At);

    private AosClient WorkerClient() => new(db.DataSource(TestCluster.Worker));

    private async Task<(NpgsqlConnection Conn, World W)> SetupAsync(string config = "{}")
    {
        var conn = await db.OpenAsync(TestCluster.Admin);
        return (conn, await K.NewWorldAsync(conn, config));
    }

    private static async Task<TurnContext> ClaimUntilAsync(AosClient worker, string id, int lease, Guid tenant, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (true)
        {
            var ctx = await worker.ClaimTurnAsync(id, lease, tenant);
            if (ctx is not null)
            {
                return ctx;
            }
            Assert.True(DateTime.UtcNow < until, $"{id} found no turn to claim within {timeout}");
            await Task.Delay(50);
        }
    }

    // ------------------------------------------------------------------------------------------
    // Q1, Q2: many workers drain many turns, each exactly once, one at a time per conversation, in order
    // ------------------------------------------------------------------------------------------

    [Fact]
    public async Task SixteenWorkersDrainFiveThousandTurnsExactlyOnceInOrder()
    {
        const int conversations = 200, perConversation = 25, workers = 16, total = conversations * perConversation;
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        await conn.ExecAsync("SELECT aos_agent.start_conversation($1) FROM generate_series(1, $2)", w.Agent, conversations);
        await conn.ExecAsync("""
            SELECT aos_agent.send_message(c.conversation_id, 'question ' || g)
              FROM generate_series(1, $2) g CROSS JOIN aos_agent.conversation c
             WHERE c.agent_id = $1
            """, w.Agent, perConversation);
        var turnsOf = (await conn.RowsAsync("SELECT turn_id, conversation_id, turn_number FROM aos_agent.turn WHERE agent_id = $1", w.Agent))
            .ToDictionary(r => (Guid)r["turn_id"]!, r => ((Guid)r["conversation_id"]!, (int)r["turn_number"]!));
        Assert.Equal(total, turnsOf.Count);

        var seen = new ConcurrentQueue<Seen>();
        long seq = 0;
        var completed = 0;
        var overlaps = new ConcurrentBag<string>();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(300));

        // a watcher that never sees two running turns in one conversation
        var watcher = Task.Run(async () =>
        {
            await using var su = await db.OpenAsync(null);
            while (Volatile.Read(ref completed) < total && !stop.IsCancellationRequested)
            {
                foreach (var c in await su.ColumnAsync(
                             "SELECT conversation_id FROM aos_agent.turn WHERE status = 'running' GROUP BY conversation_id HAVING count(*) > 1"))
                {
                    overlaps.Add(c);
                }
                await Task.Delay(20);
            }
        });

        // Workers keep their sessions: without No Reset On Close, the pool's DISCARD ALL would throw away the
        // plans the kernel's functions cached, on every call.
        await using var pool = NpgsqlDataSource.Create(db.ConnectionString(TestCluster.Worker) + ";No Reset On Close=true");
        var tasks = Enumerable.Range(1, workers).Select(i => Task.Run(async () =>
        {
            var id = $"worker-{i}";
            await using var client = new AosClient(pool);
            while (Volatile.Read(ref completed) < total)
            {
                stop.Token.ThrowIfCancellationRequested();
                var ctx = await client.ClaimTurnAsync(id, 120, w.Tenant, stop.Token);
                if (ctx is null)
                {
                    await Task.Delay(5, stop.Token);
                    continue;
                }
                var token = ctx.LeaseToken!.Value;
                seen.Enqueue(new Seen(Interlocked.Increment(ref seq), "claimed", ctx.TurnId, ctx.Attempt, token, id, DateTime.UtcNow));
                await client.RecordResponseAsync(ctx.TurnId, token, new ModelResponse { Thinking = "thinking about " + ctx.UserMessage, Usage = new Usage(10, 2) }, stop.Token);
                seen.Enqueue(new Seen(Interlocked.Increment(ref seq), "completing", ctx.TurnId, ctx.Attempt, token, id, DateTime.UtcNow));
                await client.CompleteTurnAsync(ctx.TurnId, "answer to " + ctx.UserMessage, new Usage(20, 5), token, ct: stop.Token);
                seen.Enqueue(new Seen(Interlocked.Increment(ref seq), "completed", ctx.TurnId, ctx.Attempt, token, id, DateTime.UtcNow));
                Interlocked.Increment(ref completed);
            }
        })).ToList();
        await Task.WhenAll(tasks);
        await watcher;

        var history = seen.ToList();
        // every turn claimed once, completed once, with the token of its claim, by the worker that claimed it
        var claims = history.Where(s => s.Kind == "claimed").ToList();
        var done = history.Where(s => s.Kind == "completed").ToList();
        Assert.Equal(total, claims.Count);
        Assert.Equal(total, claims.Select(c => c.Turn).Distinct().Count());
        Assert.Equal(total, done.Select(c => c.Turn).Distinct().Count());
        Assert.All(claims, c => Assert.Equal(1, c.Attempt));
        Assert.Equal(total, claims.Select(c => c.Token).Distinct().Count());
        var claimOf = claims.ToDictionary(c => c.Turn);
        Assert.All(done, d => Assert.Equal((claimOf[d.Turn].Token, claimOf[d.Turn].Worker), (d.Token, d.Worker)));
        Assert.True(claims.Select(c => c.Worker).Distinct().Count() > 1, "the work should be spread over several workers");

        // per conversation: turns handed out and finished one at a time, in turn order
        Assert.Empty(overlaps);
        var completing = history.Where(s => s.Kind == "completing").ToDictionary(s => s.Turn, s => s.Seq);
        foreach (var conv in turnsOf.GroupBy(kv => kv.Value.Item1))
        {
            var ordered = conv.OrderBy(kv => kv.Value.Item2).Select(kv => kv.Key).ToList();
            for (var n = 1; n < ordered.Count; n++)
            {
                // turn n+1 was handed out only after turn n's completion had begun ...
                Assert.True(completing[ordered[n - 1]] < claimOf[ordered[n]].Seq,
                    $"conversation {conv.Key}: turn {n + 1} was claimed before turn {n} was being completed");
                // ... so completions come in turn order
                Assert.True(completing[ordered[n - 1]] < completing[ordered[n]]);
            }
        }

        // the database agrees: one successful run per turn with the token the worker held, in order per conversation
        await using var su = await db.OpenAsync(null);
        Assert.Equal(total, await su.ScalarAsync<long>("SELECT count(*) FROM aos_agent.turn WHERE agent_id = $1 AND status = 'completed'", w.Agent));
        var runs = await su.RowsAsync("""
            SELECT r.turn_id, r.attempt, r.lease_token, r.worker_id, r.status FROM aos_core.run r
              JOIN aos_agent.turn t ON t.tenant_id = r.tenant_id AND t.turn_id = r.turn_id WHERE t.agent_id = $1
            """, w.Agent);
        Assert.Equal(total, runs.Count);
        Assert.All(runs, r =>
        {
            var c = claimOf[(Guid)r["turn_id"]!];
            Assert.Equal(("succeeded", 1, c.Token, c.Worker), ((string)r["status"]!, (int)r["attempt"]!, (Guid?)r["lease_token"], (string)r["worker_id"]!));
        });
        Assert.Equal(0L, await su.ScalarAsync<long>("""
            SELECT count(*) FROM (
              SELECT r.ended_at, lead(r.started_at) OVER (PARTITION BY t.conversation_id ORDER BY t.turn_number) AS next_start,
                     t.completed_at, lead(t.completed_at) OVER (PARTITION BY t.conversation_id ORDER BY t.turn_number) AS next_done
                FROM aos_agent.turn t JOIN aos_core.run r ON r.tenant_id = t.tenant_id AND r.turn_id = t.turn_id
               WHERE t.agent_id = $1) x
             WHERE x.next_start < x.ended_at OR x.next_done < x.completed_at
            """, w.Agent));
        Assert.Equal((long)total, await su.ScalarAsync<long>(
            "SELECT count(*) FROM aos_core.event_log WHERE tenant_id = $1 AND event_type = 'turn.completed'", w.Tenant));
        Assert.Equal((long)total * 37, await su.ScalarAsync<long>("SELECT sum(tokens_used)::bigint FROM aos_agent.turn WHERE agent_id = $1", w.Agent));
        Assert.Equal((long)total * 37, await su.ScalarAsync<long>("SELECT sum(total_tokens)::bigint FROM aos_agent.conversation WHERE agent_id = $1", w.Agent));
        Assert.Equal(0L, await su.ScalarAsync<long>("SELECT count(*) FROM aos_agent.conversation WHERE agent_id = $1 AND run_state <> 'idle'", w.Agent));
        Assert.True(await conn.ScalarAsync<bool>("SELECT (aos_core.verify_event_chain() ->> 'ok')::boolean"));
    }

    // ------------------------------------------------------------------------------------------
    // Q3: a worker dies after claiming; Q4: it comes back as a zombie
    // ------------------------------------------------------------------------------------------

    [Fact]
    public async Task ADeadWorkersTurnIsReclaimedAfterItsLeaseWithItsThoughtsAbandoned()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        var c = await conn.NewConversationAsync(w.Agent);
        var turn = await conn.SendAsync(c, "question");
        await using var dying = WorkerClient();
        await using var rescuer = WorkerClient();

        // a lease of 4 seconds: long enough that a slow machine does not end it before the rescuer's
        // first claim below, and the test waits for it to end by itself
        var a = (await dying.ClaimTurnAsync("dying", 4, w.Tenant))!;
        Assert.Equal((turn, 1, false), (a.TurnId, a.Attempt, a.Reclaimed));
        var r = await dying.RecordResponseAsync(turn, a.LeaseToken, new ModelResponse { Thinking = "first attempt's thought" });
        var thought = r.StepIds.Single();
        // ... and the worker is gone. Before the lease ends nobody else gets the turn.
        Assert.Null(await rescuer.ClaimTurnAsync("rescuer", 30, w.Tenant));

        var b = await ClaimUntilAsync(rescuer, "rescuer", 30, w.Tenant, TimeSpan.FromSeconds(20));
        Assert.Equal((turn, 2, true), (b.TurnId, b.Attempt, b.Reclaimed));
        Assert.True(b.LeaseExpiresAt > a.LeaseExpiresAt);
        Assert.Equal("abandoned", await conn.StepStatusAsync(thought));
        Assert.Equal("abandoned", await conn.ScalarAsync<string>("SELECT status FROM aos_agent.thinking_trace WHERE step_id = $1", thought));

        await rescuer.RecordResponseAsync(turn, b.LeaseToken, new ModelResponse { Thinking = "second attempt's thought" });
        await rescuer.CompleteTurnAsync(turn, "done", new Usage(1, 1), b.LeaseToken);
        Assert.Equal("completed", await conn.TurnStatusAsync(turn));
        Assert.Equal(["lost", "succeeded"], await conn.ColumnAsync("SELECT status FROM aos_core.run WHERE turn_id = $1 ORDER BY attempt", turn));
        var errors = (await conn.JsonAsync("SELECT errors::text FROM aos_agent.turn WHERE turn_id = $1", turn)).AsArray();
        Assert.Equal(1, (int)errors.Single()!["attempt"]!);
        Assert.Equal(["abandoned", "completed"], await conn.ColumnAsync(
            "SELECT status FROM aos_agent.step WHERE turn_id = $1 AND step_type = 'think' ORDER BY step_number", turn));
    }

    [Fact]
    public async Task AZombieWorkerCanNoLongerWriteAnything()
    {
        var (conn, w) = await SetupAsync("""{"auto_approve_tools": true}""");
        await using var _ = conn;
        var c = await conn.NewConversationAsync(w.Agent);
        var turn = await conn.SendAsync(c, "question");
        await using var zombie = WorkerClient();
        await using var rescuer = WorkerClient();

        var a = (await zombie.ClaimTurnAsync("zombie", 1, w.Tenant))!;
        var call = (await zombie.RecordResponseAsync(turn, a.LeaseToken, new ModelResponse
        {
            ToolCalls = [new ModelToolCall("c1", "web_search", new JsonObject { ["query"] = "q" })],
        })).ToolCalls.Single();
        Assert.NotNull(call.Ticket);
        var b = await ClaimUntilAsync(rescuer, "rescuer", 30, w.Tenant, TimeSpan.FromSeconds(10));
        Assert.Equal((turn, 2), (b.TurnId, b.Attempt));
        var zombieToken = a.LeaseToken!.Value;

        var before = await K.FingerprintAsync(db);
        await Assert.ThrowsAsync<LeaseLostException>(() => zombie.HeartbeatAsync(turn, zombieToken));
        await Assert.ThrowsAsync<LeaseLostException>(() => zombie.RecordResponseAsync(turn, zombieToken, new ModelResponse { Thinking = "still here" }));
        await Assert.ThrowsAsync<LeaseLostException>(() => zombie.RecordToolResultAsync(turn, "web_search", new JsonObject(), leaseToken: zombieToken, ticket: call.Ticket));
        await Assert.ThrowsAsync<LeaseLostException>(() => zombie.BeginToolExecutionAsync(turn, zombieToken, call.StepId, "web_search", new JsonObject { ["query"] = "q" }));
        await Assert.ThrowsAsync<LeaseLostException>(() => zombie.CompleteTurnAsync(turn, "zombie answer", leaseToken: zombieToken));
        await Assert.ThrowsAsync<LeaseLostException>(() => zombie.FailTurnAsync(turn, "zombie error", zombieToken));
        await Assert.ThrowsAsync<LeaseLostException>(() => zombie.ReleaseTurnAsync(turn, zombieToken));
        Assert.Equal(before, await K.FingerprintAsync(db));

        // the rescuer re-runs the interrupted (idempotent) search and finishes
        var retry = b.ApprovedToolCalls.Single();
        var ticket = await rescuer.BeginToolExecutionAsync(turn, b.LeaseToken!.Value, retry.StepId, retry.Name, JsonNode.Parse(retry.Arguments.GetRawText())!);
        await rescuer.RecordToolResultAsync(turn, "web_search", new JsonObject { ["hits"] = 1 }, leaseToken: b.LeaseToken, ticket: ticket);
        await rescuer.CompleteTurnAsync(turn, "rescued answer", new Usage(5, 5), b.LeaseToken);
        // ... and even now the zombie only hears that its lease is gone
        await Assert.ThrowsAsync<LeaseLostException>(() => zombie.CompleteTurnAsync(turn, "zombie answer", leaseToken: zombieToken));
        Assert.Equal("rescued answer", await conn.ScalarAsync<string>("SELECT assistant_message FROM aos_agent.turn WHERE turn_id = $1", turn));
        Assert.Equal(["lost", "succeeded"], await conn.ColumnAsync("SELECT status FROM aos_core.run WHERE turn_id = $1 ORDER BY attempt", turn));
        Assert.Equal(["abandoned", "succeeded"], await conn.ColumnAsync(
            "SELECT status FROM aos_agent.tool_execution WHERE turn_id = $1 ORDER BY attempt", turn));
    }

    // ------------------------------------------------------------------------------------------
    // Q5: heartbeats keep a long turn; Q8: a poison turn ends dead
    // ------------------------------------------------------------------------------------------

    [Fact]
    public async Task HeartbeatsKeepALongTurnAndTheirAbsenceReleasesIt()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        var c = await conn.NewConversationAsync(w.Agent);
        var turn = await conn.SendAsync(c, "long job");
        await using var busy = WorkerClient();
        await using var other = WorkerClient();

        var a = (await busy.ClaimTurnAsync("busy", 2, w.Tenant))!;
        var expiry = a.LeaseExpiresAt!.Value;
        var until = DateTime.UtcNow.AddSeconds(6);   // three times the lease
        while (DateTime.UtcNow < until)
        {
            await Task.Delay(250);
            var renewed = await busy.HeartbeatAsync(turn, a.LeaseToken!.Value, 2);
            Assert.True(renewed >= expiry);
            expiry = renewed;
            Assert.Null(await other.ClaimTurnAsync("other", 30, w.Tenant));
        }
        await busy.CompleteTurnAsync(turn, "finished", leaseToken: a.LeaseToken);
        Assert.Equal(["succeeded"], await conn.ColumnAsync("SELECT status FROM aos_core.run WHERE turn_id = $1", turn));

        // the heartbeats stop: the turn goes to another worker once the lease has passed
        var t2 = await conn.SendAsync(c, "another long job");
        var b = (await busy.ClaimTurnAsync("busy", 1, w.Tenant))!;
        await busy.HeartbeatAsync(t2, b.LeaseToken!.Value, 1);
        var taken = await ClaimUntilAsync(other, "other", 30, w.Tenant, TimeSpan.FromSeconds(10));
        Assert.Equal((t2, 2, true), (taken.TurnId, taken.Attempt, taken.Reclaimed));
        await Assert.ThrowsAsync<LeaseLostException>(() => busy.HeartbeatAsync(t2, b.LeaseToken!.Value, 1));
    }

    [Fact]
    public async Task ATurnWhoseWorkerDiesEveryTimeEndsDeadWithEveryError()
    {
        var (conn, w) = await SetupAsync("""{"max_attempts": 3}""");
        await using var _ = conn;
        var poisonConv = await conn.NewConversationAsync(w.Agent);
        var poison = await conn.SendAsync(poisonConv, "crash the worker");
        var next = await conn.SendAsync(poisonConv, "after the crash");
        await using var worker = WorkerClient();

        for (var attempt = 1; attempt <= 3; attempt++)
        {
            var ctx = await ClaimUntilAsync(worker, $"crashing-{attempt}", 1, w.Tenant, TimeSpan.FromSeconds(10));
            Assert.Equal((poison, attempt), (ctx.TurnId, ctx.Attempt));
            // the worker crashes here, every time
        }
        // the fourth claim finds the poison turn out of attempts: dead, and the conversation moves on
        var after = await ClaimUntilAsync(worker, "healthy", 30, w.Tenant, TimeSpan.FromSeconds(10));
        Assert.Equal(next, after.TurnId);
        Assert.Equal("dead", await conn.TurnStatusAsync(poison));
        var row = (await conn.RowsAsync("SELECT failures, attempt, errors::text AS errors FROM aos_agent.turn WHERE turn_id = $1", poison)).Single();
        Assert.Equal((3, 3), ((int)row["failures"]!, (int)row["attempt"]!));
        var errors = JsonNode.Parse((string)row["errors"]!)!.AsArray();
        Assert.Equal([1, 2, 3], errors.Take(3).Select(e => (int)e!["attempt"]!));
        Assert.All(errors.Take(3), e => Assert.Contains("lease expired", (string)e!["error"]!, StringComparison.Ordinal));
        Assert.Contains("gave up", (string)errors.Last()!["error"]!, StringComparison.Ordinal);
        Assert.Equal(["lost", "lost", "lost"], await conn.ColumnAsync("SELECT status FROM aos_core.run WHERE turn_id = $1 ORDER BY attempt", poison));
        await worker.CompleteTurnAsync(next, "fine", leaseToken: after.LeaseToken);
        Assert.Equal("completed", await conn.TurnStatusAsync(next));
    }

    // ------------------------------------------------------------------------------------------
    // Q10: enqueueing is transactional; I3: concurrent API misuse
    // ------------------------------------------------------------------------------------------

    [Fact]
    public async Task AMessageSentInARolledBackTransactionNeverBecomesATurn()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        var c = await conn.NewConversationAsync(w.Agent);
        await using var worker = WorkerClient();
        var before = await K.FingerprintAsync(db);
        await using (var tx = await conn.BeginTransactionAsync())
        {
            var turn = await conn.SendAsync(c, "never mind");
            Assert.Equal("queued", await conn.TurnStatusAsync(turn));
            await tx.RollbackAsync();
        }
        Assert.Equal(before, await K.FingerprintAsync(db));
        Assert.Null(await worker.ClaimTurnAsync("w", 30, w.Tenant));
        Assert.Equal(0, await conn.ScalarAsync<int>("SELECT turn_count FROM aos_agent.conversation WHERE conversation_id = $1", c));

        // the SDK's transactional send: the same
        var app = new AosClient(db.DataSource(TestCluster.Admin)).ForTenant(w.Tenant);
        await using (var tx = await conn.BeginTransactionAsync())
        {
            await app.InTransaction(conn, tx).SendMessageAsync(c, "never mind either");
            await tx.RollbackAsync();
        }
        Assert.Null(await worker.ClaimTurnAsync("w", 30, w.Tenant));
        // a committed message is found by polling alone (no LISTEN anywhere in this test)
        var committed = await conn.SendAsync(c, "for real");
        Assert.Equal(committed, (await worker.ClaimTurnAsync("w", 30, w.Tenant))!.TurnId);
    }

    [Fact]
    public async Task TwentyParallelMessagesGetTurnsOneToTwenty()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        var c = await conn.NewConversationAsync(w.Agent);
        var app = new AosClient(db.DataSource(TestCluster.Admin)).ForTenant(w.Tenant);
        using var gate = new SemaphoreSlim(0);
        var sends = Enumerable.Range(1, 20).Select(i => Task.Run(async () =>
        {
            await gate.WaitAsync();
            return await app.SendMessageAsync(c, $"message {i}");
        })).ToList();
        gate.Release(20);
        var turns = await Task.WhenAll(sends);   // any error (a 23505 among them) fails here
        Assert.Equal(20, turns.Distinct().Count());
        Assert.Equal(Enumerable.Range(1, 20).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            await conn.ColumnAsync("SELECT turn_number FROM aos_agent.turn WHERE conversation_id = $1 ORDER BY turn_number", c));
        Assert.Equal(20, await conn.ScalarAsync<int>("SELECT turn_count FROM aos_agent.conversation WHERE conversation_id = $1", c));
        Assert.Equal(1L, await conn.ScalarAsync<long>("SELECT count(*) FROM aos_agent.turn WHERE conversation_id = $1 AND turn_number = 1 AND turn_id = (SELECT active_turn_id FROM aos_agent.conversation WHERE conversation_id = $1)", c));
    }

    [Fact]
    public async Task PausesRacingWithClaimsLeaveNoPausedConversationRunning()
    {
        var (conn, w) = await SetupAsync();
        await using var _ = conn;
        await conn.ExecAsync("SELECT aos_agent.start_conversation($1) FROM generate_series(1, 40)", w.Agent);
        await conn.ExecAsync("SELECT aos_agent.send_message(conversation_id, 'go') FROM aos_agent.conversation WHERE agent_id = $1", w.Agent);
        var convs = (await conn.ColumnAsync("SELECT conversation_id FROM aos_agent.conversation WHERE agent_id = $1", w.Agent)).Select(Guid.Parse).ToList();
        var app = new AosClient(db.DataSource(TestCluster.Admin)).ForTenant(w.Tenant);
        var claimed = new ConcurrentBag<TurnContext>();
        using var gate = new SemaphoreSlim(0);
        var pausers = convs.Chunk(10).Select(chunk => Task.Run(async () =>
        {
            await gate.WaitAsync();
            foreach (var c in chunk)
            {
                await app.PauseConversationAsync(c);
            }
        }));
        var claimers = Enumerable.Range(0, 4).Select(i => Task.Run(async () =>
        {
            await using var worker = WorkerClient();
            await gate.WaitAsync();
            for (var k = 0; k < 15; k++)
            {
                if (await worker.ClaimTurnAsync($"c{i}", 30, w.Tenant) is { } ctx)
                {
                    claimed.Add(ctx);
                }
            }
        }));
        var all = pausers.Concat(claimers).ToList();
        gate.Release(all.Count);
        await Task.WhenAll(all);

        // every conversation is paused, none is leased; a claim that came first was stopped by the pause
        Assert.Equal(0L, await conn.ScalarAsync<long>(
            "SELECT count(*) FROM aos_agent.conversation WHERE agent_id = $1 AND (status <> 'paused' OR run_state <> 'waiting')", w.Agent));
        await using var worker = WorkerClient();
        Assert.Null(await worker.ClaimTurnAsync("late", 30, w.Tenant));
        foreach (var ctx in claimed)
        {
            await Assert.ThrowsAsync<AosConflictException>(() => worker.HeartbeatAsync(ctx.TurnId, ctx.LeaseToken!.Value));
        }
    }
}
