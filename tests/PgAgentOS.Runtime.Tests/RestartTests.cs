using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Npgsql;
using PgAgentOS.Client;
using PgAgentOS.Embedded;

namespace PgAgentOS.Runtime.Tests;

/// <summary>PostgreSQL restarted under load (RELIABILITY Q6): workers reconnect with backoff and every turn finishes exactly once.</summary>
public sealed class RestartTests
{
    [Fact]
    public async Task WorkersCarryOnAcrossImmediateRestartsAndFinishEveryTurnOnce()
    {
        // A cluster of its own (the shared test cluster must not be restarted). The name lets scripts/test.sh sweep it.
        var root = Path.Combine(Path.GetTempPath(), $"aos-test-{Environment.ProcessId}-restart{Guid.NewGuid().ToString("N")[..6]}");
        Directory.CreateDirectory(root);
        File.SetUnixFileMode(root, (UnixFileMode)0b111_101_101);
        var cluster = new EmbeddedCluster(Path.Combine(root, "pgdata"));
        await cluster.InitAsync(new ClusterOptions { Ephemeral = true, ExtraSettings = ["synchronous_commit = on", "log_min_messages = warning"] });
        await cluster.StartAsync();
        try
        {
            // the kernel from this checkout's SQL (manual install), an administrator and a worker login
            var password = EmbeddedCluster.NewPassword();
            await using (var su = new NpgsqlConnection(cluster.ConnectionString("postgres") + ";Pooling=false"))
            {
                await su.OpenAsync();
                await su.ExecAsync("CREATE DATABASE aos");
            }
            await using (var su = new NpgsqlConnection(cluster.ConnectionString("aos") + ";Pooling=false"))
            {
                await su.OpenAsync();
                await KernelInstaller.InstallAsync(su, InstallMethod.Manual);
                await su.ExecAsync($"CREATE ROLE r_admin LOGIN PASSWORD '{password}' IN ROLE aos_admin");
                await su.ExecAsync($"CREATE ROLE r_worker LOGIN PASSWORD '{password}' IN ROLE aos_worker");
            }
            cluster.RememberLogin("r_admin", password);
            cluster.RememberLogin("r_worker", password);
            await using var adminSource = NpgsqlDataSource.Create(cluster.ConnectionString("aos", "r_admin"));
            var admin = new AosClient(adminSource);
            var tenant = await admin.CreateTenantAsync("restart");
            var app = admin.ForTenant(tenant);
            var persona = await app.CreatePersonaAsync("helper", "You help.");
            var agent = await app.CreateAgentAsync(tenant, "steady", persona, ["clock"], new JsonObject
            {
                ["auto_approve_tools"] = true,
                ["max_attempts"] = 20,
                ["script"] = new JsonArray(
                    new JsonObject { ["delay_ms"] = 150, ["tool_calls"] = new JsonArray(new JsonObject { ["name"] = "clock", ["arguments"] = new JsonObject() }) },
                    new JsonObject { ["delay_ms"] = 150, ["text"] = "ok {{tool:clock}}" }),
            }, model: "builtin/scripted");
            var turns = new List<Guid>();
            for (var i = 0; i < 16; i++)
            {
                var conv = await app.StartConversationAsync(agent);
                turns.Add(await app.SendMessageAsync(conv, $"message {i}"));
            }

            var workerBuilder = new NpgsqlConnectionStringBuilder(cluster.ConnectionString("aos", "r_worker")) { Timeout = 3, CommandTimeout = 10 };
            await using var workerSource = NpgsqlDataSource.Create(workerBuilder.ConnectionString);
            var errors = new ConcurrentQueue<WorkerEvent>();
            var options = Kit.Options(lease: 3, concurrency: 2) with { MaxReconnectDelay = TimeSpan.FromSeconds(1) };
            await using var w1 = new WorkerHost(workerSource, options with { WorkerId = "steady-1" });
            await using var w2 = new WorkerHost(workerSource, options with { WorkerId = "steady-2" });
            w1.Event += e => { if (e.Kind == WorkerEventKind.Error) errors.Enqueue(e); };
            w2.Event += e => { if (e.Kind == WorkerEventKind.Error) errors.Enqueue(e); };
            using var cts = new CancellationTokenSource();
            var runs = new[] { w1.RunAsync(cts.Token), w2.RunAsync(cts.Token) };

            async Task<int> CompletedAsync()
            {
                try
                {
                    return (await app.QueryJsonAsync("SELECT count(*) AS n FROM aos_agent.turn WHERE status = 'completed'"))[0]["n"]!.GetValue<int>();
                }
                catch (Exception e) when (e is NpgsqlException or AosException or InvalidOperationException)
                {
                    return -1;
                }
            }

            await Kit.EventuallyAsync(async () => await CompletedAsync() >= 3, TimeSpan.FromSeconds(60),
                "the first turns; events: " + string.Join(" | ", errors.Take(5)));
            await cluster.StopAsync(immediate: true);
            await Task.Delay(700);
            await cluster.StartAsync();
            await Kit.EventuallyAsync(async () => await CompletedAsync() >= 9, TimeSpan.FromSeconds(60), "more turns after the first restart");
            await cluster.StopAsync(immediate: true);
            await Task.Delay(700);
            await cluster.StartAsync();
            await Kit.EventuallyAsync(async () => await CompletedAsync() == turns.Count, TimeSpan.FromSeconds(90), "every turn after the restarts");
            await cts.CancelAsync();
            await Task.WhenAll(runs);

            Assert.NotEmpty(errors); // the workers did see the database go away
            var rows = await app.QueryJsonAsync("""
                SELECT t.turn_id, t.status, t.attempt,
                       (SELECT count(*) FROM aos_agent.step s WHERE s.tenant_id = t.tenant_id AND s.turn_id = t.turn_id AND s.step_type = 'respond') AS answers,
                       (SELECT count(*) FROM aos_core.event_log e WHERE e.tenant_id = t.tenant_id AND e.turn_id = t.turn_id AND e.event_type = 'turn.completed') AS completions
                  FROM aos_agent.turn t
                """);
            Assert.Equal(turns.Count, rows.Count);
            Assert.All(rows, r =>
            {
                Assert.Equal("completed", (string)r["status"]!);
                Assert.Equal(1, (int)r["answers"]!);
                Assert.Equal(1, (int)r["completions"]!);
            });
            Assert.True((await app.VerifyEventChainAsync()).Ok);
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await cluster.StopAsync(immediate: true);
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
