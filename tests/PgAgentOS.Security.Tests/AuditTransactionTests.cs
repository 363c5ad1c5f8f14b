using System.Text.Json;
using Npgsql;

namespace PgAgentOS.Security.Tests;

/// <summary>
/// A7: the audit is transactional with the action. Every state-changing public function (every
/// VOLATILE function in the aos_* schemas whose name does not start with _, listed from pg_proc)
/// and every direct write clients may make: called in a transaction that is rolled back, nothing
/// at all changes (no event, no row); called and committed, exactly its events are appended.
/// </summary>
public sealed class AuditTransactionTests(KernelDatabase db, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<KernelDatabase>
{
    private sealed record Call(string Login, string? BindSql, object? BindArg, string Sql, object?[] Args);

    private sealed record Case(string Function, Func<Task<Call>> Prepare, string[] Events);

    private Guid _t;
    private NpgsqlConnection _adm = null!;

    private Call Admin(string sql, params object?[] args) => new(TestCluster.Admin, "SELECT aos_auth.set_tenant($1)", _t, sql, args);

    private Call AsWorker(string sql, params object?[] args) => new(TestCluster.Worker, null, null, sql, args);

    private async Task<T> Q<T>(string sql, params object?[] args) => await _adm.ScalarAsync<T>(sql, args);

    private async Task<Guid> AgentAsync(bool worker = false) => await Q<Guid>(
        "SELECT aos_agent.create_agent($1, 'a7_' || substr(md5(random()::text), 1, 10), NULL, ARRAY['code_execute', 'web_search'], $2::jsonb)",
        _t, worker ? "{}" : """{"dispatch": "manual"}""");

    private async Task<(Guid Agent, Guid Conv)> ConvAsync(bool worker = false)
    {
        var agent = await AgentAsync(worker);
        return (agent, await Q<Guid>("SELECT aos_agent.start_conversation($1)", agent));
    }

    private async Task<(Guid Conv, Guid Turn)> TurnAsync(bool run)
    {
        var (_, conv) = await ConvAsync();
        var turn = await Q<Guid>("SELECT aos_agent.send_message($1, 'a7 message')", conv);
        if (run)
        {
            await _adm.ExecAsync("SELECT aos_agent.run_turn($1)", turn);
        }
        return (conv, turn);
    }

    private async Task<(Guid Turn, Guid Step)> PendingStepAsync()
    {
        var (_, turn) = await TurnAsync(run: true);
        var step = Guid.Parse(await Q<string>("SELECT aos_agent.process_tool_call($1, 'code_execute', '{\"code\": \"1\"}') ->> 'step_id'", turn));
        return (turn, step);
    }

    private async Task<(Guid Turn, Guid Step)> ApprovedStepAsync()
    {
        var (turn, step) = await PendingStepAsync();
        await _adm.ExecAsync("SELECT aos_agent.approve_step($1, true)", step);
        return (turn, step);
    }

    private async Task<(Guid Turn, Guid Token)> ClaimedAsync()
    {
        var (_, conv) = await ConvAsync(worker: true);
        var turn = await Q<Guid>("SELECT aos_agent.send_message($1, 'a7 worker message')", conv);
        await using var w = await db.OpenAsync(TestCluster.Worker);
        for (var i = 0; i < 10; i++)
        {
            // a turn an earlier case released is older in the queue: take it out of the way
            var claim = JsonDocument.Parse(await w.ScalarAsync<string>("SELECT aos_agent.claim_turn('a7', 3600, $1)::text", _t)).RootElement;
            if (claim.GetProperty("turn_id").GetGuid() == turn)
            {
                return (turn, claim.GetProperty("lease_token").GetGuid());
            }
        }
        throw new InvalidOperationException("the worker never got the turn it queued");
    }

    private IEnumerable<Case> Cases()
    {
        // aos_auth
        yield return new("aos_auth.create_tenant", async () => Admin("SELECT aos_auth.create_tenant($1)", "a7_" + Guid.NewGuid().ToString("N")[..8]), ["tenant.insert"]);
        // derived state (each agent's kept tools) computed again: the changes it follows were logged themselves
        yield return new("aos_agent.refresh_toolsets", async () => Admin("SELECT aos_agent.refresh_toolsets()"), []);
        yield return new("aos_auth.create_principal", async () => Admin(
            "SELECT aos_auth.create_principal($1, 'human', $2, NULL, NULL, ARRAY['viewer'])", _t, "p_" + Guid.NewGuid().ToString("N")[..8]),
            ["principal.insert", "role.granted"]);
        yield return new("aos_auth.grant_role", async () => Admin("SELECT aos_auth.grant_role($1, 'approver')", await PrincipalAsync()), ["role.granted"]);
        yield return new("aos_auth.revoke_role", async () => Admin("SELECT aos_auth.revoke_role($1, 'viewer')", await PrincipalAsync()), ["role.revoked"]);
        yield return new("aos_auth.create_api_key", async () => Admin("SELECT aos_auth.create_api_key($1)", await PrincipalAsync()), ["api_key.created"]);
        yield return new("aos_auth.revoke_api_key", async () =>
        {
            var key = await Q<string>("SELECT aos_auth.create_api_key($1)", await PrincipalAsync());
            return Admin("SELECT aos_auth.revoke_api_key($1)", await Q<Guid>("SELECT key_id FROM aos_auth.api_key WHERE key_prefix = substr($1, 5, 12)", key));
        }, ["api_key.revoked"]);
        yield return new("aos_auth.set_tenant", async () => new(TestCluster.Admin, null, null, "SELECT aos_auth.set_tenant($1)", [_t]), []);
        yield return new("aos_auth.authenticate", async () =>
            new(TestCluster.App, null, null, "SELECT aos_auth.authenticate($1)", [await Q<string>("SELECT aos_auth.create_api_key($1)", await PrincipalAsync())]), []);
        yield return new("aos_auth.clear_tenant", async () => Admin("SELECT aos_auth.clear_tenant()"), []);
        // aos_persona, aos_core
        yield return new("aos_persona.create_persona", async () => Admin("SELECT aos_persona.create_persona($1, 'p')", "persona_" + Guid.NewGuid().ToString("N")[..8]),
            ["persona.insert"]);
        yield return new("aos_core.create_checkpoint", async () => Admin("SELECT aos_core.create_checkpoint()"), []);
        // agents and conversations
        yield return new("aos_agent.create_agent", async () => Admin("SELECT aos_agent.create_agent($1, $2)", _t, "a7_" + Guid.NewGuid().ToString("N")[..8]),
            ["agent.created"]);
        yield return new("aos_agent.update_agent", async () => Admin("SELECT aos_agent.update_agent($1, p_description => 'changed')", await AgentAsync()),
            ["agent.updated"]);
        yield return new("aos_agent.start_conversation", async () => Admin("SELECT aos_agent.start_conversation($1)", await AgentAsync()), ["conversation.started"]);
        yield return new("aos_agent.send_message", async () => Admin("SELECT aos_agent.send_message($1, 'hi')", (await ConvAsync()).Conv), ["turn.queued"]);
        yield return new("aos_agent.pause_conversation", async () => Admin("SELECT aos_agent.pause_conversation($1, 'why')", (await TurnAsync(run: true)).Conv),
            ["conversation.paused"]);
        yield return new("aos_agent.resume_conversation", async () =>
        {
            var (conv, _) = await TurnAsync(run: true);
            await _adm.ExecAsync("SELECT aos_agent.pause_conversation($1)", conv);
            return Admin("SELECT aos_agent.resume_conversation($1)", conv);
        }, ["conversation.resumed"]);
        yield return new("aos_agent.close_conversation", async () => Admin("SELECT aos_agent.close_conversation($1)", (await ConvAsync()).Conv), ["conversation.closed"]);
        // driving a turn by hand
        yield return new("aos_agent.run_turn", async () => Admin("SELECT aos_agent.run_turn($1)", (await TurnAsync(run: false)).Turn), ["turn.started"]);
        yield return new("aos_agent.record_thinking", async () => Admin("SELECT aos_agent.record_thinking($1, 'hmm')", (await TurnAsync(run: true)).Turn),
            ["model.responded"]);
        yield return new("aos_agent.record_response", async () => Admin("SELECT aos_agent.record_response($1, NULL, '{\"text\": \"done\"}')", (await TurnAsync(run: true)).Turn),
            ["turn.answered", "turn.completed"]);
        yield return new("aos_agent.process_tool_call", async () => Admin("SELECT aos_agent.process_tool_call($1, 'code_execute', '{\"code\": \"1\"}')",
            (await TurnAsync(run: true)).Turn), ["model.responded"]);
        yield return new("aos_agent.approve_step", async () => Admin("SELECT aos_agent.approve_step($1, true)", (await PendingStepAsync()).Step), ["step.approved"]);
        yield return new("aos_agent.approve_step", async () => Admin("SELECT aos_agent.approve_step($1, false)", (await PendingStepAsync()).Step), ["step.rejected"]);
        yield return new("aos_agent.bulk_approve_tools", async () =>
        {
            var (_, turn) = await TurnAsync(run: true);
            var r = JsonDocument.Parse(await Q<string>("""
                SELECT aos_agent.record_response($1, NULL, '{"tool_calls": [{"name": "code_execute", "arguments": {"code": "1"}},
                                                                            {"name": "code_execute", "arguments": {"code": "2"}}]}')::text
                """, turn)).RootElement;
            var ids = r.GetProperty("tool_calls").EnumerateArray().Select(c => c.GetProperty("step_id").GetGuid()).ToArray();
            return Admin("SELECT aos_agent.bulk_approve_tools($1)", ids);
        }, ["step.approved", "step.approved"]);
        yield return new("aos_agent.begin_tool_execution", async () =>
        {
            var (turn, step) = await ApprovedStepAsync();
            return Admin("SELECT aos_agent.begin_tool_execution($1, NULL, $2, 'code_execute', '{\"code\": \"1\"}')", turn, step);
        }, ["tool.started"]);
        yield return new("aos_agent.record_tool_result", async () =>
        {
            var (turn, step) = await ApprovedStepAsync();
            var ticket = await Q<Guid>("SELECT aos_agent.begin_tool_execution($1, NULL, $2, 'code_execute', '{\"code\": \"1\"}')", turn, step);
            return Admin("SELECT aos_agent.record_tool_result($1, 'code_execute', '{\"r\": 2}', true, NULL, NULL, $2)", turn, ticket);
        }, ["tool.result"]);
        yield return new("aos_agent.complete_turn", async () => Admin("SELECT aos_agent.complete_turn($1, 'answer', 10)", (await TurnAsync(run: true)).Turn),
            ["turn.answered", "turn.completed"]);
        yield return new("aos_agent.fail_turn", async () => Admin("SELECT aos_agent.fail_turn($1, 'broken')", (await TurnAsync(run: true)).Turn),
            ["turn.error", "turn.failed"]);
        yield return new("aos_agent.cancel_turn", async () => Admin("SELECT aos_agent.cancel_turn($1)", (await TurnAsync(run: true)).Turn), ["turn.cancelled"]);
        // people in the loop
        yield return new("aos_agent.inject_message", async () => Admin("SELECT aos_agent.inject_message($1, 'psst')", (await TurnAsync(run: true)).Conv),
            ["message.injected"]);
        yield return new("aos_agent.override_response", async () =>
        {
            var (_, turn) = await TurnAsync(run: true);
            await _adm.ExecAsync("SELECT aos_agent.complete_turn($1, 'answer')", turn);
            return Admin("SELECT aos_agent.override_response($1, 'better')", turn);
        }, ["answer.overridden"]);
        yield return new("aos_agent.rate_turn", async () => Admin("SELECT aos_agent.rate_turn($1, NULL, 5)", (await TurnAsync(run: false)).Turn), ["observation.rating"]);
        yield return new("aos_agent.flag_issue", async () => Admin("SELECT aos_agent.flag_issue(NULL, 'low', 'odd', NULL, $1)", (await TurnAsync(run: false)).Turn),
            ["observation.flag"]);
        yield return new("aos_agent.add_observation", async () => Admin("SELECT aos_agent.add_observation(NULL, 'note', '{}', $1)", (await ConvAsync()).Conv),
            ["observation.note"]);
        // memory
        yield return new("aos_agent.remember", async () => Admin("SELECT aos_agent.remember($1, 'k', '1')", await AgentAsync()), ["memory.written"]);
        yield return new("aos_agent.forget", async () =>
        {
            var agent = await AgentAsync();
            await _adm.ExecAsync("SELECT aos_agent.remember($1, 'k', '1')", agent);
            return Admin("SELECT aos_agent.forget($1, 'k')", agent);
        }, ["memory.forgotten"]);
        yield return new("aos_agent.recall", async () =>
        {
            var agent = await AgentAsync();
            await _adm.ExecAsync("SELECT aos_agent.remember($1, 'k', '1')", agent);
            return Admin("SELECT aos_agent.recall($1, 'k')", agent);  // counts the read; no event
        }, []);
        // the worker's side
        yield return new("aos_agent.claim_turn", async () =>
        {
            var (_, conv) = await ConvAsync(worker: true);
            await _adm.ExecAsync("SELECT aos_agent.send_message($1, 'queued')", conv);
            return AsWorker("SELECT aos_agent.claim_turn('a7', 3600, $1)", _t);
        }, ["turn.started"]);
        yield return new("aos_agent.run_turn", async () => { var (turn, token) = await ClaimedAsync(); return AsWorker("SELECT aos_agent.run_turn($1, $2)", turn, token); }, []);
        yield return new("aos_agent.refresh_turn", async () => { var (turn, token) = await ClaimedAsync(); return AsWorker("SELECT aos_agent.refresh_turn($1, $2)", turn, token); }, []);
        yield return new("aos_agent.heartbeat", async () => { var (turn, token) = await ClaimedAsync(); return AsWorker("SELECT aos_agent.heartbeat($1, $2)", turn, token); }, []);
        yield return new("aos_agent.release_turn", async () =>
        {
            var (turn, token) = await ClaimedAsync();
            return AsWorker("SELECT aos_agent.release_turn($1, $2, 'bye')", turn, token);
        }, ["turn.released"]);
        yield return new("aos_agent.turn_memory_write", async () =>
        {
            var (turn, token) = await ClaimedAsync();
            return AsWorker("SELECT aos_agent.turn_memory_write($1, $2, 'k', '1')", turn, token);
        }, ["memory.written"]);
        // the runtime's tool support: reads, a read-only binding and the egress log (no event: the request log is its own record)
        yield return new("aos_agent.turn_skills", async () => { var (turn, token) = await ClaimedAsync(); return AsWorker("SELECT aos_agent.turn_skills($1, $2)", turn, token); }, []);
        yield return new("aos_agent.bind_turn_tenant", async () =>
        {
            var (turn, token) = await ClaimedAsync();
            // the binding works only in a read-only transaction: make the session's transactions read-only first
            return new(TestCluster.Worker, "SELECT set_config('default_transaction_read_only', 'on', false) WHERE $1::text IS NULL", null,
                "SELECT aos_agent.bind_turn_tenant($1, $2)", [turn, token]);
        }, []);
        yield return new("aos_egress.check_host", async () =>
        {
            var (turn, token) = await ClaimedAsync();
            return AsWorker("SELECT aos_egress.check_host($1, $2, 'web_search', 'GET', 'https://denied.example.com/', 'denied.example.com', 443, NULL)", turn, token);
        }, []);
        yield return new("aos_egress.log_request", async () =>
        {
            var (turn, token) = await ClaimedAsync();
            return AsWorker("""SELECT aos_egress.log_request($1, $2, '{"decision": "deny", "reason": "a7", "method": "GET", "url": "https://x.example.com/", "host": "x.example.com"}')""", turn, token);
        }, []);
        yield return new("aos_agent.turn_memory_read", async () =>
        {
            var (turn, token) = await ClaimedAsync();
            return AsWorker("SELECT aos_agent.turn_memory_read($1, $2, 'k')", turn, token);
        }, []);
        yield return new("aos_egress.remove_allowlist_entry", async () =>
        {
            await _adm.ExecAsync("INSERT INTO aos_egress.allowlist (tenant_id, host) VALUES ($1, 'gone.example.com') ON CONFLICT DO NOTHING", _t);
            return Admin("SELECT aos_egress.remove_allowlist_entry($1)",
                await Q<Guid>("SELECT allowlist_id FROM aos_egress.allowlist WHERE tenant_id = $1 AND host = 'gone.example.com'", _t));
        }, ["allowlist.delete"]);
        // direct writes clients may make (audited by triggers)
        yield return new("INSERT aos_persona.persona", async () => Admin(
            "INSERT INTO aos_persona.persona (tenant_id, name, system_prompt) VALUES ($1, $2, 'p')", _t, "pd_" + Guid.NewGuid().ToString("N")[..8]),
            ["persona.insert"]);
        yield return new("UPDATE aos_persona.persona", async () => Admin("UPDATE aos_persona.persona SET system_prompt = 'q' WHERE tenant_id = $1 AND persona_id = $2",
            _t, await PersonaAsync()), ["persona.update"]);
        yield return new("DELETE aos_persona.persona", async () => Admin("DELETE FROM aos_persona.persona WHERE tenant_id = $1 AND persona_id = $2", _t, await PersonaAsync()),
            ["persona.delete"]);
        yield return new("INSERT aos_policy.policy_rule", async () => Admin(
            "INSERT INTO aos_policy.policy_rule (tenant_id, name, action) VALUES ($1, $2, 'deny')", _t, "r_" + Guid.NewGuid().ToString("N")[..8]),
            ["policy_rule.insert"]);
        yield return new("INSERT aos_egress.allowlist", async () => Admin(
            "INSERT INTO aos_egress.allowlist (tenant_id, host) VALUES ($1, $2)", _t, "h" + Guid.NewGuid().ToString("N")[..8] + ".example.com"),
            ["allowlist.insert"]);
        yield return new("INSERT aos_skills.skill", async () => Admin(
            "INSERT INTO aos_skills.skill (tenant_id, skill_key, name, description) VALUES ($1, $2, 'n', 'd')", _t, "s_" + Guid.NewGuid().ToString("N")[..8]),
            ["skill.insert"]);
        yield return new("INSERT aos_skills.role_skill", async () => Admin(
            "INSERT INTO aos_skills.role_skill (tenant_id, role_key, skill_key) VALUES ($1, 'user', $2)", _t, "s_" + Guid.NewGuid().ToString("N")[..8]),
            ["role_skill.insert"]);
        yield return new("UPDATE aos_auth.tenant", async () => Admin("UPDATE aos_auth.tenant SET settings = '{\"x\": 1}' WHERE tenant_id = $1", _t), ["tenant.update"]);
        yield return new("INSERT aos_auth.tenant", async () => Admin("INSERT INTO aos_auth.tenant (name) VALUES ($1)", "q_" + Guid.NewGuid().ToString("N")[..8]),
            ["tenant.insert"]);
    }

    private async Task<Guid> PrincipalAsync() => await Q<Guid>(
        "SELECT aos_auth.create_principal($1, 'human', $2, NULL, NULL, ARRAY['viewer'])", _t, "p_" + Guid.NewGuid().ToString("N")[..8]);

    private async Task<Guid> PersonaAsync() => await Q<Guid>("SELECT aos_persona.create_persona($1, 'p')", "pp_" + Guid.NewGuid().ToString("N")[..8]);

    [Fact]
    public async Task EveryStateChangingFunctionLogsExactlyItsEventsAndOnlyWhenCommitted()
    {
        await using (var setup = await db.OpenAsync(TestCluster.Admin))
        {
            _t = await setup.ScalarAsync<Guid>("SELECT aos_auth.create_tenant('a7')");
        }
        _adm = await db.OpenAsync(TestCluster.Admin);
        await _adm.ExecAsync("SELECT aos_auth.set_tenant($1)", _t);
        await using var su = await db.OpenAsync(null);
        var cases = Cases().ToList();

        // Completeness: every state-changing public function has a case.
        var functions = await su.ColumnAsync("""
            SELECT DISTINCT n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname LIKE 'aos\_%' AND p.provolatile = 'v' AND p.proname !~ '^_' AND p.prorettype <> 'trigger'::regtype
            """);
        var missing = functions.Except(cases.Select(c => c.Function)).ToList();
        Assert.True(missing.Count == 0, "state-changing functions without an A7 case (add one): " + string.Join(", ", missing));

        var problems = new List<string>();
        foreach (var c in cases)
        {
            var call = await c.Prepare();
            var before = await su.ScalarAsync<string>(AllRowsDigestSql);

            // rolled back: nothing at all
            try
            {
                await RunAsync(call, commit: false);
            }
            catch (PostgresException e)
            {
                problems.Add($"{c.Function}: the call failed: {e.SqlState} {e.MessageText}");
                continue;
            }
            if (await su.ScalarAsync<string>(AllRowsDigestSql) != before)
            {
                problems.Add($"{c.Function}: a rolled-back call left rows behind");
            }

            // committed: exactly its events
            var t0 = await su.ScalarAsync<DateTime>("SELECT clock_timestamp()");
            await RunAsync(call, commit: true);
            var events = await su.ColumnAsync("SELECT event_type FROM aos_core.event_log WHERE created_at >= $1 ORDER BY created_at, seq", t0);
            if (c.Events.Length > 0 && await su.ScalarAsync<string>(AllRowsDigestSql) == before)
            {
                problems.Add($"{c.Function}: the digest of all rows did not change after a committed write (the rollback check would be blind)");
            }
            if (!events.SequenceEqual(c.Events))
            {
                problems.Add($"{c.Function}: committed, it logged [{string.Join(", ", events)}], expected [{string.Join(", ", c.Events)}]");
            }
        }
        output.WriteLine($"{cases.Count} cases, {functions.Count} state-changing functions");
        await _adm.DisposeAsync();
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    private async Task RunAsync(Call call, bool commit)
    {
        await using var conn = await db.OpenAsync(call.Login);
        if (call.BindSql is not null)
        {
            await conn.ExecAsync(call.BindSql, call.BindArg);
        }
        await using var tx = await conn.BeginTransactionAsync();
        await conn.ExecAsync(call.Sql, call.Args);
        if (commit)
        {
            await tx.CommitAsync();
        }
        else
        {
            await tx.RollbackAsync();
        }
    }

    /// <summary>A digest of every row of every kernel table.</summary>
    private const string AllRowsDigestSql = """
        SELECT md5(string_agg(d, '|' ORDER BY d)) FROM (
            SELECT c.oid::regclass || ':' || (xpath('/table/row/d/text()', query_to_xml(format(
                       'SELECT count(*) || '':'' || coalesce(md5(string_agg(t::text, '','' ORDER BY t::text)), '''') AS d FROM %s t', c.oid::regclass),
                       false, false, '')))[1]::text AS d
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname LIKE 'aos\_%' AND c.relkind IN ('r', 'p')) s
        """;
}
