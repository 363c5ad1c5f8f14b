using System.ComponentModel;
using System.Globalization;
using System.Text.Json.Nodes;
using PgAgentOS.Client;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PgAgentOS.Cli.Commands;

/// <summary>Options of aos stats.</summary>
public sealed class StatsSettings : TenantSettings
{
    /// <summary>AGENT.</summary>
    [CommandArgument(0, "[AGENT]")]
    [Description("One agent (name or id); without it, every agent of the tenant.")]
    public string? Agent { get; init; }

    /// <summary>--days.</summary>
    [CommandOption("--days <N>")]
    [Description("How many days back.")]
    [DefaultValue(7)]
    public int Days { get; init; } = 7;

    /// <inheritdoc />
    public override ValidationResult Validate() =>
        Days is < 1 or > 366 ? ValidationResult.Error("--days must be between 1 and 366") : ValidationResult.Success();
}

/// <summary>aos stats: the analytics of a tenant or one agent, as tables and bar charts.</summary>
public sealed class StatsCommand : TenantCommand<StatsSettings>
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <inheritdoc />
    protected override async Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, StatsSettings settings, CancellationToken ct)
    {
        if (settings.Agent is not null)
        {
            return await AgentAsync(tenant, client, settings, ct);
        }
        var overview = await client.DashboardOverviewAsync(ct) ?? [];
        var agents = await client.AgentStatsAsync(ct);
        var hourly = await client.HourlyActivityAsync(Math.Min(settings.Days, 2), ct);
        if (settings.Json)
        {
            Output.Json(Ctx, new { tenant = tenant.Name, overview, agents, hourly });
            return ExitCodes.Ok;
        }

        var head = new Table().Title($"tenant {Render.Esc(tenant.Name)}").AddColumns("agents", "conversations", "running", "queued",
            "waiting for approval", "turns (24 h)", "failed (24 h)", "tokens (24 h)", "cost (24 h)");
        head.AddRow(Str(overview, "active_agents"), Str(overview, "active_conversations"), Str(overview, "running_turns"), Str(overview, "queued_turns"),
            Str(overview, "pending_approvals"), Str(overview, "turns_24h"), Str(overview, "failed_24h"), Str(overview, "tokens_24h"),
            "$" + Str(overview, "cost_24h_usd"));
        Ctx.Console.Write(head);
        if (agents.Count == 0)
        {
            Ctx.Out.WriteLine("No agents yet.");
            return ExitCodes.Ok;
        }

        var table = new Table().Title("agents (all time)").AddColumns("agent", "conversations", "turns", "completed", "failed", "open",
            "success", "avg turn", "tokens", "cost", "last turn");
        foreach (var a in agents)
        {
            table.AddRow(Render.Esc(a.AgentName), Render.Num(a.Conversations), Render.Num(a.Turns), Render.Num(a.CompletedTurns),
                a.FailedTurns > 0 ? $"[red]{Render.Num(a.FailedTurns)}[/]" : "0", Render.Num(a.OpenTurns),
                a.SuccessRate is null ? "-" : a.SuccessRate.Value.ToString("0.0", Inv) + " %", Render.Ms(a.AvgTurnDurationMs),
                Render.Num(a.TotalTokens), Render.Usd(a.TotalCostUsd), Render.When(a.LastTurnAt));
        }
        Ctx.Console.Write(table);

        var turns = new BarChart().Label("turns per agent").Width(Math.Min(100, Ctx.Console.Profile.Width));
        var tokens = new BarChart().Label("tokens per agent").Width(Math.Min(100, Ctx.Console.Profile.Width));
        foreach (var a in agents.Take(15))
        {
            turns.AddItem(a.AgentName, a.Turns, Color.Green);
            tokens.AddItem(a.AgentName, a.TotalTokens, Color.Blue);
        }
        Ctx.Console.WriteLine();
        Ctx.Console.Write(turns);
        Ctx.Console.WriteLine();
        Ctx.Console.Write(tokens);
        if (hourly.Count > 0)
        {
            var hours = new BarChart().Label("turns per hour").Width(Math.Min(100, Ctx.Console.Profile.Width));
            foreach (var h in hourly.TakeLast(24))
            {
                hours.AddItem(Render.When(h.Hour)[..16], h.TurnCount, h.FailedTurns > 0 ? Color.Red : Color.Green);
            }
            Ctx.Console.WriteLine();
            Ctx.Console.Write(hours);
        }
        return ExitCodes.Ok;
    }

    private static async Task<int> AgentAsync(TenantRef tenant, AosClient client, StatsSettings settings, CancellationToken ct)
    {
        var id = await Ids.ResolveAsync(client, AosIdKind.Agent, settings.Agent!, ct, tenant);
        var analytics = await client.GetAgentAnalyticsAsync(id, settings.Days, ct);
        var name = (await client.GetAgentAsync(id, ct))?.Name ?? settings.Agent!;
        if (settings.Json)
        {
            analytics["agent"] = name;
            Output.Json(Ctx, analytics);
            return ExitCodes.Ok;
        }
        var table = new Table().Title($"agent {Render.Esc(name)} · last {settings.Days} days").HideHeaders().AddColumn("").AddColumn("");
        table.AddRow("conversations", Str(analytics, "total_conversations"));
        table.AddRow("turns", Str(analytics, "total_turns"));
        table.AddRow("completed", Str(analytics, "completed_turns"));
        table.AddRow("failed", Str(analytics, "failed_turns"));
        table.AddRow("success rate", Str(analytics, "success_rate") + " %");
        table.AddRow("average turn", Render.Ms(Dec(analytics, "avg_turn_duration_ms")));
        table.AddRow("tokens", Str(analytics, "total_tokens"));
        table.AddRow("cost", "$" + Str(analytics, "total_cost_usd"));
        table.AddRow("average rating", analytics["avg_rating"] is null ? "-" : Str(analytics, "avg_rating") + " / 5");
        Ctx.Console.Write(table);
        if (analytics["tool_usage"] is JsonObject tools && tools.Count > 0)
        {
            var chart = new BarChart().Label("tool calls").Width(Math.Min(100, Ctx.Console.Profile.Width));
            foreach (var (tool, n) in tools.OrderByDescending(kv => Dec(tools, kv.Key)))
            {
                chart.AddItem(tool, (double)(Dec(tools, tool) ?? 0), Color.Yellow);
            }
            Ctx.Console.WriteLine();
            Ctx.Console.Write(chart);
        }
        return ExitCodes.Ok;
    }

    private static decimal? Dec(JsonObject o, string key) =>
        o[key] is JsonValue v && decimal.TryParse(v.ToJsonString().Trim('"'), NumberStyles.Float, Inv, out var d) ? d : null;

    private static string Str(JsonObject o, string key) => o[key] switch
    {
        null => "0",
        JsonValue v when v.TryGetValue<string>(out var s) => Render.Esc(s),
        var n => Render.Esc(n.ToJsonString()),
    };
}
