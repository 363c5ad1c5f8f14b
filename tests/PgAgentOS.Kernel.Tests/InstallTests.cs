using Npgsql;
using PgAgentOS.Client;

namespace PgAgentOS.Kernel.Tests;

/// <summary>The two install paths, repeat installs, upgrades and uninstall.</summary>
public sealed class InstallTests
{
    [Fact]
    public async Task ManualAndExtensionPathsCreateTheSameObjects()
    {
        var tc = await TestCluster.GetAsync();
        await K.EnsureExtensionFilesAsync(tc);
        var manualDb = await tc.CreateEmptyDatabaseAsync("manual");
        var extDb = await tc.CreateEmptyDatabaseAsync("ext");

        await using var manual = new NpgsqlConnection(tc.ConnectionString(manualDb));
        await manual.OpenAsync();
        var r1 = await KernelInstaller.InstallAsync(manual, InstallMethod.Manual);
        Assert.Equal(("installed", "manual"), (r1.Action, r1.Method));

        await using var ext = new NpgsqlConnection(tc.ConnectionString(extDb));
        await ext.OpenAsync();
        await ext.ExecAsync("CREATE EXTENSION pgagentos CASCADE");
        Assert.Equal(KernelScript.Version, await ext.ScalarAsync<string>("SELECT extversion FROM pg_extension WHERE extname = 'pgagentos'"));

        var a = await Catalog.KernelObjectsAsync(manual);
        var b = await Catalog.KernelObjectsAsync(ext);
        Assert.True(a.Count > 20, $"the kernel should create objects, found {a.Count}");
        Assert.Equal(a, b);
        Assert.Equal("manual", await manual.ScalarAsync<string>("SELECT install_method FROM aos_meta.installed_version"));
        Assert.Equal("extension", await ext.ScalarAsync<string>("SELECT install_method FROM aos_meta.installed_version"));
    }

    [Fact]
    public async Task InstallingTwiceChangesNothing()
    {
        var tc = await TestCluster.GetAsync();
        await K.EnsureExtensionFilesAsync(tc);
        var db = await tc.CreateEmptyDatabaseAsync("twice");
        await using var conn = new NpgsqlConnection(tc.ConnectionString(db));
        await conn.OpenAsync();
        await KernelInstaller.InstallAsync(conn, InstallMethod.Manual);
        var before = await Catalog.KernelObjectsAsync(conn);
        var installedAt = await conn.ScalarAsync<DateTime>("SELECT installed_at FROM aos_meta.installed_version");

        var again = await KernelInstaller.InstallAsync(conn, InstallMethod.Auto);
        Assert.Equal("unchanged", again.Action);
        Assert.Equal(before, await Catalog.KernelObjectsAsync(conn));
        Assert.Equal(installedAt, await conn.ScalarAsync<DateTime>("SELECT installed_at FROM aos_meta.installed_version"));
    }

    [Fact]
    public async Task TwoInstallersAtOnceInstallOnce()
    {
        var tc = await TestCluster.GetAsync();
        await K.EnsureExtensionFilesAsync(tc);
        var db = await tc.CreateEmptyDatabaseAsync("race");
        var results = await Task.WhenAll(Enumerable.Range(0, 3).Select(async _ =>
        {
            await using var conn = new NpgsqlConnection(tc.ConnectionString(db));
            await conn.OpenAsync();
            return await KernelInstaller.InstallAsync(conn, InstallMethod.Manual);
        }));
        Assert.Single(results, r => r.Action == "installed");
        Assert.Equal(2, results.Count(r => r.Action == "unchanged"));
    }

    [Fact]
    public async Task DropExtensionCascadeLeavesNothingBehind()
    {
        var tc = await TestCluster.GetAsync();
        await K.EnsureExtensionFilesAsync(tc);
        var db = await tc.CreateEmptyDatabaseAsync("drop");
        await using var conn = new NpgsqlConnection(tc.ConnectionString(db));
        await conn.OpenAsync();
        await conn.ExecAsync("CREATE EXTENSION vector; CREATE EXTENSION pgcrypto;");
        var before = await Catalog.AllUserObjectsAsync(conn);

        await conn.ExecAsync("CREATE EXTENSION pgagentos CASCADE");
        Assert.NotEqual(before, await Catalog.AllUserObjectsAsync(conn));
        await conn.ExecAsync("DROP EXTENSION pgagentos CASCADE");

        Assert.Equal(before, await Catalog.AllUserObjectsAsync(conn));
        Assert.Equal(0L, await conn.ScalarAsync<long>("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'aos\\_%'"));
    }

    [Fact]
    public async Task AnOlderInstallWithoutAnUpgradePathIsRefusedUntouched()
    {
        var tc = await TestCluster.GetAsync();
        await K.EnsureExtensionFilesAsync(tc);
        var db = await tc.CreateDatabaseAsync("old");
        await using var conn = new NpgsqlConnection(tc.ConnectionString(db));
        await conn.OpenAsync();
        await conn.ExecAsync("UPDATE aos_meta.installed_version SET version = '0.0.1'");
        var before = await Catalog.KernelObjectsAsync(conn);

        var e = await Assert.ThrowsAsync<KernelInstallException>(() => KernelInstaller.InstallAsync(conn));
        Assert.Contains("0.0.1", e.Message, StringComparison.Ordinal);
        Assert.Contains("no upgrade path", e.Message, StringComparison.Ordinal);
        Assert.Equal(before, await Catalog.KernelObjectsAsync(conn));

        await conn.ExecAsync("UPDATE aos_meta.installed_version SET version = '99.0.0'");
        var newer = await Assert.ThrowsAsync<KernelInstallException>(() => KernelInstaller.InstallAsync(conn));
        Assert.Contains("newer aos", newer.Hint, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LeftoverSchemasWithoutAVersionAreRefused()
    {
        var tc = await TestCluster.GetAsync();
        await K.EnsureExtensionFilesAsync(tc);
        var db = await tc.CreateEmptyDatabaseAsync("leftover");
        await using var conn = new NpgsqlConnection(tc.ConnectionString(db));
        await conn.OpenAsync();
        await conn.ExecAsync("CREATE SCHEMA aos_agent");
        var e = await Assert.ThrowsAsync<KernelInstallException>(() => KernelInstaller.InstallAsync(conn));
        Assert.Contains("aos_* schemas", e.Message, StringComparison.Ordinal);
        Assert.Equal(1L, await conn.ScalarAsync<long>("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'aos\\_%'"));
    }

    [Fact]
    public async Task AServerWithoutPgvectorIsRefusedBeforeAnythingChanges()
    {
        await using var server = await StrippedServer.StartAsync("vector");
        await using var conn = new NpgsqlConnection(server.Cluster.ConnectionString("postgres"));
        await conn.OpenAsync();
        Assert.False(await conn.ScalarAsync<bool>("SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')"));

        var e = await Assert.ThrowsAsync<KernelInstallException>(() => KernelInstaller.InstallAsync(conn, InstallMethod.Manual));
        Assert.Contains("vector", e.Message, StringComparison.Ordinal);
        Assert.Contains("pgvector", e.Hint, StringComparison.Ordinal);
        Assert.Equal(0L, await conn.ScalarAsync<long>("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'aos\\_%'"));
        Assert.Equal(0L, await conn.ScalarAsync<long>("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'aos\\_%'"));
    }

    [Fact]
    public async Task TheEmbeddedScriptMatchesTheManifestAndControlFile()
    {
        var root = RepoRoot();
        var manifest = File.ReadAllLines(Path.Combine(root, "sql", "MANIFEST"))
            .Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        Assert.Equal(manifest, KernelScript.Files);
        foreach (var f in manifest)
        {
            Assert.Equal(await File.ReadAllTextAsync(Path.Combine(root, f)), KernelScript.ReadFile(f));
        }
        Assert.Contains($"default_version = '{KernelScript.Version}'", await File.ReadAllTextAsync(Path.Combine(root, "pgagentos.control")), StringComparison.Ordinal);
        // Every .sql file under sql/ (but the extension-only and update scripts) is in the manifest.
        var onDisk = Directory.GetFiles(Path.Combine(root, "sql"), "*.sql", SearchOption.AllDirectories)
            .Select(p => Path.GetRelativePath(root, p).Replace('\\', '/'))
            .Where(p => !p.StartsWith("sql/extension/", StringComparison.Ordinal) && !p.StartsWith("sql/updates/", StringComparison.Ordinal));
        Assert.Empty(onDisk.Except(manifest));
    }

    internal static string RepoRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "pgagentos.control")))
        {
            dir = Path.GetDirectoryName(dir);
        }
        return dir ?? throw new InvalidOperationException("repository root not found");
    }
}
