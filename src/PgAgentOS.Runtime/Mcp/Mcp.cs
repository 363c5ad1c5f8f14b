using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using PgAgentOS.Client;
using PgAgentOS.Runtime.Tools;

namespace PgAgentOS.Runtime.Mcp;

/// <summary>
/// Connections to the MCP servers of the worker's configuration (stdio: a child process; HTTP: an
/// endpoint), opened on first use and kept; a connection that fails is opened again next time.
/// </summary>
public sealed class McpConnections(IReadOnlyDictionary<string, McpServerConfig> servers, ILoggerFactory? loggerFactory = null) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<Task<McpClient>>> _clients = new(StringComparer.Ordinal);

    /// <summary>The configured server names.</summary>
    public IEnumerable<string> Names => servers.Keys;

    /// <summary>The client of a configured server.</summary>
    public async Task<McpClient> GetAsync(string name, CancellationToken ct = default)
    {
        if (!servers.TryGetValue(name, out var config))
        {
            throw new InvalidOperationException($"MCP server {name} is not configured in this worker");
        }
        var lazy = _clients.GetOrAdd(name, n => new Lazy<Task<McpClient>>(() => ConnectAsync(n, config, loggerFactory, CancellationToken.None)));
        try
        {
            return await lazy.Value.WaitAsync(ct);
        }
        catch (Exception) when (lazy.Value.IsFaulted)
        {
            _clients.TryRemove(new KeyValuePair<string, Lazy<Task<McpClient>>>(name, lazy));
            throw;
        }
    }

    /// <summary>Opens a client for one server configuration.</summary>
    public static async Task<McpClient> ConnectAsync(string name, McpServerConfig config, ILoggerFactory? loggerFactory, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(config);
        IClientTransport transport;
        if (!string.IsNullOrWhiteSpace(config.Url))
        {
            transport = new HttpClientTransport(new HttpClientTransportOptions
            {
                Endpoint = new Uri(config.Url),
                Name = name,
                AdditionalHeaders = config.Headers.ToDictionary(kv => kv.Key, kv => kv.Value),
            }, loggerFactory);
        }
        else if (!string.IsNullOrWhiteSpace(config.Command))
        {
            transport = new StdioClientTransport(new StdioClientTransportOptions
            {
                Command = config.Command,
                Arguments = [.. config.Args],
                Name = name,
                EnvironmentVariables = config.Env.ToDictionary(kv => kv.Key, kv => (string?)kv.Value),
            }, loggerFactory);
        }
        else
        {
            throw new InvalidOperationException($"MCP server {name} needs a command (stdio) or a url (HTTP)");
        }
        return await McpClient.CreateAsync(transport, new McpClientOptions
        {
            ClientInfo = new Implementation { Name = "pgagentos-worker", Version = "0.1.0" },
        }, loggerFactory, ct);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var lazy in _clients.Values)
        {
            if (lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully)
            {
                await lazy.Value.Result.DisposeAsync();
            }
        }
        _clients.Clear();
    }
}

/// <summary>Runs a skill implemented by an MCP tool (skill_impl config {"server": ..., "tool": ...}).</summary>
public sealed class McpTool(McpConnections connections) : ITool
{
    /// <inheritdoc />
    public async Task<ToolResult> RunAsync(ToolCall call, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(call);
        var server = call.Skill.Config["server"]?.GetValue<string>();
        var tool = call.Skill.Config["tool"]?.GetValue<string>();
        if (string.IsNullOrEmpty(server) || string.IsNullOrEmpty(tool))
        {
            return ToolResult.Fail("the skill's MCP configuration needs \"server\" and \"tool\"");
        }
        var client = await connections.GetAsync(server, ct);
        var args = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (k, v) in call.Arguments)
        {
            args[k] = v is null ? null : JsonSerializer.SerializeToElement(v);
        }
        var result = await client.CallToolAsync(tool, args, cancellationToken: ct);
        var text = new StringBuilder();
        foreach (var block in result.Content)
        {
            if (block is TextContentBlock t)
            {
                if (text.Length > 0)
                {
                    text.Append('\n');
                }
                text.Append(t.Text);
            }
            else
            {
                text.Append('[').Append(block.Type).Append(" content]");
            }
        }
        JsonNode? output = result.StructuredContent is { } structured
            ? JsonNode.Parse(structured.GetRawText())
            : JsonValue.Create(text.ToString());
        return result.IsError == true ? ToolResult.Fail(text.Length > 0 ? text.ToString() : "the MCP tool reported an error", output) : ToolResult.Ok(output);
    }
}

/// <summary>Registers the tools of an MCP server as skills of a tenant (impl_type mcp).</summary>
public sealed partial class McpCatalog(IReadOnlyDictionary<string, McpServerConfig> servers, ILoggerFactory? loggerFactory = null)
{
    /// <summary>
    /// Lists the server's tools and upserts one skill per tool in the tenant <paramref name="client"/>
    /// is bound to (it must act as a tenant administrator), granted to the agent role. Skill keys
    /// are server_tool (letters, digits, _ and -). Read-only tools (annotation readOnlyHint) run
    /// without approval and count as idempotent; others need approval by default; destructive ones
    /// are high risk. Returns the skill keys.
    /// </summary>
    public async Task<IReadOnlyList<string>> ImportAsync(AosClient client, string serverName, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        if (!servers.TryGetValue(serverName, out var config))
        {
            throw new InvalidOperationException($"MCP server {serverName} is not configured");
        }
        await using var mcp = await McpConnections.ConnectAsync(serverName, config, loggerFactory, ct);
        return await ImportAsync(client, serverName, mcp, ct);
    }

    /// <summary>The same, over an open MCP client.</summary>
    public static async Task<IReadOnlyList<string>> ImportAsync(AosClient client, string serverName, McpClient mcp, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(mcp);
        var keys = new List<string>();
        foreach (var tool in await mcp.ListToolsAsync(cancellationToken: ct))
        {
            var p = tool.ProtocolTool;
            var schema = JsonNode.Parse(p.InputSchema.GetRawText()) as JsonObject ?? [];
            schema["type"] = "object";
            var readOnly = p.Annotations?.ReadOnlyHint == true;
            var destructive = p.Annotations?.DestructiveHint == true;
            var key = SkillKey(serverName, p.Name);
            var description = string.IsNullOrWhiteSpace(p.Description) ? $"Tool {p.Name} of MCP server {serverName}." : p.Description!;
            await client.UpsertTenantSkillAsync(new TenantSkill
            {
                SkillKey = key,
                Name = p.Title ?? p.Name,
                Description = description.Length > 4000 ? description[..4000] : description,
                Category = "mcp",
                InputSchema = schema,
                RequiresApproval = !readOnly,
                RiskLevel = destructive ? "high" : readOnly ? "low" : "medium",
                Idempotent = readOnly || p.Annotations?.IdempotentHint == true,
                ImplType = "mcp",
                ImplConfig = new JsonObject { ["server"] = serverName, ["tool"] = p.Name },
            }, ct);
            keys.Add(key);
        }
        return keys;
    }

    /// <summary>The skill key of an MCP tool: server_tool, cut to 64 characters, safe for every provider.</summary>
    public static string SkillKey(string server, string tool)
    {
        var key = Unsafe().Replace($"{server}_{tool}", "_");
        if (key.Length == 0 || !char.IsAsciiLetter(key[0]))
        {
            key = "mcp_" + key;
        }
        return key.Length > 64 ? key[..64] : key;
    }

    [GeneratedRegex("[^A-Za-z0-9_-]")]
    private static partial Regex Unsafe();
}
