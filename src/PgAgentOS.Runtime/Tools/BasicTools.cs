using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using PgAgentOS.Client;

namespace PgAgentOS.Runtime.Tools;

/// <summary>clock: the current time in UTC and, if asked, in a time zone.</summary>
public sealed class ClockTool(TimeProvider? time = null) : ITool
{
    /// <inheritdoc />
    public Task<ToolResult> RunAsync(ToolCall call, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(call);
        var now = (time ?? TimeProvider.System).GetUtcNow();
        var output = new JsonObject
        {
            ["utc"] = now.ToString("O", CultureInfo.InvariantCulture),
            ["unix"] = now.ToUnixTimeSeconds(),
        };
        if (call.Arguments["timezone"] is JsonValue tzValue && tzValue.TryGetValue<string>(out var tz) && !string.IsNullOrWhiteSpace(tz))
        {
            TimeZoneInfo zone;
            try
            {
                zone = TimeZoneInfo.FindSystemTimeZoneById(tz);
            }
            catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
            {
                return Task.FromResult(ToolResult.Fail($"unknown time zone {tz}; use an IANA name such as Europe/Paris"));
            }
            output["timezone"] = zone.Id;
            output["local"] = TimeZoneInfo.ConvertTime(now, zone).ToString("O", CultureInfo.InvariantCulture);
        }
        return Task.FromResult(ToolResult.Ok(output));
    }
}

/// <summary>memory_read: a memory of the agent by key, or its keys.</summary>
public sealed class MemoryReadTool : ITool
{
    /// <inheritdoc />
    public async Task<ToolResult> RunAsync(ToolCall call, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(call);
        var key = call.Arguments["key"] is JsonValue v && v.TryGetValue<string>(out var k) ? k : null;
        return ToolResult.Ok(await call.Client.TurnMemoryReadAsync(call.TurnId, call.LeaseToken, string.IsNullOrEmpty(key) ? null : key, ct));
    }
}

/// <summary>memory_write: stores a value under a key in the agent's memory.</summary>
public sealed class MemoryWriteTool : ITool
{
    /// <inheritdoc />
    public async Task<ToolResult> RunAsync(ToolCall call, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(call);
        var key = call.Arguments["key"]?.GetValue<string>() ?? "";
        var value = call.Arguments["value"]?.DeepClone() ?? JsonValue.Create((string?)null) ?? (JsonNode)new JsonObject();
        var id = await call.Client.TurnMemoryWriteAsync(call.TurnId, call.LeaseToken, key, value, ct);
        return ToolResult.Ok(new JsonObject { ["stored"] = key, ["memory_id"] = id.ToString() });
    }
}

/// <summary>
/// sql_query: one read-only query as the turn's tenant (row-level security applies), through
/// <see cref="AosClient.QueryAsTurnTenantAsync"/>: a READ ONLY transaction bound to the tenant,
/// role aos_analytics, a statement timeout, a row and byte limit, always rolled back.
/// </summary>
public sealed class SqlQueryTool : ITool
{
    /// <inheritdoc />
    public async Task<ToolResult> RunAsync(ToolCall call, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(call);
        var sql = call.Arguments["sql"]?.GetValue<string>() ?? "";
        var maxRows = call.Arguments["max_rows"] is JsonValue m && m.TryGetValue<int>(out var n) ? n : 100;
        var timeout = TimeSpan.FromMilliseconds(Math.Max(500, call.Skill.TimeoutMs - 1000));
        var r = await call.Client.QueryAsTurnTenantAsync(call.TurnId, call.LeaseToken, sql, Math.Clamp(maxRows, 1, 1000), timeout, 262144, ct);
        if (r.Error is not null)
        {
            return ToolResult.Fail("the query failed: " + r.Error);
        }
        return ToolResult.Ok(new JsonObject
        {
            ["columns"] = new JsonArray([.. r.Columns.Select(c => (JsonNode?)JsonValue.Create(c))]),
            ["rows"] = r.Rows.DeepClone(),
            ["row_count"] = r.Rows.Count,
            ["truncated"] = r.Truncated,
        });
    }
}

/// <summary>
/// web_search through a backend configured in the environment: a SearXNG instance
/// (AOS_SEARXNG_URL, JSON format enabled). Without one it returns a clear error.
/// </summary>
public sealed class WebSearchTool(string? searxngUrl, HttpClient? http = null) : ITool
{
    private readonly HttpClient _http = http ?? new HttpClient { Timeout = TimeSpan.FromSeconds(20) };

    /// <inheritdoc />
    public async Task<ToolResult> RunAsync(ToolCall call, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(call);
        if (string.IsNullOrWhiteSpace(searxngUrl))
        {
            return ToolResult.Fail("web_search has no search backend configured: the worker's operator sets AOS_SEARXNG_URL "
                                   + "to a SearXNG instance (with the json format enabled)");
        }
        var query = call.Arguments["query"]?.GetValue<string>() ?? "";
        var max = call.Arguments["max_results"] is JsonValue v && v.TryGetValue<int>(out var n) ? Math.Clamp(n, 1, 20) : 5;
        var url = searxngUrl.TrimEnd('/') + "/search?format=json&q=" + Uri.EscapeDataString(query);
        using var response = await _http.GetAsync(new Uri(url), ct);
        if (!response.IsSuccessStatusCode)
        {
            return ToolResult.Fail($"the search backend answered {(int)response.StatusCode} {response.ReasonPhrase}");
        }
        var doc = await response.Content.ReadFromJsonAsync<JsonObject>(ct);
        var results = new JsonArray();
        foreach (var r in (doc?["results"] as JsonArray ?? []).Take(max))
        {
            results.Add(new JsonObject
            {
                ["title"] = r?["title"]?.GetValue<string>(),
                ["url"] = r?["url"]?.GetValue<string>(),
                ["snippet"] = r?["content"]?.GetValue<string>(),
            });
        }
        return ToolResult.Ok(new JsonObject { ["query"] = query, ["backend"] = "searxng", ["results"] = results });
    }
}

/// <summary>Reads a JSON value of a tool's arguments as text.</summary>
internal static class JsonArgs
{
    public static string? Text(this JsonObject args, string name) =>
        args[name] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;
}
