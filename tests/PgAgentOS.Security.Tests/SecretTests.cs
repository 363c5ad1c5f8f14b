using Npgsql;

namespace PgAgentOS.Security.Tests;

/// <summary>
/// Secrets: API keys exist in clear only in the caller's hands (the kernel keeps their SHA-256),
/// the kernel secret that signs bindings is readable by aos_owner alone, and notifications carry
/// ids, never content.
/// </summary>
public sealed class SecretTests(TwoTenants db) : IClassFixture<TwoTenants>
{
    [Fact]
    public async Task ApiKeysAreStoredOnlyAsTheirSha256()
    {
        var keys = new[] { db.A.AdminKey, db.A.UserKey, db.A.ApproverKey, db.A.ViewerKey, db.B.AdminKey, db.B.UserKey, db.B.ApproverKey, db.B.ViewerKey };
        await using var su = await db.OpenAsync(null);
        // every column of every user table that could hold text or bytes
        var columns = await su.RowsAsync("""
            SELECT c.oid::regclass::text AS rel, a.attname::text AS col, format_type(b.base, NULL) AS type
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
              JOIN pg_type t ON t.oid = a.atttypid
             CROSS JOIN LATERAL (SELECT CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END AS base) b  -- domains by their base type
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
               AND b.base IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'name'::regtype, 'bytea'::regtype, 'json'::regtype,
                              'jsonb'::regtype, 'text[]'::regtype)
            """);
        Assert.True(columns.Count > 50, "expected the kernel's text columns");
        var hits = new List<string>();
        foreach (var key in keys)
        {
            var secretPart = key[17..];
            foreach (var c in columns)
            {
                var col = $"\"{c["col"]}\"";
                var probe = (string)c["type"]! == "bytea"
                    ? $"position(convert_to($1, 'UTF8') IN {col}) > 0 OR position(convert_to($2, 'UTF8') IN {col}) > 0"
                    : $"position($1 IN {col}::text) > 0 OR position($2 IN {col}::text) > 0 OR position(encode(convert_to($2, 'UTF8'), 'hex') IN {col}::text) > 0";
                var n = await su.ScalarAsync<long>($"SELECT count(*) FROM {c["rel"]} WHERE {probe}", key, secretPart);
                if (n > 0)
                {
                    hits.Add($"{c["rel"]}.{c["col"]}");
                }
            }
            Assert.Equal(1L, await su.ScalarAsync<long>(
                "SELECT count(*) FROM aos_auth.api_key WHERE key_prefix = substr($1, 5, 12) AND key_hash = sha256(convert_to($1, 'UTF8'))", key));
        }
        Assert.True(hits.Count == 0, "a clear API key was found in: " + string.Join(", ", hits.Distinct()));
        // and clients cannot even read the hashes
        await using var app = await Personas.AdminAKey.OpenAsync(db);
        Assert.Equal("42501", (await app.ErrorAsync("SELECT key_hash FROM aos_auth.api_key")).SqlState);
    }

    [Theory]
    [InlineData(TestCluster.App)]
    [InlineData(TestCluster.Worker)]
    [InlineData(TestCluster.Admin)]
    [InlineData(TestCluster.Analytics)]
    [InlineData(TestCluster.Nobody)]
    [InlineData(SecurityLogins.AdminA)]
    public async Task NoClientReadsTheKernelSecretOrSignsWithIt(string login)
    {
        await using var conn = await db.OpenAsLoginAsync(login);
        Assert.Equal("42501", (await conn.ErrorAsync("SELECT * FROM aos_auth.kernel_secret")).SqlState);
        Assert.Equal("42501", (await conn.ErrorAsync("SELECT aos_auth._hmac('aos-binding-v2|x')")).SqlState);
        Assert.Equal("42501", (await conn.ErrorAsync("SELECT aos_auth._bind($1, NULL, false)", db.B.Tenant)).SqlState);
        Assert.Equal("42501", (await conn.ErrorAsync("SELECT aos_auth._act_as($1)", db.B.Tenant)).SqlState);
    }

    [Fact]
    public async Task EvenPgReadAllDataDoesNotSeeTheKernelSecret()
    {
        await using var conn = await db.OpenAsLoginAsync(SecurityLogins.ReadAll);
        Assert.Equal(0L, await conn.ScalarAsync<long>("SELECT count(*) FROM aos_auth.kernel_secret"));
        // and the tenants' rows stay fenced too: the policies' functions are not its to execute
        Assert.Equal("42501", (await conn.ErrorAsync("SELECT count(*) FROM aos_agent.step")).SqlState);
        await using var su = await db.OpenAsync(null);
        Assert.Equal(1L, await su.ScalarAsync<long>("SELECT count(*) FROM aos_auth.kernel_secret"));
    }

    [Fact]
    public async Task OnlyTheBindingFunctionsTouchTheSecretAndClientsReachNoOther()
    {
        await using var su = await db.OpenAsync(null);
        var reachable = await su.ColumnAsync("""
            SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname LIKE 'aos\_%' AND (p.prosrc ~ 'kernel_secret' OR p.prosrc ~ '_hmac\(' OR p.prosrc ~ '_bind\(')
               AND EXISTS (SELECT 1 FROM unnest(ARRAY['aos_app', 'aos_worker', 'aos_admin', 'aos_analytics']) r WHERE has_function_privilege(r, p.oid, 'EXECUTE'))
             ORDER BY 1
            """);
        // bind_turn_tenant signs a transaction-local binding for the sql_query tool (read-only, through a lease).
        Assert.Equal(new[] { "aos_agent.bind_turn_tenant(uuid,uuid)", "aos_auth._session_tenant()", "aos_auth.authenticate(text,boolean)", "aos_auth.set_tenant(uuid,boolean)" },
            reachable);
    }

    [Fact]
    public async Task NotificationsCarryIdsOnly()
    {
        // LISTEN needs no privilege: any session hears every tenant's notifications (docs/security.md).
        // What it hears is an id, never content.
        await using var listener = await db.OpenAsync(TestCluster.Nobody);
        var heard = new List<string>();
        listener.Notification += (_, e) => heard.Add(e.Channel + " " + e.Payload);
        await listener.ExecAsync("LISTEN aos_turn_ready; LISTEN aos_turn_done; LISTEN aos_approval_needed");

        await using var b = await db.OpenAsync(TestCluster.Admin);
        await b.ExecAsync("SELECT aos_auth.set_tenant($1)", db.B.Tenant);
        var conv = await b.ScalarAsync<Guid>("SELECT aos_agent.start_conversation($1)", db.B.ManualAgent);
        var turn = await b.ScalarAsync<Guid>("SELECT aos_agent.send_message($1, 'SECRET-B notified')", conv);
        await b.ExecAsync("SELECT aos_agent.run_turn($1)", turn);
        await b.ExecAsync("SELECT aos_agent.process_tool_call($1, 'code_execute', '{\"code\": \"SECRET-B\"}')", turn);
        await b.ExecAsync("SELECT aos_agent.cancel_turn($1)", turn);

        for (var i = 0; i < 50 && heard.Count < 2; i++)
        {
            await listener.WaitAsync(100);
        }
        Assert.NotEmpty(heard);
        foreach (var n in heard)
        {
            Assert.Matches(@"^aos_\w+ [0-9a-f-]{36}$", n);
            Assert.DoesNotContain("SECRET", n, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task StreamChannelsArePerTenantAndCannotBeNamedByOthers()
    {
        // Answer deltas carry text, so they go on a channel per tenant whose name is an HMAC with
        // the kernel secret: a session of A cannot compute B's, and an unbound one gets none.
        await using var a = await db.OpenAsync(TestCluster.Admin);
        await a.ExecAsync("SELECT aos_auth.set_tenant($1)", db.A.Tenant);
        await using var b = await db.OpenAsync(TestCluster.Admin);
        await b.ExecAsync("SELECT aos_auth.set_tenant($1)", db.B.Tenant);
        var channelA = await a.ScalarAsync<string>("SELECT aos_agent.stream_channel()");
        var channelB = await b.ScalarAsync<string>("SELECT aos_agent.stream_channel()");
        Assert.Matches("^aos_stream_[0-9a-f]{40}$", channelA);
        Assert.NotEqual(channelA, channelB);
        Assert.Equal(channelA, await a.ScalarAsync<string>("SELECT aos_agent.stream_channel()"));
        foreach (var id in new[] { db.A.Tenant, db.B.Tenant })
        {
            Assert.DoesNotContain(id.ToString("N")[..8], channelA + channelB, StringComparison.Ordinal);
        }
        // The name comes from the kernel only: the HMAC helper is not executable by clients.
        var denied = await a.ErrorAsync("SELECT aos_agent._stream_channel($1)", db.B.Tenant);
        Assert.Equal("42501", denied.SqlState);
        await using var unbound = await db.OpenAsync(TestCluster.App);
        Assert.Equal("AO001", (await unbound.ErrorAsync("SELECT aos_agent.stream_channel()")).SqlState);
    }
}
