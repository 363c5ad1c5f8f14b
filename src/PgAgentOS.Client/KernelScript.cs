using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;

namespace PgAgentOS.Client;

/// <summary>
/// The kernel's SQL as embedded in this assembly: the files of <c>sql/MANIFEST</c> in order, the
/// version from <c>pgagentos.control</c>, and the upgrade scripts of <c>sql/updates</c>.
/// </summary>
public static partial class KernelScript
{
    private static readonly Assembly Asm = typeof(KernelScript).Assembly;

    /// <summary>The kernel version these files install (default_version of pgagentos.control).</summary>
    public static string Version { get; } = ReadVersion();

    /// <summary>The SQL files in the order they are applied (paths as in the repository).</summary>
    public static IReadOnlyList<string> Files { get; } = ReadManifest();

    /// <summary>Text of one embedded file, by its repository path (for example sql/schemas/01_aos_meta.sql).</summary>
    public static string ReadFile(string path)
    {
        var name = path.StartsWith("sql/", StringComparison.Ordinal) ? path : "sql/" + path;
        using var s = Asm.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"{path} is not embedded in {Asm.GetName().Name}");
        using var r = new StreamReader(s, Encoding.UTF8);
        return r.ReadToEnd();
    }

    /// <summary>The whole install script for the manual path (all manifest files, in order).</summary>
    public static string InstallScript()
    {
        var sb = new StringBuilder();
        foreach (var f in Files)
        {
            sb.Append("-- >>> ").Append(f).Append('\n').Append(ReadFile(f)).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>Upgrade scripts <c>pgagentos--A--B.sql</c>, as (from, to, sql) triples.</summary>
    public static IReadOnlyList<(string From, string To, string Sql)> Updates()
    {
        var list = new List<(string, string, string)>();
        foreach (var name in Asm.GetManifestResourceNames())
        {
            var m = UpdateName().Match(name);
            if (m.Success)
            {
                list.Add((m.Groups[1].Value, m.Groups[2].Value, StripPsqlGuard(ReadFile(name))));
            }
        }
        return list;
    }

    /// <summary>The shortest chain of upgrade scripts from <paramref name="from"/> to <see cref="Version"/>, or null.</summary>
    public static IReadOnlyList<(string From, string To, string Sql)>? UpgradePath(string from, string? to = null)
    {
        to ??= Version;
        var updates = Updates();
        var queue = new Queue<(string At, List<(string, string, string)> Path)>();
        queue.Enqueue((from, []));
        var seen = new HashSet<string>(StringComparer.Ordinal) { from };
        while (queue.Count > 0)
        {
            var (at, path) = queue.Dequeue();
            if (at == to)
            {
                return path;
            }
            foreach (var u in updates.Where(u => u.From == at && seen.Add(u.To)))
            {
                queue.Enqueue((u.To, [.. path, u]));
            }
        }
        return null;
    }

    private static string StripPsqlGuard(string sql) =>
        string.Join('\n', sql.Split('\n').Where(l => !l.TrimStart().StartsWith("\\echo", StringComparison.Ordinal)));

    private static string ReadVersion()
    {
        using var s = Asm.GetManifestResourceStream("pgagentos.control")
            ?? throw new InvalidOperationException("pgagentos.control is not embedded");
        using var r = new StreamReader(s);
        var m = ControlVersion().Match(r.ReadToEnd());
        return m.Success ? m.Groups[1].Value : throw new InvalidOperationException("pgagentos.control has no default_version");
    }

    private static List<string> ReadManifest() =>
        [.. ReadFile("sql/MANIFEST").Split('\n')
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#'))];

    [GeneratedRegex(@"default_version\s*=\s*'([^']+)'")]
    private static partial Regex ControlVersion();

    [GeneratedRegex(@"^sql/updates/pgagentos--([^-]+)--([^-]+)\.sql$")]
    private static partial Regex UpdateName();
}
