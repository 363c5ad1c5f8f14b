using System.Text.Json.Nodes;

namespace PgAgentOS.Cli.Tests;

/// <summary>A database with a tenant acme, a persona and three agents: researcher (web_search), echo and silent (no tools).</summary>
public sealed class AgentsDatabase : KernelDatabase
{
    /// <inheritdoc />
    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        var aos = Aos.For(this);
        Expect.Ok(await aos.RunAsync("tenant", "create", "acme"));
        Expect.Ok(await aos.RunAsync("persona", "create", "helper", "--prompt", "You help."));
        Expect.Ok(await aos.RunAsync("agent", "create", "researcher", "--persona", "helper", "--tools", "web_search", "--model", "builtin/scripted"));
        Expect.Ok(await aos.RunAsync("agent", "create", "echo", "--persona", "helper", "--model", "builtin/scripted"));
        Expect.Ok(await aos.RunAsync("agent", "create", "silent", "--persona", "helper", "--model", "builtin/scripted"));
    }
}

/// <summary>conversation, send, chat, timeline, approvals, approve and reject, against a stand-in worker.</summary>
public sealed class ConversationTests(AgentsDatabase db) : IClassFixture<AgentsDatabase>
{
    private readonly Aos _aos = Aos.For(db);

    private async Task<string> StartAsync(string agent) => Expect.Ok(await _aos.RunAsync("conversation", "start", agent)).Out.Trim();

    [Fact]
    public async Task SendWaitsForTheStreamedAnswer()
    {
        await using var worker = new FakeWorker(db);
        var conv = await StartAsync("echo");
        Assert.True(Guid.TryParse(conv, out _), conv);

        Golden.Check("send", Expect.Ok(await _aos.RunAsync("send", conv[..8], "hello there")));

        var json = JsonNode.Parse(Expect.Ok(await _aos.RunAsync("send", conv, "and again", "--json")).Out)!;
        Assert.Equal("completed", (string?)json["status"]);
        Assert.Equal("Echo: and again", (string?)json["answer"]);
        Assert.Equal(230, (long)json["tokens_used"]!);

        var turn = Expect.Ok(await _aos.RunAsync("send", conv, "later", "--no-wait")).Out.Trim();
        Assert.True(Guid.TryParse(turn, out _), turn);
        await WaitAsync(async () => (await _aos.RunAsync("timeline", conv, "--json")).Out.Contains("Echo: later", StringComparison.Ordinal));

        Golden.Check("timeline", Expect.Ok(await _aos.RunAsync("timeline", conv)));
        var timeline = JsonNode.Parse(Expect.Ok(await _aos.RunAsync("timeline", conv, "--json")).Out)!;
        Assert.Equal(6, timeline["steps"]!.AsArray().Count);
        Golden.Check("conversation-list", Expect.Ok(await _aos.RunAsync("conversation", "list", "--agent", "echo")));
    }

    [Fact]
    public async Task ChatAsksForApprovalAndStreamsTheAnswer()
    {
        await using var worker = new FakeWorker(db);
        var r = Expect.Ok(await _aos.RunAsync("please search for asyncio\ny\nthanks\n\n", CancellationToken.None, "chat", "researcher"));
        Golden.Check("chat-approve", r);
        Assert.Contains("researcher> Echo: please search for asyncio", r.Out, StringComparison.Ordinal);
        Assert.Contains("researcher> Echo: thanks", r.Out, StringComparison.Ordinal);

        var rejected = Expect.Ok(await _aos.RunAsync("search something else\nn\n", CancellationToken.None, "chat", "researcher"));
        Golden.Check("chat-reject", rejected);
        Assert.Contains("rejected", rejected.Out, StringComparison.Ordinal);

        var yes = Expect.Ok(await _aos.RunAsync("search with yes\n", CancellationToken.None, "chat", "researcher", "--yes"));
        Assert.Contains("approving web_search (--yes)", yes.Out, StringComparison.Ordinal);
        Assert.Contains("researcher> Echo: search with yes", yes.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AQueuedApprovalIsDecidedFromTheQueue()
    {
        string conv;
        await using (var worker = new FakeWorker(db))
        {
            // The input ends while the tool call waits: it stays in the queue for someone else.
            var r = Expect.Ok(await _aos.RunAsync("search the queue\n", CancellationToken.None, "chat", "researcher"));
            Assert.Contains("no answer: the call waits in the approval queue", r.Out, StringComparison.Ordinal);
            conv = System.Text.RegularExpressions.Regex.Match(r.Out, @"in conversation ([0-9a-f-]{36})").Groups[1].Value;
        }

        Golden.Check("approvals", Expect.Ok(await _aos.RunAsync("approvals")));
        var queue = JsonNode.Parse(Expect.Ok(await _aos.RunAsync("approvals", "--json")).Out)!.AsArray();
        var step = (string)Assert.Single(queue)!["step_id"]!;
        Assert.Equal("web_search", (string?)queue[0]!["tool_name"]);

        Golden.Check("approve", Expect.Ok(await _aos.RunAsync("approve", step[..8], "--note", "fine")));
        // A decided step cannot be decided again, and nothing changes.
        Golden.Check("approve-again", Expect.Code(4, await _aos.RunAsync("reject", step)));
        Golden.Check("approve-unknown-step", Expect.Code(3, await _aos.RunAsync("approve", Guid.NewGuid().ToString())));
        Golden.Check("approve-unknown-prefix", Expect.Code(3, await _aos.RunAsync("approve", "00000000")));
        Golden.Check("approve-not-an-id", Expect.Code(2, await _aos.RunAsync("approve", "step-one")));
        Golden.Check("approvals-empty", Expect.Ok(await _aos.RunAsync("approvals")));

        // The approval sent the turn back to the queue; a worker finishes it.
        await using (var worker = new FakeWorker(db))
        {
            await WaitAsync(async () => (await _aos.RunAsync("timeline", conv, "--json")).Out.Contains("Echo: search the queue", StringComparison.Ordinal));
        }
        var timeline = Expect.Ok(await _aos.RunAsync("timeline", conv));
        Assert.Contains("approved (human)", timeline.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SendErrors()
    {
        var conv = await StartAsync("silent");
        Golden.Check("send-unknown-conversation", Expect.Code(3, await _aos.RunAsync("send", Guid.NewGuid().ToString(), "hi")));
        Golden.Check("send-timeout", Expect.Code(10, await _aos.RunAsync("send", conv, "nobody answers", "--timeout", "1")));
        // With no worker at all, the wait says so after a few seconds.
        var lonely = Expect.Code(10, await _aos.RunAsync("send", await StartAsync("silent"), "is anyone there?", "--timeout", "10"));
        Assert.Contains("no worker has taken this turn", lonely.Out, StringComparison.Ordinal);
        Assert.Contains("aos worker", lonely.Out, StringComparison.Ordinal);
        Golden.Check("chat-unknown-agent", Expect.Code(3, await _aos.RunAsync("chat", "nobody")));
        Golden.Check("timeline-unknown", Expect.Code(3, await _aos.RunAsync("timeline", "abcdef12")));
    }

    internal static async Task WaitAsync(Func<Task<bool>> condition)
    {
        for (var i = 0; i < 200; i++)
        {
            if (await condition())
            {
                return;
            }
            await Task.Delay(50);
        }
        Assert.Fail("the condition did not become true within 10 s");
    }
}
