using System.Text.Json;
using System.Text.Json.Nodes;
using Npgsql;

namespace PgAgentOS.Security.Tests;

/// <summary>
/// The event log: refused for every client role (A1), for the administrator role too, which does
/// not own it (A2); a superuser's tampering detected by verify_event_chain (A3); a deleted tail
/// with a rewritten head detected only by an exported checkpoint (A4); forged checkpoints
/// rejected (A6).
/// </summary>
public sealed class AuditLogTests(TwoTenants db) : IClassFixture<TwoTenants>
{
    private static readonly string[] AuditTables =
    [
        "aos_core.event_log", "aos_core.checkpoint", "aos_core.checkpoint_head", "aos_agent.approval", "aos_agent.step",
        "aos_agent.turn", "aos_agent.tool_execution", "aos_core.run", "aos_agent.conversation",
    ];

    public static TheoryData<string> ClientPersonas() => new() { "app-A", "admin-A-key", "admin-A-login", "worker", "analytics-A", "platform-admin-A" };

    [Theory]
    [MemberData(nameof(ClientPersonas))]
    public async Task ClientsCannotChangeTheAuditTablesAtAll(string personaName)
    {
        // A1 and A2: the privilege check refuses (42501) before any trigger could run (AO014).
        await using var conn = await Personas.Get(personaName).OpenAsync(db);
        var problems = new List<string>();
        foreach (var t in AuditTables)
        {
            foreach (var sql in new[]
                     {
                         $"UPDATE {t} SET tenant_id = tenant_id",
                         $"DELETE FROM {t}",
                         $"TRUNCATE {t}",
                         $"INSERT INTO {t} (tenant_id) VALUES ('{db.A.Tenant}')",
                     })
            {
                var e = await conn.ErrorAsync(sql);
                if (e.SqlState != "42501")
                {
                    problems.Add($"{sql}: {e.SqlState} {e.MessageText}");
                }
            }
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public async Task TheAdministratorRoleCannotDisableTheGuards()
    {
        // A2: aos_admin (here also the owner of the database) does not own the tables, so it can
        // neither disable their triggers nor their row-level security, nor switch triggers off.
        await using var conn = await Personas.PlatformAdminA.OpenAsync(db);
        var problems = new List<string>();
        foreach (var sql in new[]
                 {
                     "ALTER TABLE aos_core.event_log DISABLE TRIGGER ALL",
                     "ALTER TABLE aos_core.event_log DISABLE TRIGGER event_log_immutable",
                     "ALTER TABLE aos_agent.approval DISABLE TRIGGER USER",
                     "DROP TRIGGER event_log_no_truncate ON aos_core.event_log",
                     "ALTER TABLE aos_core.event_log NO FORCE ROW LEVEL SECURITY",
                     "ALTER TABLE aos_core.event_log DISABLE ROW LEVEL SECURITY",
                     "DROP POLICY tenant_isolation ON aos_core.event_log",
                     "ALTER TABLE aos_core.event_log OWNER TO t_admin",
                     "CREATE RULE no_log AS ON INSERT TO aos_core.event_log DO INSTEAD NOTHING",
                     "CREATE OR REPLACE FUNCTION aos_core._refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
                     "ALTER FUNCTION aos_core.verify_event_chain(uuid, uuid) OWNER TO t_admin",
                     "SET session_replication_role = replica",
                     $"ALTER DATABASE {db.Name} SET session_replication_role = replica",
                     "GRANT aos_owner TO t_admin",
                 })
        {
            var e = await conn.ErrorAsync(sql);
            if (e.SqlState != "42501")
            {
                problems.Add($"{sql}: {e.SqlState} {e.MessageText}");
            }
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public async Task TheLogOfTheFixtureVerifies()
    {
        foreach (var t in new[] { db.A, db.B })
        {
            await using var conn = await db.OpenAsync(TestCluster.Admin);
            await conn.ExecAsync("SELECT aos_auth.set_tenant($1)", t.Tenant);
            var r = await VerifyAsync(conn);
            Assert.True(r.GetProperty("ok").GetBoolean(), r.ToString());
            Assert.True(r.GetProperty("events").GetInt64() > 20);
            Assert.True(JsonSerializer.Deserialize<JsonElement>(await conn.ScalarAsync<string>("SELECT aos_core.verify_checkpoint($1::jsonb)::text", t.Checkpoint))
                .GetProperty("ok").GetBoolean());
        }
    }

    public static TheoryData<string> Tampering() => new()
    {
        "edit a middle event", "edit and re-hash a middle event", "delete a middle event", "swap two events' seq",
        "re-encode a payload", "edit a step's content", "delete a step", "edit a tenant-chain event", "append a forged event",
    };

    [Theory]
    [MemberData(nameof(Tampering))]
    public async Task ASuperusersTamperingIsNamedByTheVerifier(string how)
    {
        // A3: as superuser with triggers off, inside a transaction that is rolled back.
        await using var su = await db.OpenAsync(null);
        await using var tx = await su.BeginTransactionAsync();
        await su.ExecAsync("SET LOCAL session_replication_role = replica");
        await su.ExecAsync("SELECT aos_auth.set_tenant($1, true)", db.A.Tenant);
        var chain = db.A.ConvDone;
        var seqs = (await su.ColumnAsync("SELECT seq FROM aos_core.event_log WHERE tenant_id = $1 AND chain_id = $2 ORDER BY seq", db.A.Tenant, chain))
            .Select(long.Parse).ToList();
        Assert.True(seqs.Count >= 8, $"the chain is too short for the test: {seqs.Count}");
        var mid = seqs[seqs.Count / 2];
        Guid expectedChain = chain;
        long? expectedSeq;
        string expectedReason;
        const string Where = "tenant_id = $1 AND chain_id = $2 AND seq = $3";
        switch (how)
        {
            case "edit a middle event":
                await su.ExecAsync($"UPDATE aos_core.event_log SET actor = 'principal:someone-else' WHERE {Where}", db.A.Tenant, chain, mid);
                (expectedSeq, expectedReason) = (mid, "hash does not match");
                break;
            case "edit and re-hash a middle event":
                await su.ExecAsync($$"""
                    UPDATE aos_core.event_log e SET payload = e.payload || '{"forged": true}',
                           hash = aos_core.event_hash(p.hash, e.tenant_id, e.chain_id, e.seq, e.event_type, e.entity_id, e.turn_id, e.actor,
                                                      e.payload || '{"forged": true}', e.created_at)
                      FROM aos_core.event_log p
                     WHERE e.tenant_id = $1 AND e.chain_id = $2 AND e.seq = $3 AND p.tenant_id = $1 AND p.chain_id = $2 AND p.seq = $3 - 1
                    """, db.A.Tenant, chain, mid);
                (expectedSeq, expectedReason) = (mid + 1, "hash does not match");
                break;
            case "delete a middle event":
                await su.ExecAsync($"DELETE FROM aos_core.event_log WHERE {Where}", db.A.Tenant, chain, mid);
                (expectedSeq, expectedReason) = (mid + 1, "jumps");
                break;
            case "swap two events' seq":
                await su.ExecAsync($"UPDATE aos_core.event_log SET seq = 1000000 WHERE {Where}", db.A.Tenant, chain, mid);
                await su.ExecAsync($"UPDATE aos_core.event_log SET seq = $3 WHERE {Where.Replace("$3", "$3 + 1", StringComparison.Ordinal)}", db.A.Tenant, chain, mid);
                await su.ExecAsync($"UPDATE aos_core.event_log SET seq = $3 + 1 WHERE {Where.Replace("$3", "1000000", StringComparison.Ordinal)}", db.A.Tenant, chain, mid);
                (expectedSeq, expectedReason) = (mid, "hash does not match");
                break;
            case "re-encode a payload":
                // the same JSON value written differently (1 as 1.0): equal as jsonb, not as text
                var target = await su.ScalarAsync<long>(
                    "SELECT seq FROM aos_core.event_log WHERE tenant_id = $1 AND chain_id = $2 AND payload ? 'turn_number' ORDER BY seq LIMIT 1", db.A.Tenant, chain);
                await su.ExecAsync($$"""
                    UPDATE aos_core.event_log SET payload = jsonb_set(payload, '{turn_number}', ((payload ->> 'turn_number') || '.0')::jsonb) WHERE {{Where}}
                    """, db.A.Tenant, chain, target);
                Assert.True(await su.ScalarAsync<bool>($"SELECT payload = payload - 'x' FROM aos_core.event_log WHERE {Where}", db.A.Tenant, chain, target));
                (expectedSeq, expectedReason) = (target, "hash does not match");
                break;
            case "edit a step's content":
            case "delete a step":
                var named = await su.ScalarAsync<long>("""
                    SELECT e.seq FROM aos_core.event_log e
                     WHERE e.tenant_id = $1 AND e.chain_id = $2 AND e.payload -> 'steps' @> jsonb_build_array(jsonb_build_object('id', $3::text))
                    """, db.A.Tenant, chain, db.A.StepExecuted.ToString());
                await su.ExecAsync(how == "delete a step"
                    ? "DELETE FROM aos_agent.step WHERE tenant_id = $1 AND step_id = $2"
                    : "UPDATE aos_agent.step SET content = content || '{\"arguments\": {\"query\": \"something else\"}}' WHERE tenant_id = $1 AND step_id = $2",
                    db.A.Tenant, db.A.StepExecuted);
                (expectedSeq, expectedReason) = (named, how == "delete a step" ? "is missing" : "changed after it was recorded");
                break;
            case "edit a tenant-chain event":
                expectedChain = db.A.Tenant;
                var tseq = await su.ScalarAsync<long>("SELECT min(seq) + 2 FROM aos_core.event_log WHERE tenant_id = $1 AND chain_id = $1", db.A.Tenant);
                await su.ExecAsync($"UPDATE aos_core.event_log SET payload = payload || '{{\"x\": 1}}' WHERE {Where}", db.A.Tenant, db.A.Tenant, tseq);
                (expectedSeq, expectedReason) = (tseq, "hash does not match");
                break;
            case "append a forged event":
                // a well-linked event after the head, without moving the head (clients cannot write it)
                var last = seqs[^1];
                await su.ExecAsync("""
                    INSERT INTO aos_core.event_log (tenant_id, chain_id, seq, event_type, actor, payload, created_at, hash)
                    SELECT tenant_id, chain_id, seq + 1, 'turn.answered', actor, '{}', created_at,
                           aos_core.event_hash(hash, tenant_id, chain_id, seq + 1, 'turn.answered', NULL, NULL, actor, '{}', created_at)
                      FROM aos_core.event_log WHERE tenant_id = $1 AND chain_id = $2 AND seq = $3
                    """, db.A.Tenant, chain, last);
                (expectedSeq, expectedReason) = (last, "chain head says seq");
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(how));
        }
        var r = await VerifyAsync(su);
        await tx.RollbackAsync();
        Assert.False(r.GetProperty("ok").GetBoolean(), $"{how}: not detected: {r}");
        var bad = r.GetProperty("first_bad");
        Assert.Equal(expectedChain, bad.GetProperty("chain_id").GetGuid());
        Assert.Equal(expectedSeq, bad.GetProperty("seq").GetInt64());
        Assert.Contains(expectedReason, bad.GetProperty("reason").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ADeletedTailWithARewrittenHeadIsCaughtOnlyByAnExportedCheckpoint()
    {
        // A4. A chain of notes; a checkpoint exported after the 6th event; 4 more events.
        await using var admin = await Personas.PlatformAdminA.OpenAsync(db);
        var conv = await admin.ScalarAsync<Guid>("SELECT aos_agent.start_conversation($1)", db.A.ManualAgent);
        for (var i = 0; i < 5; i++)
        {
            await admin.ExecAsync("SELECT aos_agent.add_observation(NULL, 'note', jsonb_build_object('i', $1::int), $2)", i, conv);
        }
        var exported = await admin.ScalarAsync<string>("SELECT aos_core.create_checkpoint()::text");
        for (var i = 5; i < 9; i++)
        {
            await admin.ExecAsync("SELECT aos_agent.add_observation(NULL, 'note', jsonb_build_object('i', $1::int), $2)", i, conv);
        }
        var later = await admin.ScalarAsync<string>("SELECT aos_core.create_checkpoint()::text");
        await admin.ExecAsync("SELECT aos_agent.add_observation(NULL, 'note', '{}', $1)", conv);  // after every checkpoint

        await using var su = await db.OpenAsync(null);
        async Task<(JsonElement Chain, JsonElement Early, JsonElement Late)> TruncateAsync(long keep)
        {
            await using var tx = await su.BeginTransactionAsync();
            await su.ExecAsync("SET LOCAL session_replication_role = replica");
            await su.ExecAsync("SELECT aos_auth.set_tenant($1, true)", db.A.Tenant);
            await su.ExecAsync("DELETE FROM aos_core.event_log WHERE tenant_id = $1 AND chain_id = $2 AND seq > $3", db.A.Tenant, conv, keep);
            await su.ExecAsync("""
                UPDATE aos_agent.conversation c SET event_seq = e.seq, event_head = e.hash
                  FROM aos_core.event_log e
                 WHERE c.tenant_id = $1 AND c.conversation_id = $2 AND e.tenant_id = $1 AND e.chain_id = $2 AND e.seq = $3
                """, db.A.Tenant, conv, keep);
            var result = (await VerifyAsync(su),
                          await VerifyCheckpointAsync(su, exported),
                          await VerifyCheckpointAsync(su, later));
            await tx.RollbackAsync();
            return result;
        }

        // Cut into the exported part: the database alone cannot tell, the exported checkpoint can.
        var (chain, early, late) = await TruncateAsync(3);
        Assert.True(chain.GetProperty("ok").GetBoolean(), "in-database verification cannot see a consistent truncation (documented): " + chain);
        Assert.False(early.GetProperty("ok").GetBoolean(), early.ToString());
        Assert.Equal(conv, early.GetProperty("chain_id").GetGuid());
        Assert.Contains("lost its events", early.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.False(late.GetProperty("ok").GetBoolean());

        // The limit (docs/security.md): events after the last exported checkpoint can vanish unseen.
        (chain, early, late) = await TruncateAsync(10);
        Assert.True(chain.GetProperty("ok").GetBoolean());
        Assert.True(early.GetProperty("ok").GetBoolean());
        Assert.True(late.GetProperty("ok").GetBoolean());
    }

    [Fact]
    public async Task ForgedCheckpointsAreRejected()
    {
        // A6: the verifier is fed checkpoints an attacker made up.
        await using var conn = await Personas.AdminAKey.OpenAsync(db);
        var real = JsonNode.Parse(db.A.Checkpoint)!.AsObject();
        Assert.True((await VerifyCheckpointAsync(conn, real.ToJsonString())).GetProperty("ok").GetBoolean());

        string With(Action<JsonObject> change)
        {
            var c = (JsonObject)real.DeepClone();
            change(c);
            return c.ToJsonString();
        }
        var digest = (string)real["digest"]!;
        var otherDigest = (digest[0] == '0' ? "1" : "0") + digest[1..];

        Assert.False((await VerifyCheckpointAsync(conn, With(c => c["digest"] = otherDigest))).GetProperty("ok").GetBoolean());
        Assert.False((await VerifyCheckpointAsync(conn, With(c => c["checkpoint_no"] = 999))).GetProperty("ok").GetBoolean());
        Assert.False((await VerifyCheckpointAsync(conn, With(c => c["digest"] = JsonNode.Parse(db.B.Checkpoint)!["digest"]!.GetValue<string>())))
            .GetProperty("ok").GetBoolean());
        // B's checkpoint moved to A's name
        var bAsA = JsonNode.Parse(db.B.Checkpoint)!.AsObject();
        bAsA["tenant_id"] = db.A.Tenant.ToString();
        Assert.False((await VerifyCheckpointAsync(conn, bAsA.ToJsonString())).GetProperty("ok").GetBoolean());

        foreach (var (forged, state) in new[]
                 {
                     (db.B.Checkpoint, "AO011"),
                     (With(c => c["digest"] = null), "22023"),
                     (With(c => c.Remove("digest")), "22023"),
                     (With(c => c["tenant_id"] = null), "22023"),
                     (With(c => c["checkpoint_no"] = "1"), "22023"),
                     (With(c => c["checkpoint_no"] = 0), "22023"),
                     (With(c => c["checkpoint_no"] = 1.5), "22023"),
                     (With(c => c["tenant_id"] = "not-a-uuid"), "22P02"),
                     ("[]", "22023"),
                 })
        {
            var e = await conn.ErrorAsync("SELECT aos_core.verify_checkpoint($1::jsonb)", forged);
            Assert.True(e.SqlState == state, $"{forged}: {e.SqlState} {e.MessageText}");
        }
    }

    private static async Task<JsonElement> VerifyAsync(NpgsqlConnection conn) =>
        JsonSerializer.Deserialize<JsonElement>(await conn.ScalarAsync<string>("SELECT aos_core.verify_event_chain()::text"));

    private static async Task<JsonElement> VerifyCheckpointAsync(NpgsqlConnection conn, string checkpoint) =>
        JsonSerializer.Deserialize<JsonElement>(await conn.ScalarAsync<string>("SELECT aos_core.verify_checkpoint($1::jsonb)::text", checkpoint));
}
