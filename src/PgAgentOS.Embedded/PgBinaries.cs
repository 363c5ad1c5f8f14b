using System.Globalization;

namespace PgAgentOS.Embedded;

/// <summary>Finds the PostgreSQL server programs (initdb, pg_ctl, postgres) of version 15 or newer.</summary>
public sealed record PgBinaries(string BinDir, int Major)
{
    /// <summary>Path of one program in <see cref="BinDir"/>.</summary>
    public string Tool(string name) => Path.Combine(BinDir, name);

    /// <summary>
    /// AOS_PG_BIN if set; else the newest /usr/lib/postgresql/N/bin with N ≥ 15 (AOS_PG_MAJOR picks
    /// one); else initdb on PATH.
    /// </summary>
    /// <exception cref="FileNotFoundException">No server of version 15 or newer is installed.</exception>
    public static PgBinaries Locate()
    {
        var env = Environment.GetEnvironmentVariable("AOS_PG_BIN");
        if (!string.IsNullOrEmpty(env))
        {
            return FromDir(env) ?? throw new FileNotFoundException(
                $"AOS_PG_BIN={env} does not hold initdb, pg_ctl and postgres of PostgreSQL 15 or newer");
        }
        var wanted = Environment.GetEnvironmentVariable("AOS_PG_MAJOR");
        var candidates = new List<PgBinaries>();
        if (Directory.Exists("/usr/lib/postgresql"))
        {
            foreach (var dir in Directory.GetDirectories("/usr/lib/postgresql"))
            {
                if (FromDir(Path.Combine(dir, "bin")) is { } b)
                {
                    candidates.Add(b);
                }
            }
        }
        foreach (var p in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            if (FromDir(p) is { } b)
            {
                candidates.Add(b);
            }
        }
        var pick = candidates
            .Where(c => wanted is null || c.Major.ToString(CultureInfo.InvariantCulture) == wanted)
            .OrderByDescending(c => c.Major)
            .FirstOrDefault();
        return pick ?? throw new FileNotFoundException(
            "PostgreSQL 15 or newer is not installed (no initdb/pg_ctl/postgres found). Run scripts/setup.sh, or set AOS_PG_BIN.");
    }

    private static PgBinaries? FromDir(string dir)
    {
        if (!File.Exists(Path.Combine(dir, "initdb")) || !File.Exists(Path.Combine(dir, "pg_ctl"))
            || !File.Exists(Path.Combine(dir, "postgres")))
        {
            return null;
        }
        // Resolve symlinks such as /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb.
        var initdb = new FileInfo(Path.Combine(dir, "initdb"));
        var target = initdb.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? initdb.FullName;
        var realDir = Path.GetDirectoryName(target)!;
        var major = MajorFromPath(realDir);
        if (major is null || major < 15)
        {
            return null;
        }
        return new PgBinaries(realDir, major.Value);
    }

    private static int? MajorFromPath(string binDir)
    {
        // /usr/lib/postgresql/15/bin -> 15; otherwise ask the PG_VERSION-like output of pg_ctl.
        var parent = Path.GetFileName(Path.GetDirectoryName(binDir) ?? "");
        if (int.TryParse(parent, NumberStyles.Integer, CultureInfo.InvariantCulture, out var m))
        {
            return m;
        }
        try
        {
            var psi = new System.Diagnostics.ProcessStartInfo(Path.Combine(binDir, "pg_ctl"), "--version")
            {
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            using var p = System.Diagnostics.Process.Start(psi)!;
            var text = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            var digits = new string(text.SkipWhile(c => !char.IsDigit(c)).TakeWhile(char.IsDigit).ToArray());
            return int.TryParse(digits, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
