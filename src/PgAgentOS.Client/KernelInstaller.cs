using System.Globalization;
using Npgsql;

namespace PgAgentOS.Client;

/// <summary>How the kernel gets into a database.</summary>
public enum InstallMethod
{
    /// <summary>CREATE EXTENSION when the server has this version's extension files, else manual.</summary>
    Auto,
    /// <summary>CREATE EXTENSION pgagentos CASCADE (needs `make install` on the server).</summary>
    Extension,
    /// <summary>The embedded SQL files over a plain connection (managed PostgreSQL).</summary>
    Manual,
}

/// <summary>What an install did.</summary>
/// <param name="Action">installed, upgraded or unchanged.</param>
public sealed record InstallResult(string Action, string Version, string? PreviousVersion, string Method);

/// <summary>A prerequisite is missing or the database is in a state the installer will not touch.</summary>
public sealed class KernelInstallException(string message, string hint) : Exception(message)
{
    /// <summary>What to do about it.</summary>
    public string Hint { get; } = hint;
}

/// <summary>Installs or upgrades the pgAgentOS kernel. Checks every prerequisite before changing anything.</summary>
public static class KernelInstaller
{
    private const long InstallLockKey = 0x616f735f696e73; // "aos_ins"

    /// <summary>Installs (or upgrades) the kernel in the connection's database.</summary>
    public static async Task<InstallResult> InstallAsync(NpgsqlConnection conn, InstallMethod method = InstallMethod.Auto,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(conn);
        if (conn.State != System.Data.ConnectionState.Open)
        {
            await conn.OpenAsync(ct);
        }

        await CheckPrerequisitesAsync(conn, ct);

        await using var tx = await conn.BeginTransactionAsync(ct);
        await ExecAsync(conn, $"SELECT pg_advisory_xact_lock({InstallLockKey})", ct);

        var extVersion = await ScalarAsync<string>(conn, "SELECT extversion FROM pg_extension WHERE extname = 'pgagentos'", ct);
        if (extVersion is not null)
        {
            if (extVersion == KernelScript.Version)
            {
                return new InstallResult("unchanged", extVersion, extVersion, "extension");
            }
            await ExecAsync(conn, $"ALTER EXTENSION pgagentos UPDATE TO '{KernelScript.Version}'", ct);
            await tx.CommitAsync(ct);
            return new InstallResult("upgraded", KernelScript.Version, extVersion, "extension");
        }

        var manualVersion = await ScalarAsync<bool>(conn, "SELECT to_regclass('aos_meta.installed_version') IS NOT NULL", ct)
            ? await ScalarAsync<string>(conn, "SELECT version FROM aos_meta.installed_version", ct)
            : null;
        if (manualVersion is not null)
        {
            if (manualVersion == KernelScript.Version)
            {
                return new InstallResult("unchanged", manualVersion, manualVersion, "manual");
            }
            var path = KernelScript.UpgradePath(manualVersion)
                ?? throw new KernelInstallException(
                    $"the installed kernel is version {manualVersion} and there is no upgrade path to {KernelScript.Version}",
                    Compare(manualVersion, KernelScript.Version) > 0
                        ? "This aos is older than the kernel in the database: use a newer aos."
                        : "Dump your data, drop the aos_* schemas and install again, or use an aos release that ships the upgrade scripts.");
            foreach (var step in path)
            {
                await ExecAsync(conn, step.Sql, ct);
            }
            await ExecAsync(conn, "UPDATE aos_meta.installed_version SET upgraded_at = now()", ct);
            await tx.CommitAsync(ct);
            return new InstallResult("upgraded", KernelScript.Version, manualVersion, "manual");
        }

        if (await ScalarAsync<long>(conn, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'aos\\_%'", ct) > 0)
        {
            throw new KernelInstallException(
                "the database has aos_* schemas but no pgAgentOS version record",
                "Drop the leftover aos_* schemas (DROP SCHEMA ... CASCADE) or use another database.");
        }

        var available = await ScalarAsync<string>(conn,
            "SELECT version FROM pg_available_extension_versions WHERE name = 'pgagentos' AND version = @v",
            ct, ("v", KernelScript.Version));
        var useExtension = method switch
        {
            InstallMethod.Extension => available is not null
                ? true
                : throw new KernelInstallException(
                    $"the server has no pgagentos {KernelScript.Version} extension files",
                    "Run `make install` on the database server, or install with the manual method."),
            InstallMethod.Manual => false,
            _ => available is not null,
        };
        if (useExtension)
        {
            await ExecAsync(conn, $"CREATE EXTENSION pgagentos VERSION '{KernelScript.Version}' CASCADE", ct);
        }
        else
        {
            await ExecAsync(conn, KernelScript.InstallScript(), ct);
        }
        await tx.CommitAsync(ct);
        return new InstallResult("installed", KernelScript.Version, null, useExtension ? "extension" : "manual");
    }

    /// <summary>The installed kernel version, or null.</summary>
    public static async Task<string?> InstalledVersionAsync(NpgsqlConnection conn, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(conn);
        return await ScalarAsync<bool>(conn, "SELECT to_regclass('aos_meta.installed_version') IS NOT NULL", ct)
            ? await ScalarAsync<string>(conn, "SELECT version FROM aos_meta.installed_version", ct)
            : null;
    }

    /// <summary>Fails with a readable reason when the server cannot host the kernel. Changes nothing.</summary>
    public static async Task CheckPrerequisitesAsync(NpgsqlConnection conn, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(conn);
        var versionNum = int.Parse(await ScalarAsync<string>(conn, "SHOW server_version_num", ct) ?? "0", CultureInfo.InvariantCulture);
        if (versionNum < 150000)
        {
            var version = await ScalarAsync<string>(conn, "SHOW server_version", ct);
            throw new KernelInstallException(
                $"PostgreSQL {version} is too old: pgAgentOS needs PostgreSQL 15 or newer",
                "Upgrade the server (15 added security_invoker views, which tenant isolation relies on).");
        }
        foreach (var (ext, how) in new[]
                 {
                     ("vector", "Install pgvector on the server (scripts/setup.sh builds it on Debian; managed services: enable the 'vector' extension)."),
                     ("pgcrypto", "Install the PostgreSQL contrib modules on the server (Debian: part of the postgresql package)."),
                 })
        {
            var installed = await ScalarAsync<bool>(conn, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = @e)", ct, ("e", ext));
            var available = installed || await ScalarAsync<bool>(conn,
                "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = @e)", ct, ("e", ext));
            if (!available)
            {
                throw new KernelInstallException($"the server has no {ext} extension", how);
            }
        }
    }

    private static int Compare(string a, string b)
    {
        static int[] Parts(string v) => [.. v.Split('.').Select(p => int.TryParse(p, CultureInfo.InvariantCulture, out var n) ? n : 0)];
        var (pa, pb) = (Parts(a), Parts(b));
        for (var i = 0; i < Math.Max(pa.Length, pb.Length); i++)
        {
            var c = (i < pa.Length ? pa[i] : 0).CompareTo(i < pb.Length ? pb[i] : 0);
            if (c != 0)
            {
                return c;
            }
        }
        return 0;
    }

    private static async Task ExecAsync(NpgsqlConnection conn, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = 600 };
        await cmd.ExecuteNonQueryAsync(ct);
    }

    private static async Task<T?> ScalarAsync<T>(NpgsqlConnection conn, string sql, CancellationToken ct, params (string Name, object Value)[] args)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        foreach (var (name, value) in args)
        {
            cmd.Parameters.AddWithValue(name, value);
        }
        var result = await cmd.ExecuteScalarAsync(ct);
        return result is null or DBNull ? default : (T)result;
    }
}
