using PgAgentOS.Client;
using PgAgentOS.Runtime.Egress;
using PgAgentOS.Runtime.Mcp;

namespace PgAgentOS.Runtime.Tools;

/// <summary>Finds the runner of a skill from its implementation (builtin name, sql, mcp).</summary>
public sealed class ToolRegistry
{
    private readonly Dictionary<string, ITool> _builtins;
    private readonly ITool _sql = new SqlQueryTool();
    private readonly McpTool _mcp;

    /// <summary>The built-in tools for a worker's options, plus its extra tools.</summary>
    public ToolRegistry(WorkerOptions options, McpConnections mcp)
    {
        ArgumentNullException.ThrowIfNull(options);
        _mcp = new McpTool(mcp);
        _builtins = new Dictionary<string, ITool>(StringComparer.Ordinal)
        {
            ["clock"] = new ClockTool(),
            ["memory_read"] = new MemoryReadTool(),
            ["memory_write"] = new MemoryWriteTool(),
            ["web_search"] = new WebSearchTool(options.Providers.SearxngUrl),
            ["code_execute"] = new CodeExecuteTool(options.Code),
            ["http_fetch"] = new HttpFetchTool(options.Egress),
            ["sql_query"] = _sql,
        };
        foreach (var (name, tool) in options.ExtraTools)
        {
            _builtins[name] = tool;
        }
    }

    /// <summary>The runner, or null with the reason.</summary>
    public ITool? Resolve(SkillImplementation skill, out string? why)
    {
        ArgumentNullException.ThrowIfNull(skill);
        why = null;
        switch (skill.ImplType)
        {
            case "builtin":
                var name = skill.Config["builtin"]?.GetValue<string>() ?? skill.SkillKey;
                if (_builtins.TryGetValue(name, out var tool))
                {
                    return tool;
                }
                why = $"this worker has no built-in tool {name}";
                return null;
            case "sql":
                return _sql;
            case "mcp":
                return _mcp;
            case null:
                why = $"skill {skill.SkillKey} has no enabled implementation";
                return null;
            default:
                why = $"this worker does not run {skill.ImplType} skills";
                return null;
        }
    }
}
