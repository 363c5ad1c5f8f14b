using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;
using PgAgentOS.Client;
using PgAgentOS.Embedded;
using PgAgentOS.Runtime;
using PgAgentOS.Runtime.Tools;

namespace PgAgentOS.Bench;

/// <summary>
/// Figures 4 and 5: how fast a waiting worker reacts. N workers wait, each on its own LISTEN
/// connection; one sender makes one thing happen at a time and measures, on the same clock, from
/// the moment its commit returned to the moment a worker holds the work.
/// </summary>
internal static class LatencyFigures
{
    /// <summary>Timestamps keyed by an id, whichever side comes first.</summary>
    private sealed class Rendezvous<TKey> where TKey : notnull
    {
        private readonly ConcurrentDictionary<TKey, TaskCompletionSource<long>> _map = new();

        public TaskCompletionSource<long> Get(TKey key) =>
            _map.GetOrAdd(key, _ => new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously));

        public void Set(TKey key, long value) => Get(key).TrySetResult(value);

        public async Task<long> WaitAsync(TKey key, CancellationToken ct)
        {
            var v = await Get(key).Task.WaitAsync(TimeSpan.FromSeconds(15), ct);
            _map.TryRemove(key, out _);
            return v;
        }

        /// <summary>Blocks the calling (sender) thread until the value is there.</summary>
        public long Wait(TKey key, CancellationToken ct) => WaitAsync(key, ct).GetAwaiter().GetResult();
    }

    /// <summary>
    /// Runs the sender on a thread of its own with blocking I/O, so that the moment its commit
    /// returns is read when the socket delivers it, not when the thread pool gets round to it
    /// (on a busy machine the woken worker could otherwise look faster than the commit).
    /// </summary>
    private static Task<T> OnSenderThread<T>(Func<T> body)
    {
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                tcs.SetResult(body());
            }
            catch (Exception e)
            {
                tcs.SetException(e);
            }
        })
        {
            IsBackground = true,
            Name = "bench-sender",
            Priority = ThreadPriority.AboveNormal,
        };
        thread.Start();
        return tcs.Task;
    }

    private static double Ms(long from, long to) => (to - from) * 1000.0 / Stopwatch.Frequency;

    /// <summary>
    /// A latency measured two ways: from the moment the sender sent its COMMIT (the primary figure: it
    /// includes that commit's WAL flush, as an enqueue → claimed round trip does) and from the moment the
    /// COMMIT returned (which a busy machine can make look faster than it is, down to negative values).
    /// </summary>
    /// <summary>
    /// <paramref name="Woken"/>: from the COMMIT sent to the moment the worker that got the work had read
    /// the notification (the rest of the figure is that worker's claim).
    /// </summary>
    public sealed record Latency(LatencyStats FromCommit, LatencyStats FromCommitReturn, LatencyStats? Woken);

    /// <summary>Raw: INSERT a job and NOTIFY in one statement; waiting workers wake and claim with SKIP LOCKED.</summary>
    public static async Task<Latency> RawDispatchAsync(BenchServer server, int workers, int samples, BenchProgress progress,
        CancellationToken ct)
    {
        await server.ExecSuperAsync("DELETE FROM bench.raw_queue", ct);
        var claimed = new Rendezvous<long>();
        var woken = new Rendezvous<long>();
        var done = new Rendezvous<long>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var listenCs = server.ConnectionString(ClusterLifecycle.WorkerLogin, "aos-bench-raw-listen");
        var workCs = server.ConnectionString(ClusterLifecycle.WorkerLogin, RawFigures.App);
        var ready = 0;
        var allReady = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        async Task Worker(int w)
        {
            await using var listen = new NpgsqlConnection(listenCs);
            await using var work = new NpgsqlConnection(workCs);
            await listen.OpenAsync(ct);
            await work.OpenAsync(ct);
            await using var claim = new NpgsqlCommand("""
                UPDATE bench.raw_queue SET status = 'running', worker = $1
                 WHERE id = (SELECT id FROM bench.raw_queue WHERE status = 'ready' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                RETURNING id
                """, work);
            claim.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = "w" + w.ToString(CultureInfo.InvariantCulture) });
            await claim.PrepareAsync(ct);
            await using var finish = new NpgsqlCommand("DELETE FROM bench.raw_queue WHERE id = $1", work);
            var idp = new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Bigint, Value = 0L };
            finish.Parameters.Add(idp);
            await finish.PrepareAsync(ct);
            var pending = 0;
            listen.Notification += (_, _) => Interlocked.Increment(ref pending);
            await using (var l = new NpgsqlCommand("LISTEN raw_ready", listen))
            {
                await l.ExecuteNonQueryAsync(ct);
            }
            if (Interlocked.Increment(ref ready) == workers)
            {
                allReady.TrySetResult();
            }
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    if (Interlocked.Exchange(ref pending, 0) == 0)
                    {
                        await listen.WaitAsync(stop.Token);
                        if (Interlocked.Exchange(ref pending, 0) == 0)
                        {
                            continue;
                        }
                    }
                    var tn = Stopwatch.GetTimestamp();
                    var id = (long?)await claim.ExecuteScalarAsync(stop.Token);
                    if (id is null)
                    {
                        continue;
                    }
                    claimed.Set(id.Value, Stopwatch.GetTimestamp());
                    woken.Set(id.Value, tn);
                    idp.Value = id.Value;
                    await finish.ExecuteNonQueryAsync(stop.Token);
                    done.Set(id.Value, 0);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
            }
        }

        var tasks = Enumerable.Range(0, workers).Select(w => Task.Run(() => Worker(w), CancellationToken.None)).ToArray();
        List<(double Start, double Return, double Woken)> ms;
        try
        {
            await Task.WhenAny(allReady.Task, Task.WhenAll(tasks)).Unwrap();
            ms = await OnSenderThread(() =>
            {
                var list = new List<(double Start, double Return, double Woken)>(samples);
                using var sender = new NpgsqlConnection(workCs);
                sender.Open();
                using var send = new NpgsqlCommand("""
                    WITH j AS (INSERT INTO bench.raw_queue (payload) VALUES ($1) RETURNING id)
                    SELECT id, pg_notify('raw_ready', id::text) FROM j
                    """, sender);
                send.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Jsonb, Value = "{}" });
                send.Prepare();
                var rng = new Random(11);
                for (var s = 0; s < samples + 5; s++)
                {
                    send.Parameters[0].Value = $"{{\"kind\": \"turn\", \"n\": {s}}}";
                    long id;
                    long t0, tr;
                    using (var tx = sender.BeginTransaction())
                    {
                        send.Transaction = tx;
                        using (var r = send.ExecuteReader())
                        {
                            r.Read();
                            id = r.GetInt64(0);
                        }
                        t0 = Stopwatch.GetTimestamp();
                        tx.Commit();
                        tr = Stopwatch.GetTimestamp();
                    }
                    var t1 = claimed.Wait(id, ct);
                    var tw = woken.Wait(id, ct);
                    done.Wait(id, ct);
                    if (s >= 5)
                    {
                        list.Add((Ms(t0, t1), Ms(tr, t1), Ms(t0, tw)));
                    }
                    if (s % 25 == 0)
                    {
                        progress.Tick($"raw LISTEN/NOTIFY claim, {workers} worker(s): {s}/{samples}");
                    }
                    Thread.Sleep(rng.Next(2, 6));
                }
                return list;
            });
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(tasks);
        }
        return new Latency(LatencyStats.Of([.. ms.Select(m => m.Start)]), LatencyStats.Of([.. ms.Select(m => m.Return)]),
            LatencyStats.Of([.. ms.Select(m => m.Woken)]));
    }

    /// <summary>What the waiting workers of figures 4 and 5 report.</summary>
    private sealed class Signals
    {
        public Rendezvous<Guid> Claimed { get; } = new();
        public Rendezvous<Guid> Woken { get; } = new();
        public Rendezvous<Guid> Parked { get; } = new();
        public Rendezvous<Guid> Executing { get; } = new();
        public Rendezvous<Guid> Done { get; } = new();
        public ConcurrentDictionary<Guid, Guid> ParkedStep { get; } = new();
    }

    /// <summary>
    /// N runtime-like workers: each waits on its own LISTEN aos_turn_ready connection and claims
    /// when woken. A fresh turn of an approval agent gets a tool call (and parks); a turn with an
    /// approved call gets its ticket (the tool starts) and is finished; any other turn is answered.
    /// </summary>
    private static Task[] StartWorkers(BenchServer server, int workers, Signals signals, bool approvals, TaskCompletionSource allReady,
        CancellationToken stop)
    {
        var workerSource = server.DataSource(ClusterLifecycle.WorkerLogin, "aos-bench-latency");
        var listenSource = server.DataSource(ClusterLifecycle.WorkerLogin, "aos-bench-latency-listen");
        var client = new AosClient(workerSource);
        var ready = 0;

        async Task Worker(int w)
        {
            var m = new StepFigures.Material(900 + w);
            var name = "bench-latency-" + w.ToString(CultureInfo.InvariantCulture);
            try
            {
                await foreach (var n in AosNotifications.ListenAsync(listenSource, [AosNotifications.TurnReady], TimeSpan.FromSeconds(60), stop))
                {
                    if (n.Channel == "poll")
                    {
                        if (n.Payload == "listening" && Interlocked.Increment(ref ready) == workers)
                        {
                            allReady.TrySetResult();
                        }
                        continue;
                    }
                    var tn = Stopwatch.GetTimestamp();
                    var ctx = await client.ClaimTurnAsync(name, 30, null, startApprovedCall: approvals, stop);
                    if (ctx is null)
                    {
                        continue;
                    }
                    var t = Stopwatch.GetTimestamp();
                    var lease = ctx.LeaseToken!.Value;
                    signals.Claimed.Set(ctx.TurnId, t);
                    signals.Woken.Set(ctx.TurnId, tn);
                    if (ctx.ApprovedToolCalls.Count > 0)
                    {
                        var call = ctx.ApprovedToolCalls[0];
                        // the claim started the call (its ticket came with the turn), as the runtime finds it
                        var ticket = call.Ticket ?? await client.BeginToolExecutionAsync(ctx.TurnId, lease, call.StepId, call.Name,
                            System.Text.Json.Nodes.JsonNode.Parse(call.Arguments.GetRawText())!, stop);
                        signals.Executing.Set(ctx.TurnId, Stopwatch.GetTimestamp());
                        await client.RecordToolResultAsync(ctx.TurnId, call.Name, m.Results[0], leaseToken: lease, ticket: ticket, ct: stop);
                        await client.RecordResponseAsync(ctx.TurnId, lease, new ModelResponse { Text = m.Answers[0], Usage = new Usage(900, 50) }, stop);
                        signals.Done.Set(ctx.TurnId, 0);
                    }
                    else if (approvals)
                    {
                        var r = await client.RecordResponseAsync(ctx.TurnId, lease, new ModelResponse
                        {
                            Thinking = m.Thinking[0],
                            ToolCalls = [new ModelToolCall("call_1", "web_search", m.Args[0])],
                            Usage = new Usage(800, 40),
                        }, stop);
                        if (r.Status != "waiting_approval")
                        {
                            throw new InvalidOperationException($"the tool call did not wait for approval ({r.Status})");
                        }
                        signals.ParkedStep[ctx.TurnId] = r.ToolCalls[0].StepId;
                        signals.Parked.Set(ctx.TurnId, 0);
                    }
                    else
                    {
                        await client.RecordResponseAsync(ctx.TurnId, lease, new ModelResponse { Text = m.Answers[0], Usage = new Usage(500, 30) }, stop);
                        signals.Done.Set(ctx.TurnId, 0);
                    }
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
            }
        }

        return [.. Enumerable.Range(0, workers).Select(w => Task.Run(() => Worker(w), CancellationToken.None))];
    }

    /// <summary>Who waits for the work of figures 4 and 5, and what they report.</summary>
    private abstract class Waiters
    {
        /// <summary>True when the waiters report the moment they read the notification (<see cref="Signals.Woken"/>).</summary>
        public abstract bool ReportsWoken { get; }

        /// <summary>Starts them; <paramref name="allReady"/> completes once they all listen.</summary>
        public abstract Task[] Start(Signals signals, TaskCompletionSource allReady, CancellationToken stop);

        /// <summary>Throws what went wrong on the waiters' side, if anything did.</summary>
        public virtual void ThrowIfFailed()
        {
        }

        /// <summary>N runtime-like workers, each on its own LISTEN connection (a fleet of one-slot hosts).</summary>
        public static Waiters Listeners(BenchServer server, int workers, bool approvals) => new ListenerWaiters(server, workers, approvals);

        /// <summary>One <see cref="WorkerHost"/> of the runtime with N slots.</summary>
        public static Waiters Host(BenchServer server, Guid tenant, int slots, bool approvals) => new HostWaiters(server, tenant, slots, approvals);

        /// <summary>The host (<paramref name="host"/>) or the fleet of listeners.</summary>
        public static Waiters For(bool host, BenchServer server, Guid tenant, int workers, bool approvals) =>
            host ? Host(server, tenant, workers, approvals) : Listeners(server, workers, approvals);
    }

    private sealed class ListenerWaiters(BenchServer server, int workers, bool approvals) : Waiters
    {
        public override bool ReportsWoken => true;

        public override Task[] Start(Signals signals, TaskCompletionSource allReady, CancellationToken stop) =>
            StartWorkers(server, workers, signals, approvals, allReady, stop);
    }

    /// <summary>
    /// The runtime as it ships: one WorkerHost with N slots over one pool, one LISTEN connection for
    /// the whole host (held while a slot is idle), and a notification wakes one idle slot. The agent
    /// runs on the scripted stand-in model; web_search is an in-process tool that notes when it starts.
    /// </summary>
    private sealed class HostWaiters(BenchServer server, Guid tenant, int slots, bool approvals) : Waiters
    {
        private static int _hosts;
        // a name of its own per host, so that a former host's connection cannot pass for this one's LISTEN
        private readonly string _app = "aos-bench-latency-host-" + Interlocked.Increment(ref _hosts).ToString(CultureInfo.InvariantCulture);
        private string? _error;

        public override bool ReportsWoken => false;

        public override void ThrowIfFailed()
        {
            if (Volatile.Read(ref _error) is { } e)
            {
                throw new InvalidOperationException($"the runtime host failed: {e}");
            }
        }

        public override Task[] Start(Signals signals, TaskCompletionSource allReady, CancellationToken stop)
        {
            var host = new WorkerHost(server.DataSource(ClusterLifecycle.WorkerLogin, _app), new WorkerOptions
            {
                WorkerId = "bench-latency-host",
                Concurrency = slots,
                LeaseSeconds = 60,
                TenantId = tenant,
                Providers = new ProviderSettings(),
                ExtraTools = new Dictionary<string, ITool> { ["web_search"] = new NotingSearch(signals) },
            });
            host.Event += e =>
            {
                var at = Stopwatch.GetTimestamp();
                switch (e.Kind)
                {
                    case WorkerEventKind.TurnClaimed when e.TurnId is { } id && !approvals:
                        // (an approval turn is claimed twice; figure 5 ends when the tool starts)
                        signals.Claimed.Set(id, at);
                        break;
                    case WorkerEventKind.WaitingForApproval when e.TurnId is { } id:
                        signals.Parked.Set(id, 0);
                        break;
                    case WorkerEventKind.TurnFinished when e.TurnId is { } id:
                        if (e.Status != "completed")
                        {
                            Interlocked.CompareExchange(ref _error, $"turn {id} ended {e.Status}: {e.Message}", null);
                        }
                        signals.Done.Set(id, 0);
                        break;
                    case WorkerEventKind.TurnDropped:
                        Interlocked.CompareExchange(ref _error, e.Message, null);
                        break;
                }
            };
            var run = Task.Run(async () =>
            {
                await using (host)
                {
                    await host.RunAsync(stop);
                }
            }, CancellationToken.None);
            var ready = Task.Run(async () =>
            {
                // ready once the host holds its LISTEN (it does while a slot is idle)
                var deadline = Stopwatch.StartNew();
                while (!stop.IsCancellationRequested && !run.IsCompleted)
                {
                    var listening = await server.ScalarSuperAsync<long>(
                        $"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{_app}' AND query = 'LISTEN \"aos_turn_ready\"'", stop);
                    if (listening > 0)
                    {
                        allReady.TrySetResult();
                        return;
                    }
                    if (deadline.Elapsed > TimeSpan.FromSeconds(30))
                    {
                        throw new TimeoutException("the runtime host did not LISTEN within 30 s");
                    }
                    await Task.Delay(20, stop);
                }
            }, CancellationToken.None);
            // a stop during the wait is not a failure; anything else is (and ends MeasureAsync's wait for readiness)
            return [run, ready.ContinueWith(t =>
            {
                if (t.IsFaulted && !stop.IsCancellationRequested)
                {
                    throw t.Exception!.InnerException!;
                }
            }, TaskScheduler.Default)];
        }

        /// <summary>web_search answered at once; notes the moment the runtime started it.</summary>
        private sealed class NotingSearch(Signals signals) : ITool
        {
            private readonly JsonObject _result = Payloads.SearchResult(new Random(6));

            public Task<ToolResult> RunAsync(ToolCall call, CancellationToken ct)
            {
                signals.Executing.Set(call.TurnId, Stopwatch.GetTimestamp());
                return Task.FromResult(ToolResult.Ok(_result.DeepClone()));
            }
        }
    }

    /// <summary>The scripted model's answers for the host: the answer at once, or web_search (which waits for approval) and then the answer.</summary>
    private static JsonObject HostScript(bool approvals)
    {
        var m = new StepFigures.Material(950);
        var answer = new JsonObject { ["text"] = m.Answers[0] };
        return new JsonObject
        {
            ["script"] = approvals
                ? new JsonArray(new JsonObject
                {
                    ["thinking"] = m.Thinking[0],
                    ["tool_calls"] = new JsonArray(new JsonObject { ["name"] = "web_search", ["arguments"] = JsonNode.Parse(m.Args[0].ToJsonString()) }),
                }, answer)
                : new JsonArray(answer),
        };
    }

    private static string Who(int workers, bool host) =>
        host ? $"one runtime host, {workers} slot(s)" : $"{workers} worker(s)";

    /// <summary>
    /// Samples run before measuring: six per waiting worker. PostgreSQL plans the statements inside a
    /// PL/pgSQL function anew for each of a session's first five calls (custom plans) and then keeps a
    /// generic plan; the workers share a pool, so a connection serves the winning claim only about
    /// every N-th time. Measured after that, as a long-running worker fleet runs (the raw baseline's
    /// statements are prepared before it starts).
    /// </summary>
    internal static int WarmupSamples(int workers) => Math.Max(5, 6 * workers);

    /// <summary>Figure 4: send_message committed → a waiting worker holds the turn (claim_turn returned).</summary>
    public static async Task<Latency> DispatchAsync(BenchServer server, Scenario sc, int workers, int samples, string tenantName,
        BenchProgress progress, CancellationToken ct, bool host = false)
    {
        var (tenant, app, agent) = await sc.TenantAsync(tenantName, autoApprove: true, bigBudget: false, ct,
            host ? HostScript(approvals: false) : null);
        var waiters = Waiters.For(host, server, tenant, workers, approvals: false);
        return await MeasureAsync(waiters, sc, app, agent, workers, samples, seed: 12,
            $"dispatch send_message → claimed, {Who(workers, host)}", progress, (conn, conv, signals, rng) =>
            {
                Thread.Sleep(rng.Next(2, 6));
                using var tx = conn.BeginTransaction();
                var turn = app.InTransaction(conn, tx).SendMessageAsync(conv, "What is the capital of France?", ct: ct).GetAwaiter().GetResult();
                var t0 = Stopwatch.GetTimestamp();
                tx.Commit();
                return (turn, t0, Stopwatch.GetTimestamp());
            }, (signals, turn) => signals.Claimed.Wait(turn, ct), ct);
    }

    /// <summary>Figure 5: approve_step committed → the waiting worker has claimed the turn and holds the execution ticket.</summary>
    public static async Task<Latency> ApprovalAsync(BenchServer server, Scenario sc, int workers, int samples, BenchProgress progress,
        CancellationToken ct, bool host = false)
    {
        var (tenant, app, agent) = await sc.TenantAsync((host ? "bench-approval-host-" : "bench-approval-") + workers.ToString(CultureInfo.InvariantCulture),
            autoApprove: false, bigBudget: false, ct, host ? HostScript(approvals: true) : null);
        var waiters = Waiters.For(host, server, tenant, workers, approvals: true);
        return await MeasureAsync(waiters, sc, app, agent, workers, samples, seed: 13,
            $"approval approve_step → tool started, {Who(workers, host)}", progress, (conn, conv, signals, rng) =>
            {
                var turn = app.SendMessageAsync(conv, "Look up today's weather in Paris.", ct: ct).GetAwaiter().GetResult();
                signals.Parked.Wait(turn, ct);
                Guid step;
                if (host)
                {
                    step = app.PendingApprovalsAsync(ct).GetAwaiter().GetResult().Single(a => a.TurnId == turn).StepId;
                }
                else
                {
                    signals.Woken.Wait(turn, ct); // the claim that parked it; the sample is the next one
                    signals.ParkedStep.TryRemove(turn, out step);
                }
                Thread.Sleep(rng.Next(2, 6));
                using var tx = conn.BeginTransaction();
                app.InTransaction(conn, tx).ApproveStepAsync(step, true, note: "fine", ct: ct).GetAwaiter().GetResult();
                var t0 = Stopwatch.GetTimestamp();
                tx.Commit();
                return (turn, t0, Stopwatch.GetTimestamp());
            }, (signals, turn) => signals.Executing.Wait(turn, ct), ct);
    }

    /// <summary>
    /// One latency figure of our kernel: N waiting workers, and one sender on a thread of its own that,
    /// per sample, commits something (<paramref name="commit"/>: the turn, and the clock before and
    /// after its COMMIT) and waits until a worker has <paramref name="reached"/> the point measured.
    /// A conversation serves ten turns, so claims read up to nine earlier turns of history.
    /// </summary>
    private static async Task<Latency> MeasureAsync(Waiters waiters, Scenario sc, AosClient app, Guid agent, int workers, int samples,
        int seed, string what, BenchProgress progress, Func<NpgsqlConnection, Guid, Signals, Random, (Guid Turn, long T0, long Tr)> commit,
        Func<Signals, Guid, long> reached, CancellationToken ct)
    {
        var signals = new Signals();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var allReady = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var tasks = waiters.Start(signals, allReady, stop.Token);
        List<(double Start, double Return, double Woken)> ms;
        try
        {
            await Task.WhenAny(allReady.Task, Task.WhenAll(tasks)).Unwrap();
            ms = await OnSenderThread(() =>
            {
                var list = new List<(double Start, double Return, double Woken)>(samples);
                using var conn = sc.AdminSource.OpenConnection();
                var rng = new Random(seed);
                Guid conv = default;
                var warmup = WarmupSamples(workers);
                for (var s = 0; s < samples + warmup; s++)
                {
                    if (s % 10 == 0)
                    {
                        conv = app.StartConversationAsync(agent, ct: ct).GetAwaiter().GetResult();
                        progress.Tick($"{what}: {Math.Max(0, s - warmup)}/{samples}");
                    }
                    var (turn, t0, tr) = commit(conn, conv, signals, rng);
                    var t1 = reached(signals, turn);
                    var tw = waiters.ReportsWoken ? signals.Woken.Wait(turn, ct) : t1;
                    signals.Done.Wait(turn, ct);
                    waiters.ThrowIfFailed();
                    if (s >= warmup)
                    {
                        list.Add((Ms(t0, t1), Ms(tr, t1), Ms(t0, tw)));
                    }
                }
                return list;
            });
        }
        catch (TimeoutException)
        {
            waiters.ThrowIfFailed();  // what the waiters saw go wrong, rather than the wait that ran out
            throw;
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(tasks);
        }
        waiters.ThrowIfFailed();
        return new Latency(LatencyStats.Of([.. ms.Select(m => m.Start)]), LatencyStats.Of([.. ms.Select(m => m.Return)]),
            waiters.ReportsWoken ? LatencyStats.Of([.. ms.Select(m => m.Woken)]) : null);
    }
}
