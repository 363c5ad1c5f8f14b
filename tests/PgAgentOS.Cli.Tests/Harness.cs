using System.Runtime.CompilerServices;
using System.Text;
using System.Text.RegularExpressions;
using PgAgentOS.Cli;
using PgAgentOS.Client;

namespace PgAgentOS.Cli.Tests;

/// <summary>What one aos invocation printed and returned.</summary>
public sealed record CliResult(int Code, string Out, string Err)
{
    /// <summary>Standard output, then standard error (as a terminal would interleave them for a short command).</summary>
    public string All => Out + (Err.Length > 0 ? "--- stderr ---\n" + Err : "");

    /// <inheritdoc />
    public override string ToString() => $"exit {Code}\n{All}";
}

/// <summary>Runs aos in-process, with captured output and a controlled environment (nothing leaks in from the test host's).</summary>
public sealed class Aos(string? dbUrl, IReadOnlyDictionary<string, string?>? env = null)
{
    /// <summary>The URL commands get through AOS_DATABASE_URL (null: none).</summary>
    public string? DbUrl { get; } = dbUrl;

    /// <summary>A runner for a test database as the platform administrator login.</summary>
    public static Aos For(KernelDatabase db, string login = TestCluster.Admin)
    {
        ArgumentNullException.ThrowIfNull(db);
        return new Aos(Url(db, login));
    }

    /// <summary>A postgresql:// URL of a test database.</summary>
    public static string Url(KernelDatabase db, string login = TestCluster.Admin)
    {
        ArgumentNullException.ThrowIfNull(db);
        return ConnectionUrl.Build("127.0.0.1", db.Cluster.Cluster.State!.Port, db.Name, login, db.Cluster.LoginPassword);
    }

    /// <summary>The same database with more environment variables.</summary>
    public Aos With(string name, string? value)
    {
        var e = new Dictionary<string, string?>(env ?? new Dictionary<string, string?>()) { [name] = value };
        return new Aos(DbUrl, e);
    }

    /// <summary>Runs aos with arguments.</summary>
    public Task<CliResult> RunAsync(params string[] args) => RunAsync(null, CancellationToken.None, args);

    /// <summary>Runs aos with standard input.</summary>
    public Task<CliResult> RunAsync(string? input, CancellationToken ct, params string[] args) =>
        RunAsync(input, new LiveWriter(), new LiveWriter(), ct, args);

    /// <summary>Starts aos in the background; its output can be read while it runs.</summary>
    public Running Start(params string[] args)
    {
        var o = new LiveWriter();
        var e = new LiveWriter();
        var cts = new CancellationTokenSource();
        return new Running(o, e, cts, RunAsync(null, o, e, cts.Token, args));
    }

    private async Task<CliResult> RunAsync(string? input, LiveWriter o, LiveWriter e, CancellationToken ct, string[] args)
    {
        var vars = new Dictionary<string, string?>(env ?? new Dictionary<string, string?>());
        if (DbUrl is not null && !vars.ContainsKey("AOS_DATABASE_URL"))
        {
            vars["AOS_DATABASE_URL"] = DbUrl;
        }
        var ctx = new CliContext(o, e, false, n => vars.GetValueOrDefault(n),
            input is null ? null : new StringReader(input))
        {
            ValidateExamples = true,
        };
        var code = await Task.Run(() => AosApp.RunAsync(args, ctx, ct), CancellationToken.None);
        return new CliResult(code, o.Text, e.Text);
    }
}

/// <summary>A command running in the background.</summary>
public sealed class Running(LiveWriter output, LiveWriter error, CancellationTokenSource stop, Task<CliResult> result) : IDisposable
{
    /// <summary>What it printed so far.</summary>
    public string Out => output.Text;

    /// <summary>What it printed on standard error so far.</summary>
    public string Err => error.Text;

    /// <summary>Its result.</summary>
    public Task<CliResult> Result { get; } = result;

    /// <summary>Waits until its output contains a text (or it ends, or 20 s pass).</summary>
    public async Task WaitForAsync(string text, int times = 1)
    {
        int Count() => (Out.Length - Out.Replace(text, "", StringComparison.Ordinal).Length) / text.Length;
        for (var i = 0; i < 400 && Count() < times; i++)
        {
            if (Result.IsCompleted)
            {
                break;
            }
            await Task.Delay(50);
        }
        Assert.True(Count() >= times, $"'{text}' did not appear {times} times; output so far:\n{Out}\n{Err}");
    }

    /// <summary>Presses Ctrl+C.</summary>
    public void Interrupt() => stop.Cancel();

    /// <inheritdoc />
    public void Dispose() => stop.Dispose();
}

/// <summary>A text writer that can be read while another thread writes to it.</summary>
public sealed class LiveWriter : TextWriter
{
    private readonly StringBuilder _sb = new();

    /// <inheritdoc />
    public override Encoding Encoding => Encoding.UTF8;

    /// <inheritdoc />
    [System.Diagnostics.CodeAnalysis.AllowNull]
    public override string NewLine { get => "\n"; set { } }

    /// <summary>Everything written so far.</summary>
    public string Text
    {
        get
        {
            lock (_sb)
            {
                return _sb.ToString();
            }
        }
    }

    /// <inheritdoc />
    public override void Write(char value)
    {
        lock (_sb)
        {
            _sb.Append(value);
        }
    }

    /// <inheritdoc />
    public override void Write(string? value)
    {
        lock (_sb)
        {
            _sb.Append(value);
        }
    }

    /// <inheritdoc />
    public override void Write(char[] buffer, int index, int count)
    {
        lock (_sb)
        {
            _sb.Append(buffer, index, count);
        }
    }
}

/// <summary>Output compared with committed files under golden/. AOS_UPDATE_GOLDEN=1 rewrites them.</summary>
public static partial class Golden
{
    private static string Dir([CallerFilePath] string here = "") => Path.Combine(Path.GetDirectoryName(here)!, "golden");

    /// <summary>True when the golden files are being rewritten.</summary>
    public static bool Updating => Environment.GetEnvironmentVariable("AOS_UPDATE_GOLDEN") == "1";

    /// <summary>Compares (normalised) text with golden/NAME.txt.</summary>
    public static void Check(string name, string actual)
    {
        var text = Normalise(actual);
        var file = Path.Combine(Dir(), name + ".txt");
        if (Updating)
        {
            File.WriteAllText(file, text);
            return;
        }
        Assert.True(File.Exists(file), $"golden file {name}.txt is missing; run with AOS_UPDATE_GOLDEN=1 to create it. Output:\n{text}");
        var expected = File.ReadAllText(file).ReplaceLineEndings("\n");
        if (expected != text)
        {
            Assert.Fail($"output differs from golden/{name}.txt (AOS_UPDATE_GOLDEN=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{text}");
        }
    }

    /// <summary>Compares a result (exit code, output, errors) with golden/NAME.txt.</summary>
    public static void Check(string name, CliResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        Check(name, r.ToString());
    }

    /// <summary>Replaces what changes from run to run: ids, times, ports, passwords, temporary paths.</summary>
    public static string Normalise(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        text = text.ReplaceLineEndings("\n");
        text = Ansi().Replace(text, "");
        text = Password().Replace(text, "${1}:<password>@");
        text = Port().Replace(text, "127.0.0.1:<port>");
        text = PortWord().Replace(text, "${1}<port>");
        text = TestDb().Replace(text, "<db>");
        text = TempDir().Replace(text, "<tmp>");
        text = Uuid().Replace(text, "<uuid>");
        text = DateTimeRx().Replace(text, "<datetime>");
        text = TimeRx().Replace(text, "<time>");
        text = ShortId().Replace(text, "<sid>");
        text = Duration().Replace(text, "<dur>");
        // Column widths follow the (normalised) contents: compare words, not alignment.
        text = Spaces().Replace(text, " ");
        text = Rules().Replace(text, "─");
        text = Bars().Replace(text, "█");
        var sb = new StringBuilder();
        foreach (var line in text.Split('\n'))
        {
            sb.Append(line.TrimEnd()).Append('\n');
        }
        return sb.ToString().TrimEnd('\n') + "\n";
    }

    [GeneratedRegex(@"\x1b\[[0-9;?]*[A-Za-z]")]
    private static partial Regex Ansi();

    [GeneratedRegex(@"(postgresql://[A-Za-z0-9_]+):[^@/\s']+@")]
    private static partial Regex Password();

    [GeneratedRegex(@"127\.0\.0\.1:\d+")]
    private static partial Regex Port();

    [GeneratedRegex(@"(\bport(?: +│)? +)\d+")]
    private static partial Regex PortWord();

    [GeneratedRegex(@"\b[te]_\d+_\d+\b")]
    private static partial Regex TestDb();

    [GeneratedRegex(@"/tmp/aos-[A-Za-z0-9_.-]*[A-Za-z0-9_-]")]
    private static partial Regex TempDir();

    [GeneratedRegex(@"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")]
    private static partial Regex Uuid();

    [GeneratedRegex(@"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)?")]
    private static partial Regex DateTimeRx();

    [GeneratedRegex(@"\b\d\d:\d\d:\d\d\b")]
    private static partial Regex TimeRx();

    [GeneratedRegex(@"\b[0-9a-f]{8}\b")]
    private static partial Regex ShortId();

    [GeneratedRegex(@" {2,}")]
    private static partial Regex Spaces();

    [GeneratedRegex(@"─{2,}")]
    private static partial Regex Rules();

    [GeneratedRegex(@"[█▏▎▍▌▋▊▉]+")]
    private static partial Regex Bars();

    [GeneratedRegex(@"\b\d+(\.\d+)? (ms|s|min)\b")]
    private static partial Regex Duration();
}

/// <summary>Assertions on results that show the output when they fail.</summary>
public static class Expect
{
    /// <summary>The exit code is <paramref name="code"/>.</summary>
    public static CliResult Code(int code, CliResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        Assert.True(r.Code == code, $"expected exit {code}, got:\n{r}");
        return r;
    }

    /// <summary>Exit 0.</summary>
    public static CliResult Ok(CliResult r) => Code(0, r);
}
