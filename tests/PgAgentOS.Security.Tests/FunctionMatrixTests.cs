using System.Globalization;
using System.Text.RegularExpressions;
using Npgsql;
using NpgsqlTypes;

namespace PgAgentOS.Security.Tests;

/// <summary>
/// T4: every function in the aos_* schemas (listed from pg_proc, so a function added later is
/// covered) that a persona may execute, called as that persona with tenant B's ids in every
/// uuid parameter. It must behave exactly as it does for ids that exist nowhere (same SQLSTATE,
/// same message once the ids are blanked out), reveal none of B's ids or texts, and write nothing
/// to B. Functions a persona may not execute must refuse with 42501 (checked for the persona
/// without any kernel role).
/// </summary>
public sealed class FunctionMatrixTests(TwoTenants db, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<TwoTenants>
{
    /// <summary>Where reaching another tenant is the design, not a leak (docs/security.md).</summary>
    private static string? CrossTenantByDesign(Persona p, string function) => (p, function) switch
    {
        ({ Login: TestCluster.Worker or TestCluster.Admin }, "aos_agent.claim_turn") =>
            "the turn queue spans tenants: a worker reaches a tenant only through the turn it claims",
        ({ IsPlatformAdmin: true }, "aos_auth.set_tenant") => "platform administrators may bind any tenant",
        _ => null,
    };

    [Theory]
    [MemberData(nameof(Personas.Names), MemberType = typeof(Personas))]
    public async Task FunctionsCalledWithBsIdsRevealAndChangeNothingOfB(string personaName)
    {
        var p = Personas.Get(personaName);
        var functions = await FunctionsAsync(p.Login);
        Assert.True(functions.Count > 40, $"expected the kernel's functions, found {functions.Count}");
        var pools = await BIdPoolsAsync();
        var problems = new List<string>();
        var fingerprint = await db.BFingerprintAsync();
        var exercised = 0;
        var outcomes = new Dictionary<string, int>(StringComparer.Ordinal);

        foreach (var f in functions)
        {
            if (!f.CanExecute)
            {
                if (p == Personas.Nobody)
                {
                    var denied = await CallAsync(p, f, Values(f, pools, variant: 0, random: false, problems));
                    if (denied.State != "42501")
                    {
                        problems.Add($"{f.Signature}: expected 42501 for a login without kernel roles, got {denied.State} {denied.Message}");
                    }
                }
                continue;
            }
            exercised++;
            // Functions that take a lease token are called both ways: as the worker holding A's
            // lease, and by hand (no token: the session's binding decides).
            var leaseModes = f.Args.Any(a => a.Name == "p_lease_token") ? new[] { true, false } : [true];
            foreach (var withLease in leaseModes)
            {
                var baseValues = Values(f, pools, variant: 0, random: true, problems, withLease);
                var baseline = await CallAsync(p, f, baseValues);
                var variants = f.UuidParams.Select(a => pools.TryGetValue(a, out var v) ? v.Count : 1).DefaultIfEmpty(1).Max();
                for (var i = 0; i < variants; i++)
                {
                    var label = $"{f.Signature} [{i}{(withLease ? "" : ", no lease")}]";
                    var values = Values(f, pools, i, random: false, problems, withLease);
                    var r = await CallAsync(p, f, values);
                    outcomes[r.State] = outcomes.GetValueOrDefault(r.State) + 1;
                    var inputs = values.Values.OfType<string>().SelectMany(v => TwoTenants.UuidPattern().Matches(v).Select(m => m.Value)).ToList();
                    var why = CrossTenantByDesign(p, f.Name);
                    var leaks = db.BLeaks(r.Text, inputs);
                    if (leaks.Count > 0)
                    {
                        problems.Add($"{label}: reveals {string.Join(", ", leaks)}: {Short(r.Text)}");
                    }
                    if (why is null && (r.State != baseline.State || r.Normalized(values) != baseline.Normalized(baseValues)))
                    {
                        problems.Add($"{label}: with B's ids {r.State} \"{r.Message}\" but with unknown ids {baseline.State} \"{baseline.Message}\"");
                    }
                    if (r.State == "ok" && why is null)
                    {
                        var now = await db.BFingerprintAsync();
                        if (now != fingerprint)
                        {
                            problems.Add($"{label}: changed tenant B's rows");
                            fingerprint = now;
                        }
                    }
                }
            }
        }
        output.WriteLine($"{p}: {exercised} of {functions.Count} functions executable; outcomes with B's ids: "
                         + string.Join(", ", outcomes.OrderBy(o => o.Key).Select(o => $"{o.Key} x{o.Value}")));
        if (p != Personas.Nobody)
        {
            Assert.True(exercised > 0, $"{p} may execute no function at all");
        }
        Assert.True(problems.Count == 0, $"{p}: {problems.Count} problem(s)\n" + string.Join("\n", problems));
    }

    [Fact]
    public async Task TheMatrixWouldSeeALeak()
    {
        // The oracle above compares with unknown ids: prove it tells them apart when a function
        // does see B (the superuser sees everything).
        var f = (await FunctionsAsync(TestCluster.Admin)).Single(x => x.Name == "aos_agent.get_turn_state");
        await using var su = await db.OpenAsync(null);
        await su.ExecAsync("SELECT aos_auth.set_tenant($1)", db.B.Tenant);
        var pools = await BIdPoolsAsync();
        var seen = await CallOnAsync(su, f, Values(f, pools, 0, random: false, null));
        var unknown = await CallOnAsync(su, f, Values(f, pools, 0, random: true, null));
        Assert.Equal("ok", seen.State);
        Assert.Equal("AO002", unknown.State);
        Assert.NotEmpty(db.BLeaks(seen.Text, [db.B.TurnPending.ToString()]));
    }

    private sealed record Function(string Signature, string Name, List<(string Name, string Type)> Args, bool CanExecute)
    {
        public IEnumerable<string> UuidParams => Args.Where(a => a.Type is "uuid" or "uuid[]" or "anyelement").Select(a => a.Name);
    }

    private sealed record Outcome(string State, string Message, string Text)
    {
        public string Normalized(Dictionary<string, object?> values)
        {
            var s = Message;
            foreach (var (name, v) in values)
            {
                if (v is string str && str.Length >= 4)
                {
                    foreach (Match m in TwoTenants.UuidPattern().Matches(str))
                    {
                        s = s.Replace(m.Value, "<" + name + ">", StringComparison.OrdinalIgnoreCase);
                    }
                    s = s.Replace(str, "<" + name + ">", StringComparison.Ordinal);
                }
            }
            return TwoTenants.UuidPattern().Replace(s, "<uuid>");
        }
    }

    private async Task<List<Function>> FunctionsAsync(string login)
    {
        await using var su = await db.OpenAsync(null);
        var rows = await su.RowsAsync("""
            SELECT p.oid::regprocedure::text AS sig, n.nspname || '.' || p.proname AS name,
                   coalesce((SELECT array_agg(coalesce(p.proargnames[i], '') ORDER BY i)
                               FROM generate_subscripts(coalesce(p.proargmodes, array_fill('i'::"char", ARRAY[p.pronargs])), 1) i
                              WHERE coalesce(p.proargmodes[i], 'i') IN ('i', 'b', 'v')), '{}') AS argnames,
                   coalesce((SELECT array_agg(format_type(t, NULL) ORDER BY o) FROM unnest(p.proargtypes) WITH ORDINALITY u(t, o)), '{}') AS argtypes,
                   has_schema_privilege($1, n.oid, 'USAGE') AND has_function_privilege($1, p.oid, 'EXECUTE') AS can
              FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname LIKE 'aos\_%' AND p.prokind = 'f' AND p.prorettype <> 'trigger'::regtype
             ORDER BY 1
            """, login);
        return rows.Select(r =>
        {
            var names = (string[])r["argnames"]!;
            var types = (string[])r["argtypes"]!;
            Assert.Equal(types.Length, names.Length);
            return new Function((string)r["sig"]!, (string)r["name"]!, names.Zip(types).ToList(), (bool)r["can"]!);
        }).ToList();
    }

    /// <summary>B's ids, by the parameter names the kernel uses for them.</summary>
    private async Task<Dictionary<string, List<Guid>>> BIdPoolsAsync()
    {
        await using var su = await db.OpenAsync(null);
        var keyIds = (await su.ColumnAsync("SELECT key_id::text FROM aos_auth.api_key WHERE tenant_id = $1 ORDER BY 1", db.B.Tenant)).Select(Guid.Parse).ToList();
        var allowlist = (await su.ColumnAsync("SELECT allowlist_id::text FROM aos_egress.allowlist WHERE tenant_id = $1 ORDER BY 1", db.B.Tenant)).Select(Guid.Parse).ToList();
        var b = db.B;
        var principals = b.Principals.ToList();
        return new Dictionary<string, List<Guid>>(StringComparer.Ordinal)
        {
            ["p_tenant_id"] = [b.Tenant],
            ["p_agent_id"] = b.Agents.ToList(),
            ["p_conversation_id"] = b.Conversations.ToList(),
            ["p_chain_id"] = b.Conversations.ToList(),
            ["p_turn_id"] = b.Turns.ToList(),
            ["p_step_id"] = b.ToolSteps.ToList(),
            ["p_step_ids"] = b.ToolSteps.ToList(),
            ["p_persona_id"] = [b.Persona],
            ["p_principal_id"] = principals,
            ["p_admin_id"] = principals,
            ["p_user_principal_id"] = principals,
            ["p_observer_id"] = principals,
            ["p_observer"] = principals,
            ["p_by"] = principals,
            ["p_parent_step_id"] = b.ToolSteps.ToList(),
            ["p_key_id"] = keyIds,
            ["p_allowlist_id"] = allowlist,
            ["p_ticket"] = [b.Ticket],
            ["p_entity_id"] = [b.TurnDone],
            ["p_id"] = b.Turns.ToList(),
            ["p_value"] = b.Turns.ToList(),
        };
    }

    /// <summary>Argument values (as text, or null) for a call: B's ids (or fresh random ones) in uuid parameters, plausible values elsewhere.</summary>
    private Dictionary<string, object?> Values(Function f, Dictionary<string, List<Guid>> pools, int variant, bool random, List<string>? problems, bool withLease = true)
    {
        var values = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, type) in f.Args)
        {
            object? v;
            if (name == "p_lease_token")
            {
                v = withLease ? db.A.LeaseToken.ToString() : null;  // a capability the caller does hold (A's worker lease), never substituted
            }
            else if (name == "p_model_id")
            {
                v = null;
            }
            else if (type is "uuid" or "anyelement" or "uuid[]")
            {
                if (!pools.TryGetValue(name, out var pool))
                {
                    problems?.Add($"{f.Signature}: no B id is mapped to parameter {name} ({type}); add it to BIdPoolsAsync");
                    pool = [Guid.NewGuid()];
                }
                if (type == "uuid[]")
                {
                    var ids = random ? pool.Select(_ => RandomFor(f, name, 0)) : pool;
                    v = "{" + string.Join(",", ids) + "}";
                }
                else
                {
                    v = (random ? RandomFor(f, name, 0) : pool[variant % pool.Count]).ToString();
                }
            }
            else
            {
                v = Plain(f, name, type, problems);
            }
            values[name] = v;
        }
        return values;
    }

    // Random ids are stable per function and parameter, so that the baseline can be normalised twice.
    private readonly Dictionary<string, Guid> _random = [];

    private Guid RandomFor(Function f, string name, int i)
    {
        var key = f.Signature + "/" + name + "/" + i.ToString(CultureInfo.InvariantCulture);
        if (!_random.TryGetValue(key, out var g))
        {
            g = Guid.NewGuid();
            _random[key] = g;
        }
        return g;
    }

    private static object? Plain(Function f, string name, string type, List<string>? problems) => type switch
    {
        "text" => name switch
        {
            "p_name" => "sec_t4_" + Guid.NewGuid().ToString("N")[..12],
            "p_tool_name" => "code_execute",
            "p_role_key" => "approver",
            "p_severity" => "low",
            "p_observation_type" => "note",
            "p_message_type" => "system",
            "p_principal_type" => "human",
            "p_memory_type" => "fact",
            "p_what" => "turn",
            "p_step_type" => "think",
            "p_model" or "p_call_id" or "p_next_action" or "p_description" or "p_email" or "p_title" or "p_display_name" or "p_ref" => null,
            _ => "t4 text",
        },
        "jsonb" => name switch
        {
            "p_response" => """{"thinking": "t4"}""",
            "p_tool_input" or "p_arguments" => """{"code": "1"}""",
            "p_value" => "\"t4\"",
            "p_attachments" or "p_rules" => "[]",
            _ => "{}",
        },
        "boolean" => name is "p_local" or "p_retry" or "p_allow_blank" ? "false" : "true",
        "integer" => name switch
        {
            "p_score" => "5",
            "p_days" => "7",
            "p_lease_seconds" => "30",
            "p_limit" => "10",
            "p_max_bytes" => "1000",
            _ => "1",
        },
        "bigint" => "1",
        "numeric" => "0",
        "real" => "0.5",
        "bytea" => "\\x",
        "inet" => "192.0.2.1",
        "text[]" => "{}",
        "timestamp with time zone" or "name" or "vector" or "interval" => null,
        // rows of a table (internal helpers of the claim): NULL, as no client could build B's row
        "aos_agent.turn" or "aos_agent.conversation" or "aos_agent.agent" => null,
        _ => Unmapped(f, name, type, problems),
    };

    private static object? Unmapped(Function f, string name, string type, List<string>? problems)
    {
        problems?.Add($"{f.Signature}: no test value for parameter {name} of type {type}");
        return null;
    }

    private async Task<Outcome> CallAsync(Persona p, Function f, Dictionary<string, object?> values)
    {
        await using var conn = await p.OpenAsync(db);
        return await CallOnAsync(conn, f, values);
    }

    private static async Task<Outcome> CallOnAsync(NpgsqlConnection conn, Function f, Dictionary<string, object?> values)
    {
        var args = new List<string>();
        await using var cmd = new NpgsqlCommand { Connection = conn, CommandTimeout = 60 };
        foreach (var (name, type) in f.Args)
        {
            var v = values[name];
            var cast = type == "anyelement" ? "uuid" : type;
            if (v is null)
            {
                args.Add($"{name} => NULL::{cast}");
            }
            else
            {
                cmd.Parameters.Add(new NpgsqlParameter { Value = v, NpgsqlDbType = NpgsqlDbType.Text });
                args.Add($"{name} => ${cmd.Parameters.Count}::{cast}");
            }
        }
        var dot = f.Name.IndexOf('.', StringComparison.Ordinal);
        cmd.CommandText = $"SELECT x::text FROM {f.Name[..dot]}.{f.Name[(dot + 1)..]}({string.Join(", ", args)}) AS x";
        try
        {
            var rows = new List<string>();
            await using (var r = await cmd.ExecuteReaderAsync())
            {
                while (await r.ReadAsync())
                {
                    rows.Add(r.IsDBNull(0) ? "" : r.GetString(0));
                }
            }
            return new Outcome("ok", "", string.Join("\n", rows));
        }
        catch (PostgresException e)
        {
            return new Outcome(e.SqlState, e.MessageText, string.Join("\n", e.MessageText, e.Detail, e.Hint));
        }
    }

    private static string Short(string s) => s.Length <= 300 ? s : s[..300] + "…";
}
