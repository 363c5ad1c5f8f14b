using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using PgAgentOS.Runtime;
using PgAgentOS.Runtime.Tools;

namespace PgAgentOS.Bench;

/// <summary>
/// Figure 3 driven by the real runtime: a <see cref="WorkerHost"/> (its production loop, RunAsync,
/// stopped when every queued turn has finished) with N slots over the worker
/// login, the agent on the scripted stand-in model (builtin/scripted: a web_search call, then the
/// answer, instantly), web_search answered at once by an in-process tool with a canned result of
/// the usual size. Everything else is the runtime as it ships: its own SDK data source settings,
/// the skills lookup, the context refresh after a tool, streaming of the answer on aos_stream
/// (unless <paramref name="streamDeltas"/> is false).
/// </summary>
internal sealed class RuntimeTurnDriver(bool streamDeltas = true) : ITurnDriver
{
    public const string App = "aos-bench-runtime";

    public string Name => streamDeltas ? "runtime" : "runtime (StreamDeltas off)";

    /// <summary>The script of the scripted model: think + web_search, then think + answer (about 450 characters each).</summary>
    public static JsonObject AgentConfig()
    {
        var rng = new Random(21);
        return new JsonObject
        {
            ["script"] = new JsonArray(
                new JsonObject
                {
                    ["thinking"] = Payloads.Thinking(rng),
                    ["tool_calls"] = new JsonArray(new JsonObject
                    {
                        ["name"] = "web_search",
                        ["arguments"] = new JsonObject { ["query"] = Payloads.Text(rng, 60) },
                    }),
                },
                new JsonObject
                {
                    ["thinking"] = Payloads.Thinking(rng),
                    ["text"] = Payloads.Answer(rng),
                }),
        };
    }

    public async Task<TurnRun> RunAsync(TurnJob job, CancellationToken ct)
    {
        var source = job.Server.DataSource(PgAgentOS.Embedded.ClusterLifecycle.WorkerLogin, App);
        var claimedAt = new ConcurrentDictionary<Guid, long>();
        var turnMs = new ConcurrentBag<double>();
        long completed = 0, failed = 0;
        var sw = Stopwatch.StartNew();
        var allDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        double lastDone = 0;
        await using var host = new WorkerHost(source, new WorkerOptions
        {
            WorkerId = "bench-runtime",
            Concurrency = job.Workers,
            LeaseSeconds = 60,
            TenantId = job.Tenant,
            StreamDeltas = streamDeltas,
            Providers = new ProviderSettings(),
            ExtraTools = new Dictionary<string, ITool> { ["web_search"] = new InstantSearch() },
        });
        string? firstError = null;
        host.Event += e =>
        {
            switch (e.Kind)
            {
                case WorkerEventKind.TurnClaimed when e.TurnId is { } id:
                    claimedAt[id] = Stopwatch.GetTimestamp();
                    break;
                case WorkerEventKind.TurnFinished when e.TurnId is { } id:
                    if (e.Status == "completed")
                    {
                        var done = Interlocked.Increment(ref completed);
                        if (done >= job.Turns)
                        {
                            Volatile.Write(ref lastDone, sw.Elapsed.TotalSeconds);
                            allDone.TrySetResult();
                        }
                        if (claimedAt.TryRemove(id, out var t0))
                        {
                            turnMs.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                        }
                        if (done % 100 == 0)
                        {
                            job.Progress.Tick(string.Create(CultureInfo.InvariantCulture,
                                $"whole turns ({Name}), {job.Workers} worker(s): {done}/{job.Turns} ({done / sw.Elapsed.TotalSeconds:N0}/s)"));
                        }
                    }
                    else
                    {
                        Interlocked.Increment(ref failed);
                        firstError ??= e.Message;
                    }
                    break;
                case WorkerEventKind.TurnDropped or WorkerEventKind.Error:
                    firstError ??= e.Message;
                    break;
            }
        };
        var sampler = WaitSampler.Start(job.Server, App);
        // The production loop (RunAsync: slots, LISTEN, polling), stopped once every queued turn is done.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var running = host.RunAsync(stop.Token);
        await Task.WhenAny(allDone.Task, running, Task.Delay(TimeSpan.FromSeconds(job.TimeoutSeconds), ct));
        var seconds = allDone.Task.IsCompleted ? Volatile.Read(ref lastDone) : sw.Elapsed.TotalSeconds;
        await sampler.DisposeAsync();
        await stop.CancelAsync();
        await running;
        if (Interlocked.Read(ref failed) > 0)
        {
            throw new InvalidOperationException($"the runtime failed {failed} turn(s): {firstError}");
        }
        return new TurnRun(completed, seconds, null, [.. turnMs]) { Waits = sampler.Shares(), Note = firstError };
    }

    /// <summary>web_search answered at once with three results (about 450 bytes).</summary>
    private sealed class InstantSearch : ITool
    {
        private readonly JsonObject _result = Payloads.SearchResult(new Random(5));

        public Task<ToolResult> RunAsync(ToolCall call, CancellationToken ct) => Task.FromResult(ToolResult.Ok(_result.DeepClone()));
    }
}
