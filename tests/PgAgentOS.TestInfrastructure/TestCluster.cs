using System.Globalization;
using Npgsql;
using PgAgentOS.Client;
using PgAgentOS.Embedded;
using Xunit;

namespace PgAgentOS.TestInfrastructure;

/// <summary>
/// One throwaway PostgreSQL cluster per test process: initdb into a temporary directory, a free
/// loopback port, stopped (and deleted) when the process exits. A template database holds the
/// kernel; each test class gets a fresh database cloned from it. Tests connect through login
/// roles that are members of the kernel's roles, never as superuser unless a test says so.
/// If the cluster cannot start the tests fail; they never skip.
/// </summary>
public sealed class TestCluster
{
    /// <summary>Name of the template database with the kernel installed (manual path, from the embedded SQL).</summary>
    public const string TemplateDatabase = "aos_template";

    /// <summary>Login for the application role.</summary>
    public const string App = "t_app";
    /// <summary>Login for the worker role.</summary>
    public const string Worker = "t_worker";
    /// <summary>Login for the platform administrator role; owns the test databases.</summary>
    public const string Admin = "t_admin";
    /// <summary>Login for the read-only analytics role.</summary>
    public const string Analytics = "t_analytics";
    /// <summary>A login that belongs to no pgAgentOS role.</summary>
    public const string Nobody = "t_nobody";

    private static readonly Lazy<Task<TestCluster>> Shared = new(StartAsync, LazyThreadSafetyMode.ExecutionAndPublication);
    private static int _dbCounter;
    private static readonly SemaphoreSlim CreateLock = new(1, 1);
    private readonly string _root;

    private TestCluster(EmbeddedCluster cluster, string root)
    {
        Cluster = cluster;
        _root = root;
    }

    /// <summary>The cluster.</summary>
    public EmbeddedCluster Cluster { get; }

    /// <summary>The server programs.</summary>
    public PgBinaries Binaries => Cluster.Binaries!;

    /// <summary>The password of every test login.</summary>
    public string LoginPassword => Cluster.State!.Logins[App];

    /// <summary>The process-wide cluster, started on first use.</summary>
    public static Task<TestCluster> GetAsync() => Shared.Value;

    /// <summary>Connection string to <paramref name="database"/> as a test login, or as the superuser when login is null.</summary>
    public string ConnectionString(string database, string? login = null)
    {
        var b = new NpgsqlConnectionStringBuilder(Cluster.ConnectionString(database, login))
        {
            MaxPoolSize = 60,
            ApplicationName = "aos-tests",
            IncludeErrorDetail = true,
        };
        return b.ConnectionString;
    }

    /// <summary>A new empty database (no kernel).</summary>
    public async Task<string> CreateEmptyDatabaseAsync(string prefix = "e")
    {
        var name = NewName(prefix);
        await ExecSuperAsync("postgres", $"CREATE DATABASE {name} OWNER {Admin}");
        return name;
    }

    /// <summary>A new database cloned from the template (kernel installed), owned by the admin login.</summary>
    public async Task<string> CreateDatabaseAsync(string prefix = "t")
    {
        var name = NewName(prefix);
        await CreateLock.WaitAsync();
        try
        {
            await ExecSuperAsync("postgres", $"CREATE DATABASE {name} TEMPLATE {TemplateDatabase} OWNER {Admin}");
        }
        finally
        {
            CreateLock.Release();
        }
        return name;
    }

    /// <summary>Runs SQL as the superuser.</summary>
    public async Task ExecSuperAsync(string database, string sql)
    {
        await using var conn = new NpgsqlConnection(ConnectionString(database));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = 300 };
        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>Runs psql with a script on standard input; returns exit code and output.</summary>
    public async Task<ProcessResult> PsqlAsync(string database, string? login, string script, params string[] extraArgs)
    {
        var file = Path.Combine(_root, "psql-" + Guid.NewGuid().ToString("N") + ".sql");
        await File.WriteAllTextAsync(file, script);
        try
        {
            var user = login ?? Cluster.State!.SuperUser;
            var pw = login is null ? Cluster.State!.SuperPassword : LoginPassword;
            var url = ConnectionUrl.Build("127.0.0.1", Cluster.State!.Port, database, user, pw);
            var args = new List<string> { "-X", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", file };
            args.AddRange(extraArgs);
            return await OsProcess.RunAsync(Binaries.Tool("psql"), args, asServiceUser: false);
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static string NewName(string prefix) =>
        string.Create(CultureInfo.InvariantCulture, $"{prefix}_{Environment.ProcessId}_{Interlocked.Increment(ref _dbCounter)}");

    private static async Task<TestCluster> StartAsync()
    {
        // The owner's pid is part of the name, so that scripts/test.sh sweeps only clusters whose test host is gone.
        var root = Path.Combine(Path.GetTempPath(), $"aos-test-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(root);
        File.SetUnixFileMode(root, (UnixFileMode)0b111_101_101);
        var cluster = new EmbeddedCluster(Path.Combine(root, "pgdata"));
        try
        {
            await cluster.InitAsync(new ClusterOptions
            {
                Ephemeral = true,
                ExtraSettings = ["log_min_messages = warning", "max_locks_per_transaction = 256"],
            });
            await cluster.StartAsync();
        }
        catch (Exception e)
        {
            throw new InvalidOperationException(
                $"The test PostgreSQL cluster did not start ({e.Message}). Run scripts/setup.sh first. Log: {cluster.TailLog(30)}", e);
        }
        var tc = new TestCluster(cluster, root);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => tc.Shutdown();

        await tc.ExecSuperAsync("postgres", $"CREATE DATABASE {TemplateDatabase}");
        await using (var conn = new NpgsqlConnection(tc.ConnectionString(TemplateDatabase) + ";Pooling=false"))
        {
            await conn.OpenAsync();
            await KernelInstaller.InstallAsync(conn, InstallMethod.Manual);
        }

        var password = EmbeddedCluster.NewPassword();
        foreach (var (login, role) in new[]
                 {
                     (App, "aos_app"), (Worker, "aos_worker"), (Admin, "aos_admin"), (Analytics, "aos_analytics"), (Nobody, null),
                 })
        {
            await tc.ExecSuperAsync("postgres", $"CREATE ROLE {login} LOGIN PASSWORD '{password}'"
                                                + (role is null ? "" : $" IN ROLE {role}"));
            cluster.RememberLogin(login, password);
        }
        await tc.ExecSuperAsync("postgres", $"ALTER DATABASE {TemplateDatabase} OWNER TO {Admin}");
        await tc.ExecSuperAsync("postgres", $"ALTER DATABASE {TemplateDatabase} WITH IS_TEMPLATE true");
        return tc;
    }

    private void Shutdown()
    {
        try
        {
            NpgsqlConnection.ClearAllPools();
            Cluster.StopAsync(immediate: true).GetAwaiter().GetResult();
            Directory.Delete(_root, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ClusterException or InvalidOperationException)
        {
            // Best effort at exit: scripts/test.sh sweeps leftovers.
        }
    }
}

/// <summary>A fresh kernel database per test class (xunit class fixture).</summary>
public class KernelDatabase : IAsyncLifetime
{
    private readonly Dictionary<string, NpgsqlDataSource> _sources = [];

    /// <summary>The cluster.</summary>
    public TestCluster Cluster { get; private set; } = null!;

    /// <summary>The database name.</summary>
    public string Name { get; private set; } = "";

    /// <summary>Connection string as a login (null: superuser).</summary>
    public string ConnectionString(string? login = TestCluster.Admin) => Cluster.ConnectionString(Name, login);

    /// <summary>A shared data source per login.</summary>
    public NpgsqlDataSource DataSource(string? login = TestCluster.Admin)
    {
        lock (_sources)
        {
            var key = login ?? "";
            if (!_sources.TryGetValue(key, out var ds))
            {
                // As the SDK would use it: no DISCARD ALL on reuse (AosClient.CreateDataSource), a
                // pool of its own (tests' raw connections may bind tenants for their session).
                ds = AosClient.CreateDataSource(ConnectionString(login));
                _sources[key] = ds;
            }
            return ds;
        }
    }

    /// <summary>An open connection as a login (null: superuser).</summary>
    public async Task<NpgsqlConnection> OpenAsync(string? login = TestCluster.Admin)
    {
        var conn = new NpgsqlConnection(ConnectionString(login));
        await conn.OpenAsync();
        return conn;
    }

    /// <inheritdoc />
    public virtual async Task InitializeAsync()
    {
        Cluster = await TestCluster.GetAsync();
        Name = await Cluster.CreateDatabaseAsync();
    }

    /// <inheritdoc />
    public virtual async Task DisposeAsync()
    {
        foreach (var ds in _sources.Values)
        {
            await ds.DisposeAsync();
        }
    }
}
