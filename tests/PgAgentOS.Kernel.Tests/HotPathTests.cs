using Npgsql;

namespace PgAgentOS.Kernel.Tests;

/// <summary>
/// The hot path: recording a step updates the conversation row without touching any column an index covers (key,
/// expression or predicate), so that PostgreSQL can update it in place (a HOT update, no new index entries) — by
/// hand and by workers alike. The statistics confirm it: (nearly) every update of those steps was HOT.
/// </summary>
public sealed class HotPathTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    /// <summary>The values of every column of the conversation that an index of the table refers to.</summary>
    private static async Task<string> IndexedColumnsAsync(NpgsqlConnection su, Guid conversation)
    {
        var columns = await su.ColumnAsync("""
            SELECT DISTINCT quote_ident(a.attname)
              FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE i.indrelid = 'aos_agent.conversation'::regclass
               AND (a.attnum = ANY (i.indkey)
                    OR coalesce(pg_get_expr(i.indexprs, i.indrelid), '') ~ ('\m' || a.attname || '\M')
                    OR coalesce(pg_get_expr(i.indpred, i.indrelid), '') ~ ('\m' || a.attname || '\M'))
             ORDER BY 1
            """);
        Assert.Contains("run_state", columns);         // a partial index predicate
        Assert.Contains("lease_expires_at", columns);
        return await su.ScalarAsync<string>(
            $"SELECT concat_ws('|', {string.Join(", ", columns)}) FROM aos_agent.conversation WHERE conversation_id = $1", conversation);
    }

    private async Task<(long Updates, long Hot)> CountersAsync(NpgsqlConnection driver)
    {
        await driver.ExecAsync("SELECT pg_stat_force_next_flush()");   // reported when the backend goes idle
        await using var su = await db.OpenAsync(null);
        var row = (await su.RowsAsync(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = 'aos_agent.conversation'::regclass")).Single();
        return ((long)row["n_tup_upd"]!, (long)row["n_tup_hot_upd"]!);
    }

    private static void AssertMostlyHot((long Updates, long Hot) before, (long Updates, long Hot) after, int steps)
    {
        // Whether an update is HOT also depends on free space on the page, which a concurrent autovacuum can hold
        // back for a moment; the indexed columns above are the deterministic part.
        var updates = after.Updates - before.Updates;
        var hot = after.Hot - before.Hot;
        Assert.True(updates >= steps * 2 / 3, $"only {updates} of {steps} updates reported");
        Assert.True(hot >= updates * 2 / 3, $"{updates} updates of the conversation, only {hot} of them HOT");
    }

    [Fact]
    public async Task StepsByHandLeaveTheIndexedColumnsAlone()
    {
        await using var conn = await db.OpenAsync(TestCluster.Admin);
        await using var su = await db.OpenAsync(null);
        var w = await K.NewWorldAsync(conn, """{"auto_approve_tools": true}""");
        var c = await conn.NewConversationAsync(w.Agent);
        var t = await conn.SendAsync(c);
        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t);
        var indexed = await IndexedColumnsAsync(su, c);
        var before = await CountersAsync(conn);
        for (var i = 0; i < 5; i++)
        {
            await conn.ExecAsync("SELECT aos_agent.record_thinking($1, $2)", t, $"thought {i}");
            Assert.Equal(indexed, await IndexedColumnsAsync(su, c));
            await conn.ExecAsync("SELECT aos_agent.process_tool_call($1, 'web_search', '{\"query\": \"q\"}'::jsonb)", t);
            Assert.Equal(indexed, await IndexedColumnsAsync(su, c));
            await conn.ExecAsync("SELECT aos_agent.record_tool_result($1, 'web_search', '{\"hits\": 1}')", t);
            Assert.Equal(indexed, await IndexedColumnsAsync(su, c));
        }
        AssertMostlyHot(before, await CountersAsync(conn), 15);
    }

    [Fact]
    public async Task StepsOfAWorkerLeaveTheIndexedColumnsAlone()
    {
        await using var conn = await db.OpenAsync(TestCluster.Admin);
        await using var su = await db.OpenAsync(null);
        var w = await K.NewWorldAsync(conn, """{"auto_approve_tools": true}""");
        var c = await conn.NewConversationAsync(w.Agent);
        var t = await conn.SendAsync(c);
        await using var worker = await db.OpenAsync(TestCluster.Worker);
        var token = Guid.Parse(await worker.ScalarAsync<string>("SELECT aos_agent.claim_turn('w', 30, $1) ->> 'lease_token'", w.Tenant));
        var indexed = await IndexedColumnsAsync(su, c);
        var before = await CountersAsync(worker);
        for (var i = 0; i < 5; i++)
        {
            var ticket = Guid.Parse(await worker.ScalarAsync<string>("""
                SELECT aos_agent.record_response($1, $2, '{"thinking": "search", "tool_calls": [{"name": "web_search", "arguments": {"query": "q"}}],
                                                          "usage": {"input_tokens": 10, "output_tokens": 5}}') #>> '{tool_calls,0,ticket}'
                """, t, token));
            Assert.Equal(indexed, await IndexedColumnsAsync(su, c));
            await worker.ExecAsync("SELECT aos_agent.record_tool_result($1, 'web_search', '{\"hits\": 1}', true, NULL, $2, $3)", t, token, ticket);
            Assert.Equal(indexed, await IndexedColumnsAsync(su, c));
        }
        AssertMostlyHot(before, await CountersAsync(worker), 10);
    }

    [Fact]
    public async Task AToolCallsStatusChangesUpdateItsStepInPlace()
    {
        // No index of the step table refers to status (the waiting-calls index is on the generated
        // awaiting_decision, which stays false while a call runs and completes), so the two status
        // changes of every ticketed call, executing then completed, are HOT updates.
        await using var su = await db.OpenAsync(null);
        var indexed = await su.ColumnAsync("""
            SELECT DISTINCT a.attname::text
              FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE i.indrelid = 'aos_agent.step'::regclass
               AND (a.attnum = ANY (i.indkey)
                    OR coalesce(pg_get_expr(i.indexprs, i.indrelid), '') ~ ('\m' || a.attname || '\M')
                    OR coalesce(pg_get_expr(i.indpred, i.indrelid), '') ~ ('\m' || a.attname || '\M'))
            """);
        Assert.Contains("awaiting_decision", indexed);
        Assert.DoesNotContain("status", indexed);
        Assert.DoesNotContain("completed_at", indexed);

        await using var conn = await db.OpenAsync(TestCluster.Admin);
        var w = await K.NewWorldAsync(conn, """{"auto_approve_tools": true}""");
        var c = await conn.NewConversationAsync(w.Agent);
        var t = await conn.SendAsync(c);
        await using var worker = await db.OpenAsync(TestCluster.Worker);
        var token = Guid.Parse(await worker.ScalarAsync<string>("SELECT aos_agent.claim_turn('w', 30, $1) ->> 'lease_token'", w.Tenant));
        async Task<(long Updates, long Hot)> StepCountersAsync()
        {
            await worker.ExecAsync("SELECT pg_stat_force_next_flush()");
            var row = (await su.RowsAsync(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = 'aos_agent.step'::regclass")).Single();
            return ((long)row["n_tup_upd"]!, (long)row["n_tup_hot_upd"]!);
        }
        var before = await StepCountersAsync();
        for (var i = 0; i < 6; i++)
        {
            var ticket = Guid.Parse(await worker.ScalarAsync<string>("""
                SELECT aos_agent.record_response($1, $2, '{"tool_calls": [{"name": "web_search", "arguments": {"query": "q"}}]}') #>> '{tool_calls,0,ticket}'
                """, t, token));
            await worker.ExecAsync("SELECT aos_agent.record_tool_result($1, 'web_search', '{\"hits\": 1}', true, NULL, $2, $3)", t, token, ticket);
        }
        var after = await StepCountersAsync();
        Assert.Equal(["completed"], await su.ColumnAsync(
            "SELECT DISTINCT status FROM aos_agent.step WHERE turn_id = $1 AND step_type = 'tool_call'", t));
        AssertMostlyHot(before, after, 6);
    }
}
