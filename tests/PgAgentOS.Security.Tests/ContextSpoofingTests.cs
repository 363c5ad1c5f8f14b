using Npgsql;

namespace PgAgentOS.Security.Tests;

/// <summary>
/// T5: a client that can run any SQL its role allows tries to give itself a tenant it was not
/// given: plain settings, a binding copied from another session, the kernel's own settings,
/// SET ROLE, RESET, and set_tenant of someone else's tenant. It never reaches B, and without a
/// binding it sees no rows at all (fail closed).
/// </summary>
public sealed class ContextSpoofingTests(TwoTenants db) : IClassFixture<TwoTenants>
{
    /// <summary>Rows of every tenant table visible to the session, and the tenant it is bound to.</summary>
    private async Task<(long Rows, long RowsOfB, Guid? Tenant)> SeenAsync(NpgsqlConnection conn)
    {
        await using var su = await db.OpenAsync(null);
        var tables = await TenantMatrixTests.TenantTablesAsync(su);
        long rows = 0, ofB = 0;
        foreach (var t in tables)
        {
            try
            {
                // the shared skill catalogue (tenant 00000000-...) is every session's to read
                rows += await conn.ScalarAsync<long>($"SELECT count(tenant_id) FROM {t} WHERE tenant_id <> '00000000-0000-0000-0000-000000000000'");
            }
            catch (PostgresException e) when (e.SqlState == "42501")
            {
                continue;
            }
            ofB += await conn.ScalarAsync<long>($"SELECT count(tenant_id) FROM {t} WHERE tenant_id = $1", db.B.Tenant);
        }
        var tenant = await conn.ScalarAsync<Guid?>("SELECT aos_auth.current_tenant()");
        return (rows, ofB, tenant);
    }

    private async Task AssertSeesNothingAsync(NpgsqlConnection conn, string what)
    {
        var (rows, _, tenant) = await SeenAsync(conn);
        Assert.True(rows == 0, $"{what}: the session sees {rows} rows");
        Assert.Null(tenant);
        Assert.Equal("AO001", (await conn.ErrorAsync("SELECT aos_agent.get_turn_state($1)", db.B.TurnDone)).SqlState);
        Assert.Contains((await conn.ErrorAsync("SELECT aos_agent.recall($1)", db.B.ManualAgent)).SqlState, new[] { "AO001", "42501" });
    }

    [Fact]
    public async Task WithoutABindingNothingIsVisible()
    {
        await using var conn = await db.OpenAsync(TestCluster.App);
        await AssertSeesNothingAsync(conn, "no binding");
    }

    [Fact]
    public async Task SettingTheTenantIsNotBindingIt()
    {
        await using var conn = await db.OpenAsync(TestCluster.App);
        await conn.ExecAsync($"SET aos.tenant_id = '{db.B.Tenant}'");
        await AssertSeesNothingAsync(conn, "SET aos.tenant_id");
        await conn.ExecAsync("SELECT set_config('aos.tenant_id', $1, false), set_config('aos.binding', repeat('0', 64), false)", db.B.Tenant.ToString());
        await AssertSeesNothingAsync(conn, "set_config with a made-up signature");
        await conn.ExecAsync("SELECT set_config('aos.principal_id', $1, false)", db.B.AdminPrincipal.ToString());
        await AssertSeesNothingAsync(conn, "set_config of tenant and principal");
    }

    [Fact]
    public async Task ABindingCopiedFromAnotherSessionIsWorthless()
    {
        string tenant, principal, binding;
        await using (var victim = await db.OpenAsync(TestCluster.App))
        {
            await victim.ExecAsync("SELECT aos_auth.authenticate($1)", db.B.AdminKey);
            Assert.Equal(db.B.Tenant, await victim.ScalarAsync<Guid>("SELECT aos_auth.current_tenant()"));
            tenant = await victim.ScalarAsync<string>("SELECT current_setting('aos.tenant_id')");
            principal = await victim.ScalarAsync<string>("SELECT current_setting('aos.principal_id')");
            binding = await victim.ScalarAsync<string>("SELECT current_setting('aos.binding')");
            // same login, another session, while the victim's session is still open
            await using var thief = await db.OpenAsync(TestCluster.App);
            await thief.ExecAsync("SELECT set_config('aos.tenant_id', $1, false), set_config('aos.principal_id', $2, false), set_config('aos.binding', $3, false)",
                tenant, principal, binding);
            await AssertSeesNothingAsync(thief, "a live session's binding copied into another session of the same login");
        }
        foreach (var login in new[] { TestCluster.App, TestCluster.Analytics, SecurityLogins.AdminA })
        {
            await using var thief = await db.OpenAsLoginAsync(login);
            await thief.ExecAsync("SELECT set_config('aos.tenant_id', $1, false), set_config('aos.principal_id', $2, false), set_config('aos.binding', $3, false)",
                tenant, principal, binding);
            await AssertSeesNothingAsync(thief, $"a binding replayed by {login} after its session ended");
        }
    }

    [Fact]
    public async Task TheKernelsOwnSettingsMeanNothingToAClient()
    {
        // Unbound: the kernel's pinned tenant, its cross-tenant scope and its pinned principal.
        await using (var conn = await db.OpenAsync(TestCluster.App))
        {
            await conn.ExecAsync($"SET aos.kernel_tenant = '{db.B.Tenant}'; SET aos.kernel_scope = 'all'; SET aos.kernel_principal = '{db.B.AdminPrincipal}'");
            await AssertSeesNothingAsync(conn, "SET aos.kernel_tenant / kernel_scope / kernel_principal");
        }
        // Bound to A as a plain user: still A only, and no one else's rights.
        await using (var conn = await Personas.AppA.OpenAsync(db))
        {
            await conn.ExecAsync($"SET aos.kernel_tenant = '{db.B.Tenant}'; SET aos.kernel_scope = 'all'; SET aos.kernel_principal = '{db.A.AdminPrincipal}'");
            var (rows, ofB, tenant) = await SeenAsync(conn);
            Assert.True(rows > 0);
            Assert.Equal(0, ofB);
            Assert.Equal(db.A.Tenant, tenant);
            Assert.Equal(db.A.UserPrincipal, await conn.ScalarAsync<Guid>("SELECT aos_auth.current_principal()"));
            Assert.Equal("AO002", (await conn.ErrorAsync("SELECT aos_agent.recall($1)", db.B.ManualAgent)).SqlState);
            Assert.Equal("AO011", (await conn.ErrorAsync("SELECT aos_agent.approve_step($1, true)", db.B.StepPending)).SqlState);
            // the pinned principal is not believed: a user cannot act as A's administrator
            Assert.Equal("AO011", (await conn.ErrorAsync("SELECT aos_auth.create_principal($1, 'human', 'spoofed')", db.A.Tenant)).SqlState);
            Assert.Equal("AO011", (await conn.ErrorAsync("SELECT aos_auth.create_api_key($1)", db.A.AdminPrincipal)).SqlState);
            Assert.Equal("AO011", (await conn.ErrorAsync("SELECT aos_auth.grant_role($1, 'admin')", db.A.UserPrincipal)).SqlState);
            Assert.Equal("AO011", (await conn.ErrorAsync("SELECT aos_agent.approve_step($1, true)", db.A.StepPending)).SqlState);
        }
    }

    [Fact]
    public async Task KernelSettingsAsRoleOrDatabaseDefaultsMeanNothingEither()
    {
        // A login cannot store the kernel's settings as its own defaults, nor can the database's
        // owner for the database...
        await using (var app = await db.OpenAsync(TestCluster.App))
        {
            Assert.Equal("42501", (await app.ErrorAsync($"ALTER ROLE {TestCluster.App} IN DATABASE {db.Name} SET aos.kernel_scope = 'all'")).SqlState);
        }
        await using (var owner = await db.OpenAsync(TestCluster.Admin))
        {
            Assert.Equal("42501", (await owner.ErrorAsync($"ALTER DATABASE {db.Name} SET aos.kernel_tenant = '{db.B.Tenant}'")).SqlState);
        }
        // ...and where a superuser did, they still mean nothing.
        await db.Cluster.ExecSuperAsync(db.Name, $"""
            ALTER ROLE {TestCluster.App} IN DATABASE {db.Name} SET aos.kernel_scope = 'all';
            ALTER DATABASE {db.Name} SET aos.kernel_tenant = '{db.B.Tenant}';
            ALTER DATABASE {db.Name} SET aos.kernel_principal = '{db.B.AdminPrincipal}';
            """);
        try
        {
            await using var conn = new NpgsqlConnection(db.ConnectionString(TestCluster.App) + ";Pooling=false");
            await conn.OpenAsync();
            Assert.Equal("all", await conn.ScalarAsync<string>("SELECT current_setting('aos.kernel_scope')"));
            await AssertSeesNothingAsync(conn, "role and database defaults for the kernel's settings");
        }
        finally
        {
            await db.Cluster.ExecSuperAsync(db.Name, $"ALTER ROLE {TestCluster.App} IN DATABASE {db.Name} RESET ALL; ALTER DATABASE {db.Name} RESET ALL");
        }
    }

    [Theory]
    [InlineData(TestCluster.App, "aos_owner")]
    [InlineData(TestCluster.App, "aos_admin")]
    [InlineData(TestCluster.App, "aos_worker")]
    [InlineData(TestCluster.App, TestCluster.Admin)]
    [InlineData(TestCluster.Admin, "aos_owner")]
    [InlineData(TestCluster.Admin, "aos_worker")]
    [InlineData(TestCluster.Worker, "aos_app")]
    [InlineData(TestCluster.Worker, "aos_owner")]
    [InlineData(TestCluster.Analytics, "aos_app")]
    [InlineData(TestCluster.Analytics, "aos_owner")]
    [InlineData(TestCluster.Nobody, "aos_app")]
    [InlineData(SecurityLogins.AdminA, "aos_admin")]
    public async Task SetRoleToARoleNotGrantedIsRefused(string login, string role)
    {
        await using var conn = await db.OpenAsLoginAsync(login);
        Assert.Equal("42501", (await conn.ErrorAsync($"SET ROLE {role}")).SqlState);
        Assert.Equal("42501", (await conn.ErrorAsync($"SET SESSION AUTHORIZATION {role}")).SqlState);
    }

    [Theory]
    [InlineData("RESET aos.binding")]
    [InlineData("RESET aos.tenant_id")]
    [InlineData("RESET ALL")]
    [InlineData("DISCARD ALL")]
    [InlineData("SELECT aos_auth.clear_tenant()")]
    public async Task ResettingTheBindingLeavesNothingVisible(string reset)
    {
        await using var conn = await Personas.AdminAKey.OpenAsync(db);
        Assert.Equal(db.A.Tenant, await conn.ScalarAsync<Guid>("SELECT aos_auth.current_tenant()"));
        await conn.ExecAsync(reset);
        await AssertSeesNothingAsync(conn, reset);
    }

    [Fact]
    public async Task ATransactionLocalBindingEndsWithTheTransaction()
    {
        await using var conn = await db.OpenAsync(TestCluster.App);
        await using (var tx = await conn.BeginTransactionAsync())
        {
            await conn.ExecAsync("SELECT aos_auth.authenticate($1, true)", db.A.UserKey);
            Assert.Equal(db.A.Tenant, await conn.ScalarAsync<Guid>("SELECT aos_auth.current_tenant()"));
            await tx.CommitAsync();
        }
        await AssertSeesNothingAsync(conn, "after the transaction of a local binding");
    }

    [Theory]
    [InlineData(TestCluster.App)]
    [InlineData(TestCluster.Analytics)]
    [InlineData(SecurityLogins.AdminA)]
    public async Task SetTenantOfAnotherTenantIsRefused(string login)
    {
        await using var conn = await db.OpenAsLoginAsync(login);
        Assert.Equal("AO011", (await conn.ErrorAsync("SELECT aos_auth.set_tenant($1)", db.B.Tenant)).SqlState);
        Assert.Equal("AO011", (await conn.ErrorAsync("SELECT aos_auth.set_tenant($1, true)", db.B.Tenant)).SqlState);
        Assert.Equal("AO011", (await conn.ErrorAsync("SELECT aos_auth.set_tenant($1)", Guid.NewGuid())).SqlState);
        await AssertSeesNothingAsync(conn, "after a refused set_tenant");
        // bound to A first: a refused set_tenant(B) leaves the session in A
        await conn.ExecAsync("SELECT aos_auth.authenticate($1)", db.A.UserKey);
        Assert.Equal("AO011", (await conn.ErrorAsync("SELECT aos_auth.set_tenant($1)", db.B.Tenant)).SqlState);
        Assert.Equal(db.A.Tenant, await conn.ScalarAsync<Guid>("SELECT aos_auth.current_tenant()"));
    }

    [Fact]
    public async Task OnlyAPlatformAdminOrTheMappedLoginBindsATenant()
    {
        await using (var mapped = await db.OpenAsLoginAsync(SecurityLogins.AdminA))
        {
            await mapped.ExecAsync("SELECT aos_auth.set_tenant($1)", db.A.Tenant);
            Assert.Equal(db.A.AdminPrincipal, await mapped.ScalarAsync<Guid>("SELECT aos_auth.current_principal()"));
        }
        await using (var app = await db.OpenAsync(TestCluster.App))
        {
            Assert.Equal("AO011", (await app.ErrorAsync("SELECT aos_auth.set_tenant($1)", db.A.Tenant)).SqlState);
        }
        // and only a platform administrator maps a login (a tenant's own admin may not)
        await using (var tenantAdmin = await Personas.AdminAKey.OpenAsync(db))
        {
            Assert.Equal("AO011", (await tenantAdmin.ErrorAsync(
                "SELECT aos_auth.create_principal($1, 'human', 'grab', $2::name)", db.A.Tenant, TestCluster.Analytics)).SqlState);
        }
    }

    [Fact]
    public async Task AForgedOrRevokedApiKeyBindsNothing()
    {
        await using var conn = await db.OpenAsync(TestCluster.App);
        var forged = db.B.AdminKey[..17] + new string('0', 48);
        Assert.Equal("AO011", (await conn.ErrorAsync("SELECT aos_auth.authenticate($1)", forged)).SqlState);
        Assert.Equal("22023", (await conn.ErrorAsync("SELECT aos_auth.authenticate($1)", "aos_" + db.B.Tenant)).SqlState);
        await AssertSeesNothingAsync(conn, "after a forged key");

        await using var admin = await Personas.PlatformAdminA.OpenAsync(db);
        await admin.ExecAsync("SELECT aos_auth.set_tenant($1)", db.A.Tenant);
        var key = await admin.ScalarAsync<string>("SELECT aos_auth.create_api_key($1, 'short-lived')", db.A.UserPrincipal);
        var keyId = await admin.ScalarAsync<Guid>("SELECT key_id FROM aos_auth.api_key WHERE key_prefix = substr($1, 5, 12)", key);
        await conn.ExecAsync("SELECT aos_auth.authenticate($1)", key);
        await conn.ExecAsync("SELECT aos_auth.clear_tenant()");
        Assert.True(await admin.ScalarAsync<bool>("SELECT aos_auth.revoke_api_key($1)", keyId));
        Assert.Equal("AO011", (await conn.ErrorAsync("SELECT aos_auth.authenticate($1)", key)).SqlState);
    }
}
