using System.Text.Json.Nodes;

namespace PgAgentOS.Cli.Tests;

/// <summary>tenant, persona, agent and conversation: create, list, show, their JSON, and their bad input.</summary>
public sealed class SetupCommandTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    [Fact]
    public async Task TenantsPersonasAndAgents()
    {
        var aos = Aos.For(db);
        Golden.Check("tenant-list-empty", Expect.Ok(await aos.RunAsync("tenant", "list")));
        Golden.Check("persona-list-no-tenant", Expect.Code(3, await aos.RunAsync("persona", "list")));

        Golden.Check("tenant-create", Expect.Ok(await aos.RunAsync("tenant", "create", "acme", "--display-name", "ACME Corp")));
        // With one tenant, commands use it without --tenant.
        Golden.Check("persona-list-none", Expect.Ok(await aos.RunAsync("persona", "list")));
        Golden.Check("persona-create", Expect.Ok(await aos.RunAsync("persona", "create", "helper", "--prompt", "You help. Answer concisely.",
            "--traits", "{\"concise\": true}", "--model", "openai/gpt-4o-mini")));
        Golden.Check("agent-create", Expect.Ok(await aos.RunAsync("agent", "create", "researcher", "--persona", "helper", "--tools", "web_search,clock",
            "--description", "Looks things up")));
        Golden.Check("persona-list", Expect.Ok(await aos.RunAsync("persona", "list")));
        Golden.Check("persona-show", Expect.Ok(await aos.RunAsync("persona", "show", "helper")));
        Golden.Check("agent-list", Expect.Ok(await aos.RunAsync("agent", "list")));
        Golden.Check("agent-show", Expect.Ok(await aos.RunAsync("agent", "show", "researcher")));
        Golden.Check("tenant-show", Expect.Ok(await aos.RunAsync("tenant", "show", "acme")));

        var json = Expect.Ok(await aos.RunAsync("agent", "show", "researcher", "--json"));
        var agent = JsonNode.Parse(json.Out)!["agent"]!;
        Assert.Equal("researcher", (string?)agent["name"]);
        Assert.Equal("openai/gpt-4o-mini", (string?)agent["model"]);
        Assert.Equal(["web_search", "clock"], agent["tools"]!.AsArray().Select(t => (string?)t));
        // The id prefix a table shows works as well as the name.
        var id = (string)agent["agent_id"]!;
        Assert.Contains(id, Expect.Ok(await aos.RunAsync("agent", "show", id[..8])).Out, StringComparison.Ordinal);

        // A second tenant: now commands must say which.
        Expect.Ok(await aos.RunAsync("tenant", "create", "beta"));
        Golden.Check("tenant-list", Expect.Ok(await aos.RunAsync("tenant", "list")));
        Golden.Check("agent-list-ambiguous-tenant", Expect.Code(2, await aos.RunAsync("agent", "list")));
        Golden.Check("agent-list-beta-empty", Expect.Ok(await aos.RunAsync("agent", "list", "--tenant", "beta")));
        Expect.Ok(await aos.With("AOS_TENANT", "acme").RunAsync("agent", "show", "researcher"));
        // acme's agent is invisible from beta.
        Golden.Check("agent-show-wrong-tenant", Expect.Code(3, await aos.RunAsync("agent", "show", "researcher", "--tenant", "beta")));
        Golden.Check("agent-show-wrong-tenant-by-id", Expect.Code(3, await aos.RunAsync("agent", "show", id, "--tenant", "beta")));
        Golden.Check("tenant-unknown", Expect.Code(3, await aos.RunAsync("agent", "list", "--tenant", "nope")));

        var tenants = JsonNode.Parse(Expect.Ok(await aos.RunAsync("tenant", "list", "--json")).Out)!.AsArray();
        Assert.Equal(["acme", "beta"], tenants.Select(t => (string?)t!["name"]));
    }

}

/// <summary>Bad input to tenant, persona and agent commands: one line, an exit code, nothing created.</summary>
public sealed class SetupBadInputTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    [Fact]
    public async Task BadInputChangesNothing()
    {
        var aos = Aos.For(db).With("AOS_TENANT", "gamma");
        Expect.Ok(await aos.RunAsync("tenant", "create", "gamma"));
        Golden.Check("tenant-create-duplicate", Expect.Code(4, await aos.RunAsync("tenant", "create", "gamma")));
        Golden.Check("tenant-create-bad-name", Expect.Code(2, await aos.RunAsync("tenant", "create", "bad name!")));
        Golden.Check("persona-create-bad-json", Expect.Code(2, await aos.RunAsync("persona", "create", "p", "--prompt", "x", "--traits", "{nope")));
        Golden.Check("persona-create-not-object", Expect.Code(2, await aos.RunAsync("persona", "create", "p", "--prompt", "x", "--params", "[1]")));
        Golden.Check("persona-create-unknown-model", Expect.Code(3, await aos.RunAsync("persona", "create", "p", "--prompt", "x", "--model", "acme/gpt-99")));
        Golden.Check("agent-create-unknown-tool", Expect.Code(3, await aos.RunAsync("agent", "create", "a1", "--tools", "teleport")));
        Golden.Check("agent-create-unknown-persona", Expect.Code(3, await aos.RunAsync("agent", "create", "a1", "--persona", "ghost")));
        Golden.Check("agent-create-bad-config", Expect.Code(2, await aos.RunAsync("agent", "create", "a1", "--config", "{\"max_iterations\": -1}")));
        Golden.Check("agent-create-missing-script", Expect.Code(2, await aos.RunAsync("agent", "create", "a1", "--script", "/nonexistent/script.json")));
        Golden.Check("agent-show-unknown", Expect.Code(3, await aos.RunAsync("agent", "show", "ghost")));
        Golden.Check("persona-show-unknown-prefix", Expect.Code(3, await aos.RunAsync("persona", "show", "0000abcd")));
        // Nothing was created by any of that.
        var list = JsonNode.Parse(Expect.Ok(await aos.RunAsync("agent", "list", "--json")).Out)!.AsArray();
        Assert.Empty(list);
        Assert.Empty(JsonNode.Parse(Expect.Ok(await aos.RunAsync("persona", "list", "--json")).Out)!.AsArray());
    }
}
