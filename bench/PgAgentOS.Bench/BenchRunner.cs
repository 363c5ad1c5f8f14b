using System.Diagnostics;
using System.Globalization;
using PgAgentOS.Client;

namespace PgAgentOS.Bench;

/// <summary>Runs every figure in order on one private server and returns the report.</summary>
public static class BenchRunner
{
    /// <summary>Runs the bench. The server is created and removed here (unless kept).</summary>
    public static async Task<BenchReport> RunAsync(BenchOptions o, BenchProgress progress, CancellationToken ct = default)
    {
        var sw = Stopwatch.StartNew();
        var report = new BenchReport
        {
            Preset = o.Preset,
            StartedAt = DateTimeOffset.UtcNow,
            Clients = [.. o.Clients],
            DurationSeconds = o.DurationSeconds,
            Prototypes = [.. o.Prototypes],
        };
        if (o.Prototypes.Count > 0)
        {
            report.Notes.Add($"PROTOTYPE run: {string.Join(", ", o.Prototypes)} applied on top of the kernel (bench/PgAgentOS.Bench/prototypes/); these are not the figures of the kernel as built.");
        }
        progress.Phase("starting a private durable PostgreSQL cluster");
        await using var server = await BenchServer.StartAsync(o, progress, ct);
        report.Machine = await server.MachineAsync(ct);
        if (report.Machine.LoadAtStart.Length > 0 && report.Machine.LoadAtStart[0] > 0.5)
        {
            report.Notes.Add(string.Create(CultureInfo.InvariantCulture,
                $"The load average was {report.Machine.LoadAtStart[0]:0.00} when the run started: other work shared the CPU, so the figures are noisy."));
        }
        var workDir = Path.GetDirectoryName(server.Cluster.DataDir)!;
        var sc = Scenario.Create(server);
        var rawSource = server.DataSource(PgAgentOS.Embedded.ClusterLifecycle.WorkerLogin, RawFigures.App);

        // ---- 1. raw baselines -----------------------------------------------------------------
        if (o.Measures(1))
        {
            progress.Phase("1. raw baselines: single-row INSERTs of step-sized rows, a SKIP LOCKED queue");
            foreach (var n in o.Clients)
            {
                if (o.UsePgbench && server.Pgbench is not null)
                {
                    var p = await RawFigures.InsertPgbenchAsync(server, workDir, n, o.DurationSeconds, progress, ct);
                    if (p is not null)
                    {
                        p.Ratio = 1;
                        report.RawInsertPgbench.Add(p);
                        progress.Info(F($"raw INSERT, pgbench,     {n,2} client(s): {p.PerSecond,9:N0} rows/s"));
                    }
                }
                var q = await RawFigures.InsertNpgsqlAsync(server, rawSource, n, o.WarmupSeconds, o.DurationSeconds, progress, ct);
                q.Ratio = report.RawInsertPgbench.FirstOrDefault(x => x.Clients == n) is { } b ? q.PerSecond / b.PerSecond : 1;
                report.RawInsertNpgsql.Add(q);
                progress.Info(F($"raw INSERT, Npgsql loop, {n,2} client(s): {q.PerSecond,9:N0} rows/s ({q.Ratio:0.00} of the baseline), backend CPU {q.ServerCpuUs:0} µs/row; {WaitSampler.Describe(q.Waits)}"));
            }
            if (report.RawInsertPgbench.Count == 0)
            {
                report.Notes.Add(o.UsePgbench
                    ? "pgbench is not installed: the plain Npgsql loop is the raw INSERT baseline (the anchors of issue 7 put it at 0.79 of pgbench)."
                    : "--no-pgbench: the plain Npgsql loop is the raw INSERT baseline.");
            }
            var maxInsert = report.RawInsertNpgsql.Max(p => p.PerSecond);
            foreach (var n in o.Clients)
            {
                // a full queue for every window (one fill for all of them ran dry in short windows)
                await RawFigures.FillQueueAsync(server, (int)Math.Clamp(maxInsert * (o.WarmupSeconds + o.DurationSeconds), 1_000, 500_000), ct);
                var q = await RawFigures.QueueAsync(server, rawSource, n, o.WarmupSeconds, o.DurationSeconds, progress, ct);
                report.RawQueue.Add(q);
                progress.Info(F($"raw SKIP LOCKED claim + complete, {n,2} client(s): {q.PerSecond,9:N0} cycles/s"));
            }
            await server.ExecSuperAsync("TRUNCATE bench.raw_queue", ct);
            // The raw INSERTs leave a table of a few hundred thousand new rows, which autovacuum
            // would vacuum during the next figure's window (seen running through figure 2's whole
            // first window, on the same two cores). Done here instead, outside every window.
            progress.Tick("vacuuming the raw baseline tables");
            await server.ExecSuperAsync("VACUUM (ANALYZE) bench.raw_step, bench.raw_queue", ct);
        }

        // the tenant of figure 2 (and of its growth rows)
        var (stepTenant, stepApp, stepAgent) = await sc.TenantAsync("bench-steps", autoApprove: true, bigBudget: true, ct);
        var stepSource = sc.WorkerSource(StepFigures.App);
        var stepWorker = new AosClient(stepSource);

        // ---- 2. steps through the SDK -----------------------------------------------------------
        if (o.Measures(2))
        {
            progress.Phase("2. steps through the SDK (workers holding leased turns: record_response + record_tool_result)");
            foreach (var n in o.Clients)
            {
                var p = await StepFigures.StepsAsync(server, stepApp, stepWorker, stepTenant, stepAgent, n, o.WarmupSeconds, o.DurationSeconds, progress, ct);
                p.Ratio = report.BaselineInsert(n) is { } b ? p.PerSecond / b.PerSecond : null;
                report.Steps.Add(p);
                progress.Info(F($"steps, {n,2} client(s): {p.PerSecond,9:N0} steps/s ({p.CallsPerSecond:N0} calls/s) = {p.Ratio:0.00} of raw INSERTs; backend CPU {p.ServerCpuUs:0} µs/step; {WaitSampler.Describe(p.Waits)}"));
            }
            {
                // The SDK's data sources (AosClient.CreateDataSource) do not let Npgsql reset pooled connections with
                // DISCARD ALL, which would throw away every cached plan of the kernel's functions on every call. The
                // same figure over a data source with Npgsql's default reset, for comparison:
                var n = o.Clients.Max();
                var noReset = new AosClient(server.DataSource(PgAgentOS.Embedded.ClusterLifecycle.WorkerLogin, StepFigures.App, noResetOnClose: false));
                var p = await StepFigures.StepsAsync(server, stepApp, noReset, stepTenant, stepAgent, n, o.WarmupSeconds, o.DurationSeconds, progress, ct);
                p.Ratio = report.BaselineInsert(n) is { } b ? p.PerSecond / b.PerSecond : null;
                report.StepsNoReset = p;
                progress.Info(F($"steps, {n,2} client(s), with DISCARD ALL: {p.PerSecond,9:N0} steps/s = {p.Ratio:0.00} of raw INSERTs; backend CPU {p.ServerCpuUs:0} µs/step"));
            }
            progress.Phase("profile: statements, commits and WAL per step (pg_stat_statements, track = all)");
            report.Profile = await StepFigures.ProfileAsync(server, stepApp, sc.WorkerSource(StepFigures.App + "-profile"), stepTenant, stepAgent,
                o.ProfileCycles, ct);
            if (report.Profile is { } prof)
            {
                progress.Info(F($"{prof.StatementsPerStep:0.0} statements per step ({prof.TopLevelPerStep:0.00} sent by the client), {prof.CommitsPerCall:0.00} commits per call, {prof.WalBytesPerStep:N0} WAL bytes per step (plain INSERT {prof.WalBytesPerRawRow:N0})"));
            }
            else
            {
                report.Notes.Add("pg_stat_statements is not installed: no statements-per-step profile.");
            }
        }

        // ---- 3. whole turns -------------------------------------------------------------------------
        if (o.Measures(3))
        {
            var driver = TurnDrivers.Choose(o.TurnDriver, report.Notes);
            report.TurnDriver = driver.Name;
            progress.Phase($"3. whole 5-step turns with an instant model, driven by the {driver.Name}");
            int TurnsFor(int n)
            {
                var steps = report.Steps.FirstOrDefault(p => p.Clients == n)?.PerSecond ?? 100;
                return (int)Math.Clamp(steps / 5 * 0.6 * o.DurationSeconds, Math.Max(4 * n, 8), 50_000);
            }
            async Task<TurnPoint> Turns(ITurnDriver d, int n)
            {
                var p = await TurnFigures.TurnsAsync(server, sc, d, n, TurnsFor(n), o.DurationSeconds * 8 + 60, progress, ct);
                p.Ratio = report.BaselineInsert(n) is { } b ? p.TurnsPerSecond / b.PerSecond : null;
                progress.Info(F($"turns ({d.Name}), {n,2} worker(s): {p.TurnsPerSecond,8:N0} turns/s = {p.Ratio:0.000} of raw INSERTs; {p.CommitsPerTurn:0.00} commits per turn, {p.WriteTransactionsPerTurn:0.00} write transactions (+{p.SendCommitsPerTurn:0.00} for send_message); {WaitSampler.Describe(p.Waits)}"));
                return p;
            }
            foreach (var n in o.Clients)
            {
                report.Turns.Add(await Turns(driver, n));
            }
            var maxN = o.Clients.Max();
            if (driver is RuntimeTurnDriver)
            {
                report.TurnVariants.Add(await Turns(new RuntimeTurnDriver(streamDeltas: false), maxN));
                report.TurnVariants.Add(await Turns(new SdkTurnDriver(), maxN));
            }
        }

        // ---- 4. dispatch latency -------------------------------------------------------------------
        var raws = new Dictionary<int, LatencyFigures.Latency>();
        if (o.Measures(4))
        {
            progress.Phase("4. dispatch latency: send_message committed → a waiting worker holds the turn");
            foreach (var n in o.Clients)
            {
                var raw = await LatencyFigures.RawDispatchAsync(server, n, o.LatencySamples, progress, ct);
                raws[n] = raw;
                var ours = await LatencyFigures.DispatchAsync(server, sc, n, o.LatencySamples, "bench-dispatch-" + n.ToString(CultureInfo.InvariantCulture), progress, ct);
                var lp = Point(n, ours, raw);
                report.Dispatch.Add(lp);
                progress.Info(F($"dispatch, {n,2} waiting worker(s): p50 {lp.Ours.P50:0.00} ms, p99 {lp.Ours.P99:0.00} ms; raw LISTEN/NOTIFY claim p50 {lp.Raw!.P50:0.00} ms, p99 {lp.Raw.P99:0.00} ms ({lp.RatioP50:0.0}x)"));
            }
            // The runtime as deployed: one host whose N slots share one LISTEN, against the raw round trip with one listener.
            var raw1 = raws[o.Clients.Min()];
            foreach (var n in o.Clients)
            {
                var ours = await LatencyFigures.DispatchAsync(server, sc, n, o.LatencySamples, "bench-dispatch-host-" + n.ToString(CultureInfo.InvariantCulture),
                    progress, ct, host: true);
                var hp = Point(n, ours, raw1);
                report.DispatchHost.Add(hp);
                progress.Info(F($"dispatch, one runtime host, {n,2} slot(s): p50 {hp.Ours.P50:0.00} ms, p99 {hp.Ours.P99:0.00} ms ({hp.RatioP50:0.0}x the raw claim with {o.Clients.Min()} listener)"));
            }
        }

        // ---- 5. approval latency -------------------------------------------------------------------
        if (o.Measures(5))
        {
            progress.Phase("5. approval latency: approve_step committed → the waiting worker starts the tool");
            foreach (var n in o.Clients)
            {
                var ours = await LatencyFigures.ApprovalAsync(server, sc, n, o.ApprovalSamples, progress, ct);
                var d = report.Dispatch.FirstOrDefault(x => x.Clients == n);
                var ap = new LatencyPoint
                {
                    Clients = n,
                    Ours = ours.FromCommit,
                    OursFromCommitReturn = ours.FromCommitReturn,
                    OursWoken = ours.Woken,
                    Raw = d?.Raw,
                    RawWoken = d?.RawWoken,
                    RawFromCommitReturn = d?.RawFromCommitReturn,
                    RatioP50 = d?.Raw is { } raw ? ours.FromCommit.P50 / raw.P50 : null,
                    RatioP99 = d?.Raw is { } raw2 ? ours.FromCommit.P99 / raw2.P99 : null,
                };
                report.Approval.Add(ap);
                progress.Info(F($"approval, {n,2} waiting worker(s): p50 {ap.Ours.P50:0.00} ms, p99 {ap.Ours.P99:0.00} ms"));
            }
            foreach (var n in o.Clients)
            {
                var ours = await LatencyFigures.ApprovalAsync(server, sc, n, o.ApprovalSamples, progress, ct, host: true);
                var raw1 = raws.Count > 0 ? raws[raws.Keys.Min()] : null;
                var hp = new LatencyPoint
                {
                    Clients = n,
                    Ours = ours.FromCommit,
                    OursFromCommitReturn = ours.FromCommitReturn,
                    Raw = raw1?.FromCommit,
                    RawFromCommitReturn = raw1?.FromCommitReturn,
                    RatioP50 = raw1 is null ? null : ours.FromCommit.P50 / raw1.FromCommit.P50,
                    RatioP99 = raw1 is null ? null : ours.FromCommit.P99 / raw1.FromCommit.P99,
                };
                report.ApprovalHost.Add(hp);
                progress.Info(F($"approval, one runtime host, {n,2} slot(s): p50 {hp.Ours.P50:0.00} ms, p99 {hp.Ours.P99:0.00} ms"));
            }
        }

        // ---- bytes per step ----------------------------------------------------------------------
        if (o.Measures(2))
        {
            report.Bytes = await Growth.BytesAsync(server, ct);
            progress.Info(F($"bytes per step {report.Bytes.PerStep:N0} (all relations the step path writes), plain table {report.Bytes.PerRawRow:N0} per row: {report.Bytes.Ratio:0.0}x"));
        }

        // ---- 6. growth ---------------------------------------------------------------------------
        if (o.Measures(6) && o.GrowthSizes.Count > 0)
        {
            progress.Phase($"6. growth: figures 2 and 4 and the monitoring views at {string.Join(", ", o.GrowthSizes.Select(Human))} recorded steps");
            await Growth.SetUpAsync(server, Growth.TenantsFor(o.GrowthSizes.Max()), ct);
            var (bigTenant, bigAgent) = await Growth.BiggestAsync(server, ct);
            foreach (var size in o.GrowthSizes)
            {
                var g = new GrowthPoint { Size = size };
                g.PreloadSeconds = await Growth.PreloadAsync(server, size, progress, ct);
                g.StepsInDatabase = await Growth.StepCountAsync(server, ct);
                progress.Info(F($"{Human(size)}: {g.StepsInDatabase:N0} steps in the database (preloaded in {g.PreloadSeconds:0} s)"));
                foreach (var n in o.Clients)
                {
                    ThroughputPoint? baseP = null;
                    if (o.UsePgbench && server.Pgbench is not null)
                    {
                        baseP = await RawFigures.InsertPgbenchAsync(server, workDir, n, o.GrowthDurationSeconds, progress, ct);
                    }
                    baseP ??= await RawFigures.InsertNpgsqlAsync(server, rawSource, n, o.WarmupSeconds, o.GrowthDurationSeconds, progress, ct);
                    baseP.Ratio = 1;
                    g.RawInsert.Add(baseP);
                    var p = await StepFigures.StepsAsync(server, stepApp, stepWorker, stepTenant, stepAgent, n, o.WarmupSeconds, o.GrowthDurationSeconds, progress, ct);
                    p.Ratio = p.PerSecond / baseP.PerSecond;
                    g.Steps.Add(p);
                    progress.Info(F($"{Human(size)}: steps, {n,2} client(s): {p.PerSecond,9:N0} steps/s = {p.Ratio:0.00} of raw INSERTs; backend CPU {p.ServerCpuUs:0} µs/step"));
                }
                var samples = Math.Max(5, o.LatencySamples / 2);
                var raw = await LatencyFigures.RawDispatchAsync(server, 1, samples, progress, ct);
                var ours = await LatencyFigures.DispatchAsync(server, sc, 1, samples, "bench-dispatch-" + size.ToString(CultureInfo.InvariantCulture), progress, ct);
                g.Dispatch = Point(1, ours, raw);
                progress.Info(F($"{Human(size)}: dispatch p50 {g.Dispatch.Ours.P50:0.00} ms, p99 {g.Dispatch.Ours.P99:0.00} ms (raw {g.Dispatch.Raw!.P50:0.00} / {g.Dispatch.Raw.P99:0.00} ms)"));
                await Growth.ViewsAsync(server, sc.AdminSource, bigTenant, bigAgent, o.ViewRuns, g, ct);
                progress.Info(F($"{Human(size)}: realtime_steps {g.Views["realtime_steps"].P50:0.00} ms, tool_call_queue {g.Views["tool_call_queue"].P50:0.00} ms, get_agent_analytics {g.Views["get_agent_analytics"].P50:0.00} ms (tenant with {g.ViewTenantSteps:N0} steps)"));
                report.Growth.Add(g);
            }
        }

        report.Targets = Targets.Check(report);
        report.Machine.LoadAtEnd = BenchServer.LoadAverage();
        report.ElapsedSeconds = sw.Elapsed.TotalSeconds;
        if (o.KeepCluster)
        {
            report.Notes.Add($"The cluster was kept: {server.Cluster.Url()} (data in {server.Cluster.DataDir}).");
            progress.Info($"cluster kept running: {server.Cluster.Url()}");
        }
        progress.Phase(F($"done in {sw.Elapsed.TotalMinutes:0.0} min"));
        return report;
    }

    private static LatencyPoint Point(int n, LatencyFigures.Latency ours, LatencyFigures.Latency raw) => new()
    {
        Clients = n,
        Ours = ours.FromCommit,
        OursFromCommitReturn = ours.FromCommitReturn,
        OursWoken = ours.Woken,
        Raw = raw.FromCommit,
        RawWoken = raw.Woken,
        RawFromCommitReturn = raw.FromCommitReturn,
        RatioP50 = ours.FromCommit.P50 / raw.FromCommit.P50,
        RatioP99 = ours.FromCommit.P99 / raw.FromCommit.P99,
    };

    /// <summary>1e5-style size.</summary>
    public static string Human(long n)
    {
        var e = (int)Math.Round(Math.Log10(Math.Max(n, 1)));
        return Math.Abs(Math.Pow(10, e) - n) < 0.5 ? $"10^{e}" : n.ToString("N0", CultureInfo.InvariantCulture);
    }

    private static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
