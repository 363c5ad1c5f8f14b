using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Npgsql;

namespace PgAgentOS.Client;

/// <summary>
/// Notifications from the kernel (channels aos_turn_ready, aos_turn_done, aos_approval_needed;
/// payloads are ids). NOTIFY is only a hint: when nothing arrives within the poll interval a
/// <c>poll</c> tick is yielded so that callers re-check the database, and a lost connection is
/// reopened (yielding a <c>reconnected</c> tick).
/// </summary>
public static class AosNotifications
{
    /// <summary>Channel that wakes workers: a turn is ready to be claimed.</summary>
    public const string TurnReady = "aos_turn_ready";

    /// <summary>A turn finished: sent by the worker that finished it, after the commit (turns finished by hand or by a person: poll).</summary>
    public const string TurnDone = "aos_turn_done";

    /// <summary>A turn waits for an approval.</summary>
    public const string ApprovalNeeded = "aos_approval_needed";

    /// <summary>Listens on channels; yields notifications, and poll ticks when it has been quiet.</summary>
    public static async IAsyncEnumerable<AosNotification> ListenAsync(NpgsqlDataSource dataSource, IReadOnlyList<string> channels,
        TimeSpan pollInterval, [EnumeratorCancellation] CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(channels);
        var queue = Channel.CreateUnbounded<AosNotification>();
        var backoff = TimeSpan.FromMilliseconds(100);
        while (!ct.IsCancellationRequested)
        {
            NpgsqlConnection? conn = null;
            try
            {
                conn = await dataSource.OpenConnectionAsync(ct);
                conn.Notification += (_, e) => queue.Writer.TryWrite(new AosNotification(e.Channel, e.Payload));
                foreach (var ch in channels)
                {
                    await using var cmd = new NpgsqlCommand($"LISTEN \"{ch.Replace("\"", "\"\"", StringComparison.Ordinal)}\"", conn);
                    await cmd.ExecuteNonQueryAsync(ct);
                }
                backoff = TimeSpan.FromMilliseconds(100);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException)
            {
                if (conn is not null)
                {
                    await conn.DisposeAsync();
                }
                await Task.Delay(backoff, ct);
                backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, 5000));
                continue;
            }

            // One reader task keeps the connection receiving; the loop below hands items out.
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var pump = Task.Run(async () =>
            {
                try
                {
                    while (!linked.Token.IsCancellationRequested)
                    {
                        await conn.WaitAsync(linked.Token);
                    }
                }
                catch (OperationCanceledException)
                {
                }
                catch (Exception e) when (e is NpgsqlException or IOException or ObjectDisposedException)
                {
                    queue.Writer.TryWrite(new AosNotification("reconnect", e.Message));
                }
            }, CancellationToken.None);

            var lost = false;
            try
            {
                yield return new AosNotification("poll", "listening");
                while (!ct.IsCancellationRequested && !lost)
                {
                    AosNotification? item = null;
                    using (var wait = CancellationTokenSource.CreateLinkedTokenSource(ct))
                    {
                        wait.CancelAfter(pollInterval);
                        try
                        {
                            item = await queue.Reader.ReadAsync(wait.Token);
                        }
                        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                        {
                            item = new AosNotification("poll", "");
                        }
                    }
                    if (item.Channel == "reconnect")
                    {
                        lost = true;
                        continue;
                    }
                    yield return item;
                }
            }
            finally
            {
                await linked.CancelAsync();
                // The reader must stop before the connection is used again. Npgsql's WaitAsync can
                // miss its cancellation (an idle backend has no query to cancel), and a caller that
                // stops following must never hang on that: after a grace period the connection is
                // left to the reader, which closes it when its wait ends (a notification, a poll, or
                // the server closing the session), and is never reused.
                var handedToReader = false;
                if (await Task.WhenAny(pump, Task.Delay(TimeSpan.FromSeconds(2), CancellationToken.None)) != pump)
                {
                    var abandoned = conn;
                    _ = pump.ContinueWith(_ => abandoned.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously,
                        TaskScheduler.Default);
                    handedToReader = true;
                }
                else
                {
                    try
                    {
                        await pump;
                    }
                    catch (OperationCanceledException)
                    {
                    }
                }
                if (!handedToReader)
                {
                    // Pooled connections may not be reset on reuse (No Reset On Close): stop listening
                    // before this one goes back to the pool.
                    try
                    {
                        if (!lost)
                        {
                            await using var unlisten = new NpgsqlCommand("UNLISTEN *", conn);
                            await unlisten.ExecuteNonQueryAsync(CancellationToken.None);
                        }
                    }
                    catch (Exception e) when (e is NpgsqlException or IOException or InvalidOperationException)
                    {
                    }
                    await conn.DisposeAsync();
                }
            }
        }
    }
}
