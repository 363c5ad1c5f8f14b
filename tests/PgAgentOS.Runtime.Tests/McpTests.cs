using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Server;
using PgAgentOS.Client;
using PgAgentOS.Runtime.Mcp;

namespace PgAgentOS.Runtime.Tests;

/// <summary>Tools of an MCP server (a stdio child process) registered as skills and called by a worker.</summary>
public sealed class McpTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    private static Dictionary<string, McpServerConfig> Servers() => new()
    {
        ["files"] = new McpServerConfig { Command = "dotnet", Args = [TestWorker.Dll, "mcp-server"] },
    };

    [Fact]
    public async Task McpToolsAreImportedAsSkillsAndCalledThroughTheKernel()
    {
        var admin = new AosClient(db.DataSource(TestCluster.Admin));
        var tenant = await admin.CreateTenantAsync("mcp-" + Guid.NewGuid().ToString("N")[..6]);
        var app = admin.ForTenant(tenant);
        var keys = await new McpCatalog(Servers()).ImportAsync(app, "files");
        Assert.Equal(["files_add", "files_echo", "files_fail"], keys.Order());

        var skills = await app.QueryJsonAsync("""
            SELECT s.skill_key, s.requires_approval, s.idempotent, s.risk_level, i.impl_type, i.config
              FROM aos_skills.skill s JOIN aos_skills.skill_impl i USING (tenant_id, skill_key)
             WHERE s.tenant_id = aos_auth.current_tenant() ORDER BY 1
            """);
        Assert.Equal(3, skills.Count);
        Assert.All(skills, s => Assert.Equal("mcp", (string)s["impl_type"]!));
        var echo = skills.Single(s => (string)s["skill_key"]! == "files_echo");
        Assert.False((bool)echo["requires_approval"]!);
        Assert.True((bool)echo["idempotent"]!);
        Assert.Equal("echo", (string)echo["config"]!["tool"]!);
        Assert.Equal("high", (string)skills.Single(s => (string)s["skill_key"]! == "files_fail")["risk_level"]!);
        // importing again updates in place
        Assert.Equal(3, (await new McpCatalog(Servers()).ImportAsync(app, "files")).Count);

        var persona = await app.CreatePersonaAsync("helper", "You use tools.");
        var agent = await app.CreateAgentAsync(tenant, "mcp-agent", persona, ["files_echo", "files_add", "files_fail"], new JsonObject
        {
            ["auto_approve_tools"] = true,
            ["script"] = new JsonArray(
                new JsonObject { ["tool_calls"] = new JsonArray(new JsonObject { ["name"] = "files_echo", ["arguments"] = new JsonObject { ["text"] = "ping" } }) },
                new JsonObject { ["tool_calls"] = new JsonArray(new JsonObject { ["name"] = "files_add", ["arguments"] = new JsonObject { ["a"] = 2, ["b"] = 40 } }) },
                new JsonObject { ["tool_calls"] = new JsonArray(new JsonObject { ["name"] = "files_fail", ["arguments"] = new JsonObject() }) },
                new JsonObject { ["text"] = "echo={{tool:files_echo}} add={{tool:files_add}} fail={{tool:files_fail}}" }),
        }, model: "builtin/scripted");
        var conv = await app.StartConversationAsync(agent);
        var turn = await app.SendMessageAsync(conv, "use the MCP tools");

        await using var host = new WorkerHost(db.DataSource(TestCluster.Worker), Kit.Options("w-mcp") with { TenantId = tenant, McpServers = Servers() });
        await host.RunUntilIdleAsync(CancellationToken.None);
        // files_add is not read-only: it waits for a person; an administrator approves it
        Assert.Equal("waiting_tool", (string)(await app.GetTurnStateAsync(turn))["status"]!);
        var pending = Assert.Single(await app.PendingApprovalsAsync());
        Assert.Equal("files_add", pending.ToolName);
        await app.ApproveStepAsync(pending.StepId, true);
        await host.RunUntilIdleAsync(CancellationToken.None);
        var fail = Assert.Single(await app.PendingApprovalsAsync());
        Assert.Equal("files_fail", fail.ToolName);
        await app.ApproveStepAsync(fail.StepId, true);
        await host.RunUntilIdleAsync(CancellationToken.None);

        var state = await app.GetTurnStateAsync(turn);
        Assert.Equal("completed", (string)state["status"]!);
        var answer = (string)state["assistant_message"]!;
        Assert.Contains("echo=echo: ping", answer, StringComparison.Ordinal);
        Assert.Contains("\"result\":42", answer.Replace(" ", "", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Contains("fail=Error:", answer, StringComparison.Ordinal);
    }
}

/// <summary>Where the test worker program (tests/PgAgentOS.WorkerHost) was built.</summary>
public static class TestWorker
{
    /// <summary>Path of aos-test-worker.dll.</summary>
    public static string Dll { get; } = Find();

    private static string Find()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        // artifacts/bin/PgAgentOS.Runtime.Tests/<config>/ → artifacts/bin/PgAgentOS.WorkerHost/<config>/
        var config = dir.Name;
        var candidate = Path.Combine(dir.Parent!.Parent!.FullName, "PgAgentOS.WorkerHost", config, "aos-test-worker.dll");
        return File.Exists(candidate) ? candidate : throw new FileNotFoundException("aos-test-worker.dll was not built", candidate);
    }
}

/// <summary>MCP configuration files.</summary>
public sealed class McpConfigTests
{
    [Fact]
    public void ServersAreReadFromJson()
    {
        var servers = McpServerConfig.ParseJson("""
            {"mcpServers": {
              "files": {"command": "npx", "args": ["-y", "server-filesystem", "/srv"], "env": {"DEBUG": "1"}},
              "tickets": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer x"}}}}
            """);
        Assert.Equal("npx", servers["files"].Command);
        Assert.Equal(["-y", "server-filesystem", "/srv"], servers["files"].Args);
        Assert.Equal("1", servers["files"].Env["DEBUG"]);
        Assert.Equal("https://mcp.example.com/mcp", servers["tickets"].Url);
        Assert.Equal("Bearer x", servers["tickets"].Headers["Authorization"]);
        Assert.Throws<FormatException>(() => McpServerConfig.ParseJson("""{"mcpServers": {"bad": {}}}"""));
        Assert.Equal("files_read_file", PgAgentOS.Runtime.Mcp.McpCatalog.SkillKey("files", "read.file"));
    }
}

/// <summary>An MCP server over HTTP, in the test process.</summary>
public sealed class McpHttpTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    [Fact]
    public async Task ToolsOfAnHttpServerAreImportedAndCalled()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddMcpServer().WithHttpTransport().WithTools(
            [McpServerTool.Create((string city) => $"sunny in {city}",
                new McpServerToolCreateOptions { Name = "weather", Description = "Weather of a city.", ReadOnly = true })]);
        await using var app = builder.Build();
        app.MapMcp("/mcp");
        await app.StartAsync();
        var address = app.Urls.First();
        var servers = new Dictionary<string, McpServerConfig> { ["web"] = new() { Url = address + "/mcp" } };

        var admin = new AosClient(db.DataSource(TestCluster.Admin));
        var tenant = await admin.CreateTenantAsync("mcp-http-" + Guid.NewGuid().ToString("N")[..6]);
        var keys = await new McpCatalog(servers).ImportAsync(admin.ForTenant(tenant), "web");
        Assert.Equal(["web_weather"], keys);

        await using var connections = new McpConnections(servers);
        var skill = new SkillImplementation
        {
            SkillKey = "web_weather", ImplType = "mcp", Config = new JsonObject { ["server"] = "web", ["tool"] = "weather" },
        };
        var call = new PgAgentOS.Runtime.Tools.ToolCall(new TurnContext(), Guid.NewGuid(), Guid.NewGuid(), "c", "web_weather",
            new JsonObject { ["city"] = "Lyon" }, skill, admin);
        var r = await new McpTool(connections).RunAsync(call, CancellationToken.None);
        Assert.True(r.Success, r.Error);
        Assert.Equal("sunny in Lyon", (string)r.Output!);
        await app.StopAsync();
    }
}
