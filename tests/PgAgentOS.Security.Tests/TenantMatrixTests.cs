using System.Text.Json.Nodes;
using Npgsql;

namespace PgAgentOS.Security.Tests;

/// <summary>
/// T1–T3: every persona against every aos_* table and view (listed from pg_class, so a table added
/// later is covered): it sees nothing of tenant B, changes nothing of B, and cannot create rows in B.
/// </summary>
public sealed class TenantMatrixTests(TwoTenants db) : IClassFixture<TwoTenants>
{
    /// <summary>What a platform administrator sees of other tenants by design (docs/security.md).</summary>
    private static bool PlatformAdminSeesAll(Persona p, string rel) => p.IsPlatformAdmin && rel == "aos_auth.tenant";

    [Fact]
    public async Task EveryTenantTableHoldsRowsOfBothTenants()
    {
        // Otherwise the matrix below would pass for a table only because it is empty.
        await using var su = await db.OpenAsync(null);
        var missing = new List<string>();
        foreach (var rel in await TenantTablesAsync(su))
        {
            foreach (var (name, t) in new[] { ("A", db.A.Tenant), ("B", db.B.Tenant) })
            {
                if (await su.ScalarAsync<long>($"SELECT count(*) FROM {rel} WHERE tenant_id = $1", t) == 0)
                {
                    missing.Add($"{rel} (tenant {name})");
                }
            }
        }
        Assert.True(missing.Count == 0, "the fixture (TwoTenants) creates no rows in: " + string.Join(", ", missing));
    }

    [Fact]
    public async Task TheFingerprintOfBSeesEveryChangeOfB()
    {
        // The write checks compare this digest before and after: it must not be blind.
        var before = await db.BFingerprintAsync();
        Assert.False(string.IsNullOrEmpty(before));
        await using var b = await db.OpenAsync(TestCluster.Admin);
        await b.ExecAsync("SELECT aos_auth.set_tenant($1)", db.B.Tenant);
        await b.ExecAsync("SELECT aos_agent.recall($1, 'fact')", db.B.ManualAgent);  // counts a read: one column of one row
        Assert.NotEqual(before, await db.BFingerprintAsync());
    }

    [Theory]
    [MemberData(nameof(Personas.Names), MemberType = typeof(Personas))]
    public async Task TablesShowNothingOfB(string personaName)
    {
        var p = Personas.Get(personaName);
        var problems = new List<string>();
        await using var su = await db.OpenAsync(null);
        var tables = await AllTablesAsync(su);
        await using var conn = await p.OpenAsync(db);
        foreach (var rel in tables)
        {
            if (PlatformAdminSeesAll(p, rel))
            {
                continue;
            }
            try
            {
                foreach (var row in await conn.ColumnAsync($"SELECT t::text FROM {rel} t"))
                {
                    var leaks = db.BLeaks(row);
                    if (leaks.Count > 0)
                    {
                        problems.Add($"{rel}: {string.Join(", ", leaks)} in {Short(row)}");
                        break;
                    }
                }
            }
            catch (PostgresException e) when (e.SqlState == "42501")
            {
                // no privilege: sees nothing
            }
        }
        Assert.True(problems.Count == 0, $"{p} sees tenant B's rows:\n" + string.Join("\n", problems));
    }

    [Theory]
    [MemberData(nameof(Personas.Names), MemberType = typeof(Personas))]
    public async Task ViewsShowNothingOfB(string personaName)
    {
        var p = Personas.Get(personaName);
        var problems = new List<string>();
        await using var su = await db.OpenAsync(null);
        var views = await ViewsAsync(su);
        Assert.NotEmpty(views);
        await using var conn = await p.OpenAsync(db);
        foreach (var rel in views)
        {
            try
            {
                foreach (var row in await conn.ColumnAsync($"SELECT v::text FROM {rel} v"))
                {
                    var leaks = db.BLeaks(row);
                    if (leaks.Count > 0)
                    {
                        problems.Add($"{rel}: {string.Join(", ", leaks)} in {Short(row)}");
                        break;
                    }
                }
            }
            catch (PostgresException e) when (e.SqlState == "42501")
            {
            }
        }
        Assert.True(problems.Count == 0, $"{p} sees tenant B through views:\n" + string.Join("\n", problems));
    }

    [Fact]
    public async Task EveryViewShowsTheBoundTenantItsOwnRows()
    {
        // The other side of ViewsShowNothingOfB: bound to B, each view does show B's rows.
        await using var su = await db.OpenAsync(null);
        var views = await ViewsAsync(su);
        await using var conn = await db.OpenAsync(TestCluster.Admin);
        await conn.ExecAsync("SELECT aos_auth.set_tenant($1)", db.B.Tenant);
        var empty = new List<string>();
        foreach (var rel in views)
        {
            var rows = await conn.ColumnAsync($"SELECT v::text FROM {rel} v");
            if (!rows.Any(r => db.BLeaks(r).Count > 0))
            {
                empty.Add(rel);
            }
        }
        Assert.True(empty.Count == 0, "bound to B, these views show none of B's rows (extend the fixture): " + string.Join(", ", empty));
    }

    [Theory]
    [MemberData(nameof(Personas.Names), MemberType = typeof(Personas))]
    public async Task UpdatesAndDeletesOfBsRowsChangeNothing(string personaName)
    {
        var p = Personas.Get(personaName);
        var problems = new List<string>();
        await using var su = await db.OpenAsync(null);
        var before = await db.BFingerprintAsync();
        var tables = await TenantTablesAsync(su);
        await using var conn = await p.OpenAsync(db);
        foreach (var rel in tables)
        {
            if (PlatformAdminSeesAll(p, rel))
            {
                continue;
            }
            var col = await su.ScalarAsync<string>("""
                SELECT coalesce(
                    (SELECT attname::text FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped
                        AND has_column_privilege($2, $1::regclass, attnum, 'UPDATE') ORDER BY attnum LIMIT 1),
                    'tenant_id')
                """, rel, p.Login);
            // one of B's rows by its key, without naming the tenant
            var byKey = await su.ScalarAsync<string>($"""
                SELECT string_agg(format('%I::text = %L', a.attname, (to_jsonb(t) ->> a.attname)), ' AND ')
                  FROM (SELECT * FROM {rel} WHERE tenant_id = $1 LIMIT 1) t,
                       pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                 WHERE i.indrelid = '{rel}'::regclass AND i.indisprimary AND (a.attname <> 'tenant_id' OR i.indnatts = 1)
                """, db.B.Tenant);
            var statements = new[]
            {
                $"UPDATE {rel} SET {Q(col)} = {Q(col)} WHERE tenant_id = $1",
                $"DELETE FROM {rel} WHERE tenant_id = $1",
                $"UPDATE {rel} SET tenant_id = $1 WHERE tenant_id <> $1",
                $"UPDATE {rel} SET {Q(col)} = {Q(col)} WHERE {byKey} AND $1::uuid IS NOT NULL",
                $"DELETE FROM {rel} WHERE {byKey} AND $1::uuid IS NOT NULL",
            };
            foreach (var sql in statements)
            {
                var outcome = await InRolledBackTransactionAsync(conn, sql, db.B.Tenant);
                if (outcome is not ("0" or "42501"))
                {
                    problems.Add($"{sql}: {outcome}");
                }
            }
        }
        Assert.True(problems.Count == 0, $"{p} reaches tenant B's rows:\n" + string.Join("\n", problems));
        Assert.Equal(before, await db.BFingerprintAsync());
    }

    [Theory]
    [MemberData(nameof(Personas.Names), MemberType = typeof(Personas))]
    public async Task InsertsIntoBAreRefused(string personaName)
    {
        var p = Personas.Get(personaName);
        var problems = new List<string>();
        await using var su = await db.OpenAsync(null);
        var before = await db.BFingerprintAsync();
        foreach (var rel in await TenantTablesAsync(su))
        {
            if (rel == "aos_auth.tenant")
            {
                continue;  // its tenant_id is its key: creating tenants is what platform administrators do
            }
            // A copy of one of A's rows, moved to B with fresh ids.
            var json = await su.ScalarAsync<string>($"SELECT to_jsonb(t)::text FROM {rel} t WHERE tenant_id = $1 LIMIT 1", db.A.Tenant);
            var row = JsonNode.Parse(json)!.AsObject();
            var keys = await su.ColumnAsync("""
                SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                 WHERE i.indrelid = $1::regclass AND i.indisprimary AND a.atttypid = 'uuid'::regtype AND a.attname <> 'tenant_id'
                """, rel);
            foreach (var k in keys)
            {
                row[k] = Guid.NewGuid().ToString();
            }
            row["tenant_id"] = db.B.Tenant.ToString();
            // every column a client could give (generated columns are computed by the server)
            var columns = string.Join(", ", (await su.ColumnAsync("""
                SELECT quote_ident(attname) FROM pg_attribute
                 WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
                 ORDER BY attnum
                """, rel)));
            var outcome = await InRolledBackTransactionAsync(conn: null,
                $"INSERT INTO {rel} ({columns}) SELECT {columns} FROM jsonb_populate_record(NULL::{rel}, $1::jsonb)", row.ToJsonString(), p);
            if (outcome != "42501")
            {
                problems.Add($"{rel}: {outcome}");
            }
        }
        Assert.True(problems.Count == 0, $"{p} could write rows into tenant B (expected 42501):\n" + string.Join("\n", problems));
        Assert.Equal(before, await db.BFingerprintAsync());
    }

    [Theory]
    [MemberData(nameof(Personas.Names), MemberType = typeof(Personas))]
    public async Task NoTenantCanLockATableAgainstTheOthers(string personaName)
    {
        // Row-level security does not apply to LOCK TABLE: a strong table lock held by one
        // tenant's session would stop every other tenant. Only platform administrators (trusted)
        // may take one, on the tables they maintain.
        var p = Personas.Get(personaName);
        if (p.IsPlatformAdmin)
        {
            return;
        }
        await using var su = await db.OpenAsync(null);
        var problems = new List<string>();
        await using var conn = await p.OpenAsync(db);
        foreach (var rel in await AllTablesAsync(su))
        {
            foreach (var mode in new[] { "SHARE", "EXCLUSIVE", "ACCESS EXCLUSIVE" })
            {
                var outcome = await InRolledBackTransactionAsync(conn, $"LOCK TABLE {rel} IN {mode} MODE NOWAIT", null);
                if (outcome != "42501")
                {
                    problems.Add($"LOCK TABLE {rel} IN {mode} MODE: {outcome}");
                }
            }
        }
        Assert.True(problems.Count == 0, $"{p} can lock tables:\n" + string.Join("\n", problems));
    }

    /// <summary>Runs a statement in a transaction that is rolled back; returns the rows affected, or the SQLSTATE.</summary>
    private async Task<string> InRolledBackTransactionAsync(NpgsqlConnection? conn, string sql, object? arg, Persona? persona = null)
    {
        NpgsqlConnection? own = null;
        if (conn is null)
        {
            own = await persona!.OpenAsync(db);
            conn = own;
        }
        try
        {
            await using var tx = await conn.BeginTransactionAsync();
            try
            {
                var n = arg is null ? await conn.ExecAsync(sql) : await conn.ExecAsync(sql, arg);
                return n.ToString(System.Globalization.CultureInfo.InvariantCulture);
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
        finally
        {
            if (own is not null)
            {
                await own.DisposeAsync();
            }
        }
    }

    internal static async Task<List<string>> AllTablesAsync(NpgsqlConnection su) => await su.ColumnAsync("""
        SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname LIKE 'aos\_%' AND c.relkind IN ('r', 'p') ORDER BY 1
        """);

    internal static async Task<List<string>> TenantTablesAsync(NpgsqlConnection su) => await su.ColumnAsync("""
        SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname LIKE 'aos\_%' AND c.relkind IN ('r', 'p')
           AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
         ORDER BY 1
        """);

    internal static async Task<List<string>> ViewsAsync(NpgsqlConnection su) => await su.ColumnAsync("""
        SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname LIKE 'aos\_%' AND c.relkind IN ('v', 'm') ORDER BY 1
        """);

    private static string Q(string ident) => "\"" + ident.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static string Short(string s) => s.Length <= 200 ? s : s[..200] + "…";
}
