using System.Text.Json.Nodes;
using Npgsql;
using PgAgentOS.Client;
using PgAgentOS.Embedded;

namespace PgAgentOS.Kernel.Tests;

/// <summary>
/// Data that lasts: a database where the kernel was installed with CREATE EXTENSION keeps every user row through
/// pg_dump and pg_restore (into a fresh database of the same cluster, as the superuser), its event chains still
/// verify, its checkpoints still match, its API keys still work and its queued turns still run. Counters are
/// never double counted: tokens and cost of turns, conversations and analytics equal what was recorded.
/// </summary>
public sealed class DumpRestoreTests
{
    private const decimal MiniIn = 0.15m, MiniOut = 0.60m;   // gpt-4o-mini, USD per million tokens

    private static decimal Price(long input, long output) => Math.Round((input * MiniIn + output * MiniOut) / 1_000_000m, 6);

    private static string Url(TestCluster tc, string database) =>
        ConnectionUrl.Build("127.0.0.1", tc.Cluster.State!.Port, database, tc.Cluster.State.SuperUser, tc.Cluster.State.SuperPassword);

    private static async Task<Dictionary<string, long>> CountsAsync(NpgsqlConnection su)
    {
        var counts = new Dictionary<string, long>();
        foreach (var t in await su.ColumnAsync("""
                     SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname LIKE 'aos\_%' AND c.relkind = 'r' ORDER BY 1
                     """))
        {
            counts[t] = await su.ScalarAsync<long>($"SELECT count(*) FROM {t}");
        }
        return counts;
    }

    [Fact]
    public async Task EveryUserRowSurvivesDumpAndRestore()
    {
        var tc = await TestCluster.GetAsync();
        await K.EnsureExtensionFilesAsync(tc);
        var source = await tc.CreateEmptyDatabaseAsync("dump");
        await tc.ExecSuperAsync(source, "CREATE EXTENSION pgagentos CASCADE");

        // ---- a tenant that used everything ------------------------------------------------------
        Guid tenant, agent, conv, queuedTurn;
        string apiKey;
        JsonObject checkpoint;
        long tokens = 0;
        decimal cost = 0;
        await using (var admin = new NpgsqlConnection(tc.ConnectionString(source, TestCluster.Admin)))
        {
            await admin.OpenAsync();
            var w = await K.NewWorldAsync(admin, """{"auto_approve_tools": true}""", model: "openai/gpt-4o-mini");
            tenant = w.Tenant;
            agent = w.Agent;
            apiKey = await admin.ScalarAsync<string>("SELECT aos_auth.create_api_key($1, 'ci')", w.Admin);
            await admin.ExecAsync("INSERT INTO aos_policy.policy_rule (tenant_id, name, skill_key, action) VALUES ($1, 'hold-code', 'code_execute', 'require_approval')", tenant);
            await admin.ExecAsync("INSERT INTO aos_egress.allowlist (tenant_id, host) VALUES ($1, 'docs.python.org')", tenant);
            await admin.ExecAsync("""
                INSERT INTO aos_meta.llm_model_registry (provider, model_name, context_window, max_output_tokens, input_price_per_mtok, output_price_per_mtok)
                VALUES ('openai_compatible', 'house-model', 32000, 4000, 0.5, 1.5)
                """);
            await admin.ExecAsync("""
                INSERT INTO aos_skills.skill (tenant_id, skill_key, name, description) VALUES ($1, 'crm_lookup', 'CRM lookup', 'Find a customer.');
                """, tenant);
            await admin.ExecAsync("INSERT INTO aos_skills.skill_impl (tenant_id, skill_key, impl_type) VALUES ($1, 'crm_lookup', 'mcp')", tenant);
            await admin.ExecAsync("INSERT INTO aos_skills.role_skill (tenant_id, role_key, skill_key) VALUES ($1, 'agent', 'crm_lookup')", tenant);

            // a turn by hand: thinking, an auto-approved search, an approved and a rejected code run, the answer
            conv = await admin.NewConversationAsync(agent);
            var t1 = await admin.SendAsync(conv, "first");
            await admin.ExecAsync("SELECT aos_agent.run_turn($1)", t1);
            await admin.ExecAsync("""SELECT aos_agent.record_response($1, NULL, '{"thinking": "search", "tool_calls": [{"name": "web_search", "arguments": {"query": "q"}}], "usage": {"input_tokens": 1000, "output_tokens": 200, "cost_usd": 0.01}}')""", t1);
            tokens += 1200; cost += 0.01m;
            await admin.ExecAsync("SELECT aos_agent.record_tool_result($1, 'web_search', '{\"hits\": 2}')", t1);
            var code = await admin.JsonAsync("SELECT aos_agent.process_tool_call($1, 'code_execute', '{\"code\": \"1\"}'::jsonb)::text", t1);
            await admin.ExecAsync("SELECT aos_agent.approve_step($1, false, $2, 'no')", Guid.Parse((string)code["step_id"]!), w.Admin);
            await admin.ExecAsync("SELECT aos_agent.complete_turn($1, 'answer one', 0, NULL, NULL, '{\"input_tokens\": 3000, \"output_tokens\": 500}')", t1);
            tokens += 3500; cost += Price(3000, 500);
            await admin.ExecAsync("SELECT aos_agent.rate_turn($1, $2, 4)", t1, w.Admin);
            await admin.ExecAsync("SELECT aos_agent.override_response($1, 'answer one, corrected', $2)", t1, w.Admin);
            await admin.ExecAsync("SELECT aos_agent.remember($1, 'user_name', '\"Ada\"')", agent);

            // a worker turn, a failed turn, then one that stays queued
            var t2 = await admin.SendAsync(conv, "second");
            await using var workerPool = NpgsqlDataSource.Create(tc.ConnectionString(source, TestCluster.Worker));
            await using var worker = new AosClient(workerPool);
            var ctx = (await worker.ClaimTurnAsync("w1", 30, tenant))!;
            Assert.Equal(t2, ctx.TurnId);
            var call = (await worker.RecordResponseAsync(t2, ctx.LeaseToken, new ModelResponse
            {
                Thinking = "look it up",
                ToolCalls = [new ModelToolCall("c1", "web_search", new JsonObject { ["query"] = "q2" })],
                Usage = new Usage(400, 0),
            })).ToolCalls.Single();
            await worker.RecordToolResultAsync(t2, "web_search", new JsonObject { ["hits"] = 0 }, leaseToken: ctx.LeaseToken, ticket: call.Ticket);
            await worker.CompleteTurnAsync(t2, "answer two", new Usage(600, 100, 0.002m), ctx.LeaseToken);
            tokens += 1100; cost += Price(400, 0) + 0.002m;
            var t3 = await admin.SendAsync(conv, "third");
            await admin.ExecAsync("SELECT aos_agent.run_turn($1)", t3);
            await admin.ExecAsync("SELECT aos_agent.record_thinking($1, 'hmm')", t3);
            await admin.ExecAsync("SELECT aos_agent.fail_turn($1, 'provider down')", t3);
            queuedTurn = await admin.SendAsync(conv, "fourth");
            var other = await admin.NewConversationAsync(agent);
            var waiting = await admin.SendAsync(other, "needs approval");
            await admin.ExecAsync("SELECT aos_agent.run_turn($1)", waiting);
            await admin.ExecAsync("SELECT aos_agent.process_tool_call($1, 'code_execute', '{\"code\": \"2\"}'::jsonb)", waiting);
            await admin.ExecAsync("SELECT aos_agent.flag_issue(NULL, 'medium', 'look at this', NULL, $1)", waiting);
            checkpoint = (JsonObject)await admin.JsonAsync("SELECT aos_core.create_checkpoint()::text");
        }

        // ---- what must survive -------------------------------------------------------------------
        await using var su1 = new NpgsqlConnection(tc.ConnectionString(source));
        await su1.OpenAsync();
        var counts = await CountsAsync(su1);
        foreach (var t in new[] { "aos_auth.tenant", "aos_auth.principal", "aos_auth.role_grant", "aos_auth.api_key", "aos_persona.persona",
                     "aos_core.run", "aos_core.event_log", "aos_core.checkpoint", "aos_core.checkpoint_head", "aos_egress.allowlist",
                     "aos_policy.policy_rule", "aos_agent.agent", "aos_agent.conversation", "aos_agent.turn", "aos_agent.step",
                     "aos_agent.approval", "aos_agent.tool_execution", "aos_agent.memory", "aos_agent.observation", "aos_agent.agent_hourly" })
        {
            Assert.True(counts[t] > 0, $"the test should put rows into {t}");
        }
        var snapshot = """
            SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
              SELECT to_jsonb(t)::text AS x FROM aos_agent.turn t UNION ALL SELECT to_jsonb(s)::text FROM aos_agent.step s
              UNION ALL SELECT to_jsonb(c)::text FROM aos_agent.conversation c UNION ALL SELECT to_jsonb(e)::text FROM aos_core.event_log e
              UNION ALL SELECT to_jsonb(a)::text FROM aos_agent.approval a UNION ALL SELECT to_jsonb(r)::text FROM aos_core.run r) u
            """;
        var before = await su1.ScalarAsync<string>(snapshot);

        // ---- dump, restore into a fresh database ----------------------------------------------------
        var file = Path.Combine(Path.GetTempPath(), $"aos-dump-{Guid.NewGuid():N}.dump");
        try
        {
            var dump = await OsProcess.RunAsync(tc.Binaries.Tool("pg_dump"), ["-Fc", "-f", file, "-d", Url(tc, source)], asServiceUser: false);
            Assert.True(dump.ExitCode == 0, dump.Message);
            var target = await tc.CreateEmptyDatabaseAsync("restored");
            var restore = await OsProcess.RunAsync(tc.Binaries.Tool("pg_restore"), ["--exit-on-error", "-d", Url(tc, target), file], asServiceUser: false);
            Assert.True(restore.ExitCode == 0, restore.Message);

            await using var su2 = new NpgsqlConnection(tc.ConnectionString(target));
            await su2.OpenAsync();
            Assert.Equal(counts, await CountsAsync(su2));
            Assert.Equal(before, await su2.ScalarAsync<string>(snapshot));
            Assert.Equal("extension", await su2.ScalarAsync<string>("SELECT install_method FROM aos_meta.installed_version"));

            // ---- it works as before ------------------------------------------------------------------
            await using var app = new NpgsqlConnection(tc.ConnectionString(target, TestCluster.App));
            await app.OpenAsync();
            Assert.Equal(tenant, await app.ScalarAsync<Guid>("SELECT aos_auth.authenticate($1)", apiKey));
            var verify = await app.JsonAsync("SELECT aos_core.verify_event_chain()::text");
            Assert.True((bool)verify["ok"]!, verify.ToJsonString());
            Assert.Equal(counts["aos_core.event_log"], (long)verify["events"]!);
            var cp = await app.JsonAsync("SELECT aos_core.verify_checkpoint($1)::text", K.Json(checkpoint.ToJsonString()));
            Assert.True((bool)cp["ok"]!, cp.ToJsonString());

            // counters: what was recorded, once
            Assert.Equal(tokens, await app.ScalarAsync<long>("SELECT sum(tokens_used)::bigint FROM aos_agent.turn WHERE conversation_id = $1", conv));
            Assert.Equal(cost, await app.ScalarAsync<decimal>("SELECT sum(cost_usd) FROM aos_agent.turn WHERE conversation_id = $1", conv));
            var totals = (await app.RowsAsync("SELECT total_tokens, total_cost_usd, turn_count FROM aos_agent.conversation WHERE conversation_id = $1", conv)).Single();
            Assert.Equal((tokens, cost, 4), ((long)totals["total_tokens"]!, (decimal)totals["total_cost_usd"]!, (int)totals["turn_count"]!));
            var analytics = await app.JsonAsync("SELECT aos_agent.get_agent_analytics($1, 7)::text", agent);
            Assert.Equal(tokens, (long)analytics["total_tokens"]!);
            Assert.Equal(cost, (decimal)analytics["total_cost_usd"]!);
            Assert.Equal(5, (int)analytics["total_turns"]!);
            Assert.Equal(2, (int)analytics["completed_turns"]!);
            Assert.Equal(1, (int)analytics["failed_turns"]!);
            Assert.Equal(4.0m, (decimal)analytics["avg_rating"]!);
            Assert.Equal(2, (int)analytics["tool_usage"]!["web_search"]!);
            Assert.Equal(1, (int)analytics["tool_usage"]!["code_execute"]!);   // finished turns only; the waiting call counts when its turn ends
            Assert.Equal(tokens, await app.ScalarAsync<long>("SELECT sum(token_count)::bigint FROM aos_agent.get_hourly_activity(NULL, 1)"));
            Assert.Equal(cost, await app.ScalarAsync<decimal>("SELECT sum(cost_usd) FROM aos_agent.get_hourly_activity(NULL, 1)"));
            Assert.Equal(tokens, await app.ScalarAsync<long>("SELECT total_tokens::bigint FROM aos_agent.agent_stats WHERE agent_id = $1", agent));
            Assert.Equal("\"Ada\"", await app.ScalarAsync<string>("SELECT aos_agent.recall($1, 'user_name')::text", agent));
            Assert.Single(await app.ColumnAsync("SELECT step_id FROM aos_agent.tool_call_queue"));

            // the queued turn runs in the restored database
            await using var workerPool2 = NpgsqlDataSource.Create(tc.ConnectionString(target, TestCluster.Worker));
            await using var worker2 = new AosClient(workerPool2);
            var next = (await worker2.ClaimTurnAsync("w2", 30, tenant))!;
            Assert.Equal(queuedTurn, next.TurnId);
            Assert.Equal("gpt-4o-mini", next.Model.Name);
            Assert.Contains(next.Messages, m => m.Content == "answer one, corrected");
            await worker2.CompleteTurnAsync(queuedTurn, "answer four", new Usage(10, 10), next.LeaseToken);
            Assert.True((bool)(await app.JsonAsync("SELECT aos_core.verify_event_chain()::text"))["ok"]!);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
