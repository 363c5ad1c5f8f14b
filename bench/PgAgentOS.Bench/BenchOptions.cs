using System.Globalization;

namespace PgAgentOS.Bench;

/// <summary>What one bench run measures and how long it spends on each figure.</summary>
public sealed record BenchOptions
{
    /// <summary>Concurrent clients (connections, workers) of the throughput figures.</summary>
    public IReadOnlyList<int> Clients { get; init; } = [1, 4, 16];

    /// <summary>Warm-up before each timed window (connections open, plans cached).</summary>
    public double WarmupSeconds { get; init; } = 1.5;

    /// <summary>Timed window of each throughput figure.</summary>
    public double DurationSeconds { get; init; } = 8;

    /// <summary>Samples of each latency figure (per client count).</summary>
    public int LatencySamples { get; init; } = 300;

    /// <summary>Samples of the approval latency (per client count).</summary>
    public int ApprovalSamples { get; init; } = 150;

    /// <summary>Recorded steps in the database at which the growth figures are taken (ascending).</summary>
    public IReadOnlyList<long> GrowthSizes { get; init; } = [100_000, 1_000_000];

    /// <summary>Timed window of the throughput figures at each growth size.</summary>
    public double GrowthDurationSeconds { get; init; } = 5;

    /// <summary>Runs of each monitoring query (after warm-up) at each growth size.</summary>
    public int ViewRuns { get; init; } = 25;

    /// <summary>Step-recording cycles of the profiling pass (pg_stat_statements with track = all).</summary>
    public int ProfileCycles { get; init; } = 300;

    /// <summary>
    /// The figures to measure (1-6; all by default). Figure 1 is measured whenever 2 or 3 is, since they
    /// are ratios to it; a run of some figures only never rewrites docs/benchmarks.md by default.
    /// </summary>
    public IReadOnlySet<int> Figures { get; init; } = new SortedSet<int> { 1, 2, 3, 4, 5, 6 };

    /// <summary>Whether figure <paramref name="n"/> is measured.</summary>
    public bool Measures(int n) => Figures.Contains(n) || (n == 1 && (Figures.Contains(2) || Figures.Contains(3)));

    /// <summary>Use pgbench (when installed) for the raw INSERT baseline; else the plain Npgsql loop is the baseline.</summary>
    public bool UsePgbench { get; init; } = true;

    /// <summary>Who drives the whole turns of figure 3: sdk (the SDK, the way the runtime does) or runtime.</summary>
    public string TurnDriver { get; init; } = "auto";

    /// <summary>Where the JSON report goes (null: none).</summary>
    public string? JsonPath { get; init; }

    /// <summary>Where the regenerated docs/benchmarks.md goes (null: none).</summary>
    public string? DocsPath { get; init; }

    /// <summary>docs/benchmarks.md to regenerate when the preset is a full one (default, huge) and --docs/--no-docs were not given.</summary>
    public string? DefaultDocsPath { get; init; }

    /// <summary>Prototype fixes (prototypes/NAME.sql) applied to the bench's cluster after the kernel: not the kernel as built.</summary>
    public IReadOnlyList<string> Prototypes { get; init; } = [];

    /// <summary>--no-docs was given.</summary>
    public bool NoDocs { get; init; }

    /// <summary>Git commit of the checkout (for the report).</summary>
    public string? Commit { get; init; }

    /// <summary>Directory for the temporary cluster (default: the system temp directory).</summary>
    public string? WorkDir { get; init; }

    /// <summary>Leave the cluster running and its directory in place at the end (for profiling by hand).</summary>
    public bool KeepCluster { get; init; }

    /// <summary>Named preset the options came from (default, quick, tiny, huge).</summary>
    public string Preset { get; init; } = "default";

    /// <summary>The default run: 10⁵ and 10⁶ steps.</summary>
    public static BenchOptions Default => new();

    /// <summary>A few seconds per figure, growth to 10⁵ steps only: for development.</summary>
    public static BenchOptions Quick => new()
    {
        Preset = "quick",
        WarmupSeconds = 0.5,
        DurationSeconds = 3,
        LatencySamples = 100,
        ApprovalSamples = 50,
        GrowthSizes = [100_000],
        GrowthDurationSeconds = 2,
        ViewRuns = 10,
        ProfileCycles = 100,
    };

    /// <summary>The smallest run that still exercises every figure (smoke test).</summary>
    public static BenchOptions Tiny => new()
    {
        Preset = "tiny",
        Clients = [1, 2],
        WarmupSeconds = 0.3,
        DurationSeconds = 1,
        LatencySamples = 6,
        ApprovalSamples = 4,
        GrowthSizes = [2_000],
        GrowthDurationSeconds = 0.4,
        ViewRuns = 3,
        ProfileCycles = 10,
    };

    /// <summary>Parses command-line arguments; throws <see cref="ArgumentException"/> on a bad one.</summary>
    public static BenchOptions Parse(IReadOnlyList<string> args)
    {
        var o = Default;
        for (var i = 0; i < args.Count; i++)
        {
            var a = args[i];
            string Next()
            {
                if (i + 1 >= args.Count)
                {
                    throw new ArgumentException($"{a} needs a value");
                }
                return args[++i];
            }
            switch (a)
            {
                case "--quick":
                    o = Quick with { Prototypes = o.Prototypes, JsonPath = o.JsonPath, DocsPath = o.DocsPath, DefaultDocsPath = o.DefaultDocsPath, NoDocs = o.NoDocs, Commit = o.Commit, WorkDir = o.WorkDir, KeepCluster = o.KeepCluster };
                    break;
                case "--tiny":
                    o = Tiny with { Prototypes = o.Prototypes, JsonPath = o.JsonPath, DocsPath = o.DocsPath, DefaultDocsPath = o.DefaultDocsPath, NoDocs = o.NoDocs, Commit = o.Commit, WorkDir = o.WorkDir, KeepCluster = o.KeepCluster };
                    break;
                case "--huge":
                    o = o with { Preset = "huge", GrowthSizes = [.. o.GrowthSizes.Where(s => s < 10_000_000), 10_000_000] };
                    break;
                case "--sizes":
                    o = o with { GrowthSizes = [.. Next().Split(',', StringSplitOptions.RemoveEmptyEntries).Select(ParseCount).Order()] };
                    break;
                case "--clients":
                    o = o with { Clients = [.. Next().Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => (int)ParseCount(s))] };
                    break;
                case "--duration":
                    o = o with { DurationSeconds = ParseSeconds(Next()) };
                    break;
                case "--warmup":
                    o = o with { WarmupSeconds = ParseSeconds(Next()) };
                    break;
                case "--growth-duration":
                    o = o with { GrowthDurationSeconds = ParseSeconds(Next()) };
                    break;
                case "--samples":
                    o = o with { LatencySamples = (int)ParseCount(Next()) };
                    break;
                case "--approval-samples":
                    o = o with { ApprovalSamples = (int)ParseCount(Next()) };
                    break;
                case "--figures":
                    o = o with { Figures = ParseFigures(Next()) };
                    break;
                case "--json":
                    o = o with { JsonPath = Next() };
                    break;
                case "--docs":
                    o = o with { DocsPath = Next() };
                    break;
                case "--no-docs":
                    o = o with { DocsPath = null, DefaultDocsPath = null, NoDocs = true };
                    break;
                case "--default-docs":
                    o = o with { DefaultDocsPath = Next() };
                    break;
                case "--prototype":
                    o = o with { Prototypes = [.. o.Prototypes, Next()] };
                    break;
                case "--commit":
                    o = o with { Commit = Next() };
                    break;
                case "--work-dir":
                    o = o with { WorkDir = Next() };
                    break;
                case "--keep":
                    o = o with { KeepCluster = true };
                    break;
                case "--no-pgbench":
                    o = o with { UsePgbench = false };
                    break;
                case "--driver":
                    o = o with { TurnDriver = Next() };
                    if (o.TurnDriver is not ("auto" or "sdk" or "runtime"))
                    {
                        throw new ArgumentException("--driver must be auto, sdk or runtime");
                    }
                    break;
                default:
                    throw new ArgumentException($"unknown option {a} (try --help)");
            }
        }
        if (o.DocsPath is null && !o.NoDocs && o.DefaultDocsPath is not null && o.Preset is ("default" or "huge") && o.Prototypes.Count == 0
            && o.Figures.Count == 6)
        {
            o = o with { DocsPath = o.DefaultDocsPath };
        }
        if (o.Clients.Count == 0 || o.Clients.Any(c => c < 1 || c > 128))
        {
            throw new ArgumentException("--clients takes numbers between 1 and 128, e.g. 1,4,16");
        }
        if (o.GrowthSizes.Any(s => s < 1_000 || s > 100_000_000))
        {
            throw new ArgumentException("--sizes takes step counts between 1e3 and 1e8, e.g. 1e5,1e6");
        }
        return o;
    }

    /// <summary>"1e6", "100000", "100k", "1m".</summary>
    internal static long ParseCount(string s)
    {
        s = s.Trim().ToLowerInvariant().Replace("_", "", StringComparison.Ordinal);
        var mult = 1L;
        if (s.EndsWith('k'))
        {
            mult = 1_000;
            s = s[..^1];
        }
        else if (s.EndsWith('m'))
        {
            mult = 1_000_000;
            s = s[..^1];
        }
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v < 0 || double.IsInfinity(v))
        {
            throw new ArgumentException($"not a count: {s}");
        }
        return (long)Math.Round(v * mult);
    }

    private static SortedSet<int> ParseFigures(string s)
    {
        var set = new SortedSet<int>();
        foreach (var part in s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n is < 1 or > 6)
            {
                throw new ArgumentException($"--figures takes figure numbers between 1 and 6, e.g. 4,5 (got {part})");
            }
            set.Add(n);
        }
        if (set.Count == 0)
        {
            throw new ArgumentException("--figures takes figure numbers between 1 and 6, e.g. 4,5");
        }
        return set;
    }

    private static double ParseSeconds(string s)
    {
        s = s.Trim().TrimEnd('s');
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v <= 0 || v > 3600)
        {
            throw new ArgumentException($"not a duration in seconds: {s}");
        }
        return v;
    }

    /// <summary>Help text.</summary>
    public const string Help = """
        aos bench — pgAgentOS benchmarks. Starts a private durable PostgreSQL cluster (synchronous_commit on,
        fsync on) in a temporary directory, installs the kernel and measures, each figure against a baseline
        taken in the same run on the same server:
          1. raw single-row INSERTs of step-sized rows (pgbench and a plain Npgsql loop), a SKIP LOCKED queue
          2. steps recorded through the SDK by workers holding a leased turn
          3. whole 5-step turns driven by N workers (turns/s, commits per turn)
          4. dispatch latency send_message -> claimed, against a raw LISTEN/NOTIFY + SKIP LOCKED round trip
          5. approval latency approve_step -> tool execution started
          6. growth: 2, 4 and the monitoring views at 10^5 and 10^6 recorded steps; CPU and bytes per step
        Prints a Markdown table, writes a JSON report and regenerates docs/benchmarks.md.

        Usage: aos bench [options]
          --quick                 short windows, growth to 1e5 only (development)
          --tiny                  the smallest run that exercises everything (smoke test)
          --huge                  add the 1e7-step growth size (long: preloads ten million steps)
          --sizes 1e5,1e6         growth sizes (recorded steps)
          --clients 1,4,16        client counts
          --duration 8            seconds per throughput window (--warmup 1.5 before it)
          --growth-duration 5     seconds per throughput window at each growth size
          --samples 300           latency samples per client count (--approval-samples 150)
          --figures 4,5           measure only these figures (1 comes with 2 and 3; no docs by default)
          --driver auto|sdk|runtime   who drives the whole turns of figure 3 (auto: the runtime when built in)
          --json PATH             JSON report (default artifacts/bench/bench-<time>.json)
          --docs PATH | --no-docs regenerate this Markdown file (scripts/bench.sh: docs/benchmarks.md for the
                                  default and --huge runs, not for --quick and --tiny unless --docs is given)
          --work-dir DIR          where the temporary cluster lives (default: the system temp directory)
          --keep                  leave the cluster running afterwards (its URL is printed)
          --no-pgbench            use the plain Npgsql loop as the raw INSERT baseline
          --render REPORT.json [--docs PATH]   print the table (and rewrite the docs) from a saved report
          --prototype NAME        apply bench/PgAgentOS.Bench/prototypes/NAME.sql to the bench's cluster after the
                                  kernel (a proposed fix, measured; never the kernel as built; no docs by default)
        """;
}
