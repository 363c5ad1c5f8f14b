using System.Text.Json;
using System.Text.Json.Serialization;
using Spectre.Console;

namespace PgAgentOS.Cli;

/// <summary>JSON output for scripts, and progress for people.</summary>
public static class Output
{
    private static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private static readonly JsonSerializerOptions LineOptions = new(Options) { WriteIndented = false };

    /// <summary>Writes a value as indented JSON on standard output.</summary>
    public static void Json(CliContext ctx, object value)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.Out.WriteLine(JsonSerializer.Serialize(value, Options));
        ctx.Out.Flush();
    }

    /// <summary>Writes a value as one line of JSON (a stream of events: one object per line).</summary>
    public static void JsonLine(CliContext ctx, object value)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.Out.WriteLine(JsonSerializer.Serialize(value, LineOptions));
        ctx.Out.Flush();
    }

    /// <summary>Progress messages go to standard error, only when a person is watching and no JSON is asked for.</summary>
    public static IProgress<string>? Progress(CliContext ctx, bool json)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        return json ? null : new SyncProgress(m => { ctx.Err.WriteLine($"  {m} ..."); ctx.Err.Flush(); });
    }

    /// <summary>
    /// Runs work that may take a while: with a spinner on a terminal, plainly otherwise (scripts
    /// and JSON output get no decoration).
    /// </summary>
    public static async Task<T> WithStatusAsync<T>(CliContext ctx, bool json, string message, Func<Task<T>> work)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentNullException.ThrowIfNull(work);
        if (json || !ctx.IsTerminal || !ctx.Console.Profile.Capabilities.Interactive)
        {
            return await work();
        }
        return await ctx.Console.Status().Spinner(Spinner.Known.Dots).StartAsync(Markup.Escape(message), _ => work());
    }

    private sealed class SyncProgress(Action<string> report) : IProgress<string>
    {
        public void Report(string value) => report(value);
    }
}
