namespace PgAgentOS.Cli.Tests;

/// <summary>A missing server, a database without the kernel, a login that is not an administrator: one line each, no stack trace.</summary>
public sealed class ErrorTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    [Fact]
    public async Task NoServer()
    {
        var port = PgAgentOS.Embedded.EmbeddedCluster.FreePort();
        var aos = new Aos($"postgresql://aos:secret@127.0.0.1:{port}/aos");
        var r = Expect.Code(6, await aos.RunAsync("agent", "list"));
        Golden.Check("error-no-server", r);
        Assert.DoesNotContain("   at ", r.All, StringComparison.Ordinal);
        Golden.Check("error-no-server-status", Expect.Code(6, await aos.RunAsync("status")));
    }

    [Fact]
    public async Task NoDatabaseConfigured()
    {
        // Neither --db nor AOS_DATABASE_URL, and no embedded cluster where AOS_DATA_DIR points.
        var aos = new Aos(null).With("AOS_DATA_DIR", "/tmp/aos-no-such-cluster");
        Golden.Check("error-no-database", Expect.Code(6, await aos.RunAsync("tenant", "list")));
        Golden.Check("error-status-no-cluster", Expect.Code(3, await aos.RunAsync("status")));
        Golden.Check("error-down-no-cluster", Expect.Code(3, await aos.RunAsync("down")));
    }

    [Fact]
    public async Task WrongPassword()
    {
        var url = Aos.Url(db).Replace(db.Cluster.LoginPassword, "wrong", StringComparison.Ordinal);
        Golden.Check("error-wrong-password", Expect.Code(6, await new Aos(url).RunAsync("tenant", "list")));
    }

    [Fact]
    public async Task KernelNotInstalled()
    {
        var empty = await db.Cluster.CreateEmptyDatabaseAsync();
        var url = PgAgentOS.Client.ConnectionUrl.Build("127.0.0.1", db.Cluster.Cluster.State!.Port, empty, TestCluster.Admin, db.Cluster.LoginPassword);
        Golden.Check("error-no-kernel", Expect.Code(7, await new Aos(url).RunAsync("tenant", "list")));
    }

    [Fact]
    public async Task NotAnAdministrator()
    {
        // The application login is not a platform administrator: it may not create tenants or act for one it is not mapped to.
        var app = Aos.For(db, TestCluster.App);
        Golden.Check("error-not-admin", Expect.Code(5, await app.RunAsync("tenant", "create", "sneaky")));
        Expect.Ok(await Aos.For(db).RunAsync("tenant", "create", "errors-tenant"));
        // It cannot even see the tenant (row-level security on aos_auth.tenant).
        Golden.Check("error-not-mapped", Expect.Code(3, await app.RunAsync("agent", "list", "--tenant", "errors-tenant")));
    }

    [Fact]
    public async Task ClusterCommandsAgainstAServer()
    {
        var aos = Aos.For(db);
        Golden.Check("status-db", Expect.Ok(await aos.RunAsync("status")));
        Golden.Check("install-db", Expect.Ok(await new Aos(null).RunAsync("install", "--db", Aos.Url(db, TestCluster.Admin))));
        Golden.Check("up-db", Expect.Ok(await aos.RunAsync("up")));
        Golden.Check("down-db", Expect.Code(2, await new Aos(null).RunAsync("down", "--db", Aos.Url(db))));
        var json = System.Text.Json.Nodes.JsonNode.Parse(Expect.Ok(await aos.RunAsync("status", "--json")).Out)!;
        Assert.True((bool)json["kernel_current"]!);
    }
}
