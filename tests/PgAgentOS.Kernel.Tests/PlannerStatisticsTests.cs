using System.Text.RegularExpressions;
using Npgsql;

namespace PgAgentOS.Kernel.Tests;

/// <summary>
/// A tenant created after the tables were analysed is in none of ANALYZE's most common values. With
/// statistics on tenant_id the planner estimated such a tenant at one row, every index leading with
/// tenant_id cost the same, and it could take a listing index ((tenant_id, created_at), (tenant_id,
/// agent_id, ...)) to find one turn's steps, filtering the tenant's whole history on every call. The
/// kernel keeps no statistics on tenant_id (sql/schemas/13_planner_statistics.sql); these tests run a
/// new tenant's turn through the worker's functions with auto_explain and read the plans of every
/// statement inside them.
/// </summary>
public sealed partial class PlannerStatisticsTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    /// <summary>Indexes for listing a tenant's rows by time or agent; a lookup by key must not use them.</summary>
    private static readonly string[] ListingIndexes =
        ["step_created_idx", "turn_created_idx", "turn_agent_idx", "conversation_agent_idx"];

    [GeneratedRegex(@"(?:Index Scan|Index Only Scan|Bitmap Index Scan)(?: Backward)? using (\w+)")]
    private static partial Regex IndexUse();

    /// <summary>Conversations, four turns each, ten steps per turn, for one tenant (as superuser, set-based).</summary>
    private static async Task LoadHistoryAsync(NpgsqlConnection su, World w, int conversations)
    {
        await su.ExecAsync("""
            INSERT INTO aos_agent.conversation (tenant_id, conversation_id, agent_id, turn_count, created_at, last_activity_at)
            SELECT $1, gen_random_uuid(), $2, 4, now() - interval '2 days', now() - interval '1 day' FROM generate_series(1, $3);
            """, w.Tenant, w.Agent, conversations);
        await su.ExecAsync("""
            INSERT INTO aos_agent.turn (tenant_id, turn_id, conversation_id, agent_id, turn_number, user_message, status, driver, attempt,
                                        step_count, created_at, started_at, completed_at)
            SELECT c.tenant_id, gen_random_uuid(), c.conversation_id, c.agent_id, g, 'question ' || g, 'completed', 'worker', 1, 10,
                   c.created_at + g * interval '1 minute', c.created_at + g * interval '1 minute', c.created_at + g * interval '2 minutes'
              FROM aos_agent.conversation c CROSS JOIN generate_series(1, 4) g
             WHERE c.tenant_id = $1 AND c.agent_id = $2
            """, w.Tenant, w.Agent);
        await su.ExecAsync("""
            INSERT INTO aos_agent.step (tenant_id, step_id, turn_id, conversation_id, step_number, step_type, status, tool_name,
                                        content, created_at, completed_at)
            SELECT t.tenant_id, gen_random_uuid(), t.turn_id, t.conversation_id, g, k.step_type, 'completed',
                   CASE WHEN k.step_type IN ('tool_call', 'tool_result') THEN 'web_search' END,
                   jsonb_build_object('text', 'step ' || g, 'arguments', '{}'::jsonb),
                   t.created_at + g * interval '1 second', t.created_at + g * interval '1 second'
              FROM aos_agent.turn t CROSS JOIN generate_series(1, 10) g
             CROSS JOIN LATERAL (SELECT (ARRAY['user_message', 'think', 'tool_call', 'tool_result', 'respond'])[1 + (g - 1) % 5] AS step_type) k
             WHERE t.tenant_id = $1 AND t.agent_id = $2
            """, w.Tenant, w.Agent);
    }

    [Fact]
    public async Task TheKernelKeepsNoStatisticsOnTenantIdOutsideTheTenantTable()
    {
        await using var su = await db.OpenAsync(null);
        var withStatistics = await su.ColumnAsync("""
            SELECT a.attrelid::regclass::text
              FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE a.attname = 'tenant_id' AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND n.nspname LIKE 'aos\_%'
               AND c.oid <> 'aos_auth.tenant'::regclass AND a.attstattarget <> 0
            """);
        Assert.Empty(withStatistics);
        Assert.True(await su.ScalarAsync<long>("""
            SELECT count(*) FROM pg_attribute WHERE attname = 'tenant_id' AND attstattarget = 0
               AND attrelid IN ('aos_agent.step'::regclass, 'aos_agent.turn'::regclass, 'aos_core.event_log'::regclass)
            """) == 3);
    }

    [Fact]
    public async Task ANewTenantsTurnFindsItsRowsByTheirKeysAfterTheTablesWereAnalysed()
    {
        await using var admin = await db.OpenAsync(TestCluster.Admin);
        await using var su = await db.OpenAsync(null);
        var old = await K.NewWorldAsync(admin);
        await LoadHistoryAsync(su, old, 400);               // 16,000 steps of a tenant the statistics know
        await su.ExecAsync("ANALYZE");

        await using var admin2 = await db.OpenAsync(TestCluster.Admin);
        var w = await K.NewWorldAsync(admin2, """{"auto_approve_tools": true}""", "{web_search}");
        await LoadHistoryAsync(su, w, 50);                  // 2,000 steps the statistics have never seen
        var conversation = await admin2.NewConversationAsync(w.Agent);
        var turn = await admin2.SendAsync(conversation, "search, then answer");

        // The worker, with every statement inside the kernel's functions explained to it.
        await using var worker = await db.OpenAsync(null);
        var plans = new List<string>();
        worker.Notice += (_, e) =>
        {
            if (e.Notice.MessageText.Contains("plan:", StringComparison.Ordinal))
            {
                lock (plans)
                {
                    plans.Add(e.Notice.MessageText);
                }
            }
        };
        await worker.ExecAsync("LOAD 'auto_explain'");
        await worker.ExecAsync("SET auto_explain.log_min_duration = 0");
        await worker.ExecAsync("SET auto_explain.log_nested_statements = on");
        await worker.ExecAsync("SET client_min_messages = log");
        await worker.ExecAsync($"SET ROLE {TestCluster.Worker}");

        var claim = await worker.JsonAsync("SELECT aos_agent.claim_turn('planner-test', 30, $1)", w.Tenant);
        Assert.Equal(turn.ToString(), (string?)claim["turn_id"]);
        var token = Guid.Parse((string)claim["lease_token"]!);
        var ticket = Guid.Parse(await worker.ScalarAsync<string>("""
            SELECT aos_agent.record_response($1, $2, '{"thinking": "look it up", "tool_calls": [{"name": "web_search", "arguments": {"query": "q"}}]}')
                   #>> '{tool_calls,0,ticket}'
            """, turn, token));
        await worker.ExecAsync("SELECT aos_agent.record_tool_result($1, 'web_search', '{\"hits\": 1}', true, NULL, $2, $3)", turn, token, ticket);
        await worker.JsonAsync("SELECT aos_agent.run_turn($1, $2)", turn, token);
        await worker.ExecAsync("""SELECT aos_agent.record_response($1, $2, '{"text": "the answer"}')""", turn, token);
        await worker.ExecAsync("RESET ROLE");
        Assert.Equal("completed", await su.TurnStatusAsync(turn));

        List<string> all;
        lock (plans)
        {
            all = [.. plans];
        }
        var used = all.SelectMany(p => IndexUse().Matches(p).Select(m => m.Groups[1].Value)).ToHashSet();
        var wrong = all.Where(p => ListingIndexes.Any(i => p.Contains("using " + i + " ", StringComparison.Ordinal))).ToList();
        Assert.True(wrong.Count == 0,
            $"{wrong.Count} of {all.Count} statements took a listing index for a lookup by key; the first:\n{wrong.FirstOrDefault()}");
        // the plans were read: the turn's steps were found by their key at least once
        Assert.Contains("step_turn_number_key", used);
    }
}
