using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;

namespace PgAgentOS.Client;

// Reading and listing for shells (the aos command line, dashboards): tenants, personas, agents,
// conversations, turns, timelines, live steps, statistics. Every query reads through row-level
// security as the bound tenant (except the tenant list, which platform administrators see whole).

/// <summary>What kind of object an id names (for id prefixes typed by people).</summary>
public enum AosIdKind
{
    /// <summary>aos_agent.conversation.</summary>
    Conversation,
    /// <summary>aos_agent.turn.</summary>
    Turn,
    /// <summary>aos_agent.step.</summary>
    Step,
    /// <summary>aos_agent.agent.</summary>
    Agent,
    /// <summary>aos_persona.persona.</summary>
    Persona,
}

/// <summary>A tenant.</summary>
public sealed record TenantInfo(Guid TenantId, string Name, string? DisplayName, bool IsActive, DateTimeOffset CreatedAt, JsonObject Settings);

/// <summary>A persona.</summary>
public sealed record PersonaInfo(Guid PersonaId, string Name, string SystemPrompt, string? Model, JsonObject Traits, JsonObject OverrideParams,
    int Version, bool IsActive, DateTimeOffset CreatedAt, long Agents);

/// <summary>An agent.</summary>
public sealed record AgentInfo(Guid AgentId, string Name, string? Description, Guid? PersonaId, string? PersonaName, string Model,
    IReadOnlyList<string> Tools, JsonObject Config, string RoleKey, bool IsActive, DateTimeOffset CreatedAt, long Conversations);

/// <summary>A conversation.</summary>
public sealed record ConversationInfo(Guid ConversationId, Guid AgentId, string AgentName, string? Title, string Status, string RunState,
    Guid? ActiveTurnId, int TurnCount, long TotalTokens, decimal TotalCostUsd, DateTimeOffset CreatedAt, DateTimeOffset LastActivityAt);

/// <summary>A turn (without its steps).</summary>
public sealed record TurnInfo(Guid TurnId, Guid ConversationId, Guid AgentId, int TurnNumber, string Status, string UserMessage,
    string? AssistantMessage, string? ErrorMessage, long TokensUsed, decimal CostUsd, DateTimeOffset CreatedAt, DateTimeOffset? CompletedAt)
{
    /// <summary>True when the turn will not change any more.</summary>
    public bool IsFinished => Status is "completed" or "failed" or "cancelled" or "dead";
}

/// <summary>One row of aos_agent.conversation_timeline.</summary>
public sealed record TimelineRow(Guid TurnId, int TurnNumber, string TurnStatus, Guid StepId, int StepNumber, DateTimeOffset CreatedAt,
    string StepType, string Status, string? ToolName, string Summary, string? Approval, string? ApprovedBySource, string? ApprovalNote);

/// <summary>A decision on a tool call (aos_agent.approval).</summary>
public sealed record ApprovalDecision(Guid StepId, Guid TurnId, Guid ConversationId, string AgentName, string ToolName, string Decision,
    string Source, string? Note, DateTimeOffset DecidedAt);

/// <summary>One row of aos_agent.agent_stats.</summary>
public sealed record AgentStatsRow(Guid AgentId, string AgentName, bool IsActive, long Conversations, long Turns, long CompletedTurns,
    long FailedTurns, long OpenTurns, long TotalTokens, decimal TotalCostUsd, decimal? AvgTurnDurationMs, decimal? SuccessRate,
    DateTimeOffset? LastTurnAt);

/// <summary>One hour of aos_agent.get_hourly_activity.</summary>
public sealed record HourlyActivity(DateTimeOffset Hour, long TurnCount, long StepCount, long TokenCount, decimal CostUsd, long ToolCalls,
    long FailedTurns);

/// <summary>A model of the registry.</summary>
public sealed record ModelEntry(Guid ModelId, string Provider, string ModelName, string? DisplayName, bool IsActive, string? ApiKeyEnvVar)
{
    /// <summary>provider/model_name.</summary>
    public string Ref => Provider + "/" + ModelName;
}

/// <summary>A piece of a streamed answer (on the tenant's stream channel: AosClient.StreamChannelAsync).</summary>
public sealed record StreamDelta(Guid TurnId, Guid ConversationId, long Seq, string Delta)
{
    /// <summary>Parses a notification payload; null when it is not a delta.</summary>
    public static StreamDelta? TryParse(string payload)
    {
        try
        {
            var o = JsonNode.Parse(payload) as JsonObject;
            if (o is null || !Guid.TryParse((string?)o["turn_id"], out var turn))
            {
                return null;
            }
            Guid.TryParse((string?)o["conversation_id"], out var conv);
            var seq = o["seq"] is JsonValue v && v.TryGetValue<long>(out var s) ? s : 0;
            return new StreamDelta(turn, conv, seq, (string?)o["delta"] ?? "");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }
}

public sealed partial class AosClient
{
    private const string StepColumns = """
        s.step_id, s.created_at, s.conversation_id, s.turn_id, t.turn_number, a.name, s.step_number, s.step_type, s.status,
        s.tool_name, aos_agent.step_summary(s.step_type, s.content), s.content::text
        """;

    private static StepRow MapStep(NpgsqlDataReader r) =>
        new(r.GetGuid(0), r.GetFieldValue<DateTimeOffset>(1), r.GetGuid(2), r.GetGuid(3), r.GetInt32(4), r.GetString(5),
            r.GetInt32(6), r.GetString(7), r.GetString(8), r.IsDBNull(9) ? null : r.GetString(9), r.GetString(10), r.GetString(11));

    private static JsonObject ObjectOf(NpgsqlDataReader r, int i) =>
        r.IsDBNull(i) ? [] : JsonNode.Parse(r.GetString(i)) as JsonObject ?? [];

    // ------------------------------------------------------------------------------------------
    // Tenants
    // ------------------------------------------------------------------------------------------

    /// <summary>The tenants the caller sees (all of them for platform administrators), by name.</summary>
    public async Task<List<TenantInfo>> ListTenantsAsync(CancellationToken ct = default) =>
        await QueryAsync("SELECT tenant_id, name, display_name, is_active, created_at, settings::text FROM aos_auth.tenant ORDER BY name",
            r => new TenantInfo(r.GetGuid(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), r.GetBoolean(3),
                r.GetFieldValue<DateTimeOffset>(4), ObjectOf(r, 5)), ct);

    /// <summary>A tenant by id, or null.</summary>
    public async Task<TenantInfo?> GetTenantAsync(Guid tenantId, CancellationToken ct = default) =>
        (await QueryAsync("SELECT tenant_id, name, display_name, is_active, created_at, settings::text FROM aos_auth.tenant WHERE tenant_id = $1",
            r => new TenantInfo(r.GetGuid(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), r.GetBoolean(3),
                r.GetFieldValue<DateTimeOffset>(4), ObjectOf(r, 5)), ct, Uuid(tenantId))).FirstOrDefault();

    /// <summary>The bound tenant's row of aos_agent.dashboard_overview.</summary>
    public async Task<JsonObject?> DashboardOverviewAsync(CancellationToken ct = default) =>
        (await QueryJsonAsync("SELECT * FROM aos_agent.dashboard_overview", ct)).FirstOrDefault();

    // ------------------------------------------------------------------------------------------
    // Personas and agents
    // ------------------------------------------------------------------------------------------

    private const string PersonaSelect = """
        SELECT p.persona_id, p.name, p.system_prompt, m.provider || '/' || m.model_name, p.traits::text, p.override_params::text,
               p.version, p.is_active, p.created_at,
               (SELECT count(*) FROM aos_agent.agent a WHERE a.tenant_id = p.tenant_id AND a.persona_id = p.persona_id)
          FROM aos_persona.persona p
          LEFT JOIN aos_meta.llm_model_registry m ON m.model_id = p.model_id
         WHERE p.tenant_id = aos_auth.current_tenant()
        """;

    private static PersonaInfo MapPersona(NpgsqlDataReader r) =>
        new(r.GetGuid(0), r.GetString(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3), ObjectOf(r, 4), ObjectOf(r, 5),
            r.GetInt32(6), r.GetBoolean(7), r.GetFieldValue<DateTimeOffset>(8), r.GetInt64(9));

    /// <summary>The bound tenant's personas, by name.</summary>
    public async Task<List<PersonaInfo>> ListPersonasAsync(CancellationToken ct = default) =>
        await QueryAsync(PersonaSelect + " ORDER BY p.name", MapPersona, ct);

    /// <summary>A persona of the bound tenant, or null.</summary>
    public async Task<PersonaInfo?> GetPersonaAsync(Guid personaId, CancellationToken ct = default) =>
        (await QueryAsync(PersonaSelect + " AND p.persona_id = $1", MapPersona, ct, Uuid(personaId))).FirstOrDefault();

    /// <summary>A persona id by name in the bound tenant.</summary>
    public async Task<Guid?> FindPersonaAsync(string name, CancellationToken ct = default) =>
        await ScalarAsync<Guid?>("SELECT persona_id FROM aos_persona.persona WHERE tenant_id = aos_auth.current_tenant() AND name = $1", ct, Text(name));

    private const string AgentSelect = """
        SELECT a.agent_id, a.name, a.description, a.persona_id, p.name,
               coalesce(m.provider || '/' || m.model_name, dm.provider || '/' || dm.model_name, '-'),
               a.tools, a.config::text, a.role_key, a.is_active, a.created_at,
               (SELECT count(*) FROM aos_agent.conversation c WHERE c.tenant_id = a.tenant_id AND c.agent_id = a.agent_id)
          FROM aos_agent.agent a
          LEFT JOIN aos_persona.persona p ON p.tenant_id = a.tenant_id AND p.persona_id = a.persona_id
          LEFT JOIN aos_meta.llm_model_registry m ON m.model_id = coalesce(a.model_id, p.model_id)
          LEFT JOIN aos_meta.llm_model_registry dm ON dm.model_id = aos_agent.default_model_id(a.tenant_id)
         WHERE a.tenant_id = aos_auth.current_tenant()
        """;

    private static AgentInfo MapAgent(NpgsqlDataReader r) =>
        new(r.GetGuid(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), r.IsDBNull(3) ? null : r.GetGuid(3),
            r.IsDBNull(4) ? null : r.GetString(4), r.GetString(5), r.GetFieldValue<string[]>(6), ObjectOf(r, 7), r.GetString(8),
            r.GetBoolean(9), r.GetFieldValue<DateTimeOffset>(10), r.GetInt64(11));

    /// <summary>The bound tenant's agents, by name.</summary>
    public async Task<List<AgentInfo>> ListAgentsAsync(CancellationToken ct = default) =>
        await QueryAsync(AgentSelect + " ORDER BY a.name", MapAgent, ct);

    /// <summary>An agent of the bound tenant, or null.</summary>
    public async Task<AgentInfo?> GetAgentAsync(Guid agentId, CancellationToken ct = default) =>
        (await QueryAsync(AgentSelect + " AND a.agent_id = $1", MapAgent, ct, Uuid(agentId))).FirstOrDefault();

    // ------------------------------------------------------------------------------------------
    // Conversations and turns
    // ------------------------------------------------------------------------------------------

    private const string ConversationSelect = """
        SELECT c.conversation_id, c.agent_id, a.name, c.title, c.status, c.run_state, c.active_turn_id, c.turn_count,
               c.total_tokens, c.total_cost_usd, c.created_at, c.last_activity_at
          FROM aos_agent.conversation c
          JOIN aos_agent.agent a ON a.tenant_id = c.tenant_id AND a.agent_id = c.agent_id
         WHERE c.tenant_id = aos_auth.current_tenant()
        """;

    private static ConversationInfo MapConversation(NpgsqlDataReader r) =>
        new(r.GetGuid(0), r.GetGuid(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3), r.GetString(4), r.GetString(5),
            r.IsDBNull(6) ? null : r.GetGuid(6), r.GetInt32(7), r.GetInt64(8), r.GetDecimal(9), r.GetFieldValue<DateTimeOffset>(10),
            r.GetFieldValue<DateTimeOffset>(11));

    /// <summary>A conversation of the bound tenant, or null.</summary>
    public async Task<ConversationInfo?> GetConversationAsync(Guid conversationId, CancellationToken ct = default) =>
        (await QueryAsync(ConversationSelect + " AND c.conversation_id = $1", MapConversation, ct, Uuid(conversationId))).FirstOrDefault();

    /// <summary>The latest conversations of the bound tenant (of one agent, when given), newest first.</summary>
    public async Task<List<ConversationInfo>> ListConversationsAsync(Guid? agentId = null, int limit = 20, CancellationToken ct = default) =>
        await QueryAsync(ConversationSelect + " AND ($1::uuid IS NULL OR c.agent_id = $1) ORDER BY c.created_at DESC LIMIT $2", MapConversation, ct,
            Uuid(agentId), P(limit, NpgsqlDbType.Integer));

    private const string TurnSelect = """
        SELECT turn_id, conversation_id, agent_id, turn_number, status, user_message, assistant_message, error_message,
               tokens_used, cost_usd, created_at, completed_at
          FROM aos_agent.turn WHERE tenant_id = aos_auth.current_tenant()
        """;

    private static TurnInfo MapTurn(NpgsqlDataReader r) =>
        new(r.GetGuid(0), r.GetGuid(1), r.GetGuid(2), r.GetInt32(3), r.GetString(4), r.GetString(5), r.IsDBNull(6) ? null : r.GetString(6),
            r.IsDBNull(7) ? null : r.GetString(7), r.GetInt64(8), r.GetDecimal(9), r.GetFieldValue<DateTimeOffset>(10),
            r.IsDBNull(11) ? null : r.GetFieldValue<DateTimeOffset>(11));

    /// <summary>A turn of the bound tenant (without steps), or null.</summary>
    public async Task<TurnInfo?> GetTurnAsync(Guid turnId, CancellationToken ct = default) =>
        (await QueryAsync(TurnSelect + " AND turn_id = $1", MapTurn, ct, Uuid(turnId))).FirstOrDefault();

    /// <summary>A turn and all its steps in order, read in one snapshot; null when the turn is not there.</summary>
    public async Task<(TurnInfo Turn, List<StepRow> Steps)?> GetTurnWithStepsAsync(Guid turnId, CancellationToken ct = default)
    {
        return await RunAsync<(TurnInfo, List<StepRow>)?>(async (conn, tx) =>
        {
            await using var batch = BindBatch(conn, tx);
            var skip = batch.BatchCommands.Count;
            batch.BatchCommands.Add(new NpgsqlBatchCommand(TurnSelect + " AND turn_id = $1") { Parameters = { Uuid(turnId) } });
            batch.BatchCommands.Add(new NpgsqlBatchCommand($"""
                SELECT {StepColumns}
                  FROM aos_agent.step s
                  JOIN aos_agent.turn t ON t.tenant_id = s.tenant_id AND t.turn_id = s.turn_id
                  JOIN aos_agent.agent a ON a.tenant_id = t.tenant_id AND a.agent_id = t.agent_id
                 WHERE s.tenant_id = aos_auth.current_tenant() AND s.turn_id = $1
                 ORDER BY s.step_number
                """) { Parameters = { Uuid(turnId) } });
            await using var reader = await batch.ExecuteReaderAsync(ct);
            for (var i = 0; i < skip; i++)
            {
                await reader.NextResultAsync(ct);
            }
            TurnInfo? turn = null;
            if (await reader.ReadAsync(ct))
            {
                turn = MapTurn(reader);
            }
            await reader.NextResultAsync(ct);
            var steps = new List<StepRow>();
            while (await reader.ReadAsync(ct))
            {
                steps.Add(MapStep(reader));
            }
            return turn is null ? null : (turn, steps);
        }, ct);
    }

    /// <summary>Every step of a conversation with its approval decision (aos_agent.conversation_timeline), in order.</summary>
    public async Task<List<TimelineRow>> TimelineAsync(Guid conversationId, CancellationToken ct = default) =>
        await QueryAsync("""
            SELECT turn_id, turn_number, turn_status, step_id, step_number, created_at, step_type, status, tool_name, summary,
                   approval, approved_by_source, approval_note
              FROM aos_agent.conversation_timeline
             WHERE conversation_id = $1
             ORDER BY turn_number, step_number
            """, r => new TimelineRow(r.GetGuid(0), r.GetInt32(1), r.GetString(2), r.GetGuid(3), r.GetInt32(4), r.GetFieldValue<DateTimeOffset>(5),
                r.GetString(6), r.GetString(7), r.IsDBNull(8) ? null : r.GetString(8), r.GetString(9), r.IsDBNull(10) ? null : r.GetString(10),
                r.IsDBNull(11) ? null : r.GetString(11), r.IsDBNull(12) ? null : r.GetString(12)), ct, Uuid(conversationId));

    // ------------------------------------------------------------------------------------------
    // Live views
    // ------------------------------------------------------------------------------------------

    /// <summary>
    /// Steps of the bound tenant created after <paramref name="after"/> (all, when null; then the
    /// latest <paramref name="limit"/>), optionally of one agent or one conversation, oldest first.
    /// </summary>
    public async Task<List<StepRow>> StepsSinceAsync(DateTimeOffset? after, Guid? agentId = null, Guid? conversationId = null, int limit = 200,
        CancellationToken ct = default)
    {
        var rows = await QueryAsync($"""
            SELECT {StepColumns}
              FROM aos_agent.step s
              JOIN aos_agent.turn t ON t.tenant_id = s.tenant_id AND t.turn_id = s.turn_id
              JOIN aos_agent.agent a ON a.tenant_id = t.tenant_id AND a.agent_id = t.agent_id
             WHERE s.tenant_id = aos_auth.current_tenant()
               AND ($1::timestamptz IS NULL OR s.created_at > $1)
               AND ($2::uuid IS NULL OR t.agent_id = $2)
               AND ($3::uuid IS NULL OR s.conversation_id = $3)
             ORDER BY s.created_at DESC, s.step_number DESC
             LIMIT $4
            """, MapStep, ct, P(after, NpgsqlDbType.TimestampTz), Uuid(agentId), Uuid(conversationId), P(limit, NpgsqlDbType.Integer));
        rows.Reverse();
        return rows;
    }

    /// <summary>Decisions on tool calls of the bound tenant made after a time, oldest first.</summary>
    public async Task<List<ApprovalDecision>> ApprovalsSinceAsync(DateTimeOffset after, Guid? agentId = null, Guid? conversationId = null,
        CancellationToken ct = default) =>
        await QueryAsync("""
            SELECT ap.step_id, ap.turn_id, t.conversation_id, a.name, ap.tool_name, ap.decision, ap.source, ap.note, ap.decided_at
              FROM aos_agent.approval ap
              JOIN aos_agent.turn t ON t.tenant_id = ap.tenant_id AND t.turn_id = ap.turn_id
              JOIN aos_agent.agent a ON a.tenant_id = t.tenant_id AND a.agent_id = t.agent_id
             WHERE ap.tenant_id = aos_auth.current_tenant() AND ap.decided_at > $1 AND ap.source <> 'auto'
               AND ($2::uuid IS NULL OR t.agent_id = $2)
               AND ($3::uuid IS NULL OR t.conversation_id = $3)
             ORDER BY ap.decided_at
             LIMIT 200
            """, r => new ApprovalDecision(r.GetGuid(0), r.GetGuid(1), r.GetGuid(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6),
                r.IsDBNull(7) ? null : r.GetString(7), r.GetFieldValue<DateTimeOffset>(8)),
            ct, P(after, NpgsqlDbType.TimestampTz), Uuid(agentId), Uuid(conversationId));

    /// <summary>The database clock (to start following from "now").</summary>
    public async Task<DateTimeOffset> DatabaseNowAsync(CancellationToken ct = default) =>
        new(await ScalarAsync<DateTime>("SELECT clock_timestamp()", ct), TimeSpan.Zero);

    // ------------------------------------------------------------------------------------------
    // Ids typed by people
    // ------------------------------------------------------------------------------------------

    /// <summary>
    /// The ids of the bound tenant's objects of a kind that start with a hexadecimal prefix (at
    /// most <paramref name="max"/>). Uses the primary key's range, so it is cheap.
    /// </summary>
    public async Task<List<Guid>> MatchIdPrefixAsync(AosIdKind kind, string prefix, int max = 2, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        var hex = prefix.Replace("-", "", StringComparison.Ordinal).ToLowerInvariant();
        if (hex.Length is 0 or > 32 || !hex.All(Uri.IsHexDigit))
        {
            return [];
        }
        var low = Guid.ParseExact(hex.PadRight(32, '0'), "N");
        var high = Guid.ParseExact(hex.PadRight(32, 'f'), "N");
        var sql = kind switch
        {
            AosIdKind.Conversation => "SELECT conversation_id FROM aos_agent.conversation WHERE tenant_id = aos_auth.current_tenant() AND conversation_id BETWEEN $1 AND $2 ORDER BY 1 LIMIT $3",
            AosIdKind.Turn => "SELECT turn_id FROM aos_agent.turn WHERE tenant_id = aos_auth.current_tenant() AND turn_id BETWEEN $1 AND $2 ORDER BY 1 LIMIT $3",
            AosIdKind.Step => "SELECT step_id FROM aos_agent.step WHERE tenant_id = aos_auth.current_tenant() AND step_id BETWEEN $1 AND $2 ORDER BY 1 LIMIT $3",
            AosIdKind.Agent => "SELECT agent_id FROM aos_agent.agent WHERE tenant_id = aos_auth.current_tenant() AND agent_id BETWEEN $1 AND $2 ORDER BY 1 LIMIT $3",
            AosIdKind.Persona => "SELECT persona_id FROM aos_persona.persona WHERE tenant_id = aos_auth.current_tenant() AND persona_id BETWEEN $1 AND $2 ORDER BY 1 LIMIT $3",
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        return await QueryAsync(sql, r => r.GetGuid(0), ct, Uuid(low), Uuid(high), P(max, NpgsqlDbType.Integer));
    }

    // ------------------------------------------------------------------------------------------
    // Statistics
    // ------------------------------------------------------------------------------------------

    /// <summary>aos_agent.agent_stats of the bound tenant, busiest agents first.</summary>
    public async Task<List<AgentStatsRow>> AgentStatsAsync(CancellationToken ct = default) =>
        await QueryAsync("""
            SELECT agent_id, agent_name, is_active, conversations, turns, completed_turns, failed_turns, open_turns, total_tokens,
                   total_cost_usd, avg_turn_duration_ms, success_rate, last_turn_at
              FROM aos_agent.agent_stats ORDER BY turns DESC, agent_name
            """, r => new AgentStatsRow(r.GetGuid(0), r.GetString(1), r.GetBoolean(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6),
                r.GetInt64(7), Convert.ToInt64(r.GetValue(8), CultureInfo.InvariantCulture), r.GetDecimal(9),
                r.IsDBNull(10) ? null : r.GetDecimal(10), r.IsDBNull(11) ? null : r.GetDecimal(11),
                r.IsDBNull(12) ? null : r.GetFieldValue<DateTimeOffset>(12)), ct);

    /// <summary>The bound tenant's activity per hour over the last days (aos_agent.get_hourly_activity).</summary>
    public async Task<List<HourlyActivity>> HourlyActivityAsync(int days = 1, CancellationToken ct = default) =>
        await QueryAsync("SELECT hour, turn_count, step_count, token_count, cost_usd, tool_calls, failed_turns FROM aos_agent.get_hourly_activity(NULL, $1)",
            r => new HourlyActivity(r.GetFieldValue<DateTimeOffset>(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetDecimal(4), r.GetInt64(5),
                r.GetInt64(6)), ct, P(days, NpgsqlDbType.Integer));

    // ------------------------------------------------------------------------------------------
    // Models and policies
    // ------------------------------------------------------------------------------------------

    /// <summary>The model registry.</summary>
    public async Task<List<ModelEntry>> ListModelsAsync(CancellationToken ct = default) =>
        await QueryAsync("SELECT model_id, provider, model_name, display_name, is_active, api_key_env_var FROM aos_meta.llm_model_registry ORDER BY provider, model_name",
            r => new ModelEntry(r.GetGuid(0), r.GetString(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3), r.GetBoolean(4),
                r.IsDBNull(5) ? null : r.GetString(5)), ct);

    /// <summary>
    /// Adds a tool-call policy rule to the bound tenant (its administrators only; row-level security
    /// checks): action deny, require_approval or auto_approve, for one skill and/or agent. Returns its id.
    /// </summary>
    public async Task<Guid> CreatePolicyRuleAsync(string name, string action, string? skillKey = null, Guid? agentId = null, int priority = 100,
        CancellationToken ct = default) =>
        await ScalarAsync<Guid>("""
            INSERT INTO aos_policy.policy_rule (tenant_id, name, skill_key, agent_id, action, priority)
            VALUES (aos_auth.current_tenant(), $1, $2, $3, $4, $5) RETURNING rule_id
            """, ct, Text(name), Text(skillKey), Uuid(agentId), Text(action), P(priority, NpgsqlDbType.Integer));

    /// <summary>True when the login is a member of a role (for example aos_worker), directly or through other roles.</summary>
    public async Task<bool> LoginHasRoleAsync(string role, CancellationToken ct = default) =>
        await ScalarAsync<bool>("SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1) THEN pg_catalog.pg_has_role(current_user, $1, 'MEMBER') ELSE false END",
            ct, Text(role));

    /// <summary>A policy rule id of the bound tenant by name.</summary>
    public async Task<Guid?> FindPolicyRuleAsync(string name, CancellationToken ct = default) =>
        await ScalarAsync<Guid?>("SELECT rule_id FROM aos_policy.policy_rule WHERE tenant_id = aos_auth.current_tenant() AND name = $1", ct, Text(name));
}
