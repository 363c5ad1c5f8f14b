using System.Diagnostics;
using System.Runtime.CompilerServices;
using Npgsql;
using PgAgentOS.Client;

namespace PgAgentOS.Cli.Live;

/// <summary>Something that happened to a followed turn.</summary>
public abstract record TurnEvent;

/// <summary>A step appeared (<see cref="IsNew"/>) or changed its status (from <see cref="Before"/>, as last seen).</summary>
public sealed record StepEvent(StepRow Step, bool IsNew, string? Before = null) : TurnEvent;

/// <summary>A piece of the answer, streamed by the worker.</summary>
public sealed record DeltaEvent(StreamDelta Delta) : TurnEvent;

/// <summary>The turn has been queued for a while and no worker took it.</summary>
public sealed record UnclaimedEvent(TimeSpan For) : TurnEvent;

/// <summary>The turn is finished.</summary>
public sealed record FinishedEvent(TurnInfo Turn) : TurnEvent;

/// <summary>
/// Follows one turn: LISTEN on the kernel's channels (and aos_stream for answer deltas), and on
/// every notification, and at least every 500 ms, reads the turn's steps again and reports what
/// is new or changed. Ends when the turn is finished.
/// </summary>
public static class TurnFollower
{
    /// <summary>How often the steps are read when nothing is notified.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(500);

    /// <summary>After how long an unclaimed turn is reported.</summary>
    public static TimeSpan UnclaimedAfter { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Follows a turn until it is finished (or <paramref name="ct"/> is cancelled).</summary>
    public static IAsyncEnumerable<TurnEvent> FollowAsync(NpgsqlDataSource listenSource, AosClient client, Guid turnId,
        CancellationToken ct = default) =>
        FollowAsync(listenSource, client, _ => Task.FromResult(turnId), ct);

    /// <summary>
    /// Starts listening, then calls <paramref name="start"/> (which sends the message and returns
    /// the new turn), so that no streamed delta is missed; then follows that turn until it is finished.
    /// </summary>
    public static async IAsyncEnumerable<TurnEvent> FollowAsync(NpgsqlDataSource listenSource, AosClient client,
        Func<CancellationToken, Task<Guid>> start, [EnumeratorCancellation] CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(start);
        Guid? started = null;
        var statuses = new Dictionary<Guid, string>();
        var clock = Stopwatch.StartNew();
        var lastRead = TimeSpan.MinValue;
        var unclaimedReported = false;
        var queuedSince = TimeSpan.Zero;
        var lastStatus = "";
        // The tenant's answers stream on a channel of its own, named by the kernel.
        var streamChannel = await client.StreamChannelAsync(ct);
        var channels = new[] { streamChannel, AosNotifications.TurnDone, AosNotifications.ApprovalNeeded, AosNotifications.TurnReady };
        async Task<(List<TurnEvent> Events, TurnInfo Turn)> ReadAsync(Guid turnId)
        {
            lastRead = clock.Elapsed;
            var events = new List<TurnEvent>();
            var snapshot = await client.GetTurnWithStepsAsync(turnId, ct)
                ?? throw new CliException($"turn {turnId} is gone", ExitCodes.NotFound);
            foreach (var s in snapshot.Steps)
            {
                if (!statuses.TryGetValue(s.StepId, out var old))
                {
                    statuses[s.StepId] = s.Status;
                    events.Add(new StepEvent(s, true));
                }
                else if (old != s.Status)
                {
                    statuses[s.StepId] = s.Status;
                    events.Add(new StepEvent(s, false, old));
                }
            }
            return (events, snapshot.Turn);
        }

        // Workers send answer deltas (aos_stream) before they record the answer, but a read of the
        // steps can see the answer before this connection has received the deltas. So when the answer
        // appears, a barrier goes out on aos_stream: notifications arrive in commit order, so once it
        // is back, every delta sent before the answer was recorded has been shown.
        var streaming = false;
        List<TurnEvent>? held = null;
        TurnInfo? heldTurn = null;
        string? barrier = null;
        var barrierDeadline = TimeSpan.Zero;

        async Task<List<TurnEvent>> AcceptAsync(List<TurnEvent> events, TurnInfo turn)
        {
            var now = new List<TurnEvent>();
            foreach (var e in events)
            {
                if (held is null && e is StepEvent { Step.StepType: "respond", IsNew: true })
                {
                    held = [];
                    barrier = "aos-sync:" + Guid.NewGuid().ToString("N");
                    barrierDeadline = clock.Elapsed + TimeSpan.FromSeconds(2);
                    try
                    {
                        await client.NotifyAsync(streamChannel, barrier, ct);
                    }
                    catch (Exception x) when (x is AosException or NpgsqlException or InvalidOperationException)
                    {
                        barrierDeadline = TimeSpan.Zero; // no barrier: show the answer now
                    }
                }
                (held ?? now).Add(e);
            }
            if (held is not null)
            {
                heldTurn = turn;
            }
            return now;
        }

        await foreach (var n in AosNotifications.ListenAsync(listenSource, channels, PollInterval, ct))
        {
            started ??= await start(ct);
            var turnId = started.Value;
            var released = false;
            if (n.Channel == streamChannel)
            {
                released = barrier is not null && n.Payload == barrier;
                var d = StreamDelta.TryParse(n.Payload);
                if (d is not null && d.TurnId == turnId)
                {
                    if (!streaming && held is null)
                    {
                        // What the worker recorded before it began streaming (a tool result) comes first.
                        streaming = true;
                        var (first, firstTurn) = await ReadAsync(turnId);
                        foreach (var e in await AcceptAsync(first, firstTurn))
                        {
                            yield return e;
                        }
                    }
                    streaming = true;
                    yield return new DeltaEvent(d);
                }
                if (!released && held is null && clock.Elapsed - lastRead < PollInterval)
                {
                    continue;
                }
            }

            TurnInfo turn;
            if (held is not null)
            {
                if (!released && clock.Elapsed < barrierDeadline)
                {
                    continue;
                }
                foreach (var e in held)
                {
                    yield return e;
                }
                turn = heldTurn!;
                held = null;
                barrier = null;
                streaming = false;
            }
            else
            {
                var (events, read) = await ReadAsync(turnId);
                foreach (var e in await AcceptAsync(events, read))
                {
                    yield return e;
                }
                if (held is not null)
                {
                    continue; // the answer waits for the barrier
                }
                turn = read;
            }
            if (turn.IsFinished)
            {
                yield return new FinishedEvent(turn);
                yield break;
            }
            if (turn.Status != lastStatus)
            {
                lastStatus = turn.Status;
                queuedSince = clock.Elapsed;
            }
            if (!unclaimedReported && turn.Status == "queued" && clock.Elapsed - queuedSince > UnclaimedAfter)
            {
                unclaimedReported = true;
                yield return new UnclaimedEvent(clock.Elapsed - queuedSince);
            }
        }
    }
}
