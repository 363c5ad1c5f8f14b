using System.Text;
using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;

namespace PgAgentOS.Client;

/// <summary>How one tool of a turn is implemented (aos_agent.turn_skills).</summary>
public sealed record SkillImplementation
{
    /// <summary>The skill key (the tool's name).</summary>
    public string SkillKey { get; init; } = "";
    /// <summary>builtin, http, sql or mcp (null when the skill has no enabled implementation).</summary>
    public string? ImplType { get; init; }
    /// <summary>Implementation settings, e.g. {"builtin": "clock"} or {"server": "files", "tool": "read"}.</summary>
    public JsonObject Config { get; init; } = [];
    /// <summary>True when running it twice does no harm.</summary>
    public bool Idempotent { get; init; }
    /// <summary>How long one call may run.</summary>
    public int TimeoutMs { get; init; } = 30000;
    /// <summary>low, medium, high or critical.</summary>
    public string RiskLevel { get; init; } = "low";
    /// <summary>JSON Schema of the arguments.</summary>
    public JsonObject InputSchema { get; init; } = [];
}

/// <summary>The kernel's answer to "may this turn's tool reach host:port?" (aos_egress.check_host).</summary>
public sealed record EgressHostDecision
{
    /// <summary>True when an allowlist entry covers host and port.</summary>
    public bool Allowed { get; init; }
    /// <summary>The normalised host.</summary>
    public string? Host { get; init; }
    /// <summary>Why it was refused.</summary>
    public string? Reason { get; init; }
    /// <summary>The entry that allowed it.</summary>
    public Guid? AllowlistId { get; init; }
}

/// <summary>One line of aos_egress.request, as a worker reports it.</summary>
public sealed record EgressLogEntry
{
    /// <summary>allow or deny.</summary>
    public required string Decision { get; init; }
    /// <summary>Why (for a refusal, or an error after connecting).</summary>
    public string? Reason { get; init; }
    /// <summary>HTTP method.</summary>
    public string Method { get; init; } = "GET";
    /// <summary>The URL.</summary>
    public required string Url { get; init; }
    /// <summary>The host of the URL.</summary>
    public required string Host { get; init; }
    /// <summary>The address that was checked (and connected to).</summary>
    public string? ResolvedIp { get; init; }
    /// <summary>Response status.</summary>
    public int? StatusCode { get; init; }
    /// <summary>Bytes of the response body read.</summary>
    public long? Bytes { get; init; }
    /// <summary>How long it took.</summary>
    public int? DurationMs { get; init; }
    /// <summary>The skill that made the request.</summary>
    public string? SkillKey { get; init; }
    /// <summary>The tool_call step.</summary>
    public Guid? StepId { get; init; }
}

/// <summary>Rows of a read-only query run as a turn's tenant, or the error it raised.</summary>
public sealed record TenantQueryResult
{
    /// <summary>The rows, each as a JSON object.</summary>
    public JsonArray Rows { get; init; } = [];
    /// <summary>Column names, in order.</summary>
    public IReadOnlyList<string> Columns { get; init; } = [];
    /// <summary>True when more rows (or bytes) were there than the limits allowed.</summary>
    public bool Truncated { get; init; }
    /// <summary>The server's error (SQLSTATE and message) when the query failed.</summary>
    public string? Error { get; init; }
}

/// <summary>A tenant's own skill, as an administrator registers it (for example a tool of an MCP server).</summary>
public sealed record TenantSkill
{
    /// <summary>Key (the tool's name): letters, digits, _ . - ; starts with a letter.</summary>
    public required string SkillKey { get; init; }
    /// <summary>Display name.</summary>
    public required string Name { get; init; }
    /// <summary>What it does (the model reads this).</summary>
    public required string Description { get; init; }
    /// <summary>Category.</summary>
    public string Category { get; init; } = "external";
    /// <summary>JSON Schema of the arguments (type object).</summary>
    public required JsonObject InputSchema { get; init; }
    /// <summary>Whether a call waits for a person by default.</summary>
    public bool RequiresApproval { get; init; } = true;
    /// <summary>low, medium, high or critical.</summary>
    public string RiskLevel { get; init; } = "medium";
    /// <summary>True when running it twice does no harm.</summary>
    public bool Idempotent { get; init; }
    /// <summary>Time limit of one call.</summary>
    public int TimeoutMs { get; init; } = 30000;
    /// <summary>builtin, http, sql or mcp.</summary>
    public required string ImplType { get; init; }
    /// <summary>Implementation settings.</summary>
    public JsonObject ImplConfig { get; init; } = [];
    /// <summary>Roles granted the skill (default: agent).</summary>
    public IReadOnlyList<string> GrantRoles { get; init; } = ["agent"];
}

public sealed partial class AosClient
{
    /// <summary>
    /// The bound tenant's channel of streamed answer deltas ({"turn_id","conversation_id","seq","delta"}, see
    /// docs/runtime.md): one per tenant, named by the kernel with an HMAC so that other tenants cannot listen.
    /// </summary>
    public async Task<string> StreamChannelAsync(CancellationToken ct = default) =>
        (await ScalarAsync<string>("SELECT aos_agent.stream_channel()", ct))!;

    /// <summary>How the tools of the turn a worker holds are implemented.</summary>
    /// <summary>
    /// Records a tool result (with the ticket) and reads the turn's fresh context in the same round
    /// trip and the same implicit transaction: what a worker needs before it calls the model again.
    /// Given the context the worker holds (<paramref name="held"/>, from its claim), only this turn's
    /// part is read (aos_agent.refresh_turn) and the earlier turns' messages are taken from it;
    /// otherwise the whole context (aos_agent.run_turn).
    /// </summary>
    public async Task<(Guid StepId, TurnContext Context)> RecordToolResultAndContextAsync(Guid turnId, string toolName, JsonNode? output, bool success,
        string? errorMessage, Guid leaseToken, Guid ticket, CancellationToken ct = default, TurnContext? held = null)
    {
        var refresh = CanRefresh(held, turnId);
        return await RunAsync(async (conn, tx) =>
        {
            await using var batch = BindBatch(conn, tx);
            batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT aos_agent.record_tool_result($1, $2, $3, $4, $5, $6, $7)")
            {
                Parameters =
                {
                    Uuid(turnId), Text(toolName), Jsonb(output), P(success, NpgsqlDbType.Boolean), Text(errorMessage), Uuid(leaseToken), Uuid(ticket),
                },
            });
            batch.BatchCommands.Add(new NpgsqlBatchCommand(refresh ? "SELECT aos_agent.refresh_turn($1, $2)::text" : "SELECT aos_agent.run_turn($1, $2)::text")
            {
                Parameters = { Uuid(turnId), Uuid(leaseToken) },
            });
            await using var reader = await batch.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            var step = reader.GetGuid(0);
            await reader.NextResultAsync(ct);
            await reader.ReadAsync(ct);
            var context = Parse<TurnContext>(reader.GetString(0))!;
            return (step, refresh ? context.WithHistoryOf(held!) : context);
        }, ct);
    }

    /// <summary>
    /// The turn's context as run_turn returns it, for the worker holding it. Given the context the
    /// worker holds (<paramref name="held"/>, from its claim), only this turn's part is read
    /// (aos_agent.refresh_turn) and the earlier turns' messages are taken from it.
    /// </summary>
    public async Task<TurnContext> RefreshTurnAsync(Guid turnId, Guid leaseToken, TurnContext? held, CancellationToken ct = default)
    {
        if (!CanRefresh(held, turnId))
        {
            return await RunTurnAsync(turnId, leaseToken, ct);
        }
        var context = Parse<TurnContext>(await ScalarAsync<string>("SELECT aos_agent.refresh_turn($1, $2)::text", ct, Uuid(turnId), Uuid(leaseToken)))!;
        return context.WithHistoryOf(held!);
    }

    private static bool CanRefresh(TurnContext? held, Guid turnId) => held?.CanLendHistoryTo(turnId) == true;

    public async Task<IReadOnlyList<SkillImplementation>> TurnSkillsAsync(Guid turnId, Guid leaseToken, CancellationToken ct = default) =>
        Parse<List<SkillImplementation>>(await ScalarAsync<string>("SELECT aos_agent.turn_skills($1, $2)::text", ct,
            Uuid(turnId), Uuid(leaseToken))) ?? [];

    /// <summary>Asks the kernel whether a tool of the held turn may reach host:port; a refusal is logged by the kernel.</summary>
    public async Task<EgressHostDecision> CheckEgressHostAsync(Guid turnId, Guid leaseToken, string skillKey, string method, string url,
        string host, int port, Guid? stepId = null, CancellationToken ct = default) =>
        Parse<EgressHostDecision>(await ScalarAsync<string>("SELECT aos_egress.check_host($1, $2, $3, $4, $5, $6, $7, $8)::text", ct,
            Uuid(turnId), Uuid(leaseToken), Text(skillKey), Text(method), Text(url), Text(host), P(port, NpgsqlDbType.Integer), Uuid(stepId)))!;

    /// <summary>Logs an outbound request decision of the held turn in aos_egress.request.</summary>
    public async Task<Guid> LogEgressRequestAsync(Guid turnId, Guid leaseToken, EgressLogEntry entry, CancellationToken ct = default) =>
        await ScalarAsync<Guid>("SELECT aos_egress.log_request($1, $2, $3)", ct, Uuid(turnId), Uuid(leaseToken), Jsonb(entry));

    /// <summary>
    /// Sends a notification (pg_notify) outside any transaction of the caller: on a connection of
    /// its own, in autocommit, so that listeners get it at once. Payloads must stay under 8000 bytes.
    /// </summary>
    public async Task NotifyAsync(string channel, string payload, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(channel);
        ArgumentNullException.ThrowIfNull(payload);
        if (_dataSource is null)
        {
            throw new InvalidOperationException("NotifyAsync needs a client over a data source, not one joined to a transaction.");
        }
        try
        {
            // A notifying transaction takes an xid and holds PostgreSQL's notification lock until its
            // commit is done; with synchronous_commit off that commit does not wait for the WAL flush,
            // so the lock is held only briefly. A notification is a hint: losing one in a crash is fine.
            await using var conn = await _dataSource.OpenConnectionAsync(ct);
            await using var batch = new NpgsqlBatch(conn)
            {
                BatchCommands =
                {
                    new NpgsqlBatchCommand(AsyncCommitSql),
                    new NpgsqlBatchCommand("SELECT pg_notify($1, $2)") { Parameters = { Text(channel), Text(payload) } },
                },
            };
            await batch.ExecuteNonQueryAsync(ct);
        }
        catch (PostgresException e)
        {
            throw AosException.From(e);
        }
    }

    /// <summary>
    /// Runs one query written by a model as the tenant of the turn a worker holds: in a READ ONLY
    /// transaction bound to that tenant (aos_agent.bind_turn_tenant), as role aos_analytics, with a
    /// statement timeout, at most <paramref name="maxRows"/> rows and about <paramref name="maxBytes"/>
    /// bytes. The text is wrapped as a subquery and sent as one statement, so only a query
    /// (SELECT, VALUES, TABLE, WITH … SELECT) can run; the transaction is always rolled back.
    /// Errors of the query come back in <see cref="TenantQueryResult.Error"/>; errors of the
    /// binding (a lost lease) are thrown.
    /// </summary>
    public async Task<TenantQueryResult> QueryAsTurnTenantAsync(Guid turnId, Guid leaseToken, string sql, int maxRows, TimeSpan timeout,
        int maxBytes = 262144, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(sql);
        if (_dataSource is null)
        {
            throw new InvalidOperationException("QueryAsTurnTenantAsync needs a client over a data source: it runs its own transaction.");
        }
        maxRows = Math.Clamp(maxRows, 1, 10000);
        var timeoutMs = (int)Math.Clamp(timeout.TotalMilliseconds, 100, 600000);
        await using var conn = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        try
        {
            await using (var setup = new NpgsqlBatch(conn, tx))
            {
                setup.BatchCommands.Add(new NpgsqlBatchCommand("SET TRANSACTION READ ONLY"));
                setup.BatchCommands.Add(new NpgsqlBatchCommand("SELECT aos_agent.bind_turn_tenant($1, $2)")
                {
                    Parameters = { Uuid(turnId), Uuid(leaseToken) },
                });
                setup.BatchCommands.Add(new NpgsqlBatchCommand("SET LOCAL ROLE aos_analytics"));
                setup.BatchCommands.Add(new NpgsqlBatchCommand("SELECT set_config('statement_timeout', $1, true)")
                {
                    Parameters = { Text(timeoutMs.ToString(System.Globalization.CultureInfo.InvariantCulture)) },
                });
                await setup.ExecuteNonQueryAsync(ct);
            }
        }
        catch (PostgresException e)
        {
            throw AosException.From(e);
        }

        var rows = new JsonArray();
        var columns = new List<string>();
        var truncated = false;
        string? error = null;
        try
        {
            // One statement, no parameters, sent as a batch command: Npgsql does not split or rewrite it,
            // and the server refuses a second statement hidden in the text.
            await using var batch = new NpgsqlBatch(conn, tx) { Timeout = timeoutMs / 1000 + 5 };
            batch.BatchCommands.Add(new NpgsqlBatchCommand(
                "SELECT to_jsonb(q)::text FROM (\n" + sql + "\n) q LIMIT " + (maxRows + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)));
            await using var reader = await batch.ExecuteReaderAsync(ct);
            var bytes = 0;
            while (await reader.ReadAsync(ct))
            {
                var text = reader.GetString(0);
                bytes += Encoding.UTF8.GetByteCount(text);
                if (rows.Count >= maxRows || bytes > maxBytes)
                {
                    truncated = true;
                    break;
                }
                var row = JsonNode.Parse(text)!.AsObject();
                if (columns.Count == 0)
                {
                    columns.AddRange(row.Select(kv => kv.Key));
                }
                rows.Add(row);
            }
        }
        catch (PostgresException e)
        {
            error = $"{e.SqlState}: {e.MessageText}";
        }
        catch (NpgsqlException e) when (e.InnerException is TimeoutException)
        {
            error = "the query ran past its time limit";
        }
        finally
        {
            try
            {
                await tx.RollbackAsync(CancellationToken.None);
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
            {
                // the connection broke; it is discarded with its transaction
            }
        }
        return new TenantQueryResult { Rows = rows, Columns = columns, Truncated = truncated, Error = error };
    }

    /// <summary>
    /// Registers (or updates) a skill of the bound tenant with its implementation, and grants it to
    /// roles; tenant administrators only (row-level security checks it). One transaction.
    /// </summary>
    public async Task UpsertTenantSkillAsync(TenantSkill skill, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(skill);
        await RunAsync(async (conn, tx) =>
        {
            await using var batch = BindBatch(conn, tx);
            batch.BatchCommands.Add(new NpgsqlBatchCommand("""
                INSERT INTO aos_skills.skill (tenant_id, skill_key, name, description, category, input_schema, requires_approval,
                                              risk_level, idempotent, timeout_ms, is_active, updated_at)
                VALUES (aos_auth.current_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9, true, now())
                ON CONFLICT (tenant_id, skill_key) DO UPDATE
                   SET name = EXCLUDED.name, description = EXCLUDED.description, category = EXCLUDED.category,
                       input_schema = EXCLUDED.input_schema, requires_approval = EXCLUDED.requires_approval,
                       risk_level = EXCLUDED.risk_level, idempotent = EXCLUDED.idempotent, timeout_ms = EXCLUDED.timeout_ms,
                       is_active = true, updated_at = now()
                """)
            {
                Parameters =
                {
                    Text(skill.SkillKey), Text(skill.Name), Text(skill.Description), Text(skill.Category), Jsonb(skill.InputSchema),
                    P(skill.RequiresApproval, NpgsqlDbType.Boolean), Text(skill.RiskLevel), P(skill.Idempotent, NpgsqlDbType.Boolean),
                    P(skill.TimeoutMs, NpgsqlDbType.Integer),
                },
            });
            batch.BatchCommands.Add(new NpgsqlBatchCommand("""
                INSERT INTO aos_skills.skill_impl (tenant_id, skill_key, version, impl_type, config, enabled)
                VALUES (aos_auth.current_tenant(), $1, 1, $2, $3, true)
                ON CONFLICT (tenant_id, skill_key, version) DO UPDATE SET impl_type = EXCLUDED.impl_type, config = EXCLUDED.config, enabled = true
                """)
            {
                Parameters = { Text(skill.SkillKey), Text(skill.ImplType), Jsonb(skill.ImplConfig) },
            });
            batch.BatchCommands.Add(new NpgsqlBatchCommand("""
                INSERT INTO aos_skills.role_skill (tenant_id, role_key, skill_key, allowed)
                SELECT aos_auth.current_tenant(), r, $1, true FROM unnest($2::text[]) r
                ON CONFLICT (tenant_id, role_key, skill_key) DO NOTHING
                """)
            {
                Parameters = { Text(skill.SkillKey), P(skill.GrantRoles.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text) },
            });
            await batch.ExecuteNonQueryAsync(ct);
            return 0;
        }, ct);
    }

    /// <summary>Adds a host to the bound tenant's egress allowlist (tenant administrators).</summary>
    public async Task<Guid> AllowEgressAsync(string host, int port = 443, string? skillKey = null, bool allowSubdomains = false,
        string? note = null, CancellationToken ct = default) =>
        await ScalarAsync<Guid>("""
            INSERT INTO aos_egress.allowlist (tenant_id, host, port, skill_key, allow_subdomains, note)
            VALUES (aos_auth.current_tenant(), $1, $2, $3, $4, $5) RETURNING allowlist_id
            """, ct, Text(host), P(port, NpgsqlDbType.Integer), Text(skillKey), P(allowSubdomains, NpgsqlDbType.Boolean), Text(note));
}
