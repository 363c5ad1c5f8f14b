using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using PgAgentOS.Client;

namespace PgAgentOS.Runtime.Models;

/// <summary>
/// Turns the kernel's context of a turn into Microsoft.Extensions.AI messages and options. Only
/// text, tool calls and tool results are produced: nothing in the history is ever turned into an
/// approval (RELIABILITY S4) — approvals come from the kernel alone.
/// </summary>
public static class ChatMessageBuilder
{
    /// <summary>System prompt, then the history (user, assistant with tool calls, tool results).</summary>
    public static List<ChatMessage> Build(TurnContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        var messages = new List<ChatMessage>();
        if (!string.IsNullOrWhiteSpace(ctx.SystemPrompt))
        {
            messages.Add(new ChatMessage(ChatRole.System, ctx.SystemPrompt));
        }
        foreach (var m in ctx.Messages)
        {
            switch (m.Role)
            {
                case "system":
                    messages.Add(new ChatMessage(ChatRole.System, m.Content ?? ""));
                    break;
                case "user":
                    messages.Add(new ChatMessage(ChatRole.User, m.Content ?? ""));
                    break;
                case "assistant":
                    var contents = new List<AIContent>();
                    if (!string.IsNullOrEmpty(m.Content))
                    {
                        contents.Add(new TextContent(m.Content));
                    }
                    foreach (var call in m.ToolCalls ?? [])
                    {
                        contents.Add(new FunctionCallContent(call.Id, call.Function.Name, ParseArguments(call.Function.Arguments)));
                    }
                    if (contents.Count > 0)
                    {
                        messages.Add(new ChatMessage(ChatRole.Assistant, contents));
                    }
                    break;
                case "tool":
                    messages.Add(new ChatMessage(ChatRole.Tool, [new FunctionResultContent(m.ToolCallId ?? "", m.Content ?? "")]));
                    break;
                default:
                    messages.Add(new ChatMessage(new ChatRole(m.Role), m.Content ?? ""));
                    break;
            }
        }
        return messages;
    }

    /// <summary>Options of the call: model, tools as declarations (never invocable here), parameters.</summary>
    public static ChatOptions Options(TurnContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        var options = new ChatOptions { ModelId = ctx.Model?.Name };
        if (ctx.Tools.Count > 0)
        {
            options.Tools = [.. ctx.Tools.Select(t => (AITool)AIFunctionFactory.CreateDeclaration(
                t.Function.Name, t.Function.Description, t.Function.Parameters))];
            options.ToolMode = ChatToolMode.Auto;
        }
        if (Number(ctx.Params, "temperature") is { } temperature)
        {
            options.Temperature = (float)temperature;
        }
        if (Number(ctx.Params, "top_p") is { } topP)
        {
            options.TopP = (float)topP;
        }
        if (Number(ctx.Params, "max_tokens") is { } maxTokens && maxTokens >= 1)
        {
            options.MaxOutputTokens = (int)Math.Min(maxTokens, int.MaxValue);
        }
        return options;
    }

    /// <summary>Tool-call arguments (a JSON object in text) as the dictionary M.E.AI carries.</summary>
    public static Dictionary<string, object?> ParseArguments(string? json)
    {
        var result = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (string.IsNullOrWhiteSpace(json))
        {
            return result;
        }
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in doc.RootElement.EnumerateObject())
                {
                    result[p.Name] = p.Value.Clone();
                }
            }
        }
        catch (JsonException)
        {
            // arguments that are not JSON are passed on as they came
            result["_raw"] = json;
        }
        return result;
    }

    /// <summary>M.E.AI arguments back to a JSON object.</summary>
    public static JsonObject ArgumentsToJson(IDictionary<string, object?>? arguments)
    {
        var o = new JsonObject();
        if (arguments is null)
        {
            return o;
        }
        foreach (var (k, v) in arguments)
        {
            o[k] = v switch
            {
                null => null,
                JsonNode n => n.DeepClone(),
                JsonElement e => JsonNode.Parse(e.GetRawText()),
                _ => JsonSerializer.SerializeToNode(v, v.GetType()),
            };
        }
        return o;
    }

    private static double? Number(JsonObject p, string key) =>
        p.TryGetPropertyValue(key, out var n) && n is JsonValue v && v.GetValueKind() == JsonValueKind.Number
            ? double.Parse(v.ToJsonString(), CultureInfo.InvariantCulture)
            : null;
}
