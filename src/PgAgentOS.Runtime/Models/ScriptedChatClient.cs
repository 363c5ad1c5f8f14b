using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.AI;

namespace PgAgentOS.Runtime.Models;

/// <summary>
/// The deterministic stand-in model of provider "builtin" (builtin/scripted). It is NOT an AI: it
/// follows a script from the agent's config ("script": an array of responses) and fills
/// placeholders from the tool results it receives, so that demos and tests run offline.
/// <para>A response is {"thinking": "...", "tool_calls": [{"name": ..., "arguments": {...}}]} or
/// {"thinking": "...", "text": "... {{tool:web_search}} ..."}; optional "delay_ms" makes it slow
/// to answer and "chunk_delay_ms" paces the streamed pieces of its text,
/// and "repeat": true on the last response repeats it forever. Which response comes next is the
/// number of tool-calling responses since the last user message. Placeholders: {{tool:NAME}} (the
/// latest result of that tool), {{last_tool}}, {{user}}. Without a script it echoes, labelled.</para>
/// </summary>
public sealed partial class ScriptedChatClient : IChatClient
{
    /// <summary>Label every unscripted answer starts with.</summary>
    public const string EchoLabel = "[scripted stand-in, not an AI]";

    private readonly JsonElement? _script;
    private readonly ChatClientMetadata _metadata = new("pgagentos.scripted", null, "scripted");

    /// <summary>A stand-in following <paramref name="script"/> (a JSON array), or echoing when it is null.</summary>
    public ScriptedChatClient(JsonElement? script)
    {
        _script = script is { ValueKind: JsonValueKind.Array } s ? s.Clone() : null;
    }

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var list = messages.ToList();
        var step = Next(list);
        await DelayAsync(step, cancellationToken);
        var contents = new List<AIContent>();
        if (step.Thinking is not null)
        {
            contents.Add(new TextReasoningContent(step.Thinking));
        }
        contents.AddRange(step.Calls);
        if (step.Text is not null)
        {
            contents.Add(new TextContent(step.Text));
        }
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, contents))
        {
            ModelId = "scripted",
            FinishReason = step.Calls.Count > 0 ? ChatFinishReason.ToolCalls : ChatFinishReason.Stop,
            Usage = step.Usage,
        };
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var list = messages.ToList();
        var step = Next(list);
        await DelayAsync(step, cancellationToken);
        var id = "scripted-" + Guid.NewGuid().ToString("N")[..12];
        if (step.Thinking is not null)
        {
            yield return Update(id, new TextReasoningContent(step.Thinking));
        }
        if (step.Calls.Count > 0)
        {
            yield return new ChatResponseUpdate(ChatRole.Assistant, [.. step.Calls])
            {
                ResponseId = id, MessageId = id, ModelId = "scripted", FinishReason = ChatFinishReason.ToolCalls,
            };
        }
        if (step.Text is not null)
        {
            foreach (var chunk in Chunks(step.Text))
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (step.ChunkDelayMs > 0)
                {
                    await Task.Delay(step.ChunkDelayMs, cancellationToken);
                }
                else
                {
                    await Task.Yield();
                }
                yield return Update(id, new TextContent(chunk));
            }
        }
        yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(step.Usage)])
        {
            ResponseId = id, MessageId = id, ModelId = "scripted",
            FinishReason = step.Calls.Count > 0 ? ChatFinishReason.ToolCalls : ChatFinishReason.Stop,
        };
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType == typeof(ChatClientMetadata) ? _metadata
        : serviceKey is null && serviceType.IsInstanceOfType(this) ? this
        : null;

    /// <inheritdoc />
    public void Dispose()
    {
    }

    /// <summary>Splits a text into pieces of a few words (at least two pieces when it has two characters).</summary>
    public static IEnumerable<string> Chunks(string text)
    {
        if (text.Length < 2)
        {
            yield return text;
            yield break;
        }
        var size = Math.Clamp(text.Length / 6, 1, 24);
        var start = 0;
        while (start < text.Length)
        {
            var end = Math.Min(text.Length, start + size);
            while (end < text.Length && end - start < size * 2 && !char.IsWhiteSpace(text[end - 1]))
            {
                end++;
            }
            if (end < text.Length && char.IsHighSurrogate(text[end - 1]))
            {
                end++;
            }
            yield return text[start..end];
            start = end;
        }
    }

    private static ChatResponseUpdate Update(string id, AIContent content) =>
        new(ChatRole.Assistant, [content]) { ResponseId = id, MessageId = id, ModelId = "scripted" };

    private static async Task DelayAsync(Step step, CancellationToken ct)
    {
        if (step.DelayMs > 0)
        {
            await Task.Delay(step.DelayMs, ct);
        }
    }

    private sealed record Step(string? Thinking, List<FunctionCallContent> Calls, string? Text, int DelayMs, UsageDetails Usage, int ChunkDelayMs = 0);

    private Step Next(List<ChatMessage> messages)
    {
        var lastUser = messages.FindLastIndex(m => m.Role == ChatRole.User);
        var userText = lastUser >= 0 ? messages[lastUser].Text : "";
        var index = messages.Skip(lastUser + 1).Count(m => m.Role == ChatRole.Assistant && m.Contents.OfType<FunctionCallContent>().Any());
        var inputChars = messages.Sum(m => m.Text?.Length ?? 0) + messages.Sum(m => m.Contents.OfType<FunctionResultContent>().Sum(r => r.Result?.ToString()?.Length ?? 0));

        JsonElement? entry = null;
        if (_script is { } script)
        {
            var n = script.GetArrayLength();
            if (index < n)
            {
                entry = script[index];
            }
            else if (n > 0 && script[n - 1].ValueKind == JsonValueKind.Object && script[n - 1].TryGetProperty("repeat", out var rep)
                     && rep.ValueKind == JsonValueKind.True)
            {
                entry = script[n - 1];
            }
        }

        string? thinking = null;
        string? text;
        var calls = new List<FunctionCallContent>();
        var delay = 0;
        var chunkDelay = 0;
        if (entry is { ValueKind: JsonValueKind.Object } e)
        {
            if (e.TryGetProperty("thinking", out var t) && t.ValueKind == JsonValueKind.String)
            {
                thinking = Fill(t.GetString()!, messages, userText);
            }
            if (e.TryGetProperty("delay_ms", out var d) && d.TryGetInt32(out var ms))
            {
                delay = Math.Clamp(ms, 0, 600000);
            }
            if (e.TryGetProperty("chunk_delay_ms", out var cd) && cd.TryGetInt32(out var cms))
            {
                chunkDelay = Math.Clamp(cms, 0, 60000);
            }
            if (e.TryGetProperty("tool_calls", out var tc) && tc.ValueKind == JsonValueKind.Array)
            {
                foreach (var c in tc.EnumerateArray())
                {
                    if (c.ValueKind != JsonValueKind.Object || !c.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String)
                    {
                        continue;
                    }
                    var args = new Dictionary<string, object?>(StringComparer.Ordinal);
                    if (c.TryGetProperty("arguments", out var a) && a.ValueKind == JsonValueKind.Object)
                    {
                        foreach (var p in a.EnumerateObject())
                        {
                            args[p.Name] = p.Value.ValueKind == JsonValueKind.String
                                ? JsonSerializer.SerializeToElement(Fill(p.Value.GetString()!, messages, userText))
                                : p.Value.Clone();
                        }
                    }
                    calls.Add(new FunctionCallContent("call_" + Guid.NewGuid().ToString("N")[..20], name.GetString()!, args));
                }
            }
            text = e.TryGetProperty("text", out var x) && x.ValueKind == JsonValueKind.String ? Fill(x.GetString()!, messages, userText) : null;
            if (calls.Count == 0 && text is null)
            {
                text = "";
            }
        }
        else if (_script is not null)
        {
            text = $"{EchoLabel} The script has no more responses.";
        }
        else
        {
            text = $"{EchoLabel} You said: {userText}";
        }
        if (calls.Count > 0)
        {
            text = null;
        }
        var outputChars = (thinking?.Length ?? 0) + (text?.Length ?? 0) + calls.Sum(c => c.Name.Length + 16);
        var usage = new UsageDetails
        {
            InputTokenCount = Math.Max(1, inputChars / 4),
            OutputTokenCount = Math.Max(1, outputChars / 4),
        };
        usage.TotalTokenCount = usage.InputTokenCount + usage.OutputTokenCount;
        return new Step(thinking, calls, text, delay, usage, chunkDelay);
    }

    private static string Fill(string template, List<ChatMessage> messages, string userText)
    {
        if (!template.Contains("{{", StringComparison.Ordinal))
        {
            return template;
        }
        // latest result of each tool, by the name of the call it answers
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        var latest = new Dictionary<string, string>(StringComparer.Ordinal);
        string? last = null;
        foreach (var m in messages)
        {
            foreach (var c in m.Contents)
            {
                if (c is FunctionCallContent call)
                {
                    names[call.CallId] = call.Name;
                }
                else if (c is FunctionResultContent r)
                {
                    var value = r.Result switch
                    {
                        null => "null",
                        string s => s,
                        JsonElement je => je.ValueKind == JsonValueKind.String ? je.GetString()! : je.GetRawText(),
                        _ => JsonSerializer.Serialize(r.Result),
                    };
                    if (names.TryGetValue(r.CallId, out var n))
                    {
                        latest[n] = value;
                    }
                    last = value;
                }
            }
        }
        return Placeholder().Replace(template, m =>
        {
            var key = m.Groups[1].Value.Trim();
            if (key == "user")
            {
                return userText;
            }
            if (key == "last_tool")
            {
                return last ?? "(no tool result)";
            }
            if (key.StartsWith("tool:", StringComparison.Ordinal))
            {
                return latest.TryGetValue(key[5..].Trim(), out var v) ? v : $"(no result of {key[5..].Trim()})";
            }
            return m.Value;
        });
    }

    [GeneratedRegex(@"\{\{\s*([^{}]+?)\s*\}\}")]
    private static partial Regex Placeholder();
}
