using Npgsql;
using PgAgentOS.Client;
using PgAgentOS.Embedded;

namespace PgAgentOS.Cli;

/// <summary>Which database a command talks to: --db, else AOS_DATABASE_URL, else the embedded cluster.</summary>
public static class DbTarget
{
    /// <summary>The embedded cluster's data directory: --data-dir, else AOS_DATA_DIR, else the default.</summary>
    public static string DataDir(CliContext ctx, string? option)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        return option ?? ctx.Env("AOS_DATA_DIR") ?? EmbeddedCluster.DefaultDataDir();
    }

    /// <summary>The URL given by --db or AOS_DATABASE_URL, or null.</summary>
    public static string? ExplicitUrl(CliContext ctx, AosSettings settings)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentNullException.ThrowIfNull(settings);
        var url = settings.Db ?? ctx.Env("AOS_DATABASE_URL");
        return string.IsNullOrWhiteSpace(url) ? null : url;
    }

    /// <summary>Connection string of the target database, as <paramref name="login"/> on the embedded cluster.</summary>
    public static async Task<NpgsqlConnectionStringBuilder> ResolveAsync(CliContext ctx, AosSettings settings,
        string? dataDir = null, string login = ClusterLifecycle.AdminLogin, CancellationToken ct = default)
    {
        var url = ExplicitUrl(ctx, settings);
        NpgsqlConnectionStringBuilder b;
        if (url is not null)
        {
            b = ConnectionUrl.Parse(url);
        }
        else
        {
            var cluster = new EmbeddedCluster(DataDir(ctx, dataDir));
            if (!cluster.Exists || !cluster.TryLoadState())
            {
                throw new CliException(
                    $"no database: no embedded cluster in {cluster.DataDir}, and neither --db nor AOS_DATABASE_URL is set",
                    ExitCodes.Unavailable, "Run aos up, or pass --db postgresql://user:password@host:port/database.");
            }
            if (!await cluster.IsRunningAsync(ct))
            {
                throw new CliException($"the embedded cluster in {cluster.DataDir} is stopped", ExitCodes.Unavailable,
                    "Start it with aos up.");
            }
            b = new NpgsqlConnectionStringBuilder(cluster.ConnectionString(cluster.State!.Database, login));
        }
        b.ApplicationName ??= "aos";
        return b;
    }
}
