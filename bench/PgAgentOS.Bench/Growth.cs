using System.Diagnostics;
using System.Globalization;
using Npgsql;
using NpgsqlTypes;
using PgAgentOS.Embedded;

namespace PgAgentOS.Bench;

/// <summary>
/// Figure 6: a history preloaded with set-based SQL (as superuser) that looks like what the
/// kernel records: tenants of very different sizes (Zipf: tenant k gets 1/k of the traffic), five
/// agents each (the first busiest), conversations of four turns, turns of six steps (user message,
/// thinking, web_search call, its result, thinking, answer) with the event of each state change,
/// the approval, the tool execution and the run of every call, spread over the last 30 days; and
/// a few turns of the biggest tenant waiting for approval. Event hashes are placeholders: the
/// preloaded chains do not verify (nothing here reads them).
/// </summary>
internal static class Growth
{
    private const int StepsPerConversation = 24;
    private const int ChunkConversations = 4_000; // about 100k steps per transaction

    /// <summary>Tenants of the preloaded history, for a largest size.</summary>
    public static int TenantsFor(long largest) => (int)Math.Clamp(largest / 1_000, 20, 1_000);

    /// <summary>Step rows in the database.</summary>
    public static async Task<long> StepCountAsync(BenchServer server, CancellationToken ct) =>
        await server.ScalarSuperAsync<long>("SELECT count(*) FROM aos_agent.step", ct);

    /// <summary>Creates the tenants and agents of the preloaded history (once).</summary>
    public static async Task SetUpAsync(BenchServer server, int tenants, CancellationToken ct)
    {
        var t = tenants.ToString(CultureInfo.InvariantCulture);
        await server.ExecSuperAsync($$$"""
            CREATE TABLE bench.growth_tenant (rank integer PRIMARY KEY, tenant_id uuid NOT NULL, cum float8 NOT NULL);
            CREATE INDEX ON bench.growth_tenant (cum);
            CREATE TABLE bench.growth_agent (tenant_rank integer, agent_no integer, agent_id uuid NOT NULL, PRIMARY KEY (tenant_rank, agent_no));

            WITH w AS (SELECT g AS rank, 1.0 / g AS weight FROM generate_series(1, {{{t}}}) g)
            INSERT INTO bench.growth_tenant (rank, tenant_id, cum)
            SELECT rank, gen_random_uuid(), sum(weight) OVER (ORDER BY rank) / sum(weight) OVER () FROM w;
            UPDATE bench.growth_tenant SET cum = 1 WHERE rank = {{{t}}};

            INSERT INTO aos_auth.tenant (tenant_id, name, display_name, created_at)
            SELECT tenant_id, 'growth-' || rank, 'Preloaded tenant ' || rank, now() - interval '60 days' FROM bench.growth_tenant;

            INSERT INTO bench.growth_agent (tenant_rank, agent_no, agent_id)
            SELECT rank, a, gen_random_uuid() FROM bench.growth_tenant CROSS JOIN generate_series(0, 4) a;

            INSERT INTO aos_agent.agent (tenant_id, agent_id, name, tools, config, model_id, created_at)
            SELECT t.tenant_id, a.agent_id, 'agent-' || a.agent_no, ARRAY['web_search'],
                   '{"auto_approve_tools": true, "max_iterations": 10, "max_tokens_per_turn": 200000, "max_turn_seconds": 600, "max_attempts": 3, "dispatch": "worker", "history_turns": 20, "thinking_visible": true, "model_params": {}}',
                   (SELECT model_id FROM aos_meta.llm_model_registry WHERE provider = 'builtin' AND model_name = 'scripted'),
                   now() - interval '60 days'
              FROM bench.growth_agent a JOIN bench.growth_tenant t ON t.rank = a.tenant_rank;
            """, ct);
        await server.ExecSuperAsync(PendingSql, ct);
    }

    /// <summary>Adds history until the database holds at least <paramref name="target"/> steps.</summary>
    public static async Task<double> PreloadAsync(BenchServer server, long target, BenchProgress progress, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        var have = await StepCountAsync(server, ct);
        var start = have;
        while (have < target)
        {
            var convs = (int)Math.Min(ChunkConversations, Math.Max(1, (target - have + StepsPerConversation - 1) / StepsPerConversation));
            await server.ExecSuperAsync(ChunkSql(convs), ct);
            have += (long)convs * StepsPerConversation;
            var rate = (have - start) / Math.Max(sw.Elapsed.TotalSeconds, 1e-3);
            progress.Tick(string.Create(CultureInfo.InvariantCulture,
                $"preloading history: {have:N0}/{target:N0} steps ({rate:N0} steps/s, about {(target - have) / Math.Max(rate, 1):N0} s left)"));
        }
        progress.Tick("VACUUM ANALYZE of the preloaded tables");
        foreach (var table in new[] { "aos_agent.step", "aos_core.event_log", "aos_agent.turn", "aos_agent.agent_hourly", "aos_agent.conversation",
                                      "aos_agent.approval", "aos_agent.tool_execution", "aos_core.run", "aos_agent.agent", "aos_auth.tenant" })
        {
            await server.ExecSuperAsync($"VACUUM (ANALYZE) {table}", ct);
        }
        return sw.Elapsed.TotalSeconds;
    }

    private static string ChunkSql(int conversations) => $$"""
        CREATE TEMP TABLE g_conv ON COMMIT DROP AS
        SELECT gen_random_uuid() AS conversation_id, t.tenant_id, a.agent_id, c.created_at
          FROM (SELECT g, random() AS r1, random() AS r2,
                       now() - interval '1 hour' - random() * interval '30 days' AS created_at
                  FROM generate_series(1, {{conversations}}) g) c
         CROSS JOIN LATERAL (SELECT gt.tenant_id, gt.rank FROM bench.growth_tenant gt WHERE gt.cum >= c.r1 ORDER BY gt.cum LIMIT 1) t
          JOIN bench.growth_agent a ON a.tenant_rank = t.rank AND a.agent_no = least(4, floor(c.r2 * c.r2 * 5)::integer);

        CREATE TEMP TABLE g_turn ON COMMIT DROP AS
        SELECT gen_random_uuid() AS turn_id, gen_random_uuid() AS call_id, c.tenant_id, c.conversation_id, c.agent_id, n AS turn_number,
               c.created_at + (n - 1) * interval '2 minutes' AS created_at,
               substr(repeat(md5(c.conversation_id::text || n) || ' ', 2), 1, 90) AS user_message,
               substr(repeat(md5(c.conversation_id::text || n || 'a') || ' ' || md5(random()::text) || ' ', 7), 1, 440) AS answer
          FROM g_conv c CROSS JOIN generate_series(1, 4) n;

        INSERT INTO aos_agent.conversation (tenant_id, conversation_id, agent_id, status, dispatch, turn_count, total_tokens, total_cost_usd,
                                            run_state, cur_attempt, cur_model_id, cur_phase, cur_step_count, cur_iteration,
                                            cur_max_iterations, cur_max_tokens, event_seq, event_head, created_at, last_activity_at)
        SELECT c.tenant_id, c.conversation_id, c.agent_id, 'active', 'worker', 4, 4 * 2750, 0,
               'idle', 1, (SELECT model_id FROM aos_meta.llm_model_registry WHERE provider = 'builtin' AND model_name = 'scripted'),
               'model', 6, 2, 10, 200000, 25, sha256(convert_to(c.conversation_id::text, 'UTF8')),
               c.created_at, c.created_at + interval '8 minutes'
          FROM g_conv c;

        INSERT INTO aos_agent.turn (tenant_id, turn_id, conversation_id, agent_id, turn_number, user_message, status, driver,
                                    assistant_message, attempt, max_attempts, step_count, iteration_count, input_tokens, output_tokens,
                                    tokens_used, cost_usd, active_ms, model_id, tool_usage, budget, created_at, started_at, completed_at)
        SELECT t.tenant_id, t.turn_id, t.conversation_id, t.agent_id, t.turn_number, t.user_message, 'completed', 'worker',
               t.answer, 1, 3, 6, 2, 2600, 150, 2750, 0, 1800,
               (SELECT model_id FROM aos_meta.llm_model_registry WHERE provider = 'builtin' AND model_name = 'scripted'),
               '{"web_search": 1}', '{"max_iterations": 10, "max_tokens": 200000, "max_cost_usd": null, "max_seconds": 600}',
               t.created_at, t.created_at + interval '40 ms', t.created_at + interval '1900 ms'
          FROM g_turn t;

        -- how they ended, summed per agent and hour as _finish_turn does
        INSERT INTO aos_agent.agent_hourly AS h (tenant_id, agent_id, hour, shard, finished_turns, completed_turns, failed_turns,
                                                 tokens_used, cost_usd, completed_ms, tool_usage)
        SELECT t.tenant_id, t.agent_id, aos_core._hour(t.created_at), (abs(hashtext(t.turn_id::text)) % 16)::smallint,
               count(*), count(*), 0, 2750 * count(*), 0, 1900 * count(*), jsonb_build_object('web_search', count(*))
          FROM g_turn t
         GROUP BY 1, 2, 3, 4
        ON CONFLICT (tenant_id, agent_id, hour, shard) DO UPDATE
           SET finished_turns = h.finished_turns + excluded.finished_turns,
               completed_turns = h.completed_turns + excluded.completed_turns,
               tokens_used = h.tokens_used + excluded.tokens_used,
               completed_ms = h.completed_ms + excluded.completed_ms,
               tool_usage = aos_core._merge_counts(h.tool_usage, excluded.tool_usage);

        INSERT INTO aos_agent.step (tenant_id, step_id, turn_id, conversation_id, step_number, step_type, status, iteration, attempt,
                                    tool_name, call_id, args_hash, parent_step_id, content, tokens, duration_ms, created_at, completed_at)
        SELECT t.tenant_id, CASE WHEN s.n = 3 THEN t.call_id ELSE gen_random_uuid() END, t.turn_id, t.conversation_id, s.n,
               (ARRAY['user_message', 'think', 'tool_call', 'tool_result', 'think', 'respond'])[s.n],
               'completed',
               CASE WHEN s.n = 1 THEN 0 WHEN s.n <= 4 THEN 1 ELSE 2 END,
               CASE WHEN s.n = 1 THEN 0 ELSE 1 END,
               CASE WHEN s.n IN (3, 4) THEN 'web_search' END,
               CASE WHEN s.n IN (3, 4) THEN 'call_1' END,
               CASE WHEN s.n = 3 THEN sha256(convert_to(x.q, 'UTF8')) END,
               CASE WHEN s.n = 4 THEN t.call_id END,
               CASE s.n
                   WHEN 1 THEN jsonb_build_object('text', t.user_message)
                   WHEN 3 THEN jsonb_build_object('tool', 'web_search', 'arguments', jsonb_build_object('query', x.q),
                                   'decision', jsonb_build_object('status', 'approved', 'source', 'auto', 'reason', 'agent auto-approves this tool'))
                   WHEN 4 THEN jsonb_build_object('tool', 'web_search', 'success', true, 'output', jsonb_build_object('results', jsonb_build_array(
                                   jsonb_build_object('title', substr(x.txt, 1, 30), 'url', 'https://example.org/' || substr(x.q, 1, 6), 'snippet', substr(x.txt, 31, 90)),
                                   jsonb_build_object('title', substr(x.txt, 121, 30), 'url', 'https://example.org/' || substr(x.q, 7, 6), 'snippet', substr(x.txt, 151, 90)),
                                   jsonb_build_object('title', substr(x.txt, 241, 30), 'url', 'https://example.org/' || substr(x.q, 13, 6), 'snippet', substr(x.txt, 271, 90)))))
                   WHEN 6 THEN jsonb_build_object('text', t.answer)
                   ELSE jsonb_build_object('reasoning', x.txt)
               END,
               CASE WHEN s.n IN (3, 6) THEN 1300 END,
               CASE WHEN s.n = 3 THEN 420 END,
               t.created_at + s.n * interval '300 ms', t.created_at + s.n * interval '300 ms'
          FROM g_turn t
         CROSS JOIN generate_series(1, 6) s(n)
         CROSS JOIN LATERAL (SELECT substr(repeat(md5(t.turn_id::text || s.n) || ' ' || md5(random()::text || s.n) || ' ', 7), 1, 440) AS txt,
                                    substr(md5(t.call_id::text || s.n) || md5(random()::text), 1, 60) AS q) x;

        INSERT INTO aos_agent.approval (tenant_id, step_id, kind, turn_id, tool_name, args_hash, decision, source, decided_by_role, note, decided_at)
        SELECT t.tenant_id, t.call_id, 'approval', t.turn_id, 'web_search', sha256(convert_to(t.call_id::text, 'UTF8')), 'approved', 'auto',
               'aos_runner', 'agent auto-approves this tool', t.created_at + interval '900 ms'
          FROM g_turn t;

        INSERT INTO aos_agent.tool_execution (tenant_id, step_id, turn_id, attempt, worker_id, status, started_at, finished_at)
        SELECT t.tenant_id, t.call_id, t.turn_id, 1, 'worker-1', 'succeeded', t.created_at + interval '900 ms', t.created_at + interval '1200 ms'
          FROM g_turn t;

        INSERT INTO aos_core.run (tenant_id, turn_id, conversation_id, attempt, driver, worker_id, lease_token, status, started_at, ended_at)
        SELECT t.tenant_id, t.turn_id, t.conversation_id, 1, 'worker', 'worker-1', gen_random_uuid(), 'succeeded',
               t.created_at + interval '40 ms', t.created_at + interval '1900 ms'
          FROM g_turn t;

        INSERT INTO aos_core.event_log (tenant_id, chain_id, seq, event_type, entity_id, turn_id, actor, payload, created_at, hash)
        SELECT c.tenant_id, c.conversation_id, 1, 'conversation.started', c.conversation_id, NULL, 'role:aos',
               jsonb_build_object('agent_id', c.agent_id, 'context_sha256', md5(c.conversation_id::text) || md5(c.agent_id::text)),
               c.created_at, sha256(convert_to(c.conversation_id::text || 'start', 'UTF8'))
          FROM g_conv c;

        INSERT INTO aos_core.event_log (tenant_id, chain_id, seq, event_type, entity_id, turn_id, actor, payload, created_at, hash)
        SELECT t.tenant_id, t.conversation_id, 1 + (t.turn_number - 1) * 6 + e.n,
               (ARRAY['turn.queued', 'turn.started', 'model.responded', 'tool.result', 'turn.answered', 'turn.completed'])[e.n],
               CASE WHEN e.n IN (1, 2, 6) THEN t.turn_id END, t.turn_id,
               CASE WHEN e.n = 1 THEN 'role:aos' ELSE 'role:aos_runner' END,
               CASE e.n
                   WHEN 1 THEN jsonb_build_object('turn_id', t.turn_id, 'turn_number', t.turn_number, 'steps', jsonb_build_array(
                                   jsonb_build_object('id', gen_random_uuid(), 'type', 'user_message', 'sha256', h.a)))
                   WHEN 2 THEN jsonb_build_object('attempt', 1, 'driver', 'worker', 'worker', 'worker-1')
                   WHEN 3 THEN jsonb_build_object('first_step', 2, 'input_tokens', 1200, 'output_tokens', 60, 'steps', jsonb_build_array(
                                   jsonb_build_object('id', gen_random_uuid(), 'type', 'think', 'sha256', h.a),
                                   jsonb_build_object('id', t.call_id, 'type', 'tool_call', 'sha256', h.b)))
                   WHEN 4 THEN jsonb_build_object('first_step', 4, 'ticket', gen_random_uuid(), 'steps', jsonb_build_array(
                                   jsonb_build_object('id', gen_random_uuid(), 'type', 'tool_result', 'sha256', h.a)))
                   WHEN 5 THEN jsonb_build_object('first_step', 5, 'input_tokens', 1400, 'output_tokens', 90, 'steps', jsonb_build_array(
                                   jsonb_build_object('id', gen_random_uuid(), 'type', 'think', 'sha256', h.a),
                                   jsonb_build_object('id', gen_random_uuid(), 'type', 'respond', 'sha256', h.b)))
                   ELSE jsonb_build_object('answer_sha256', h.b)
               END,
               t.created_at + e.n * interval '300 ms',
               sha256(convert_to(t.turn_id::text || e.n, 'UTF8'))
          FROM g_turn t
         CROSS JOIN generate_series(1, 6) e(n)
         CROSS JOIN LATERAL (SELECT md5(t.turn_id::text || e.n) || md5(t.call_id::text || e.n) AS a,
                                    md5(t.call_id::text || e.n || 'b') || md5(t.turn_id::text || e.n || 'b') AS b) h;
        """;

    /// <summary>Twenty turns of the biggest tenant waiting for a human decision on a tool call.</summary>
    private const string PendingSql = """
        CREATE TEMP TABLE g_wait AS
        SELECT gen_random_uuid() AS conversation_id, gen_random_uuid() AS turn_id, gen_random_uuid() AS call_id, t.tenant_id, a.agent_id,
               now() - g * interval '7 minutes' AS created_at
          FROM bench.growth_tenant t CROSS JOIN generate_series(1, 20) g
          JOIN bench.growth_agent a ON a.tenant_rank = t.rank AND a.agent_no = g % 5
         WHERE t.rank = 1;

        INSERT INTO aos_agent.conversation (tenant_id, conversation_id, agent_id, status, dispatch, turn_count, run_state, active_turn_id,
                                            cur_attempt, cur_model_id, cur_phase, cur_step_count, cur_iteration, event_seq, event_head,
                                            created_at, last_activity_at)
        SELECT w.tenant_id, w.conversation_id, w.agent_id, 'active', 'worker', 1, 'waiting', w.turn_id, 1,
               (SELECT model_id FROM aos_meta.llm_model_registry WHERE provider = 'builtin' AND model_name = 'scripted'),
               'model', 3, 1, 4, sha256(convert_to(w.conversation_id::text, 'UTF8')), w.created_at, w.created_at + interval '1 s'
          FROM g_wait w;

        INSERT INTO aos_agent.turn (tenant_id, turn_id, conversation_id, agent_id, turn_number, user_message, status, driver, attempt,
                                    step_count, iteration_count, budget, created_at, started_at)
        SELECT w.tenant_id, w.turn_id, w.conversation_id, w.agent_id, 1, 'Please search the web for the quarterly figures.', 'waiting_tool',
               'worker', 1, 3, 1, '{"max_iterations": 10, "max_tokens": 200000, "max_cost_usd": null, "max_seconds": 600}',
               w.created_at, w.created_at + interval '40 ms'
          FROM g_wait w;

        INSERT INTO aos_agent.step (tenant_id, step_id, turn_id, conversation_id, step_number, step_type, status, iteration, attempt,
                                    tool_name, call_id, args_hash, content, created_at, completed_at)
        SELECT w.tenant_id, CASE WHEN s.n = 3 THEN w.call_id ELSE gen_random_uuid() END, w.turn_id, w.conversation_id, s.n,
               (ARRAY['user_message', 'think', 'tool_call'])[s.n], CASE WHEN s.n = 3 THEN 'pending' ELSE 'completed' END,
               CASE WHEN s.n = 1 THEN 0 ELSE 1 END, CASE WHEN s.n = 1 THEN 0 ELSE 1 END,
               CASE WHEN s.n = 3 THEN 'web_search' END, CASE WHEN s.n = 3 THEN 'call_1' END,
               CASE WHEN s.n = 3 THEN sha256(convert_to(w.call_id::text, 'UTF8')) END,
               CASE s.n WHEN 1 THEN '{"text": "Please search the web for the quarterly figures."}'::jsonb
                        WHEN 2 THEN jsonb_build_object('reasoning', repeat('I should search for the figures first. ', 10))
                        ELSE jsonb_build_object('tool', 'web_search', 'arguments', jsonb_build_object('query', 'quarterly figures ' || w.turn_id),
                                                'decision', jsonb_build_object('status', 'pending', 'source', 'human', 'reason', 'the agent requires approval of tool calls'))
               END,
               w.created_at + s.n * interval '300 ms', CASE WHEN s.n < 3 THEN w.created_at + s.n * interval '300 ms' END
          FROM g_wait w CROSS JOIN generate_series(1, 3) s(n);

        INSERT INTO aos_core.event_log (tenant_id, chain_id, seq, event_type, entity_id, turn_id, actor, payload, created_at, hash)
        SELECT w.tenant_id, w.conversation_id, e.n,
               (ARRAY['conversation.started', 'turn.queued', 'turn.started', 'model.responded'])[e.n],
               CASE WHEN e.n = 1 THEN w.conversation_id WHEN e.n < 4 THEN w.turn_id END, CASE WHEN e.n > 1 THEN w.turn_id END,
               'role:aos', jsonb_build_object('n', e.n), w.created_at + e.n * interval '100 ms',
               sha256(convert_to(w.turn_id::text || e.n, 'UTF8'))
          FROM g_wait w CROSS JOIN generate_series(1, 4) e(n);
        DROP TABLE g_wait;
        """;

    /// <summary>The biggest preloaded tenant and its busiest agent.</summary>
    public static async Task<(Guid Tenant, Guid Agent)> BiggestAsync(BenchServer server, CancellationToken ct)
    {
        await using var conn = await server.OpenSuperAsync(ct: ct);
        await using var cmd = new NpgsqlCommand(
            "SELECT t.tenant_id, a.agent_id FROM bench.growth_tenant t JOIN bench.growth_agent a ON a.tenant_rank = t.rank AND a.agent_no = 0 WHERE t.rank = 1", conn);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return (r.GetGuid(0), r.GetGuid(1));
    }

    /// <summary>The monitoring queries, as the application sees them (administrator login bound to the tenant, RLS on).</summary>
    public static async Task ViewsAsync(BenchServer server, NpgsqlDataSource adminSource, Guid tenant, Guid agent, int runs, GrowthPoint into,
        CancellationToken ct)
    {
        var queries = new (string Name, string Sql)[]
        {
            ("realtime_steps", "SELECT * FROM aos_agent.realtime_steps"),
            ("tool_call_queue", "SELECT * FROM aos_agent.tool_call_queue"),
            ("get_agent_analytics", "SELECT aos_agent.get_agent_analytics($2, 7)"),
        };
        await using var conn = await adminSource.OpenConnectionAsync(ct);
        foreach (var (name, sql) in queries)
        {
            var ms = new List<double>(runs);
            for (var i = 0; i < runs + 3; i++)
            {
                await using var tx = await conn.BeginTransactionAsync(ct);
                await using (var bind = new NpgsqlCommand("SELECT aos_auth.set_tenant($1, true)", conn, tx))
                {
                    bind.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Uuid, Value = tenant });
                    await bind.ExecuteNonQueryAsync(ct);
                }
                await using (var cmd = new NpgsqlCommand(sql.Replace("$2", "$1", StringComparison.Ordinal), conn, tx))
                {
                    if (sql.Contains("$2", StringComparison.Ordinal))
                    {
                        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Uuid, Value = agent });
                    }
                    var t0 = Stopwatch.GetTimestamp();
                    await using (var r = await cmd.ExecuteReaderAsync(ct))
                    {
                        while (await r.ReadAsync(ct))
                        {
                            for (var c = 0; c < r.FieldCount; c++)
                            {
                                _ = r.GetValue(c);
                            }
                        }
                    }
                    if (i >= 3)
                    {
                        ms.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                    }
                }
                await tx.CommitAsync(ct);
            }
            into.Views[name] = LatencyStats.Of(ms);

            await using (var tx = await conn.BeginTransactionAsync(ct))
            {
                await using (var bind = new NpgsqlCommand("SELECT aos_auth.set_tenant($1, true)", conn, tx))
                {
                    bind.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Uuid, Value = tenant });
                    await bind.ExecuteNonQueryAsync(ct);
                }
                await using var explain = new NpgsqlCommand("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql.Replace("$2", "$1", StringComparison.Ordinal), conn, tx);
                if (sql.Contains("$2", StringComparison.Ordinal))
                {
                    explain.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Uuid, Value = agent });
                }
                var lines = new List<string>();
                await using (var r = await explain.ExecuteReaderAsync(ct))
                {
                    while (await r.ReadAsync(ct))
                    {
                        lines.Add(r.GetString(0));
                    }
                }
                into.Plans[name] = string.Join('\n', lines);
                await tx.CommitAsync(ct);
            }
        }
        into.Plans["get_agent_analytics (statements inside, by auto_explain)"] = await NestedPlansAsync(server, tenant, agent, ct);
        into.ViewTenantSteps = await server.ScalarSuperAsync<long>(
            $"SELECT count(*) FROM aos_agent.step WHERE tenant_id = '{tenant}'", ct);
        into.DatabaseBytes = await server.ScalarSuperAsync<long>($"SELECT pg_database_size('{BenchServer.Database}')", ct);
    }

    /// <summary>The plans of the statements inside get_agent_analytics (auto_explain, as notices), the slowest first.</summary>
    private static async Task<string> NestedPlansAsync(BenchServer server, Guid tenant, Guid agent, CancellationToken ct)
    {
        await using var conn = await server.OpenSuperAsync(ct: ct);
        var notices = new List<string>();
        conn.Notice += (_, e) => notices.Add(e.Notice.MessageText);
        await using (var setup = new NpgsqlCommand("""
            LOAD 'auto_explain';
            SET auto_explain.log_min_duration = 0;
            SET auto_explain.log_analyze = on;
            SET auto_explain.log_buffers = on;
            SET auto_explain.log_timing = on;
            SET auto_explain.log_nested_statements = on;
            SET auto_explain.log_level = 'notice';
            """, conn))
        {
            await setup.ExecuteNonQueryAsync(ct);
        }
        await using (var tx = await conn.BeginTransactionAsync(ct))
        {
            await using (var role = new NpgsqlCommand($"SET LOCAL ROLE {ClusterLifecycle.AdminLogin}", conn, tx))
            {
                await role.ExecuteNonQueryAsync(ct);
            }
            await using (var bind = new NpgsqlCommand("SELECT aos_auth.set_tenant($1, true)", conn, tx))
            {
                bind.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Uuid, Value = tenant });
                await bind.ExecuteNonQueryAsync(ct);
            }
            notices.Clear();
            await using (var cmd = new NpgsqlCommand("SELECT aos_agent.get_agent_analytics($1, 7)", conn, tx))
            {
                cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Uuid, Value = agent });
                await cmd.ExecuteNonQueryAsync(ct);
            }
            await tx.RollbackAsync(ct);
        }
        static double Duration(string n)
        {
            var i = n.IndexOf("duration: ", StringComparison.Ordinal);
            if (i < 0)
            {
                return 0;
            }
            var rest = n[(i + 10)..];
            var end = rest.IndexOf(' ', StringComparison.Ordinal);
            return end > 0 && double.TryParse(rest[..end], NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : 0;
        }
        return string.Join("\n\n", notices.Where(n => n.Contains("Query Text", StringComparison.Ordinal))
            .OrderByDescending(Duration).Take(2));
    }

    /// <summary>Bytes per step: every relation the step path writes, against the plain table.</summary>
    public static async Task<BytesResult> BytesAsync(BenchServer server, CancellationToken ct)
    {
        var result = new BytesResult();
        await using var conn = await server.OpenSuperAsync(ct: ct);
        result.Steps = await Scalar<long>(conn, "SELECT count(*) FROM aos_agent.step", ct);
        var rawRows = await Scalar<long>(conn, "SELECT count(*) FROM bench.raw_step", ct);
        var rawBytes = await Scalar<long>(conn, "SELECT pg_total_relation_size('bench.raw_step')", ct);
        result.PerRawRow = rawBytes / (double)Math.Max(rawRows, 1);
        long total = 0;
        foreach (var rel in new[] { "aos_agent.step", "aos_core.event_log", "aos_agent.turn", "aos_agent.agent_hourly", "aos_agent.conversation",
                                    "aos_agent.approval", "aos_agent.tool_execution", "aos_core.run" })
        {
            var b = await Scalar<long>(conn, $"SELECT pg_total_relation_size('{rel}')", ct);
            total += b;
            result.ByRelation[rel] = b / (double)Math.Max(result.Steps, 1);
        }
        result.PerStep = total / (double)Math.Max(result.Steps, 1);
        result.Ratio = result.PerStep / result.PerRawRow;
        return result;
    }

    private static async Task<T> Scalar<T>(NpgsqlConnection conn, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync(ct))!;
    }
}
