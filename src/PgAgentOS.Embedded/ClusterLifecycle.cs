using Npgsql;
using PgAgentOS.Client;

namespace PgAgentOS.Embedded;

/// <summary>What <see cref="ClusterLifecycle.UpAsync"/> found and did.</summary>
/// <param name="Action">created (new cluster), started (existing, was stopped) or running (nothing to do).</param>
public sealed record UpResult(string Action, EmbeddedCluster Cluster, InstallResult Kernel)
{
    /// <summary>URL of the administrator login (the database owner, member of aos_admin).</summary>
    public string AdminUrl => Cluster.Url(ClusterLifecycle.AdminLogin);

    /// <summary>URL of the worker login (member of aos_worker).</summary>
    public string WorkerUrl => Cluster.Url(ClusterLifecycle.WorkerLogin);
}

/// <summary>aos up / down / status for the embedded cluster.</summary>
public static class ClusterLifecycle
{
    /// <summary>The administrator login aos up creates (owner of the database, member of aos_admin).</summary>
    public const string AdminLogin = "aos";

    /// <summary>The worker login aos up creates (member of aos_worker).</summary>
    public const string WorkerLogin = "aos_runner";

    /// <summary>
    /// Creates the cluster if needed, starts it if stopped, and makes sure the database, the logins
    /// and the current kernel are there. A running, complete cluster is only reported.
    /// </summary>
    public static async Task<UpResult> UpAsync(string dataDir, ClusterOptions? options = null,
        IProgress<string>? progress = null, CancellationToken ct = default)
    {
        var cluster = new EmbeddedCluster(dataDir);
        cluster.CheckUsable();
        string action;
        if (!cluster.Exists)
        {
            progress?.Report($"creating a PostgreSQL cluster in {cluster.DataDir}");
            await cluster.InitAsync(options, ct);
            progress?.Report("starting PostgreSQL");
            await cluster.StartAsync(ct);
            action = "created";
        }
        else
        {
            cluster.TryLoadState();
            if (await cluster.IsRunningAsync(ct))
            {
                action = "running";
            }
            else
            {
                progress?.Report("starting PostgreSQL");
                await cluster.StartAsync(ct);
                action = "started";
            }
        }

        var kernel = await BootstrapAsync(cluster, progress, ct);
        return new UpResult(action, cluster, kernel);
    }

    /// <summary>Database, logins and kernel, each only when missing or outdated.</summary>
    public static async Task<InstallResult> BootstrapAsync(EmbeddedCluster cluster, IProgress<string>? progress = null,
        CancellationToken ct = default)
    {
        var state = cluster.State!;
        await using (var conn = new NpgsqlConnection(cluster.ConnectionString("postgres")))
        {
            await conn.OpenAsync(ct);
            await EnsureLoginAsync(conn, cluster, AdminLogin, ct);
            if (!await ExistsAsync(conn, "SELECT 1 FROM pg_database WHERE datname = @n", state.Database, ct))
            {
                progress?.Report($"creating database {state.Database}");
                await ExecAsync(conn, $"CREATE DATABASE {Quote(state.Database)} OWNER {Quote(AdminLogin)}", ct);
            }
        }
        await using (var conn = new NpgsqlConnection(cluster.ConnectionString(state.Database)))
        {
            await conn.OpenAsync(ct);
            progress?.Report("installing the pgAgentOS kernel");
            var result = await KernelInstaller.InstallAsync(conn, InstallMethod.Auto, ct);
            await ExecAsync(conn, $"GRANT aos_admin TO {Quote(AdminLogin)}", ct);
            await EnsureLoginAsync(conn, cluster, WorkerLogin, ct);
            await ExecAsync(conn, $"GRANT aos_worker TO {Quote(WorkerLogin)}", ct);
            return result;
        }
    }

    private static async Task EnsureLoginAsync(NpgsqlConnection conn, EmbeddedCluster cluster, string login, CancellationToken ct)
    {
        var known = cluster.State!.Logins.TryGetValue(login, out var pw);
        var exists = await ExistsAsync(conn, "SELECT 1 FROM pg_roles WHERE rolname = @n", login, ct);
        if (exists && known)
        {
            return;
        }
        pw = EmbeddedCluster.NewPassword();
        var verb = exists ? "ALTER" : "CREATE";
        await ExecAsync(conn, $"{verb} ROLE {Quote(login)} LOGIN PASSWORD '{pw.Replace("'", "''", StringComparison.Ordinal)}'", ct);
        cluster.RememberLogin(login, pw);
    }

    private static string Quote(string ident) => "\"" + ident.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static async Task<bool> ExistsAsync(NpgsqlConnection conn, string sql, string name, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        cmd.Parameters.AddWithValue("n", name);
        return await cmd.ExecuteScalarAsync(ct) is not null;
    }

    private static async Task ExecAsync(NpgsqlConnection conn, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
