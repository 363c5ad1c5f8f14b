using System.Text.Json.Nodes;

namespace PgAgentOS.Cli.Tests;

/// <summary>aos tail: recent steps, then live steps, decisions and streamed answers, by tenant, agent or conversation.</summary>
public sealed class TailTests(AgentsDatabase db) : IClassFixture<AgentsDatabase>
{
    private readonly Aos _aos = Aos.For(db);

    [Fact]
    public async Task TailFollowsEverythingLive()
    {
        await using var worker = new FakeWorker(db);
        var conv = Expect.Ok(await _aos.RunAsync("conversation", "start", "researcher")).Out.Trim();
        Expect.Ok(await _aos.RunAsync("send", conv, "first message"));

        // The latest steps, then nothing new for three seconds.
        Golden.Check("tail-last", Expect.Ok(await _aos.RunAsync("tail", "--last", "2", "--for", "3")));

        // Live: every tenant (there is one), a tool call, its approval, the tool result and the streamed answer.
        using var tail = _aos.Start("tail", "--last", "0", "--for", "30");
        await tail.WaitForAsync("Following all tenants (1)");
        Expect.Ok(await _aos.RunAsync("send", conv, "please search for tail", "--no-wait"));
        await tail.WaitForAsync("pending");
        var step = JsonNode.Parse(Expect.Ok(await _aos.RunAsync("approvals", "--json")).Out)![0]!["step_id"]!.ToString();
        Expect.Ok(await _aos.RunAsync("approve", step, "--note", "from the tail test"));
        // Once streamed, once as the recorded answer.
        await tail.WaitForAsync("Echo: please search for tail", times: 2);
        tail.Interrupt();
        var r = Expect.Ok(await tail.Result);
        Golden.Check("tail-live", r);
        Assert.Contains("streaming", r.Out, StringComparison.Ordinal);
        Assert.Contains("decision", r.Out, StringComparison.Ordinal);
        Assert.Contains("approved by human — from the tail test", r.Out, StringComparison.Ordinal);
    }

}

/// <summary>aos tail --json of one conversation, and tail's bad input.</summary>
public sealed class TailJsonTests(AgentsDatabase db) : IClassFixture<AgentsDatabase>
{
    private readonly Aos _aos = Aos.For(db);

    [Fact]
    public async Task TailOfOneConversationAsJson()
    {
        await using var worker = new FakeWorker(db);
        var conv = Expect.Ok(await _aos.RunAsync("conversation", "start", "echo")).Out.Trim();
        var other = Expect.Ok(await _aos.RunAsync("conversation", "start", "echo")).Out.Trim();

        using var tail = _aos.Start("tail", "--conversation", conv[..8], "--json", "--last", "0", "--for", "30", "--count", "2");
        await tail.WaitForAsync("\"type\":\"following\"");
        Expect.Ok(await _aos.RunAsync("send", other, "not this one"));
        Expect.Ok(await _aos.RunAsync("send", conv, "this one"));
        var r = Expect.Ok(await tail.Result);
        var events = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal("following", (string?)events[0]["type"]);
        var steps = events.Where(e => (string?)e["type"] == "step").ToList();
        Assert.Equal(["user_message", "respond"], steps.Select(s => (string?)s["step_type"]));
        Assert.All(steps, s => Assert.Equal(conv, (string?)s["conversation_id"]));
        var deltas = events.Where(e => (string?)e["type"] == "delta").ToList();
        Assert.Equal("Echo: this one", string.Concat(deltas.Select(d => (string?)d["delta"])));
        Assert.DoesNotContain("not this one", r.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TailBadInput()
    {
        Golden.Check("tail-unknown-agent", Expect.Code(3, await _aos.RunAsync("tail", "--agent", "ghost", "--for", "1")));
        Golden.Check("tail-unknown-conversation", Expect.Code(3, await _aos.RunAsync("tail", "--conversation", Guid.NewGuid().ToString(), "--for", "1")));
        Golden.Check("tail-bad-last", Expect.Code(2, await _aos.RunAsync("tail", "--last", "-1")));
    }
}
