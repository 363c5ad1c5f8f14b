using System.Text.Json.Nodes;
using Npgsql;
using PgAgentOS.Client;
using PgAgentOS.Embedded;

namespace PgAgentOS.Bench;

/// <summary>Tenants, agents and the SDK clients the figures use.</summary>
internal sealed class Scenario
{
    public const string AppName = "aos-bench-app";

    private Scenario(BenchServer server, NpgsqlDataSource adminSource)
    {
        Server = server;
        AdminSource = adminSource;
        Admin = new AosClient(adminSource);
    }

    public BenchServer Server { get; }

    /// <summary>The administrator login's pool (application side: send_message, approve_step, views).</summary>
    public NpgsqlDataSource AdminSource { get; }

    /// <summary>A platform administrator (not bound to a tenant).</summary>
    public AosClient Admin { get; }

    public static Scenario Create(BenchServer server) =>
        new(server, server.DataSource(ClusterLifecycle.AdminLogin, AppName));

    /// <summary>A worker pool tagged with an application name (CPU of its backends is measured by it).</summary>
    public NpgsqlDataSource WorkerSource(string applicationName) => Server.DataSource(ClusterLifecycle.WorkerLogin, applicationName);

    /// <summary>A tenant with one agent that may call web_search; returns the tenant's client and the agent.</summary>
    public async Task<(Guid Tenant, AosClient App, Guid Agent)> TenantAsync(string name, bool autoApprove, bool bigBudget, CancellationToken ct,
        JsonObject? extraConfig = null)
    {
        var tenant = await Admin.CreateTenantAsync(name, ct: ct);
        var app = Admin.ForTenant(tenant);
        var persona = await app.CreatePersonaAsync("bench", "You answer with the help of web_search.", ct: ct);
        var config = new JsonObject { ["auto_approve_tools"] = autoApprove };
        if (bigBudget)
        {
            // a turn that may record steps for as long as the window lasts
            config["max_iterations"] = 1_000_000_000;
            config["max_tokens_per_turn"] = 1_000_000_000;
            config["max_turn_seconds"] = 1_000_000_000;
        }
        foreach (var (k, v) in extraConfig ?? [])
        {
            config[k] = v?.DeepClone();
        }
        var agent = await app.CreateAgentAsync(tenant, "bench-agent", persona, ["web_search"], config, model: "builtin/scripted", ct: ct);
        return (tenant, app, agent);
    }
}
