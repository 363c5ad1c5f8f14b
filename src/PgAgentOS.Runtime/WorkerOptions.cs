using System.Collections;
using Microsoft.Extensions.AI;
using PgAgentOS.Client;
using PgAgentOS.Runtime.Egress;
using PgAgentOS.Runtime.Tools;

namespace PgAgentOS.Runtime;

/// <summary>How a worker process runs (aos worker).</summary>
public sealed record WorkerOptions
{
    /// <summary>Name of this worker in leases and logs (default: host name and process id).</summary>
    public string WorkerId { get; init; } = $"{Environment.MachineName}-{Environment.ProcessId}";

    /// <summary>How many turns run at once.</summary>
    public int Concurrency { get; init; } = 4;

    /// <summary>Lease length; the worker renews it every third of it.</summary>
    public int LeaseSeconds { get; init; } = 30;

    /// <summary>How often idle slots look for work when no notification arrives.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Only turns of this tenant (null: all tenants).</summary>
    public Guid? TenantId { get; init; }

    /// <summary>Model provider endpoints and keys.</summary>
    public ProviderSettings Providers { get; init; } = ProviderSettings.FromEnvironment();

    /// <summary>MCP servers whose tools agents may call (name → how to reach it).</summary>
    public IReadOnlyDictionary<string, McpServerConfig> McpServers { get; init; } = new Dictionary<string, McpServerConfig>();

    /// <summary>Limits of the http_fetch tool.</summary>
    public EgressOptions Egress { get; init; } = new();

    /// <summary>Limits of the code_execute tool.</summary>
    public CodeLimits Code { get; init; } = new();

    /// <summary>Send deltas of answers on the aos_stream channel while the model streams.</summary>
    public bool StreamDeltas { get; init; } = true;

    /// <summary>
    /// Deltas are gathered this long and sent as one notification (each is a transaction); an
    /// answer complete sooner is not streamed, its respond step carries it. Zero: every delta at once.
    /// </summary>
    public TimeSpan StreamFlushInterval { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Attempts of a model call on transient errors (429, 5xx, timeouts, connection errors).</summary>
    public int ModelAttempts { get; init; } = 5;

    /// <summary>First backoff between model attempts (doubles each time, with jitter).</summary>
    public TimeSpan ModelRetryDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Time limit of one model call.</summary>
    public TimeSpan ModelCallTimeout { get; init; } = TimeSpan.FromMinutes(3);

    /// <summary>Backoff ceiling when the database cannot be reached.</summary>
    public TimeSpan MaxReconnectDelay { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Replaces the model of a turn (tests, embedding applications); null keeps the provider's client.</summary>
    public Func<TurnContext, IChatClient?>? ChatClientFactory { get; init; }

    /// <summary>Wraps every model client (middleware), after the worker's own telemetry.</summary>
    public Func<IChatClient, IChatClient>? ChatClientMiddleware { get; init; }

    /// <summary>Extra built-in tools by implementation name (skill_impl config {"builtin": name}).</summary>
    public IReadOnlyDictionary<string, ITool> ExtraTools { get; init; } = new Dictionary<string, ITool>();
}

/// <summary>Where the model providers are and the keys to reach them (from the environment by default).</summary>
public sealed record ProviderSettings
{
    /// <summary>Google's OpenAI-compatible endpoint.</summary>
    public const string DefaultGoogleBaseUrl = "https://generativelanguage.googleapis.com/v1beta/openai/";

    /// <summary>OPENAI_API_KEY.</summary>
    public string? OpenAiApiKey { get; init; }
    /// <summary>OPENAI_BASE_URL (default: OpenAI's API).</summary>
    public string? OpenAiBaseUrl { get; init; }
    /// <summary>AOS_OPENAI_COMPATIBLE_URL: an OpenAI-compatible server (vLLM, llama.cpp, LM Studio, Ollama's /v1).</summary>
    public string? OpenAiCompatibleUrl { get; init; }
    /// <summary>AOS_OPENAI_COMPATIBLE_KEY (optional).</summary>
    public string? OpenAiCompatibleKey { get; init; }
    /// <summary>GOOGLE_API_KEY.</summary>
    public string? GoogleApiKey { get; init; }
    /// <summary>GOOGLE_OPENAI_BASE_URL (default: Google's OpenAI-compatible endpoint).</summary>
    public string GoogleBaseUrl { get; init; } = DefaultGoogleBaseUrl;
    /// <summary>ANTHROPIC_API_KEY.</summary>
    public string? AnthropicApiKey { get; init; }
    /// <summary>ANTHROPIC_BASE_URL (default: Anthropic's API).</summary>
    public string? AnthropicBaseUrl { get; init; }
    /// <summary>OLLAMA_HOST (default http://localhost:11434).</summary>
    public string OllamaHost { get; init; } = "http://localhost:11434";
    /// <summary>AOS_SEARXNG_URL: a SearXNG instance for web_search (JSON API enabled).</summary>
    public string? SearxngUrl { get; init; }

    /// <summary>Settings from environment variables.</summary>
    public static ProviderSettings FromEnvironment(IDictionary? environment = null)
    {
        var env = environment ?? Environment.GetEnvironmentVariables();
        string? Get(string name) => env[name] is string s && !string.IsNullOrWhiteSpace(s) ? s.Trim() : null;
        var ollama = Get("OLLAMA_HOST") ?? "http://localhost:11434";
        if (!ollama.Contains("://", StringComparison.Ordinal))
        {
            ollama = "http://" + ollama;
        }
        return new ProviderSettings
        {
            OpenAiApiKey = Get("OPENAI_API_KEY"),
            OpenAiBaseUrl = Get("OPENAI_BASE_URL"),
            OpenAiCompatibleUrl = Get("AOS_OPENAI_COMPATIBLE_URL"),
            OpenAiCompatibleKey = Get("AOS_OPENAI_COMPATIBLE_KEY"),
            GoogleApiKey = Get("GOOGLE_API_KEY"),
            GoogleBaseUrl = Get("GOOGLE_OPENAI_BASE_URL") ?? DefaultGoogleBaseUrl,
            AnthropicApiKey = Get("ANTHROPIC_API_KEY"),
            AnthropicBaseUrl = Get("ANTHROPIC_BASE_URL"),
            OllamaHost = ollama,
            SearxngUrl = Get("AOS_SEARXNG_URL"),
        };
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"ProviderSettings {{ OpenAI key {(OpenAiApiKey is null ? "unset" : "set")}, Anthropic key {(AnthropicApiKey is null ? "unset" : "set")}, "
        + $"Google key {(GoogleApiKey is null ? "unset" : "set")}, compatible {OpenAiCompatibleUrl ?? "unset"}, Ollama {OllamaHost} }}";
}

/// <summary>An MCP server: a command to start (stdio) or an HTTP endpoint.</summary>
public sealed record McpServerConfig
{
    /// <summary>Program to run (stdio transport).</summary>
    public string? Command { get; init; }
    /// <summary>Its arguments.</summary>
    public IReadOnlyList<string> Args { get; init; } = [];
    /// <summary>Extra environment variables for it.</summary>
    public IReadOnlyDictionary<string, string> Env { get; init; } = new Dictionary<string, string>();
    /// <summary>Endpoint of an HTTP server (Streamable HTTP, or SSE).</summary>
    public string? Url { get; init; }
    /// <summary>Headers for the HTTP endpoint (for example Authorization).</summary>
    public IReadOnlyDictionary<string, string> Headers { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// Reads server definitions from JSON: {"mcpServers": {"name": {"command": "...", "args": [...],
    /// "env": {...}}, "other": {"url": "https://...", "headers": {...}}}} (the key "servers" works too).
    /// </summary>
    public static Dictionary<string, McpServerConfig> ParseJson(string json)
    {
        var root = System.Text.Json.Nodes.JsonNode.Parse(json) as System.Text.Json.Nodes.JsonObject
                   ?? throw new FormatException("MCP configuration must be a JSON object");
        var servers = (root["mcpServers"] ?? root["servers"]) as System.Text.Json.Nodes.JsonObject
                      ?? throw new FormatException("MCP configuration needs an \"mcpServers\" object");
        var result = new Dictionary<string, McpServerConfig>(StringComparer.Ordinal);
        foreach (var (name, node) in servers)
        {
            if (node is not System.Text.Json.Nodes.JsonObject o)
            {
                throw new FormatException($"MCP server {name} must be an object");
            }
            static Dictionary<string, string> Map(System.Text.Json.Nodes.JsonNode? n) =>
                (n as System.Text.Json.Nodes.JsonObject)?.ToDictionary(kv => kv.Key, kv => kv.Value?.ToString() ?? "", StringComparer.Ordinal)
                ?? new Dictionary<string, string>(StringComparer.Ordinal);
            var config = new McpServerConfig
            {
                Command = o["command"]?.GetValue<string>(),
                Args = (o["args"] as System.Text.Json.Nodes.JsonArray)?.Select(a => a?.ToString() ?? "").ToList() ?? [],
                Env = Map(o["env"]),
                Url = o["url"]?.GetValue<string>(),
                Headers = Map(o["headers"]),
            };
            if (string.IsNullOrWhiteSpace(config.Command) == string.IsNullOrWhiteSpace(config.Url))
            {
                throw new FormatException($"MCP server {name} needs either \"command\" (stdio) or \"url\" (HTTP)");
            }
            result[name] = config;
        }
        return result;
    }
}
