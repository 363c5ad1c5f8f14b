using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using PgAgentOS.Client;

namespace PgAgentOS.Runtime.Tools;

/// <summary>One approved tool call, with the ticket the kernel issued for it.</summary>
/// <param name="Turn">The turn's context.</param>
/// <param name="LeaseToken">The worker's lease.</param>
/// <param name="StepId">The tool_call step.</param>
/// <param name="CallId">The provider's call id.</param>
/// <param name="Name">Tool name (skill key).</param>
/// <param name="Arguments">Exactly the approved arguments.</param>
/// <param name="Skill">How the skill is implemented.</param>
/// <param name="Client">The worker's SDK client (worker login, no tenant binding: the lease decides).</param>
public sealed record ToolCall(TurnContext Turn, Guid LeaseToken, Guid StepId, string? CallId, string Name, JsonObject Arguments,
    SkillImplementation Skill, AosClient Client)
{
    /// <summary>The turn.</summary>
    public Guid TurnId => Turn.TurnId;
}

/// <summary>What a tool returned: an output (JSON), or an error the model will read.</summary>
public sealed record ToolResult(JsonNode? Output, bool Success = true, string? Error = null)
{
    /// <summary>A successful result.</summary>
    public static ToolResult Ok(JsonNode? output) => new(output);

    /// <summary>A failed result with a message for the model.</summary>
    public static ToolResult Fail(string error, JsonNode? output = null) => new(output, false, error);
}

/// <summary>A tool the worker can run.</summary>
public interface ITool
{
    /// <summary>Runs one approved call. Exceptions are recorded as a failed result.</summary>
    Task<ToolResult> RunAsync(ToolCall call, CancellationToken ct);
}

/// <summary>Checks tool arguments against the skill's JSON Schema before anything runs.</summary>
public static class ArgumentValidator
{
    private static readonly ConcurrentDictionary<string, JsonSchema> Cache = new(StringComparer.Ordinal);

    /// <summary>Null when the arguments are valid; otherwise what is wrong, for the model.</summary>
    public static string? Validate(JsonObject schema, JsonObject arguments)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(arguments);
        var text = schema.ToJsonString();
        JsonSchema compiled;
        try
        {
            compiled = Cache.GetOrAdd(text, t => JsonSchema.FromText(t));
        }
        catch (Exception e) when (e is JsonException or ArgumentException or InvalidOperationException or FormatException)
        {
            return $"the skill's JSON Schema is not usable: {e.Message}";
        }
        using var doc = JsonDocument.Parse(arguments.ToJsonString());
        var result = compiled.Evaluate(doc.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (result.IsValid)
        {
            return null;
        }
        var problems = new List<string>();
        foreach (var d in result.Details ?? [])
        {
            if (d.Errors is null)
            {
                continue;
            }
            foreach (var (keyword, message) in d.Errors)
            {
                var at = d.InstanceLocation.ToString();
                problems.Add($"{(string.IsNullOrEmpty(at) ? "/" : at)}: {message} ({keyword})");
            }
        }
        if (result.Errors is not null)
        {
            problems.AddRange(result.Errors.Select(kv => $"/: {kv.Value} ({kv.Key})"));
        }
        return "invalid arguments: " + (problems.Count == 0 ? "they do not match the tool's schema" : string.Join("; ", problems.Distinct().Take(10)));
    }
}
