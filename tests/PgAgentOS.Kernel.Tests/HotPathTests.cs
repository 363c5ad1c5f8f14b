using Npgsql;

namespace PgAgentOS.Kernel.Tests;

/// <summary>
/// The hot path: recording a step updates the conversation row without touching an indexed column, so that
/// PostgreSQL updates it in place (a HOT update, no index entries) — by hand and by workers alike.
/// </summary>
public sealed class HotPathTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    /// <summary>Updates and HOT updates of aos_agent.conversation so far (after the driver's pending statistics are flushed).</summary>
    private async Task<(long Updates, long Hot)> CountersAsync(NpgsqlConnection driver)
    {
        await driver.ExecAsync("SELECT pg_stat_force_next_flush()");   // flushed when the backend goes idle
        await using var su = await db.OpenAsync(null);
        var row = (await su.RowsAsync(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = 'aos_agent.conversation'::regclass")).Single();
        return ((long)row["n_tup_upd"]!, (long)row["n_tup_hot_upd"]!);
    }

    /// <summary>The counters once <paramref name="updates"/> more updates than <paramref name="before"/> have been reported.</summary>
    private async Task<(long Updates, long Hot)> CountersAfterAsync(NpgsqlConnection driver, (long Updates, long Hot) before, int updates)
    {
        var until = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var now = await CountersAsync(driver);
            if (now.Updates - before.Updates >= updates || DateTime.UtcNow > until)
            {
                return now;
            }
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task StepsByHandUpdateTheConversationInPlace()
    {
        await using var conn = await db.OpenAsync(TestCluster.Admin);
        var w = await K.NewWorldAsync(conn, """{"auto_approve_tools": true}""");
        var c = await conn.NewConversationAsync(w.Agent);
        var t = await conn.SendAsync(c);
        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t);
        var before = await CountersAsync(conn);
        for (var i = 0; i < 5; i++)
        {
            await conn.ExecAsync("SELECT aos_agent.record_thinking($1, $2)", t, $"thought {i}");
            await conn.ExecAsync("SELECT aos_agent.process_tool_call($1, 'web_search', '{\"query\": \"q\"}'::jsonb)", t);
            await conn.ExecAsync("SELECT aos_agent.record_tool_result($1, 'web_search', '{\"hits\": 1}')", t);
        }
        var after = await CountersAfterAsync(conn, before, 15);
        Assert.Equal(15, after.Updates - before.Updates);
        Assert.Equal(after.Updates - before.Updates, after.Hot - before.Hot);
    }

    [Fact]
    public async Task StepsOfAWorkerUpdateTheConversationInPlace()
    {
        await using var conn = await db.OpenAsync(TestCluster.Admin);
        var w = await K.NewWorldAsync(conn, """{"auto_approve_tools": true}""");
        var c = await conn.NewConversationAsync(w.Agent);
        var t = await conn.SendAsync(c);
        await using var worker = await db.OpenAsync(TestCluster.Worker);
        var token = Guid.Parse(await worker.ScalarAsync<string>("SELECT aos_agent.claim_turn('w', 30, $1) ->> 'lease_token'", w.Tenant));
        var before = await CountersAsync(worker);
        for (var i = 0; i < 5; i++)
        {
            var ticket = Guid.Parse(await worker.ScalarAsync<string>("""
                SELECT aos_agent.record_response($1, $2, '{"thinking": "search", "tool_calls": [{"name": "web_search", "arguments": {"query": "q"}}],
                                                          "usage": {"input_tokens": 10, "output_tokens": 5}}') #>> '{tool_calls,0,ticket}'
                """, t, token));
            await worker.ExecAsync("SELECT aos_agent.record_tool_result($1, 'web_search', '{\"hits\": 1}', true, NULL, $2, $3)", t, token, ticket);
        }
        var after = await CountersAfterAsync(worker, before, 10);
        Assert.Equal(10, after.Updates - before.Updates);
        Assert.Equal(after.Updates - before.Updates, after.Hot - before.Hot);
    }
}
