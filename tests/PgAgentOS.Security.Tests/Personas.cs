using Npgsql;

namespace PgAgentOS.Security.Tests;

/// <summary>
/// Who connects, and how the session is bound. Every persona acts in tenant A (or in no tenant);
/// the tests check what it can see and do of tenant B.
/// </summary>
public sealed record Persona(string Name, string Login, string? BindSql, Func<TwoTenants, object>? BindArg)
{
    /// <summary>A platform administrator (member of aos_admin): may bind any tenant and sees every tenant row.</summary>
    public bool IsPlatformAdmin => Login == TestCluster.Admin;

    /// <summary>Opens a connection as the persona's login and binds it the persona's way.</summary>
    public async Task<NpgsqlConnection> OpenAsync(TwoTenants db)
    {
        var conn = await db.OpenAsLoginAsync(Login);
        if (BindSql is not null)
        {
            await conn.ExecAsync(BindSql, BindArg!(db));
        }
        return conn;
    }

    public override string ToString() => Name;
}

public static class Personas
{
    public static readonly Persona AppA = new("app-A", TestCluster.App, "SELECT aos_auth.authenticate($1)", db => db.A.UserKey);
    public static readonly Persona AdminALogin = new("admin-A-login", SecurityLogins.AdminA, "SELECT aos_auth.set_tenant($1)", db => db.A.Tenant);
    public static readonly Persona AdminAKey = new("admin-A-key", TestCluster.App, "SELECT aos_auth.authenticate($1)", db => db.A.AdminKey);
    public static readonly Persona PlatformAdminA = new("platform-admin-A", TestCluster.Admin, "SELECT aos_auth.set_tenant($1)", db => db.A.Tenant);
    public static readonly Persona Worker = new("worker", TestCluster.Worker, null, null);
    public static readonly Persona AnalyticsA = new("analytics-A", TestCluster.Analytics, "SELECT aos_auth.authenticate($1)", db => db.A.ViewerKey);
    public static readonly Persona Nobody = new("nobody", TestCluster.Nobody, null, null);
    public static readonly Persona UnboundApp = new("unbound-app", TestCluster.App, null, null);

    public static readonly IReadOnlyList<Persona> All = [AppA, AdminALogin, AdminAKey, PlatformAdminA, Worker, AnalyticsA, Nobody, UnboundApp];

    public static Persona Get(string name) => All.Single(p => p.Name == name);

    public static TheoryData<string> Names()
    {
        var d = new TheoryData<string>();
        foreach (var p in All)
        {
            d.Add(p.Name);
        }
        return d;
    }
}
