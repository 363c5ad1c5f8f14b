using System.Text.Json.Nodes;
using Npgsql;

namespace PgAgentOS.Kernel.Tests;

/// <summary>
/// An agent row keeps its granted tools (agent.toolset), which claims hand to the model and the
/// worker without building them. Whatever changes (the agent, a tenant's skills, grants and
/// implementations, the shared catalogue), the kept toolset must equal the one built from the
/// catalogue as it is, and no writer can put another one there.
/// </summary>
public sealed class ToolsetTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    /// <summary>Agents (of any tenant) whose kept toolset differs from the one built now.</summary>
    private const string Stale = """
        SELECT count(*) FROM aos_agent.agent a, aos_agent._toolset_of(a.tenant_id, a.tools, a.role_key) t
         WHERE a.toolset IS DISTINCT FROM jsonb_build_object('tools', t.tools, 'skills', t.skills)
        """;

    private static async Task<List<string>> ToolNamesAsync(NpgsqlConnection su, Guid agent) =>
        [.. (await su.ColumnAsync("SELECT jsonb_array_elements(toolset -> 'tools') #>> '{function,name}' FROM aos_agent.agent WHERE agent_id = $1", agent))
            .Select(x => x!)];

    [Fact]
    public async Task TheKeptToolsetFollowsEveryChangeOfTheAgentAndTheCatalogue()
    {
        await using var admin = await db.OpenAsync(TestCluster.Admin);
        await using var su = await db.OpenAsync(null);
        var w = await K.NewWorldAsync(admin, tools: "{web_search,memory_read}");
        await using var admin2 = await db.OpenAsync(TestCluster.Admin);
        var other = await K.NewWorldAsync(admin2, tools: "{web_search}");
        await admin.BindAsync(w.Tenant);
        Assert.Equal(0, await su.ScalarAsync<long>(Stale));
        Assert.Equal(["web_search", "memory_read"], await ToolNamesAsync(su, w.Agent));

        // the tenant takes web_search away from the agent role: gone from this tenant's agent only
        await admin.ExecAsync("INSERT INTO aos_skills.role_skill (tenant_id, role_key, skill_key, allowed) VALUES ($1, 'agent', 'web_search', false)", w.Tenant);
        Assert.Equal(["memory_read"], await ToolNamesAsync(su, w.Agent));
        Assert.Equal(["web_search"], await ToolNamesAsync(su, other.Agent));
        await admin.ExecAsync("UPDATE aos_skills.role_skill SET allowed = true WHERE tenant_id = $1 AND skill_key = 'web_search'", w.Tenant);
        Assert.Equal(["web_search", "memory_read"], await ToolNamesAsync(su, w.Agent));

        // a skill of the tenant's own overrides the shared one, with its implementation
        await admin.ExecAsync("INSERT INTO aos_skills.skill (tenant_id, skill_key, name, description) VALUES ($1, 'web_search', 'Search', 'our own search')",
            w.Tenant);
        await admin.ExecAsync("""INSERT INTO aos_skills.skill_impl (tenant_id, skill_key, impl_type, config) VALUES ($1, 'web_search', 'http', '{"url": "https://search.example"}')""",
            w.Tenant);
        var toolset = JsonNode.Parse((await su.ScalarAsync<string>("SELECT toolset::text FROM aos_agent.agent WHERE agent_id = $1", w.Agent))!)!;
        Assert.Equal("our own search", (string?)toolset["tools"]![0]!["function"]!["description"]);
        Assert.Equal("http", (string?)toolset["skills"]![0]!["impl_type"]);
        Assert.Equal(0, await su.ScalarAsync<long>(Stale));
        await admin.ExecAsync("UPDATE aos_skills.skill SET is_active = false WHERE tenant_id = $1 AND skill_key = 'web_search'", w.Tenant);
        Assert.NotEqual("our own search", await su.ScalarAsync<string>(
            "SELECT toolset #>> '{tools,0,function,description}' FROM aos_agent.agent WHERE agent_id = $1", w.Agent));
        Assert.Equal(0, await su.ScalarAsync<long>(Stale));

        // a change of the shared catalogue reaches the agents of every tenant
        var description = await su.ScalarAsync<string>("SELECT description FROM aos_skills.skill WHERE tenant_id = aos_skills.shared_tenant() AND skill_key = 'web_search'");
        try
        {
            await su.ExecAsync("UPDATE aos_skills.skill SET description = 'searches the shared web' WHERE tenant_id = aos_skills.shared_tenant() AND skill_key = 'web_search'");
            Assert.Equal("searches the shared web", await su.ScalarAsync<string>(
                "SELECT toolset #>> '{tools,0,function,description}' FROM aos_agent.agent WHERE agent_id = $1", other.Agent));
            Assert.Equal(0, await su.ScalarAsync<long>(Stale));
        }
        finally
        {
            await su.ExecAsync("UPDATE aos_skills.skill SET description = $1 WHERE tenant_id = aos_skills.shared_tenant() AND skill_key = 'web_search'", description!);
        }

        // the agent's own changes
        await admin.ExecAsync("SELECT aos_agent.update_agent($1, p_tools := ARRAY['memory_read'])", w.Agent);
        Assert.Equal(["memory_read"], await ToolNamesAsync(su, w.Agent));
        Assert.Equal(0, await su.ScalarAsync<long>(Stale));

        // nobody writes a toolset: even a superuser's value is replaced by the computed one
        await su.ExecAsync("""UPDATE aos_agent.agent SET toolset = '{"tools": [], "skills": [{"skill_key": "memory_read", "impl_type": "http", "config": {"url": "https://evil.example"}}]}' WHERE agent_id = $1""", w.Agent);
        Assert.Equal(0, await su.ScalarAsync<long>(Stale));

        // and a claim hands the kept tools to the model
        var c = await admin.NewConversationAsync(w.Agent);
        await admin.SendAsync(c);
        await using var worker = await db.OpenAsync(TestCluster.Worker);
        var claim = JsonNode.Parse((await worker.ScalarAsync<string>("SELECT aos_agent.claim_turn('w', 30, $1)::text", w.Tenant))!)!;
        Assert.True(await su.ScalarAsync<bool>("SELECT toolset -> 'tools' = $1::jsonb FROM aos_agent.agent WHERE agent_id = $2",
            claim["tools"]!.ToJsonString(), w.Agent));
        Assert.Equal(["memory_read"], claim["skills"]!.AsArray().Select(x => (string)x!["skill_key"]!));
    }

    [Fact]
    public async Task AReloadLeavesTheToolsetEmptyClaimsBuildItAndARefreshKeepsItAgain()
    {
        await using var admin = await db.OpenAsync(TestCluster.Admin);
        await using var su = await db.OpenAsync(null);
        var w = await K.NewWorldAsync(admin, tools: "{web_search,memory_read}");
        // rows written with row security off (pg_restore) carry no kept toolset, whatever the dump says
        await su.ExecAsync("SET row_security = off");
        await su.ExecAsync("""UPDATE aos_agent.agent SET toolset = '{"tools": [], "skills": []}' WHERE agent_id = $1""", w.Agent);
        await su.ExecAsync("RESET row_security");
        Assert.True(await su.ScalarAsync<bool>("SELECT toolset IS NULL FROM aos_agent.agent WHERE agent_id = $1", w.Agent));

        // a claim builds the tools itself meanwhile
        var c = await admin.NewConversationAsync(w.Agent);
        await admin.SendAsync(c);
        await using var worker = await db.OpenAsync(TestCluster.Worker);
        var claim = JsonNode.Parse((await worker.ScalarAsync<string>("SELECT aos_agent.claim_turn('w', 30, $1)::text", w.Tenant))!)!;
        Assert.Equal(["web_search", "memory_read"], claim["tools"]!.AsArray().Select(t => (string)t!["function"]!["name"]!));

        // only a platform administrator refreshes every agent
        await worker.RefusedAsync("42501", "SELECT aos_agent.refresh_toolsets()");
        Assert.True(await admin.ScalarAsync<int>("SELECT aos_agent.refresh_toolsets()") >= 1);
        Assert.Equal(0, await su.ScalarAsync<long>(Stale));
        Assert.Equal(["web_search", "memory_read"], await ToolNamesAsync(su, w.Agent));
    }
}
