using PgAgentOS.Embedded;

namespace PgAgentOS.TestInfrastructure;

/// <summary>
/// A real PostgreSQL server that lacks some extensions: a copy of the installed server tree
/// (PostgreSQL finds its share and lib directories relative to its binaries) without the
/// extensions' files. Used to prove the installer stops before changing anything.
/// </summary>
public sealed class StrippedServer : IAsyncDisposable
{
    private readonly string _root;

    private StrippedServer(string root, EmbeddedCluster cluster)
    {
        _root = root;
        Cluster = cluster;
    }

    /// <summary>The running cluster.</summary>
    public EmbeddedCluster Cluster { get; }

    /// <summary>Copies the server without the named extensions, initdb, start.</summary>
    public static async Task<StrippedServer> StartAsync(params string[] withoutExtensions)
    {
        var bin = PgBinaries.Locate();
        var libDir = Path.GetDirectoryName(bin.BinDir)!; // /usr/lib/postgresql/15
        var shareDir = $"/usr/share/postgresql/{bin.Major}";
        var root = Path.Combine(Path.GetTempPath(), $"aos-test-{Environment.ProcessId}-stripped-{Guid.NewGuid().ToString("N")[..8]}");
        var newLib = root + libDir;
        var newShare = root + shareDir;
        Directory.CreateDirectory(Path.GetDirectoryName(newLib)!);
        Directory.CreateDirectory(Path.GetDirectoryName(newShare)!);
        foreach (var (from, to) in new[] { (libDir, newLib), (shareDir, newShare) })
        {
            var r = await OsProcess.RunAsync("cp", ["-a", from, to], asServiceUser: false);
            if (r.ExitCode != 0)
            {
                throw new InvalidOperationException($"cp {from}: {r.Message}");
            }
        }
        foreach (var ext in withoutExtensions)
        {
            foreach (var f in Directory.GetFiles(Path.Combine(newShare, "extension"), ext + "*"))
            {
                File.Delete(f);
            }
            foreach (var f in Directory.GetFiles(Path.Combine(newLib, "lib"), ext + ".so"))
            {
                File.Delete(f);
            }
        }
        var cluster = new EmbeddedCluster(Path.Combine(root, "pgdata"), new PgBinaries(Path.Combine(newLib, "bin"), bin.Major));
        await cluster.InitAsync(new ClusterOptions { Ephemeral = true });
        await cluster.StartAsync();
        return new StrippedServer(root, cluster);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        Npgsql.NpgsqlConnection.ClearAllPools();
        await Cluster.StopAsync(immediate: true);
        Directory.Delete(_root, recursive: true);
    }
}
