using System.Text;
using Npgsql;

namespace PgAgentOS.Kernel.Tests;

/// <summary>A kernel database with one tenant whose agent has a turn waiting for an approval.</summary>
public sealed class BadInputDatabase : KernelDatabase
{
    internal World W { get; private set; } = null!;
    internal Guid Conversation { get; private set; }
    internal Guid Turn { get; private set; }
    internal Guid Step { get; private set; }

    /// <inheritdoc />
    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await using var conn = await OpenAsync(TestCluster.Admin);
        W = await K.NewWorldAsync(conn);
        // the application login acts for this tenant (a principal mapped to it)
        await conn.ExecAsync("SELECT aos_auth.create_principal($1, 'service', 'app', $2::name, NULL, ARRAY['approver'])", W.Tenant, TestCluster.App);
        Conversation = await conn.NewConversationAsync(W.Agent);
        Turn = await conn.SendAsync(Conversation, "question");
        await conn.ExecAsync("SELECT aos_agent.run_turn($1)", Turn);
        await conn.ExecAsync("SELECT aos_agent.record_thinking($1, 'hmm')", Turn);
        Step = Guid.Parse((string)(await conn.JsonAsync(
            "SELECT aos_agent.process_tool_call($1, 'web_search', '{\"query\": \"q\"}'::jsonb)::text", Turn))["step_id"]!);
    }
}

/// <summary>
/// Bad input to every public function of aos_agent, aos_persona and aos_meta (RELIABILITY.md I1, I2): NULLs,
/// empty strings, unknown ids, malformed and mistyped JSON, oversized content. Every refusal carries one of our
/// SQLSTATEs (never XX000, never a crash) and changes nothing.
/// </summary>
public sealed class BadInputTests(BadInputDatabase db) : IClassFixture<BadInputDatabase>
{
    /// <summary>What a refusal may say: invalid arguments, and our own codes.</summary>
    private static readonly HashSet<string> Documented =
    [
        "22004", "22023", "22P02", "22003",
        "AO001", "AO002", "AO003", "AO004", "AO005", "AO006", "AO007", "AO008", "AO009", "AO010", "AO011", "AO012", "AO013", "AO014",
    ];

    private sealed record Fn(string Schema, string Name, string[] ArgNames, string[] ArgTypes, bool ForApp, int Defaults)
    {
        public bool Optional(int i) => i >= ArgNames.Length - Defaults;
    }

    private async Task<List<Fn>> PublicFunctionsAsync()
    {
        await using var su = await db.OpenAsync(null);
        var rows = await su.RowsAsync("""
            SELECT n.nspname, p.proname,
                   coalesce(p.proargnames[1:p.pronargs], '{}') AS names,
                   ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) WITH ORDINALITY u(t, i) ORDER BY i) AS types,
                   has_function_privilege('aos_app', p.oid, 'EXECUTE') AS for_app, p.pronargdefaults::int AS defaults
              FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname IN ('aos_agent', 'aos_persona', 'aos_meta') AND p.prokind = 'f'
               AND (has_function_privilege('aos_app', p.oid, 'EXECUTE') OR has_function_privilege('aos_worker', p.oid, 'EXECUTE'))
             ORDER BY 1, 2
            """);
        return [.. rows.Select(r => new Fn((string)r["nspname"]!, (string)r["proname"]!, (string[])r["names"]!, (string[])r["types"]!, (bool)r["for_app"]!, (int)r["defaults"]!))];
    }

    /// <summary>A sensible value for an argument, by its name and type (ids of the fixture's tenant).</summary>
    private string Good(string name, string type) => (name, type) switch
    {
        ("p_turn_id", _) => $"'{db.Turn}'",
        ("p_conversation_id", _) => $"'{db.Conversation}'",
        ("p_agent_id", _) => $"'{db.W.Agent}'",
        ("p_step_id", _) => $"'{db.Step}'",
        ("p_step_ids", _) => $"ARRAY['{db.Step}']",
        ("p_persona_id", _) => $"'{db.W.Persona}'",
        ("p_tenant_id", _) => $"'{db.W.Tenant}'",
        ("p_model_id", _) => "aos_meta.find_model('openai', 'gpt-4o')",
        ("p_admin_id" or "p_observer_id" or "p_user_principal_id" or "p_principal_id", _) => $"'{db.W.Admin}'",
        (_, "uuid") => "gen_random_uuid()",
        ("p_tool_name" or "p_skill_key", _) => "'web_search'",
        ("p_severity", _) => "'low'",
        ("p_observation_type", _) => "'note'",
        ("p_message_type", _) => "'system'",
        ("p_memory_type", _) => "'fact'",
        ("p_role_key", _) => "'agent'",
        ("p_model" or "p_ref", _) => "'openai/gpt-4o'",
        ("p_provider", _) => "'openai'",
        ("p_model_name", _) => "'gpt-4o'",
        ("p_step_type", _) => "'think'",
        ("p_name", _) => "'sweep_" + Guid.NewGuid().ToString("N")[..8] + "'",
        ("p_tool_input" or "p_arguments", _) => "'{\"query\": \"q\"}'",
        (_, "text") => "'sweep'",
        (_, "text[]") => "'{web_search}'",
        ("p_attachments" or "p_rules", _) => "'[]'",
        ("p_response", _) => "'{\"thinking\": \"sweep\"}'",
        ("p_value", "jsonb") => "'1'",
        (_, "jsonb") => "'{}'",
        ("p_score", _) => "3",
        ("p_days", _) => "7",
        ("p_lease_seconds", _) => "30",
        ("p_limit", _) => "10",
        (_, "integer" or "bigint" or "numeric") => "1",
        (_, "real") => "0.5",
        (_, "boolean") => "true",
        (_, "vector") => "'[1,2,3]'",
        (_, "timestamp with time zone") => "now() + interval '1 day'",
        _ => throw new InvalidOperationException($"no sample value for {name} {type}"),
    };

    private static string Call(Fn f, IEnumerable<string> args) =>
        $"SELECT {f.Schema}.{f.Name}({string.Join(", ", args.Select((a, i) => $"({a})::{f.ArgTypes[i]}"))})";

    /// <summary>Runs a call as the login that may (app bound to the tenant, or worker), always rolled back.</summary>
    private async Task<string?> TryAsync(NpgsqlConnection app, NpgsqlConnection worker, Fn f, string sql)
    {
        var conn = f.ForApp ? app : worker;
        await using var tx = await conn.BeginTransactionAsync();
        try
        {
            await conn.ExecAsync(sql);
            return null;
        }
        catch (PostgresException e)
        {
            return e.SqlState;
        }
        finally
        {
            await tx.RollbackAsync();
        }
    }

    private async Task<(NpgsqlConnection App, NpgsqlConnection Worker)> LoginsAsync()
    {
        var app = await db.OpenAsync(TestCluster.App);
        await app.BindAsync(db.W.Tenant);
        return (app, await db.OpenAsync(TestCluster.Worker));
    }

    [Fact]
    public async Task EveryArgumentNullOneAtATimeAndAllAtOnce()
    {
        var fns = await PublicFunctionsAsync();
        Assert.True(fns.Count >= 40, $"expected the kernel's public functions, found {fns.Count}");
        var (app, worker) = await LoginsAsync();
        await using var _ = app;
        await using var __ = worker;
        var before = await K.FingerprintAsync(db);
        var bad = new List<string>();
        var calls = 0;
        foreach (var f in fns)
        {
            var good = f.ArgNames.Select((n, i) => Good(n, f.ArgTypes[i])).ToArray();
            var variants = Enumerable.Range(0, f.ArgNames.Length)
                .Select(i => good.Select((g, j) => j == i ? "NULL" : g))
                .Append(good.Select(_ => "NULL"));
            foreach (var args in variants)
            {
                var sql = Call(f, args);
                var state = await TryAsync(app, worker, f, sql);
                calls++;
                if (state is not null && !Documented.Contains(state))
                {
                    bad.Add($"{state}: {sql}");
                }
            }
        }
        Assert.True(bad.Count == 0, $"undocumented errors in {bad.Count} of {calls} calls:\n" + string.Join("\n", bad));
        Assert.Equal(1, await app.ScalarAsync<int>("SELECT 1"));   // still connected: nothing crashed
        Assert.Equal(before, await K.FingerprintAsync(db));
    }

    [Fact]
    public async Task RequiredIdsAndTextsThatAreNullAreRefusedAs22004()
    {
        var fns = await PublicFunctionsAsync();
        var (app, worker) = await LoginsAsync();
        await using var _ = app;
        await using var __ = worker;
        // the arguments without which a function cannot mean anything
        var required = new HashSet<string>(StringComparer.Ordinal)
        {
            "p_turn_id", "p_conversation_id", "p_agent_id", "p_step_id", "p_message", "p_reasoning", "p_assistant_message",
            "p_new_response", "p_error_message", "p_tool_input", "p_arguments", "p_response", "p_worker_id", "p_system_prompt",
        };
        var wrong = new List<string>();
        foreach (var f in fns)
        {
            for (var i = 0; i < f.ArgNames.Length; i++)
            {
                if (!required.Contains(f.ArgNames[i]) || f.Optional(i) || f.Name.StartsWith('_'))
                {
                    continue;
                }
                var sql = Call(f, f.ArgNames.Select((n, j) => j == i ? "NULL" : Good(n, f.ArgTypes[j])));
                var state = await TryAsync(app, worker, f, sql);
                if (state != "22004")
                {
                    wrong.Add($"{state ?? "success"}: {sql}");
                }
            }
        }
        Assert.True(wrong.Count == 0, "expected 22004:\n" + string.Join("\n", wrong));
    }

    [Fact]
    public async Task EmptyTextsUnknownIdsAndMistypedJsonAreRefusedWithOurCodes()
    {
        var fns = await PublicFunctionsAsync();
        var (app, worker) = await LoginsAsync();
        await using var _ = app;
        await using var __ = worker;
        var before = await K.FingerprintAsync(db);
        var bad = new List<string>();
        foreach (var f in fns)
        {
            var good = f.ArgNames.Select((n, i) => Good(n, f.ArgTypes[i])).ToArray();
            for (var i = 0; i < good.Length; i++)
            {
                var replacements = f.ArgTypes[i] switch
                {
                    "text" => ["''", "'   '", "'" + new string('x', 300) + "'"],
                    "uuid" => ["gen_random_uuid()", "'00000000-0000-0000-0000-000000000000'"],
                    "jsonb" => ["'[]'", "'\"text\"'", "'null'", "'42'", "'{\"a\": {\"b\": [1, {\"c\": null}]}}'"],
                    "integer" => ["-1", "0", "2147483647"],
                    "text[]" => ["'{}'", "'{NULL}'", "'{no_such_tool}'"],
                    "uuid[]" => ["'{}'", "ARRAY[gen_random_uuid()]"],
                    _ => Array.Empty<string>(),
                };
                foreach (var r in replacements)
                {
                    var sql = Call(f, good.Select((g, j) => j == i ? r : g));
                    var state = await TryAsync(app, worker, f, sql);
                    if (state is not null && !Documented.Contains(state))
                    {
                        bad.Add($"{state}: {sql}");
                    }
                }
            }
        }
        Assert.True(bad.Count == 0, "undocumented errors:\n" + string.Join("\n", bad));
        Assert.Equal(before, await K.FingerprintAsync(db));
    }

    public static TheoryData<string, string> Refusals() => new()
    {
        // agents
        { "SELECT aos_agent.create_agent('{tenant}', NULL)", "22004" },
        { "SELECT aos_agent.create_agent('{tenant}', '')", "22023" },
        { "SELECT aos_agent.create_agent('{tenant}', 'bad name!')", "22023" },
        { "SELECT aos_agent.create_agent('{tenant}', 'agent')", "AO012" },
        { "SELECT aos_agent.create_agent('{tenant}', 'x1', gen_random_uuid())", "AO002" },
        { "SELECT aos_agent.create_agent('{tenant}', 'x2', NULL, ARRAY['no_such_tool'])", "AO002" },
        { "SELECT aos_agent.create_agent('{tenant}', 'x3', NULL, '{}', '[1]')", "22023" },
        { "SELECT aos_agent.create_agent('{tenant}', 'x4', NULL, '{}', '{\"max_iterations\": \"ten\"}')", "22023" },
        { "SELECT aos_agent.create_agent('{tenant}', 'x5', NULL, '{}', '{\"auto_approve_tools\": \"yes\"}')", "22023" },
        { "SELECT aos_agent.create_agent('{tenant}', 'x6', NULL, '{}', '{\"dispatch\": \"robots\"}')", "22023" },
        { "SELECT aos_agent.create_agent('{tenant}', 'x7', NULL, '{}', '{}', 'openai/gpt-0')", "AO002" },
        { "SELECT aos_agent.create_agent(gen_random_uuid(), 'x8')", "AO011" },
        { "SELECT aos_agent.update_agent(gen_random_uuid())", "AO002" },
        { "SELECT aos_agent.update_agent('{agent}', p_config := '{\"max_attempts\": 0}')", "22023" },
        // conversations and messages
        { "SELECT aos_agent.start_conversation(gen_random_uuid())", "AO002" },
        { "SELECT aos_agent.start_conversation('{agent}', NULL, '[]')", "22023" },
        { "SELECT aos_agent.start_conversation('{agent}', gen_random_uuid())", "AO002" },
        { "SELECT aos_agent.send_message(gen_random_uuid(), 'hello')", "AO002" },
        { "SELECT aos_agent.send_message('{conv}', NULL)", "22004" },
        { "SELECT aos_agent.send_message('{conv}', '')", "22023" },
        { "SELECT aos_agent.send_message('{conv}', repeat('x', 1048577))", "AO010" },
        { "SELECT aos_agent.send_message('{conv}', repeat('é', 524289))", "AO010" },
        { "SELECT aos_agent.send_message('{conv}', 'hi', '{}')", "22023" },
        // the turn's steps
        { "SELECT aos_agent.run_turn(gen_random_uuid())", "AO002" },
        { "SELECT aos_agent.record_thinking('{turn}', '')", "22023" },
        { "SELECT aos_agent.record_thinking('{turn}', repeat('x', 1048577))", "AO010" },
        { "SELECT aos_agent.record_thinking(gen_random_uuid(), 'x')", "AO002" },
        { "SELECT aos_agent.process_tool_call('{turn}', 'web_search', '[1]'::jsonb)", "22023" },
        { "SELECT aos_agent.process_tool_call('{turn}', 'web_search', '\"not json\"'::jsonb)", "22P02" },
        { "SELECT aos_agent.process_tool_call('{turn}', 'web_search', 'not json'::text)", "22P02" },
        { "SELECT aos_agent.process_tool_call('{turn}', 'web_search', jsonb_build_object('query', repeat('x', 1048577)))", "AO010" },
        { "SELECT aos_agent.process_tool_call('{turn}', '', '{}'::jsonb)", "22023" },
        { "SELECT aos_agent.record_response('{turn}', NULL, '{\"tool_calls\": {}}')", "22023" },
        { "SELECT aos_agent.record_response('{turn}', NULL, '{\"tool_calls\": [42]}')", "22023" },
        { "SELECT aos_agent.record_response('{turn}', NULL, '{\"text\": \"x\", \"usage\": {\"input_tokens\": -5}}')", "22023" },
        { "SELECT aos_agent.record_response('{turn}', NULL, '{\"text\": \"x\", \"usage\": {\"input_tokens\": \"many\"}}')", "22023" },
        { "SELECT aos_agent.record_response('{turn}', NULL, '{}')", "22023" },
        { "SELECT aos_agent.record_response('{turn}', NULL, '[]')", "22023" },
        { "SELECT aos_agent.record_tool_result('{turn}', 'web_search', jsonb_build_object('x', repeat('x', 1048577)))", "AO010" },
        { "SELECT aos_agent.complete_turn('{turn}', repeat('x', 1048577))", "AO010" },
        { "SELECT aos_agent.complete_turn('{turn}', 'x', -1)", "22023" },
        { "SELECT aos_agent.complete_turn('{turn}', 'x', 10, -0.5)", "22023" },
        { "SELECT aos_agent.fail_turn('{turn}', '')", "22023" },
        { "SELECT aos_agent.fail_turn('{turn}', 'x', NULL, '[]')", "22023" },
        // people in the loop
        { "SELECT aos_agent.approve_step('{step}', NULL)", "22004" },
        { "SELECT aos_agent.approve_step(gen_random_uuid(), true)", "AO002" },
        { "SELECT aos_agent.approve_step('{step}', true, NULL, repeat('x', 4001))", "AO010" },
        { "SELECT aos_agent.bulk_approve_tools('{}')", "22023" },
        { "SELECT aos_agent.bulk_approve_tools(ARRAY[NULL::uuid])", "AO002" },
        { "SELECT aos_agent.inject_message('{conv}', 'x', NULL, 'assistant')", "22023" },
        { "SELECT aos_agent.inject_message(gen_random_uuid(), 'x')", "AO002" },
        { "SELECT aos_agent.override_response(gen_random_uuid(), 'x')", "AO002" },
        { "SELECT aos_agent.pause_conversation(gen_random_uuid())", "AO002" },
        { "SELECT aos_agent.cancel_turn(gen_random_uuid())", "AO002" },
        { "SELECT aos_agent.rate_turn('{turn}', NULL, 6)", "22023" },
        { "SELECT aos_agent.rate_turn('{turn}', NULL, 0)", "22023" },
        { "SELECT aos_agent.rate_turn('{turn}', NULL, 3, '[]')", "22023" },
        { "SELECT aos_agent.rate_turn(gen_random_uuid(), NULL, 3)", "AO002" },
        { "SELECT aos_agent.flag_issue(NULL, 'urgent', 'x', NULL, '{turn}')", "22023" },
        { "SELECT aos_agent.flag_issue(NULL, 'low', 'x')", "22023" },
        { "SELECT aos_agent.flag_issue(NULL, 'low', '', NULL, '{turn}')", "22023" },
        { "SELECT aos_agent.flag_issue(NULL, 'low', 'x', gen_random_uuid())", "AO002" },
        { "SELECT aos_agent.add_observation(NULL, 'rating', '{}', '{conv}')", "22023" },
        { "SELECT aos_agent.add_observation(NULL, 'note', '[]', '{conv}')", "22023" },
        { "SELECT aos_agent.add_observation(gen_random_uuid(), 'note', '{}', '{conv}')", "AO011" },
        // reading
        { "SELECT aos_agent.get_turn_state(gen_random_uuid())", "AO002" },
        { "SELECT aos_agent.get_conversation_history('{conv}', false, 0)", "22023" },
        { "SELECT aos_agent.get_agent_analytics('{agent}', 0)", "22023" },
        { "SELECT aos_agent.get_agent_analytics('{agent}', NULL)", "22023" },
        { "SELECT aos_agent.get_agent_analytics(gen_random_uuid(), 7)", "AO002" },
        { "SELECT * FROM aos_agent.get_hourly_activity(gen_random_uuid(), 1)", "AO011" },
        { "SELECT * FROM aos_agent.get_hourly_activity(NULL, 0)", "22023" },
        // memory
        { "SELECT aos_agent.remember('{agent}', '', '1')", "22023" },
        { "SELECT aos_agent.remember('{agent}', 'k', NULL)", "22004" },
        { "SELECT aos_agent.remember('{agent}', 'k', to_jsonb(repeat('x', 1048577)))", "AO010" },
        { "SELECT aos_agent.remember('{agent}', 'k', '1', 'gossip')", "22023" },
        { "SELECT aos_agent.remember('{agent}', 'k', '1', 'fact', 2)", "22023" },
        { "SELECT aos_agent.remember(gen_random_uuid(), 'k', '1')", "AO002" },
        { "SELECT aos_agent.recall(gen_random_uuid())", "AO002" },
        // personas
        { "SELECT aos_persona.create_persona('', 'prompt')", "22023" },
        { "SELECT aos_persona.create_persona('p1', NULL)", "22004" },
        { "SELECT aos_persona.create_persona('p1', '')", "22023" },
        { "SELECT aos_persona.create_persona('helper', 'again')", "AO012" },
        { "SELECT aos_persona.create_persona('p1', 'x', '[]')", "22023" },
        { "SELECT aos_persona.create_persona('p1', 'x', '{}', gen_random_uuid())", "AO002" },
        { "SELECT aos_persona.create_persona('p1', 'x', '{}', NULL, '{}', '{}')", "22023" },
        { "SELECT aos_persona.create_persona('bad/name', 'x')", "22023" },
        { "SELECT aos_persona.get_effective_params(gen_random_uuid())", "AO002" },
        { "SELECT aos_persona.get_effective_params(NULL)", "22004" },
        // the registry
        { "SELECT aos_meta.resolve_model_params(NULL)", "22004" },
        { "SELECT aos_meta.find_model('openai', NULL)", "22023" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task ARefusalHasItsCodeAndChangesNothing(string sql, string sqlState)
    {
        await using var app = await db.OpenAsync(TestCluster.App);
        await app.BindAsync(db.W.Tenant);
        var text = sql.Replace("{tenant}", db.W.Tenant.ToString(), StringComparison.Ordinal)
            .Replace("{agent}", db.W.Agent.ToString(), StringComparison.Ordinal)
            .Replace("{conv}", db.Conversation.ToString(), StringComparison.Ordinal)
            .Replace("{turn}", db.Turn.ToString(), StringComparison.Ordinal)
            .Replace("{step}", db.Step.ToString(), StringComparison.Ordinal);
        var before = await K.FingerprintAsync(db);
        var e = await app.ErrorAsync(text);
        Assert.True(sqlState == e.SqlState, $"expected {sqlState}, got {e.SqlState}: {e.MessageText}");
        if (sqlState.StartsWith("AO", StringComparison.Ordinal) || sqlState is "22004" or "22023" or "22P02")
        {
            Assert.False(string.IsNullOrWhiteSpace(e.Hint), $"{e.SqlState} ({e.MessageText}) should carry a hint");
        }
        Assert.Equal(before, await K.FingerprintAsync(db));
    }

    [Fact]
    public async Task ContentUpToTheLimitIsAcceptedAndOneByteMoreIsNot()
    {
        await using var conn = await db.OpenAsync(TestCluster.Admin);
        await conn.BindAsync(db.W.Tenant);
        var c = await conn.NewConversationAsync(db.W.Agent);
        var exact = new string('x', 1048576);
        var turn = await conn.ScalarAsync<Guid>("SELECT aos_agent.send_message($1, $2)", c, exact);
        Assert.Equal(1048576, await conn.ScalarAsync<int>("SELECT octet_length(user_message) FROM aos_agent.turn WHERE turn_id = $1", turn));
        // multi-byte characters count as bytes
        var e = await conn.ErrorAsync("SELECT aos_agent.send_message($1, $2)", c, new string('ü', 524289));
        Assert.Equal("AO010", e.SqlState);
        // a system prompt may have 400,000 bytes
        await conn.ExecAsync("SELECT aos_persona.create_persona('long-prompt', $1)", new string('p', 400000));
        Assert.Equal("AO010", (await conn.ErrorAsync("SELECT aos_persona.create_persona('longer-prompt', $1)", new string('p', 400001))).SqlState);
        // a memory value may have 1 MiB as canonical JSON text, however many numbers it holds
        var numbers = "[" + string.Join(", ", Enumerable.Range(1_000_000, 116_000)) + "]";
        Assert.True(numbers.Length <= 1048576);
        await conn.ExecAsync("SELECT aos_agent.remember($1, 'numbers', $2::jsonb)", db.W.Agent, numbers);
        var tooMany = "[" + string.Join(", ", Enumerable.Range(1_000_000, 116_600)) + "]";
        Assert.True(tooMany.Length > 1048576);
        Assert.Equal("AO010", (await conn.ErrorAsync("SELECT aos_agent.remember($1, 'numbers', $2::jsonb)", db.W.Agent, tooMany)).SqlState);
        // JSON nested ten thousand levels deep: refused or stored, never a crash
        var nested = new StringBuilder().Append('[', 10000).Append(']', 10000).ToString();
        await using var tx = await conn.BeginTransactionAsync();
        try
        {
            await conn.ExecAsync("SELECT aos_agent.remember($1, 'deep', $2::jsonb)", db.W.Agent, nested);
        }
        catch (PostgresException pe)
        {
            Assert.Contains(pe.SqlState, new[] { "54001", "AO010", "22023" });
        }
        await tx.RollbackAsync();
        Assert.Equal(1, await conn.ScalarAsync<int>("SELECT 1"));
        // a NUL character cannot enter jsonb at all
        var nul = await conn.ErrorAsync("SELECT aos_agent.remember($1, 'nul', '\"a\\u0000b\"'::jsonb)", db.W.Agent);
        Assert.StartsWith("22", nul.SqlState, StringComparison.Ordinal);
    }
}
