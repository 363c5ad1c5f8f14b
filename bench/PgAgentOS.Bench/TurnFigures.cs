using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Npgsql;
using PgAgentOS.Client;

namespace PgAgentOS.Bench;

/// <summary>What a turn driver is asked to do: run queued turns of a tenant with N workers.</summary>
internal sealed record TurnJob(BenchServer Server, Scenario Scenario, Guid Tenant, int Workers, int Turns, double TimeoutSeconds,
    BenchProgress Progress);

/// <summary>What it did.</summary>
internal sealed record TurnRun(long Completed, double Seconds, long? EmptyClaims, List<double> TurnMs)
{
    /// <summary>Where the workers' backends spent the run.</summary>
    public Dictionary<string, double>? Waits { get; init; }

    /// <summary>Something the driver reported (an error it recovered from).</summary>
    public string? Note { get; init; }
}

/// <summary>Runs the queued 5-step turns of figure 3 with N workers and an instant model.</summary>
internal interface ITurnDriver
{
    string Name { get; }

    Task<TurnRun> RunAsync(TurnJob job, CancellationToken ct);
}

/// <summary>
/// Drives turns with the SDK exactly as the runtime's worker loop does: wait for aos_turn_ready,
/// claim_turn, record_response (thinking + web_search call, auto-approved: the ticket comes
/// back), record_tool_result, record_response (thinking + final answer, which completes the turn).
/// </summary>
internal sealed class SdkTurnDriver : ITurnDriver
{
    public const string App = "aos-bench-turns";

    public string Name => "sdk";

    public async Task<TurnRun> RunAsync(TurnJob job, CancellationToken ct)
    {
        var workerSource = job.Server.DataSource(PgAgentOS.Embedded.ClusterLifecycle.WorkerLogin, App);
        var worker = new AosClient(workerSource);
        var wake = new SemaphoreSlim(0, int.MaxValue);
        await using var listen = new NpgsqlConnection(job.Server.ConnectionString(PgAgentOS.Embedded.ClusterLifecycle.WorkerLogin, App + "-listen"));
        await listen.OpenAsync(ct);
        listen.Notification += (_, _) =>
        {
            if (wake.CurrentCount < job.Workers)
            {
                wake.Release();
            }
        };
        await using (var cmd = new NpgsqlCommand($"LISTEN {AosNotifications.TurnReady}", listen))
        {
            await cmd.ExecuteNonQueryAsync(ct);
        }
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var pump = Task.Run(async () =>
        {
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    await listen.WaitAsync(stop.Token);
                }
            }
            catch (OperationCanceledException)
            {
            }
        }, CancellationToken.None);

        long claimed = 0, completed = 0, empty = 0;
        var turnMs = new ConcurrentBag<double>();
        var sw = Stopwatch.StartNew();
        var deadline = TimeSpan.FromSeconds(job.TimeoutSeconds);
        var sampler = WaitSampler.Start(job.Server, App);

        async Task Work(int w)
        {
            var m = new StepFigures.Material(500 + w);
            var name = "bench-turns-" + w.ToString(CultureInfo.InvariantCulture);
            var k = 0;
            while (Interlocked.Read(ref claimed) < job.Turns && sw.Elapsed < deadline)
            {
                var ctx = await worker.ClaimTurnAsync(name, 60, job.Tenant, ct);
                if (ctx is null)
                {
                    Interlocked.Increment(ref empty);
                    await wake.WaitAsync(20, ct);
                    continue;
                }
                Interlocked.Increment(ref claimed);
                var t0 = Stopwatch.GetTimestamp();
                var i = k++ & 31;
                var lease = ctx.LeaseToken!.Value;
                var r1 = await worker.RecordResponseAsync(ctx.TurnId, lease, new ModelResponse
                {
                    Thinking = m.Thinking[i],
                    ToolCalls = [new ModelToolCall("call_1", "web_search", m.Args[i])],
                    Usage = new Usage(1200, 60),
                }, ct);
                var ticket = r1.ToolCalls.Count == 1 ? r1.ToolCalls[0].Ticket : null;
                if (ticket is null)
                {
                    throw new InvalidOperationException($"the web_search call was not approved with a ticket ({r1.Status})");
                }
                await worker.RecordToolResultAsync(ctx.TurnId, "web_search", m.Results[i], leaseToken: lease, ticket: ticket, ct: ct);
                var r2 = await worker.RecordResponseAsync(ctx.TurnId, lease, new ModelResponse
                {
                    Thinking = m.Thinking[(i + 1) & 31],
                    Text = m.Answers[i],
                    Usage = new Usage(1400, 90),
                }, ct);
                if (r2.Status != "completed")
                {
                    throw new InvalidOperationException($"the answer left the turn {r2.Status}");
                }
                turnMs.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                var done = Interlocked.Increment(ref completed);
                if (done % 100 == 0)
                {
                    job.Progress.Tick(string.Create(CultureInfo.InvariantCulture,
                        $"whole turns, {job.Workers} worker(s): {done}/{job.Turns} ({done / sw.Elapsed.TotalSeconds:N0}/s)"));
                }
            }
        }

        try
        {
            await Task.WhenAll(Enumerable.Range(0, job.Workers).Select(w => Task.Run(() => Work(w), ct)));
        }
        finally
        {
            await stop.CancelAsync();
            await pump;
        }
        var seconds = sw.Elapsed.TotalSeconds;
        await sampler.DisposeAsync();
        await workerSource.DisposeAsync();
        return new TurnRun(completed, seconds, empty, [.. turnMs]) { Waits = sampler.Shares() };
    }
}

/// <summary>Figure 3: whole turns per second and commits per turn.</summary>
internal static class TurnFigures
{
    /// <summary>Queues the turns, then lets the driver run them; commits are counted around each part.</summary>
    public static async Task<TurnPoint> TurnsAsync(BenchServer server, Scenario sc, ITurnDriver driver, int workers, int turns,
        double timeoutSeconds, BenchProgress progress, CancellationToken ct)
    {
        var (tenant, app, agent) = await sc.TenantAsync("bench-turns-" + workers.ToString(CultureInfo.InvariantCulture) + "-"
            + (driver is SdkTurnDriver ? "sdk" : "rt" + Guid.NewGuid().ToString("N")[..6]),
            autoApprove: true, bigBudget: false, ct, driver is SdkTurnDriver ? null : RuntimeTurnDriver.AgentConfig());
        var conversations = Math.Max(8, 4 * workers);
        var convs = new Guid[conversations];
        for (var i = 0; i < conversations; i++)
        {
            convs[i] = await app.StartConversationAsync(agent, ct: ct);
        }

        progress.Tick($"whole turns, {workers} worker(s): queueing {turns} messages on {conversations} conversations");
        var s0 = await server.SettledCommitsAsync(ct);
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            int n;
            while ((n = Interlocked.Increment(ref next)) < turns)
            {
                await app.SendMessageAsync(convs[n % conversations], "Search for the latest release notes and tell me what changed.", ct: ct);
            }
        }, ct)));
        var s1 = await server.SettledCommitsAsync(ct);
        var x1 = await server.ScalarSuperAsync<long>("SELECT pg_current_xact_id()::text::bigint", ct, "postgres");
        if (server.HasStatements)
        {
            await server.ExecSuperAsync("SELECT pg_stat_statements_reset()", ct);
        }

        var run = await driver.RunAsync(new TurnJob(server, sc, tenant, workers, turns, timeoutSeconds, progress), ct);
        var x2 = await server.ScalarSuperAsync<long>("SELECT pg_current_xact_id()::text::bigint", ct, "postgres");
        var statements = server.HasStatements ? await ClientStatementsAsync(server, run.Completed, ct) : [];
        var s2 = await server.SettledCommitsAsync(ct);
        if (run.Completed == 0)
        {
            throw new InvalidOperationException($"the {driver.Name} driver completed no turn");
        }
        return new TurnPoint
        {
            Clients = workers,
            Turns = run.Completed,
            Seconds = run.Seconds,
            TurnsPerSecond = run.Completed / run.Seconds,
            CommitsPerTurn = (s2 - s1) / (double)run.Completed,
            SendCommitsPerTurn = (s1 - s0) / (double)turns,
            WriteTransactionsPerTurn = (x2 - x1 - 1) / (double)run.Completed,
            EmptyClaims = run.EmptyClaims,
            P50Ms = run.TurnMs.Count > 0 ? LatencyStats.Of(run.TurnMs).P50 : null,
            Waits = run.Waits,
            Driver = driver.Name,
            ClientStatements = statements,
        };
    }

    /// <summary>The statements the workers sent during the run, with their count per turn.</summary>
    private static async Task<List<StatementStat>> ClientStatementsAsync(BenchServer server, long turns, CancellationToken ct)
    {
        var list = new List<StatementStat>();
        await using var conn = await server.OpenSuperAsync(ct: ct);
        await using var cmd = new NpgsqlCommand("""
            SELECT regexp_replace(s.query, '\s+', ' ', 'g'), sum(s.calls)::bigint, sum(s.total_exec_time)
              FROM pg_stat_statements s
             WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND s.toplevel
               AND s.userid = (SELECT oid FROM pg_roles WHERE rolname = $1)
             GROUP BY 1 ORDER BY 2 DESC LIMIT 15
            """, conn);
        cmd.Parameters.AddWithValue(PgAgentOS.Embedded.ClusterLifecycle.WorkerLogin);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            var q = r.GetString(0);
            var n = r.GetInt64(1);
            list.Add(new StatementStat
            {
                Query = q.Length <= 120 ? q : q[..117] + "...",
                TopLevel = true,
                Calls = n,
                PerStep = n / (double)Math.Max(turns, 1),
                TotalMs = r.GetDouble(2),
                MeanMs = n > 0 ? r.GetDouble(2) / n : 0,
            });
        }
        return list;
    }
}
