using System.Diagnostics;
using System.Globalization;

namespace PgAgentOS.Bench;

/// <summary>One client of a throughput figure: an operation it repeats, and what it does at the end.</summary>
internal sealed class LoadClient
{
    /// <summary>One operation; returns the units (rows, steps, cycles) it completed, 0 for none.</summary>
    public required Func<CancellationToken, Task<int>> Op { get; init; }

    /// <summary>Cleanup after the window (not timed).</summary>
    public Func<CancellationToken, Task>? Finish { get; init; }
}

/// <summary>
/// Runs N clients in a loop: a warm-up, then a timed window in which completed operations are
/// counted, their latencies kept, and the CPU time of the clients' PostgreSQL backends (found by
/// application name) and of this process measured.
/// </summary>
internal static class Load
{
    private const int Idle = 0;
    private const int Measuring = 1;
    private const int Stopped = 2;

    public static async Task<ThroughputPoint> RunAsync(BenchServer server, string applicationName, int clients,
        Func<int, CancellationToken, Task<LoadClient>> create, double warmupSeconds, double durationSeconds,
        BenchProgress progress, string label, CancellationToken ct, Func<CancellationToken, Task>? afterWarmup = null)
    {
        var state = Idle;
        long units = 0, calls = 0;
        var latencies = new List<double>[clients];
        var ready = 0;
        var allReady = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var abort = CancellationTokenSource.CreateLinkedTokenSource(ct);

        async Task Client(int i)
        {
            var lat = latencies[i] = new List<double>(4096);
            LoadClient client;
            try
            {
                client = await create(i, abort.Token);
            }
            finally
            {
                if (Interlocked.Increment(ref ready) == clients)
                {
                    allReady.TrySetResult();
                }
            }
            await start.Task.WaitAsync(abort.Token);
            while (Volatile.Read(ref state) != Stopped)
            {
                var t0 = Stopwatch.GetTimestamp();
                var n = await client.Op(abort.Token);
                var ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                if (Volatile.Read(ref state) == Measuring)
                {
                    Interlocked.Add(ref units, n);
                    Interlocked.Increment(ref calls);
                    lat.Add(ms);
                }
            }
            if (client.Finish is not null)
            {
                await client.Finish(abort.Token);
            }
        }

        var tasks = Enumerable.Range(0, clients).Select(i => Task.Run(() => Client(i), abort.Token)).ToArray();
        var failed = Task.WhenAll(tasks).ContinueWith(t =>
        {
            if (t.IsFaulted)
            {
                abort.Cancel();
            }
        }, TaskScheduler.Default);
        WaitSampler? sampler = null;
        try
        {
            await Task.WhenAny(allReady.Task, Task.WhenAll(tasks));
            ThrowIfFaulted(tasks);
            start.SetResult();
            await DelayWatching(TimeSpan.FromSeconds(warmupSeconds), tasks, abort.Token);
            if (afterWarmup is not null)
            {
                await afterWarmup(abort.Token);
                await DelayWatching(TimeSpan.FromSeconds(Math.Min(warmupSeconds, 1)), tasks, abort.Token);
            }

            var pids = await server.BackendPidsAsync(applicationName, ct);
            var serverCpu0 = ProcCpu.Seconds(pids);
            var clientCpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var t0 = Stopwatch.GetTimestamp();
            sampler = WaitSampler.Start(server, applicationName);
            Volatile.Write(ref state, Measuring);
            var end = TimeSpan.FromSeconds(durationSeconds);
            while (Stopwatch.GetElapsedTime(t0) < end)
            {
                var left = end - Stopwatch.GetElapsedTime(t0);
                await DelayWatching(left < TimeSpan.FromMilliseconds(500) ? left : TimeSpan.FromMilliseconds(500), tasks, abort.Token);
                var sofar = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                progress.Tick(string.Create(CultureInfo.InvariantCulture,
                    $"{label}, {clients} client(s): {Interlocked.Read(ref units) / Math.Max(sofar, 1e-3):N0}/s ({sofar:0.0}/{durationSeconds:0.#} s)"));
            }
            Volatile.Write(ref state, Stopped);
            var seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            var serverCpu = ProcCpu.Seconds(pids) - serverCpu0;
            var clientCpu = (Process.GetCurrentProcess().TotalProcessorTime - clientCpu0).TotalSeconds;
            await sampler.DisposeAsync();
            await Task.WhenAll(tasks);

            var all = latencies.Where(l => l is not null).SelectMany(l => l).ToList();
            var stats = LatencyStats.Of(all);
            var u = Interlocked.Read(ref units);
            return new ThroughputPoint
            {
                Clients = clients,
                Units = u,
                Calls = Interlocked.Read(ref calls),
                Seconds = seconds,
                PerSecond = u / seconds,
                CallsPerSecond = Interlocked.Read(ref calls) / seconds,
                ServerCpuUs = u > 0 && pids.Count > 0 ? serverCpu * 1e6 / u : null,
                ClientCpuUs = u > 0 ? clientCpu * 1e6 / u : null,
                P50Ms = all.Count > 0 ? stats.P50 : null,
                P99Ms = all.Count > 0 ? stats.P99 : null,
                Waits = sampler.Shares(),
            };
        }
        finally
        {
            Volatile.Write(ref state, Stopped);
            start.TrySetResult();
            if (sampler is not null)
            {
                await sampler.DisposeAsync();
            }
            try
            {
                await Task.WhenAll(tasks);
            }
            catch (Exception) when (abort.IsCancellationRequested || tasks.Any(t => t.IsFaulted))
            {
                // the first failure is rethrown below
            }
            await failed;
            ThrowIfFaulted(tasks);
        }
    }

    private static async Task DelayWatching(TimeSpan delay, Task[] tasks, CancellationToken ct)
    {
        if (delay <= TimeSpan.Zero)
        {
            return;
        }
        await Task.WhenAny(Task.Delay(delay, ct), Task.WhenAll(tasks));
        ThrowIfFaulted(tasks);
        ct.ThrowIfCancellationRequested();
    }

    private static void ThrowIfFaulted(Task[] tasks)
    {
        var f = tasks.FirstOrDefault(t => t.IsFaulted);
        if (f is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(f.Exception!.InnerException ?? f.Exception).Throw();
        }
    }
}
