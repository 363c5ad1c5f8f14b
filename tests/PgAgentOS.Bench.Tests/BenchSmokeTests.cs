using Xunit.Abstractions;
using System.Text.Json;

namespace PgAgentOS.Bench.Tests;

/// <summary>
/// Runs the whole bench at its smallest size, in process, so that it never rots. Asserts the shape
/// of what it produces (every figure present, numbers finite and positive, the JSON, the table, the
/// regenerated docs keeping their hand-written findings), never its timings.
/// </summary>
public sealed class BenchSmokeTests(ITestOutputHelper output)
{
    [Fact]
    public async Task TheTinyBenchProducesEveryFigure()
    {
        var options = BenchOptions.Tiny;
        var log = new StringWriter();
        var r = await BenchRunner.RunAsync(options, new BenchProgress(log, live: false));
        output.WriteLine(log.ToString());
        output.WriteLine(Render.Table(r));

        Assert.Equal(options.Clients, r.Clients);
        Assert.Equal(options.Clients.Count, r.RawInsertNpgsql.Count);
        Assert.Equal(options.Clients.Count, r.RawQueue.Count);
        Assert.Equal(options.Clients.Count, r.Steps.Count);
        Assert.Equal(options.Clients.Count, r.Turns.Count);
        Assert.Equal(options.Clients.Count, r.Dispatch.Count);
        Assert.Equal(options.Clients.Count, r.Approval.Count);
        Assert.All(r.RawInsertNpgsql, p => Positive(p.PerSecond));
        Assert.All(r.RawQueue, p => Positive(p.PerSecond));
        Assert.All(r.Steps, p =>
        {
            Positive(p.PerSecond);
            Positive(p.Ratio!.Value);
            Assert.True(p.Units >= p.Calls, "a call records at least one step");
        });
        Assert.Equal("runtime", r.TurnDriver);
        Assert.Equal(["runtime (StreamDeltas off)", "sdk"], r.TurnVariants.Select(v => v.Driver));
        Assert.All(r.Turns.Concat(r.TurnVariants), p =>
        {
            Assert.True(p.Turns > 0);
            Positive(p.TurnsPerSecond);
            Positive(p.CommitsPerTurn);
            Positive(p.SendCommitsPerTurn);
            Assert.True(p.WriteTransactionsPerTurn >= 4, "claim and three recordings write");
        });
        Assert.All(r.Dispatch, p =>
        {
            Assert.Equal(options.LatencySamples, p.Ours.N);
            Assert.Equal(options.LatencySamples, p.Raw!.N);
            Positive(p.Ours.P50);
            Assert.True(p.Ours.P99 >= p.Ours.P50);
        });
        Assert.All(r.Approval, p =>
        {
            Assert.Equal(options.ApprovalSamples, p.Ours.N);
            Positive(p.Ours.P50);
        });
        // the runtime host's rows: every sample reached the host's turn runner (dispatch) or its tool (approval)
        Assert.Equal(options.Clients, r.DispatchHost.Select(p => p.Clients));
        Assert.Equal(options.Clients, r.ApprovalHost.Select(p => p.Clients));
        Assert.All(r.DispatchHost, p =>
        {
            Assert.Equal(options.LatencySamples, p.Ours.N);
            Assert.Null(p.OursWoken);
            Positive(p.Ours.P50);
            Assert.Equal(r.Dispatch.First(d => d.Clients == options.Clients.Min()).Raw!.P50, p.Raw!.P50);
        });
        Assert.All(r.ApprovalHost, p =>
        {
            Assert.Equal(options.ApprovalSamples, p.Ours.N);
            Positive(p.Ours.P50);
        });
        Positive(r.Bytes!.PerStep);
        Positive(r.Bytes.PerRawRow);
        if (r.Profile is { } prof)
        {
            Assert.True(prof.StatementsPerStep >= prof.TopLevelPerStep);
            Positive(prof.WalBytesPerStep);
            Assert.NotEmpty(prof.Top);
        }

        var g = Assert.Single(r.Growth);
        Assert.True(g.StepsInDatabase >= options.GrowthSizes[0]);
        Assert.Equal(["get_agent_analytics", "realtime_steps", "tool_call_queue"], g.Views.Keys.Order());
        Assert.True(g.ViewTenantSteps > 0);
        Assert.Equal(options.Clients.Count, g.Steps.Count);
        Assert.NotNull(g.Dispatch);

        Assert.NotEmpty(r.Machine.Cpu);
        Assert.Equal("on", r.Machine.Settings["synchronous_commit"]);
        Assert.Equal("on", r.Machine.Settings["fsync"]);
        Assert.Contains(r.Targets, t => t.Figure == "2");
        Assert.Contains(r.Targets, t => t.Figure == "6");

        using var json = JsonDocument.Parse(r.ToJson());
        foreach (var key in new[] { "machine", "raw_insert_npgsql", "steps", "turns", "dispatch", "approval", "bytes", "growth", "targets" })
        {
            Assert.True(json.RootElement.TryGetProperty(key, out _), $"the JSON report has {key}");
        }

        var back = JsonSerializer.Deserialize<BenchReport>(r.ToJson(), BenchReport.Json)!;
        Assert.Equal(Render.Table(r), Render.Table(back)); // aos bench --render re-renders a saved report

        var table = Render.Table(r);
        Assert.Contains("| 2 | steps through the SDK |", table, StringComparison.Ordinal);
        Assert.Contains("| 4 | dispatch latency p50 / p99 |", table, StringComparison.Ordinal);
        var previous = $"# old\n{Render.FindingsBegin}\nKEEP THESE WORDS\n{Render.FindingsEnd}\n";
        var docs = Render.Docs(r, previous);
        Assert.Contains("## Machine", docs, StringComparison.Ordinal);
        Assert.Contains("KEEP THESE WORDS", docs, StringComparison.Ordinal);
        Assert.Single(docs.Split(Render.FindingsBegin)[1..]);
    }

    [Fact]
    public void OptionsParse()
    {
        var o = BenchOptions.Parse(["--quick", "--sizes", "2e5,1e5", "--clients", "1,8", "--duration", "2.5", "--no-docs"]);
        Assert.Equal("quick", o.Preset);
        Assert.Equal([100_000L, 200_000L], o.GrowthSizes);
        Assert.Equal([1, 8], o.Clients);
        Assert.Equal(2.5, o.DurationSeconds);
        Assert.Null(o.DocsPath);

        var huge = BenchOptions.Parse(["--huge", "--default-docs", "docs/benchmarks.md"]);
        Assert.Equal([100_000L, 1_000_000L, 10_000_000L], huge.GrowthSizes);
        Assert.Equal("docs/benchmarks.md", huge.DocsPath);
        Assert.Null(BenchOptions.Parse(["--quick", "--default-docs", "docs/benchmarks.md"]).DocsPath);

        // some figures only: 1 comes with 2 and 3 (their baseline), and such a run never rewrites the docs
        var some = BenchOptions.Parse(["--figures", "2,5", "--default-docs", "docs/benchmarks.md"]);
        Assert.Equal([1, 2, 5], Enumerable.Range(1, 6).Where(some.Measures));
        Assert.Null(some.DocsPath);
        Assert.Equal([4], Enumerable.Range(1, 6).Where(BenchOptions.Parse(["--figures", "4"]).Measures));
        Assert.Throws<ArgumentException>(() => BenchOptions.Parse(["--figures", "7"]));
        Assert.Throws<ArgumentException>(() => BenchOptions.Parse(["--figures", ","]));

        Assert.Throws<ArgumentException>(() => BenchOptions.Parse(["--clients", "0"]));
        Assert.Throws<ArgumentException>(() => BenchOptions.Parse(["--frobnicate"]));
        Assert.Throws<ArgumentException>(() => BenchOptions.Parse(["--duration"]));
    }

    private static void Positive(double v) => Assert.True(double.IsFinite(v) && v > 0, $"{v} is a positive number");
}
