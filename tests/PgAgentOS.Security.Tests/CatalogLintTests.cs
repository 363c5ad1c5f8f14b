using System.Text.RegularExpressions;
using Npgsql;

namespace PgAgentOS.Security.Tests;

/// <summary>
/// T6, T8 and the static half of T9: the catalog says what the kernel promises. Every rule reads
/// pg_catalog, so an object added later is checked without anyone listing it here.
/// </summary>
public sealed partial class CatalogLintTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    /// <summary>The roles clients connect through (their members are the logins).</summary>
    private static readonly string[] ClientRoles = ["aos_app", "aos_worker", "aos_admin", "aos_analytics"];

    /// <summary>Tables without a tenant_id: shared by all tenants (read-only for clients) or kernel-private.</summary>
    private static readonly HashSet<string> SharedTables = ["aos_meta.installed_version", "aos_meta.llm_model_registry", "aos_auth.kernel_secret"];

    /// <summary>When set, the rules read this connection (inside the mutation test's transaction).</summary>
    private NpgsqlConnection? _conn;

    private async Task<List<string>> ViolationsAsync(string sql, params object?[] args)
    {
        if (_conn is not null)
        {
            return await _conn.ColumnAsync(sql, args);
        }
        await using var su = await db.OpenAsync(null);
        return await su.ColumnAsync(sql, args);
    }

    private static void None(List<string> violations, string rule) =>
        Assert.True(violations.Count == 0, rule + ":\n  " + string.Join("\n  ", violations));

    [Fact]
    public async Task EveryTenantTableHasRowLevelSecurityEnabledForcedAndAPolicy()
    {
        None(await ViolationsAsync("""
            SELECT c.oid::regclass || CASE WHEN NOT c.relrowsecurity THEN ' (RLS not enabled)'
                                           WHEN NOT c.relforcerowsecurity THEN ' (RLS not forced)'
                                           ELSE ' (no policy)' END
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname LIKE 'aos\_%' AND c.relkind IN ('r', 'p')
               AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
               AND (NOT c.relrowsecurity OR NOT c.relforcerowsecurity OR NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid))
             ORDER BY 1
            """), "tenant tables without enabled and FORCED row-level security and a policy");
    }

    [Fact]
    public async Task TablesWithoutATenantAreKnownAndClientsCannotWriteThem()
    {
        var tables = await ViolationsAsync("""
            SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname LIKE 'aos\_%' AND c.relkind IN ('r', 'p')
               AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
             ORDER BY 1
            """);
        None(tables.Where(t => !SharedTables.Contains(t)).Select(t => t + " has no tenant_id: give it one (and RLS), or list it as shared here with a reason").ToList(),
            "tables outside every tenant");
        None(await ViolationsAsync("""
            SELECT r || ' may ' || priv || ' ' || t FROM unnest($1::text[]) t, unnest($2::text[]) r, unnest(ARRAY['INSERT', 'UPDATE', 'DELETE']) priv
             WHERE has_table_privilege(r, t, priv) AND NOT (t = 'aos_meta.llm_model_registry' AND r = 'aos_admin')
            """, SharedTables.ToArray(), new[] { "aos_app", "aos_worker", "aos_analytics", "aos_admin" }),
            "shared tables writable by clients (only platform administrators maintain the model registry)");
    }

    [Fact]
    public async Task TheKernelSecretIsReadableByTheOwnerOnly()
    {
        None(await ViolationsAsync("""
            SELECT r.rolname || ' may read aos_auth.kernel_secret' FROM pg_roles r
             WHERE NOT r.rolsuper AND r.rolname <> 'aos_owner'
               -- pg_read_all_data and pg_write_all_data (and their members) are fenced by the policy checked below
               AND NOT pg_has_role(r.oid, 'pg_read_all_data', 'MEMBER') AND NOT pg_has_role(r.oid, 'pg_write_all_data', 'MEMBER')
               AND (has_table_privilege(r.oid, 'aos_auth.kernel_secret', 'SELECT') OR has_any_column_privilege(r.oid, 'aos_auth.kernel_secret', 'SELECT'))
            UNION ALL
            -- pg_read_all_data reads every table it is not fenced from: row-level security fences the secret
            SELECT 'aos_auth.kernel_secret is not fenced by a forced owner-only policy'
             WHERE NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid
                                WHERE c.oid = 'aos_auth.kernel_secret'::regclass AND c.relrowsecurity AND c.relforcerowsecurity
                                  AND pg_get_expr(p.polqual, p.polrelid) = '(CURRENT_USER = ''aos_owner''::name)')
               OR (SELECT count(*) FROM pg_policy WHERE polrelid = 'aos_auth.kernel_secret'::regclass) <> 1
            """), "the kernel secret is readable by aos_owner only");
    }

    [Fact]
    public async Task NoPolicyLetsEverythingThroughOrTestsTheContextForNull()
    {
        var policies = await ViolationsAsync("""
            SELECT pol.polrelid::regclass || '.' || pol.polname || ' USING ' || coalesce(pg_get_expr(pol.polqual, pol.polrelid), '-')
                   || ' CHECK ' || coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), '-')
              FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname LIKE 'aos\_%'
            """);
        Assert.NotEmpty(policies);
        None(policies.Where(p => TrueExpr().IsMatch(p) || NullTest().IsMatch(p)).ToList(),
            "policies that are USING (true) or test for NULL (a missing binding must fail closed, never open)");
        None(await ViolationsAsync("""
            SELECT pol.polrelid::regclass || '.' || pol.polname || ' applies to ' || pol.polroles::regrole[]::text
              FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname LIKE 'aos\_%' AND pol.polroles <> '{0}'
            """), "policies limited to some roles (every role, owner included, must meet the same policy)");
    }

    [Fact]
    public async Task PoliciesCallFunctionsOncePerStatement()
    {
        var own = _conn is null ? await db.OpenAsync(null) : null;
        var su = _conn ?? own!;
        await using var _ = own;
        var rows = await su.RowsAsync("""
            SELECT pol.polrelid::regclass || '.' || pol.polname AS name, pol.polqual::text AS qual, pol.polwithcheck::text AS chk
              FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname LIKE 'aos\_%'
            """);
        var volatility = (await su.RowsAsync("SELECT oid::bigint AS oid, oid::regproc::text AS name, provolatile::text AS v FROM pg_proc"))
            .ToDictionary(r => (long)r["oid"]!, r => ((string)r["name"]!, (string)r["v"]!));
        var violations = new List<string>();
        var checkedCalls = 0;
        foreach (var r in rows)
        {
            foreach (var tree in new[] { r["qual"] as string, r["chk"] as string })
            {
                foreach (var (funcId, inSubquery) in FunctionCalls(tree))
                {
                    checkedCalls++;
                    var (fname, v) = volatility[funcId];
                    if (!inSubquery && v != "i")
                    {
                        violations.Add($"{r["name"]}: calls {fname} per row; wrap it as (SELECT {fname}(...))");
                    }
                }
            }
        }
        Assert.True(checkedCalls > 20, "the policy parser found too few function calls to be trusted");
        None(violations, "policies calling non-immutable functions per row");
    }

    [Fact]
    public async Task EveryViewIsSecurityInvoker()
    {
        None(await ViolationsAsync("""
            SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname LIKE 'aos\_%' AND c.relkind IN ('v', 'm')
               AND NOT coalesce(c.reloptions && ARRAY['security_invoker=true', 'security_invoker=on', 'security_invoker=1', 'security_invoker=yes'], false)
            """), "views without security_invoker = true (they would read as their owner, past row-level security)");
        None(await ViolationsAsync("""
            SELECT r || ' may ' || priv || ' ' || c.oid::regclass
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, unnest($1::text[]) r, unnest(ARRAY['INSERT', 'UPDATE', 'DELETE']) priv
             WHERE n.nspname LIKE 'aos\_%' AND c.relkind IN ('v', 'm') AND has_table_privilege(r, c.oid, priv)
            """, (object)ClientRoles), "views that clients may write through");
    }

    [Fact]
    public async Task SecurityDefinerFunctionsPinTheirSettingsSayWhyAndAreNotPublic()
    {
        var definers = await ViolationsAsync("""
            SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname LIKE 'aos\_%' AND p.prosecdef
            """);
        Assert.True(definers.Count > 10, "expected the kernel's SECURITY DEFINER functions");
        None(await ViolationsAsync("""
            SELECT p.oid::regprocedure || ': ' || concat_ws(', ',
                       CASE WHEN NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false) THEN 'search_path is not fixed to pg_catalog, pg_temp' END,
                       CASE WHEN NOT coalesce(p.proconfig @> ARRAY['aos.kernel_tenant='], false) THEN 'no SET aos.kernel_tenant = ''''' END,
                       CASE WHEN NOT coalesce(p.proconfig && ARRAY['aos.kernel_scope=', 'aos.kernel_scope=all'], false) THEN 'no SET aos.kernel_scope' END,
                       CASE WHEN coalesce(obj_description(p.oid, 'pg_proc'), '') !~ 'Definer rights: \S.{10,}' THEN 'its COMMENT does not say why (Definer rights: ...)' END,
                       CASE WHEN p.proacl IS NULL OR p.proacl::text ~ '(^|[{,])=[^,}]*X' THEN 'executable by PUBLIC' END)
              FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname LIKE 'aos\_%' AND p.prosecdef
               AND (NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp', 'aos.kernel_tenant='], false)
                    OR NOT coalesce(p.proconfig && ARRAY['aos.kernel_scope=', 'aos.kernel_scope=all'], false)
                    OR coalesce(obj_description(p.oid, 'pg_proc'), '') !~ 'Definer rights: \S.{10,}'
                    OR p.proacl IS NULL OR p.proacl::text ~ '(^|[{,])=[^,}]*X')
             ORDER BY 1
            """), "SECURITY DEFINER functions");
        None(await ViolationsAsync("""
            SELECT p.oid::regprocedure || ' says "Definer rights" but runs with invoker rights'
              FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname LIKE 'aos\_%' AND NOT p.prosecdef AND obj_description(p.oid, 'pg_proc') ~ 'Definer rights:'
            """), "comments that lie about rights");
    }

    [Fact]
    public async Task NoFunctionIsExecutableByPublicOrLeakproofAndAllFixTheirSearchPath()
    {
        // search_path must be fixed where a caller's search_path could change a decision made for
        // someone else: SECURITY DEFINER functions, trigger functions, and functions that policies
        // call. Other functions run with the caller's own rights (or inside a definer function,
        // which pins the path), so they may omit it and be inlined. The few policy functions written
        // to be inlined (no SET clause) must name everything schema-qualified: checked below.
        None(await ViolationsAsync("""
            WITH fn AS (
                SELECT p.*, n.nspname,
                       coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false) AS path_fixed,
                       EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_policy'::regclass AND d.refclassid = 'pg_proc'::regclass
                                                          AND d.refobjid = p.oid) AS in_policy,
                       p.oid::regprocedure::text IN ('aos_auth.current_tenant()', 'aos_auth.current_principal()', 'aos_auth.kernel_scope()',
                                                     'aos_auth.is_platform_admin()', 'aos_skills.shared_tenant()') AS written_to_inline
                  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                 WHERE n.nspname LIKE 'aos\_%')
            SELECT fn.oid::regprocedure || ': ' || concat_ws(', ',
                       CASE WHEN fn.proacl IS NULL OR fn.proacl::text ~ '(^|[{,])=[^,}]*X' THEN 'executable by PUBLIC' END,
                       CASE WHEN fn.proleakproof THEN 'LEAKPROOF' END,
                       CASE WHEN NOT fn.path_fixed AND (fn.prosecdef OR fn.prorettype = 'trigger'::regtype OR (fn.in_policy AND NOT fn.written_to_inline))
                            THEN 'search_path not fixed' END,
                       CASE WHEN fn.written_to_inline AND (replace(replace(fn.prosrc, 'OPERATOR(pg_catalog.=)', ''), 'OPERATOR(pg_catalog.<>)', '') ~ '[=<>]'
                                                           OR fn.prosrc ~ '::(?!pg_catalog\.)')
                            THEN 'written to be inlined, but not every operator or type is schema-qualified' END)
              FROM fn
             WHERE fn.proacl IS NULL OR fn.proacl::text ~ '(^|[{,])=[^,}]*X' OR fn.proleakproof
                OR (NOT fn.path_fixed AND (fn.prosecdef OR fn.prorettype = 'trigger'::regtype OR (fn.in_policy AND NOT fn.written_to_inline)))
                OR (fn.written_to_inline AND (replace(replace(fn.prosrc, 'OPERATOR(pg_catalog.=)', ''), 'OPERATOR(pg_catalog.<>)', '') ~ '[=<>]'
                                              OR fn.prosrc ~ '::(?!pg_catalog\.)'))
             ORDER BY 1
            """), "functions");
    }

    [Fact]
    public async Task EveryKernelObjectIsOwnedByAosOwner()
    {
        None(await ViolationsAsync("""
            SELECT kind || ' ' || name || ' is owned by ' || owner FROM (
                SELECT 'schema' AS kind, n.nspname::text AS name, pg_get_userbyid(n.nspowner)::text AS owner FROM pg_namespace n WHERE n.nspname LIKE 'aos\_%'
                UNION ALL
                SELECT 'relation', c.oid::regclass::text, pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE 'aos\_%'
                UNION ALL
                SELECT 'function', p.oid::regprocedure::text, pg_get_userbyid(p.proowner) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname LIKE 'aos\_%'
                UNION ALL
                SELECT 'type', t.oid::regtype::text, pg_get_userbyid(t.typowner) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname LIKE 'aos\_%'
            ) o WHERE owner <> 'aos_owner' ORDER BY 1
            """), "kernel objects not owned by aos_owner");
    }

    [Fact]
    public async Task TheOwnerCannotLogInAndNobodyActsAsIt()
    {
        None(await ViolationsAsync("""
            SELECT 'aos_owner: ' || concat_ws(', ', CASE WHEN rolcanlogin THEN 'LOGIN' END, CASE WHEN rolsuper THEN 'SUPERUSER' END,
                                              CASE WHEN rolbypassrls THEN 'BYPASSRLS' END)
              FROM pg_roles WHERE rolname = 'aos_owner' AND (rolcanlogin OR rolsuper OR rolbypassrls)
            UNION ALL
            SELECT 'aos_owner is missing' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aos_owner')
            UNION ALL
            SELECT m.rolname || ' is a member of aos_owner (it could SET ROLE to the owner of everything)'
              FROM pg_auth_members am JOIN pg_roles m ON m.oid = am.member
             WHERE am.roleid = 'aos_owner'::regrole
            """), "the owner role");
    }

    [Fact]
    public async Task ClientRolesAndTheirLoginsAreNotSuperuserBypassRlsOrOwners()
    {
        None(await ViolationsAsync("""
            WITH RECURSIVE clients(oid) AS (
                SELECT oid FROM pg_roles WHERE rolname = ANY ($1::text[])
                UNION
                SELECT am.member FROM pg_auth_members am JOIN clients c ON am.roleid = c.oid
            )
            SELECT r.rolname || ': ' || concat_ws(', ', CASE WHEN r.rolsuper THEN 'SUPERUSER' END, CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END,
                                                  CASE WHEN pg_has_role(r.oid, 'aos_owner', 'MEMBER') THEN 'member of aos_owner' END,
                                                  CASE WHEN o.n > 0 THEN 'owns ' || o.n || ' kernel objects' END)
              FROM clients c JOIN pg_roles r ON r.oid = c.oid
              CROSS JOIN LATERAL (
                  SELECT (SELECT count(*) FROM pg_class x JOIN pg_namespace n ON n.oid = x.relnamespace WHERE n.nspname LIKE 'aos\_%' AND x.relowner = r.oid)
                       + (SELECT count(*) FROM pg_proc x JOIN pg_namespace n ON n.oid = x.pronamespace WHERE n.nspname LIKE 'aos\_%' AND x.proowner = r.oid)
                       + (SELECT count(*) FROM pg_namespace n WHERE n.nspname LIKE 'aos\_%' AND n.nspowner = r.oid) AS n) o
             WHERE r.rolsuper OR r.rolbypassrls OR pg_has_role(r.oid, 'aos_owner', 'MEMBER') OR o.n > 0
            """, (object)ClientRoles), "client roles (and every login in them)");
        Assert.Equal(ClientRoles.Length, (await ViolationsAsync("SELECT rolname FROM pg_roles WHERE rolname = ANY ($1::text[])", (object)ClientRoles)).Count);
    }

    [Fact]
    public async Task ClientsHoldNoPrivilegeThatReachesPastRowLevelSecurity()
    {
        // TRIGGER would let a client run its own code inside kernel functions (as aos_owner);
        // TRUNCATE skips row-level security and row triggers; REFERENCES and CREATE change the schema.
        None(await ViolationsAsync("""
            SELECT coalesce(r, 'PUBLIC') || ' has ' || priv || ' on ' || c.oid::regclass
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
                   unnest($1::text[] || ARRAY['public']) r, unnest(ARRAY['TRUNCATE', 'TRIGGER', 'REFERENCES']) priv
             WHERE n.nspname LIKE 'aos\_%' AND c.relkind IN ('r', 'p', 'v', 'm')
               AND has_table_privilege(r, c.oid, priv)
            UNION ALL
            SELECT coalesce(r, 'PUBLIC') || ' may CREATE in schema ' || n.nspname
              FROM pg_namespace n, unnest($1::text[] || ARRAY['public']) r
             WHERE n.nspname LIKE 'aos\_%' AND has_schema_privilege(r, n.oid, 'CREATE')
            UNION ALL
            -- table-level UPDATE or DELETE also allows LOCK TABLE in every mode: one tenant could
            -- stop all others (platform administrators are trusted with it)
            SELECT r || ' has table-level ' || priv || ' on ' || c.oid::regclass || ' (so it may LOCK the table for every tenant)'
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
                   unnest(ARRAY['aos_app', 'aos_worker', 'aos_analytics', 'public']) r, unnest(ARRAY['UPDATE', 'DELETE']) priv
             WHERE n.nspname LIKE 'aos\_%' AND c.relkind IN ('r', 'p') AND has_table_privilege(r, c.oid, priv)
            UNION ALL
            SELECT 'PUBLIC may use schema ' || n.nspname FROM pg_namespace n
             WHERE n.nspname LIKE 'aos\_%' AND has_schema_privilege('public', n.oid, 'USAGE')
            """, (object)ClientRoles), "privileges past row-level security");
    }

    [Fact]
    public async Task TenantIdLeadsThePrimaryKeyAndAnIndexOfEveryTenantTable()
    {
        None(await ViolationsAsync("""
            SELECT c.oid::regclass || CASE WHEN pk.indkey IS NULL THEN ' has no primary key' ELSE ': tenant_id does not lead its primary key' END
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
              LEFT JOIN pg_index pk ON pk.indrelid = c.oid AND pk.indisprimary
             WHERE n.nspname LIKE 'aos\_%' AND c.relkind IN ('r', 'p') AND (pk.indkey IS NULL OR pk.indkey[0] <> a.attnum)
            UNION ALL
            SELECT c.oid::regclass || ': no index starts with tenant_id'
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
             WHERE n.nspname LIKE 'aos\_%' AND c.relkind IN ('r', 'p')
               AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum)
            """), "tenant tables whose policy column is not indexed first");
    }

    [Fact]
    public async Task EveryRuleFailsOnTheMistakeItIsFor()
    {
        // Each mistake is made inside a transaction that is rolled back; each rule must catch its own.
        await using var su = await db.OpenAsync(null);
        await using var tx = await su.BeginTransactionAsync();
        await su.ExecAsync("""
            ALTER TABLE aos_agent.memory NO FORCE ROW LEVEL SECURITY;
            CREATE TABLE aos_agent.lint_no_tenant (id uuid PRIMARY KEY);
            ALTER TABLE aos_agent.lint_no_tenant OWNER TO aos_owner;
            CREATE POLICY lint_open ON aos_agent.observation USING (true);
            CREATE POLICY lint_null ON aos_agent.turn USING ((SELECT aos_auth.current_tenant()) IS NULL);
            CREATE POLICY lint_row ON aos_agent.step USING (tenant_id = aos_auth.current_tenant());
            ALTER VIEW aos_agent.error_log SET (security_invoker = false);
            ALTER FUNCTION aos_agent.recall(uuid, text) RESET aos.kernel_tenant;
            COMMENT ON FUNCTION aos_agent.forget(uuid, text) IS 'Deletes a memory.';
            GRANT EXECUTE ON FUNCTION aos_agent.get_turn_state(uuid) TO PUBLIC;
            ALTER FUNCTION aos_auth._is_tenant_admin(uuid) RESET search_path;
            ALTER FUNCTION aos_core.max_content_bytes() OWNER TO t_admin;
            GRANT TRIGGER ON aos_core.event_log TO aos_app;
            GRANT DELETE ON aos_policy.policy_rule TO aos_app;
            GRANT SELECT ON aos_auth.kernel_secret TO aos_analytics;
            DROP INDEX aos_egress.request_created_idx;
            ALTER TABLE aos_egress.request DROP CONSTRAINT request_pkey;
            """);
        _conn = su;
        try
        {
            async Task Catches(Func<Task> rule, string mistake)
            {
                var e = await Assert.ThrowsAnyAsync<Xunit.Sdk.XunitException>(rule);
                Assert.True(e.Message.Contains(mistake, StringComparison.Ordinal), $"the rule failed, but not for {mistake}: {e.Message}");
            }
            await Catches(EveryTenantTableHasRowLevelSecurityEnabledForcedAndAPolicy, "aos_agent.memory");
            await Catches(TablesWithoutATenantAreKnownAndClientsCannotWriteThem, "aos_agent.lint_no_tenant");
            await Catches(NoPolicyLetsEverythingThroughOrTestsTheContextForNull, "lint_open");
            await Catches(NoPolicyLetsEverythingThroughOrTestsTheContextForNull, "lint_null");
            await Catches(PoliciesCallFunctionsOncePerStatement, "lint_row");
            await Catches(EveryViewIsSecurityInvoker, "aos_agent.error_log");
            await Catches(SecurityDefinerFunctionsPinTheirSettingsSayWhyAndAreNotPublic, "aos_agent.recall");
            await Catches(SecurityDefinerFunctionsPinTheirSettingsSayWhyAndAreNotPublic, "aos_agent.forget");
            await Catches(NoFunctionIsExecutableByPublicOrLeakproofAndAllFixTheirSearchPath, "aos_agent.get_turn_state");
            await Catches(NoFunctionIsExecutableByPublicOrLeakproofAndAllFixTheirSearchPath, "aos_auth._is_tenant_admin");
            await Catches(EveryKernelObjectIsOwnedByAosOwner, "aos_core.max_content_bytes");
            await Catches(ClientRolesAndTheirLoginsAreNotSuperuserBypassRlsOrOwners, "t_admin");
            await Catches(ClientsHoldNoPrivilegeThatReachesPastRowLevelSecurity, "TRIGGER on aos_core.event_log");
            await Catches(ClientsHoldNoPrivilegeThatReachesPastRowLevelSecurity, "table-level DELETE on aos_policy.policy_rule");
            await Catches(TheKernelSecretIsReadableByTheOwnerOnly, "aos_analytics may read");
            await Catches(TenantIdLeadsThePrimaryKeyAndAnIndexOfEveryTenantTable, "aos_egress.request");
        }
        finally
        {
            _conn = null;
            await tx.RollbackAsync();
        }
    }

    /// <summary>Function calls in a policy's node tree, and whether each sits inside a sub-select.</summary>
    internal static IEnumerable<(long FuncId, bool InSubquery)> FunctionCalls(string? nodeTree)
    {
        if (string.IsNullOrEmpty(nodeTree))
        {
            yield break;
        }
        var stack = new Stack<string>();
        for (var i = 0; i < nodeTree.Length; i++)
        {
            var ch = nodeTree[i];
            if (ch == '{')
            {
                var j = i + 1;
                while (j < nodeTree.Length && (char.IsLetterOrDigit(nodeTree[j]) || nodeTree[j] == '_'))
                {
                    j++;
                }
                var node = nodeTree[(i + 1)..j];
                stack.Push(node);
                var field = node switch { "FUNCEXPR" => ":funcid ", "OPEXPR" or "DISTINCTEXPR" or "NULLIFEXPR" => ":opfuncid ", _ => null };
                if (field is not null)
                {
                    var k = nodeTree.IndexOf(field, j, StringComparison.Ordinal);
                    var end = k + field.Length;
                    while (end < nodeTree.Length && char.IsDigit(nodeTree[end]))
                    {
                        end++;
                    }
                    var id = long.Parse(nodeTree[(k + field.Length)..end], System.Globalization.CultureInfo.InvariantCulture);
                    yield return (id, stack.Contains("SUBLINK"));
                }
            }
            else if (ch == '}' && stack.Count > 0)
            {
                stack.Pop();
            }
        }
    }

    [GeneratedRegex(@"(USING|CHECK) \(?true\)?( |$)", RegexOptions.IgnoreCase)]
    private static partial Regex TrueExpr();

    [GeneratedRegex(@"IS (NOT )?NULL|IS (NOT )?DISTINCT FROM NULL|coalesce\(", RegexOptions.IgnoreCase)]
    private static partial Regex NullTest();
}
