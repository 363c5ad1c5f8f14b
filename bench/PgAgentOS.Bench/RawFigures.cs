using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Npgsql;
using NpgsqlTypes;
using PgAgentOS.Embedded;

namespace PgAgentOS.Bench;

/// <summary>Figure 1: the raw baselines on plain tables, as plain as a client can be.</summary>
internal static partial class RawFigures
{
    public const string App = "aos-bench-raw";

    /// <summary>Single-row INSERTs of step-sized rows, one per transaction, through a plain Npgsql loop.</summary>
    public static async Task<ThroughputPoint> InsertNpgsqlAsync(BenchServer server, NpgsqlDataSource ds, int clients, double warmup,
        double duration, BenchProgress progress, CancellationToken ct)
    {
        return await Load.RunAsync(server, App, clients, async (i, token) =>
        {
            var rng = new Random(1000 + i);
            var rows = Enumerable.Range(0, 256).Select(_ => Payloads.RawRow(rng)).ToArray();
            var conn = await ds.OpenConnectionAsync(token);
            var cmd = new NpgsqlCommand("INSERT INTO bench.raw_step (content) VALUES ($1)", conn);
            var p = new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Jsonb, Value = rows[0] };
            cmd.Parameters.Add(p);
            await cmd.PrepareAsync(token);
            var n = 0;
            return new LoadClient
            {
                Op = async t =>
                {
                    p.Value = rows[n++ & 255];
                    await cmd.ExecuteNonQueryAsync(t);
                    return 1;
                },
                Finish = async _ =>
                {
                    await cmd.DisposeAsync();
                    await conn.DisposeAsync();
                },
            };
        }, warmup, duration, progress, "raw INSERT (Npgsql)", ct);
    }

    /// <summary>The same INSERTs through pgbench (prepared statements, C client): the strictest baseline.</summary>
    public static async Task<ThroughputPoint?> InsertPgbenchAsync(BenchServer server, string workDir, int clients, double duration,
        BenchProgress progress, CancellationToken ct)
    {
        if (server.Pgbench is null)
        {
            return null;
        }
        var rng = new Random(7);
        var script = Path.Combine(workDir, "raw_insert.pgbench");
        // The row varies per transaction (the number), so the server parses ~500 bytes of JSON each time.
        var reasoning = Payloads.Text(rng, 440);
        await File.WriteAllTextAsync(script,
            "\\set n random(1, 100000)\n" +
            "INSERT INTO bench.raw_step (content) VALUES (('{\"type\": \"think\", \"turn\": ' || :n || ', \"reasoning\": \"" + reasoning + "\"}')::jsonb);\n",
            ct);
        var state = server.Cluster.State!;
        var psi = new ProcessStartInfo(server.Pgbench)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[]
                 {
                     "-n", "-M", "prepared", "-c", clients.ToString(CultureInfo.InvariantCulture),
                     "-j", Math.Min(clients, Environment.ProcessorCount).ToString(CultureInfo.InvariantCulture),
                     "-T", Math.Max(1, (int)Math.Round(duration)).ToString(CultureInfo.InvariantCulture),
                     "-f", script, "-h", "127.0.0.1", "-p", state.Port.ToString(CultureInfo.InvariantCulture),
                     "-U", ClusterLifecycle.WorkerLogin, BenchServer.Database,
                 })
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment["PGPASSWORD"] = state.Logins[ClusterLifecycle.WorkerLogin];
        psi.Environment["PGAPPNAME"] = App + "-pgbench";
        psi.Environment["LC_ALL"] = "C.UTF-8";
        progress.Tick($"raw INSERT (pgbench), {clients} client(s), {duration:0.#} s");
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start pgbench");
        var outTask = p.StandardOutput.ReadToEndAsync(ct);
        var errTask = p.StandardError.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct);
        var output = await outTask;
        var err = await errTask;
        var tps = TpsPattern().Match(output);
        var count = CountPattern().Match(output);
        if (p.ExitCode != 0 || !tps.Success)
        {
            throw new InvalidOperationException($"pgbench failed (exit {p.ExitCode}): {err.Trim()} {output.Trim()}");
        }
        var perSecond = double.Parse(tps.Groups[1].Value, CultureInfo.InvariantCulture);
        var n = count.Success ? long.Parse(count.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
        return new ThroughputPoint
        {
            Clients = clients,
            PerSecond = perSecond,
            CallsPerSecond = perSecond,
            Units = n,
            Calls = n,
            Seconds = n > 0 ? n / perSecond : duration,
        };
    }

    /// <summary>Fills the plain queue with ready jobs.</summary>
    public static async Task FillQueueAsync(BenchServer server, int rows, CancellationToken ct)
    {
        await server.ExecSuperAsync($"""
            TRUNCATE bench.raw_queue;
            INSERT INTO bench.raw_queue (payload)
            SELECT jsonb_build_object('kind', 'turn', 'turn_id', gen_random_uuid(), 'n', g) FROM generate_series(1, {rows}) g;
            """, ct);
        await server.ExecSuperAsync("VACUUM ANALYZE bench.raw_queue", ct);
    }

    /// <summary>SKIP LOCKED claim, then complete (delete): two commits per cycle, one connection per client.</summary>
    public static async Task<ThroughputPoint> QueueAsync(BenchServer server, NpgsqlDataSource ds, int clients, double warmup, double duration,
        BenchProgress progress, CancellationToken ct)
    {
        return await Load.RunAsync(server, App, clients, async (i, token) =>
        {
            var conn = await ds.OpenConnectionAsync(token);
            var claim = new NpgsqlCommand("""
                UPDATE bench.raw_queue SET status = 'running', worker = $1
                 WHERE id = (SELECT id FROM bench.raw_queue WHERE status = 'ready' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                RETURNING id, payload
                """, conn);
            claim.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = "w" + i.ToString(CultureInfo.InvariantCulture) });
            var done = new NpgsqlCommand("DELETE FROM bench.raw_queue WHERE id = $1", conn);
            var id = new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Bigint, Value = 0L };
            done.Parameters.Add(id);
            await claim.PrepareAsync(token);
            await done.PrepareAsync(token);
            return new LoadClient
            {
                Op = async t =>
                {
                    long? claimed = null;
                    await using (var r = await claim.ExecuteReaderAsync(t))
                    {
                        if (await r.ReadAsync(t))
                        {
                            claimed = r.GetInt64(0);
                            _ = r.GetString(1);
                        }
                    }
                    if (claimed is null)
                    {
                        return 0;
                    }
                    id.Value = claimed.Value;
                    await done.ExecuteNonQueryAsync(t);
                    return 1;
                },
                Finish = async _ =>
                {
                    await claim.DisposeAsync();
                    await done.DisposeAsync();
                    await conn.DisposeAsync();
                },
            };
        }, warmup, duration, progress, "raw SKIP LOCKED queue", ct);
    }

    [GeneratedRegex(@"tps = ([0-9.]+) \(without initial connection time\)")]
    private static partial Regex TpsPattern();

    [GeneratedRegex(@"number of transactions actually processed: ([0-9]+)")]
    private static partial Regex CountPattern();
}
