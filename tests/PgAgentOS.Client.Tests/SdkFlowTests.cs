using System.Text.Json.Nodes;
using PgAgentOS.Client;

namespace PgAgentOS.Client.Tests;

/// <summary>The SDK end to end: a tenant, an agent, a worker-driven turn with a tool call and an approval.</summary>
public sealed class SdkFlowTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    [Fact]
    public async Task AWorkerTurnWithAnApprovedToolCallCompletes()
    {
        await using var admin = new AosClient(db.DataSource(TestCluster.Admin));
        var tenant = await admin.CreateTenantAsync("sdk-flow");
        var app = admin.ForTenant(tenant);
        var persona = await app.CreatePersonaAsync("helper", "You help.");
        var agent = await app.CreateAgentAsync(tenant, "researcher", persona, ["web_search"], model: "builtin/scripted");
        var conv = await app.StartConversationAsync(agent);
        var turn = await app.SendMessageAsync(conv, "find asyncio docs");

        await using var worker = new AosClient(db.DataSource(TestCluster.Worker));
        var ctx = await worker.ClaimTurnAsync("w1", 30, tenant);
        Assert.NotNull(ctx);
        Assert.Equal(turn, ctx.TurnId);
        Assert.Equal(tenant, ctx.TenantId);
        Assert.NotNull(ctx.LeaseToken);
        Assert.Equal("builtin", ctx.Model.Provider);
        Assert.Single(ctx.Tools);
        Assert.Equal("web_search", ctx.Tools[0].Function.Name);
        Assert.Equal("user", ctx.Messages[0].Role);

        var r = await worker.RecordResponseAsync(turn, ctx.LeaseToken, new ModelResponse
        {
            Thinking = "search first",
            ToolCalls = [new ModelToolCall("call_1", "web_search", new JsonObject { ["query"] = "asyncio" })],
            Usage = new Usage(100, 20),
        });
        Assert.Equal("waiting_approval", r.Status);
        var decision = Assert.Single(r.ToolCalls);
        Assert.Equal("awaiting_approval", decision.Status);
        Assert.Null(decision.Ticket);

        // The worker's lease is gone while the turn waits.
        await Assert.ThrowsAsync<LeaseLostException>(() => worker.HeartbeatAsync(turn, ctx.LeaseToken!.Value));
        Assert.Null(await worker.ClaimTurnAsync("w2", 30, tenant));

        var pending = Assert.Single(await app.PendingApprovalsAsync());
        Assert.Equal(decision.StepId, pending.StepId);
        await app.ApproveStepAsync(decision.StepId, true, note: "ok");

        var ctx2 = await worker.ClaimTurnAsync("w2", 30, tenant);
        Assert.NotNull(ctx2);
        Assert.Equal(2, ctx2.Attempt);
        var call = Assert.Single(ctx2.ApprovedToolCalls);
        var ticket = await worker.BeginToolExecutionAsync(turn, ctx2.LeaseToken!.Value, call.StepId, call.Name, JsonNode.Parse(call.Arguments.GetRawText())!);
        await worker.RecordToolResultAsync(turn, "web_search", new JsonObject { ["results"] = new JsonArray("docs.python.org") },
            leaseToken: ctx2.LeaseToken, ticket: ticket);
        var done = await worker.RecordResponseAsync(turn, ctx2.LeaseToken, new ModelResponse { Text = "Read docs.python.org", Usage = new Usage(200, 30) });
        Assert.Equal("completed", done.Status);

        var state = await app.GetTurnStateAsync(turn);
        Assert.Equal("completed", (string?)state["status"]);
        Assert.Equal(350, (long)state["tokens_used"]!);
        var steps = state["steps"]!.AsArray().Select(s => (string)s!["step_type"]!).ToList();
        Assert.Equal(["user_message", "think", "tool_call", "tool_result", "respond"], steps);
        Assert.True((await app.VerifyEventChainAsync()).Ok);
        var analytics = await app.GetAgentAnalyticsAsync(agent);
        Assert.Equal(1, (int)analytics["total_turns"]!);
        Assert.Equal(1, (int)analytics["tool_usage"]!["web_search"]!);
    }

    [Fact]
    public async Task KernelErrorsBecomeTypedExceptions()
    {
        await using var admin = new AosClient(db.DataSource(TestCluster.Admin));
        var tenant = await admin.CreateTenantAsync("sdk-errors");
        var app = admin.ForTenant(tenant);
        var e = await Assert.ThrowsAsync<AosNotFoundException>(() => app.SendMessageAsync(Guid.NewGuid(), "hi"));
        Assert.Equal("AO002", e.SqlState);
        Assert.NotNull(e.Hint);
        await Assert.ThrowsAsync<AosArgumentException>(() => app.CreateAgentAsync(tenant, "bad name!"));
        var unbound = new AosClient(db.DataSource(TestCluster.App));
        var denied = await Assert.ThrowsAsync<AosDeniedException>(() => unbound.CreateAgentAsync(tenant, "x"));
        Assert.Equal("AO001", denied.SqlState);
    }

    [Fact]
    public async Task AClaimThatAnnouncesFinishedTurnsRefusesWhatItCannotDo()
    {
        var worker = new AosClient(db.DataSource(TestCluster.Worker));
        await Assert.ThrowsAsync<ArgumentNullException>(() => worker.ClaimTurnAsync("w", 30, null, null!));
        // joined to the caller's transaction, a claim may not change that transaction's durability or notify in it
        await using var conn = await db.OpenAsync(TestCluster.Worker);
        await using var tx = await conn.BeginTransactionAsync();
        await Assert.ThrowsAsync<InvalidOperationException>(() => worker.InTransaction(conn, tx).ClaimTurnAsync("w", 30, null, [Guid.NewGuid()]));
        // nothing finished: an ordinary claim, which finds no turn of an unknown tenant
        Assert.Null(await worker.InTransaction(conn, tx).ClaimTurnAsync("w", 30, Guid.NewGuid(), []));
    }

    [Fact]
    public async Task AWorkersCompletionHandsBackTheNextTurnInsteadOfNotifyingInItsTransaction()
    {
        await using var admin = new AosClient(db.DataSource(TestCluster.Admin));
        var tenant = await admin.CreateTenantAsync("sdk-next");
        var app = admin.ForTenant(tenant);
        var agent = await app.CreateAgentAsync(tenant, "answerer", model: "builtin/scripted");
        var conv = await app.StartConversationAsync(agent);
        var first = await app.SendMessageAsync(conv, "one");
        var second = await app.SendMessageAsync(conv, "two");

        await using var worker = new AosClient(db.DataSource(TestCluster.Worker));
        await using var listener = await db.OpenAsync(TestCluster.Worker);
        var heard = new List<string>();
        listener.Notification += (_, e) => heard.Add(e.Channel + " " + e.Payload);
        await listener.ExecAsync("LISTEN aos_turn_ready");

        var ctx = await worker.ClaimTurnAsync("w-next", 30, tenant);
        Assert.Equal(first, ctx!.TurnId);
        var done = await worker.RecordResponseAsync(first, ctx.LeaseToken, new ModelResponse { Text = "1" });
        Assert.Equal("completed", done.Status);
        Assert.Equal(second, done.NextTurnId);
        await listener.WaitAsync(300);
        Assert.DoesNotContain($"aos_turn_ready {second}", heard);   // the worker wakes others after its commit

        // By hand (no lease token) the kernel notifies in the transaction, as nobody else would.
        await app.RunTurnAsync(second);
        await app.SendMessageAsync(conv, "three");
        await app.CompleteTurnAsync(second, "2");
        await listener.WaitAsync(2000);
        Assert.Contains(heard, h => h.StartsWith("aos_turn_ready ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AContextRefreshedAfterAToolKeepsTheClaimsHistory()
    {
        await using var admin = new AosClient(db.DataSource(TestCluster.Admin));
        var tenant = await admin.CreateTenantAsync("sdk-refresh");
        var app = admin.ForTenant(tenant);
        var persona = await app.CreatePersonaAsync("helper", "You help.");
        var agent = await app.CreateAgentAsync(tenant, "researcher", persona, ["web_search"], new JsonObject { ["auto_approve_tools"] = true },
            model: "builtin/scripted");
        var conv = await app.StartConversationAsync(agent);
        await using var worker = new AosClient(db.DataSource(TestCluster.Worker));
        await app.SendMessageAsync(conv, "first");
        var first = (await worker.ClaimTurnAsync("w1", 30, tenant))!;
        await worker.RecordResponseAsync(first.TurnId, first.LeaseToken, new ModelResponse { Text = "first answer" });

        var turn = await app.SendMessageAsync(conv, "second");
        var ctx = (await worker.ClaimTurnAsync("w1", 30, tenant))!;
        var lease = ctx.LeaseToken!.Value;
        Assert.Equal(2, ctx.HistoryMessages);   // the first turn's question and answer
        var r = await worker.RecordResponseAsync(turn, lease, new ModelResponse
        {
            ToolCalls = [new ModelToolCall("c1", "web_search", new JsonObject { ["query"] = "q" })],
        });
        var (_, merged) = await worker.RecordToolResultAndContextAsync(turn, "web_search", new JsonObject { ["hits"] = 1 }, true, null, lease,
            r.ToolCalls[0].Ticket!.Value, held: ctx);

        // the same context as a full read: history, then this turn's question, tool call and result
        var full = await worker.RunTurnAsync(turn, lease);
        static string Messages(TurnContext c) => System.Text.Json.JsonSerializer.Serialize(c.Messages);
        Assert.True(merged.HistoryIncluded);
        Assert.Equal(2, merged.HistoryMessages);
        Assert.Equal(5, merged.Messages.Count);
        Assert.Equal(Messages(full), Messages(merged));
        Assert.Equal(lease, merged.LeaseToken);
        Assert.Equal(Messages(full), Messages(await worker.RefreshTurnAsync(turn, lease, ctx)));
        // a held context that cannot complete a refresh: the whole context is read instead
        Assert.Equal(Messages(full), Messages(await worker.RefreshTurnAsync(turn, lease, ctx with { HistoryMessages = null })));

        // bad input: only a full context of the same turn completes a refreshed one
        var part = full with { HistoryIncluded = false, HistoryMessages = 0, Messages = [.. full.Messages.Skip(2)] };
        Assert.Throws<ArgumentNullException>(() => part.WithHistoryOf(null!));
        Assert.Throws<ArgumentException>(() => part.WithHistoryOf(ctx with { TurnId = Guid.NewGuid() }));
        Assert.Throws<ArgumentException>(() => part.WithHistoryOf(ctx with { HistoryMessages = null }));
        Assert.Throws<ArgumentException>(() => part.WithHistoryOf(part));
        Assert.Throws<ArgumentException>(() => part.WithHistoryOf(ctx with { HistoryMessages = ctx.Messages.Count + 1 }));
        Assert.Same(full, full.WithHistoryOf(ctx));
    }
}
