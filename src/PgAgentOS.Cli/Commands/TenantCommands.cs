using System.ComponentModel;
using System.Text.Json.Nodes;
using PgAgentOS.Client;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PgAgentOS.Cli.Commands;

/// <summary>Options of aos tenant create.</summary>
public sealed class TenantCreateSettings : AosSettings
{
    /// <summary>NAME.</summary>
    [CommandArgument(0, "<NAME>")]
    [Description("Tenant name: letters, digits, _ . - (up to 63 characters).")]
    public string Name { get; init; } = "";

    /// <summary>--display-name.</summary>
    [CommandOption("--display-name <TEXT>")]
    [Description("Name shown to people.")]
    public string? DisplayName { get; init; }

    /// <summary>--settings.</summary>
    [CommandOption("--settings <JSON>")]
    [Description("Tenant settings as a JSON object, e.g. '{\"default_model\": \"openai/gpt-4o-mini\"}'.")]
    public string? Settings { get; init; }
}

/// <summary>aos tenant create.</summary>
public sealed class TenantCreateCommand : AosCommand<TenantCreateSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(TenantCreateSettings settings, CancellationToken ct)
    {
        var json = Render.ParseObject(settings.Settings, "--settings");
        await using var session = await Session.OpenAsync(Ctx, settings, ct: ct);
        var id = await session.Client.CreateTenantAsync(settings.Name, settings.DisplayName, json, ct);
        if (settings.Json)
        {
            Output.Json(Ctx, new { tenant_id = id, name = settings.Name });
        }
        else
        {
            Ctx.Out.WriteLine($"Created tenant {settings.Name} ({id}).");
        }
        return ExitCodes.Ok;
    }
}

/// <summary>aos tenant list.</summary>
public sealed class TenantListCommand : AosCommand<AosSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(AosSettings settings, CancellationToken ct)
    {
        await using var session = await Session.OpenAsync(Ctx, settings, ct: ct);
        var tenants = await session.Client.ListTenantsAsync(ct);
        if (settings.Json)
        {
            Output.Json(Ctx, tenants);
            return ExitCodes.Ok;
        }
        if (tenants.Count == 0)
        {
            Ctx.Out.WriteLine("No tenants yet. Create one with aos tenant create NAME, or run aos demo.");
            return ExitCodes.Ok;
        }
        var table = new Table().AddColumns("name", "id", "display name", "active", "created");
        foreach (var t in tenants)
        {
            table.AddRow(Render.Esc(t.Name), t.TenantId.ToString(), Render.Esc(t.DisplayName ?? "-"), t.IsActive ? "yes" : "[red]no[/]",
                Render.When(t.CreatedAt));
        }
        Ctx.Console.Write(table);
        return ExitCodes.Ok;
    }
}

/// <summary>Options of aos tenant show.</summary>
public sealed class TenantShowSettings : AosSettings
{
    /// <summary>TENANT.</summary>
    [CommandArgument(0, "<TENANT>")]
    [Description("Tenant name or id.")]
    public string Tenant { get; init; } = "";
}

/// <summary>aos tenant show.</summary>
public sealed class TenantShowCommand : AosCommand<TenantShowSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(TenantShowSettings settings, CancellationToken ct)
    {
        await using var session = await Session.OpenAsync(Ctx, settings, ct: ct);
        var tref = await session.FindTenantAsync(settings.Tenant, ct)
            ?? throw new CliException($"there is no tenant '{settings.Tenant}'", ExitCodes.NotFound, "aos tenant list shows the tenants.");
        var tenant = (await session.Client.GetTenantAsync(tref.Id, ct))!;
        var client = session.For(tref);
        var overview = await client.DashboardOverviewAsync(ct) ?? [];
        if (settings.Json)
        {
            var o = new JsonObject
            {
                ["tenant_id"] = tenant.TenantId,
                ["name"] = tenant.Name,
                ["display_name"] = tenant.DisplayName,
                ["is_active"] = tenant.IsActive,
                ["created_at"] = tenant.CreatedAt,
                ["settings"] = tenant.Settings.DeepClone(),
                ["overview"] = overview.DeepClone(),
            };
            Output.Json(Ctx, o);
            return ExitCodes.Ok;
        }
        var table = new Table().HideHeaders().AddColumn("").AddColumn("");
        table.AddRow("tenant", Render.Esc(tenant.Name));
        table.AddRow("id", tenant.TenantId.ToString());
        table.AddRow("display name", Render.Esc(tenant.DisplayName ?? "-"));
        table.AddRow("active", tenant.IsActive ? "yes" : "[red]no[/]");
        table.AddRow("created", Render.When(tenant.CreatedAt));
        table.AddRow("settings", Render.Esc(tenant.Settings.ToJsonString()));
        foreach (var (key, label) in new[]
                 {
                     ("active_agents", "active agents"), ("active_conversations", "active conversations"), ("running_turns", "running turns"),
                     ("queued_turns", "queued turns"), ("pending_approvals", "pending approvals"), ("turns_24h", "turns (24 h)"),
                     ("failed_24h", "failed turns (24 h)"), ("tokens_24h", "tokens (24 h)"), ("cost_24h_usd", "cost (24 h, USD)"),
                 })
        {
            table.AddRow(label, Render.Esc(overview[key]?.ToJsonString() ?? "0"));
        }
        Ctx.Console.Write(table);
        return ExitCodes.Ok;
    }
}
