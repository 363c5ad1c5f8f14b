using System.Text.Json;
using System.Text.Json.Serialization;

namespace PgAgentOS.Bench;

/// <summary>Everything one bench run measured (the JSON report).</summary>
public sealed class BenchReport
{
    /// <summary>Format version of this JSON.</summary>
    public int Format { get; set; } = 1;
    /// <summary>Preset of the run (default, quick, tiny, huge).</summary>
    public string Preset { get; set; } = "";
    /// <summary>Prototype fixes applied to the bench's cluster (empty: the kernel as built).</summary>
    public List<string> Prototypes { get; set; } = [];
    /// <summary>Git commit of the checkout, when known.</summary>
    public string? Commit { get; set; }
    /// <summary>When the run started.</summary>
    public DateTimeOffset StartedAt { get; set; }
    /// <summary>Wall-clock seconds of the whole run (cluster creation included).</summary>
    public double ElapsedSeconds { get; set; }
    /// <summary>The machine and server.</summary>
    public MachineInfo Machine { get; set; } = new();
    /// <summary>Client counts.</summary>
    public List<int> Clients { get; set; } = [];
    /// <summary>Timed window of each throughput figure (seconds).</summary>
    public double DurationSeconds { get; set; }
    /// <summary>Who drove the whole turns (sdk or runtime).</summary>
    public string TurnDriver { get; set; } = "";

    /// <summary>1: raw INSERTs through pgbench (the baseline when present).</summary>
    public List<ThroughputPoint> RawInsertPgbench { get; set; } = [];
    /// <summary>1: raw INSERTs through a plain Npgsql loop (prepared statement, one connection per client).</summary>
    public List<ThroughputPoint> RawInsertNpgsql { get; set; } = [];
    /// <summary>1: SKIP LOCKED claim + complete cycles on a plain queue table (a cycle is two commits).</summary>
    public List<ThroughputPoint> RawQueue { get; set; } = [];
    /// <summary>2: steps recorded through the SDK by workers holding a leased turn.</summary>
    public List<ThroughputPoint> Steps { get; set; } = [];
    /// <summary>2, again at the largest client count, over a data source with Npgsql's default reset (DISCARD ALL between SDK calls).</summary>
    public ThroughputPoint? StepsNoReset { get; set; }
    /// <summary>3: whole 5-step turns.</summary>
    public List<TurnPoint> Turns { get; set; } = [];
    /// <summary>3 at the largest worker count with other drivers (the SDK loop, the runtime without streaming), for comparison.</summary>
    public List<TurnPoint> TurnVariants { get; set; } = [];
    /// <summary>4: dispatch latency, ours and raw.</summary>
    public List<LatencyPoint> Dispatch { get; set; } = [];
    /// <summary>5: approval latency.</summary>
    public List<LatencyPoint> Approval { get; set; } = [];
    /// <summary>4 with one runtime WorkerHost of N slots waiting (one LISTEN, wake one slot); raw: the round trip with one listener.</summary>
    public List<LatencyPoint> DispatchHost { get; set; } = [];
    /// <summary>5 with one runtime WorkerHost of N slots waiting; raw: the round trip with one listener.</summary>
    public List<LatencyPoint> ApprovalHost { get; set; } = [];
    /// <summary>Statements per step and where the time goes (pg_stat_statements, track = all).</summary>
    public ProfileResult? Profile { get; set; }
    /// <summary>Bytes per step against the plain table.</summary>
    public BytesResult? Bytes { get; set; }
    /// <summary>6: figures at each growth size.</summary>
    public List<GrowthPoint> Growth { get; set; } = [];
    /// <summary>The targets of issue 7, each checked.</summary>
    public List<TargetCheck> Targets { get; set; } = [];
    /// <summary>Things a reader of the figures should know (noise, fallbacks).</summary>
    public List<string> Notes { get; set; } = [];

    /// <summary>JSON options of the report.</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>The report as JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>The baseline INSERT rate at a client count: pgbench when measured, else the Npgsql loop.</summary>
    public ThroughputPoint? BaselineInsert(int clients) =>
        RawInsertPgbench.FirstOrDefault(p => p.Clients == clients) ?? RawInsertNpgsql.FirstOrDefault(p => p.Clients == clients);
}

/// <summary>The machine and the server the figures were taken on.</summary>
public sealed class MachineInfo
{
    /// <summary>CPU model (/proc/cpuinfo).</summary>
    public string Cpu { get; set; } = "";
    /// <summary>Logical cores.</summary>
    public int Cores { get; set; }
    /// <summary>RAM in bytes.</summary>
    public long RamBytes { get; set; }
    /// <summary>Operating system.</summary>
    public string Os { get; set; } = "";
    /// <summary>.NET runtime.</summary>
    public string DotNet { get; set; } = "";
    /// <summary>PostgreSQL version() string.</summary>
    public string Postgres { get; set; } = "";
    /// <summary>Server settings that matter for durability and speed.</summary>
    public Dictionary<string, string> Settings { get; set; } = [];
    /// <summary>Load average (1, 5, 15 min) when the run started: anything above ~0.5 means other work shared the cores.</summary>
    public double[] LoadAtStart { get; set; } = [];
    /// <summary>Load average when the run ended.</summary>
    public double[] LoadAtEnd { get; set; } = [];
    /// <summary>File system of the data directory.</summary>
    public string? Storage { get; set; }
}

/// <summary>A throughput figure at one client count.</summary>
public sealed class ThroughputPoint
{
    /// <summary>Concurrent clients.</summary>
    public int Clients { get; set; }
    /// <summary>Units (rows, steps, cycles) per second.</summary>
    public double PerSecond { get; set; }
    /// <summary>Client calls (= commits for single-transaction calls) per second.</summary>
    public double CallsPerSecond { get; set; }
    /// <summary>Units in the window.</summary>
    public long Units { get; set; }
    /// <summary>Calls in the window.</summary>
    public long Calls { get; set; }
    /// <summary>Length of the window (seconds).</summary>
    public double Seconds { get; set; }
    /// <summary>CPU time of the PostgreSQL backends per unit (microseconds).</summary>
    public double? ServerCpuUs { get; set; }
    /// <summary>CPU time of the bench process (the client side) per unit (microseconds).</summary>
    public double? ClientCpuUs { get; set; }
    /// <summary>Median latency of one call (ms).</summary>
    public double? P50Ms { get; set; }
    /// <summary>99th percentile latency of one call (ms).</summary>
    public double? P99Ms { get; set; }
    /// <summary>Ratio to the baseline at the same client count, where one applies.</summary>
    public double? Ratio { get; set; }
    /// <summary>Where the clients' backends spent the window (share of pg_stat_activity samples per state).</summary>
    public Dictionary<string, double>? Waits { get; set; }
}

/// <summary>Figure 3 at one worker count.</summary>
public sealed class TurnPoint
{
    /// <summary>Workers.</summary>
    public int Clients { get; set; }
    /// <summary>Completed turns per second.</summary>
    public double TurnsPerSecond { get; set; }
    /// <summary>Turns completed.</summary>
    public long Turns { get; set; }
    /// <summary>Seconds from the first claim to the last completion.</summary>
    public double Seconds { get; set; }
    /// <summary>xact_commit delta of the database per turn while the workers ran (messages were queued before).</summary>
    public double CommitsPerTurn { get; set; }
    /// <summary>Write transactions (transaction ids assigned) per turn while the workers ran: the durable commits.</summary>
    public double WriteTransactionsPerTurn { get; set; }
    /// <summary>Commits of send_message per turn (measured the same way while the turns were queued).</summary>
    public double SendCommitsPerTurn { get; set; }
    /// <summary>Claims that found nothing to do (they commit too); null when the driver does not say.</summary>
    public long? EmptyClaims { get; set; }
    /// <summary>Turns per second divided by the baseline INSERTs per second at the same client count.</summary>
    public double? Ratio { get; set; }
    /// <summary>Median latency of a whole turn from claim to completion (ms).</summary>
    public double? P50Ms { get; set; }
    /// <summary>Where the workers' backends spent the run (share of pg_stat_activity samples per state).</summary>
    public Dictionary<string, double>? Waits { get; set; }
    /// <summary>Who drove the turns.</summary>
    public string Driver { get; set; } = "";
    /// <summary>What the workers sent (pg_stat_statements, top level): calls per turn (in PerStep) and time.</summary>
    public List<StatementStat> ClientStatements { get; set; } = [];
}

/// <summary>A latency figure at one count of waiting workers.</summary>
public sealed class LatencyPoint
{
    /// <summary>Workers waiting (each on its own LISTEN connection).</summary>
    public int Clients { get; set; }
    /// <summary>Ours.</summary>
    public LatencyStats Ours { get; set; } = new();
    /// <summary>The raw LISTEN/NOTIFY + SKIP LOCKED round trip, where measured.</summary>
    public LatencyStats? Raw { get; set; }
    /// <summary>Ours measured from the return of the sender's COMMIT instead of its start.</summary>
    public LatencyStats? OursFromCommitReturn { get; set; }
    /// <summary>Raw measured from the return of the sender's COMMIT instead of its start.</summary>
    public LatencyStats? RawFromCommitReturn { get; set; }
    /// <summary>Ours: from the COMMIT sent to the moment the worker that got the work had read the notification.</summary>
    public LatencyStats? OursWoken { get; set; }
    /// <summary>Raw: the same.</summary>
    public LatencyStats? RawWoken { get; set; }
    /// <summary>p50 ours / p50 raw.</summary>
    public double? RatioP50 { get; set; }
    /// <summary>p99 ours / p99 raw.</summary>
    public double? RatioP99 { get; set; }
}

/// <summary>Percentiles of a latency sample (milliseconds).</summary>
public sealed class LatencyStats
{
    /// <summary>Samples.</summary>
    public int N { get; set; }
    /// <summary>Median.</summary>
    public double P50 { get; set; }
    /// <summary>90th percentile.</summary>
    public double P90 { get; set; }
    /// <summary>99th percentile.</summary>
    public double P99 { get; set; }
    /// <summary>Mean.</summary>
    public double Mean { get; set; }
    /// <summary>Largest.</summary>
    public double Max { get; set; }

    /// <summary>Statistics of samples in milliseconds.</summary>
    public static LatencyStats Of(IReadOnlyCollection<double> ms)
    {
        if (ms.Count == 0)
        {
            return new LatencyStats();
        }
        var s = ms.Order().ToArray();
        return new LatencyStats
        {
            N = s.Length,
            P50 = Percentile(s, 0.50),
            P90 = Percentile(s, 0.90),
            P99 = Percentile(s, 0.99),
            Mean = s.Average(),
            Max = s[^1],
        };
    }

    /// <summary>Percentile by linear interpolation between closest ranks.</summary>
    public static double Percentile(double[] sorted, double p)
    {
        if (sorted.Length == 1)
        {
            return sorted[0];
        }
        var rank = p * (sorted.Length - 1);
        var lo = (int)Math.Floor(rank);
        var hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
    }
}

/// <summary>Statements per step, from pg_stat_statements with track = all over a profiling pass.</summary>
public sealed class ProfileResult
{
    /// <summary>Steps recorded in the pass.</summary>
    public long Steps { get; set; }
    /// <summary>SDK calls in the pass.</summary>
    public long Calls { get; set; }
    /// <summary>Top-level statements the client sent per step.</summary>
    public double TopLevelPerStep { get; set; }
    /// <summary>All statements the executor ran (nested ones inside kernel functions included) per step.</summary>
    public double StatementsPerStep { get; set; }
    /// <summary>Statements the executor ran per SDK call, by call.</summary>
    public Dictionary<string, double> StatementsPerCall { get; set; } = [];
    /// <summary>The statements with the most total execution time.</summary>
    public List<StatementStat> Top { get; set; } = [];
    /// <summary>Every statement the client sent (top level), with its count per SDK call.</summary>
    public List<StatementStat> ClientStatements { get; set; } = [];
    /// <summary>Write transactions (transaction ids assigned) per SDK call.</summary>
    public double WriteTransactionsPerCall { get; set; }
    /// <summary>Commits per SDK call (xact_commit delta over the pass).</summary>
    public double CommitsPerCall { get; set; }
    /// <summary>WAL bytes per step over the pass.</summary>
    public double WalBytesPerStep { get; set; }
    /// <summary>WAL bytes per row of the plain INSERT (same kind of pass).</summary>
    public double WalBytesPerRawRow { get; set; }
}

/// <summary>One row of pg_stat_statements.</summary>
public sealed class StatementStat
{
    /// <summary>Statement text (shortened).</summary>
    public string Query { get; set; } = "";
    /// <summary>Top-level (sent by the client) or nested (inside a function).</summary>
    public bool TopLevel { get; set; }
    /// <summary>Executions.</summary>
    public long Calls { get; set; }
    /// <summary>Executions per step.</summary>
    public double PerStep { get; set; }
    /// <summary>Total execution time (ms).</summary>
    public double TotalMs { get; set; }
    /// <summary>Mean execution time (ms).</summary>
    public double MeanMs { get; set; }
}

/// <summary>Bytes per step (tables and indexes the hot path writes) against the plain table.</summary>
public sealed class BytesResult
{
    /// <summary>Step rows in the bench database when measured.</summary>
    public long Steps { get; set; }
    /// <summary>Bytes of all tables and indexes the step path writes, per step.</summary>
    public double PerStep { get; set; }
    /// <summary>Bytes of the plain table (and its primary key) per row.</summary>
    public double PerRawRow { get; set; }
    /// <summary>PerStep / PerRawRow.</summary>
    public double Ratio { get; set; }
    /// <summary>Bytes per step by relation (table with its indexes and TOAST).</summary>
    public Dictionary<string, double> ByRelation { get; set; } = [];
}

/// <summary>Figures at one growth size.</summary>
public sealed class GrowthPoint
{
    /// <summary>Target step count.</summary>
    public long Size { get; set; }
    /// <summary>Step rows actually in the database when measured.</summary>
    public long StepsInDatabase { get; set; }
    /// <summary>Seconds the preload took.</summary>
    public double PreloadSeconds { get; set; }
    /// <summary>Raw INSERT baseline, re-measured at this size.</summary>
    public List<ThroughputPoint> RawInsert { get; set; } = [];
    /// <summary>Figure 2 at this size.</summary>
    public List<ThroughputPoint> Steps { get; set; } = [];
    /// <summary>Figure 4 at this size (one waiting worker).</summary>
    public LatencyPoint? Dispatch { get; set; }
    /// <summary>Monitoring queries: name → latency (ms) as the biggest tenant.</summary>
    public Dictionary<string, LatencyStats> Views { get; set; } = [];
    /// <summary>EXPLAIN (ANALYZE, BUFFERS) of each monitoring query.</summary>
    public Dictionary<string, string> Plans { get; set; } = [];
    /// <summary>Steps of the tenant the views were read as.</summary>
    public long ViewTenantSteps { get; set; }
    /// <summary>Database size in bytes.</summary>
    public long DatabaseBytes { get; set; }
}

/// <summary>One target of issue 7 and whether this run met it.</summary>
public sealed class TargetCheck
{
    /// <summary>Figure number (2, 3, ...).</summary>
    public string Figure { get; set; } = "";
    /// <summary>What is measured.</summary>
    public string What { get; set; } = "";
    /// <summary>The target, as text.</summary>
    public string Target { get; set; } = "";
    /// <summary>What this run measured, as text.</summary>
    public string Measured { get; set; } = "";
    /// <summary>Met, missed, or null when not measured.</summary>
    public bool? Met { get; set; }
}
