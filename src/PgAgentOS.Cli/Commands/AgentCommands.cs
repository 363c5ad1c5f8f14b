using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using PgAgentOS.Client;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PgAgentOS.Cli.Commands;

/// <summary>Options of aos agent create.</summary>
public sealed class AgentCreateSettings : TenantSettings
{
    /// <summary>NAME.</summary>
    [CommandArgument(0, "<NAME>")]
    [Description("Agent name: letters, digits, _ . - (up to 100 characters).")]
    public string Name { get; init; } = "";

    /// <summary>--persona.</summary>
    [CommandOption("--persona <PERSONA>")]
    [Description("Persona name or id.")]
    public string? Persona { get; init; }

    /// <summary>--tools.</summary>
    [CommandOption("--tools <LIST>")]
    [Description("Tools (skills) the agent may call, comma-separated, e.g. web_search,clock.")]
    public string? Tools { get; init; }

    /// <summary>--model.</summary>
    [CommandOption("--model <MODEL>")]
    [Description("Model as provider/name (overrides the persona's), e.g. builtin/scripted or openai/gpt-4o.")]
    public string? Model { get; init; }

    /// <summary>--config.</summary>
    [CommandOption("--config <JSON>")]
    [Description("Configuration as a JSON object: auto_approve_tools, max_iterations, max_tokens_per_turn, max_cost_usd_per_turn and the others in docs/cli.md.")]
    public string? Config { get; init; }

    /// <summary>--script.</summary>
    [CommandOption("--script <FILE>")]
    [Description("A JSON file with the script of the builtin/scripted model (stored as config.script).")]
    public string? Script { get; init; }

    /// <summary>--auto-approve.</summary>
    [CommandOption("--auto-approve")]
    [Description("Run tool calls without asking (except tools that require approval, and policy rules).")]
    public bool AutoApprove { get; init; }

    /// <summary>--description.</summary>
    [CommandOption("--description <TEXT>")]
    [Description("What the agent is for.")]
    public string? Description { get; init; }
}

/// <summary>aos agent create.</summary>
public sealed class AgentCreateCommand : TenantCommand<AgentCreateSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, AgentCreateSettings settings, CancellationToken ct)
    {
        var config = Render.ParseObject(settings.Config, "--config") ?? [];
        if (settings.AutoApprove)
        {
            config["auto_approve_tools"] = true;
        }
        if (settings.Script is not null)
        {
            config["script"] = ReadScript(settings.Script);
        }
        Guid? persona = settings.Persona is null ? null : await Ids.ResolveAsync(client, AosIdKind.Persona, settings.Persona, ct, tenant);
        var id = await client.CreateAgentAsync(tenant.Id, settings.Name, persona, Render.List(settings.Tools), config, settings.Model,
            settings.Description, ct);
        if (settings.Json)
        {
            Output.Json(Ctx, new { agent_id = id, name = settings.Name, tenant = tenant.Name });
        }
        else
        {
            Ctx.Out.WriteLine($"Created agent {settings.Name} ({id}) in tenant {tenant.Name}.");
        }
        return ExitCodes.Ok;
    }

    private static JsonNode ReadScript(string file)
    {
        string text;
        try
        {
            text = File.ReadAllText(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"cannot read the script {file}: {e.Message}", ExitCodes.Usage);
        }
        try
        {
            return JsonNode.Parse(text) as JsonArray
                ?? throw new CliException($"the script {file} must be a JSON array of model responses", ExitCodes.Usage);
        }
        catch (JsonException e)
        {
            throw new CliException($"the script {file} is not valid JSON: {e.Message}", ExitCodes.Usage);
        }
    }
}

/// <summary>aos agent list.</summary>
public sealed class AgentListCommand : TenantCommand<TenantSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, TenantSettings settings, CancellationToken ct)
    {
        var agents = await client.ListAgentsAsync(ct);
        if (settings.Json)
        {
            Output.Json(Ctx, agents);
            return ExitCodes.Ok;
        }
        if (agents.Count == 0)
        {
            Ctx.Out.WriteLine($"Tenant {tenant.Name} has no agents yet. Create one with aos agent create NAME --persona PERSONA --tools web_search.");
            return ExitCodes.Ok;
        }
        var table = new Table().AddColumns("name", "id", "persona", "model", "tools", "conversations", "active");
        foreach (var a in agents)
        {
            table.AddRow(Render.Esc(a.Name), Ids.Short(a.AgentId), Render.Esc(a.PersonaName ?? "-"), Render.Esc(a.Model),
                Render.Esc(a.Tools.Count == 0 ? "-" : string.Join(", ", a.Tools)), a.Conversations.ToString(CultureInfo.InvariantCulture),
                a.IsActive ? "yes" : "[red]no[/]");
        }
        Ctx.Console.Write(table);
        return ExitCodes.Ok;
    }
}

/// <summary>Options of aos agent show.</summary>
public sealed class AgentShowSettings : TenantSettings
{
    /// <summary>AGENT.</summary>
    [CommandArgument(0, "<AGENT>")]
    [Description("Agent name or id.")]
    public string Agent { get; init; } = "";
}

/// <summary>aos agent show.</summary>
public sealed class AgentShowCommand : TenantCommand<AgentShowSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, AgentShowSettings settings, CancellationToken ct)
    {
        var id = await Ids.ResolveAsync(client, AosIdKind.Agent, settings.Agent, ct, tenant);
        var a = await client.GetAgentAsync(id, ct)
            ?? throw new CliException($"agent {settings.Agent} does not exist in tenant {tenant.Name}", ExitCodes.NotFound,
                "aos agent list shows the agents (pass --tenant for another tenant).");
        var conversations = await client.ListConversationsAsync(a.AgentId, 10, ct);
        if (settings.Json)
        {
            Output.Json(Ctx, new { agent = a, conversations });
            return ExitCodes.Ok;
        }
        var config = a.Config.DeepClone().AsObject();
        var hasScript = config.Remove("script");
        var table = new Table().HideHeaders().AddColumn("").AddColumn("");
        table.AddRow("agent", Render.Esc(a.Name));
        table.AddRow("id", a.AgentId.ToString());
        table.AddRow("tenant", Render.Esc(tenant.Name));
        table.AddRow("description", Render.Esc(a.Description ?? "-"));
        table.AddRow("persona", Render.Esc(a.PersonaName ?? "-"));
        table.AddRow("model", Render.Esc(a.Model));
        table.AddRow("tools", Render.Esc(a.Tools.Count == 0 ? "-" : string.Join(", ", a.Tools)));
        table.AddRow("role", Render.Esc(a.RoleKey));
        table.AddRow("config", Render.Esc(config.ToJsonString()) + (hasScript ? " [dim](+ script)[/]" : ""));
        table.AddRow("active", a.IsActive ? "yes" : "[red]no[/]");
        table.AddRow("created", Render.When(a.CreatedAt));
        table.AddRow("conversations", a.Conversations.ToString(CultureInfo.InvariantCulture));
        Ctx.Console.Write(table);
        if (conversations.Count > 0)
        {
            var conv = new Table().Title("latest conversations").AddColumns("conversation", "title", "status", "turns", "tokens", "last activity");
            foreach (var c in conversations)
            {
                conv.AddRow(Ids.Short(c.ConversationId), Render.Esc(Render.Clip(c.Title ?? "-", 40)), Render.Status(c.Status),
                    c.TurnCount.ToString(CultureInfo.InvariantCulture), Render.Num(c.TotalTokens), Render.When(c.LastActivityAt));
            }
            Ctx.Console.Write(conv);
        }
        return ExitCodes.Ok;
    }
}
