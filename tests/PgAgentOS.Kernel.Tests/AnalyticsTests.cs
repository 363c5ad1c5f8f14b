using System.Text.Json.Nodes;

namespace PgAgentOS.Kernel.Tests;

/// <summary>
/// get_agent_analytics sums agent_hourly (what _finish_turn adds as turns end) and reads the turns
/// themselves only for the part of an hour the window starts in: both must agree with the turns.
/// </summary>
public sealed class AnalyticsTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    /// <summary>The analytics computed straight from the turns, the way they are defined.</summary>
    private const string FromTheTurns = """
        SELECT jsonb_build_object(
                   'total_conversations', count(DISTINCT t.conversation_id),
                   'total_turns', count(*),
                   'completed_turns', count(*) FILTER (WHERE t.status = 'completed'),
                   'failed_turns', count(*) FILTER (WHERE t.status IN ('failed', 'dead')),
                   'total_tokens', coalesce(sum(t.tokens_used) FILTER (WHERE t.status IN ('completed', 'failed', 'cancelled', 'dead')), 0),
                   'total_cost_usd', coalesce(round(sum(t.cost_usd) FILTER (WHERE t.status IN ('completed', 'failed', 'cancelled', 'dead')), 6), 0),
                   'avg_turn_duration_ms', coalesce(round(avg(extract(epoch FROM t.completed_at - t.created_at) * 1000)
                                                          FILTER (WHERE t.status = 'completed')), 0),
                   'success_rate', coalesce(round(100.0 * count(*) FILTER (WHERE t.status = 'completed')
                                                  / nullif(count(*) FILTER (WHERE t.status IN ('completed', 'failed', 'dead')), 0), 1), 0),
                   'tool_usage', coalesce((SELECT jsonb_object_agg(k, n) FROM (
                                            SELECT u.key AS k, sum(u.value::bigint) AS n
                                              FROM aos_agent.turn x CROSS JOIN LATERAL jsonb_each_text(x.tool_usage) u
                                             WHERE x.agent_id = $1 AND x.created_at >= now() - make_interval(days => $2)
                                             GROUP BY u.key) tu), '{}'))::text
          FROM aos_agent.turn t
         WHERE t.agent_id = $1 AND t.created_at >= now() - make_interval(days => $2)
        """;

    private static void AssertSame(JsonNode expected, JsonNode actual)
    {
        foreach (var (key, value) in expected.AsObject())
        {
            Assert.True(JsonNode.DeepEquals(value, actual[key]) || value?.ToJsonString() == actual[key]?.ToJsonString()
                        || (decimal.TryParse(value?.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture, out var a)
                            && decimal.TryParse(actual[key]?.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture, out var b) && a == b),
                $"{key}: expected {value?.ToJsonString()}, got {actual[key]?.ToJsonString()}");
        }
    }

    [Fact]
    public async Task HourlySumsAgreeWithTheTurnsTheySummarise()
    {
        await using var conn = await db.OpenAsync(TestCluster.Admin);
        var w = await K.NewWorldAsync(conn, """{"auto_approve_tools": true}""");
        await using var su = await db.OpenAsync(null);
        // completed with tool calls (twice), failed, cancelled, and one still queued
        for (var i = 0; i < 2; i++)
        {
            var t = await conn.SendAsync(await conn.NewConversationAsync(w.Agent), "search " + i);
            await conn.ExecAsync("SELECT aos_agent.run_turn($1)", t);
            await conn.ExecAsync("SELECT aos_agent.process_tool_call($1, 'web_search', '{\"query\": \"q\"}'::jsonb)", t);
            await conn.ExecAsync("SELECT aos_agent.record_tool_result($1, 'web_search', '{\"hits\": 1}')", t);
            await conn.ExecAsync("SELECT aos_agent.complete_turn($1, 'done', 120 + $2, 0.0025)", t, i);
        }
        var failed = await conn.SendAsync(await conn.NewConversationAsync(w.Agent), "fails");
        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", failed);
        await conn.ExecAsync("SELECT aos_agent.fail_turn($1, 'provider down')", failed);
        var conv = await conn.NewConversationAsync(w.Agent);
        var cancelled = await conn.SendAsync(conv, "never mind");
        await conn.ExecAsync("SELECT aos_agent.cancel_turn($1, 'changed my mind')", cancelled);
        await conn.SendAsync(conv, "still waiting");

        var analytics = await conn.JsonAsync("SELECT aos_agent.get_agent_analytics($1, 7)::text", w.Agent);
        var expected = await su.JsonAsync(FromTheTurns, w.Agent, 7);
        AssertSame(expected, analytics);
        Assert.Equal(5, (int)analytics["total_turns"]!);
        Assert.Equal(2, (int)analytics["completed_turns"]!);
        Assert.Equal(1, (int)analytics["failed_turns"]!);
        Assert.Equal(2, (int)analytics["tool_usage"]!["web_search"]!);
        Assert.Equal(241L, (long)analytics["total_tokens"]!);
        Assert.Equal(4L, await su.ScalarAsync<long>("SELECT sum(finished_turns)::bigint FROM aos_agent.agent_hourly WHERE agent_id = $1", w.Agent));
    }

    [Fact]
    public async Task TheHourTheWindowStartsInIsReadFromTheTurns()
    {
        // One finished turn just inside a one-day window and one just outside it, both summed in
        // agent_hourly under the hours they were created in: the one inside counts once, the other not.
        // Between minutes 5 and 55 of an hour both turns fall in the same hour, so each gets its own
        // shard: two turns hashed to one shard would collide on agent_hourly's key.
        await using var conn = await db.OpenAsync(TestCluster.Admin);
        var w = await K.NewWorldAsync(conn);
        await using var su = await db.OpenAsync(null);
        var conv = await conn.NewConversationAsync(w.Agent);
        await su.ExecAsync("""
            WITH t AS (
                SELECT * FROM (VALUES (1, now() - interval '1 day' + interval '5 minutes', 70, '{"clock": 1}'::jsonb),
                                      (2, now() - interval '1 day' - interval '5 minutes', 900, '{"clock": 5}'::jsonb)) v(n, at, tokens, tools)),
            ins AS (
                INSERT INTO aos_agent.turn (tenant_id, turn_id, conversation_id, agent_id, turn_number, user_message, status, driver, attempt,
                                            tokens_used, tool_usage, created_at, started_at, completed_at)
                SELECT $1, gen_random_uuid(), $2, $3, 100 + n, 'old ' || n, 'completed', 'manual', 1, tokens, tools, at, at, at + interval '2 seconds'
                  FROM t
                RETURNING turn_number - 100 AS n, created_at, tokens_used, tool_usage)
            INSERT INTO aos_agent.agent_hourly (tenant_id, agent_id, hour, shard, finished_turns, completed_turns, tokens_used, completed_ms, tool_usage)
            SELECT $1, $3, aos_core._hour(created_at), n::smallint, 1, 1, tokens_used, 2000, tool_usage FROM ins
            """, w.Tenant, conv, w.Agent);
        var analytics = await conn.JsonAsync("SELECT aos_agent.get_agent_analytics($1, 1)::text", w.Agent);
        Assert.Equal(1, (int)analytics["total_turns"]!);
        Assert.Equal(1, (int)analytics["completed_turns"]!);
        Assert.Equal(70L, (long)analytics["total_tokens"]!);
        Assert.Equal(1, (int)analytics["tool_usage"]!["clock"]!);
        Assert.Equal(2000, (int)analytics["avg_turn_duration_ms"]!);
        AssertSame(await su.JsonAsync(FromTheTurns, w.Agent, 1), analytics);
    }
}
