using System.Text;
using System.Text.Json.Nodes;

namespace PgAgentOS.Bench;

/// <summary>
/// Step-sized content: about 500 bytes of JSON per step, the same for the plain table and for our
/// steps, made of varied words so that nothing is suspiciously compressible.
/// </summary>
internal static class Payloads
{
    private static readonly string[] Words =
    [
        "agent", "query", "result", "search", "the", "user", "asked", "about", "postgres", "queue", "lease", "tool", "answer",
        "because", "first", "then", "check", "docs", "version", "latency", "commit", "index", "tenant", "policy", "approve",
        "plan", "next", "call", "with", "from", "into", "row", "json", "value", "time", "budget", "token", "model", "reply",
        "summary", "source", "page", "link", "title", "snippet", "found", "three", "relevant", "and", "read", "more",
    ];

    /// <summary>Words up to about <paramref name="length"/> characters.</summary>
    public static string Text(Random rng, int length)
    {
        var sb = new StringBuilder(length + 16);
        while (sb.Length < length)
        {
            if (sb.Length > 0)
            {
                sb.Append(' ');
            }
            sb.Append(Words[rng.Next(Words.Length)]);
            if (rng.Next(12) == 0)
            {
                sb.Append(rng.Next(1000, 99999));
            }
        }
        return sb.ToString(0, length);
    }

    /// <summary>A row of the plain table: about 500 bytes of JSON shaped like a step.</summary>
    public static string RawRow(Random rng) => new JsonObject
    {
        ["type"] = "think",
        ["turn"] = rng.Next(1, 100000),
        ["reasoning"] = Text(rng, 440),
    }.ToJsonString();

    /// <summary>Thinking text of a model response.</summary>
    public static string Thinking(Random rng) => Text(rng, 440);

    /// <summary>Arguments of a web_search call.</summary>
    public static JsonObject SearchArgs(Random rng) => new() { ["query"] = Text(rng, 60) };

    /// <summary>Output of a web_search call (about 450 bytes).</summary>
    public static JsonObject SearchResult(Random rng) => new()
    {
        ["results"] = new JsonArray(
            new JsonObject { ["title"] = Text(rng, 30), ["url"] = "https://example.org/" + rng.Next(100000), ["snippet"] = Text(rng, 90) },
            new JsonObject { ["title"] = Text(rng, 30), ["url"] = "https://example.org/" + rng.Next(100000), ["snippet"] = Text(rng, 90) },
            new JsonObject { ["title"] = Text(rng, 30), ["url"] = "https://example.org/" + rng.Next(100000), ["snippet"] = Text(rng, 90) }),
    };

    /// <summary>The final answer of a turn.</summary>
    public static string Answer(Random rng) => Text(rng, 440);
}
