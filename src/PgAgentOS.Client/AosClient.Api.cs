using System.Text.Json;
using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;

namespace PgAgentOS.Client;

public sealed partial class AosClient
{
    // ------------------------------------------------------------------------------------------
    // Tenancy
    // ------------------------------------------------------------------------------------------

    /// <summary>Creates a tenant (platform administrators).</summary>
    public async Task<Guid> CreateTenantAsync(string name, string? displayName = null, JsonObject? settings = null, CancellationToken ct = default) =>
        await ScalarAsync<Guid>("SELECT aos_auth.create_tenant($1, $2, coalesce($3, '{}'))", ct, Text(name), Text(displayName), Jsonb(settings));

    /// <summary>Finds a tenant id by name (platform administrators see all tenants).</summary>
    public async Task<Guid?> FindTenantAsync(string name, CancellationToken ct = default) =>
        await ScalarAsync<Guid?>("SELECT tenant_id FROM aos_auth.tenant WHERE name = $1", ct, Text(name));

    /// <summary>Creates a principal in the bound tenant.</summary>
    public async Task<Guid> CreatePrincipalAsync(Guid tenantId, string type, string name, string? dbRoleName = null,
        IEnumerable<string>? roles = null, CancellationToken ct = default) =>
        await ScalarAsync<Guid>("SELECT aos_auth.create_principal($1, $2, $3, $4::name, NULL, $5)", ct,
            Uuid(tenantId), Text(type), Text(name), Text(dbRoleName), P(roles?.ToArray() ?? [], NpgsqlDbType.Array | NpgsqlDbType.Text));

    /// <summary>Grants a role to a principal of the bound tenant.</summary>
    public async Task GrantRoleAsync(Guid principalId, string roleKey, CancellationToken ct = default) =>
        await ScalarAsync<object>("SELECT aos_auth.grant_role($1, $2)", ct, Uuid(principalId), Text(roleKey));

    /// <summary>Creates an API key for a principal (returned once).</summary>
    public async Task<string> CreateApiKeyAsync(Guid principalId, string name = "default", CancellationToken ct = default) =>
        (await ScalarAsync<string>("SELECT aos_auth.create_api_key($1, $2)", ct, Uuid(principalId), Text(name)))!;

    // ------------------------------------------------------------------------------------------
    // Personas, agents, conversations
    // ------------------------------------------------------------------------------------------

    /// <summary>Creates a persona in the bound tenant.</summary>
    public async Task<Guid> CreatePersonaAsync(string name, string systemPrompt, JsonObject? traits = null, string? model = null,
        JsonObject? overrideParams = null, CancellationToken ct = default) =>
        await ScalarAsync<Guid>(
            "SELECT aos_persona.create_persona($1, $2, coalesce($3, '{}'), aos_agent._model_ref($4), coalesce($5, '{}'))", ct,
            Text(name), Text(systemPrompt), Jsonb(traits), Text(model), Jsonb(overrideParams));

    /// <summary>Creates an agent in the bound tenant (the spec's create_agent).</summary>
    public async Task<Guid> CreateAgentAsync(Guid tenantId, string name, Guid? personaId = null, IEnumerable<string>? tools = null,
        JsonObject? config = null, string? model = null, string? description = null, CancellationToken ct = default) =>
        await ScalarAsync<Guid>(
            "SELECT aos_agent.create_agent(p_tenant_id := $1, p_name := $2, p_persona_id := $3, p_tools := $4, p_config := coalesce($5, '{}'), p_model := $6, p_description := $7)",
            ct, Uuid(tenantId), Text(name), Uuid(personaId), P(tools?.ToArray() ?? [], NpgsqlDbType.Array | NpgsqlDbType.Text),
            Jsonb(config), Text(model), Text(description));

    /// <summary>Changes an agent (null leaves a field as it is; config is merged).</summary>
    public async Task UpdateAgentAsync(Guid agentId, Guid? personaId = null, IEnumerable<string>? tools = null, JsonObject? config = null,
        string? model = null, bool? isActive = null, CancellationToken ct = default) =>
        await ScalarAsync<object>(
            "SELECT aos_agent.update_agent($1, $2, $3, $4, $5, $6)", ct, Uuid(agentId), Uuid(personaId),
            P(tools?.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text), Jsonb(config), Text(model), P(isActive, NpgsqlDbType.Boolean));

    /// <summary>Finds an agent id by name in the bound tenant.</summary>
    public async Task<Guid?> FindAgentAsync(string name, CancellationToken ct = default) =>
        await ScalarAsync<Guid?>("SELECT agent_id FROM aos_agent.agent WHERE tenant_id = aos_auth.current_tenant() AND name = $1", ct, Text(name));

    /// <summary>Starts a conversation with an agent.</summary>
    public async Task<Guid> StartConversationAsync(Guid agentId, JsonObject? context = null, string? title = null, CancellationToken ct = default) =>
        await ScalarAsync<Guid>("SELECT aos_agent.start_conversation($1, NULL, coalesce($2, '{}'), $3)", ct,
            Uuid(agentId), Jsonb(context), Text(title));

    /// <summary>Sends a user message; returns the new turn's id.</summary>
    public async Task<Guid> SendMessageAsync(Guid conversationId, string message, JsonArray? attachments = null, CancellationToken ct = default) =>
        await ScalarAsync<Guid>("SELECT aos_agent.send_message($1, $2, coalesce($3, '[]'))", ct,
            Uuid(conversationId), Text(message), Jsonb(attachments));

    // ------------------------------------------------------------------------------------------
    // Driving turns (workers pass their lease token; by hand, pass none)
    // ------------------------------------------------------------------------------------------

    /// <summary>Claims the next runnable turn (workers). Null when there is none.</summary>
    /// <remarks>
    /// On a data source the claim's transaction commits without waiting for its WAL flush
    /// (synchronous_commit off, for that transaction only): WAL is flushed in order, so the
    /// worker's first durable write (a response, a ticket) makes the claim durable too, and a claim
    /// lost in a database crash before that is as if the worker had died before claiming: the
    /// turn is runnable again and the worker's next write is refused (AO004). Joined to a caller's
    /// transaction, the caller's durability is left alone.
    /// </remarks>
    public Task<TurnContext?> ClaimTurnAsync(string workerId, int leaseSeconds = 30, Guid? tenantId = null, CancellationToken ct = default) =>
        ClaimAsync(workerId, leaseSeconds, tenantId, [], false, ct);

    /// <summary>
    /// Claims the next runnable turn; with <paramref name="startApprovedCall"/>, the first approved
    /// tool call of the turn (after an approval) starts in the claim's transaction and its ticket
    /// comes with it (<see cref="PendingToolCall.Ticket"/>), for a worker that runs it at once.
    /// </summary>
    public Task<TurnContext?> ClaimTurnAsync(string workerId, int leaseSeconds, Guid? tenantId, bool startApprovedCall,
        CancellationToken ct = default) =>
        ClaimAsync(workerId, leaseSeconds, tenantId, [], startApprovedCall, ct);

    /// <summary>
    /// Claims the next runnable turn and, in the same transaction, announces turns this worker
    /// finished since its last claim (aos_turn_done, one notification each): a worker that claims
    /// again right after a turn needs no transaction of its own for the announcement. On a data
    /// source only (the claim's transaction is the SDK's own). <paramref name="startApprovedCall"/>:
    /// as in the overload above.
    /// </summary>
    public Task<TurnContext?> ClaimTurnAsync(string workerId, int leaseSeconds, Guid? tenantId, IReadOnlyCollection<Guid> finishedTurns,
        CancellationToken ct = default) =>
        ClaimTurnAsync(workerId, leaseSeconds, tenantId, finishedTurns, false, ct);

    /// <summary>
    /// Claims the next runnable turn, announces the turns this worker finished (as above), and with
    /// <paramref name="startApprovedCall"/> starts the first approved tool call in the claim.
    /// </summary>
    public Task<TurnContext?> ClaimTurnAsync(string workerId, int leaseSeconds, Guid? tenantId, IReadOnlyCollection<Guid> finishedTurns,
        bool startApprovedCall, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(finishedTurns);
        if (finishedTurns.Count > 0 && _dataSource is null)
        {
            throw new InvalidOperationException("announcing finished turns with a claim needs a client over a data source.");
        }
        return ClaimAsync(workerId, leaseSeconds, tenantId, finishedTurns, startApprovedCall, ct);
    }

    private async Task<TurnContext?> ClaimAsync(string workerId, int leaseSeconds, Guid? tenantId, IReadOnlyCollection<Guid> finishedTurns,
        bool startApprovedCall, CancellationToken ct)
    {
        var announcements = finishedTurns.Select(turn => new NpgsqlBatchCommand("SELECT pg_notify($1, $2)")
        {
            Parameters = { Text(AosNotifications.TurnDone), Text(turn.ToString()) },
        }).ToList();
        // (the three-argument call unless the approved call is to start: kernels before p_start_approved understand it)
        NpgsqlParameter[] args = startApprovedCall
            ? [Text(workerId), P(leaseSeconds, NpgsqlDbType.Integer), Uuid(tenantId), P(true, NpgsqlDbType.Boolean)]
            : [Text(workerId), P(leaseSeconds, NpgsqlDbType.Integer), Uuid(tenantId)];
        return Parse<TurnContext>(await ScalarAsync<string>(
            startApprovedCall ? "SELECT aos_agent.claim_turn($1, $2, $3, $4)::text" : "SELECT aos_agent.claim_turn($1, $2, $3)::text", ct,
            asyncCommit: _dataSource is not null, announcements, args));
    }

    /// <summary>The context of a turn (takes a turn driven by hand when no lease token is given).</summary>
    public async Task<TurnContext> RunTurnAsync(Guid turnId, Guid? leaseToken = null, CancellationToken ct = default) =>
        Parse<TurnContext>(await ScalarAsync<string>("SELECT aos_agent.run_turn($1, $2)::text", ct, Uuid(turnId), Uuid(leaseToken)))!;

    /// <summary>Extends the lease; returns the new expiry (database clock).</summary>
    public async Task<DateTimeOffset> HeartbeatAsync(Guid turnId, Guid leaseToken, int leaseSeconds = 30, CancellationToken ct = default) =>
        new(await ScalarAsync<DateTime>("SELECT aos_agent.heartbeat($1, $2, $3)", ct, Uuid(turnId), Uuid(leaseToken), P(leaseSeconds, NpgsqlDbType.Integer)), TimeSpan.Zero);

    /// <summary>Hands a turn back cleanly (no failure counted).</summary>
    public async Task ReleaseTurnAsync(Guid turnId, Guid leaseToken, string? reason = null, CancellationToken ct = default) =>
        await ScalarAsync<object>("SELECT aos_agent.release_turn($1, $2, $3)", ct, Uuid(turnId), Uuid(leaseToken), Text(reason));

    /// <summary>Records one model response (thinking, tool calls, final text) in one transaction.</summary>
    public async Task<ResponseResult> RecordResponseAsync(Guid turnId, Guid? leaseToken, ModelResponse response, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(response);
        var json = new JsonObject();
        if (response.Thinking is not null)
        {
            json["thinking"] = response.Thinking;
        }
        if (response.Text is not null)
        {
            json["text"] = response.Text;
        }
        if (response.Final is not null)
        {
            json["final"] = response.Final;
        }
        var calls = new JsonArray();
        foreach (var c in response.ToolCalls)
        {
            var call = new JsonObject { ["name"] = c.Name, ["arguments"] = c.Arguments?.DeepClone() ?? new JsonObject() };
            if (c.Id is not null)
            {
                call["id"] = c.Id;
            }
            calls.Add(call);
        }
        json["tool_calls"] = calls;
        if (response.Usage is { } u)
        {
            var usage = new JsonObject();
            if (u.InputTokens is not null)
            {
                usage["input_tokens"] = u.InputTokens;
            }
            if (u.OutputTokens is not null)
            {
                usage["output_tokens"] = u.OutputTokens;
            }
            if (u.CostUsd is not null)
            {
                usage["cost_usd"] = u.CostUsd;
            }
            json["usage"] = usage;
        }
        return Parse<ResponseResult>(await ScalarAsync<string>("SELECT aos_agent.record_response($1, $2, $3)::text", ct,
            Uuid(turnId), Uuid(leaseToken), Jsonb(json)))!;
    }

    /// <summary>Records a thinking step; returns its id.</summary>
    public async Task<Guid> RecordThinkingAsync(Guid turnId, string reasoning, string? nextAction = null, Guid? leaseToken = null, CancellationToken ct = default) =>
        await ScalarAsync<Guid>("SELECT aos_agent.record_thinking($1, $2, $3, $4)", ct, Uuid(turnId), Text(reasoning), Text(nextAction), Uuid(leaseToken));

    /// <summary>Records and decides one tool call.</summary>
    public async Task<ToolCallDecision> ProcessToolCallAsync(Guid turnId, string toolName, JsonNode? input, Guid? leaseToken = null,
        string? callId = null, CancellationToken ct = default) =>
        Parse<ToolCallDecision>(await ScalarAsync<string>("SELECT aos_agent.process_tool_call($1, $2, $3, $4, $5)::text", ct,
            Uuid(turnId), Text(toolName), Jsonb(input ?? new JsonObject()), Uuid(leaseToken), Text(callId)))!;

    /// <summary>Gets the ticket to run an approved tool call (exact tool and arguments).</summary>
    public async Task<Guid> BeginToolExecutionAsync(Guid turnId, Guid leaseToken, Guid stepId, string toolName, JsonNode arguments,
        CancellationToken ct = default) =>
        await ScalarAsync<Guid>("SELECT aos_agent.begin_tool_execution($1, $2, $3, $4, $5)", ct,
            Uuid(turnId), Uuid(leaseToken), Uuid(stepId), Text(toolName), Jsonb(arguments));

    /// <summary>Records a tool's result (workers pass the ticket); returns the tool_result step id.</summary>
    public async Task<Guid> RecordToolResultAsync(Guid turnId, string toolName, JsonNode? output, bool success = true, string? errorMessage = null,
        Guid? leaseToken = null, Guid? ticket = null, Guid? stepId = null, CancellationToken ct = default) =>
        await ScalarAsync<Guid>("SELECT aos_agent.record_tool_result($1, $2, $3, $4, $5, $6, $7, $8)", ct,
            Uuid(turnId), Text(toolName), Jsonb(output), P(success, NpgsqlDbType.Boolean), Text(errorMessage), Uuid(leaseToken), Uuid(ticket), Uuid(stepId));

    /// <summary>Completes a turn with the answer and usage.</summary>
    public async Task CompleteTurnAsync(Guid turnId, string answer, Usage? usage = null, Guid? leaseToken = null, string? thinking = null,
        CancellationToken ct = default)
    {
        var u = usage is null ? null : new JsonObject
        {
            ["input_tokens"] = usage.InputTokens,
            ["output_tokens"] = usage.OutputTokens,
            ["cost_usd"] = usage.CostUsd,
        };
        await ScalarAsync<object>("SELECT aos_agent.complete_turn($1, $2, 0, NULL, $3, $4, $5)", ct,
            Uuid(turnId), Text(answer), Uuid(leaseToken), Jsonb(u), Text(thinking));
    }

    /// <summary>Fails a turn (or, with retry and attempts left, queues it again). Returns failed or retry.</summary>
    public async Task<string> FailTurnAsync(Guid turnId, string error, Guid? leaseToken = null, JsonObject? details = null, bool retry = false,
        CancellationToken ct = default) =>
        (await ScalarAsync<string>("SELECT aos_agent.fail_turn($1, $2, $3, $4, $5)", ct,
            Uuid(turnId), Text(error), Uuid(leaseToken), Jsonb(details), P(retry, NpgsqlDbType.Boolean)))!;

    /// <summary>Cancels a turn that has not finished.</summary>
    public async Task CancelTurnAsync(Guid turnId, string? reason = null, CancellationToken ct = default) =>
        await ScalarAsync<object>("SELECT aos_agent.cancel_turn($1, $2)", ct, Uuid(turnId), Text(reason));

    /// <summary>A worker stores a memory of the agent of the turn it holds.</summary>
    public async Task<Guid> TurnMemoryWriteAsync(Guid turnId, Guid leaseToken, string key, JsonNode value, CancellationToken ct = default) =>
        await ScalarAsync<Guid>("SELECT aos_agent.turn_memory_write($1, $2, $3, $4)", ct, Uuid(turnId), Uuid(leaseToken), Text(key), Jsonb(value));

    /// <summary>A worker reads a memory (or the keys, when key is null) of the agent of the turn it holds.</summary>
    public async Task<JsonNode?> TurnMemoryReadAsync(Guid turnId, Guid leaseToken, string? key, CancellationToken ct = default) =>
        JsonNode.Parse(await ScalarAsync<string>("SELECT aos_agent.turn_memory_read($1, $2, $3)::text", ct, Uuid(turnId), Uuid(leaseToken), Text(key)) ?? "null");

    // ------------------------------------------------------------------------------------------
    // People in the loop
    // ------------------------------------------------------------------------------------------

    /// <summary>Approves or rejects a waiting tool call.</summary>
    public async Task ApproveStepAsync(Guid stepId, bool approved, Guid? adminId = null, string? note = null, CancellationToken ct = default) =>
        await ScalarAsync<object>("SELECT aos_agent.approve_step($1, $2, $3, $4)", ct, Uuid(stepId), P(approved, NpgsqlDbType.Boolean), Uuid(adminId), Text(note));

    /// <summary>Approves several waiting tool calls (all or nothing).</summary>
    public async Task<int> BulkApproveToolsAsync(IEnumerable<Guid> stepIds, Guid? adminId = null, string? note = null, CancellationToken ct = default) =>
        await ScalarAsync<int>("SELECT aos_agent.bulk_approve_tools($1, $2, $3)", ct,
            P(stepIds.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Uuid), Uuid(adminId), Text(note));

    /// <summary>Injects a message (system or user) into a conversation.</summary>
    public async Task<Guid> InjectMessageAsync(Guid conversationId, string message, string messageType = "system", Guid? adminId = null,
        CancellationToken ct = default) =>
        await ScalarAsync<Guid>("SELECT aos_agent.inject_message($1, $2, $3, $4)", ct, Uuid(conversationId), Text(message), Uuid(adminId), Text(messageType));

    /// <summary>Records a corrected answer for a completed turn.</summary>
    public async Task<Guid> OverrideResponseAsync(Guid turnId, string newResponse, string? reason = null, Guid? adminId = null, CancellationToken ct = default) =>
        await ScalarAsync<Guid>("SELECT aos_agent.override_response($1, $2, $3, $4)", ct, Uuid(turnId), Text(newResponse), Uuid(adminId), Text(reason));

    /// <summary>Pauses a conversation.</summary>
    public async Task PauseConversationAsync(Guid conversationId, string? reason = null, CancellationToken ct = default) =>
        await ScalarAsync<object>("SELECT aos_agent.pause_conversation($1, $2)", ct, Uuid(conversationId), Text(reason));

    /// <summary>Resumes a paused conversation.</summary>
    public async Task ResumeConversationAsync(Guid conversationId, CancellationToken ct = default) =>
        await ScalarAsync<object>("SELECT aos_agent.resume_conversation($1)", ct, Uuid(conversationId));

    /// <summary>Rates a turn 1–5.</summary>
    public async Task<Guid> RateTurnAsync(Guid turnId, int score, JsonObject? aspects = null, Guid? adminId = null, CancellationToken ct = default) =>
        await ScalarAsync<Guid>("SELECT aos_agent.rate_turn($1, $2, $3, $4)", ct, Uuid(turnId), Uuid(adminId), P(score, NpgsqlDbType.Integer), Jsonb(aspects));

    /// <summary>Flags an issue on a step, turn or conversation.</summary>
    public async Task<Guid> FlagIssueAsync(string severity, string reason, Guid? stepId = null, Guid? turnId = null, Guid? conversationId = null,
        Guid? adminId = null, CancellationToken ct = default) =>
        await ScalarAsync<Guid>("SELECT aos_agent.flag_issue($1, $2, $3, $4, $5, $6)", ct,
            Uuid(adminId), Text(severity), Text(reason), Uuid(stepId), Uuid(turnId), Uuid(conversationId));

    // ------------------------------------------------------------------------------------------
    // Reading
    // ------------------------------------------------------------------------------------------

    /// <summary>A turn with its steps (JSON).</summary>
    public async Task<JsonObject> GetTurnStateAsync(Guid turnId, CancellationToken ct = default) =>
        JsonNode.Parse((await ScalarAsync<string>("SELECT aos_agent.get_turn_state($1)::text", ct, Uuid(turnId)))!)!.AsObject();

    /// <summary>An agent's analytics over the last days (the spec's JSON shape).</summary>
    public async Task<JsonObject> GetAgentAnalyticsAsync(Guid agentId, int days = 7, CancellationToken ct = default) =>
        JsonNode.Parse((await ScalarAsync<string>("SELECT aos_agent.get_agent_analytics($1, $2)::text", ct, Uuid(agentId), P(days, NpgsqlDbType.Integer)))!)!.AsObject();

    /// <summary>The latest steps (aos_agent.realtime_steps), optionally of one conversation, newer than a time.</summary>
    public async Task<List<StepRow>> RecentStepsAsync(Guid? conversationId = null, DateTimeOffset? after = null, int limit = 100,
        CancellationToken ct = default) =>
        await QueryAsync("""
            SELECT s.step_id, s.created_at, s.conversation_id, s.turn_id, t.turn_number, a.name, s.step_number, s.step_type, s.status,
                   s.tool_name, aos_agent.step_summary(s.step_type, s.content), s.content::text
              FROM aos_agent.step s
              JOIN aos_agent.turn t ON t.tenant_id = s.tenant_id AND t.turn_id = s.turn_id
              JOIN aos_agent.agent a ON a.tenant_id = t.tenant_id AND a.agent_id = t.agent_id
             WHERE s.tenant_id = aos_auth.current_tenant()
               AND ($1::uuid IS NULL OR s.conversation_id = $1) AND ($2::timestamptz IS NULL OR s.created_at > $2)
             ORDER BY s.created_at DESC, s.step_number DESC LIMIT $3
            """, r => new StepRow(r.GetGuid(0), r.GetFieldValue<DateTimeOffset>(1), r.GetGuid(2), r.GetGuid(3), r.GetInt32(4), r.GetString(5),
                r.GetInt32(6), r.GetString(7), r.GetString(8), r.IsDBNull(9) ? null : r.GetString(9), r.GetString(10), r.GetString(11)),
            ct, Uuid(conversationId), P(after, NpgsqlDbType.TimestampTz), P(limit, NpgsqlDbType.Integer));

    /// <summary>Tool calls waiting for a decision (aos_agent.tool_call_queue).</summary>
    public async Task<List<ApprovalRequest>> PendingApprovalsAsync(CancellationToken ct = default) =>
        await QueryAsync("""
            SELECT step_id, requested_at, conversation_id, turn_id, agent_name, tool_name, arguments::text, status, risk_level, reason, user_message
              FROM aos_agent.tool_call_queue
            """, r => new ApprovalRequest(r.GetGuid(0), r.GetFieldValue<DateTimeOffset>(1), r.GetGuid(2), r.GetGuid(3), r.GetString(4), r.GetString(5),
                r.GetString(6), r.GetString(7), r.IsDBNull(8) ? null : r.GetString(8), r.IsDBNull(9) ? null : r.GetString(9),
                r.IsDBNull(10) ? null : r.GetString(10)), ct);

    /// <summary>Verifies the bound tenant's event chains.</summary>
    public async Task<ChainVerification> VerifyEventChainAsync(Guid? chainId = null, CancellationToken ct = default) =>
        Parse<ChainVerification>(await ScalarAsync<string>("SELECT aos_core.verify_event_chain(NULL, $1)::text", ct, Uuid(chainId)))!;

    /// <summary>Creates a checkpoint (export the JSON outside the database).</summary>
    public async Task<JsonObject> CreateCheckpointAsync(CancellationToken ct = default) =>
        JsonNode.Parse((await ScalarAsync<string>("SELECT aos_core.create_checkpoint()::text", ct))!)!.AsObject();

    /// <summary>Checks an exported checkpoint against the database.</summary>
    public async Task<JsonObject> VerifyCheckpointAsync(JsonObject checkpoint, CancellationToken ct = default) =>
        JsonNode.Parse((await ScalarAsync<string>("SELECT aos_core.verify_checkpoint($1)::text", ct, Jsonb(checkpoint)))!)!.AsObject();

    /// <summary>Runs a raw query as the bound tenant and returns rows as JSON objects (for shells and tests).</summary>
    public async Task<List<JsonObject>> QueryJsonAsync(string sql, CancellationToken ct = default, params object?[] args) =>
        await QueryAsync($"SELECT to_jsonb(q)::text FROM ({sql}) q", r => JsonNode.Parse(r.GetString(0))!.AsObject(), ct,
            [.. args.Select(a => a switch
            {
                Guid g => Uuid(g),
                string s => Text(s),
                int i => P(i, NpgsqlDbType.Integer),
                long l => P(l, NpgsqlDbType.Bigint),
                bool b => P(b, NpgsqlDbType.Boolean),
                DateTimeOffset d => P(d, NpgsqlDbType.TimestampTz),
                null => new Npgsql.NpgsqlParameter { Value = DBNull.Value },
                _ => Jsonb(a),
            })]);

    /// <summary>Extracts a JSON element (helper for callers that kept a raw element).</summary>
    public static JsonElement Element(string json)
    {
        using var d = JsonDocument.Parse(json);
        return d.RootElement.Clone();
    }
}
