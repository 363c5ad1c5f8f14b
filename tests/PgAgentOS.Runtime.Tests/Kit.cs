using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Npgsql;
using PgAgentOS.Client;
using PgAgentOS.Runtime;

namespace PgAgentOS.Runtime.Tests;

/// <summary>A tenant with one agent, the clients to drive it, and a worker login.</summary>
public sealed record TenantSetup(Guid Tenant, AosClient App, Guid Agent, AosClient Worker, NpgsqlDataSource WorkerSource)
{
    /// <summary>A conversation with a first message; returns (conversation, turn).</summary>
    public async Task<(Guid Conversation, Guid Turn)> AskAsync(string message)
    {
        var conv = await App.StartConversationAsync(Agent);
        var turn = await App.SendMessageAsync(conv, message);
        return (conv, turn);
    }

    /// <summary>The step types of a turn, in order.</summary>
    public async Task<List<string>> StepTypesAsync(Guid turn) =>
        [.. (await App.GetTurnStateAsync(turn))["steps"]!.AsArray().Select(s => (string)s!["step_type"]!)];

    /// <summary>The steps of a turn.</summary>
    public async Task<JsonArray> StepsAsync(Guid turn) => (await App.GetTurnStateAsync(turn))["steps"]!.AsArray();

    /// <summary>The turn's status.</summary>
    public async Task<string> StatusAsync(Guid turn) => (string)(await App.GetTurnStateAsync(turn))["status"]!;

    /// <summary>An approver principal of this tenant, acting through its API key.</summary>
    public async Task<AosClient> ApproverAsync()
    {
        var principal = await App.CreatePrincipalAsync(Tenant, "human", "approver-" + Guid.NewGuid().ToString("N")[..6], roles: ["approver"]);
        var key = await App.CreateApiKeyAsync(principal);
        return App.WithBinding(TenantBinding.None).WithApiKey(key);
    }
}

/// <summary>Helpers shared by the runtime tests.</summary>
public static class Kit
{
    /// <summary>A tenant, a persona and an agent with the given tools and config (model builtin/scripted by default).</summary>
    public static async Task<TenantSetup> TenantAsync(KernelDatabase db, string name, string[] tools, JsonObject? config = null,
        string model = "builtin/scripted")
    {
        var admin = new AosClient(db.DataSource(TestCluster.Admin));
        var tenant = await admin.CreateTenantAsync(name + "-" + Guid.NewGuid().ToString("N")[..8]);
        var app = admin.ForTenant(tenant);
        var persona = await app.CreatePersonaAsync("helper", "You are a helpful test agent.");
        var agent = await app.CreateAgentAsync(tenant, "agent", persona, tools, config ?? [], model: model);
        return new TenantSetup(tenant, app, agent, new AosClient(db.DataSource(TestCluster.Worker)), db.DataSource(TestCluster.Worker));
    }

    /// <summary>Worker options for tests: short lease, fast polling, no provider settings from the environment.</summary>
    public static WorkerOptions Options(string id = "w-test", int concurrency = 1, int lease = 10) => new()
    {
        WorkerId = id,
        Concurrency = concurrency,
        LeaseSeconds = lease,
        PollInterval = TimeSpan.FromMilliseconds(200),
        Providers = new ProviderSettings(),
        ModelRetryDelay = TimeSpan.FromMilliseconds(20),
    };

    /// <summary>A script for the scripted model.</summary>
    public static JsonObject Script(params object[] responses) =>
        new() { ["script"] = JsonSerializer.SerializeToNode(responses) };

    /// <summary>Waits until a condition holds (polling), or fails after the timeout.</summary>
    public static async Task EventuallyAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var until = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < until)
        {
            if (await condition())
            {
                return;
            }
            await Task.Delay(100);
        }
        Assert.Fail($"timed out after {timeout.TotalSeconds} s waiting for {what}");
    }
}

/// <summary>Collects notifications of one channel on a connection of its own.</summary>
public sealed class ChannelListener : IAsyncDisposable
{
    private readonly NpgsqlConnection _conn;
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _pump;

    private ChannelListener(NpgsqlConnection conn)
    {
        _conn = conn;
        _conn.Notification += (_, e) => Payloads.Enqueue(e.Payload);
        _pump = Task.Run(async () =>
        {
            try
            {
                while (!_cts.IsCancellationRequested)
                {
                    await _conn.WaitAsync(_cts.Token);
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
    }

    /// <summary>Payloads received, in order.</summary>
    public ConcurrentQueue<string> Payloads { get; } = new();

    /// <summary>Listens on a channel.</summary>
    public static async Task<ChannelListener> StartAsync(string connectionString, string channel)
    {
        var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using (var cmd = new NpgsqlCommand($"LISTEN {channel}", conn))
        {
            await cmd.ExecuteNonQueryAsync();
        }
        return new ChannelListener(conn);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        await _pump;
        await _conn.DisposeAsync();
        _cts.Dispose();
    }
}
