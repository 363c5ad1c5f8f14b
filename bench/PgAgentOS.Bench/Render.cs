using System.Globalization;
using System.Text;

namespace PgAgentOS.Bench;

/// <summary>The report as Markdown: the summary table printed at the end, and docs/benchmarks.md.</summary>
public static class Render
{
    /// <summary>Markers around the hand-written findings of docs/benchmarks.md, kept when it is regenerated.</summary>
    public const string FindingsBegin = "<!-- findings:begin (hand-written; kept when aos bench regenerates this file) -->";

    /// <summary>End marker of the findings.</summary>
    public const string FindingsEnd = "<!-- findings:end -->";

    /// <summary>The summary table: one row per figure and client count.</summary>
    public static string Table(BenchReport r)
    {
        var sb = new StringBuilder();
        var baseName = r.RawInsertPgbench.Count > 0 ? "pgbench INSERT" : "Npgsql INSERT";
        sb.AppendLine("| # | figure | clients | ours | baseline | ratio |");
        sb.AppendLine("|---|---|--:|--:|--:|--:|");
        foreach (var p in r.RawInsertPgbench)
        {
            Row(sb, "1", "raw INSERT, pgbench (the baseline)", p.Clients, F($"{p.PerSecond:N0} rows/s"), "", "1.00");
        }
        foreach (var p in r.RawInsertNpgsql)
        {
            Row(sb, "1", "raw INSERT, plain Npgsql loop", p.Clients, F($"{p.PerSecond:N0} rows/s"),
                r.RawInsertPgbench.Count > 0 ? baseName : "", F($"{p.Ratio:0.00}"));
        }
        foreach (var p in r.RawQueue)
        {
            Row(sb, "1", "raw SKIP LOCKED claim + complete", p.Clients, F($"{p.PerSecond:N0} cycles/s"), "", "");
        }
        foreach (var p in r.Steps)
        {
            var b = r.BaselineInsert(p.Clients);
            Row(sb, "2", "steps through the SDK", p.Clients, F($"{p.PerSecond:N0} steps/s"), b is null ? "" : F($"{b.PerSecond:N0} rows/s"),
                F($"{p.Ratio:0.00}"));
        }
        if (r.StepsNoReset is { } nr)
        {
            var b = r.BaselineInsert(nr.Clients);
            Row(sb, "2", "steps through the SDK, with Npgsql's DISCARD ALL reset", nr.Clients, F($"{nr.PerSecond:N0} steps/s"), b is null ? "" : F($"{b.PerSecond:N0} rows/s"),
                F($"{nr.Ratio:0.00}"));
        }
        foreach (var p in r.Turns)
        {
            var b = r.BaselineInsert(p.Clients);
            Row(sb, "3", F($"whole 5-step turns, {p.Driver} ({p.CommitsPerTurn:0.00} commits/turn)"), p.Clients, F($"{p.TurnsPerSecond:N0} turns/s"),
                b is null ? "" : F($"{b.PerSecond:N0} rows/s"), F($"{p.Ratio:0.000}"));
        }
        foreach (var p in r.TurnVariants)
        {
            var b = r.BaselineInsert(p.Clients);
            Row(sb, "3", F($"whole 5-step turns, {p.Driver} ({p.CommitsPerTurn:0.00} commits/turn)"), p.Clients, F($"{p.TurnsPerSecond:N0} turns/s"),
                b is null ? "" : F($"{b.PerSecond:N0} rows/s"), F($"{p.Ratio:0.000}"));
        }
        foreach (var p in r.Dispatch)
        {
            Row(sb, "4", "dispatch latency p50 / p99", p.Clients, F($"{p.Ours.P50:0.00} / {p.Ours.P99:0.00} ms"),
                p.Raw is null ? "" : F($"{p.Raw.P50:0.00} / {p.Raw.P99:0.00} ms"), F($"{p.RatioP50:0.0} / {p.RatioP99:0.0}"));
        }
        foreach (var p in r.Approval)
        {
            Row(sb, "5", "approval latency p50 / p99", p.Clients, F($"{p.Ours.P50:0.00} / {p.Ours.P99:0.00} ms"),
                p.Raw is null ? "" : F($"{p.Raw.P50:0.00} / {p.Raw.P99:0.00} ms"), F($"{p.RatioP50:0.0} / {p.RatioP99:0.0}"));
        }
        foreach (var p in r.DispatchHost)
        {
            Row(sb, "4", "dispatch latency p50 / p99, one runtime host (clients = its slots; raw: one listener)", p.Clients,
                F($"{p.Ours.P50:0.00} / {p.Ours.P99:0.00} ms"), p.Raw is null ? "" : F($"{p.Raw.P50:0.00} / {p.Raw.P99:0.00} ms"),
                F($"{p.RatioP50:0.0} / {p.RatioP99:0.0}"));
        }
        foreach (var p in r.ApprovalHost)
        {
            Row(sb, "5", "approval latency p50 / p99, one runtime host (clients = its slots; raw: one listener)", p.Clients,
                F($"{p.Ours.P50:0.00} / {p.Ours.P99:0.00} ms"), p.Raw is null ? "" : F($"{p.Raw.P50:0.00} / {p.Raw.P99:0.00} ms"),
                F($"{p.RatioP50:0.0} / {p.RatioP99:0.0}"));
        }
        if (r.Bytes is { } bytes)
        {
            Row(sb, "6", "bytes per step", 0, F($"{bytes.PerStep:N0} B"), F($"{bytes.PerRawRow:N0} B"), F($"{bytes.Ratio:0.0}"));
        }
        var max = r.Clients.Count > 0 ? r.Clients.Max() : 0;
        var rawCpu = r.RawInsertNpgsql.FirstOrDefault(p => p.Clients == max)?.ServerCpuUs;
        foreach (var g in r.Growth)
        {
            var at = BenchRunner.Human(g.Size);
            foreach (var p in g.Steps)
            {
                var b = g.RawInsert.FirstOrDefault(x => x.Clients == p.Clients);
                Row(sb, "6", $"steps through the SDK at {at} steps", p.Clients, F($"{p.PerSecond:N0} steps/s"),
                    b is null ? "" : F($"{b.PerSecond:N0} rows/s"), F($"{p.Ratio:0.00}"));
            }
            var top = g.Steps.FirstOrDefault(p => p.Clients == max);
            if (top?.ServerCpuUs is { } cpu && rawCpu is { } rc && rc > 0)
            {
                Row(sb, "6", $"server CPU per step at {at} steps", max, F($"{cpu:0} µs"), F($"{rc:0} µs"), F($"{cpu / rc:0.0}"));
            }
            if (g.Dispatch is { } d)
            {
                Row(sb, "6", $"dispatch latency p50 / p99 at {at} steps", 1, F($"{d.Ours.P50:0.00} / {d.Ours.P99:0.00} ms"),
                    d.Raw is null ? "" : F($"{d.Raw.P50:0.00} / {d.Raw.P99:0.00} ms"), F($"{d.RatioP50:0.0} / {d.RatioP99:0.0}"));
            }
            foreach (var (name, v) in g.Views)
            {
                Row(sb, "6", $"{name} p50 at {at} steps", 1, F($"{v.P50:0.00} ms"), "", "");
            }
        }
        return sb.ToString();
    }

    /// <summary>The targets as a table.</summary>
    public static string TargetTable(BenchReport r)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| # | what | target | measured | |");
        sb.AppendLine("|---|---|---|---|---|");
        foreach (var t in r.Targets)
        {
            sb.AppendLine($"| {t.Figure} | {t.What} | {t.Target} | {t.Measured} | {Status(t.Met)} |");
        }
        return sb.ToString();
    }

    /// <summary>The dispatch and approval points of each count of waiting workers (either may be missing).</summary>
    private static IEnumerable<(int N, LatencyPoint? Dispatch, LatencyPoint? Approval)> ByClients(List<LatencyPoint> dispatch,
        List<LatencyPoint> approval) =>
        dispatch.Select(x => x.Clients).Union(approval.Select(x => x.Clients))
            .Select(n => (n, dispatch.FirstOrDefault(x => x.Clients == n), approval.FirstOrDefault(x => x.Clients == n)));

    private static string Status(bool? met) => met switch { true => "met", false => "**missed**", null => "—" };

    private static void Row(StringBuilder sb, string fig, string what, int clients, string ours, string baseline, string ratio) =>
        sb.AppendLine($"| {fig} | {what} | {(clients > 0 ? clients.ToString(CultureInfo.InvariantCulture) : "")} | {ours} | {baseline} | {ratio} |");

    /// <summary>docs/benchmarks.md, keeping the findings section of the previous file.</summary>
    public static string Docs(BenchReport r, string? previous)
    {
        var findings = ExtractFindings(previous) ?? DefaultFindings;
        var m = r.Machine;
        var sb = new StringBuilder();
        sb.AppendLine("# Benchmarks");
        sb.AppendLine();
        sb.AppendLine(F($"> Generated by `./aos bench` on {r.StartedAt:yyyy-MM-dd HH:mm} UTC (preset {r.Preset}{(r.Commit is null ? "" : ", commit " + r.Commit)}, {r.ElapsedSeconds / 60:0.0} min). "));
        sb.AppendLine("> The figures below are rewritten by every run; the section *What we found* is hand-written and kept.");
        if (r.Prototypes.Count > 0)
        {
            sb.AppendLine($"> **PROTOTYPE run ({string.Join(", ", r.Prototypes)}): not the kernel as built.**");
        }
        sb.AppendLine();
        sb.AppendLine("Every figure is a ratio against a baseline measured **in the same run, on the same server, with the same");
        sb.AppendLine("durability settings**: the bench starts its own PostgreSQL cluster (default settings: `synchronous_commit = on`,");
        sb.AppendLine("`fsync = on`) in a temporary directory, installs the kernel, measures, and removes the cluster.");
        sb.AppendLine();
        sb.AppendLine("```");
        sb.AppendLine("./aos bench                 # about 5-10 minutes: 10^5 and 10^6 recorded steps");
        sb.AppendLine("./aos bench --huge          # adds 10^7 steps (preloading takes long)");
        sb.AppendLine("./aos bench --quick         # a few seconds per figure, for development");
        sb.AppendLine("./aos bench --quick --figures 4,5   # only some figures (1 comes with 2 and 3)");
        sb.AppendLine("```");
        sb.AppendLine();
        sb.AppendLine("It prints the summary table, writes the JSON report to `artifacts/bench/` and regenerates this file.");
        sb.AppendLine();

        sb.AppendLine("## Machine");
        sb.AppendLine();
        sb.AppendLine("| | |");
        sb.AppendLine("|---|---|");
        sb.AppendLine($"| CPU | {m.Cpu}, {m.Cores} logical cores |");
        sb.AppendLine(F($"| RAM | {m.RamBytes / (1024.0 * 1024 * 1024):0.0} GiB |"));
        sb.AppendLine($"| OS | {m.Os} |");
        sb.AppendLine($"| storage of the data directory | {m.Storage ?? "?"} |");
        sb.AppendLine($"| PostgreSQL | {m.Postgres} |");
        sb.AppendLine($"| .NET | {m.DotNet} |");
        sb.AppendLine($"| durability | synchronous_commit = {m.Settings.GetValueOrDefault("synchronous_commit", "?")}, fsync = {m.Settings.GetValueOrDefault("fsync", "?")}, full_page_writes = {m.Settings.GetValueOrDefault("full_page_writes", "?")}, wal_sync_method = {m.Settings.GetValueOrDefault("wal_sync_method", "?")}, commit_delay = {m.Settings.GetValueOrDefault("commit_delay", "?")} |");
        sb.AppendLine($"| other settings | shared_buffers = {m.Settings.GetValueOrDefault("shared_buffers", "?")}, max_wal_size = {m.Settings.GetValueOrDefault("max_wal_size", "?")}, checkpoint_timeout = {m.Settings.GetValueOrDefault("checkpoint_timeout", "?")}, jit = {m.Settings.GetValueOrDefault("jit", "?")}, shared_preload_libraries = {m.Settings.GetValueOrDefault("shared_preload_libraries", "")} |");
        sb.AppendLine(F($"| load average (1 min) | {Load(m.LoadAtStart)} at the start, {Load(m.LoadAtEnd)} at the end |"));
        sb.AppendLine();
        sb.AppendLine("The bench process (the clients) runs on the same cores as the server, as the anchors of issue 7 did.");
        sb.AppendLine();

        sb.AppendLine("## Targets");
        sb.AppendLine();
        sb.Append(TargetTable(r));
        sb.AppendLine();

        sb.AppendLine("## All figures");
        sb.AppendLine();
        sb.Append(Table(r));
        sb.AppendLine();

        sb.AppendLine("### 1. Raw baselines");
        sb.AppendLine();
        sb.AppendLine("A plain table `bench.raw_step (id bigint identity primary key, created_at timestamptz, content jsonb)`; each");
        sb.AppendLine("transaction inserts one row of about 500 bytes of JSON. **pgbench** (`-M prepared`, the row built from a");
        sb.AppendLine("random number so the server parses its JSON every time) is the baseline every ratio divides by; the plain");
        sb.AppendLine("**Npgsql loop** (one connection per client, a prepared statement) shows what a .NET client can reach. The");
        sb.AppendLine("queue: `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED)` then `DELETE`, two commits per cycle. Afterwards the");
        sb.AppendLine("bench vacuums both tables itself, so that autovacuum does not do it during a later figure's window.");
        sb.AppendLine();
        sb.AppendLine("| clients | pgbench rows/s | Npgsql rows/s | Npgsql / pgbench | backend CPU per row | Npgsql p50 / p99 | queue cycles/s | where the Npgsql backends spent the window |");
        sb.AppendLine("|--:|--:|--:|--:|--:|--:|--:|---|");
        foreach (var n in r.Clients)
        {
            var pg = r.RawInsertPgbench.FirstOrDefault(p => p.Clients == n);
            var np = r.RawInsertNpgsql.FirstOrDefault(p => p.Clients == n);
            var q = r.RawQueue.FirstOrDefault(p => p.Clients == n);
            sb.AppendLine(F($"| {n} | {pg?.PerSecond:N0} | {np?.PerSecond:N0} | {np?.Ratio:0.00} | {np?.ServerCpuUs:0} µs | {np?.P50Ms:0.00} / {np?.P99Ms:0.00} ms | {q?.PerSecond:N0} | {WaitSampler.Describe(np?.Waits)} |"));
        }
        sb.AppendLine();

        sb.AppendLine("### 2. Steps through the SDK");
        sb.AppendLine();
        sb.AppendLine("Each client is a worker holding a leased turn (claimed with `ClaimTurnAsync`; the agent has big budgets and");
        sb.AppendLine("auto-approves `web_search`). It repeats what the runtime records for a tool-using iteration:");
        sb.AppendLine("`RecordResponseAsync` (thinking + a `web_search` call: two steps, one call; the kernel decides the call and");
        sb.AppendLine("returns the execution ticket) and `RecordToolResultAsync` with the ticket (one step). Three steps in two calls,");
        sb.AppendLine("each call one transaction; the answer is recorded when the window ends. Every step carries about 450 bytes");
        sb.AppendLine("of content. CPU is the user + system time of the clients' PostgreSQL backends (/proc/<pid>/stat). After the");
        sb.AppendLine("warm-up the bench runs `ANALYZE`, as autovacuum would within the first minute of an installation: the workers'");
        sb.AppendLine("first plans were made while the kernel's tables were nearly empty, and a plan is kept until its table is analysed.");
        sb.AppendLine();
        sb.AppendLine("| clients | steps/s | calls/s | ratio to raw INSERTs | backend CPU per step | client CPU per step | call p50 / p99 | where the backends spent the window |");
        sb.AppendLine("|--:|--:|--:|--:|--:|--:|--:|---|");
        foreach (var p in r.Steps)
        {
            sb.AppendLine(F($"| {p.Clients} | {p.PerSecond:N0} | {p.CallsPerSecond:N0} | {p.Ratio:0.00} | {p.ServerCpuUs:0} µs | {p.ClientCpuUs:0} µs | {p.P50Ms:0.00} / {p.P99Ms:0.00} ms | {WaitSampler.Describe(p.Waits)} |"));
        }
        if (r.StepsNoReset is { } nr)
        {
            sb.AppendLine(F($"| {nr.Clients}, with DISCARD ALL | {nr.PerSecond:N0} | {nr.CallsPerSecond:N0} | {nr.Ratio:0.00} | {nr.ServerCpuUs:0} µs | {nr.ClientCpuUs:0} µs | {nr.P50Ms:0.00} / {nr.P99Ms:0.00} ms | {WaitSampler.Describe(nr.Waits)} |"));
            sb.AppendLine();
            sb.AppendLine("The SDK's data sources (`AosClient.CreateDataSource`) set Npgsql's `No Reset On Close`; the last row runs the");
            sb.AppendLine("same workers over a data source with Npgsql's default instead, which sends `DISCARD ALL` when a pooled");
            sb.AppendLine("connection is reused: one more statement per call, and every cached plan of the kernel's functions dropped.");
        }
        sb.AppendLine();
        if (r.Profile is { } prof)
        {
            sb.AppendLine("#### Statements per step");
            sb.AppendLine();
            sb.AppendLine(F($"One worker, {prof.Calls / 2} iterations ({prof.Steps} steps), `pg_stat_statements.track = all` (statements inside"));
            sb.AppendLine(F($"kernel functions counted too): **{prof.StatementsPerStep:0.0} statements per step** ({prof.TopLevelPerStep:0.00} sent by the client),"));
            sb.AppendLine(F($"{prof.CommitsPerCall:0.00} commits per call ({prof.WriteTransactionsPerCall:0.00} write transactions), **{prof.WalBytesPerStep:N0} WAL bytes per step** (a plain INSERT of the same row: {prof.WalBytesPerRawRow:N0})."));
            sb.AppendLine();
            sb.AppendLine("What the client sends per call: " + string.Join(", ", prof.ClientStatements.Select(c => F($"`{c.Query}` × {c.PerStep:0.00}"))) + ".");
            sb.AppendLine();
            sb.AppendLine("| statement | top level | per step | mean | total |");
            sb.AppendLine("|---|---|--:|--:|--:|");
            foreach (var s in prof.Top.Take(15))
            {
                sb.AppendLine(F($"| `{s.Query.Replace("|", "\\|", StringComparison.Ordinal)}` | {(s.TopLevel ? "yes" : "")} | {s.PerStep:0.00} | {s.MeanMs * 1000:0} µs | {s.TotalMs:0} ms |"));
            }
            sb.AppendLine();
        }

        sb.AppendLine($"### 3. Whole turns (driven by {r.TurnDriver})");
        sb.AppendLine();
        sb.AppendLine("Messages are queued first (`send_message` on 4 conversations per worker, at least 8); then N workers run");
        sb.AppendLine("them until none is left. Five steps per turn: thinking + a `web_search` call (auto-approved), its result,");
        sb.AppendLine("thinking + the answer; the model answers instantly. **runtime**: a `WorkerHost` of PgAgentOS.Runtime with N");
        sb.AppendLine("slots, the agent on the scripted stand-in model, `web_search` answered in process at once (everything else");
        sb.AppendLine("as shipped: the skills lookup, the context refresh after a tool, answer deltas on `aos_stream`). **sdk**: the");
        sb.AppendLine("leanest loop through the SDK: `claim_turn`, `record_response`, `record_tool_result`, `record_response`.");
        sb.AppendLine("Commits are `pg_stat_database.xact_commit` deltas of the bench database around the workers' run (and");
        sb.AppendLine("around the queueing, for `send_message`); write transactions are transaction ids assigned in the run.");
        sb.AppendLine();
        sb.AppendLine("| workers | turns | turns/s | ratio to raw INSERTs | commits per turn | of which write transactions | + send_message | empty claims | turn p50 | where the backends spent the run |");
        sb.AppendLine("|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
        foreach (var p in r.Turns)
        {
            sb.AppendLine(F($"| {p.Clients} | {p.Turns:N0} | {p.TurnsPerSecond:N0} | {p.Ratio:0.000} | {p.CommitsPerTurn:0.00} | {p.WriteTransactionsPerTurn:0.00} | {p.SendCommitsPerTurn:0.00} | {(p.EmptyClaims is { } ec ? ec.ToString(CultureInfo.InvariantCulture) : "—")} | {p.P50Ms:0.0} ms | {WaitSampler.Describe(p.Waits)} |"));
        }
        foreach (var p in r.TurnVariants)
        {
            sb.AppendLine(F($"| {p.Clients}, {p.Driver} | {p.Turns:N0} | {p.TurnsPerSecond:N0} | {p.Ratio:0.000} | {p.CommitsPerTurn:0.00} | {p.WriteTransactionsPerTurn:0.00} | {p.SendCommitsPerTurn:0.00} | {(p.EmptyClaims is { } ec ? ec.ToString(CultureInfo.InvariantCulture) : "—")} | {p.P50Ms:0.0} ms | {WaitSampler.Describe(p.Waits)} |"));
        }
        sb.AppendLine();
        foreach (var p in r.Turns.Where(t => t.Clients == r.Clients.Max()).Concat(r.TurnVariants).Where(t => t.ClientStatements.Count > 0))
        {
            sb.AppendLine(F($"What the workers sent per turn ({p.Driver}, {p.Clients} workers): ")
                + string.Join(", ", p.ClientStatements.Where(c => c.PerStep >= 0.01).Select(c => F($"`{Short(c.Query)}` × {c.PerStep:0.00}"))) + ".");
            sb.AppendLine();
        }
        sb.AppendLine();

        sb.AppendLine("### 4. Dispatch latency and 5. approval latency");
        sb.AppendLine();
        sb.AppendLine("N workers wait, each on its own `LISTEN aos_turn_ready` connection (`AosNotifications.ListenAsync`). One sender");
        sb.AppendLine("does one thing at a time, on a thread of its own with blocking I/O, and measures on the same clock from the");
        sb.AppendLine("moment it sends its `COMMIT` to the moment a worker holds the work (so the figure includes that commit's WAL");
        sb.AppendLine("flush, as an enqueue → claimed round trip does): for 4, `send_message` committed → `ClaimTurnAsync` returned");
        sb.AppendLine("the turn; for 5, `approve_step` committed → the woken worker claimed the turn and `BeginToolExecutionAsync`");
        sb.AppendLine("returned the ticket. Every woken worker tries to claim; the others find nothing. A conversation serves ten");
        sb.AppendLine("turns, so claims read some history. The raw round trip: `INSERT … RETURNING` + `pg_notify` in a transaction,");
        sb.AppendLine("the woken worker claims with `UPDATE … (SELECT … FOR UPDATE SKIP LOCKED)` on another connection. The last");
        sb.AppendLine("columns measure from the return of the `COMMIT` instead (on a busy machine they can come out near zero or");
        sb.AppendLine("negative: the woken worker finished before the sender was scheduled again). Six samples per waiting worker");
        sb.AppendLine("run first and are not counted: PostgreSQL plans the statements inside a PL/pgSQL function anew for each of a");
        sb.AppendLine("session's first five calls before it keeps a generic plan, and the workers share a pool, so a connection serves");
        sb.AppendLine("the winning claim only about every N-th time (the raw side's statements are prepared before it starts).");
        sb.AppendLine();
        sb.AppendLine("The column *woken* is the part of the p50 until the worker that got the work had read the notification");
        sb.AppendLine("(from the `COMMIT` sent); the rest is that worker's claim (for 5: and `BeginToolExecutionAsync`).");
        sb.AppendLine();
        sb.AppendLine("| waiting workers | dispatch p50 | p90 | p99 | raw p50 | raw p99 | ratio p50 | approval p50 | p90 | p99 | woken p50: dispatch / raw / approval | p50 from the COMMIT's return: dispatch / raw / approval |");
        sb.AppendLine("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        foreach (var (n, d, a) in ByClients(r.Dispatch, r.Approval))
        {
            sb.AppendLine(F($"| {n} | {d?.Ours.P50:0.00} ms | {d?.Ours.P90:0.00} | {d?.Ours.P99:0.00} | {d?.Raw?.P50:0.00} | {d?.Raw?.P99:0.00} | {d?.RatioP50:0.0}× | {a?.Ours.P50:0.00} ms | {a?.Ours.P90:0.00} | {a?.Ours.P99:0.00} | {d?.OursWoken?.P50:0.00} / {d?.RawWoken?.P50:0.00} / {a?.OursWoken?.P50:0.00} ms | {d?.OursFromCommitReturn?.P50:0.00} / {d?.RawFromCommitReturn?.P50:0.00} / {a?.OursFromCommitReturn?.P50:0.00} ms |"));
        }
        sb.AppendLine();

        if (r.DispatchHost.Count > 0 || r.ApprovalHost.Count > 0)
        {
            sb.AppendLine("**The same, with the runtime as deployed: one `WorkerHost` with N slots.** The rows above are a fleet of");
            sb.AppendLine("one-slot workers, each on its own `LISTEN` connection: every notification wakes all of them and each one");
            sb.AppendLine("tries to claim (the raw baseline does the same). A `WorkerHost` holds one `LISTEN` connection for all its");
            sb.AppendLine("slots while one of them is idle, and a notification wakes one idle slot. Here the agent runs on the scripted");
            sb.AppendLine("stand-in model and `web_search` is an in-process tool: dispatch ends when the slot's turn runner starts");
            sb.AppendLine("(`WorkerEventKind.TurnClaimed`, after `claim_turn` returned and its context was parsed), approval when the");
            sb.AppendLine("tool's `RunAsync` is entered. The raw column is the round trip with one listener, measured above.");
            sb.AppendLine("A deployment of several hosts lies between the two tables: a notification wakes one slot per host.");
            sb.AppendLine();
            sb.AppendLine("| slots | dispatch p50 | p90 | p99 | raw p50 (one listener) | ratio p50 | approval p50 | p90 | p99 | p50 from the COMMIT's return: dispatch / approval |");
            sb.AppendLine("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
            foreach (var (n, d, a) in ByClients(r.DispatchHost, r.ApprovalHost))
            {
                sb.AppendLine(F($"| {n} | {d?.Ours.P50:0.00} ms | {d?.Ours.P90:0.00} | {d?.Ours.P99:0.00} | {d?.Raw?.P50:0.00} | {d?.RatioP50:0.0}× | {a?.Ours.P50:0.00} ms | {a?.Ours.P90:0.00} | {a?.Ours.P99:0.00} | {d?.OursFromCommitReturn?.P50:0.00} / {a?.OursFromCommitReturn?.P50:0.00} ms |"));
            }
            sb.AppendLine();
        }

        if (r.Bytes is { } bytes)
        {
            sb.AppendLine("### Bytes per step");
            sb.AppendLine();
            sb.AppendLine(F($"After figures 2-5 (before the preload): {bytes.Steps:N0} steps recorded through the API. Bytes of every relation"));
            sb.AppendLine("the step path writes (table, indexes and TOAST; dead row versions included, as autovacuum finds them)");
            sb.AppendLine(F($"divided by the steps: **{bytes.PerStep:N0} B per step**, against {bytes.PerRawRow:N0} B per row of the plain table (**{bytes.Ratio:0.0}×**)."));
            sb.AppendLine();
            sb.AppendLine("| relation | bytes per step |");
            sb.AppendLine("|---|--:|");
            foreach (var (rel, b) in bytes.ByRelation.OrderByDescending(kv => kv.Value))
            {
                sb.AppendLine(F($"| {rel} | {b:N0} |"));
            }
            sb.AppendLine();
        }

        if (r.Growth.Count > 0)
        {
            sb.AppendLine("### 6. Growth");
            sb.AppendLine();
            sb.AppendLine("The history is preloaded with set-based SQL as superuser: tenants of Zipf-distributed sizes, five agents each,");
            sb.AppendLine("conversations of four turns, turns of six steps with their events, approvals, tool executions and runs,");
            sb.AppendLine("over the last 30 days, then `VACUUM ANALYZE`. The monitoring queries run as the application would (the");
            sb.AppendLine("administrator login, `set_tenant`, row-level security on) for the biggest tenant and its busiest agent.");
            sb.AppendLine();
            sb.AppendLine("| steps in the database | preload | steps/s (ratio) by clients | backend CPU per step | dispatch p50 / p99 | realtime_steps | tool_call_queue | get_agent_analytics | database |");
            sb.AppendLine("|--:|--:|---|--:|--:|--:|--:|--:|--:|");
            foreach (var g in r.Growth)
            {
                var byClients = string.Join(", ", g.Steps.Select(p => F($"{p.Clients}: {p.PerSecond:N0} ({p.Ratio:0.00})")));
                var cpu = string.Join(", ", g.Steps.Select(p => F($"{p.ServerCpuUs:0} µs")));
                string V(string name) => g.Views.TryGetValue(name, out var v) ? F($"{v.P50:0.00} ms") : "";
                sb.AppendLine(F($"| {g.StepsInDatabase:N0} | {g.PreloadSeconds:0} s | {byClients} | {cpu} | {g.Dispatch?.Ours.P50:0.00} / {g.Dispatch?.Ours.P99:0.00} ms | {V("realtime_steps")} | {V("tool_call_queue")} | {V("get_agent_analytics")} | {g.DatabaseBytes / 1048576.0:N0} MiB |"));
            }
            sb.AppendLine();
            var lastG = r.Growth[^1];
            if (lastG.Plans.Count > 0)
            {
                sb.AppendLine(F($"<details><summary>Plans of the monitoring queries at {lastG.StepsInDatabase:N0} steps</summary>"));
                sb.AppendLine();
                foreach (var (name, plan) in lastG.Plans)
                {
                    sb.AppendLine($"`{name}`:");
                    sb.AppendLine();
                    sb.AppendLine("```");
                    sb.AppendLine(plan);
                    sb.AppendLine("```");
                    sb.AppendLine();
                }
                sb.AppendLine("</details>");
                sb.AppendLine();
            }
        }

        if (r.Notes.Count > 0)
        {
            sb.AppendLine("## Notes on this run");
            sb.AppendLine();
            foreach (var n in r.Notes)
            {
                sb.AppendLine("- " + n);
            }
            sb.AppendLine();
        }

        sb.AppendLine("## What we found");
        sb.AppendLine();
        sb.AppendLine(FindingsBegin);
        sb.AppendLine(findings.Trim('\n', '\r'));
        sb.AppendLine(FindingsEnd);
        return sb.ToString();
    }

    private static string? ExtractFindings(string? previous)
    {
        if (previous is null)
        {
            return null;
        }
        var a = previous.IndexOf(FindingsBegin, StringComparison.Ordinal);
        var b = previous.IndexOf(FindingsEnd, StringComparison.Ordinal);
        if (a < 0 || b < a)
        {
            return null;
        }
        return previous[(a + FindingsBegin.Length)..b];
    }

    private const string DefaultFindings = "\n(Nothing written yet: profile the missed targets and say here what you found.)\n";

    private static string Short(string q)
    {
        q = q.Replace("|", "\\|", StringComparison.Ordinal);
        return q.Length <= 70 ? q : q[..67] + "...";
    }

    private static string Load(double[] l) => l.Length > 0 ? l[0].ToString("0.00", CultureInfo.InvariantCulture) : "?";

    private static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
