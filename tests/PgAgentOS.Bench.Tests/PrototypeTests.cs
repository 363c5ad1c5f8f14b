namespace PgAgentOS.Bench.Tests;

/// <summary>
/// The prototypes of bench/PgAgentOS.Bench/prototypes still apply to the kernel as it is (they are
/// measured with aos bench --prototype, so a prototype that no longer applies would only fail there),
/// and the views they replace keep their columns and still answer.
/// </summary>
public sealed class PrototypeTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    public static TheoryData<string> Prototypes()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "prototypes"), "*.sql").Order())
        {
            data.Add(Path.GetFileNameWithoutExtension(f));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Prototypes))]
    public async Task ThePrototypeAppliesToTheKernel(string name)
    {
        var sql = await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "prototypes", name + ".sql"));
        await using var conn = await db.OpenAsync(null);
        await using var tx = await conn.BeginTransactionAsync();
        var before = await conn.ColumnAsync(
            "SELECT table_name || '.' || column_name || ':' || data_type FROM information_schema.columns WHERE table_schema = 'aos_agent' ORDER BY 1");
        await conn.ExecAsync(sql);
        var after = await conn.ColumnAsync(
            "SELECT table_name || '.' || column_name || ':' || data_type FROM information_schema.columns WHERE table_schema = 'aos_agent' ORDER BY 1");
        Assert.Equal(before, after);
        await conn.ExecAsync("SELECT aos_auth.set_tenant(aos_auth.create_tenant('proto'), true)");
        Assert.Equal(0, await conn.ScalarAsync<long>("SELECT count(*) FROM aos_agent.realtime_steps"));
        Assert.Equal(0, await conn.ScalarAsync<long>("SELECT count(*) FROM aos_agent.tool_call_queue"));
        await tx.RollbackAsync();
    }
}
