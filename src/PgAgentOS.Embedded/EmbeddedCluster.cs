using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;
using Npgsql;
using PgAgentOS.Client;

namespace PgAgentOS.Embedded;

/// <summary>What the cluster remembers between runs (aos-cluster.json in the data directory, mode 0600).</summary>
public sealed class ClusterState
{
    /// <summary>Loopback port the server listens on.</summary>
    public int Port { get; set; }

    /// <summary>Bootstrap superuser.</summary>
    public string SuperUser { get; set; } = "postgres";

    /// <summary>Generated password of the superuser.</summary>
    public string SuperPassword { get; set; } = "";

    /// <summary>Database the kernel is installed in.</summary>
    public string Database { get; set; } = "aos";

    /// <summary>Login roles created by aos up, with their generated passwords (admin: aos, worker: aos_runner).</summary>
    public Dictionary<string, string> Logins { get; set; } = [];

    /// <summary>PostgreSQL major version of the cluster.</summary>
    public int PgMajor { get; set; }

    /// <summary>When the cluster was created.</summary>
    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>Options for a new cluster.</summary>
public sealed record ClusterOptions
{
    /// <summary>Trade durability for speed (fsync off): for throwaway test clusters only.</summary>
    public bool Ephemeral { get; init; }

    /// <summary>Extra postgresql.conf lines.</summary>
    public IReadOnlyList<string> ExtraSettings { get; init; } = [];

    /// <summary>Preferred port; 0 picks a free one.</summary>
    public int Port { get; init; }
}

/// <summary>A cluster's data directory is unusable (not empty and not a cluster, and the like).</summary>
public sealed class ClusterException(string message, string? hint = null) : Exception(message)
{
    /// <summary>What to do about it.</summary>
    public string? Hint { get; } = hint;
}

/// <summary>
/// A private PostgreSQL cluster in a data directory: initdb, start on a free loopback port, stop.
/// Only TCP on 127.0.0.1 is enabled, with scram-sha-256 passwords generated at creation.
/// </summary>
public sealed class EmbeddedCluster
{
    private const string StateFile = "aos-cluster.json";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    /// <summary>A cluster in <paramref name="dataDir"/> (which may not exist yet).</summary>
    public EmbeddedCluster(string dataDir, PgBinaries? binaries = null)
    {
        DataDir = Path.GetFullPath(dataDir);
        Binaries = binaries;
    }

    /// <summary>The data directory.</summary>
    public string DataDir { get; }

    /// <summary>The server log.</summary>
    public string LogFile => Path.Combine(DataDir, "log", "postgresql.log");

    /// <summary>The server programs; located on first use.</summary>
    public PgBinaries? Binaries { get; private set; }

    /// <summary>The remembered state, once created or loaded.</summary>
    public ClusterState? State { get; private set; }

    /// <summary>
    /// The default data directory: $XDG_DATA_HOME/pgagentos/cluster (~/.local/share/...), or
    /// /var/lib/pgagentos/cluster when running as root (the cluster's OS user cannot enter /root).
    /// </summary>
    public static string DefaultDataDir()
    {
        if (OsProcess.IsRoot)
        {
            return "/var/lib/pgagentos/cluster";
        }
        var xdg = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        var baseDir = !string.IsNullOrEmpty(xdg)
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
        return Path.Combine(baseDir, "pgagentos", "cluster");
    }

    /// <summary>True when the data directory holds a PostgreSQL cluster.</summary>
    public bool Exists => File.Exists(Path.Combine(DataDir, "PG_VERSION"));

    /// <summary>Loads aos-cluster.json; false when there is none.</summary>
    public bool TryLoadState()
    {
        var path = Path.Combine(DataDir, StateFile);
        if (!File.Exists(path))
        {
            return false;
        }
        State = JsonSerializer.Deserialize<ClusterState>(File.ReadAllText(path), Json);
        return State is not null;
    }

    /// <summary>Refuses a directory that exists, is not empty and is not a cluster made by aos.</summary>
    public void CheckUsable()
    {
        if (Exists)
        {
            if (!File.Exists(Path.Combine(DataDir, StateFile)))
            {
                throw new ClusterException(
                    $"{DataDir} is a PostgreSQL data directory that aos did not create (no {StateFile})",
                    "Point --data-dir at an empty directory, or use that server with --db URL.");
            }
            return;
        }
        if (File.Exists(DataDir))
        {
            throw new ClusterException($"{DataDir} is a file, not a directory", "Choose another --data-dir.");
        }
        if (Directory.Exists(DataDir) && Directory.EnumerateFileSystemEntries(DataDir).Any())
        {
            throw new ClusterException(
                $"{DataDir} is not a PostgreSQL data directory and is not empty",
                "Choose an empty directory (or a cluster created by aos) with --data-dir.");
        }
    }

    /// <summary>initdb into the data directory, with a generated superuser password.</summary>
    public async Task InitAsync(ClusterOptions? options = null, CancellationToken ct = default)
    {
        options ??= new ClusterOptions();
        CheckUsable();
        if (Exists)
        {
            throw new ClusterException($"{DataDir} already holds a cluster");
        }
        Binaries ??= PgBinaries.Locate();
        Directory.CreateDirectory(DataDir);
        if (OsProcess.IsRoot)
        {
            // The service user must be able to reach the data directory through its parents.
            for (var d = Path.GetDirectoryName(DataDir); d is not null && d != "/"; d = Path.GetDirectoryName(d))
            {
                var mode = File.GetUnixFileMode(d);
                if (!mode.HasFlag(UnixFileMode.OtherExecute))
                {
                    throw new ClusterException(
                        $"{OsProcess.ServiceUser} cannot enter {d}, a parent of the data directory",
                        "As root, put the cluster under /var/lib or /tmp (for example --data-dir /var/lib/pgagentos/cluster).");
                }
            }
        }
        File.SetUnixFileMode(DataDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await OsProcess.ChownToServiceUserAsync(DataDir, ct);

        var state = new ClusterState
        {
            SuperPassword = NewPassword(),
            PgMajor = Binaries.Major,
            CreatedAt = DateTimeOffset.UtcNow,
        };

        var pwFile = Path.Combine(Path.GetTempPath(), "aos-pw-" + Guid.NewGuid().ToString("N"));
        await File.WriteAllTextAsync(pwFile, state.SuperPassword + "\n", ct);
        File.SetUnixFileMode(pwFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        try
        {
            await OsProcess.ChownToServiceUserAsync(pwFile, ct);
            var r = await OsProcess.RunAsync(Binaries.Tool("initdb"),
                ["-D", DataDir, "-U", state.SuperUser, "--pwfile", pwFile, "-A", "scram-sha-256", "-E", "UTF8",
                 "--locale=C", "--no-instructions"],
                timeout: TimeSpan.FromMinutes(3), ct: ct);
            if (r.ExitCode != 0)
            {
                throw new ClusterException($"initdb failed: {FirstLine(r.Message)}");
            }
        }
        finally
        {
            File.Delete(pwFile);
        }

        var conf = new List<string>
        {
            "",
            "# --- written by aos (pgAgentOS) ---",
            "listen_addresses = '127.0.0.1'",
            "unix_socket_directories = ''",
            "max_connections = 300",
            "shared_buffers = 128MB",
            "idle_in_transaction_session_timeout = '10min'",
            "tcp_keepalives_idle = 30",
            "client_connection_check_interval = '10s'",
            "log_line_prefix = '%m [%p] %q%u@%d '",
        };
        if (options.Ephemeral)
        {
            conf.AddRange(["fsync = off", "synchronous_commit = off", "full_page_writes = off", "max_wal_size = '1GB'"]);
        }
        conf.AddRange(options.ExtraSettings);
        // postgresql.conf belongs to the service user; appending as root keeps its owner.
        await File.AppendAllLinesAsync(Path.Combine(DataDir, "postgresql.conf"), conf, ct);

        var logDir = Path.Combine(DataDir, "log");
        Directory.CreateDirectory(logDir);
        await OsProcess.ChownToServiceUserAsync(logDir, ct);

        state.Port = options.Port;
        State = state;
        SaveState();
    }

    /// <summary>True when a server is running on this data directory.</summary>
    public async Task<bool> IsRunningAsync(CancellationToken ct = default)
    {
        if (!Exists)
        {
            return false;
        }
        Binaries ??= PgBinaries.Locate();
        var r = await OsProcess.RunAsync(Binaries.Tool("pg_ctl"), ["status", "-D", DataDir], ct: ct);
        return r.ExitCode == 0;
    }

    /// <summary>Starts the server on its remembered port, or on a free one when that is taken.</summary>
    public async Task StartAsync(CancellationToken ct = default)
    {
        if (State is null && !TryLoadState())
        {
            throw new ClusterException($"{DataDir} has no {StateFile}", "Create the cluster with aos up.");
        }
        Binaries ??= PgBinaries.Locate();
        var state = State!;
        string? lastError = null;
        for (var attempt = 0; attempt < 6; attempt++)
        {
            if (state.Port <= 0 || !IsPortFree(state.Port))
            {
                state.Port = FreePort();
            }
            var r = await OsProcess.RunAsync(Binaries.Tool("pg_ctl"),
                ["start", "-D", DataDir, "-l", LogFile, "-w", "-t", "90", "-s",
                 "-o", $"-p {state.Port.ToString(CultureInfo.InvariantCulture)}"],
                timeout: TimeSpan.FromMinutes(2), ct: ct);
            if (r.ExitCode == 0)
            {
                SaveState();
                return;
            }
            lastError = r.Message;
            var log = TailLog(20);
            if (log.Contains("could not bind", StringComparison.OrdinalIgnoreCase)
                || log.Contains("Address already in use", StringComparison.OrdinalIgnoreCase))
            {
                state.Port = 0; // taken between our check and the server's bind: pick another
                continue;
            }
            break;
        }
        throw new ClusterException($"the PostgreSQL server did not start: {FirstLine(lastError ?? "")}. Log: {LogFile}",
            "Read the log above; aos down, then aos up, retries.");
    }

    /// <summary>Stops the server (fast shutdown by default; immediate for throwaway clusters).</summary>
    public async Task StopAsync(bool immediate = false, CancellationToken ct = default)
    {
        if (!Exists)
        {
            return;
        }
        Binaries ??= PgBinaries.Locate();
        var r = await OsProcess.RunAsync(Binaries.Tool("pg_ctl"),
            ["stop", "-D", DataDir, "-m", immediate ? "immediate" : "fast", "-w", "-t", "60", "-s"], ct: ct);
        if (r.ExitCode != 0 && await IsRunningAsync(ct))
        {
            throw new ClusterException($"pg_ctl stop failed: {FirstLine(r.Message)}");
        }
    }

    /// <summary>Connection string for a login of this cluster.</summary>
    public string ConnectionString(string database, string? user = null, string? password = null)
    {
        var s = State ?? throw new InvalidOperationException("cluster state not loaded");
        user ??= s.SuperUser;
        password ??= user == s.SuperUser ? s.SuperPassword
            : s.Logins.TryGetValue(user, out var pw) ? pw : throw new InvalidOperationException($"no password known for {user}");
        return new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = s.Port,
            Database = database,
            Username = user,
            Password = password,
            Pooling = true,
            Timeout = 15,
            MaxPoolSize = 100,
        }.ConnectionString;
    }

    /// <summary>postgresql:// URL for a login of this cluster.</summary>
    public string Url(string? user = null, string? database = null)
    {
        var s = State ?? throw new InvalidOperationException("cluster state not loaded");
        user ??= s.SuperUser;
        var pw = user == s.SuperUser ? s.SuperPassword : s.Logins.GetValueOrDefault(user);
        return ConnectionUrl.Build("127.0.0.1", s.Port, database ?? s.Database, user, pw);
    }

    /// <summary>Remembers a login and its password in the state file.</summary>
    public void RememberLogin(string user, string password)
    {
        State!.Logins[user] = password;
        SaveState();
    }

    /// <summary>A new random password (URL-safe).</summary>
    public static string NewPassword() =>
        Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)).Replace('+', 'x').Replace('/', 'y').TrimEnd('=');

    /// <summary>The last lines of the server log.</summary>
    public string TailLog(int lines)
    {
        try
        {
            if (!File.Exists(LogFile))
            {
                return "";
            }
            var all = File.ReadAllLines(LogFile);
            return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
        }
        catch (IOException)
        {
            return "";
        }
        catch (UnauthorizedAccessException)
        {
            return "";
        }
    }

    /// <summary>A free TCP port on the loopback interface.</summary>
    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    private static bool IsPortFree(int port)
    {
        try
        {
            using var l = new TcpListener(IPAddress.Loopback, port);
            l.Start();
            l.Stop();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private void SaveState()
    {
        var path = Path.Combine(DataDir, StateFile);
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(State, Json));
        File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(tmp, path, overwrite: true);
    }

    private static string FirstLine(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "(no output)";
}
