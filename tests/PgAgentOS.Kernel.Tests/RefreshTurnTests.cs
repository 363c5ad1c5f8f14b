using System.Text.Json.Nodes;
using Npgsql;

namespace PgAgentOS.Kernel.Tests;

/// <summary>
/// refresh_turn gives a worker the part of its turn's context that can change while it holds the
/// turn: run_turn's context without the earlier turns' messages, which the claim's context carries
/// (its first history_messages messages).
/// </summary>
public sealed class RefreshTurnTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    /// <summary>A tool-using turn through the worker's functions, answered unless told otherwise.</summary>
    private static async Task<(Guid Turn, Guid Token, JsonNode Claim)> ToolTurnAsync(NpgsqlConnection admin, NpgsqlConnection worker, World w,
        Guid conversation, string question, bool answer)
    {
        var turn = await admin.SendAsync(conversation, question);
        var claim = await worker.JsonAsync("SELECT aos_agent.claim_turn('refresh-test', 60, $1)", w.Tenant);
        Assert.Equal(turn.ToString(), (string?)claim["turn_id"]);
        var token = Guid.Parse((string)claim["lease_token"]!);
        var ticket = Guid.Parse(await worker.ScalarAsync<string>("""
            SELECT aos_agent.record_response($1, $2, '{"tool_calls": [{"name": "web_search", "arguments": {"query": "q"}}]}') #>> '{tool_calls,0,ticket}'
            """, turn, token));
        await worker.ExecAsync("SELECT aos_agent.record_tool_result($1, 'web_search', '{\"hits\": 3}', true, NULL, $2, $3)", turn, token, ticket);
        if (answer)
        {
            await worker.ExecAsync("SELECT aos_agent.record_response($1, $2, jsonb_build_object('text', 'answer to ' || $3::text))", turn, token, question);
        }
        return (turn, token, claim);
    }

    [Fact]
    public async Task ARefreshIsTheFullContextWithoutTheEarlierTurns()
    {
        await using var admin = await db.OpenAsync(TestCluster.Admin);
        var w = await K.NewWorldAsync(admin, """{"auto_approve_tools": true}""", "{web_search}");
        var conversation = await admin.NewConversationAsync(w.Agent);
        await using var worker = await db.OpenAsync(TestCluster.Worker);
        await ToolTurnAsync(admin, worker, w, conversation, "one", answer: true);
        await ToolTurnAsync(admin, worker, w, conversation, "two", answer: true);
        var (turn, token, claim) = await ToolTurnAsync(admin, worker, w, conversation, "three", answer: false);

        var full = await worker.JsonAsync("SELECT aos_agent.run_turn($1, $2)", turn, token);
        var part = await worker.JsonAsync("SELECT aos_agent.refresh_turn($1, $2)", turn, token);

        // two earlier turns of four messages each (question, tool call, result, answer)
        Assert.True((bool)full["history_included"]!);
        Assert.Equal(8, (int)full["history_messages"]!);
        Assert.Equal(8, (int)claim["history_messages"]!);
        Assert.False((bool)part["history_included"]!);
        Assert.Equal(0, (int)part["history_messages"]!);

        // the claim's history, then the refreshed turn, is run_turn's message list
        var history = claim["messages"]!.AsArray().Take(8).Select(m => m!.ToJsonString());
        var merged = history.Concat(part["messages"]!.AsArray().Select(m => m!.ToJsonString())).ToList();
        Assert.Equal(full["messages"]!.AsArray().Select(m => m!.ToJsonString()).ToList(), merged);
        Assert.Equal(3, part["messages"]!.AsArray().Count);   // "three", the tool call, its result
        Assert.Equal("three", (string?)part["messages"]![0]!["content"]);

        // everything else is the same
        foreach (var key in full.AsObject().Select(p => p.Key).Where(k => k is not ("messages" or "history_included" or "history_messages")))
        {
            Assert.True(JsonNode.DeepEquals(full[key], part[key]), $"{key}: {full[key]?.ToJsonString()} <> {part[key]?.ToJsonString()}");
        }
        Assert.Equal(full.AsObject().Count, part.AsObject().Count);
    }

    [Fact]
    public async Task ARefreshNeedsTheTurnsLiveLease()
    {
        await using var admin = await db.OpenAsync(TestCluster.Admin);
        var w = await K.NewWorldAsync(admin, """{"auto_approve_tools": true}""", "{web_search}");
        var conversation = await admin.NewConversationAsync(w.Agent);
        await using var worker = await db.OpenAsync(TestCluster.Worker);
        var (turn, token, _) = await ToolTurnAsync(admin, worker, w, conversation, "q", answer: false);

        var e = await worker.RefusedAsync("22004", "SELECT aos_agent.refresh_turn($1, NULL)", turn);
        Assert.Contains("lease token", e.MessageText, StringComparison.Ordinal);
        await worker.RefusedAsync("22004", "SELECT aos_agent.refresh_turn(NULL, $1)", token);
        await worker.RefusedAsync("AO004", "SELECT aos_agent.refresh_turn($1, $2)", turn, Guid.NewGuid());
        // applications drive turns by hand with run_turn; refresh_turn is the worker's
        await admin.RefusedAsync("42501", "SELECT aos_agent.refresh_turn($1, $2)", turn, token);

        // once the turn is answered, there is nothing to refresh
        await worker.ExecAsync("SELECT aos_agent.record_response($1, $2, '{\"text\": \"done\"}')", turn, token);
        var done = await worker.RefusedAsync("AO003", "SELECT aos_agent.refresh_turn($1, $2)", turn, token);
        Assert.Contains("completed", done.MessageText, StringComparison.Ordinal);
    }
}
