using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Npgsql;

namespace PgAgentOS.Security.Tests;

/// <summary>
/// T7 (leaky functions and side channels) and T9 as plan checks: the tenant context is computed
/// once per statement (an InitPlan), never per row, and parallel plans keep working under RLS.
/// No timing is asserted (timing belongs to bench/).
/// </summary>
public sealed partial class LeakAndPlanTests(TwoTenants db) : IClassFixture<TwoTenants>
{
    [Theory]
    [InlineData("aos_agent.step", "content::text")]
    [InlineData("aos_agent.turn", "user_message")]
    [InlineData("aos_agent.agent", "name || ' ' || coalesce(description, '')")]
    [InlineData("aos_agent.memory", "value::text")]
    [InlineData("aos_core.event_log", "payload::text")]
    [InlineData("aos_agent.realtime_steps", "coalesce(summary, '')")]
    public async Task ACheapLeakyFunctionInTheWhereClauseSeesOnlyTheBoundTenant(string relation, string column)
    {
        await using var conn = await Personas.AppA.OpenAsync(db);
        var notices = new List<string>();
        conn.Notice += (_, e) => notices.Add(e.Notice.MessageText);
        // What an attacker writes: a function the planner believes is nearly free, so that it
        // would like to run it before the policy's condition, and that prints what it sees.
        await conn.ExecAsync("""
            CREATE FUNCTION pg_temp.f_leak(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS
            $$ BEGIN RAISE NOTICE 'f_leak: %', $1; RETURN true; END $$
            """);
        await conn.ExecAsync("SET enable_indexscan = off; SET enable_bitmapscan = off");
        await conn.ExecAsync($"SELECT count(*) FROM {relation} WHERE pg_temp.f_leak({column})");
        Assert.NotEmpty(notices);
        Assert.Contains(notices, n => n.Contains(db.A.Marker, StringComparison.Ordinal) || TwoTenants.UuidPattern().IsMatch(n));
        var leaked = notices.Where(n => db.BLeaks(n).Count > 0).ToList();
        Assert.True(leaked.Count == 0, "the leaky function saw tenant B's values:\n" + string.Join("\n", leaked));
    }

    [Fact]
    public async Task AUniquenessProbeNeedsTheSecretItWouldReveal()
    {
        // Keys that are unique across tenants are surrogate uuids: a probe has to know B's id to
        // learn that it exists. Names are unique per tenant only, so B's names reveal nothing.
        await using var conn = await Personas.AdminAKey.OpenAsync(db);
        await conn.ExecAsync("SELECT aos_persona.create_persona('persona_sec_b', 'same name as B''s persona')");
        await conn.ExecAsync("INSERT INTO aos_egress.allowlist (tenant_id, host) VALUES ($1, 'secret-b.example.com')", db.A.Tenant);
        await using var su = await db.OpenAsync(null);
        var globallyUnique = await su.ColumnAsync("""
            SELECT i.indexrelid::regclass || ' (' || string_agg(a.attname || ':' || format_type(a.atttypid, NULL), ', ') || ')'
              FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey)
             WHERE n.nspname LIKE 'aos\_%' AND i.indisunique AND c.relname <> 'tenant'
               AND EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attname = 'tenant_id')
               AND NOT EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attname = 'tenant_id' AND t.attnum = ANY (i.indkey))
             GROUP BY i.indexrelid
            """);
        // Every such key is a uuid the kernel generates, or a random token / key prefix, or a login name
        // only platform administrators map.
        var allowed = new Regex(@"\((\w+:uuid|key_prefix:text|db_role_name:name|lease_token:uuid)\)$");
        Assert.All(globallyUnique, k => Assert.Matches(allowed, k));
    }

    [Fact]
    public async Task TheTenantContextIsAnInitPlanNeverAPerRowCall()
    {
        await using var su = await db.OpenAsync(null);
        var relations = (await TenantMatrixTests.TenantTablesAsync(su)).Select(t => (Rel: t, Cols: "tenant_id"))
            .Concat((await TenantMatrixTests.ViewsAsync(su)).Select(v => (Rel: v, Cols: "*"))).ToList();
        await using var conn = await Personas.AdminAKey.OpenAsync(db);
        var problems = new List<string>();
        foreach (var (rel, cols) in relations)
        {
            var plan = await conn.ScalarAsync<string>($"EXPLAIN (VERBOSE, FORMAT JSON) SELECT {cols} FROM {rel}");
            var root = JsonNode.Parse(plan)![0]!["Plan"]!;
            var initPlans = 0;
            Walk(root, false, rel, problems, ref initPlans);
            if (initPlans == 0)
            {
                problems.Add($"{rel}: no InitPlan (the tenant context is not computed once per statement)");
            }
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    private static void Walk(JsonNode node, bool inInitPlan, string rel, List<string> problems, ref int initPlans)
    {
        if ((string?)node["Parent Relationship"] == "InitPlan")
        {
            inInitPlan = true;
            initPlans++;
        }
        if (!inInitPlan)
        {
            foreach (var key in new[] { "Filter", "Index Cond", "Recheck Cond", "Join Filter", "Hash Cond", "Merge Cond", "One-Time Filter", "TID Cond" })
            {
                if (node[key] is JsonValue v && ContextCall().IsMatch((string)v!))
                {
                    problems.Add($"{rel}: {node["Node Type"]} evaluates the context per row: {key} {(string)v!}");
                }
            }
        }
        if (node["Plans"] is JsonArray children)
        {
            foreach (var child in children)
            {
                Walk(child!, inInitPlan, rel, problems, ref initPlans);
            }
        }
    }

    [Fact]
    public async Task RowLevelSecurityWorksInParallelPlans()
    {
        // The binding is checked against the backend; a parallel worker is another backend. The
        // context function must stay in the leader (PARALLEL RESTRICTED), and must not open a
        // subtransaction, which parallel workers refuse.
        await using var conn = await Personas.AdminAKey.OpenAsync(db);
        var serial = await conn.ScalarAsync<long>("SELECT count(*) FROM aos_agent.step");
        var byContext = await conn.ScalarAsync<long>("SELECT count(*) FROM aos_agent.step WHERE tenant_id = aos_auth.current_tenant()");
        await conn.ExecAsync("""
            SET force_parallel_mode = on; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
            SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2
            """);
        var plan = string.Join("\n", await conn.ColumnAsync("EXPLAIN SELECT count(*) FROM aos_agent.step"));
        Assert.Contains("Gather", plan, StringComparison.Ordinal);
        Assert.Equal(serial, await conn.ScalarAsync<long>("SELECT count(*) FROM aos_agent.step"));
        Assert.Equal(byContext, await conn.ScalarAsync<long>("SELECT count(*) FROM aos_agent.step WHERE tenant_id = aos_auth.current_tenant()"));
        Assert.True(serial > 0);
        Assert.Equal(0L, await conn.ScalarAsync<long>("SELECT count(*) FROM aos_agent.step WHERE tenant_id = $1", db.B.Tenant));
    }

    [GeneratedRegex(@"aos_auth\.(current_tenant|current_principal|kernel_scope|is_platform_admin|_is_tenant_admin|_session_tenant|_session_principal)\(")]
    private static partial Regex ContextCall();
}
