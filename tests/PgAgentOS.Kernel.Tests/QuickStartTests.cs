using System.Text.Json.Nodes;
using Npgsql;

namespace PgAgentOS.Kernel.Tests;

/// <summary>
/// The spec's Quick Start, as a user types it: sections 1–4 and 6 in psql as the database owner (with real UUIDs
/// substituted through psql variables), section 5 — the external runtime — from C# with plain Npgsql and the
/// spec's positional parameters, the tool arguments passed as the JSON string the model returned.
/// </summary>
public sealed class QuickStartTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    // Sections 1–4, word for word, except that 'your-...-uuid' became a psql variable that \gset filled in.
    private const string Sections1To4 = """
        -- ### 1. Setup Tenant & User
        -- Create Tenant
        INSERT INTO aos_auth.tenant (name, display_name)
        VALUES ('my_company', 'My Company')
        RETURNING tenant_id;
        SELECT tenant_id FROM aos_auth.tenant WHERE name = 'my_company' \gset

        -- Set Context
        SELECT aos_auth.set_tenant(:'tenant_id');

        -- ### 2. Create Persona
        INSERT INTO aos_persona.persona (
            tenant_id, name, system_prompt, traits
        ) VALUES (
            aos_auth.current_tenant(),
            'helpful_assistant',
            'You are a helpful AI assistant. Answer concisely.',
            '{"helpful": true, "concise": true}'
        );
        SELECT persona_id FROM aos_persona.persona WHERE name = 'helpful_assistant' \gset

        -- ### 3. Create Agent
        SELECT aos_agent.create_agent(
            p_tenant_id := aos_auth.current_tenant(),
            p_name := 'research_agent',
            p_persona_id := :'persona_id',
            p_tools := ARRAY['web_search', 'code_execute'],
            p_config := '{"auto_approve_tools": false}'
        );
        SELECT agent_id FROM aos_agent.agent WHERE name = 'research_agent' \gset

        -- ### 4. Start Conversation
        -- Create Conversation
        SELECT aos_agent.start_conversation(
            p_agent_id := :'agent_id'
        );
        SELECT conversation_id FROM aos_agent.conversation WHERE agent_id = :'agent_id' \gset

        -- Send Message
        SELECT aos_agent.send_message(
            p_conversation_id := :'conversation_id',
            p_message := 'How do I do async programming in Python?'
        );
        """;

    // Section 6, word for word (the binding is per session, so this psql session binds the tenant first).
    private const string Section6 = """
        SELECT aos_auth.set_tenant(:'tenant_id');

        -- ### 6. Admin Monitoring
        -- Check real-time steps
        SELECT * FROM aos_agent.realtime_steps LIMIT 10;

        -- Steps awaiting approval
        SELECT * FROM aos_agent.tool_call_queue;

        -- Trace reasoning
        SELECT * FROM aos_agent.thinking_trace
        WHERE conversation_id = :'conversation_id';

        -- Approve tool call
        SELECT aos_agent.approve_step(
            p_step_id := :'step_id',
            p_approved := true,
            p_admin_id := :'admin_id',
            p_note := 'Approved'
        );
        """;

    [Fact]
    public async Task TheQuickStartWorksAsWritten()
    {
        // 1–4 in psql, as the database owner
        var r = await db.Cluster.PsqlAsync(db.Name, TestCluster.Admin, Sections1To4);
        Assert.True(r.ExitCode == 0, r.StdErr + r.StdOut);
        Assert.DoesNotContain("ERROR", r.StdErr, StringComparison.Ordinal);

        await using var conn = await db.OpenAsync(TestCluster.Admin);
        var tenant = await conn.ScalarAsync<Guid>("SELECT tenant_id FROM aos_auth.tenant WHERE name = 'my_company'");
        Assert.Contains(tenant.ToString(), r.StdOut, StringComparison.Ordinal);   // RETURNING tenant_id
        Assert.Contains("INSERT 0 1", r.StdOut, StringComparison.Ordinal);        // the persona
        await conn.BindAsync(tenant);
        var agent = await conn.ScalarAsync<Guid>("SELECT agent_id FROM aos_agent.agent WHERE name = 'research_agent'");
        var conversation = await conn.ScalarAsync<Guid>("SELECT conversation_id FROM aos_agent.conversation");
        var turn = await conn.ScalarAsync<Guid>("SELECT turn_id FROM aos_agent.turn");
        foreach (var id in new[] { agent, conversation, turn })
        {
            Assert.Contains(id.ToString(), r.StdOut, StringComparison.Ordinal);   // what create_agent, start_conversation, send_message returned
        }
        Assert.Equal(["web_search", "code_execute"], await conn.ColumnAsync("SELECT unnest(tools) FROM aos_agent.agent"));
        Assert.False(await conn.ScalarAsync<bool>("SELECT (config ->> 'auto_approve_tools')::boolean FROM aos_agent.agent"));
        Assert.Equal("How do I do async programming in Python?", await conn.ScalarAsync<string>("SELECT user_message FROM aos_agent.turn"));
        Assert.Equal("queued", await conn.TurnStatusAsync(turn));

        // 5, the runtime: plain Npgsql, positional parameters; think, then the model asks for a tool
        await using var runtime = await db.OpenAsync(TestCluster.Admin);
        await runtime.BindAsync(tenant);
        JsonNode runInfo;
        await using (var cmd = new NpgsqlCommand("SELECT aos_agent.run_turn($1)", runtime))
        {
            cmd.Parameters.AddWithValue(turn);
            runInfo = JsonNode.Parse((string)(await cmd.ExecuteScalarAsync())!)!;
        }
        Assert.Equal("You are a helpful AI assistant. Answer concisely.", (string?)runInfo["system_prompt"]);
        var messages = runInfo["messages"]!.AsArray();
        Assert.Equal("user", (string?)messages.Single()!["role"]);
        Assert.Equal("How do I do async programming in Python?", (string?)messages.Single()!["content"]);
        Assert.Equal(["web_search", "code_execute"], runInfo["tools"]!.AsArray().Select(t => (string)t!["function"]!["name"]!));
        Assert.Equal("function", (string?)runInfo["tools"]![0]!["type"]);
        Assert.Equal("object", (string?)runInfo["tools"]![0]!["function"]!["parameters"]!["type"]);
        Assert.NotNull(runInfo["params"]!["temperature"]);

        await using (var cmd = new NpgsqlCommand("SELECT aos_agent.record_thinking($1, $2)", runtime))
        {
            cmd.Parameters.AddWithValue(turn);
            cmd.Parameters.AddWithValue("The user wants asyncio basics; search first.");
            await cmd.ExecuteScalarAsync();
        }
        const string modelArguments = """{"query": "python asyncio tutorial"}""";   // tool_call.function.arguments
        JsonNode decision;
        await using (var cmd = new NpgsqlCommand("SELECT aos_agent.process_tool_call($1, $2, $3)", runtime))
        {
            cmd.Parameters.AddWithValue(turn);
            cmd.Parameters.AddWithValue("web_search");
            cmd.Parameters.AddWithValue(modelArguments);
            decision = JsonNode.Parse((string)(await cmd.ExecuteScalarAsync())!)!;
        }
        Assert.Equal("awaiting_approval", (string?)decision["status"]);
        var step = Guid.Parse((string)decision["step_id"]!);
        Assert.Equal("python asyncio tutorial",
            await conn.ScalarAsync<string>("SELECT content #>> '{arguments,query}' FROM aos_agent.step WHERE step_id = $1", step));

        // 6 in psql: watch, then approve (an admin principal stands in for 'admin-uuid')
        var admin = await conn.ScalarAsync<Guid>(
            "SELECT aos_auth.create_principal($1, 'human', 'ops-lead', NULL, 'ops@example.com', ARRAY['admin'])", tenant);
        var r6 = await db.Cluster.PsqlAsync(db.Name, TestCluster.Admin, Section6,
            "-v", $"tenant_id={tenant}", "-v", $"conversation_id={conversation}", "-v", $"step_id={step}", "-v", $"admin_id={admin}");
        Assert.True(r6.ExitCode == 0, r6.StdErr + r6.StdOut);
        Assert.Contains("(3 rows)", r6.StdOut, StringComparison.Ordinal);   // realtime_steps: user message, think, tool call
        Assert.Contains("web_search {\"query\": \"python asyncio tutorial\"}", r6.StdOut, StringComparison.Ordinal);
        Assert.Contains("| the agent requires approval of tool calls |", r6.StdOut, StringComparison.Ordinal);   // tool_call_queue
        Assert.Contains("The user wants asyncio basics; search first.", r6.StdOut, StringComparison.Ordinal);  // thinking_trace
        Assert.Contains(" approve_step \n--------------\n \n(1 row)", r6.StdOut, StringComparison.Ordinal);
        Assert.Equal("approved", await conn.StepStatusAsync(step));
        Assert.Equal(admin, await conn.ScalarAsync<Guid>("SELECT decided_by FROM aos_agent.approval WHERE step_id = $1", step));

        // 5 again: the runtime runs the tool, records its result and completes with the spec's four arguments
        await using (var cmd = new NpgsqlCommand("SELECT aos_agent.record_tool_result($1, $2, $3)", runtime))
        {
            cmd.Parameters.AddWithValue(turn);
            cmd.Parameters.AddWithValue("web_search");
            cmd.Parameters.Add(K.Json("""{"results": [{"title": "asyncio — Asynchronous I/O", "url": "https://docs.python.org/3/library/asyncio.html"}]}"""));
            await cmd.ExecuteScalarAsync();
        }
        await using (var cmd = new NpgsqlCommand("SELECT aos_agent.complete_turn($1, $2, $3, $4)", runtime))
        {
            cmd.Parameters.AddWithValue(turn);
            cmd.Parameters.AddWithValue("# Python Asyncio\nUse `async def` and `await`, and run the loop with `asyncio.run(main())`.");
            cmd.Parameters.AddWithValue(350);      // response.usage.total_tokens
            cmd.Parameters.AddWithValue(0.003m);   // cost
            await cmd.ExecuteNonQueryAsync();
        }
        Assert.Equal("completed", await conn.TurnStatusAsync(turn));
        Assert.Equal(["user_message", "think", "tool_call", "tool_result", "respond"],
            await conn.ColumnAsync("SELECT step_type FROM aos_agent.step WHERE turn_id = $1 ORDER BY step_number", turn));
        Assert.Equal(350L, await conn.ScalarAsync<long>("SELECT tokens_used FROM aos_agent.turn WHERE turn_id = $1", turn));
        Assert.Equal(0.003m, await conn.ScalarAsync<decimal>("SELECT cost_usd FROM aos_agent.turn WHERE turn_id = $1", turn));
        Assert.Equal(350L, await conn.ScalarAsync<long>("SELECT total_tokens FROM aos_agent.conversation WHERE conversation_id = $1", conversation));
        Assert.True(await conn.ScalarAsync<bool>("SELECT (aos_core.verify_event_chain() ->> 'ok')::boolean"));

        // the spec's analytics
        var analytics = await conn.JsonAsync("SELECT aos_agent.get_agent_analytics($1, 7)::text", agent);
        foreach (var key in new[] { "total_conversations", "total_turns", "total_tokens", "total_cost_usd", "avg_turn_duration_ms", "success_rate", "tool_usage" })
        {
            Assert.NotNull(analytics[key]);
        }
        Assert.Equal(1, (int)analytics["total_turns"]!);
        Assert.Equal(350, (int)analytics["total_tokens"]!);
        Assert.Equal(0.003m, (decimal)analytics["total_cost_usd"]!);
        Assert.Equal(100.0m, (decimal)analytics["success_rate"]!);
        Assert.Equal(1, (int)analytics["tool_usage"]!["web_search"]!);
        var hourly = await conn.RowsAsync("SELECT * FROM aos_agent.get_hourly_activity($1, 1)", tenant);
        Assert.Equal(1L, Assert.Single(hourly)["turn_count"]);
    }

    [Fact]
    public async Task TheRuntimeFlowWithoutToolCallsCompletesWithThePositionalArguments()
    {
        await using var conn = await db.OpenAsync(TestCluster.Admin);
        var w = await K.NewWorldAsync(conn, """{"auto_approve_tools": true}""", model: "openai/gpt-4o");
        var c = await conn.NewConversationAsync(w.Agent);
        var turn = await conn.SendAsync(c, "What is 2 + 2?");

        await using var runtime = await db.OpenAsync(TestCluster.Admin);
        await runtime.BindAsync(w.Tenant);
        await using (var cmd = new NpgsqlCommand("SELECT aos_agent.run_turn($1)", runtime))
        {
            cmd.Parameters.AddWithValue(turn);
            var info = JsonNode.Parse((string)(await cmd.ExecuteScalarAsync())!)!;
            Assert.Equal("gpt-4o", (string?)info["model"]!["name"]);
        }
        // an auto-approved call: the runtime may run it at once
        await using (var cmd = new NpgsqlCommand("SELECT aos_agent.process_tool_call($1, $2, $3)", runtime))
        {
            cmd.Parameters.AddWithValue(turn);
            cmd.Parameters.AddWithValue("web_search");
            cmd.Parameters.AddWithValue("""{"query": "2 + 2"}""");
            var d = JsonNode.Parse((string)(await cmd.ExecuteScalarAsync())!)!;
            Assert.Equal("approved", (string?)d["status"]);
        }
        await using (var cmd = new NpgsqlCommand("SELECT aos_agent.record_tool_result($1, $2, $3)", runtime))
        {
            cmd.Parameters.AddWithValue(turn);
            cmd.Parameters.AddWithValue("web_search");
            cmd.Parameters.Add(K.Json("""{"answer": 4}"""));
            await cmd.ExecuteScalarAsync();
        }
        // malformed arguments from the model are refused as such
        await using (var cmd = new NpgsqlCommand("SELECT aos_agent.process_tool_call($1, $2, $3)", runtime))
        {
            cmd.Parameters.AddWithValue(turn);
            cmd.Parameters.AddWithValue("web_search");
            cmd.Parameters.AddWithValue("""{"query": "2 + 2" """);
            var e = await Assert.ThrowsAsync<PostgresException>(() => cmd.ExecuteScalarAsync());
            Assert.Equal("22P02", e.SqlState);
        }
        await using (var cmd = new NpgsqlCommand("SELECT aos_agent.complete_turn($1, $2, $3, $4)", runtime))
        {
            cmd.Parameters.AddWithValue(turn);
            cmd.Parameters.AddWithValue("4");
            cmd.Parameters.AddWithValue(120);
            cmd.Parameters.AddWithValue(0.0004m);
            await cmd.ExecuteNonQueryAsync();
        }
        var row = (await conn.RowsAsync("SELECT status, tokens_used, cost_usd, assistant_message FROM aos_agent.turn WHERE turn_id = $1", turn)).Single();
        Assert.Equal("completed", row["status"]);
        Assert.Equal(120L, row["tokens_used"]);
        Assert.Equal(0.0004m, row["cost_usd"]);
        Assert.Equal("4", row["assistant_message"]);

        // without a cost the kernel prices the tokens from the model registry (a total counts at the input price)
        var t2 = await conn.SendAsync(c, "And 3 + 3?");
        await runtime.ExecAsync("SELECT aos_agent.run_turn($1)", t2);
        await runtime.ExecAsync("SELECT aos_agent.complete_turn($1, '6', 100000)", t2);
        Assert.Equal(0.25m, await conn.ScalarAsync<decimal>("SELECT cost_usd FROM aos_agent.turn WHERE turn_id = $1", t2));
    }
}
