using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PgAgentOS.Client;
using PgAgentOS.Runtime.Mcp;
using PgAgentOS.Runtime.Models;
using PgAgentOS.Runtime.Tools;

namespace PgAgentOS.Runtime;

/// <summary>
/// A worker process's engine (aos worker): <see cref="WorkerOptions.Concurrency"/> slots, each
/// claiming a turn (FOR UPDATE SKIP LOCKED in the kernel), driving it and claiming the next.
/// LISTEN aos_turn_ready wakes idle slots (the host listens only while a slot is idle); polling
/// every <see cref="WorkerOptions.PollInterval"/> backs it up (NOTIFY is only a hint). A turn that
/// waits for an approval frees its slot; the approval's notification brings it back to some worker.
/// When the database goes away, slots back off (with jitter) and carry on once it is back; turns
/// they held are claimed again after their lease. Several hosts, in one process or on many
/// machines, share one database safely.
/// </summary>
public sealed class WorkerHost : IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly WorkerOptions _options;
    private readonly ILogger _log;
    private readonly AosClient _client;
    private readonly ChatClientFactory _models;
    private readonly McpConnections _mcp;
    private readonly ToolRegistry _tools;
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private readonly SemaphoreSlim _listenNeeded = new(0, 1);
    private int _busy;
    private int _idle;
    private int _listening;

    /// <summary>A worker over a data source whose login is a member of aos_worker.</summary>
    public WorkerHost(NpgsqlDataSource dataSource, WorkerOptions options, ILoggerFactory? loggerFactory = null)
    {
        _dataSource = dataSource ?? throw new ArgumentNullException(nameof(dataSource));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        if (options.Concurrency < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "Concurrency must be at least 1");
        }
        if (options.LeaseSeconds is < 1 or > 3600)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "LeaseSeconds must be between 1 and 3600");
        }
        var factory = loggerFactory ?? NullLoggerFactory.Instance;
        _log = factory.CreateLogger("PgAgentOS.Runtime.Worker");
        _client = new AosClient(dataSource);
        _models = new ChatClientFactory(options, loggerFactory);
        _mcp = new McpConnections(options.McpServers, loggerFactory);
        _tools = new ToolRegistry(options, _mcp);
    }

    /// <summary>What the worker does: turn claimed, step recorded, stream delta, waiting for approval, turn finished, error.</summary>
    public event Action<WorkerEvent>? Event;

    /// <summary>The options.</summary>
    public WorkerOptions Options => _options;

    /// <summary>Runs until cancelled; on cancellation, turns in hand are released (or left to their lease while a tool runs).</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        using var export = RuntimeTelemetry.StartExportFromEnvironment();
        _log.LogInformation("worker {Worker} started: {Concurrency} slots, lease {Lease} s, {Providers}", _options.WorkerId,
            _options.Concurrency, _options.LeaseSeconds, _options.Providers);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var listener = Task.Run(() => ListenAsync(linked.Token), CancellationToken.None);
        var slots = Enumerable.Range(0, _options.Concurrency).Select(i => Task.Run(() => SlotAsync(i, linked.Token), CancellationToken.None)).ToList();
        await Task.WhenAll(slots);
        await linked.CancelAsync();
        await listener;
        _log.LogInformation("worker {Worker} stopped", _options.WorkerId);
    }

    /// <summary>
    /// Works until no turn is runnable (every slot idle and nothing to claim); returns how many
    /// turns it worked on (finished, parked for approval, or dropped).
    /// </summary>
    public async Task<int> RunUntilIdleAsync(CancellationToken ct)
    {
        var count = 0;
        var done = false;
        async Task Slot()
        {
            var backoff = TimeSpan.FromMilliseconds(100);
            var finished = new List<Guid>();
            while (!Volatile.Read(ref done) && !ct.IsCancellationRequested)
            {
                TurnContext? ctx;
                Interlocked.Increment(ref _busy);
                try
                {
                    ctx = await _client.ClaimTurnAsync(_options.WorkerId, _options.LeaseSeconds, _options.TenantId, finished, startApprovedCall: true, ct);
                    finished.Clear();
                    backoff = TimeSpan.FromMilliseconds(100);
                }
                catch (Exception e) when (TurnRunner.IsDatabaseFailure(e) && !ct.IsCancellationRequested)
                {
                    Interlocked.Decrement(ref _busy);
                    EmitSafe(new WorkerEvent(WorkerEventKind.Error, null, null, "claim failed: " + e.Message));
                    await DelayAsync(backoff, ct);
                    backoff = Next(backoff);
                    continue;
                }
                if (ctx is null)
                {
                    if (Interlocked.Decrement(ref _busy) == 0)
                    {
                        Volatile.Write(ref done, true);
                        _wake.Release(_options.Concurrency);
                        return;
                    }
                    await WaitAsync(TimeSpan.FromMilliseconds(100), ct);
                    continue;
                }
                try
                {
                    await RunTurnAsync(ctx, finished, ct);
                    Interlocked.Increment(ref count);
                }
                finally
                {
                    Interlocked.Decrement(ref _busy);
                    // wake one idle slot (bounded: a count that only grows would make idle slots claim for nothing)
                    if (_wake.CurrentCount < _options.Concurrency)
                    {
                        _wake.Release(1);
                    }
                }
            }
            await FlushFinishedAsync(finished);  // another slot saw the queue empty first
        }
        await Task.WhenAll(Enumerable.Range(0, _options.Concurrency).Select(_ => Task.Run(Slot, CancellationToken.None)));
        return count;
    }

    private async Task SlotAsync(int slot, CancellationToken ct)
    {
        var finished = new List<Guid>();
        try
        {
            await SlotLoopAsync(slot, finished, ct);
        }
        finally
        {
            await FlushFinishedAsync(finished);
        }
    }

    private async Task SlotLoopAsync(int slot, List<Guid> finished, CancellationToken ct)
    {
        var backoff = TimeSpan.FromMilliseconds(100);
        while (!ct.IsCancellationRequested)
        {
            TurnContext? ctx;
            try
            {
                ctx = await _client.ClaimTurnAsync(_options.WorkerId, _options.LeaseSeconds, _options.TenantId, finished, startApprovedCall: true, ct);
                finished.Clear();
                backoff = TimeSpan.FromMilliseconds(100);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (TurnRunner.IsDatabaseFailure(e) || e is AosException)
            {
                EmitSafe(new WorkerEvent(WorkerEventKind.Error, null, null, $"slot {slot}: claim failed ({e.Message}); retrying in {backoff.TotalSeconds:0.#} s"));
                await DelayAsync(backoff, ct);
                backoff = Next(backoff);
                continue;
            }
            if (ctx is null)
            {
                await IdleAsync(ct);
                continue;
            }
            await RunTurnAsync(ctx, finished, ct);
        }
    }

    /// <summary>
    /// A slot found nothing to claim: it waits for a wake-up (or the poll interval), and makes
    /// sure the host listens while it does.
    /// </summary>
    private async Task IdleAsync(CancellationToken ct)
    {
        Interlocked.Increment(ref _idle);
        try
        {
            if (Volatile.Read(ref _listening) == 0 && _listenNeeded.CurrentCount == 0)
            {
                try
                {
                    _listenNeeded.Release();
                }
                catch (SemaphoreFullException)
                {
                    // another idle slot asked first
                }
            }
            await WaitAsync(_options.PollInterval, ct);
        }
        finally
        {
            Interlocked.Decrement(ref _idle);
        }
    }

    /// <summary>
    /// Runs a claimed turn. When it finished, its id joins <paramref name="finished"/>: the slot's
    /// next claim announces it (aos_turn_done) in the claim's own transaction, one commit fewer per
    /// turn. The conversation's next turn, handed back by the kernel, is left to that claim too (one
    /// turn became ready, one claimer came free). A stopping host sends both notifications itself.
    /// </summary>
    private async Task RunTurnAsync(TurnContext ctx, List<Guid> finished, CancellationToken ct)
    {
        var runner = new TurnRunner(_client, _options, _models, _tools, _log, EmitSafe, ctx);
        try
        {
            await runner.RunAsync(ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // shutting down
        }
        if (runner.Finished)
        {
            finished.Add(runner.Turn);
        }
        if (!ct.IsCancellationRequested)
        {
            return;
        }
        // This slot will not claim again: announce what it finished and wake another worker for the
        // conversation's next turn.
        await FlushFinishedAsync(finished, runner.HandedBackTurn);
    }

    /// <summary>Sends the aos_turn_done notifications a slot still owes (and an aos_turn_ready), each on its own.</summary>
    private async Task FlushFinishedAsync(List<Guid> finished, Guid? ready = null)
    {
        var notes = finished.Select(t => (AosNotifications.TurnDone, t.ToString())).ToList();
        if (ready is { } next)
        {
            notes.Add((AosNotifications.TurnReady, next.ToString()));
        }
        finished.Clear();
        foreach (var (channel, payload) in notes)
        {
            try
            {
                await _client.NotifyAsync(channel, payload, CancellationToken.None);
            }
            catch (Exception e) when (e is AosException || TurnRunner.IsDatabaseFailure(e))
            {
                _log.LogDebug(e, "{Channel} {Payload} not sent; watchers and workers poll as well", channel, payload);
            }
        }
    }

    /// <summary>
    /// LISTEN aos_turn_ready, but only while some slot waits for work. PostgreSQL makes every
    /// listening backend of the database read each notification (of any channel: turn done, stream
    /// deltas) in a transaction of its own, so a host whose slots are all busy, and which claims
    /// again by itself as each turn ends, stops listening after a poll interval without an idle
    /// slot. When a slot runs out of work again the host listens again, and once the LISTEN holds
    /// it wakes the idle slots to claim once more (a turn queued while nobody listened sent its
    /// notification to no one).
    /// </summary>
    private async Task ListenAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            if (Volatile.Read(ref _idle) == 0)
            {
                try
                {
                    await _listenNeeded.WaitAsync(ct);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return;
                }
                continue;
            }
            Volatile.Write(ref _listening, 1);
            try
            {
                var lastIdle = Stopwatch.GetTimestamp();
                await foreach (var n in AosNotifications.ListenAsync(_dataSource, [AosNotifications.TurnReady], _options.PollInterval, ct))
                {
                    if (n.Channel == AosNotifications.TurnReady && _wake.CurrentCount < _options.Concurrency)
                    {
                        _wake.Release(1);
                    }
                    else if (n.Channel == "poll" && n.Payload == "listening")
                    {
                        WakeIdleSlots();
                    }
                    if (Volatile.Read(ref _idle) > 0)
                    {
                        lastIdle = Stopwatch.GetTimestamp();
                    }
                    else if (Stopwatch.GetElapsedTime(lastIdle) >= _options.PollInterval)
                    {
                        break;  // every slot has been busy for a poll interval
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _log.LogWarning(e, "the LISTEN connection ended; slots keep polling");
                await DelayAsync(_options.PollInterval, ct);
            }
            finally
            {
                Volatile.Write(ref _listening, 0);
            }
        }
    }

    private void WakeIdleSlots()
    {
        var idle = Math.Min(Volatile.Read(ref _idle), _options.Concurrency) - _wake.CurrentCount;
        if (idle > 0)
        {
            _wake.Release(idle);
        }
    }

    private async Task WaitAsync(TimeSpan timeout, CancellationToken ct)
    {
        try
        {
            await _wake.WaitAsync(timeout, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private static async Task DelayAsync(TimeSpan backoff, CancellationToken ct)
    {
        try
        {
            await Task.Delay(TimeSpan.FromMilliseconds(backoff.TotalMilliseconds * (0.5 + Random.Shared.NextDouble())), ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private TimeSpan Next(TimeSpan backoff) =>
        TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, _options.MaxReconnectDelay.TotalMilliseconds));

    private void EmitSafe(WorkerEvent e)
    {
        if (e.Kind == WorkerEventKind.Error)
        {
            _log.LogWarning("{Event}", e.ToString());
        }
        else if (e.Kind != WorkerEventKind.StreamDelta)
        {
            _log.LogDebug("{Event}", e.ToString());
        }
        try
        {
            Event?.Invoke(e);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            _log.LogWarning(ex, "a WorkerHost.Event handler threw");
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _mcp.DisposeAsync();
        _models.Dispose();
        _wake.Dispose();
        _listenNeeded.Dispose();
    }
}
