namespace PgAgentOS.Kernel.Tests;

/// <summary>examples/*.sql run as written (psql, ON_ERROR_STOP), so that they never rot.</summary>
public sealed class ExampleTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    [Fact]
    public async Task TheSimpleAgentExampleWalksTheWholeLoop()
    {
        var script = await File.ReadAllTextAsync(Path.Combine(K.RepoRoot, "examples", "simple_agent.sql"));
        for (var run = 1; run <= 2; run++)   // it can run again on the same database
        {
            var r = await db.Cluster.PsqlAsync(db.Name, TestCluster.Admin, script);
            Assert.True(r.ExitCode == 0, $"run {run}: {r.StdErr}\n{r.StdOut}");
            Assert.DoesNotContain("error", r.StdErr, StringComparison.OrdinalIgnoreCase);
            Assert.Contains("awaiting_approval waiting_approval", r.StdOut, StringComparison.Ordinal);
            Assert.Contains(" completed |          8 |         1200 |           180 |        1380 | 0.000288 |", r.StdOut, StringComparison.Ordinal);
            Assert.Contains("\"tool_usage\": {", r.StdOut, StringComparison.Ordinal);
            Assert.Contains(" true     | ", r.StdOut, StringComparison.Ordinal);   // verify_event_chain
        }
        await using var conn = await db.OpenAsync(TestCluster.Admin);
        Assert.Equal(2L, await conn.ScalarAsync<long>("SELECT count(*) FROM aos_auth.tenant WHERE name LIKE 'example-%'"));
    }
}
