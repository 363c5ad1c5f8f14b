using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using PgAgentOS.Client;
using Spectre.Console;

namespace PgAgentOS.Cli;

/// <summary>How values look in a terminal: times, ids, steps, colours (dropped when not on a terminal).</summary>
public static class Render
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Markup-escaped text.</summary>
    public static string Esc(string? s) => Markup.Escape(s ?? "");

    /// <summary>Time of day, local.</summary>
    public static string Time(DateTimeOffset t) => t.ToLocalTime().ToString("HH:mm:ss", Inv);

    /// <summary>Date and time, local.</summary>
    public static string When(DateTimeOffset? t) => t is null ? "-" : t.Value.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", Inv);

    /// <summary>A number with thousands separators.</summary>
    public static string Num(long n) => n.ToString("#,0", Inv);

    /// <summary>USD.</summary>
    public static string Usd(decimal d) => "$" + d.ToString("0.0000", Inv);

    /// <summary>Milliseconds as a short duration.</summary>
    public static string Ms(decimal? ms) => ms switch
    {
        null => "-",
        < 1000 => ms.Value.ToString("0", Inv) + " ms",
        < 60000 => (ms.Value / 1000).ToString("0.0", Inv) + " s",
        _ => (ms.Value / 60000).ToString("0.0", Inv) + " min",
    };

    /// <summary>At most <paramref name="max"/> characters on one line.</summary>
    public static string Clip(string? s, int max)
    {
        if (string.IsNullOrEmpty(s))
        {
            return "";
        }
        var one = string.Join(' ', s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        return one.Length <= max ? one : one[..Math.Max(0, max - 1)] + "…";
    }

    /// <summary>The colour of a step type.</summary>
    public static string Colour(string stepType) => stepType switch
    {
        "user_message" => "blue",
        "think" => "grey",
        "tool_call" => "yellow",
        "tool_result" => "cyan",
        "respond" => "green",
        "error" => "red",
        _ => "magenta",
    };

    /// <summary>A status with a colour.</summary>
    public static string Status(string status) => status switch
    {
        "completed" or "approved" or "active" or "succeeded" => $"[green]{Esc(status)}[/]",
        "pending" or "needs_review" or "waiting_tool" or "waiting_human" or "queued" or "paused" => $"[yellow]{Esc(status)}[/]",
        "failed" or "rejected" or "dead" or "cancelled" or "abandoned" => $"[red]{Esc(status)}[/]",
        _ => Esc(status),
    };

    /// <summary>Words for a step type.</summary>
    public static string Label(string stepType) => stepType switch
    {
        "user_message" => "user",
        "think" => "thinking",
        "tool_call" => "tool call",
        "tool_result" => "tool result",
        "respond" => "answer",
        _ => stepType,
    };

    /// <summary>One line for a step in a live view.</summary>
    public static string StepLine(StepRow s, bool withAgent)
    {
        ArgumentNullException.ThrowIfNull(s);
        var who = withAgent ? $"{Esc(s.AgentName)} {Ids.Short(s.ConversationId)}#{s.TurnNumber} " : "";
        var status = s.StepType == "tool_call" || s.Status != "completed" ? " " + Status(s.Status) : "";
        return $"[dim]{Time(s.CreatedAt)}[/] {who}[{Colour(s.StepType)}]{Esc(Label(s.StepType)),-11}[/]{status} {Esc(Clip(s.Summary, 160))} [dim]{Ids.Short(s.StepId)}[/]";
    }

    /// <summary>A JSON object given on the command line, or a usage error naming the option.</summary>
    public static JsonObject? ParseObject(string? text, string option)
    {
        if (text is null)
        {
            return null;
        }
        try
        {
            return JsonNode.Parse(text) as JsonObject
                ?? throw new CliException($"{option} must be a JSON object, like {{\"key\": \"value\"}}", ExitCodes.Usage);
        }
        catch (JsonException e)
        {
            throw new CliException($"{option} is not valid JSON: {e.Message}", ExitCodes.Usage, "Quote it for the shell: '{\"key\": \"value\"}'.");
        }
    }

    /// <summary>A comma-separated list.</summary>
    public static string[] List(string? text) =>
        text is null ? [] : text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Writes a markup line on the console.</summary>
    public static void Line(CliContext ctx, string markup)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.Console.MarkupLine(markup);
    }
}
