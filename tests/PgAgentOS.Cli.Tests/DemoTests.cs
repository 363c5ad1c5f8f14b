using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Npgsql;
using PgAgentOS.Client;
using PgAgentOS.Embedded;

namespace PgAgentOS.Cli.Tests;

/// <summary>
/// aos demo the way the README runs it: a fresh embedded cluster in a throwaway directory, the
/// real worker, the scripted model, --yes for the approval. Then again (everything is reused),
/// the SQL it prints run through psql, aos worker on the same cluster, and up/status/down.
/// </summary>
public sealed partial class DemoTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "aos-demo-test-" + Guid.NewGuid().ToString("N")[..8]);
    private Aos _aos = null!;

    public async Task InitializeAsync()
    {
        // No AOS_DATABASE_URL: the embedded cluster where AOS_DATA_DIR points, as on a fresh machine.
        _aos = new Aos(null).With("AOS_DATA_DIR", _dir);

        // The cluster is made here with the kernel from this build's embedded SQL (aos up would
        // prefer the extension files installed on this machine, which other checkouts share);
        // the demo then does the rest: logins, tenant, persona, agent, worker, the turn.
        var cluster = new EmbeddedCluster(_dir);
        await cluster.InitAsync(new ClusterOptions { Ephemeral = true });
        await cluster.StartAsync();
        var password = EmbeddedCluster.NewPassword();
        await using (var conn = new NpgsqlConnection(cluster.ConnectionString("postgres")))
        {
            await conn.OpenAsync();
            await conn.ExecAsync($"CREATE ROLE {ClusterLifecycle.AdminLogin} LOGIN PASSWORD '{password}'");
            await conn.ExecAsync($"CREATE DATABASE {cluster.State!.Database} OWNER {ClusterLifecycle.AdminLogin}");
        }
        cluster.RememberLogin(ClusterLifecycle.AdminLogin, password);
        await using (var conn = new NpgsqlConnection(cluster.ConnectionString(cluster.State.Database)))
        {
            await conn.OpenAsync();
            await KernelInstaller.InstallAsync(conn, InstallMethod.Manual);
        }
    }

    public async Task DisposeAsync()
    {
        await new Aos(null).RunAsync("down", "--data-dir", _dir);
        try
        {
            Directory.Delete(_dir, true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task TheDemoRunsOfflineTwiceAndItsSqlWorks()
    {
        var r = Expect.Ok(await _aos.RunAsync("demo", "--yes"));
        Assert.Contains("already running", r.Out, StringComparison.Ordinal);
        Assert.Contains("model builtin/scripted", r.Out, StringComparison.Ordinal);
        Assert.Contains("thinking", r.Out, StringComparison.Ordinal);
        Assert.Contains("web_search {\"query\": \"How do I do async programming in Python?\"}", r.Out, StringComparison.Ordinal);
        Assert.Contains("approving web_search (--yes)", r.Out, StringComparison.Ordinal);
        Assert.Contains("decision     web_search: approved", r.Out, StringComparison.Ordinal);
        Assert.Contains("researcher> Here is what the search found:", r.Out, StringComparison.Ordinal);
        Assert.True(r.Out.Contains("the answer streamed in as the worker wrote it", StringComparison.Ordinal), r.Out);

        // The turn, as the database recorded it: the approved tool call ran and the turn completed.
        var conv = ConversationId().Match(r.Out).Groups[1].Value;
        var timeline = JsonNode.Parse(Expect.Ok(await _aos.RunAsync("timeline", conv, "--json", "--tenant", "demo")).Out)!;
        var steps = timeline["steps"]!.AsArray();
        Assert.Equal(["user_message", "think", "tool_call", "tool_result", "think", "respond"], steps.Select(s => (string?)s!["step_type"]));
        var call = steps.Single(s => (string?)s!["step_type"] == "tool_call")!;
        Assert.Equal("web_search", (string?)call["tool_name"]);
        Assert.Equal("approved", (string?)call["approval"]);
        Assert.Equal("human", (string?)call["approved_by_source"]);
        Assert.Equal("completed", (string?)steps[^1]!["turn_status"]);
        var result = steps.Single(s => (string?)s!["step_type"] == "tool_result")!;
        Assert.Contains("docs.python.org", (string?)result["summary"], StringComparison.Ordinal);

        // The SQL it prints runs in psql and shows the same.
        var sql = r.Out[r.Out.IndexOf("SELECT aos_auth.set_tenant", StringComparison.Ordinal)..r.Out.IndexOf("\nNext", StringComparison.Ordinal)];
        var url = Regex.Match(r.Out, "psql \"([^\"]+)\"").Groups[1].Value;
        var file = Path.Combine(Path.GetTempPath(), $"aos-demo-sql-{Guid.NewGuid():N}.sql");
        await File.WriteAllTextAsync(file, sql);
        try
        {
            var psql = await OsProcess.RunAsync(PgBinaries.Locate().Tool("psql"), ["-X", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", file], asServiceUser: false);
            Assert.True(psql.ExitCode == 0, psql.Message);
            Assert.Contains("tool_call", psql.StdOut, StringComparison.Ordinal);
            Assert.Contains("approved", psql.StdOut, StringComparison.Ordinal);
            Assert.Contains("I should search for current documentation", psql.StdOut, StringComparison.Ordinal);
            Assert.Contains("(0 rows)", psql.StdOut, StringComparison.Ordinal); // the approval queue is empty
        }
        finally
        {
            File.Delete(file);
        }

        // Again: the cluster, tenant, persona and agent are reused; a new conversation.
        var again = JsonNode.Parse(Expect.Ok(await _aos.RunAsync("demo", "--yes", "--json")).Out)!;
        Assert.Equal("completed", (string?)again["status"]);
        Assert.Equal("builtin/scripted", (string?)again["model"]);
        Assert.NotEqual(conv, (string?)again["conversation_id"]);
        Assert.True((bool)again["streamed"]!);
        var tenants = JsonNode.Parse(Expect.Ok(await _aos.RunAsync("tenant", "list", "--json")).Out)!.AsArray();
        Assert.Single(tenants);
        Assert.Equal(2, (int)JsonNode.Parse(Expect.Ok(await _aos.RunAsync("agent", "show", "researcher", "--json")).Out)!["agent"]!["conversations"]!);

        // Without --yes and with nobody at the keyboard, the call stays in the queue.
        var unanswered = Expect.Code(2, await _aos.RunAsync("", CancellationToken.None, "demo"));
        Assert.Contains("nobody answered the approval question", unanswered.Err, StringComparison.Ordinal);
        var queue = JsonNode.Parse(Expect.Ok(await _aos.RunAsync("approvals", "--json")).Out)!.AsArray();
        var pending = Assert.Single(queue)!;

        // aos worker on the same cluster picks the turn up once it is approved.
        Golden.Check("worker-idle", Expect.Ok(await _aos.RunAsync("worker", "--until-idle", "--concurrency", "1", "--id", "w-test")));
        Expect.Ok(await _aos.RunAsync("approve", (string)pending["step_id"]!));
        var worked = Expect.Ok(await _aos.RunAsync("worker", "--until-idle", "--concurrency", "1", "--offline-search"));
        Assert.Contains("claimed", worked.Out, StringComparison.Ordinal);
        Assert.True(worked.Out.Contains("web_search ok", StringComparison.Ordinal), worked.Out);
        Assert.Contains("finished", worked.Out, StringComparison.Ordinal);
        Assert.Contains("nothing left to do after 1 turn(s)", worked.Out, StringComparison.Ordinal);
        var events = Expect.Ok(await _aos.RunAsync("worker", "--until-idle", "--json")).Out.Trim().Split('\n');
        Assert.Equal("idle", (string?)JsonNode.Parse(events[^1])!["type"]);

        // The cluster commands on the embedded cluster.
        Golden.Check("status-embedded", Expect.Ok(await _aos.RunAsync("status")));
        Golden.Check("up-embedded-running", Expect.Ok(await _aos.RunAsync("up")));
        Golden.Check("install-embedded", Expect.Ok(await _aos.RunAsync("install")));
        Golden.Check("down-embedded", Expect.Ok(await _aos.RunAsync("down")));
        Golden.Check("status-embedded-stopped", Expect.Ok(await _aos.RunAsync("status")));
        Golden.Check("down-embedded-stopped", Expect.Ok(await _aos.RunAsync("down")));
        Golden.Check("error-cluster-stopped", Expect.Code(6, await _aos.RunAsync("agent", "list")));
        var up = JsonNode.Parse(Expect.Ok(await _aos.RunAsync("up", "--json")).Out)!;
        Assert.Equal("started", (string?)up["action"]);
    }

    [GeneratedRegex(@"conversation\s+([0-9a-f-]{36})")]
    private static partial Regex ConversationId();
}

/// <summary>aos demo against a server given by --db, with the worker's login from --worker-db.</summary>
public sealed class DemoOnServerTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    [Fact]
    public async Task TheDemoRunsOnAGivenServer()
    {
        var aos = new Aos(null);
        var admin = Aos.Url(db);
        // The administrator login is no worker: the demo says which login it needs.
        Golden.Check("demo-no-worker-login", Expect.Code(5, await aos.RunAsync("demo", "--yes", "--db", admin)));
        var r = JsonNode.Parse(Expect.Ok(await aos.RunAsync("demo", "--yes", "--json", "--db", admin, "--worker-db", Aos.Url(db, TestCluster.Worker))).Out)!;
        Assert.Equal("completed", (string?)r["status"]);
        var steps = r["steps"]!.AsArray();
        var call = steps.Single(s => (string?)s!["step_type"] == "tool_call")!;
        Assert.Equal("approved", (string?)call["approval"]);
        Assert.Equal("human", (string?)call["approved_by_source"]);
        Assert.Contains("asyncio.run", (string?)r["answer"], StringComparison.Ordinal);

        // An unknown model is refused before anything runs.
        Golden.Check("demo-unknown-model", Expect.Code(3, await aos.RunAsync("demo", "--yes", "--db", admin, "--worker-db", Aos.Url(db, TestCluster.Worker),
            "--model", "acme/gpt-99")));
    }
}
