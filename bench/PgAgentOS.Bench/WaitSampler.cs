using System.Globalization;
using Npgsql;

namespace PgAgentOS.Bench;

/// <summary>
/// Where the backends of an application spend their time: samples pg_stat_activity every few
/// milliseconds and counts each backend's state (running on CPU, waiting on a lock, on WAL, idle
/// waiting for its client...).
/// </summary>
internal sealed class WaitSampler : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _task;
    private readonly Dictionary<string, long> _counts = new(StringComparer.Ordinal);
    private long _samples;

    private WaitSampler(BenchServer server, string applicationName)
    {
        _task = Task.Run(() => RunAsync(server, applicationName, _stop.Token));
    }

    public static WaitSampler Start(BenchServer server, string applicationName) => new(server, applicationName);

    private async Task RunAsync(BenchServer server, string applicationName, CancellationToken ct)
    {
        try
        {
            await using var conn = await server.OpenSuperAsync("postgres", ct);
            await using var cmd = new NpgsqlCommand("""
                SELECT CASE WHEN state = 'active' AND wait_event IS NULL THEN 'running (CPU)'
                            WHEN state = 'active' THEN wait_event_type || ': ' || wait_event
                            WHEN state = 'idle in transaction' THEN 'idle in transaction (client)'
                            ELSE 'idle (waiting for the client)' END
                  FROM pg_stat_activity
                 WHERE application_name = $1 AND backend_type = 'client backend'
                """, conn);
            cmd.Parameters.AddWithValue(applicationName);
            await cmd.PrepareAsync(ct);
            while (!ct.IsCancellationRequested)
            {
                await using (var r = await cmd.ExecuteReaderAsync(ct))
                {
                    while (await r.ReadAsync(ct))
                    {
                        var k = r.GetString(0);
                        lock (_counts)
                        {
                            _counts[k] = _counts.GetValueOrDefault(k) + 1;
                            _samples++;
                        }
                    }
                }
                await Task.Delay(20, ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (NpgsqlException)
        {
            // sampling is best effort
        }
    }

    /// <summary>Share of backend samples per state, largest first (at most eight).</summary>
    public Dictionary<string, double> Shares()
    {
        lock (_counts)
        {
            return _samples == 0
                ? []
                : _counts.OrderByDescending(kv => kv.Value).Take(8)
                    .ToDictionary(kv => kv.Key, kv => Math.Round(kv.Value / (double)_samples, 3));
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await _stop.CancelAsync();
        }
        await _task;
    }

    /// <summary>"running (CPU) 62 %, LWLock: WALWrite 20 %, ..." for the terminal.</summary>
    public static string Describe(Dictionary<string, double>? shares) =>
        shares is null || shares.Count == 0
            ? ""
            : string.Join(", ", shares.Take(4).Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value * 100:0}%")));
}
