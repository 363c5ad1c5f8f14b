using System.Text.Json.Nodes;

namespace PgAgentOS.Cli.Tests;

/// <summary>
/// aos verify (with checkpoints), including a tampered log. A class of its own, so that its database
/// holds only its own conversations: its golden output counts every chain of the tenant.
/// </summary>
public sealed class VerifyTests(AgentsDatabase db) : IClassFixture<AgentsDatabase>
{
    private readonly Aos _aos = Aos.For(db);

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
