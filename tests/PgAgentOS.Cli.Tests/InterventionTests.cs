using System.Text.Json.Nodes;

namespace PgAgentOS.Cli.Tests;

/// <summary>inject, override, pause, resume, rate and flag: their output, JSON and bad input.</summary>
public sealed class InterventionTests(AgentsDatabase db) : IClassFixture<AgentsDatabase>
{
    private readonly Aos _aos = Aos.For(db);

    [Fact]
    public async Task PeopleInTheLoop()
    {
        string conv, turn;
        await using (var worker = new FakeWorker(db))
        {
            conv = Expect.Ok(await _aos.RunAsync("conversation", "start", "echo", "--title", "interventions")).Out.Trim();
            var sent = JsonNode.Parse(Expect.Ok(await _aos.RunAsync("send", conv, "what is 6 times 7?", "--json")).Out)!;
            turn = (string)sent["turn_id"]!;
        }
        var c = conv[..8];
        var t = turn[..8];

        Golden.Check("inject", Expect.Ok(await _aos.RunAsync("inject", c, "Answer in French from now on.")));
        Golden.Check("inject-user", Expect.Ok(await _aos.RunAsync("inject", c, "Also: why?", "--as", "user", "--json")));
        Golden.Check("override", Expect.Ok(await _aos.RunAsync("override", t, "42", "--reason", "the echo was not an answer")));
        Golden.Check("rate", Expect.Ok(await _aos.RunAsync("rate", t, "4", "--aspects", "{\"accuracy\": 5}")));
        Golden.Check("flag-turn", Expect.Ok(await _aos.RunAsync("flag", t, "answer was an echo", "--severity", "low")));
        Golden.Check("flag-conversation", Expect.Ok(await _aos.RunAsync("flag", conv, "test conversation", "--json")));
        Golden.Check("pause", Expect.Ok(await _aos.RunAsync("pause", c, "--reason", "checking")));
        Golden.Check("pause-again", Expect.Code(4, await _aos.RunAsync("pause", c)));
        // A message to a paused conversation waits; no worker takes it.
        var queued = Expect.Ok(await _aos.RunAsync("send", c, "are you there?", "--no-wait")).Out.Trim();
        Golden.Check("resume", Expect.Ok(await _aos.RunAsync("resume", c)));
        Golden.Check("resume-again", Expect.Code(4, await _aos.RunAsync("resume", c)));
        Golden.Check("timeline-interventions", Expect.Ok(await _aos.RunAsync("timeline", c)));
        Assert.True(Guid.TryParse(queued, out _));

        Golden.Check("override-unknown-turn", Expect.Code(3, await _aos.RunAsync("override", Guid.NewGuid().ToString(), "x")));
        Golden.Check("override-open-turn", Expect.Code(4, await _aos.RunAsync("override", queued, "x")));
        Golden.Check("rate-unknown-turn", Expect.Code(3, await _aos.RunAsync("rate", "0000000a", "3")));
        Golden.Check("flag-unknown", Expect.Code(3, await _aos.RunAsync("flag", "0000000a", "nothing")));
        Golden.Check("flag-not-an-id", Expect.Code(2, await _aos.RunAsync("flag", "yesterday", "nothing")));
        Golden.Check("inject-unknown", Expect.Code(3, await _aos.RunAsync("inject", Guid.NewGuid().ToString(), "hello")));
        // Bad input changed nothing: the timeline is as it was.
        Golden.Check("timeline-interventions", Expect.Ok(await _aos.RunAsync("timeline", c)));
        Expect.Ok(await _aos.RunAsync("tenant", "create", "other"));
        Golden.Check("pause-wrong-tenant", Expect.Code(3, await _aos.With("AOS_TENANT", "other").RunAsync("pause", c)));
    }
}
