using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json.Nodes;
using PgAgentOS.Runtime.Tools;

namespace PgAgentOS.Runtime.Tests;

/// <summary>A worker process killed with SIGKILL mid-turn (RELIABILITY Q3, L4).</summary>
public sealed class CrashTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    private sealed class CountingTool : ITool
    {
        public int Runs;

        public Task<ToolResult> RunAsync(ToolCall call, CancellationToken ct)
        {
            Interlocked.Increment(ref Runs);
            return Task.FromResult(ToolResult.Ok(JsonValue.Create("ran again")));
        }
    }

    /// <summary>The test worker program as a child process; its events go to a queue.</summary>
    private sealed class ChildWorker : IAsyncDisposable
    {
        private readonly Process _process;

        public ChildWorker(string connectionString, Guid tenant, string id, int lease, int modelDelayMs)
        {
            var psi = new ProcessStartInfo("dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
                UseShellExecute = false,
            };
            foreach (var a in new[] { TestWorker.Dll, "worker", "--connection", connectionString, "--worker-id", id, "--lease", lease.ToString(),
                         "--tenant", tenant.ToString(), "--poll-ms", "100", "--model-delay-ms", modelDelayMs.ToString() })
            {
                psi.ArgumentList.Add(a);
            }
            _process = Process.Start(psi)!;
            _process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is not null)
                {
                    Lines.Enqueue(e.Data);
                }
            };
            _process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is not null)
                {
                    Lines.Enqueue("STDERR " + e.Data);
                }
            };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public ConcurrentQueue<string> Lines { get; } = new();

        /// <summary>SIGKILL: no chance to release anything.</summary>
        public void Kill()
        {
            _process.Kill(entireProcessTree: false);
            _process.WaitForExit(10000);
        }

        public ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(10000);
            }
            _process.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task AWorkerKilledDuringAModelCallLosesNoStepAndAnotherFinishesTheTurn()
    {
        var t = await Kit.TenantAsync(db, "crash-model", ["clock"], new JsonObject
        {
            ["auto_approve_tools"] = true,
            ["script"] = new JsonArray(
                new JsonObject { ["thinking"] = "check the clock", ["tool_calls"] = new JsonArray(new JsonObject { ["name"] = "clock", ["arguments"] = new JsonObject() }) },
                new JsonObject { ["text"] = "finished after the crash: {{tool:clock}}" }),
        });
        var (_, turn) = await t.AskAsync("what time is it?");
        await using var child = new ChildWorker(db.ConnectionString(TestCluster.Worker), t.Tenant, "doomed", lease: 2, modelDelayMs: 3000);

        // Kill it once the tool result is recorded, while it waits for the second model response.
        await Kit.EventuallyAsync(async () => (await t.StepTypesAsync(turn)).Contains("tool_result"), TimeSpan.FromSeconds(30),
            "the first worker to record the tool result");
        // the worker reports the tool finished right after the result's commit: wait for that line too
        await Kit.EventuallyAsync(() => Task.FromResult(child.Lines.Any(l => l.StartsWith("EVENT ToolFinished", StringComparison.Ordinal))),
            TimeSpan.FromSeconds(10), "the first worker to report the tool finished");
        var before = (await t.StepsAsync(turn)).Select(s => (string)s!["step_id"]!).ToList();
        child.Kill();
        Assert.Equal("running", await t.StatusAsync(turn));

        await using var rescuer = new WorkerHost(t.WorkerSource, Kit.Options("rescuer", lease: 5) with { TenantId = t.Tenant });
        using var cts = new CancellationTokenSource();
        var run = rescuer.RunAsync(cts.Token);
        await Kit.EventuallyAsync(async () => await t.StatusAsync(turn) == "completed", TimeSpan.FromSeconds(30), "the rescuer to finish the turn");
        await cts.CancelAsync();
        await run;

        var state = await t.App.GetTurnStateAsync(turn);
        Assert.Equal(2, (int)state["attempt"]!);
        var after = state["steps"]!.AsArray();
        Assert.All(before, id => Assert.Contains(after, s => (string)s!["step_id"]! == id));
        Assert.Equal(["user_message", "think", "tool_call", "tool_result", "respond"], after.Select(s => (string)s!["step_type"]!));
        Assert.Single(after, s => (string)s!["step_type"]! == "tool_result");
        Assert.StartsWith("finished after the crash:", (string)state["assistant_message"]!, StringComparison.Ordinal);
        Assert.Contains(child.Lines, l => l.StartsWith("EVENT ToolFinished", StringComparison.Ordinal));
        Assert.True((await t.App.VerifyEventChainAsync()).Ok);
    }

    [Fact]
    public async Task ANonIdempotentToolWhoseExecutionStartedIsNotRunAgainWithoutAPerson()
    {
        var t = await Kit.TenantAsync(db, "crash-tool", ["code_execute"], new JsonObject
        {
            ["script"] = new JsonArray(
                new JsonObject { ["tool_calls"] = new JsonArray(new JsonObject { ["name"] = "code_execute", ["arguments"] = new JsonObject { ["code"] = "const t0 = Date.now(); while (Date.now() - t0 < 8000) {} 'side effect done'" } }) },
                new JsonObject { ["text"] = "after review: {{last_tool}}" }),
        });
        await using (var su = await db.OpenAsync(null))
        {
            await su.ExecAsync("INSERT INTO aos_skills.role_skill (tenant_id, role_key, skill_key, allowed, requires_approval) VALUES ($1, 'agent', 'code_execute', true, false)", t.Tenant);
        }
        var (_, turn) = await t.AskAsync("run the side effect");
        await using var child = new ChildWorker(db.ConnectionString(TestCluster.Worker), t.Tenant, "doomed-tool", lease: 2, modelDelayMs: 0);
        await Kit.EventuallyAsync(() => Task.FromResult(child.Lines.Any(l => l.StartsWith("EVENT ToolStarted", StringComparison.Ordinal))),
            TimeSpan.FromSeconds(30), "the tool to start in the first worker");
        child.Kill();
        Assert.DoesNotContain(child.Lines, l => l.StartsWith("EVENT ToolFinished", StringComparison.Ordinal));

        var code = new CountingTool();
        await using var rescuer = new WorkerHost(t.WorkerSource, Kit.Options("rescuer-tool", lease: 5) with
        {
            TenantId = t.Tenant,
            ExtraTools = new Dictionary<string, ITool> { ["code_execute"] = code },
        });
        using var cts = new CancellationTokenSource();
        var run = rescuer.RunAsync(cts.Token);
        await Kit.EventuallyAsync(async () => await t.StatusAsync(turn) == "waiting_human", TimeSpan.FromSeconds(30),
            "the reclaimed turn to wait for a review");
        var call = (await t.StepsAsync(turn)).Single(s => (string)s!["step_type"]! == "tool_call")!;
        Assert.Equal("needs_review", (string)call["status"]!);
        Assert.Equal(0, code.Runs);
        var executions = await t.App.QueryJsonAsync("SELECT status FROM aos_agent.tool_execution WHERE step_id = $1", default, Guid.Parse((string)call["step_id"]!));
        Assert.Equal(["abandoned"], executions.Select(e => (string)e["status"]!));

        // A person decides: do not run it again. The turn goes on and finishes without a second execution.
        await t.App.ApproveStepAsync(Guid.Parse((string)call["step_id"]!), false, note: "it may have run; not again");
        await Kit.EventuallyAsync(async () => await t.StatusAsync(turn) == "completed", TimeSpan.FromSeconds(30), "the turn to finish");
        await cts.CancelAsync();
        await run;
        Assert.Equal(0, code.Runs);
        Assert.Single(await t.App.QueryJsonAsync("SELECT 1 AS x FROM aos_agent.tool_execution WHERE turn_id = $1", default, turn));
        Assert.Contains("rejected", (string)(await t.App.GetTurnStateAsync(turn))["assistant_message"]!, StringComparison.Ordinal);
    }
}
