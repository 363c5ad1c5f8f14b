using System.Text.Json.Nodes;
using Npgsql;

namespace PgAgentOS.Kernel.Tests;

/// <summary>Two tenants, 1,000 conversations each, 10 turns per conversation, 10 steps per turn (loaded as superuser).</summary>
public sealed class ScaleDatabase : KernelDatabase
{
    internal (Guid Tenant, Guid Agent, Guid Conversation) Data { get; private set; }

    /// <inheritdoc />
    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await using var admin = await OpenAsync(TestCluster.Admin);
        var a = await K.NewWorldAsync(admin);
        var b = await K.NewWorldAsync(admin);
        await using var su = await OpenAsync(null);
        foreach (var w in new[] { a, b })
        {
            await su.ExecAsync("""
                INSERT INTO aos_agent.conversation (tenant_id, conversation_id, agent_id, turn_count, created_at, last_activity_at)
                SELECT $1, gen_random_uuid(), $2, 10, now() - interval '7 days', now() FROM generate_series(1, 1000);
                """, w.Tenant, w.Agent);
            await su.ExecAsync("""
                INSERT INTO aos_agent.turn (tenant_id, turn_id, conversation_id, agent_id, turn_number, user_message, status, driver, attempt,
                                            step_count, tokens_used, input_tokens, cost_usd, tool_usage, created_at, started_at, completed_at)
                SELECT c.tenant_id, gen_random_uuid(), c.conversation_id, c.agent_id, g, 'question ' || g, 'completed', 'worker', 1,
                       10, 100, 100, 0.001, '{"web_search": 2}', x.at, x.at, x.at + interval '3 seconds'
                  FROM aos_agent.conversation c CROSS JOIN generate_series(1, 10) g
                 CROSS JOIN LATERAL (SELECT now() - interval '6 days' + (random() * interval '5 days') AS at) x
                 WHERE c.tenant_id = $1 AND c.agent_id = $2
                """, w.Tenant, w.Agent);
            // how they ended, as _finish_turn records it for analytics
            await su.ExecAsync("""
                INSERT INTO aos_agent.agent_hourly (tenant_id, agent_id, hour, shard, finished_turns, completed_turns, failed_turns,
                                                    tokens_used, cost_usd, completed_ms, tool_usage)
                SELECT t.tenant_id, t.agent_id, aos_core._hour(t.created_at), 0, count(*), count(*), 0, sum(t.tokens_used), sum(t.cost_usd),
                       sum(extract(epoch FROM t.completed_at - t.created_at) * 1000), jsonb_build_object('web_search', 2 * count(*))
                  FROM aos_agent.turn t WHERE t.tenant_id = $1 AND t.agent_id = $2
                 GROUP BY 1, 2, 3
                """, w.Tenant, w.Agent);
            await su.ExecAsync("""
                INSERT INTO aos_agent.step (tenant_id, step_id, turn_id, conversation_id, step_number, step_type, status, tool_name,
                                            content, created_at, completed_at)
                SELECT t.tenant_id, gen_random_uuid(), t.turn_id, t.conversation_id, g, k.step_type, 'completed',
                       CASE WHEN k.step_type IN ('tool_call', 'tool_result') THEN 'web_search' END,
                       jsonb_build_object('text', 'step ' || g, 'reasoning', 'because', 'tool', 'web_search', 'arguments', '{}'::jsonb),
                       t.created_at + g * interval '100 milliseconds', t.created_at + g * interval '100 milliseconds'
                  FROM aos_agent.turn t CROSS JOIN generate_series(1, 10) g
                 CROSS JOIN LATERAL (SELECT (ARRAY['user_message', 'think', 'tool_call', 'tool_result', 'respond'])[1 + (g - 1) % 5] AS step_type) k
                 WHERE t.tenant_id = $1 AND t.agent_id = $2
                """, w.Tenant, w.Agent);
        }
        // a few real turns through the API, some waiting for approval
        await admin.BindAsync(a.Tenant);
        var conv = await admin.NewConversationAsync(a.Agent);
        for (var i = 0; i < 3; i++)
        {
            var c = i == 0 ? conv : await admin.NewConversationAsync(a.Agent);
            var t = await admin.SendAsync(c, "live " + i);
            await admin.ExecAsync("SELECT aos_agent.run_turn($1)", t);
            await admin.ExecAsync("SELECT aos_agent.record_thinking($1, 'thinking live')", t);
            await admin.ExecAsync("SELECT aos_agent.process_tool_call($1, 'code_execute', '{\"code\": \"1\"}'::jsonb)", t);
        }
        await su.ExecAsync("ANALYZE aos_agent.step; ANALYZE aos_agent.turn; ANALYZE aos_agent.conversation; ANALYZE aos_agent.agent;");
        Assert.True(await su.ScalarAsync<long>("SELECT count(*) FROM aos_agent.step") >= 200_000);
        Data = (a.Tenant, a.Agent, conv);
    }
}

/// <summary>
/// The monitoring views stay fast however many steps there are: with about 200,000 steps over two tenants the
/// planner answers realtime_steps, tool_call_queue and friends from indexes (never a sequential scan of
/// aos_agent.step), and the analytics functions read no steps at all. Plans, not timings, are asserted.
/// </summary>
public sealed class ViewPlanTests(ScaleDatabase db) : IClassFixture<ScaleDatabase>
{
    private Task<(Guid Tenant, Guid Agent, Guid Conversation)> LoadAsync() => Task.FromResult(db.Data);

    private async Task<NpgsqlConnection> BoundAsync(Guid tenant)
    {
        var conn = await db.OpenAsync(TestCluster.Admin);
        await conn.BindAsync(tenant);
        return conn;
    }

    private static IEnumerable<JsonNode> Nodes(JsonNode plan)
    {
        yield return plan;
        if (plan["Plans"] is JsonArray children)
        {
            foreach (var c in children)
            {
                foreach (var n in Nodes(c!))
                {
                    yield return n;
                }
            }
        }
    }

    private static async Task<List<JsonNode>> PlanAsync(NpgsqlConnection conn, string sql, params object?[] args)
    {
        var json = JsonNode.Parse(await conn.ScalarAsync<string>("EXPLAIN (FORMAT JSON) " + sql, args))!;
        return [.. Nodes(json[0]!["Plan"]!)];
    }

    private static void AssertNoSeqScanOfSteps(List<JsonNode> plan, string what)
    {
        var onStep = plan.Where(n => (string?)n["Relation Name"] == "step").ToList();
        Assert.True(onStep.Count > 0, $"{what}: the plan should read aos_agent.step");
        Assert.DoesNotContain(onStep, n => (string?)n["Node Type"] == "Seq Scan");
        Assert.All(onStep, n => Assert.Contains("Index", (string)n["Node Type"]!, StringComparison.Ordinal));
    }

    [Fact]
    public async Task RealtimeStepsIsAnIndexScan()
    {
        var (tenant, _, _) = await LoadAsync();
        await using var conn = await BoundAsync(tenant);
        AssertNoSeqScanOfSteps(await PlanAsync(conn, "SELECT * FROM aos_agent.realtime_steps"), "realtime_steps");
        AssertNoSeqScanOfSteps(await PlanAsync(conn, "SELECT * FROM aos_agent.realtime_steps LIMIT 10"), "realtime_steps LIMIT 10");
        var rows = await conn.RowsAsync("SELECT * FROM aos_agent.realtime_steps");
        Assert.Equal(100, rows.Count);
        Assert.Equal("code_execute", rows[0]["tool_name"]);   // the newest step is a live tool call
    }

    [Fact]
    public async Task ToolCallQueueIsAnIndexScan()
    {
        var (tenant, _, _) = await LoadAsync();
        await using var conn = await BoundAsync(tenant);
        AssertNoSeqScanOfSteps(await PlanAsync(conn, "SELECT * FROM aos_agent.tool_call_queue"), "tool_call_queue");
        Assert.Equal(3, (await conn.RowsAsync("SELECT * FROM aos_agent.tool_call_queue")).Count);
        AssertNoSeqScanOfSteps(await PlanAsync(conn, "SELECT * FROM aos_agent.dashboard_overview"), "dashboard_overview");
        Assert.Equal(3L, await conn.ScalarAsync<long>("SELECT pending_approvals FROM aos_agent.dashboard_overview"));
    }

    [Fact]
    public async Task OneConversationsTraceAndTimelineAreIndexScans()
    {
        var (tenant, _, conv) = await LoadAsync();
        await using var conn = await BoundAsync(tenant);
        AssertNoSeqScanOfSteps(await PlanAsync(conn, "SELECT * FROM aos_agent.thinking_trace WHERE conversation_id = $1", conv), "thinking_trace");
        AssertNoSeqScanOfSteps(await PlanAsync(conn,
            "SELECT * FROM aos_agent.conversation_timeline WHERE conversation_id = $1 ORDER BY turn_number, step_number", conv), "conversation_timeline");
        AssertNoSeqScanOfSteps(await PlanAsync(conn, "SELECT * FROM aos_agent.error_log ORDER BY created_at DESC LIMIT 20"), "error_log");
        Assert.Single(await conn.RowsAsync("SELECT * FROM aos_agent.thinking_trace WHERE conversation_id = $1", conv));
    }

    [Fact]
    public async Task AnalyticsReadNoSteps()
    {
        var (tenant, agent, _) = await LoadAsync();
        await using var conn = await BoundAsync(tenant);
        const string stepReads = """
            SELECT coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0)::bigint
              FROM pg_stat_xact_user_tables WHERE relid = 'aos_agent.step'::regclass
            """;
        // Within one transaction the backend's pending table statistics only grow: compare before and after.
        await using var tx = await conn.BeginTransactionAsync();
        var stepsBefore = await conn.ScalarAsync<long>(stepReads);
        var turnsBefore = await conn.ScalarAsync<long>(stepReads.Replace("aos_agent.step", "aos_agent.turn", StringComparison.Ordinal));
        var analytics = await conn.JsonAsync("SELECT aos_agent.get_agent_analytics($1, 7)::text", agent);
        var hourly = await conn.RowsAsync("SELECT * FROM aos_agent.get_hourly_activity(NULL, 7)");
        var stats = await conn.RowsAsync("SELECT * FROM aos_agent.agent_stats");
        Assert.Equal(stepsBefore, await conn.ScalarAsync<long>(stepReads));
        Assert.True(await conn.ScalarAsync<long>(stepReads.Replace("aos_agent.step", "aos_agent.turn", StringComparison.Ordinal)) > turnsBefore,
            "the analytics read turns");
        Assert.Equal(10003, (int)analytics["total_turns"]!);
        Assert.Equal(1_000_000L, (long)analytics["total_tokens"]!);
        Assert.Equal(20_000, (int)analytics["tool_usage"]!["web_search"]!);
        Assert.Equal(10003L, hourly.Sum(h => (long)h["turn_count"]!));
        Assert.Equal(10003L, stats.Sum(s => (long)s["turns"]!));
        await tx.RollbackAsync();
    }
}
