using System.Globalization;
using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;

namespace PgAgentOS.Kernel.Tests;

/// <summary>A tenant with an agent, as the tests of the agent loop need it.</summary>
internal sealed record World(Guid Tenant, Guid Persona, Guid Agent, Guid Admin);

/// <summary>Helpers shared by the kernel tests: tenants, agents, conversations, refusals, fingerprints.</summary>
internal static class K
{
    private static int _counter;

    /// <summary>A name unique in the test run (tenant and agent names allow letters, digits, _ . -).</summary>
    public static string Unique(string prefix) =>
        string.Create(CultureInfo.InvariantCulture, $"{prefix}-{Interlocked.Increment(ref _counter)}-{Guid.NewGuid():N}")[..Math.Min(60, prefix.Length + 20)];

    /// <summary>Binds a connection (session) to a tenant; the login must be an administrator.</summary>
    public static async Task BindAsync(this NpgsqlConnection conn, Guid tenant) =>
        await conn.ExecAsync("SELECT aos_auth.set_tenant($1)", tenant);

    /// <summary>
    /// A new tenant, bound on <paramref name="admin"/>, with an admin principal, a persona and an agent
    /// (tools web_search and code_execute, the given config).
    /// </summary>
    public static async Task<World> NewWorldAsync(NpgsqlConnection admin, string config = "{}", string tools = "{web_search,code_execute}",
        string? model = null)
    {
        var tenant = await admin.ScalarAsync<Guid>("SELECT aos_auth.create_tenant($1)", Unique("t"));
        await admin.BindAsync(tenant);
        var principal = await admin.ScalarAsync<Guid>(
            "SELECT aos_auth.create_principal($1, 'admin', 'root', NULL, NULL, ARRAY['admin','approver'])", tenant);
        var persona = await admin.ScalarAsync<Guid>("SELECT aos_persona.create_persona('helper', 'You help.')");
        var agent = await admin.ScalarAsync<Guid>(
            "SELECT aos_agent.create_agent($1, 'agent', $2, $3::text[], $4::jsonb, $5)", tenant, persona, tools, config, model);
        return new World(tenant, persona, agent, principal);
    }

    /// <summary>Another agent in the bound tenant.</summary>
    public static async Task<Guid> NewAgentAsync(NpgsqlConnection conn, World w, string config = "{}", string tools = "{web_search,code_execute}") =>
        await conn.ScalarAsync<Guid>("SELECT aos_agent.create_agent($1, $2, $3, $4::text[], $5::jsonb)",
            w.Tenant, Unique("a"), w.Persona, tools, config);

    /// <summary>A conversation of an agent of the bound tenant.</summary>
    public static async Task<Guid> NewConversationAsync(this NpgsqlConnection conn, Guid agent) =>
        await conn.ScalarAsync<Guid>("SELECT aos_agent.start_conversation($1)", agent);

    /// <summary>Sends a message; returns the turn id.</summary>
    public static async Task<Guid> SendAsync(this NpgsqlConnection conn, Guid conversation, string message = "hello") =>
        await conn.ScalarAsync<Guid>("SELECT aos_agent.send_message($1, $2)", conversation, message);

    /// <summary>A jsonb parameter.</summary>
    public static NpgsqlParameter Json(string? json) => new() { Value = (object?)json ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Jsonb };

    /// <summary>A parameter of an explicit type (for NULLs).</summary>
    public static NpgsqlParameter Typed(object? value, NpgsqlDbType type) => new() { Value = value ?? DBNull.Value, NpgsqlDbType = type };

    /// <summary>A JSON value returned by a query.</summary>
    public static async Task<JsonNode> JsonAsync(this NpgsqlConnection conn, string sql, params object?[] args) =>
        JsonNode.Parse(await conn.ScalarAsync<string>(sql, args) ?? "null")!;

    /// <summary>The status of a turn (as superuser-free SQL of the bound tenant).</summary>
    public static async Task<string> TurnStatusAsync(this NpgsqlConnection conn, Guid turn) =>
        await conn.ScalarAsync<string>("SELECT status FROM aos_agent.turn WHERE turn_id = $1", turn);

    /// <summary>The dispatch state of a conversation.</summary>
    public static async Task<string> RunStateAsync(this NpgsqlConnection conn, Guid conversation) =>
        await conn.ScalarAsync<string>("SELECT run_state FROM aos_agent.conversation WHERE conversation_id = $1", conversation);

    /// <summary>The status of a step.</summary>
    public static async Task<string> StepStatusAsync(this NpgsqlConnection conn, Guid step) =>
        await conn.ScalarAsync<string>("SELECT status FROM aos_agent.step WHERE step_id = $1", step);

    /// <summary>Asserts that a statement is refused with <paramref name="sqlState"/> and a hint, and returns the error.</summary>
    public static async Task<PostgresException> RefusedAsync(this NpgsqlConnection conn, string sqlState, string sql, params object?[] args)
    {
        var e = await conn.ErrorAsync(sql, args);
        Assert.True(sqlState == e.SqlState, $"expected {sqlState}, got {e.SqlState}: {e.MessageText} (from {sql})");
        if (sqlState.StartsWith("AO", StringComparison.Ordinal) || sqlState == "22004" || sqlState == "22023")
        {
            Assert.False(string.IsNullOrWhiteSpace(e.Hint), $"{sqlState} ({e.MessageText}) should carry a hint");
        }
        return e;
    }

    /// <summary>
    /// Everything that can change in a database: row counts of every kernel table and the heads of the event chains
    /// (read as superuser, across tenants).
    /// </summary>
    public static async Task<string> FingerprintAsync(KernelDatabase db)
    {
        await using var su = await db.OpenAsync(null);
        var tables = await su.ColumnAsync("""
            SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname LIKE 'aos\_%' AND c.relkind = 'r' ORDER BY 1
            """);
        var parts = new List<string>();
        foreach (var t in tables)
        {
            parts.Add(t + "=" + await su.ScalarAsync<long>($"SELECT count(*) FROM {t}"));
        }
        parts.Add("heads=" + await su.ScalarAsync<string>("""
            SELECT coalesce(sum(event_seq), 0)::text || ':' || coalesce(md5(string_agg(encode(event_head, 'hex'), ',' ORDER BY conversation_id)), '')
              FROM aos_agent.conversation
            """));
        parts.Add("tenant_heads=" + await su.ScalarAsync<string>(
            "SELECT coalesce(sum(event_seq), 0)::text FROM aos_auth.tenant"));
        parts.Add("state=" + await su.ScalarAsync<string>("""
            SELECT md5(coalesce(string_agg(x, ',' ORDER BY x), '')) FROM (
              SELECT conversation_id::text || run_state || status || turn_count || cur_step_count || coalesce(lease_token::text, '') AS x FROM aos_agent.conversation
              UNION ALL SELECT turn_id::text || status || attempt || step_count FROM aos_agent.turn
              UNION ALL SELECT step_id::text || status FROM aos_agent.step) s
            """));
        return string.Join("\n", parts);
    }

    /// <summary>The checkout this test runs from (the directory holding sql/MANIFEST).</summary>
    public static string RepoRoot
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            {
                if (File.Exists(Path.Combine(d.FullName, "sql", "MANIFEST")))
                {
                    return d.FullName;
                }
            }
            throw new InvalidOperationException("sql/MANIFEST not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>
    /// CREATE EXTENSION reads the extension files installed into PostgreSQL's share directory, which every checkout
    /// on this machine shares (scripts/setup.sh installs them): make sure they are this checkout's build.
    /// </summary>
    public static async Task EnsureExtensionFilesAsync(TestCluster tc)
    {
        var share = (await PgAgentOS.Embedded.OsProcess.RunAsync(tc.Binaries.Tool("pg_config"), ["--sharedir"], asServiceUser: false)).StdOut.Trim();
        foreach (var name in new[] { $"pgagentos--{PgAgentOS.Client.KernelScript.Version}.sql", "pgagentos.control" })
        {
            var built = Path.Combine(RepoRoot, name);
            var installed = Path.Combine(share, "extension", name);
            if (File.Exists(built) && (!File.Exists(installed) || await File.ReadAllTextAsync(built) != await File.ReadAllTextAsync(installed)))
            {
                File.Copy(built, installed, overwrite: true);
            }
        }
    }

    /// <summary>Waits until <paramref name="condition"/> holds (polling), or fails after <paramref name="timeout"/>.</summary>
    public static async Task EventuallyAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var until = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > until)
            {
                Assert.Fail($"timed out waiting for {what}");
            }
            await Task.Delay(50);
        }
    }
}
