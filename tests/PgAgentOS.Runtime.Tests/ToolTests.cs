using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using PgAgentOS.Client;
using PgAgentOS.Runtime.Tools;

namespace PgAgentOS.Runtime.Tests;

/// <summary>Built-in tools: code_execute (Jint sandbox), sql_query (read-only, as the tenant), web_search, clock.</summary>
public sealed class ToolTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    private static readonly CodeExecuteTool Code = new(new CodeLimits
    {
        Time = TimeSpan.FromSeconds(10), MemoryBytes = 8 * 1024 * 1024, Recursion = 50, Statements = 1_000_000, OutputChars = 200,
    });

    // A generous time limit: these cases must stop at their own limit (statements, recursion, memory)
    // even on a loaded machine; the time limit has a test of its own.
    private static ToolResult Run(string js) => Code.Run(js, TimeSpan.FromSeconds(10), CancellationToken.None);

    [Fact]
    public void CodeExecuteReturnsTheLastValueAndConsoleOutput()
    {
        var r = Run("console.log('hi', {a: 1}); const xs = [1, 2, 3].map(x => x * 2); ({ sum: xs.reduce((a, b) => a + b, 0) })");
        Assert.True(r.Success, r.Error);
        Assert.Equal(12, (int)r.Output!["result"]!["sum"]!);
        Assert.Equal("hi {\"a\":1}\n", (string)r.Output!["console"]!);
    }

    [Theory]
    [InlineData("while (true) {}", "statements")]
    [InlineData("function f(n) { return f(n + 1); } f(0)", "recursed")]
    [InlineData("const a = []; while (true) { a.push('x'.repeat(100000)); }", "MB")]
    [InlineData("throw new Error('boom')", "boom")]
    [InlineData("this is not javascript", "Unexpected")]
    public void CodeExecuteStopsAtItsLimits(string js, string why)
    {
        var r = Run(js);
        Assert.False(r.Success);
        Assert.Contains(why, r.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void CodeExecuteStopsAtItsTimeLimit()
    {
        var slow = new CodeExecuteTool(new CodeLimits { Time = TimeSpan.FromMilliseconds(300), Statements = int.MaxValue });
        var r = slow.Run("let i = 0; while (true) { i++; }", TimeSpan.FromMilliseconds(300), CancellationToken.None);
        Assert.False(r.Success);
        Assert.Contains("longer than", r.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("typeof require")]
    [InlineData("typeof System")]
    [InlineData("typeof importNamespace")]
    [InlineData("typeof fetch")]
    [InlineData("typeof XMLHttpRequest")]
    [InlineData("typeof process")]
    public void CodeExecuteHasNoHostAccess(string js)
    {
        var r = Run(js);
        Assert.True(r.Success, r.Error);
        Assert.Equal("undefined", (string)r.Output!["result"]!);
    }

    [Fact]
    public void CodeExecuteCapsOutput()
    {
        var r = Run("for (let i = 0; i < 1000; i++) console.log('line ' + i); 1");
        Assert.True(r.Success);
        Assert.True((bool)r.Output!["truncated"]!);
        Assert.True(((string)r.Output!["console"]!).Length <= 200);
    }

    private async Task<(TenantSetup T, ToolCall Call)> SqlCallAsync(string name)
    {
        var t = await Kit.TenantAsync(db, name, ["sql_query"]);
        await t.AskAsync("query my data");
        var ctx = await t.Worker.ClaimTurnAsync("w-sql", 60, t.Tenant);
        Assert.NotNull(ctx);
        var skill = Assert.Single(await t.Worker.TurnSkillsAsync(ctx.TurnId, ctx.LeaseToken!.Value));
        Assert.Equal("sql", skill.ImplType);
        return (t, new ToolCall(ctx, ctx.LeaseToken!.Value, Guid.NewGuid(), "c", "sql_query", [], skill with { TimeoutMs = 1500 }, t.Worker));
    }

    private static Task<ToolResult> QueryAsync(ToolCall call, string sql, int maxRows = 100) =>
        new SqlQueryTool().RunAsync(call with { Arguments = new JsonObject { ["sql"] = sql, ["max_rows"] = maxRows } }, CancellationToken.None);

    [Fact]
    public async Task SqlQuerySeesOnlyTheTurnsTenant()
    {
        var other = await Kit.TenantAsync(db, "sql-other", []);
        await other.AskAsync("secret of the other tenant");
        var (t, call) = await SqlCallAsync("sql-mine");
        var r = await QueryAsync(call, "SELECT user_message, tenant_id FROM aos_agent.turn");
        Assert.True(r.Success, r.Error);
        var rows = r.Output!["rows"]!.AsArray();
        Assert.Single(rows);
        Assert.Equal("query my data", (string)rows[0]!["user_message"]!);
        Assert.Equal(t.Tenant.ToString(), (string)rows[0]!["tenant_id"]!);
        var all = await QueryAsync(call, "SELECT count(*) AS n FROM aos_auth.tenant");
        Assert.Equal(1, (int)all.Output!["rows"]![0]!["n"]!);
        Assert.Equal("aos_analytics", (string)(await QueryAsync(call, "SELECT current_user AS u")).Output!["rows"]![0]!["u"]!);
    }

    [Theory]
    [InlineData("DELETE FROM aos_agent.turn", "syntax")]
    [InlineData("SELECT 1) q; RESET ROLE; SELECT * FROM (SELECT 1", "multiple commands")]
    [InlineData("SELECT * FROM aos_agent.turn FOR UPDATE", "read-only")]
    [InlineData("SELECT aos_agent.send_message('00000000-0000-0000-0000-000000000001', 'x')", "permission denied")]
    [InlineData("SELECT * FROM aos_auth.kernel_secret", "permission denied")]
    [InlineData("SELECT pg_sleep(30)", "statement timeout")]
    [InlineData("WITH x AS (DELETE FROM aos_agent.step RETURNING 1) SELECT * FROM x", "")]
    public async Task SqlQueryCannotWriteEscalateOrRunLong(string sql, string why)
    {
        var (t, call) = await SqlCallAsync("sql-bad");
        var r = await QueryAsync(call, sql);
        Assert.False(r.Success);
        Assert.Contains(why, r.Error, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(["user_message"], await t.StepTypesAsync(call.TurnId)); // nothing was written
    }

    [Fact]
    public async Task SqlQueryLimitsRowsAndNeedsTheLease()
    {
        var (t, call) = await SqlCallAsync("sql-limits");
        var r = await QueryAsync(call, "SELECT g FROM generate_series(1, 50) g", maxRows: 10);
        Assert.True(r.Success, r.Error);
        Assert.Equal(10, r.Output!["rows"]!.AsArray().Count);
        Assert.True((bool)r.Output!["truncated"]!);
        await Assert.ThrowsAsync<LeaseLostException>(() => QueryAsync(call with { LeaseToken = Guid.NewGuid() }, "SELECT 1"));
        // the binding itself refuses a read-write transaction
        await using var conn = await db.OpenAsync(TestCluster.Worker);
        var e = await conn.ErrorAsync("SELECT aos_agent.bind_turn_tenant($1, $2)", call.TurnId, call.LeaseToken);
        Assert.Equal("AO011", e.SqlState);
        // a worker login does not inherit aos_analytics' privileges
        var denied = await conn.ErrorAsync("SELECT count(*) FROM aos_agent.turn");
        Assert.Equal("42501", denied.SqlState);
        Assert.Equal("completed", (string)(await t.App.GetTurnStateAsync(call.TurnId))["steps"]![0]!["status"]!);
    }

    [Fact]
    public async Task WebSearchUsesSearxngOrSaysWhatIsMissing()
    {
        await using var server = await LocalServer.StartAsync((app, _) => app.MapGet("/search", (string q, string format) => Results.Json(new
        {
            query = q,
            results = new[]
            {
                new { title = "asyncio docs", url = "https://docs.python.org/3/library/asyncio.html", content = "asyncio is a library" },
                new { title = "second", url = "https://example.org/2", content = "more" },
            },
        })));
        var call = new ToolCall(new TurnContext(), Guid.NewGuid(), Guid.NewGuid(), "c", "web_search",
            new JsonObject { ["query"] = "python asyncio", ["max_results"] = 1 }, new SkillImplementation { SkillKey = "web_search" }, null!);
        var r = await new WebSearchTool(server.BaseUri.ToString()).RunAsync(call, CancellationToken.None);
        Assert.True(r.Success, r.Error);
        var hit = Assert.Single(r.Output!["results"]!.AsArray());
        Assert.Equal("asyncio docs", (string)hit!["title"]!);
        Assert.Contains(server.Requests, q => q.Path.Contains("format=json", StringComparison.Ordinal) && q.Path.Contains("q=python%20asyncio", StringComparison.Ordinal));

        var none = await new WebSearchTool(null).RunAsync(call, CancellationToken.None);
        Assert.False(none.Success);
        Assert.Contains("AOS_SEARXNG_URL", none.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClockGivesUtcAndATimeZone()
    {
        var at = new DateTimeOffset(2025, 3, 1, 12, 0, 0, TimeSpan.Zero);
        var clock = new ClockTool(new FixedTime(at));
        var call = new ToolCall(new TurnContext(), Guid.NewGuid(), Guid.NewGuid(), "c", "clock", new JsonObject { ["timezone"] = "Europe/Paris" },
            new SkillImplementation { SkillKey = "clock" }, null!);
        var r = await clock.RunAsync(call, CancellationToken.None);
        Assert.Equal("2025-03-01T12:00:00.0000000+00:00", (string)r.Output!["utc"]!);
        Assert.StartsWith("2025-03-01T13:00:00", (string)r.Output!["local"]!, StringComparison.Ordinal);
        var bad = await clock.RunAsync(call with { Arguments = new JsonObject { ["timezone"] = "Mars/Olympus" } }, CancellationToken.None);
        Assert.False(bad.Success);
    }

    private sealed class FixedTime(DateTimeOffset at) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => at;
    }
}
