using System.Globalization;
using Microsoft.Extensions.AI;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;
using Npgsql;
using PgAgentOS.Runtime;
using PgAgentOS.Runtime.Tools;

// Test helper. Two modes:
//   worker --connection CS --worker-id ID [--lease S] [--concurrency N] [--poll-ms MS] [--model-delay-ms MS] [--tenant ID]
//       runs a WorkerHost until killed (or stdin closes) and prints one line per worker event:
//       EVENT <kind> <turn id> <tool or -> <status or -> <message>
//   mcp-server
//       a tiny MCP server over stdio with tools echo (read-only), add (structured) and fail (an error).
if (args.Length > 0 && args[0] == "mcp-server")
{
    await RunMcpServerAsync();
    return 0;
}
if (args.Length == 0 || args[0] != "worker")
{
    Console.Error.WriteLine("usage: aos-test-worker worker --connection CS --worker-id ID [--lease S] [--concurrency N] [--poll-ms MS] [--model-delay-ms MS] | mcp-server");
    return 2;
}

string? Arg(string name)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}
int IntArg(string name, int fallback) => Arg(name) is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : fallback;

var delay = IntArg("--model-delay-ms", 0);
var options = new WorkerOptions
{
    WorkerId = Arg("--worker-id") ?? "test-worker",
    LeaseSeconds = IntArg("--lease", 30),
    Concurrency = IntArg("--concurrency", 1),
    PollInterval = TimeSpan.FromMilliseconds(IntArg("--poll-ms", 200)),
    TenantId = Arg("--tenant") is { } tenant ? Guid.Parse(tenant) : null,
    // long-running scripts so that a test can kill the worker while a tool runs
    Code = new CodeLimits { Time = TimeSpan.FromSeconds(30), Statements = int.MaxValue },
    ChatClientMiddleware = delay > 0 ? inner => new SlowChatClient(inner, TimeSpan.FromMilliseconds(delay)) : null,
};
await using var dataSource = NpgsqlDataSource.Create(Arg("--connection") ?? throw new ArgumentException("--connection is required"));
await using var host = new WorkerHost(dataSource, options);
var output = Console.Out;
var gate = new object();
host.Event += e =>
{
    lock (gate)
    {
        output.WriteLine($"EVENT {e.Kind} {e.TurnId?.ToString() ?? "-"} {e.ToolName ?? "-"} {e.Status ?? "-"} {e.Message.ReplaceLineEndings(" ")}");
        output.Flush();
    }
};
using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cts.Cancel();
};
_ = Task.Run(async () =>
{
    // the parent closes our stdin to ask for a clean stop
    while (await Console.In.ReadLineAsync() is not null)
    {
    }
    await cts.CancelAsync();
});
output.WriteLine("READY");
output.Flush();
await host.RunAsync(cts.Token);
return 0;

static async Task RunMcpServerAsync()
{
    var options = new McpServerOptions
    {
        ServerInfo = new Implementation { Name = "aos-test-mcp", Version = "1.0.0" },
        ToolCollection =
        [
            McpServerTool.Create((string text) => "echo: " + text,
                new McpServerToolCreateOptions { Name = "echo", Description = "Echoes the text back.", ReadOnly = true }),
            McpServerTool.Create((int a, int b) => new Sum(a, b, a + b),
                new McpServerToolCreateOptions { Name = "add", Description = "Adds two integers.", UseStructuredContent = true, Idempotent = true }),
            McpServerTool.Create(string () => throw new InvalidOperationException("this tool always fails"),
                new McpServerToolCreateOptions { Name = "fail", Description = "Always fails.", Destructive = true }),
        ],
    };
    await using var transport = new StdioServerTransport(options);
    await using var server = McpServer.Create(transport, options);
    await server.RunAsync();
}

/// <summary>The sum of two numbers (structured output of the add tool).</summary>
internal sealed record Sum(int A, int B, int Result);

/// <summary>Makes every model call slow (crash tests kill the worker while it waits).</summary>
internal sealed class SlowChatClient(IChatClient inner, TimeSpan delay) : DelegatingChatClient(inner)
{
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        await Task.Delay(delay, cancellationToken);
        return await base.GetResponseAsync(messages, options, cancellationToken);
    }

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await Task.Delay(delay, cancellationToken);
        await foreach (var u in base.GetStreamingResponseAsync(messages, options, cancellationToken))
        {
            yield return u;
        }
    }
}
