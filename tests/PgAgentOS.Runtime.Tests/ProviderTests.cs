using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace PgAgentOS.Runtime.Tests;

/// <summary>
/// Each provider through its real client library against a local server speaking its wire format:
/// a first request that answers with a tool call, a second (with the tool result) that answers
/// with text, both streamed.
/// </summary>
public sealed class ProviderTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    private static readonly JsonObject AutoClock = new() { ["auto_approve_tools"] = true };

    private static string J(object o) => JsonSerializer.Serialize(o);

    // ---------------------------------------------------------------------------------------------
    // OpenAI chat completions (also Google's and other OpenAI-compatible endpoints)
    // ---------------------------------------------------------------------------------------------
    private static Task<LocalServer> OpenAiServerAsync(int failFirst = 0, int status = 429, bool failAlways = false) =>
        LocalServer.StartAsync((app, server) =>
        {
            var calls = 0;
            app.MapPost("/v1/chat/completions", async (HttpContext ctx) =>
            {
                var n = Interlocked.Increment(ref calls);
                if (failAlways || n <= failFirst)
                {
                    ctx.Response.StatusCode = status;
                    await ctx.Response.WriteAsJsonAsync(new { error = new { message = $"upstream says no ({status})", type = "server_error", code = "busy" } });
                    return;
                }
                var body = server.Requests.Last(r => r.Path.StartsWith("/v1/chat", StringComparison.Ordinal)).Body!;
                var model = (string)body["model"]!;
                var afterTool = body["messages"]!.AsArray().Last()!["role"]!.GetValue<string>() == "tool";
                var stream = body["stream"]?.GetValue<bool>() == true;
                object Chunk(object delta, string? finish) => new
                {
                    id = "chatcmpl-1", @object = "chat.completion.chunk", created = 1, model,
                    choices = new[] { new { index = 0, delta, finish_reason = finish } },
                };
                var usage = new { prompt_tokens = afterTool ? 40 : 30, completion_tokens = afterTool ? 12 : 8, total_tokens = afterTool ? 52 : 38 };
                if (!stream)
                {
                    ctx.Response.StatusCode = 400;
                    await ctx.Response.WriteAsJsonAsync(new { error = new { message = "this test server only streams" } });
                    return;
                }
                var events = new List<(string?, string)>();
                if (!afterTool)
                {
                    events.Add((null, J(Chunk(new { role = "assistant", content = (string?)null, tool_calls = new[] { new { index = 0, id = "call_oa1", type = "function", function = new { name = "clock", arguments = "" } } } }, null))));
                    events.Add((null, J(Chunk(new { tool_calls = new[] { new { index = 0, function = new { arguments = "{\"timezone\":" } } } }, null))));
                    events.Add((null, J(Chunk(new { tool_calls = new[] { new { index = 0, function = new { arguments = "\"UTC\"}" } } } }, null))));
                    events.Add((null, J(Chunk(new { }, "tool_calls"))));
                }
                else
                {
                    events.Add((null, J(Chunk(new { role = "assistant", content = "It is " }, null))));
                    events.Add((null, J(Chunk(new { content = "time for " }, null))));
                    events.Add((null, J(Chunk(new { content = "tea." }, null))));
                    events.Add((null, J(Chunk(new { }, "stop"))));
                }
                events.Add((null, J(new { id = "chatcmpl-1", @object = "chat.completion.chunk", created = 1, model, choices = Array.Empty<object>(), usage })));
                events.Add((null, "[DONE]"));
                await LocalServer.WriteSseAsync(ctx.Response, events);
            });
        });

    [Theory]
    [InlineData("openai", "openai/gpt-4o-mini")]
    [InlineData("google", "google/gemini-2.5-flash")]
    [InlineData("openai_compatible", "openai_compatible/local-model")]
    public async Task OpenAiWireFormatWithToolCallsAndStreaming(string provider, string model)
    {
        await using var server = await OpenAiServerAsync();
        if (provider == "openai_compatible")
        {
            await using var su = await db.OpenAsync(null);
            await su.ExecAsync("""
                INSERT INTO aos_meta.llm_model_registry (provider, model_name, context_window, max_output_tokens, input_price_per_mtok, output_price_per_mtok)
                VALUES ('openai_compatible', 'local-model', 32768, 4096, 1, 2) ON CONFLICT DO NOTHING
                """);
        }
        var t = await Kit.TenantAsync(db, provider, ["clock"], AutoClock, model);
        var (_, turn) = await t.AskAsync("what time is it?");
        var baseUrl = server.BaseUri + "v1";
        var options = Kit.Options("w-" + provider) with
        {
            TenantId = t.Tenant,
            Providers = new ProviderSettings
            {
                OpenAiApiKey = "sk-test-openai", OpenAiBaseUrl = baseUrl,
                GoogleApiKey = "g-test", GoogleBaseUrl = baseUrl,
                OpenAiCompatibleUrl = baseUrl, OpenAiCompatibleKey = "compat-key",
            },
        };
        await using var host = new WorkerHost(t.WorkerSource, options);
        await host.RunUntilIdleAsync(CancellationToken.None);

        var state = await t.App.GetTurnStateAsync(turn);
        Assert.Equal("completed", (string)state["status"]!);
        Assert.Equal("It is time for tea.", (string)state["assistant_message"]!);
        Assert.Equal(["user_message", "tool_call", "tool_result", "respond"], await t.StepTypesAsync(turn));
        Assert.Equal(38 + 52, (long)state["tokens_used"]!);
        Assert.True((decimal)state["cost_usd"]! > 0, "the kernel prices the usage from the registry");

        var calls = server.Requests.Where(r => r.Path == "/v1/chat/completions").ToList();
        Assert.Equal(2, calls.Count);
        var expectedKey = provider switch { "openai" => "sk-test-openai", "google" => "g-test", _ => "compat-key" };
        Assert.All(calls, c => Assert.Equal("Bearer " + expectedKey, c.Headers["Authorization"]));
        Assert.Equal(model.Split('/')[1], (string)calls[0].Body!["model"]!);
        Assert.True(calls[0].Body!["stream"]!.GetValue<bool>());
        Assert.Equal("clock", (string)calls[0].Body!["tools"]![0]!["function"]!["name"]!);
        Assert.Equal("system", (string)calls[0].Body!["messages"]![0]!["role"]!);
        var toolMessage = calls[1].Body!["messages"]!.AsArray().Last()!;
        Assert.Equal("call_oa1", (string)toolMessage["tool_call_id"]!);
        Assert.Contains("utc", (string)toolMessage["content"]!, StringComparison.Ordinal);
        var step = (await t.StepsAsync(turn)).Single(s => (string)s!["step_type"]! == "tool_call")!;
        Assert.Equal("UTC", (string)step["content"]!["arguments"]!["timezone"]!);
    }

    [Fact]
    public async Task RateLimitsAndServerErrorsAreRetried()
    {
        await using var server = await OpenAiServerAsync(failFirst: 2, status: 429);
        var t = await Kit.TenantAsync(db, "retry", ["clock"], AutoClock, "openai/gpt-4o-mini");
        var (_, turn) = await t.AskAsync("hi");
        var errors = new List<WorkerEvent>();
        await using var host = new WorkerHost(t.WorkerSource, Kit.Options("w-retry") with
        {
            TenantId = t.Tenant,
            Providers = new ProviderSettings { OpenAiApiKey = "k", OpenAiBaseUrl = server.BaseUri + "v1" },
        });
        host.Event += e =>
        {
            if (e.Kind == WorkerEventKind.Error)
            {
                lock (errors)
                {
                    errors.Add(e);
                }
            }
        };
        await host.RunUntilIdleAsync(CancellationToken.None);
        Assert.Equal("completed", await t.StatusAsync(turn));
        Assert.Equal(4, server.Requests.Count(r => r.Path == "/v1/chat/completions"));
        Assert.Equal(2, errors.Count(e => e.Message.Contains("attempt", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task AProviderThatKeepsFailingFailsTheTurnWithItsMessage()
    {
        await using var server = await OpenAiServerAsync(status: 503, failAlways: true);
        var t = await Kit.TenantAsync(db, "down", ["clock"], AutoClock, "openai/gpt-4o-mini");
        var (_, turn) = await t.AskAsync("hi");
        await using var host = new WorkerHost(t.WorkerSource, Kit.Options("w-down") with
        {
            TenantId = t.Tenant,
            ModelAttempts = 3,
            Providers = new ProviderSettings { OpenAiApiKey = "k", OpenAiBaseUrl = server.BaseUri + "v1" },
        });
        await host.RunUntilIdleAsync(CancellationToken.None);
        var state = await t.App.GetTurnStateAsync(turn);
        Assert.Equal("failed", (string)state["status"]!);
        Assert.Contains("model provider failed after 3 attempts", (string)state["error_message"]!, StringComparison.Ordinal);
        Assert.Contains("upstream says no (503)", (string)state["error_message"]!, StringComparison.Ordinal);
        Assert.Equal(3, server.Requests.Count);
        Assert.Contains("error", await t.StepTypesAsync(turn));
    }

    [Fact]
    public async Task AMissingKeyFailsTheTurnWithAClearMessage()
    {
        var t = await Kit.TenantAsync(db, "nokey", [], null, "anthropic/claude-sonnet-4-20250514");
        var (_, turn) = await t.AskAsync("hi");
        await using var host = new WorkerHost(t.WorkerSource, Kit.Options("w-nokey") with { TenantId = t.Tenant });
        await host.RunUntilIdleAsync(CancellationToken.None);
        var state = await t.App.GetTurnStateAsync(turn);
        Assert.Equal("failed", (string)state["status"]!);
        Assert.Contains("ANTHROPIC_API_KEY", (string)state["error_message"]!, StringComparison.Ordinal);
    }

    // ---------------------------------------------------------------------------------------------
    // Anthropic messages (SSE with thinking, tool_use and text blocks)
    // ---------------------------------------------------------------------------------------------
    [Fact]
    public async Task AnthropicWireFormatWithThinkingToolUseAndStreaming()
    {
        await using var server = await LocalServer.StartAsync((app, srv) =>
        {
            app.MapPost("/v1/messages", async (HttpContext ctx) =>
            {
                var body = srv.Requests.Last(r => r.Path.StartsWith("/v1/messages", StringComparison.Ordinal)).Body!;
                var last = body["messages"]!.AsArray().Last()!;
                var afterTool = last["content"] is JsonArray blocks && blocks.Any(b => (string?)b!["type"] == "tool_result");
                var model = (string)body["model"]!;
                var events = new List<(string?, string)>
                {
                    ("message_start", J(new { type = "message_start", message = new { id = "msg_1", type = "message", role = "assistant", model, content = Array.Empty<object>(), stop_reason = (string?)null, stop_sequence = (string?)null, usage = new { input_tokens = afterTool ? 50 : 20, output_tokens = 1 } } })),
                };
                if (!afterTool)
                {
                    events.Add(("content_block_start", J(new { type = "content_block_start", index = 0, content_block = new { type = "thinking", thinking = "", signature = "" } })));
                    events.Add(("content_block_delta", J(new { type = "content_block_delta", index = 0, delta = new { type = "thinking_delta", thinking = "The user wants the time; " } })));
                    events.Add(("content_block_delta", J(new { type = "content_block_delta", index = 0, delta = new { type = "thinking_delta", thinking = "I will call the clock." } })));
                    events.Add(("content_block_delta", J(new { type = "content_block_delta", index = 0, delta = new { type = "signature_delta", signature = "c2ln" } })));
                    events.Add(("content_block_stop", J(new { type = "content_block_stop", index = 0 })));
                    events.Add(("content_block_start", J(new { type = "content_block_start", index = 1, content_block = new { type = "tool_use", id = "toolu_01", name = "clock", input = new { } } })));
                    events.Add(("content_block_delta", J(new { type = "content_block_delta", index = 1, delta = new { type = "input_json_delta", partial_json = "{\"timezone\": " } })));
                    events.Add(("content_block_delta", J(new { type = "content_block_delta", index = 1, delta = new { type = "input_json_delta", partial_json = "\"UTC\"}" } })));
                    events.Add(("content_block_stop", J(new { type = "content_block_stop", index = 1 })));
                    events.Add(("message_delta", J(new { type = "message_delta", delta = new { stop_reason = "tool_use", stop_sequence = (string?)null }, usage = new { output_tokens = 30 } })));
                }
                else
                {
                    events.Add(("content_block_start", J(new { type = "content_block_start", index = 0, content_block = new { type = "text", text = "" } })));
                    foreach (var piece in new[] { "The clock ", "says it is ", "late." })
                    {
                        events.Add(("content_block_delta", J(new { type = "content_block_delta", index = 0, delta = new { type = "text_delta", text = piece } })));
                    }
                    events.Add(("content_block_stop", J(new { type = "content_block_stop", index = 0 })));
                    events.Add(("message_delta", J(new { type = "message_delta", delta = new { stop_reason = "end_turn", stop_sequence = (string?)null }, usage = new { output_tokens = 10 } })));
                }
                events.Add(("message_stop", J(new { type = "message_stop" })));
                await LocalServer.WriteSseAsync(ctx.Response, events);
            });
        });
        var t = await Kit.TenantAsync(db, "anthropic", ["clock"], AutoClock, "anthropic/claude-sonnet-4-20250514");
        var (_, turn) = await t.AskAsync("what time is it?");
        await using var host = new WorkerHost(t.WorkerSource, Kit.Options("w-anthropic") with
        {
            TenantId = t.Tenant,
            Providers = new ProviderSettings { AnthropicApiKey = "sk-ant-test", AnthropicBaseUrl = server.BaseUri.ToString().TrimEnd('/') },
        });
        await host.RunUntilIdleAsync(CancellationToken.None);

        var state = await t.App.GetTurnStateAsync(turn);
        Assert.Equal("completed", (string)state["status"]!);
        Assert.Equal("The clock says it is late.", (string)state["assistant_message"]!);
        Assert.Equal(["user_message", "think", "tool_call", "tool_result", "respond"], await t.StepTypesAsync(turn));
        var steps = await t.StepsAsync(turn);
        Assert.Equal("The user wants the time; I will call the clock.",
            (string)steps.Single(s => (string)s!["step_type"]! == "think")!["content"]!["reasoning"]!);
        Assert.Equal("UTC", (string)steps.Single(s => (string)s!["step_type"]! == "tool_call")!["content"]!["arguments"]!["timezone"]!);
        Assert.Equal(20 + 30 + 50 + 10, (long)state["tokens_used"]!);

        var calls = server.Requests.Where(r => r.Path.StartsWith("/v1/messages", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, calls.Count);
        Assert.True(calls[0].Body!["stream"]!.GetValue<bool>());
        Assert.Equal("clock", (string)calls[0].Body!["tools"]![0]!["name"]!);
        var toolResult = calls[1].Body!["messages"]!.AsArray().Last()!["content"]!.AsArray().First(b => (string?)b!["type"] == "tool_result")!;
        Assert.Equal("toolu_01", (string)toolResult["tool_use_id"]!);
    }

    // ---------------------------------------------------------------------------------------------
    // Ollama /api/chat (NDJSON)
    // ---------------------------------------------------------------------------------------------
    [Fact]
    public async Task OllamaWireFormatWithToolCallsAndStreaming()
    {
        await using var server = await LocalServer.StartAsync((app, srv) =>
        {
            app.MapPost("/api/chat", async (HttpContext ctx) =>
            {
                var body = srv.Requests.Last(r => r.Path == "/api/chat").Body!;
                var afterTool = body["messages"]!.AsArray().Last()!["role"]!.GetValue<string>() == "tool";
                var model = (string)body["model"]!;
                ctx.Response.ContentType = "application/x-ndjson";
                var lines = new List<object>();
                if (!afterTool)
                {
                    lines.Add(new { model, created_at = "2025-01-01T00:00:00Z", message = new { role = "assistant", content = "", tool_calls = new[] { new { function = new { name = "clock", arguments = new { timezone = "UTC" } } } } }, done = false });
                    lines.Add(new { model, created_at = "2025-01-01T00:00:01Z", message = new { role = "assistant", content = "" }, done = true, done_reason = "stop", total_duration = 1000, prompt_eval_count = 25, eval_count = 7 });
                }
                else
                {
                    foreach (var piece in new[] { "Local ", "models ", "know ", "the time." })
                    {
                        lines.Add(new { model, created_at = "2025-01-01T00:00:02Z", message = new { role = "assistant", content = piece }, done = false });
                    }
                    lines.Add(new { model, created_at = "2025-01-01T00:00:03Z", message = new { role = "assistant", content = "" }, done = true, done_reason = "stop", total_duration = 1000, prompt_eval_count = 45, eval_count = 9 });
                }
                foreach (var line in lines)
                {
                    await ctx.Response.WriteAsync(J(line) + "\n");
                    await ctx.Response.Body.FlushAsync();
                }
            });
        });
        var t = await Kit.TenantAsync(db, "ollama", ["clock"], AutoClock, "ollama/llama3.1:8b");
        var (_, turn) = await t.AskAsync("what time is it?");
        await using var host = new WorkerHost(t.WorkerSource, Kit.Options("w-ollama") with
        {
            TenantId = t.Tenant,
            Providers = new ProviderSettings { OllamaHost = server.BaseUri.ToString().TrimEnd('/') },
        });
        await host.RunUntilIdleAsync(CancellationToken.None);

        var state = await t.App.GetTurnStateAsync(turn);
        Assert.Equal("completed", (string)state["status"]!);
        Assert.Equal("Local models know the time.", (string)state["assistant_message"]!);
        Assert.Equal(["user_message", "tool_call", "tool_result", "respond"], await t.StepTypesAsync(turn));
        Assert.Equal(25 + 7 + 45 + 9, (long)state["tokens_used"]!);
        var calls = server.Requests.Where(r => r.Path == "/api/chat").ToList();
        Assert.Equal(2, calls.Count);
        Assert.True(calls[0].Body!["stream"]?.GetValue<bool>() ?? true);
        Assert.Equal("clock", (string)calls[0].Body!["tools"]![0]!["function"]!["name"]!);
        Assert.Equal("tool", (string)calls[1].Body!["messages"]!.AsArray().Last()!["role"]!);
    }
}
