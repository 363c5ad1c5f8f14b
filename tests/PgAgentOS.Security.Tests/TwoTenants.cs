using System.Text.Json;
using Npgsql;

namespace PgAgentOS.Security.Tests;

/// <summary>What the fixture created in one tenant, through the kernel's API.</summary>
public sealed class TenantData
{
    /// <summary>A word planted in the tenant's texts (messages, prompts, tool arguments, memory...).</summary>
    public required string Marker { get; init; }
    public Guid Tenant { get; set; }
    public Guid AdminPrincipal { get; set; }
    public Guid UserPrincipal { get; set; }
    public Guid ApproverPrincipal { get; set; }
    public Guid ViewerPrincipal { get; set; }
    public string AdminKey { get; set; } = "";
    public string UserKey { get; set; } = "";
    public string ApproverKey { get; set; } = "";
    public string ViewerKey { get; set; } = "";
    public Guid Persona { get; set; }
    public Guid ManualAgent { get; set; }
    public Guid WorkerAgent { get; set; }
    /// <summary>c1: a manual turn whose tool call waits for approval.</summary>
    public Guid ConvPending { get; set; }
    public Guid TurnPending { get; set; }
    public Guid StepPending { get; set; }
    /// <summary>c2: a completed turn with an approved and executed call, a rejected call, ratings, an override.</summary>
    public Guid ConvDone { get; set; }
    public Guid TurnDone { get; set; }
    public Guid StepExecuted { get; set; }
    public Guid StepRejected { get; set; }
    public Guid Ticket { get; set; }
    /// <summary>c3: a failed turn (error step).</summary>
    public Guid ConvFailed { get; set; }
    public Guid TurnFailed { get; set; }
    /// <summary>c4: a turn a worker holds the lease of.</summary>
    public Guid ConvWorker { get; set; }
    public Guid TurnWorker { get; set; }
    public Guid LeaseToken { get; set; }
    public Guid Memory { get; set; }
    public string Checkpoint { get; set; } = "{}";

    public IReadOnlyList<Guid> Principals => [AdminPrincipal, UserPrincipal, ApproverPrincipal, ViewerPrincipal];
    public IReadOnlyList<Guid> Conversations => [ConvPending, ConvDone, ConvFailed, ConvWorker];
    public IReadOnlyList<Guid> Turns => [TurnPending, TurnDone, TurnFailed, TurnWorker];
    public IReadOnlyList<Guid> ToolSteps => [StepPending, StepExecuted, StepRejected];
    public IReadOnlyList<Guid> Agents => [ManualAgent, WorkerAgent];
}

/// <summary>
/// A kernel database with two tenants, A and B, each holding a bit of everything (principals with
/// roles and API keys, a persona, policies, an allowlist, a tenant skill, agents, conversations
/// with turns and steps in every interesting state, approvals, tool executions, memory,
/// observations, a worker's lease, a checkpoint), all made through the kernel's functions.
/// Tenant A's administrator is also mapped to a login of its own (<see cref="SecurityLogins.AdminA"/>).
/// </summary>
public partial class TwoTenants : KernelDatabase
{
    public TenantData A { get; } = new() { Marker = "SECRET-A" };
    public TenantData B { get; } = new() { Marker = "SECRET-B" };

    /// <summary>uuids that occur in B's rows and nowhere in A's or in shared tables.</summary>
    public HashSet<string> BOnlyIds { get; } = new(StringComparer.OrdinalIgnoreCase);

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await SecurityLogins.EnsureAsync(Cluster);
        await CreateTenantAsync(A, "sec_a", SecurityLogins.AdminA);
        await CreateTenantAsync(B, "sec_b", null);
        await CollectBOnlyIdsAsync();
    }

    /// <summary>An open connection as any login (the test logins share one password).</summary>
    public async Task<NpgsqlConnection> OpenAsLoginAsync(string? login)
    {
        if (login is null || login is TestCluster.App or TestCluster.Admin or TestCluster.Worker or TestCluster.Analytics or TestCluster.Nobody)
        {
            return await OpenAsync(login);
        }
        var b = new NpgsqlConnectionStringBuilder(ConnectionString(TestCluster.App)) { Username = login };
        var conn = new NpgsqlConnection(b.ConnectionString);
        await conn.OpenAsync();
        return conn;
    }

    private async Task CreateTenantAsync(TenantData t, string name, string? adminLogin)
    {
        var m = t.Marker;
        await using var admin = await OpenAsync(TestCluster.Admin);
        t.Tenant = await admin.ScalarAsync<Guid>("SELECT aos_auth.create_tenant($1, $2)", name, "Tenant " + m);
        await admin.ExecAsync("SELECT aos_auth.set_tenant($1)", t.Tenant);
        t.AdminPrincipal = await admin.ScalarAsync<Guid>(
            "SELECT aos_auth.create_principal($1, 'admin', $2, $3::name, $4, ARRAY['admin'])",
            t.Tenant, "admin_" + name, (object?)adminLogin ?? DBNull.Value, $"admin-{m}@example.com");
        t.UserPrincipal = await admin.ScalarAsync<Guid>("SELECT aos_auth.create_principal($1, 'human', $2, NULL, NULL, ARRAY['user'])", t.Tenant, "user_" + name);
        t.ApproverPrincipal = await admin.ScalarAsync<Guid>("SELECT aos_auth.create_principal($1, 'human', $2, NULL, NULL, ARRAY['approver'])", t.Tenant, "approver_" + name);
        t.ViewerPrincipal = await admin.ScalarAsync<Guid>("SELECT aos_auth.create_principal($1, 'human', $2, NULL, NULL, ARRAY['viewer', 'auditor'])", t.Tenant, "viewer_" + name);
        t.AdminKey = await admin.ScalarAsync<string>("SELECT aos_auth.create_api_key($1, 'admin key')", t.AdminPrincipal);
        t.UserKey = await admin.ScalarAsync<string>("SELECT aos_auth.create_api_key($1, 'user key')", t.UserPrincipal);
        t.ApproverKey = await admin.ScalarAsync<string>("SELECT aos_auth.create_api_key($1, 'approver key')", t.ApproverPrincipal);
        t.ViewerKey = await admin.ScalarAsync<string>("SELECT aos_auth.create_api_key($1, 'viewer key')", t.ViewerPrincipal);

        t.Persona = await admin.ScalarAsync<Guid>(
            "SELECT aos_persona.create_persona($1, $2, jsonb_build_object('marker', $3::text))", "persona_" + name, $"You are the {m} persona.", m);
        await admin.ExecAsync("""
            INSERT INTO aos_policy.policy_rule (tenant_id, name, skill_key, action, priority, args_match)
            VALUES ($1, $2, 'http_fetch', 'deny', 10, jsonb_build_object('url', $3::text))
            """, t.Tenant, "deny_" + m, "https://" + m.ToLowerInvariant() + ".example.com/");
        await admin.ExecAsync("INSERT INTO aos_egress.allowlist (tenant_id, host, note) VALUES ($1, $2, $3)",
            t.Tenant, m.ToLowerInvariant() + ".example.com", "allowed for " + m);
        await admin.ExecAsync("INSERT INTO aos_skills.skill (tenant_id, skill_key, name, description) VALUES ($1, 'tool_' || $2, 'Tool ' || $3, 'The tool of ' || $3)",
            t.Tenant, name, m);
        await admin.ExecAsync("INSERT INTO aos_skills.skill_impl (tenant_id, skill_key, impl_type, config) VALUES ($1, 'tool_' || $2, 'builtin', jsonb_build_object('m', $3::text))",
            t.Tenant, name, m);
        await admin.ExecAsync("INSERT INTO aos_skills.role_skill (tenant_id, role_key, skill_key) VALUES ($1, 'agent', 'tool_' || $2)", t.Tenant, name);

        t.ManualAgent = await admin.ScalarAsync<Guid>("""
            SELECT aos_agent.create_agent($1, $2, $3, ARRAY['web_search', 'code_execute', 'clock', 'tool_' || $5], '{"dispatch": "manual"}', NULL, $4)
            """, t.Tenant, "manual_" + name, t.Persona, "The manual agent of " + m, name);
        t.WorkerAgent = await admin.ScalarAsync<Guid>(
            "SELECT aos_agent.create_agent($1, $2, $3, ARRAY['code_execute', 'clock'], '{}', NULL, $4)",
            t.Tenant, "worker_" + name, t.Persona, "The worker agent of " + m);
        t.Memory = await admin.ScalarAsync<Guid>("SELECT aos_agent.remember($1, 'fact', to_jsonb($2::text))", t.ManualAgent, m + " remembers");

        // c1: a tool call waiting for approval
        t.ConvPending = await admin.ScalarAsync<Guid>(
            "SELECT aos_agent.start_conversation($1, $2, jsonb_build_object('m', $3::text), $3 || ' pending')", t.ManualAgent, t.UserPrincipal, m);
        t.TurnPending = await admin.ScalarAsync<Guid>("SELECT aos_agent.send_message($1, $2)", t.ConvPending, m + " first question");
        await admin.ExecAsync("SELECT aos_agent.run_turn($1)", t.TurnPending);
        await admin.ExecAsync("SELECT aos_agent.record_thinking($1, $2)", t.TurnPending, m + " is thinking");
        t.StepPending = Guid.Parse(await admin.ScalarAsync<string>(
            "SELECT aos_agent.process_tool_call($1, 'code_execute', jsonb_build_object('code', $2::text)) ->> 'step_id'", t.TurnPending, m + " code"));

        // c2: an approved and executed call, a rejected call, an answer, then people's notes
        t.ConvDone = await admin.ScalarAsync<Guid>("SELECT aos_agent.start_conversation($1, NULL, '{}', $2)", t.ManualAgent, m + " done");
        t.TurnDone = await admin.ScalarAsync<Guid>("SELECT aos_agent.send_message($1, $2)", t.ConvDone, m + " second question");
        await admin.ExecAsync("SELECT aos_agent.run_turn($1)", t.TurnDone);
        t.StepExecuted = Guid.Parse(await admin.ScalarAsync<string>(
            "SELECT aos_agent.process_tool_call($1, 'web_search', jsonb_build_object('query', $2::text)) ->> 'step_id'", t.TurnDone, m + " search"));
        await admin.ExecAsync("SELECT aos_agent.approve_step($1, true, $2, $3)", t.StepExecuted, t.ApproverPrincipal, "fine " + m);
        t.Ticket = await admin.ScalarAsync<Guid>("SELECT aos_agent.begin_tool_execution($1, NULL, $2, 'web_search', jsonb_build_object('query', $3::text))",
            t.TurnDone, t.StepExecuted, m + " search");
        await admin.ExecAsync("SELECT aos_agent.record_tool_result($1, 'web_search', jsonb_build_object('hits', $2::text), true, NULL, NULL, $3)",
            t.TurnDone, m + " result", t.Ticket);
        t.StepRejected = Guid.Parse(await admin.ScalarAsync<string>(
            "SELECT aos_agent.process_tool_call($1, 'code_execute', jsonb_build_object('code', $2::text)) ->> 'step_id'", t.TurnDone, m + " bad code"));
        await admin.ExecAsync("SELECT aos_agent.approve_step($1, false, $2, $3)", t.StepRejected, t.ApproverPrincipal, "no " + m);
        await admin.ExecAsync("SELECT aos_agent.complete_turn($1, $2, 42)", t.TurnDone, m + " answer");
        await admin.ExecAsync("SELECT aos_agent.rate_turn($1, $2, 4, jsonb_build_object('m', $3::text))", t.TurnDone, t.ApproverPrincipal, m);
        await admin.ExecAsync("SELECT aos_agent.flag_issue($1, 'low', $2, NULL, $3)", t.ApproverPrincipal, m + " flag", t.TurnDone);
        await admin.ExecAsync("SELECT aos_agent.add_observation($1, 'note', jsonb_build_object('note', $2::text), $3)", t.AdminPrincipal, m + " note", t.ConvDone);
        await admin.ExecAsync("SELECT aos_agent.override_response($1, $2, $3, $4)", t.TurnDone, m + " corrected", t.AdminPrincipal, m + " reason");
        await admin.ExecAsync("SELECT aos_agent.inject_message($1, $2, $3)", t.ConvDone, m + " injected", t.AdminPrincipal);

        // c3: a failed turn
        t.ConvFailed = await admin.ScalarAsync<Guid>("SELECT aos_agent.start_conversation($1)", t.ManualAgent);
        t.TurnFailed = await admin.ScalarAsync<Guid>("SELECT aos_agent.send_message($1, $2)", t.ConvFailed, m + " third question");
        await admin.ExecAsync("SELECT aos_agent.run_turn($1)", t.TurnFailed);
        await admin.ExecAsync("SELECT aos_agent.fail_turn($1, $2, NULL, jsonb_build_object('m', $3::text))", t.TurnFailed, m + " broke", m);

        // c4: a worker holds the lease (for an hour)
        t.ConvWorker = await admin.ScalarAsync<Guid>("SELECT aos_agent.start_conversation($1)", t.WorkerAgent);
        t.TurnWorker = await admin.ScalarAsync<Guid>("SELECT aos_agent.send_message($1, $2)", t.ConvWorker, m + " worker question");
        await using (var worker = await OpenAsync(TestCluster.Worker))
        {
            var claim = await worker.ScalarAsync<string>("SELECT aos_agent.claim_turn($1, 3600, $2)::text", "worker-" + name, t.Tenant);
            using var doc = JsonDocument.Parse(claim);
            Assert.Equal(t.TurnWorker, doc.RootElement.GetProperty("turn_id").GetGuid());
            t.LeaseToken = doc.RootElement.GetProperty("lease_token").GetGuid();
            await worker.ExecAsync("SELECT aos_agent.record_response($1, $2, jsonb_build_object('thinking', $3::text))",
                t.TurnWorker, t.LeaseToken, m + " worker thinks");
        }

        // No API writes the egress log yet (the worker's egress proxy will): written as superuser.
        await using (var su = await OpenAsync(null))
        {
            await su.ExecAsync("""
                INSERT INTO aos_egress.request (tenant_id, turn_id, step_id, skill_key, method, url, host, resolved_ip, decision, reason)
                VALUES ($1, $2, $3, 'web_search', 'GET', $4, $5, '192.0.2.1', 'allow', $6)
                """, t.Tenant, t.TurnDone, t.StepExecuted, "https://" + m.ToLowerInvariant() + ".example.com/x",
                m.ToLowerInvariant() + ".example.com", m + " allowed");
        }
        t.Checkpoint = await admin.ScalarAsync<string>("SELECT aos_core.create_checkpoint()::text");
    }

    private async Task CollectBOnlyIdsAsync()
    {
        await using var su = await OpenAsync(null);
        var ids = await su.ColumnAsync("""
            WITH cols AS (
                SELECT c.oid::regclass AS rel, a.attname
                  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                 WHERE n.nspname LIKE 'aos\_%' AND c.relkind IN ('r', 'p') AND a.atttypid = 'uuid'::regtype
                   AND EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attname = 'tenant_id' AND NOT t.attisdropped))
            SELECT string_agg(format('SELECT %I::text AS id, tenant_id FROM %s', attname, rel), ' UNION ALL ') FROM cols
            """);
        var rows = await su.RowsAsync($"SELECT id, tenant_id FROM ({ids[0]}) x WHERE id IS NOT NULL");
        var byTenant = rows.GroupBy(r => (string)r["id"]!).ToDictionary(g => g.Key, g => g.Select(r => (Guid)r["tenant_id"]!).ToHashSet());
        var shared = (await su.ColumnAsync("SELECT model_id::text FROM aos_meta.llm_model_registry")).ToHashSet();
        foreach (var (id, tenants) in byTenant)
        {
            if (tenants.SetEquals([B.Tenant]) && !shared.Contains(id))
            {
                BOnlyIds.Add(id);
            }
        }
    }

    /// <summary>What of B a text reveals: B-only uuids (other than those in <paramref name="allowed"/>) and B's marker.</summary>
    public List<string> BLeaks(string? text, IEnumerable<string>? allowed = null)
    {
        var found = new List<string>();
        if (string.IsNullOrEmpty(text))
        {
            return found;
        }
        var allow = new HashSet<string>(allowed ?? [], StringComparer.OrdinalIgnoreCase);
        if (text.Contains(B.Marker, StringComparison.OrdinalIgnoreCase) || text.Contains("secret_b", StringComparison.OrdinalIgnoreCase)
            || text.Contains("sec_b", StringComparison.OrdinalIgnoreCase))
        {
            found.Add(B.Marker);
        }
        foreach (System.Text.RegularExpressions.Match mt in UuidPattern().Matches(text))
        {
            if (BOnlyIds.Contains(mt.Value) && !allow.Contains(mt.Value))
            {
                found.Add(mt.Value);
            }
        }
        return found;
    }

    /// <summary>A digest of everything tenant B owns (rows of every tenant table and B's tenant row), read as superuser.</summary>
    public async Task<string> BFingerprintAsync()
    {
        await using var su = await OpenAsync(null);
        return await su.ScalarAsync<string>(FingerprintSql, B.Tenant);
    }

    /// <summary>SQL ($1 = tenant) giving a digest of a tenant's rows in every table that has a tenant_id.</summary>
    public const string FingerprintSql = """
        SELECT md5(string_agg(part, '|' ORDER BY part)) FROM (
            SELECT x.rel || ':' || x.digest AS part
              FROM (SELECT c.oid::regclass::text AS rel,
                           (xpath('/table/row/d/text()', query_to_xml(format(
                               'SELECT count(*) || '':'' || coalesce(md5(string_agg(t::text, '','' ORDER BY t::text)), '''') AS d FROM %s t WHERE tenant_id = %L',
                               c.oid::regclass, $1), false, false, '')))[1]::text AS digest
                      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname LIKE 'aos\_%' AND c.relkind IN ('r', 'p')
                       AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)) x
        ) s
        """;

    [System.Text.RegularExpressions.GeneratedRegex("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")]
    public static partial System.Text.RegularExpressions.Regex UuidPattern();
}

/// <summary>Logins the security tests add to the test cluster (same password as the standard ones).</summary>
public static class SecurityLogins
{
    /// <summary>A login of role aos_app mapped to tenant A's admin principal (in each test database).</summary>
    public const string AdminA = "t_sec_admin_a";

    /// <summary>A login in PostgreSQL's pg_read_all_data (reads every table, but row-level security still applies).</summary>
    public const string ReadAll = "t_sec_read_all";

    private static readonly SemaphoreSlim Lock = new(1, 1);
    private static bool _done;

    public static async Task EnsureAsync(TestCluster tc)
    {
        await Lock.WaitAsync();
        try
        {
            if (_done)
            {
                return;
            }
            await tc.ExecSuperAsync("postgres", $"""
                DO $$ BEGIN
                    CREATE ROLE {AdminA} LOGIN PASSWORD '{tc.LoginPassword}' IN ROLE aos_app;
                EXCEPTION WHEN duplicate_object THEN NULL;
                END $$;
                DO $$ BEGIN
                    CREATE ROLE {ReadAll} LOGIN PASSWORD '{tc.LoginPassword}' IN ROLE pg_read_all_data;
                EXCEPTION WHEN duplicate_object THEN NULL;
                END $$
                """);
            _done = true;
        }
        finally
        {
            Lock.Release();
        }
    }
}
