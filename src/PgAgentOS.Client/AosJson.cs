using System.Text.Json;
using System.Text.Json.Serialization;

namespace PgAgentOS.Client;

/// <summary>JSON conventions of the kernel (snake_case).</summary>
public static class AosJson
{
    /// <summary>Serializer options matching the kernel's JSON.</summary>
    public static JsonSerializerOptions Options { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        PropertyNameCaseInsensitive = true,
        NumberHandling = JsonNumberHandling.AllowReadingFromString,
    };
}
