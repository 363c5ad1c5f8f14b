using System.Text.Json;
using Npgsql;

namespace PgAgentOS.Security.Tests;

/// <summary>
/// A5: 16 writers appending 300 events each, at once, to one conversation chain and to one tenant
/// chain: every chain stays one line (each event links to exactly one predecessor, no seq twice,
/// none missing) and verifies.
/// </summary>
public sealed class ChainConcurrencyTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    private const int Writers = 16;
    private const int EventsPerWriter = 300;

    /// <summary>Links of one chain: events, distinct predecessors, distinct and contiguous seqs, links that verify.</summary>
    private const string LinksSql = """
        SELECT count(*) AS events,
               count(DISTINCT prev) AS distinct_prev,
               count(DISTINCT seq) AS distinct_seq,
               max(seq) AS max_seq,
               count(*) FILTER (WHERE hash = aos_core.event_hash(prev, tenant_id, chain_id, seq, event_type, entity_id, turn_id, actor, payload, created_at)) AS good_links
          FROM (SELECT l.*, coalesce(lag(l.hash) OVER (ORDER BY l.seq), '\x'::bytea) AS prev
                  FROM aos_core.event_log l WHERE l.tenant_id = $1 AND l.chain_id = $2) s
        """;

    [Fact]
    public async Task ConcurrentWritersNeverForkAChain()
    {
        await using var setup = await db.OpenAsync(TestCluster.Admin);
        var tenant = await setup.ScalarAsync<Guid>("SELECT aos_auth.create_tenant('a5')");
        await setup.ExecAsync("SELECT aos_auth.set_tenant($1)", tenant);
        var agent = await setup.ScalarAsync<Guid>("SELECT aos_agent.create_agent($1, 'a5', NULL, '{}', '{\"dispatch\": \"manual\"}')", tenant);
        var conv = await setup.ScalarAsync<Guid>("SELECT aos_agent.start_conversation($1)", agent);

        // 16 writers on the conversation's chain, then 16 on the tenant's chain; each group starts
        // together once every writer is connected and bound.
        await RunWritersAsync(tenant, "SELECT aos_agent.add_observation(NULL, 'note', jsonb_build_object('w', $1::int, 'i', $2::int), $3)",
            (w, i) => [w, i, conv]);
        await RunWritersAsync(tenant, "SELECT aos_agent.remember($3, 'w' || $1 || '-' || $2, to_jsonb($2::int))",
            (w, i) => [w, i, agent]);

        await using var su = await db.OpenAsync(null);
        foreach (var (chain, expected) in new[] { (conv, 1 + Writers * EventsPerWriter), (tenant, Writers * EventsPerWriter) })
        {
            var r = (await su.RowsAsync(LinksSql, tenant, chain)).Single();
            var events = (long)r["events"]!;
            Assert.True(events >= expected, $"chain {chain}: {events} events, expected at least {expected}");
            Assert.Equal(events, (long)r["distinct_prev"]!);
            Assert.Equal(events, (long)r["distinct_seq"]!);
            Assert.Equal(events, (long)r["max_seq"]!);
            Assert.Equal(events, (long)r["good_links"]!);
        }
        var verified = JsonSerializer.Deserialize<JsonElement>(await setup.ScalarAsync<string>("SELECT aos_core.verify_event_chain()::text"));
        Assert.True(verified.GetProperty("ok").GetBoolean(), verified.ToString());
    }

    private async Task RunWritersAsync(Guid tenant, string sql, Func<int, int, object[]> args)
    {
        var ready = 0;
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var tasks = Enumerable.Range(0, Writers).Select(async w =>
        {
            await using var conn = await db.OpenAsync(TestCluster.Admin);
            await conn.ExecAsync("SELECT aos_auth.set_tenant($1)", tenant);
            if (Interlocked.Increment(ref ready) == Writers)
            {
                go.SetResult();
            }
            await go.Task;
            for (var i = 0; i < EventsPerWriter; i++)
            {
                await conn.ExecAsync(sql, args(w, i));
            }
        }).ToArray();
        await Task.WhenAll(tasks);
    }
}
