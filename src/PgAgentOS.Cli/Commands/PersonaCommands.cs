using System.ComponentModel;
using PgAgentOS.Client;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PgAgentOS.Cli.Commands;

/// <summary>Options of aos persona create.</summary>
public sealed class PersonaCreateSettings : TenantSettings
{
    /// <summary>NAME.</summary>
    [CommandArgument(0, "<NAME>")]
    [Description("Persona name: letters, digits, space _ . - (up to 100 characters).")]
    public string Name { get; init; } = "";

    /// <summary>--prompt.</summary>
    [CommandOption("--prompt <TEXT>")]
    [Description("The system prompt (required).")]
    public string? Prompt { get; init; }

    /// <summary>--model.</summary>
    [CommandOption("--model <MODEL>")]
    [Description("Model as provider/name, e.g. openai/gpt-4o-mini (aos_meta.llm_model_registry lists them). Default: the tenant's.")]
    public string? Model { get; init; }

    /// <summary>--traits.</summary>
    [CommandOption("--traits <JSON>")]
    [Description("Traits as a JSON object, e.g. '{\"concise\": true}'.")]
    public string? Traits { get; init; }

    /// <summary>--params.</summary>
    [CommandOption("--params <JSON>")]
    [Description("Model parameter overrides as a JSON object, e.g. '{\"temperature\": 0.2}'.")]
    public string? Params { get; init; }

    /// <inheritdoc />
    public override ValidationResult Validate() =>
        string.IsNullOrWhiteSpace(Prompt) ? ValidationResult.Error("--prompt is required: the persona's system prompt") : ValidationResult.Success();
}

/// <summary>aos persona create.</summary>
public sealed class PersonaCreateCommand : TenantCommand<PersonaCreateSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, PersonaCreateSettings settings, CancellationToken ct)
    {
        var traits = Render.ParseObject(settings.Traits, "--traits");
        var overrides = Render.ParseObject(settings.Params, "--params");
        var id = await client.CreatePersonaAsync(settings.Name, settings.Prompt!, traits, settings.Model, overrides, ct);
        if (settings.Json)
        {
            Output.Json(Ctx, new { persona_id = id, name = settings.Name, tenant = tenant.Name });
        }
        else
        {
            Ctx.Out.WriteLine($"Created persona {settings.Name} ({id}) in tenant {tenant.Name}.");
        }
        return ExitCodes.Ok;
    }
}

/// <summary>aos persona list.</summary>
public sealed class PersonaListCommand : TenantCommand<TenantSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, TenantSettings settings, CancellationToken ct)
    {
        var personas = await client.ListPersonasAsync(ct);
        if (settings.Json)
        {
            Output.Json(Ctx, personas);
            return ExitCodes.Ok;
        }
        if (personas.Count == 0)
        {
            Ctx.Out.WriteLine($"Tenant {tenant.Name} has no personas yet. Create one with aos persona create NAME --prompt TEXT.");
            return ExitCodes.Ok;
        }
        var table = new Table().AddColumns("name", "id", "model", "agents", "system prompt");
        foreach (var p in personas)
        {
            table.AddRow(Render.Esc(p.Name), Ids.Short(p.PersonaId), Render.Esc(p.Model ?? "(tenant default)"), p.Agents.ToString(System.Globalization.CultureInfo.InvariantCulture),
                Render.Esc(Render.Clip(p.SystemPrompt, 70)));
        }
        Ctx.Console.Write(table);
        return ExitCodes.Ok;
    }
}

/// <summary>Options of aos persona show.</summary>
public sealed class PersonaShowSettings : TenantSettings
{
    /// <summary>PERSONA.</summary>
    [CommandArgument(0, "<PERSONA>")]
    [Description("Persona name or id.")]
    public string Persona { get; init; } = "";
}

/// <summary>aos persona show.</summary>
public sealed class PersonaShowCommand : TenantCommand<PersonaShowSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, PersonaShowSettings settings, CancellationToken ct)
    {
        var id = await Ids.ResolveAsync(client, AosIdKind.Persona, settings.Persona, ct, tenant);
        var p = await client.GetPersonaAsync(id, ct)
            ?? throw new CliException($"persona {settings.Persona} does not exist in tenant {tenant.Name}", ExitCodes.NotFound,
                "aos persona list shows the personas (pass --tenant for another tenant).");
        if (settings.Json)
        {
            Output.Json(Ctx, p);
            return ExitCodes.Ok;
        }
        var table = new Table().HideHeaders().AddColumn("").AddColumn("");
        table.AddRow("persona", Render.Esc(p.Name));
        table.AddRow("id", p.PersonaId.ToString());
        table.AddRow("tenant", Render.Esc(tenant.Name));
        table.AddRow("model", Render.Esc(p.Model ?? "(tenant default)"));
        table.AddRow("traits", Render.Esc(p.Traits.ToJsonString()));
        table.AddRow("parameters", Render.Esc(p.OverrideParams.ToJsonString()));
        table.AddRow("version", p.Version.ToString(System.Globalization.CultureInfo.InvariantCulture));
        table.AddRow("active", p.IsActive ? "yes" : "[red]no[/]");
        table.AddRow("agents", p.Agents.ToString(System.Globalization.CultureInfo.InvariantCulture));
        table.AddRow("created", Render.When(p.CreatedAt));
        table.AddRow("system prompt", Render.Esc(p.SystemPrompt));
        Ctx.Console.Write(table);
        return ExitCodes.Ok;
    }
}
