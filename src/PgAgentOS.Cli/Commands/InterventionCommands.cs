using System.ComponentModel;
using System.Globalization;
using PgAgentOS.Client;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PgAgentOS.Cli.Commands;

/// <summary>aos approvals: the tool calls waiting for a decision.</summary>
public sealed class ApprovalsCommand : TenantCommand<TenantSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, TenantSettings settings, CancellationToken ct)
    {
        var queue = await client.PendingApprovalsAsync(ct);
        if (settings.Json)
        {
            Output.Json(Ctx, queue);
            return ExitCodes.Ok;
        }
        if (queue.Count == 0)
        {
            Ctx.Out.WriteLine($"No tool calls are waiting for a decision in tenant {tenant.Name}.");
            return ExitCodes.Ok;
        }
        var table = new Table().Title($"{queue.Count} waiting in tenant {Render.Esc(tenant.Name)}")
            .AddColumns("step", "agent", "tool", "arguments", "risk", "status", "requested", "why", "user asked");
        foreach (var a in queue)
        {
            table.AddRow(Ids.Short(a.StepId), Render.Esc(a.AgentName), Render.Esc(a.ToolName), Render.Esc(Render.Clip(a.Arguments, 50)),
                Render.Esc(a.RiskLevel ?? "-"), Render.Status(a.Status), Render.When(a.RequestedAt), Render.Esc(Render.Clip(a.Reason, 40)),
                Render.Esc(Render.Clip(a.UserMessage, 40)));
        }
        Ctx.Console.Write(table);
        Ctx.Console.MarkupLine("[dim]aos approve STEP [[--note TEXT]] runs a call; aos reject STEP [[--note TEXT]] refuses it.[/]");
        return ExitCodes.Ok;
    }
}

/// <summary>Options of aos approve and aos reject.</summary>
public sealed class DecideSettings : TenantSettings
{
    /// <summary>STEP.</summary>
    [CommandArgument(0, "<STEP>")]
    [Description("The waiting tool call's step id (or its first 8 characters; aos approvals lists them).")]
    public string Step { get; init; } = "";

    /// <summary>--note.</summary>
    [CommandOption("--note <TEXT>")]
    [Description("Why (kept with the decision).")]
    public string? Note { get; init; }
}

/// <summary>aos approve STEP.</summary>
public sealed class ApproveCommand : TenantCommand<DecideSettings>
{
    /// <inheritdoc />
    protected override Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, DecideSettings settings, CancellationToken ct) =>
        Decide.RunAsync(Ctx, tenant, client, settings, true, ct);
}

/// <summary>aos reject STEP.</summary>
public sealed class RejectCommand : TenantCommand<DecideSettings>
{
    /// <inheritdoc />
    protected override Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, DecideSettings settings, CancellationToken ct) =>
        Decide.RunAsync(Ctx, tenant, client, settings, false, ct);
}

internal static class Decide
{
    public static async Task<int> RunAsync(CliContext ctx, TenantRef tenant, AosClient client, DecideSettings settings, bool approve, CancellationToken ct)
    {
        var step = await Ids.ResolveAsync(client, AosIdKind.Step, settings.Step, ct, tenant);
        await client.ApproveStepAsync(step, approve, note: settings.Note, ct: ct);
        var word = approve ? "approved" : "rejected";
        if (settings.Json)
        {
            Output.Json(ctx, new { step_id = step, decision = word, note = settings.Note });
        }
        else
        {
            ctx.Out.WriteLine(approve ? $"Approved step {step}: the turn goes back to the queue and a worker runs the tool."
                                      : $"Rejected step {step}: the agent is told, and the turn goes on without the tool.");
        }
        return ExitCodes.Ok;
    }
}

/// <summary>Options of aos inject.</summary>
public sealed class InjectSettings : TenantSettings
{
    /// <summary>CONVERSATION.</summary>
    [CommandArgument(0, "<CONVERSATION>")]
    [Description("Conversation id (or its first 8 characters).")]
    public string Conversation { get; init; } = "";

    /// <summary>MESSAGE.</summary>
    [CommandArgument(1, "<MESSAGE>")]
    [Description("The message to add to the conversation.")]
    public string Message { get; init; } = "";

    /// <summary>--as.</summary>
    [CommandOption("--as <ROLE>")]
    [Description("system (an instruction the agent sees) or user.")]
    [DefaultValue("system")]
    public string As { get; init; } = "system";

    /// <inheritdoc />
    public override ValidationResult Validate() =>
        As is "system" or "user" ? ValidationResult.Success() : ValidationResult.Error($"--as must be system or user, not '{As}'");
}

/// <summary>aos inject.</summary>
public sealed class InjectCommand : TenantCommand<InjectSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, InjectSettings settings, CancellationToken ct)
    {
        var conv = await Ids.ResolveAsync(client, AosIdKind.Conversation, settings.Conversation, ct, tenant);
        var id = await client.InjectMessageAsync(conv, settings.Message, settings.As, ct: ct);
        if (settings.Json)
        {
            Output.Json(Ctx, new { step_id = id, conversation_id = conv, message_type = settings.As });
        }
        else
        {
            Ctx.Out.WriteLine($"Injected a {settings.As} message into conversation {conv} (step {id}).");
        }
        return ExitCodes.Ok;
    }
}

/// <summary>Options of aos override.</summary>
public sealed class OverrideSettings : TenantSettings
{
    /// <summary>TURN.</summary>
    [CommandArgument(0, "<TURN>")]
    [Description("Turn id (or its first 8 characters).")]
    public string Turn { get; init; } = "";

    /// <summary>TEXT.</summary>
    [CommandArgument(1, "<TEXT>")]
    [Description("The corrected answer.")]
    public string Text { get; init; } = "";

    /// <summary>--reason.</summary>
    [CommandOption("--reason <TEXT>")]
    [Description("Why the answer was replaced.")]
    public string? Reason { get; init; }
}

/// <summary>aos override.</summary>
public sealed class OverrideCommand : TenantCommand<OverrideSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, OverrideSettings settings, CancellationToken ct)
    {
        var turn = await Ids.ResolveAsync(client, AosIdKind.Turn, settings.Turn, ct, tenant);
        var id = await client.OverrideResponseAsync(turn, settings.Text, settings.Reason, ct: ct);
        if (settings.Json)
        {
            Output.Json(Ctx, new { step_id = id, turn_id = turn });
        }
        else
        {
            Ctx.Out.WriteLine($"Replaced the answer of turn {turn} (step {id}); the agent's original stays in the timeline.");
        }
        return ExitCodes.Ok;
    }
}

/// <summary>Options of aos pause.</summary>
public sealed class PauseSettings : TenantSettings
{
    /// <summary>CONVERSATION.</summary>
    [CommandArgument(0, "<CONVERSATION>")]
    [Description("Conversation id (or its first 8 characters).")]
    public string Conversation { get; init; } = "";

    /// <summary>--reason.</summary>
    [CommandOption("--reason <TEXT>")]
    [Description("Why it is paused.")]
    public string? Reason { get; init; }
}

/// <summary>aos pause.</summary>
public sealed class PauseCommand : TenantCommand<PauseSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, PauseSettings settings, CancellationToken ct)
    {
        var conv = await Ids.ResolveAsync(client, AosIdKind.Conversation, settings.Conversation, ct, tenant);
        await client.PauseConversationAsync(conv, settings.Reason, ct);
        if (settings.Json)
        {
            Output.Json(Ctx, new { conversation_id = conv, status = "paused" });
        }
        else
        {
            Ctx.Out.WriteLine($"Paused conversation {conv}: no worker takes its turns until aos resume {Ids.Short(conv)}.");
        }
        return ExitCodes.Ok;
    }
}

/// <summary>Options of aos resume.</summary>
public sealed class ResumeSettings : TenantSettings
{
    /// <summary>CONVERSATION.</summary>
    [CommandArgument(0, "<CONVERSATION>")]
    [Description("Conversation id (or its first 8 characters).")]
    public string Conversation { get; init; } = "";
}

/// <summary>aos resume.</summary>
public sealed class ResumeCommand : TenantCommand<ResumeSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, ResumeSettings settings, CancellationToken ct)
    {
        var conv = await Ids.ResolveAsync(client, AosIdKind.Conversation, settings.Conversation, ct, tenant);
        await client.ResumeConversationAsync(conv, ct);
        if (settings.Json)
        {
            Output.Json(Ctx, new { conversation_id = conv, status = "active" });
        }
        else
        {
            Ctx.Out.WriteLine($"Resumed conversation {conv}.");
        }
        return ExitCodes.Ok;
    }
}

/// <summary>Options of aos rate.</summary>
public sealed class RateSettings : TenantSettings
{
    /// <summary>TURN.</summary>
    [CommandArgument(0, "<TURN>")]
    [Description("Turn id (or its first 8 characters).")]
    public string Turn { get; init; } = "";

    /// <summary>SCORE.</summary>
    [CommandArgument(1, "<SCORE>")]
    [Description("1 (poor) to 5 (excellent).")]
    public string Score { get; init; } = "";

    /// <summary>--aspects.</summary>
    [CommandOption("--aspects <JSON>")]
    [Description("Scores per aspect as a JSON object, e.g. '{\"accuracy\": 4}'.")]
    public string? Aspects { get; init; }

    /// <inheritdoc />
    public override ValidationResult Validate() =>
        int.TryParse(Score, NumberStyles.None, CultureInfo.InvariantCulture, out var s) && s is >= 1 and <= 5
            ? ValidationResult.Success()
            : ValidationResult.Error($"SCORE must be a whole number from 1 to 5, not '{Score}'");
}

/// <summary>aos rate.</summary>
public sealed class RateCommand : TenantCommand<RateSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, RateSettings settings, CancellationToken ct)
    {
        var aspects = Render.ParseObject(settings.Aspects, "--aspects");
        var turn = await Ids.ResolveAsync(client, AosIdKind.Turn, settings.Turn, ct, tenant);
        var score = int.Parse(settings.Score, CultureInfo.InvariantCulture);
        var id = await client.RateTurnAsync(turn, score, aspects, ct: ct);
        if (settings.Json)
        {
            Output.Json(Ctx, new { observation_id = id, turn_id = turn, score });
        }
        else
        {
            Ctx.Out.WriteLine($"Rated turn {turn}: {score}/5.");
        }
        return ExitCodes.Ok;
    }
}

/// <summary>Options of aos flag.</summary>
public sealed class FlagSettings : TenantSettings
{
    /// <summary>TARGET.</summary>
    [CommandArgument(0, "<ID>")]
    [Description("What the flag is about: a step, turn or conversation id (or its first 8 characters).")]
    public string Target { get; init; } = "";

    /// <summary>REASON.</summary>
    [CommandArgument(1, "<REASON>")]
    [Description("What is wrong.")]
    public string Reason { get; init; } = "";

    /// <summary>--severity.</summary>
    [CommandOption("--severity <LEVEL>")]
    [Description("low, medium, high or critical.")]
    [DefaultValue("medium")]
    public string Severity { get; init; } = "medium";

    /// <inheritdoc />
    public override ValidationResult Validate() =>
        Severity is "low" or "medium" or "high" or "critical"
            ? ValidationResult.Success()
            : ValidationResult.Error($"--severity must be low, medium, high or critical, not '{Severity}'");
}

/// <summary>aos flag.</summary>
public sealed class FlagCommand : TenantCommand<FlagSettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, FlagSettings settings, CancellationToken ct)
    {
        var (kind, id) = await ResolveTargetAsync(client, tenant, settings.Target, ct);
        var observation = await client.FlagIssueAsync(settings.Severity, settings.Reason,
            stepId: kind == AosIdKind.Step ? id : null,
            turnId: kind == AosIdKind.Turn ? id : null,
            conversationId: kind == AosIdKind.Conversation ? id : null, ct: ct);
        var noun = Ids.Noun(kind);
        if (settings.Json)
        {
            Output.Json(Ctx, new { observation_id = observation, target = noun, target_id = id, severity = settings.Severity });
        }
        else
        {
            Ctx.Out.WriteLine($"Flagged {noun} {id} ({settings.Severity}).");
        }
        return ExitCodes.Ok;
    }

    /// <summary>Finds which kind of object an id (or prefix) names: a step, a turn or a conversation.</summary>
    private static async Task<(AosIdKind, Guid)> ResolveTargetAsync(AosClient client, TenantRef tenant, string text, CancellationToken ct)
    {
        var hex = text.Trim().Replace("-", "", StringComparison.Ordinal);
        if (hex.Length < 4 || hex.Length > 32 || !hex.All(Uri.IsHexDigit))
        {
            throw new CliException($"'{text}' is not an id", ExitCodes.Usage, "Give a step, turn or conversation id (or its first 8 characters).");
        }
        var found = new List<(AosIdKind, Guid)>();
        foreach (var kind in new[] { AosIdKind.Step, AosIdKind.Turn, AosIdKind.Conversation })
        {
            found.AddRange((await client.MatchIdPrefixAsync(kind, hex, 2, ct)).Select(g => (kind, g)));
        }
        return found.Count switch
        {
            1 => found[0],
            0 => throw new CliException($"no step, turn or conversation of tenant {tenant.Name} has the id {text}", ExitCodes.NotFound,
                "aos timeline CONVERSATION shows step and turn ids (pass --tenant for another tenant)."),
            _ => throw new CliException($"more than one step, turn or conversation has an id starting with {text}", ExitCodes.Usage,
                "Type more characters of the id."),
        };
    }
}
