using System.Text.Json;
using System.Text.Json.Serialization;

namespace PgAgentOS.Cli;

/// <summary>JSON output for scripts.</summary>
public static class Output
{
    private static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Writes a value as indented JSON on standard output.</summary>
    public static void Json(CliContext ctx, object value)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.Out.WriteLine(JsonSerializer.Serialize(value, Options));
        ctx.Out.Flush();
    }

    /// <summary>Progress messages go to standard error, only when a person is watching and no JSON is asked for.</summary>
    public static IProgress<string>? Progress(CliContext ctx, bool json)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        return json ? null : new SyncProgress(m => { ctx.Err.WriteLine($"  {m} ..."); ctx.Err.Flush(); });
    }

    private sealed class SyncProgress(Action<string> report) : IProgress<string>
    {
        public void Report(string value) => report(value);
    }
}
