using System.Text.Json.Nodes;

namespace PgAgentOS.Cli.Tests;

/// <summary>aos stats and aos verify (with checkpoints), including a tampered log.</summary>
public sealed class StatsAndVerifyTests(AgentsDatabase db) : IClassFixture<AgentsDatabase>
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

    [Fact]
    public async Task VerifyExportsAndChecksCheckpointsAndCatchesTampering()
    {
        string conv;
        await using (var worker = new FakeWorker(db))
        {
            conv = Expect.Ok(await _aos.RunAsync("conversation", "start", "echo")).Out.Trim();
            Expect.Ok(await _aos.RunAsync("send", conv, "something to verify"));
        }
        Golden.Check("verify", Expect.Ok(await _aos.RunAsync("verify")));
        var file = Path.Combine(Path.GetTempPath(), $"aos-checkpoint-{Guid.NewGuid():N}.json");
        try
        {
            Golden.Check("verify-export", Expect.Ok(await _aos.RunAsync("verify", "--export", file)));
            var cp = JsonNode.Parse(await File.ReadAllTextAsync(file))!;
            Assert.Equal(1, (int)cp["checkpoint_no"]!);
            Golden.Check("verify-checkpoint", Expect.Ok(await _aos.RunAsync("verify", "--checkpoint", file)));
            var ok = JsonNode.Parse(Expect.Ok(await _aos.RunAsync("verify", "--json")).Out)!;
            Assert.True((bool)ok["ok"]!);

            // A superuser cuts the end off a conversation's history and rewrites its head to match:
            // the exported checkpoint knows better.
            await using (var conn = await db.OpenAsync(null))
            {
                await conn.ExecAsync("SET session_replication_role = replica");
                await conn.ExecAsync(
                    "DELETE FROM aos_core.event_log WHERE chain_id = $1::uuid AND seq = (SELECT max(seq) FROM aos_core.event_log WHERE chain_id = $1::uuid)", conv);
                await conn.ExecAsync(
                    "UPDATE aos_agent.conversation c SET event_seq = e.seq, event_head = e.hash "
                    + "FROM (SELECT seq, hash FROM aos_core.event_log WHERE chain_id = $1::uuid ORDER BY seq DESC LIMIT 1) e "
                    + "WHERE c.conversation_id = $1::uuid", conv);
            }
            Golden.Check("verify-checkpoint-tampered", Expect.Code(9, await _aos.RunAsync("verify", "--checkpoint", file)));

            // Then edits an event in the middle: the chain breaks there.
            await using (var conn = await db.OpenAsync(null))
            {
                await conn.ExecAsync("SET session_replication_role = replica");
                await conn.ExecAsync("UPDATE aos_core.event_log SET payload = payload || '{\"edited\": true}' WHERE chain_id = $1::uuid AND seq = 2", conv);
            }
            Golden.Check("verify-tampered", Expect.Code(9, await _aos.RunAsync("verify")));
            var bad = JsonNode.Parse(Expect.Code(9, await _aos.RunAsync("verify", "--json")).Out)!;
            Assert.False((bool)bad["ok"]!);
        }
        finally
        {
            File.Delete(file);
        }
        Golden.Check("verify-checkpoint-missing-file", Expect.Code(2, await _aos.RunAsync("verify", "--checkpoint", "/nonexistent/cp.json")));
    }
}
