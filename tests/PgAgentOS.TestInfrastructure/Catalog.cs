using Npgsql;

namespace PgAgentOS.TestInfrastructure;

/// <summary>Listings of what a database holds, for comparing installs.</summary>
public static class Catalog
{
    /// <summary>
    /// Every kernel object (schemas aos_*) with its definition: tables and columns, constraints,
    /// indexes, views, functions (signature, body hash, security, settings), triggers, policies,
    /// RLS flags, owners and privileges. Sorted; extension membership is left out on purpose.
    /// </summary>
    public static async Task<List<string>> KernelObjectsAsync(NpgsqlConnection conn) =>
        await conn.ColumnAsync(KernelSql.Replace("@SCHEMAS", "n.nspname LIKE 'aos\\_%'", StringComparison.Ordinal));

    /// <summary>Every object of every non-system schema (to show that nothing is left behind).</summary>
    public static async Task<List<string>> AllUserObjectsAsync(NpgsqlConnection conn) =>
        await conn.ColumnAsync(KernelSql.Replace("@SCHEMAS",
            "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg\\_temp%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp%'",
            StringComparison.Ordinal));

    private const string KernelSql = """
        SELECT x FROM (
          SELECT 'schema ' || n.nspname || ' owner=' || pg_get_userbyid(n.nspowner) || ' acl=' || coalesce(n.nspacl::text, '') AS x
          FROM pg_namespace n WHERE @SCHEMAS
          UNION ALL
          SELECT 'rel ' || c.oid::regclass::text || ' kind=' || c.relkind::text || ' owner=' || pg_get_userbyid(c.relowner)
                 || ' rls=' || c.relrowsecurity || ' force=' || c.relforcerowsecurity || ' acl=' || coalesce(c.relacl::text, '')
                 || ' opts=' || coalesce(c.reloptions::text, '')
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE @SCHEMAS AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
          UNION ALL
          SELECT 'col ' || c.oid::regclass::text || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                 || ' notnull=' || a.attnotnull || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
                 || ' generated=' || a.attgenerated::text || ' identity=' || a.attidentity::text
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE @SCHEMAS AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
          UNION ALL
          SELECT 'index ' || pg_get_indexdef(i.indexrelid)
          FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE @SCHEMAS
          UNION ALL
          SELECT 'constraint ' || co.conrelid::regclass::text || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid)
          FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
          WHERE @SCHEMAS
          UNION ALL
          SELECT 'view ' || c.oid::regclass::text || ' ' || md5(pg_get_viewdef(c.oid))
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE @SCHEMAS AND c.relkind IN ('v', 'm')
          UNION ALL
          SELECT 'function ' || p.oid::regprocedure::text || ' returns ' || pg_get_function_result(p.oid)
                 || ' definer=' || p.prosecdef || ' volatile=' || p.provolatile::text || ' strict=' || p.proisstrict
                 || ' config=' || coalesce(p.proconfig::text, '') || ' owner=' || pg_get_userbyid(p.proowner)
                 || ' acl=' || coalesce(p.proacl::text, '') || ' src=' || md5(p.prosrc)
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE @SCHEMAS
          UNION ALL
          SELECT 'trigger ' || t.tgrelid::regclass::text || ' ' || pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
          FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE @SCHEMAS AND NOT t.tgisinternal
          UNION ALL
          SELECT 'policy ' || pol.polrelid::regclass::text || ' ' || pol.polname || ' cmd=' || pol.polcmd::text
                 || ' permissive=' || pol.polpermissive || ' roles=' || pol.polroles::text
                 || ' using=' || coalesce(pg_get_expr(pol.polqual, pol.polrelid), '')
                 || ' check=' || coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), '')
          FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE @SCHEMAS
          UNION ALL
          SELECT 'type ' || t.oid::regtype::text || ' kind=' || t.typtype::text || ' owner=' || pg_get_userbyid(t.typowner)
          FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
          WHERE @SCHEMAS AND t.typtype IN ('d', 'e', 'r', 'm')
          UNION ALL
          SELECT 'comment ' || coalesce(obj_description(c.oid, 'pg_class'), '') || ' on ' || c.oid::regclass::text
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE @SCHEMAS AND c.relkind IN ('r', 'v')
        ) s ORDER BY x
        """;
}
