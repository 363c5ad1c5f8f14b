using System.Globalization;
using System.Text.Json.Nodes;
using Npgsql;
using PgAgentOS.Client;

namespace PgAgentOS.Bench;

/// <summary>
/// Figure 2: steps recorded through the SDK the way the runtime records them. Each client is a
/// worker holding a leased turn of an agent with big budgets and an auto-approved tool; it
/// repeats one tool-using iteration: record_response (thinking + a web_search call; the kernel
/// decides the call and returns the execution ticket), then record_tool_result with the ticket.
/// That is three steps in two calls (two commits). The answer is recorded when the window ends.
/// </summary>
internal static class StepFigures
{
    public const string App = "aos-bench-steps";

    /// <summary>Content a worker sends, made up front so that the client measures the SDK, not text generation.</summary>
    internal sealed class Material
    {
        public Material(int seed)
        {
            var rng = new Random(seed);
            Thinking = [.. Enumerable.Range(0, 32).Select(_ => Payloads.Thinking(rng))];
            Args = [.. Enumerable.Range(0, 32).Select(_ => Payloads.SearchArgs(rng))];
            Results = [.. Enumerable.Range(0, 32).Select(_ => Payloads.SearchResult(rng))];
            Answers = [.. Enumerable.Range(0, 32).Select(_ => Payloads.Answer(rng))];
        }

        public string[] Thinking { get; }
        public JsonObject[] Args { get; }
        public JsonObject[] Results { get; }
        public string[] Answers { get; }
    }

    /// <summary>A worker's hold on a turn for figure 2.</summary>
    internal sealed class StepWorker(AosClient worker, Guid turnId, Guid lease, Material m)
    {
        private Guid? _ticket;
        private int _k;

        public Guid TurnId => turnId;

        /// <summary>The next call of the iteration; returns the steps it recorded.</summary>
        public async Task<int> NextAsync(CancellationToken ct)
        {
            var i = _k & 31;
            if (_ticket is null)
            {
                var r = await worker.RecordResponseAsync(turnId, lease, new ModelResponse
                {
                    Thinking = m.Thinking[i],
                    ToolCalls = [new ModelToolCall("call_" + _k.ToString(CultureInfo.InvariantCulture), "web_search", m.Args[i])],
                    Usage = new Usage(1200, 60),
                }, ct);
                _ticket = r.ToolCalls.Count == 1 && r.ToolCalls[0].Ticket is { } t
                    ? t
                    : throw new InvalidOperationException($"the web_search call was not approved with a ticket (status {r.Status})");
                return 2;
            }
            await worker.RecordToolResultAsync(turnId, "web_search", m.Results[i], leaseToken: lease, ticket: _ticket, ct: ct);
            _ticket = null;
            _k++;
            return 1;
        }

        /// <summary>Finishes the open iteration and answers (completes the turn).</summary>
        public async Task AnswerAsync(CancellationToken ct)
        {
            if (_ticket is not null)
            {
                await NextAsync(ct);
            }
            var r = await worker.RecordResponseAsync(turnId, lease, new ModelResponse
            {
                Thinking = m.Thinking[_k & 31],
                Text = m.Answers[_k & 31],
                Usage = new Usage(1300, 80),
            }, ct);
            if (r.Status != "completed")
            {
                throw new InvalidOperationException($"the answer left the turn {r.Status}");
            }
        }
    }

    /// <summary>Starts a conversation, sends a message and claims a turn of the tenant with a long lease.</summary>
    public static async Task<StepWorker> HoldTurnAsync(AosClient app, AosClient worker, Guid tenant, Guid agent, string workerId,
        Material m, CancellationToken ct)
    {
        var conv = await app.StartConversationAsync(agent, ct: ct);
        await app.SendMessageAsync(conv, "Find the documentation of the PostgreSQL version we run and summarise it.", ct: ct);
        for (var attempt = 0; ; attempt++)
        {
            var ctx = await worker.ClaimTurnAsync(workerId, 3600, tenant, ct);
            if (ctx is not null)
            {
                return new StepWorker(worker, ctx.TurnId, ctx.LeaseToken!.Value, m);
            }
            if (attempt > 500)
            {
                throw new InvalidOperationException("no turn to claim");
            }
            await Task.Delay(5, ct);
        }
    }

    /// <summary>Figure 2 at one client count.</summary>
    public static async Task<ThroughputPoint> StepsAsync(BenchServer server, AosClient app, AosClient worker, Guid tenant, Guid agent,
        int clients, double warmup, double duration, BenchProgress progress, CancellationToken ct)
    {
        return await Load.RunAsync(server, App, clients, async (i, token) =>
        {
            var w = await HoldTurnAsync(app, worker, tenant, agent, "bench-steps-" + i.ToString(CultureInfo.InvariantCulture),
                new Material(100 + i), token);
            return new LoadClient { Op = w.NextAsync, Finish = w.AnswerAsync };
        }, warmup, duration, progress, "steps through the SDK", ct,
            // The kernel's tables as autovacuum leaves them within a minute of an installation's
            // start: analysed with rows in them. On the fresh cluster of this run they were nearly
            // empty when the workers' first calls were planned, and a plan made then is kept until
            // the table is next analysed (see docs/benchmarks.md, Fifth round).
            afterWarmup: token => server.ExecSuperAsync("ANALYZE", token));
    }

    /// <summary>
    /// Statements per step: one worker records cycles with pg_stat_statements tracking nested
    /// statements too; also commits and WAL per step, and the same for plain INSERTs.
    /// </summary>
    public static async Task<ProfileResult?> ProfileAsync(BenchServer server, AosClient app, NpgsqlDataSource workerSource, Guid tenant,
        Guid agent, int cycles, CancellationToken ct)
    {
        if (!server.HasStatements)
        {
            return null;
        }
        var worker = new AosClient(workerSource);
        var w = await HoldTurnAsync(app, worker, tenant, agent, "bench-profile", new Material(7), ct);
        for (var i = 0; i < 20; i++)
        {
            await w.NextAsync(ct); // warm caches and plans
        }
        await server.ExecSuperAsync("ALTER SYSTEM SET pg_stat_statements.track = 'all'; SELECT pg_reload_conf();", ct);
        await Task.Delay(200, ct);
        try
        {
            var commits0 = await server.SettledCommitsAsync(ct);
            await server.ExecSuperAsync("SELECT pg_stat_statements_reset()", ct);
            var wal0 = await server.WalPositionAsync(ct);
            var xid0 = await server.ScalarSuperAsync<long>("SELECT pg_current_xact_id()::text::bigint", ct, "postgres");
            long steps = 0, calls = 0;
            for (var c = 0; c < cycles; c++)
            {
                steps += await w.NextAsync(ct);
                steps += await w.NextAsync(ct);
                calls += 2;
            }
            var wal1 = await server.WalPositionAsync(ct);
            var xid1 = await server.ScalarSuperAsync<long>("SELECT pg_current_xact_id()::text::bigint", ct, "postgres");
            var commits1 = await server.SettledCommitsAsync(ct);

            var result = new ProfileResult
            {
                Steps = steps,
                Calls = calls,
                CommitsPerCall = (commits1 - commits0) / (double)calls,
                WalBytesPerStep = (wal1 - wal0) / (double)steps,
                // the two xids of the reading transactions themselves are not the worker's
                WriteTransactionsPerCall = (xid1 - xid0 - 1) / (double)calls,
            };
            await using (var conn = await server.OpenSuperAsync(ct: ct))
            {
                await using var cmd = new NpgsqlCommand("""
                    SELECT s.query, s.toplevel, s.calls, s.total_exec_time
                      FROM pg_stat_statements s
                     WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                       AND s.query NOT LIKE '%pg_stat_statements%'
                     ORDER BY s.total_exec_time DESC
                    """, conn);
                await using var r = await cmd.ExecuteReaderAsync(ct);
                long all = 0, top = 0;
                while (await r.ReadAsync(ct))
                {
                    var n = r.GetInt64(2);
                    all += n;
                    if (r.GetBoolean(1))
                    {
                        top += n;
                    }
                    if (r.GetBoolean(1))
                    {
                        result.ClientStatements.Add(new StatementStat
                        {
                            Query = Shorten(r.GetString(0)),
                            TopLevel = true,
                            Calls = n,
                            PerStep = n / (double)calls,
                            TotalMs = r.GetDouble(3),
                            MeanMs = n > 0 ? r.GetDouble(3) / n : 0,
                        });
                    }
                    if (result.Top.Count < 20)
                    {
                        var ms = r.GetDouble(3);
                        result.Top.Add(new StatementStat
                        {
                            Query = Shorten(r.GetString(0)),
                            TopLevel = r.GetBoolean(1),
                            Calls = n,
                            PerStep = n / (double)steps,
                            TotalMs = ms,
                            MeanMs = n > 0 ? ms / n : 0,
                        });
                    }
                }
                result.StatementsPerStep = all / (double)steps;
                result.TopLevelPerStep = top / (double)steps;
                result.StatementsPerCall["one iteration (record_response + record_tool_result, 3 steps)"] = all / (double)(calls / 2);
            }

            // the plain INSERT, the same way: WAL per row
            await using (var raw = await workerSource.OpenConnectionAsync(ct))
            {
                var rng = new Random(3);
                await using var cmd = new NpgsqlCommand("INSERT INTO bench.raw_step (content) VALUES ($1)", raw);
                var p = new NpgsqlParameter { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Jsonb, Value = Payloads.RawRow(rng) };
                cmd.Parameters.Add(p);
                await cmd.PrepareAsync(ct);
                var walR0 = await server.WalPositionAsync(ct);
                for (var i = 0; i < steps; i++)
                {
                    p.Value = Payloads.RawRow(rng);
                    await cmd.ExecuteNonQueryAsync(ct);
                }
                var walR1 = await server.WalPositionAsync(ct);
                result.WalBytesPerRawRow = (walR1 - walR0) / (double)steps;
            }
            await w.AnswerAsync(ct);
            return result;
        }
        finally
        {
            await server.ExecSuperAsync("ALTER SYSTEM RESET pg_stat_statements.track; SELECT pg_reload_conf();", CancellationToken.None);
        }
    }

    private static string Shorten(string q)
    {
        var one = string.Join(' ', q.Split((char[])['\n', '\r', '\t', ' '], StringSplitOptions.RemoveEmptyEntries));
        return one.Length <= 160 ? one : one[..157] + "...";
    }
}
