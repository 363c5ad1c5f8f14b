using System.Text.RegularExpressions;
using Npgsql;
using PgAgentOS.Client;

namespace PgAgentOS.Kernel.Tests;

/// <summary>docs/sql-api.md and docs/errors.md stay complete: every public function, view and SQLSTATE is there.</summary>
public sealed partial class DocsTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    private static string Doc(string name) => File.ReadAllText(Path.Combine(K.RepoRoot, "docs", name));

    [Fact]
    public async Task EveryPublicFunctionAndViewIsInTheSqlApi()
    {
        var doc = Doc("sql-api.md");
        await using var su = await db.OpenAsync(null);
        var objects = await su.ColumnAsync("""
            SELECT DISTINCT n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname LIKE 'aos\_%' AND p.prokind = 'f' AND p.proname NOT LIKE '\_%'
               AND EXISTS (SELECT 1 FROM unnest(ARRAY['aos_app', 'aos_worker', 'aos_admin', 'aos_analytics']) r
                            WHERE has_function_privilege(r, p.oid, 'EXECUTE'))
            UNION
            SELECT schemaname || '.' || viewname FROM pg_views WHERE schemaname LIKE 'aos\_%'
            ORDER BY 1
            """);
        Assert.True(objects.Count > 60, $"expected the kernel's public objects, found {objects.Count}");
        var missing = objects.Where(o => !doc.Contains($"### `{o}`", StringComparison.Ordinal)).ToList();
        Assert.True(missing.Count == 0, "not in docs/sql-api.md: " + string.Join(", ", missing));
        // ... and nothing documented that does not exist
        var documented = DocumentedObject().Matches(doc).Select(m => m.Groups[1].Value).Distinct().ToList();
        Assert.Empty(documented.Except(objects));
    }

    [Fact]
    public void EveryRaiseHasOurCodeAndEveryCodeIsInErrorsMd()
    {
        var raised = new HashSet<string>();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(K.RepoRoot, "sql"), "*.sql", SearchOption.AllDirectories))
        {
            var text = File.ReadAllText(file);
            foreach (Match m in RaiseStatement().Matches(text))
            {
                var code = ErrCode().Match(m.Value);
                Assert.True(code.Success, $"{Path.GetFileName(file)}: a RAISE EXCEPTION without an ERRCODE: {m.Value[..Math.Min(120, m.Value.Length)]}");
                Assert.True(m.Value.Contains("HINT", StringComparison.Ordinal), $"{Path.GetFileName(file)}: a RAISE without a HINT: {m.Value[..Math.Min(120, m.Value.Length)]}");
                raised.Add(code.Groups[1].Value);
            }
        }
        Assert.Contains("AO004", raised);
        var documented = CodeRow().Matches(Doc("errors.md")).Select(m => m.Groups[1].Value).ToHashSet();
        Assert.Empty(raised.Except(documented));
        // every code of ours that the page lists is raised somewhere
        Assert.Empty(documented.Where(c => c.StartsWith("AO", StringComparison.Ordinal)).Except(raised));
    }

    [Fact]
    public void TheSdkMapsEveryCodeToTheDocumentedException()
    {
        var rows = CodeRow().Matches(Doc("errors.md")).ToList();
        Assert.True(rows.Count >= 17);
        foreach (var row in rows)
        {
            var code = row.Groups[1].Value;
            var documented = row.Groups[2].Value;
            var e = AosException.From(new PostgresException("test", "ERROR", "ERROR", code));
            Assert.True(documented == e.GetType().Name, $"{code}: docs/errors.md says {documented}, the SDK throws {e.GetType().Name}");
        }
    }

    [GeneratedRegex(@"^### `(aos_[a-z_]+\.[a-z_]+)`", RegexOptions.Multiline)]
    private static partial Regex DocumentedObject();

    // up to the statement's semicolon, over quoted strings that may contain one
    [GeneratedRegex(@"RAISE\s+EXCEPTION\b(?:'(?:[^']|'')*'|[^';])*;")]
    private static partial Regex RaiseStatement();

    [GeneratedRegex(@"ERRCODE\s*=\s*'([0-9A-Z]{5})'")]
    private static partial Regex ErrCode();

    [GeneratedRegex(@"^\| `([0-9A-Z]{5})` \|.*\| `(\w+)` \|$", RegexOptions.Multiline)]
    private static partial Regex CodeRow();
}
