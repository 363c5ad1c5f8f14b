using System.Globalization;
using System.Runtime.InteropServices;
using Npgsql;
using PgAgentOS.Client;
using PgAgentOS.Embedded;

namespace PgAgentOS.Bench;

/// <summary>
/// The bench's own PostgreSQL: a durable embedded cluster (default settings: synchronous_commit
/// on, fsync on, full_page_writes on) in a temporary directory, with the kernel installed, the
/// logins of aos up, pg_stat_statements loaded, and the plain tables of the raw baselines.
/// </summary>
public sealed class BenchServer : IAsyncDisposable
{
    /// <summary>The database the kernel is installed in.</summary>
    public const string Database = "aos";

    private readonly string _root;
    private readonly bool _keep;
    private readonly List<NpgsqlDataSource> _sources = [];

    private BenchServer(EmbeddedCluster cluster, string root, bool keep)
    {
        Cluster = cluster;
        _root = root;
        _keep = keep;
    }

    /// <summary>The cluster.</summary>
    public EmbeddedCluster Cluster { get; }

    /// <summary>True when pg_stat_statements is loaded.</summary>
    public bool HasStatements { get; private set; }

    /// <summary>pgbench of the same PostgreSQL installation, when installed.</summary>
    public string? Pgbench { get; private set; }

    /// <summary>Creates, starts and prepares the cluster.</summary>
    public static async Task<BenchServer> StartAsync(BenchOptions options, BenchProgress progress, CancellationToken ct)
    {
        var binaries = PgBinaries.Locate();
        var baseDir = options.WorkDir ?? Path.GetTempPath();
        // The owner's pid is in the name, so that scripts/bench.sh can sweep clusters whose bench died.
        var root = Path.Combine(Path.GetFullPath(baseDir), $"aos-bench-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(root);
        File.SetUnixFileMode(root, (UnixFileMode)0b111_101_101);
        var cluster = new EmbeddedCluster(Path.Combine(root, "pgdata"), binaries);
        var server = new BenchServer(cluster, root, options.KeepCluster);
        try
        {
            var lib = Path.Combine(Path.GetDirectoryName(binaries.BinDir)!, "lib", "pg_stat_statements.so");
            server.HasStatements = File.Exists(lib);
            var extra = new List<string>
            {
                "log_min_messages = warning",
                "log_checkpoints = on",
            };
            if (server.HasStatements)
            {
                extra.Add("shared_preload_libraries = 'pg_stat_statements'");
                extra.Add("pg_stat_statements.track = 'top'");
                extra.Add("pg_stat_statements.max = 2000");
            }
            progress.Info($"initdb (PostgreSQL {binaries.Major}, durable defaults) in {cluster.DataDir}");
            await cluster.InitAsync(new ClusterOptions { Ephemeral = false, ExtraSettings = extra }, ct);
            await cluster.StartAsync(ct);
            progress.Info("installing the kernel (from this build's SQL), the logins and the baseline tables");
            await server.BootstrapAsync(ct);
            var pgbench = binaries.Tool("pgbench");
            server.Pgbench = File.Exists(pgbench) ? pgbench : null;
            await server.PrepareAsync(ct);
            foreach (var name in options.Prototypes)
            {
                var file = Path.Combine(AppContext.BaseDirectory, "prototypes", name + ".sql");
                if (!File.Exists(file))
                {
                    throw new ArgumentException($"no prototype {name} ({file})");
                }
                progress.Info($"PROTOTYPE: applying {name}.sql (not the kernel as built)");
                await server.ExecSuperAsync(await File.ReadAllTextAsync(file, ct), ct);
            }
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// What aos up does (database, administrator and worker logins), but the kernel always from the
    /// SQL embedded in this build: CREATE EXTENSION would take whatever pgagentos files happen to be
    /// installed in the server's share directory.
    /// </summary>
    private async Task BootstrapAsync(CancellationToken ct)
    {
        var admin = ClusterLifecycle.AdminLogin;
        var worker = ClusterLifecycle.WorkerLogin;
        var adminPw = EmbeddedCluster.NewPassword();
        var workerPw = EmbeddedCluster.NewPassword();
        await ExecSuperAsync($"CREATE ROLE {admin} LOGIN PASSWORD '{adminPw}'", ct, "postgres");
        Cluster.RememberLogin(admin, adminPw);
        await ExecSuperAsync($"CREATE DATABASE {Database} OWNER {admin}", ct, "postgres");
        await using (var conn = await OpenSuperAsync(Database, ct))
        {
            await KernelInstaller.InstallAsync(conn, InstallMethod.Manual, ct);
        }
        await ExecSuperAsync($"GRANT aos_admin TO {admin}; CREATE ROLE {worker} LOGIN PASSWORD '{workerPw}'; GRANT aos_worker TO {worker};", ct);
        Cluster.RememberLogin(worker, workerPw);
    }

    private async Task PrepareAsync(CancellationToken ct)
    {
        var worker = ClusterLifecycle.WorkerLogin;
        await ExecSuperAsync($"""
            {(HasStatements ? "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;" : "")}
            CREATE SCHEMA bench;
            -- the plain table of figure 1: a step-sized JSON row, a surrogate key, a timestamp
            CREATE TABLE bench.raw_step (
                id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                created_at timestamptz NOT NULL DEFAULT now(),
                content    jsonb NOT NULL
            );
            -- the plain queue of figures 1 and 4
            CREATE TABLE bench.raw_queue (
                id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                status     text NOT NULL DEFAULT 'ready',
                worker     text,
                payload    jsonb NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX raw_queue_ready_idx ON bench.raw_queue (id) WHERE status = 'ready';
            GRANT USAGE ON SCHEMA bench TO {worker};
            GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA bench TO {worker};
            """, ct);
    }

    /// <summary>
    /// A pooled data source for a login (null: superuser), tagged with an application name; like
    /// AosClient.CreateDataSource, pooled connections are not reset with DISCARD ALL unless asked.
    /// </summary>
    public NpgsqlDataSource DataSource(string? login, string applicationName, int maxPool = 200, bool noResetOnClose = true)
    {
        var b = new NpgsqlConnectionStringBuilder(Cluster.ConnectionString(Database, login))
        {
            ApplicationName = applicationName,
            MaxPoolSize = maxPool,
            Timeout = 30,
            CommandTimeout = 600,
            NoResetOnClose = noResetOnClose,
        };
        var ds = NpgsqlDataSource.Create(b.ConnectionString);
        lock (_sources)
        {
            _sources.Add(ds);
        }
        return ds;
    }

    /// <summary>Connection string of a login (null: superuser) to a database.</summary>
    public string ConnectionString(string? login, string applicationName, string database = Database)
    {
        return new NpgsqlConnectionStringBuilder(Cluster.ConnectionString(database, login))
        {
            ApplicationName = applicationName,
            Timeout = 30,
            CommandTimeout = 3600,
        }.ConnectionString;
    }

    /// <summary>A new superuser connection (not pooled) to a database.</summary>
    public async Task<NpgsqlConnection> OpenSuperAsync(string database = Database, CancellationToken ct = default)
    {
        var conn = new NpgsqlConnection(ConnectionString(null, "aos-bench-admin", database) + ";Pooling=false");
        await conn.OpenAsync(ct);
        return conn;
    }

    /// <summary>Runs SQL as the superuser.</summary>
    public async Task ExecSuperAsync(string sql, CancellationToken ct = default, string database = Database)
    {
        await using var conn = await OpenSuperAsync(database, ct);
        await using var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = 3600 };
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>First column of the first row, as the superuser.</summary>
    public async Task<T> ScalarSuperAsync<T>(string sql, CancellationToken ct = default, string database = Database)
    {
        await using var conn = await OpenSuperAsync(database, ct);
        await using var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = 3600 };
        var v = await cmd.ExecuteScalarAsync(ct);
        return (T)Convert.ChangeType(v!, typeof(T), CultureInfo.InvariantCulture);
    }

    /// <summary>Pids of the backends of an application name.</summary>
    public async Task<List<int>> BackendPidsAsync(string applicationName, CancellationToken ct = default)
    {
        await using var conn = await OpenSuperAsync("postgres", ct);
        await using var cmd = new NpgsqlCommand("SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND backend_type = 'client backend'", conn);
        cmd.Parameters.AddWithValue(applicationName);
        var pids = new List<int>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            pids.Add(r.GetInt32(0));
        }
        return pids;
    }

    /// <summary>
    /// Commits of the bench database so far. Pools are emptied first and the call waits until their
    /// backends are gone, because a backend reports its counters when it exits (or, idle, up to
    /// ten seconds later); reading happens from another database. Listening connections (application
    /// names ending in -listen) stay open: LISTEN is their only commit.
    /// </summary>
    public async Task<long> SettledCommitsAsync(CancellationToken ct = default)
    {
        ClearPools();
        await using var conn = await OpenSuperAsync("postgres", ct);
        for (var i = 0; i < 200; i++)
        {
            await using var c = new NpgsqlCommand(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND application_name NOT LIKE '%-listen'", conn);
            c.Parameters.AddWithValue(Database);
            if ((long)(await c.ExecuteScalarAsync(ct))! == 0)
            {
                break;
            }
            await Task.Delay(50, ct);
        }
        await using var cmd = new NpgsqlCommand("SELECT xact_commit FROM pg_stat_database WHERE datname = $1", conn);
        cmd.Parameters.AddWithValue(Database);
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>Closes the idle connections of every pool (their backends exit and report their counters).</summary>
    public void ClearPools()
    {
        lock (_sources)
        {
            foreach (var s in _sources)
            {
                s.Clear();
            }
        }
        NpgsqlConnection.ClearAllPools();
    }

    /// <summary>The current WAL insert position (bytes).</summary>
    public async Task<long> WalPositionAsync(CancellationToken ct = default) =>
        await ScalarSuperAsync<long>("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn", ct, "postgres");

    /// <summary>The machine and the server.</summary>
    public async Task<MachineInfo> MachineAsync(CancellationToken ct)
    {
        var m = new MachineInfo
        {
            Cpu = CpuModel(),
            Cores = Environment.ProcessorCount,
            RamBytes = MemTotal(),
            Os = RuntimeInformation.OSDescription,
            DotNet = RuntimeInformation.FrameworkDescription,
            LoadAtStart = LoadAverage(),
            Storage = Storage(Cluster.DataDir),
        };
        await using var conn = await OpenSuperAsync(Database, ct);
        await using (var cmd = new NpgsqlCommand("SELECT version()", conn))
        {
            m.Postgres = (string)(await cmd.ExecuteScalarAsync(ct))!;
        }
        await using (var cmd = new NpgsqlCommand("""
            SELECT name, setting || coalesce(' ' || unit, '') FROM pg_settings
             WHERE name IN ('synchronous_commit', 'fsync', 'full_page_writes', 'wal_sync_method', 'wal_level', 'shared_buffers',
                            'max_wal_size', 'checkpoint_timeout', 'commit_delay', 'wal_buffers', 'max_connections',
                            'shared_preload_libraries', 'autovacuum', 'jit', 'work_mem', 'effective_io_concurrency')
             ORDER BY name
            """, conn))
        {
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                m.Settings[r.GetString(0)] = r.GetString(1);
            }
        }
        return m;
    }

    /// <summary>Load average (1, 5, 15 minutes).</summary>
    public static double[] LoadAverage()
    {
        try
        {
            return [.. File.ReadAllText("/proc/loadavg").Split(' ').Take(3).Select(s => double.Parse(s, CultureInfo.InvariantCulture))];
        }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static string CpuModel()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                if (line.StartsWith("model name", StringComparison.Ordinal))
                {
                    return line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
                }
            }
        }
        catch (IOException)
        {
        }
        return RuntimeInformation.ProcessArchitecture.ToString();
    }

    private static long MemTotal()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
                {
                    var kb = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
                    return kb * 1024;
                }
            }
        }
        catch (Exception e) when (e is IOException or FormatException)
        {
        }
        return 0;
    }

    private static string? Storage(string path)
    {
        try
        {
            string? best = null;
            var bestLen = -1;
            foreach (var line in File.ReadLines("/proc/mounts"))
            {
                var f = line.Split(' ');
                if (f.Length < 3)
                {
                    continue;
                }
                var mount = f[1];
                if ((path == mount || path.StartsWith(mount.TrimEnd('/') + "/", StringComparison.Ordinal)) && mount.Length > bestLen)
                {
                    best = $"{f[2]} ({f[0]} on {mount})";
                    bestLen = mount.Length;
                }
            }
            return best;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Stops the cluster and removes its directory (unless kept).</summary>
    public async ValueTask DisposeAsync()
    {
        List<NpgsqlDataSource> sources;
        lock (_sources)
        {
            sources = [.. _sources];
            _sources.Clear();
        }
        foreach (var s in sources)
        {
            await s.DisposeAsync();
        }
        NpgsqlConnection.ClearAllPools();
        if (_keep)
        {
            // scripts/bench.sh leaves clusters with this marker alone
            await File.WriteAllTextAsync(Path.Combine(_root, "keep"), Cluster.Url());
            return;
        }
        try
        {
            await Cluster.StopAsync(immediate: true);
        }
        catch (Exception e) when (e is ClusterException or IOException or InvalidOperationException)
        {
            // best effort; scripts/bench.sh sweeps clusters whose bench is gone
        }
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>CPU time of processes from /proc (Linux).</summary>
public static class ProcCpu
{
    private static readonly Lazy<double> TicksPerSecond = new(ClockTicks);

    /// <summary>User + system CPU seconds of a process (0 when it is gone).</summary>
    public static double Seconds(int pid)
    {
        try
        {
            var s = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            var f = s[(s.LastIndexOf(')') + 2)..].Split(' ');
            // after the command: state is field 3; utime and stime are fields 14 and 15
            var ticks = long.Parse(f[11], CultureInfo.InvariantCulture) + long.Parse(f[12], CultureInfo.InvariantCulture);
            return ticks / TicksPerSecond.Value;
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    /// <summary>Sum over processes.</summary>
    public static double Seconds(IEnumerable<int> pids) => pids.Sum(Seconds);

    private static double ClockTicks()
    {
        // USER_HZ: 100 on every mainstream Linux; getconf says for sure.
        try
        {
            var psi = new System.Diagnostics.ProcessStartInfo("getconf", "CLK_TCK") { RedirectStandardOutput = true, UseShellExecute = false };
            using var p = System.Diagnostics.Process.Start(psi);
            if (p is not null)
            {
                var text = p.StandardOutput.ReadToEnd().Trim();
                p.WaitForExit();
                if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var hz) && hz > 0)
                {
                    return hz;
                }
            }
        }
        catch (System.ComponentModel.Win32Exception)
        {
        }
        return 100;
    }
}
