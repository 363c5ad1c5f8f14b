using System.Text.Json.Nodes;

namespace PgAgentOS.Cli.Tests;

/// <summary>aos stats.</summary>
public sealed class StatsTests(AgentsDatabase db) : IClassFixture<AgentsDatabase>
{
    private readonly Aos _aos = Aos.For(db);

    [Fact]
    public async Task StatsShowTablesAndCharts()
    {
        await using (var worker = new FakeWorker(db))
        {
            var conv = Expect.Ok(await _aos.RunAsync("conversation", "start", "researcher")).Out.Trim();
            Expect.Ok(await _aos.RunAsync("send", conv, "hello"));
            Expect.Ok(await _aos.RunAsync("send", conv, "and hello again"));
            var waiting = _aos.RunAsync("send", conv, "please search stats");
            await ConversationTests.WaitAsync(async () => (await _aos.RunAsync("approvals", "--json")).Out.Contains("step_id", StringComparison.Ordinal));
            var step = JsonNode.Parse((await _aos.RunAsync("approvals", "--json")).Out)![0]!["step_id"]!.ToString();
            Expect.Ok(await _aos.RunAsync("approve", step));
            Expect.Ok(await waiting);
        }

        var r = Expect.Ok(await _aos.RunAsync("stats"));
        Assert.Contains("turns per agent", r.Out, StringComparison.Ordinal);
        Assert.Contains("tokens per agent", r.Out, StringComparison.Ordinal);
        Assert.Contains("turns per hour", r.Out, StringComparison.Ordinal);
        Assert.Contains("researcher", r.Out, StringComparison.Ordinal);
        var json = JsonNode.Parse(Expect.Ok(await _aos.RunAsync("stats", "--json")).Out)!;
        var researcher = json["agents"]!.AsArray().Single(a => (string?)a!["agent_name"] == "researcher")!;
        Assert.Equal(3, (int)researcher["turns"]!);
        Assert.Equal(3, (int)researcher["completed_turns"]!);

        var agent = Expect.Ok(await _aos.RunAsync("stats", "researcher", "--days", "30"));
        Assert.Contains("tool calls", agent.Out, StringComparison.Ordinal);
        Assert.Contains("web_search", agent.Out, StringComparison.Ordinal);
        var analytics = JsonNode.Parse(Expect.Ok(await _aos.RunAsync("stats", "researcher", "--json")).Out)!;
        Assert.Equal(3, (int)analytics["total_turns"]!);
        Assert.Equal(1, (int)analytics["tool_usage"]!["web_search"]!);
        Assert.Equal(100m, (decimal)analytics["success_rate"]!);
        Golden.Check("stats-unknown-agent", Expect.Code(3, await _aos.RunAsync("stats", "ghost")));
    }
}
