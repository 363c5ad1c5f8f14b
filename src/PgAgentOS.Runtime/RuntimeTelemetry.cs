using System.Diagnostics;
using System.Diagnostics.Metrics;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using PgAgentOS.Client;

namespace PgAgentOS.Runtime;

/// <summary>
/// Traces and metrics of the runtime: an ActivitySource and a Meter named "PgAgentOS.Runtime" (the
/// model clients' spans from Microsoft.Extensions.AI's OpenTelemetry middleware use the same source).
/// Spans follow the OpenTelemetry GenAI semantic conventions (gen_ai.*). Exported over OTLP only
/// when OTEL_EXPORTER_OTLP_ENDPOINT is set.
/// </summary>
public static class RuntimeTelemetry
{
    /// <summary>Name of the ActivitySource and the Meter.</summary>
    public const string SourceName = "PgAgentOS.Runtime";

    /// <summary>Spans of turns, model calls and tools.</summary>
    public static readonly ActivitySource Source = new(SourceName, typeof(RuntimeTelemetry).Assembly.GetName().Version?.ToString());

    private static readonly Meter Meter = new(SourceName, typeof(RuntimeTelemetry).Assembly.GetName().Version?.ToString());

    /// <summary>Turns worked on, by outcome.</summary>
    public static readonly Counter<long> Turns = Meter.CreateCounter<long>("aos.worker.turns", "{turn}", "Turns a worker worked on, by outcome.");
    /// <summary>Steps recorded.</summary>
    public static readonly Counter<long> Steps = Meter.CreateCounter<long>("aos.worker.steps", "{step}", "Steps the worker recorded.");
    /// <summary>Tokens used, by type (input, output).</summary>
    public static readonly Counter<long> Tokens = Meter.CreateCounter<long>("aos.worker.tokens", "{token}", "Model tokens, by gen_ai.token.type.");
    /// <summary>USD spent (as the providers or the worker report it; the kernel prices missing costs).</summary>
    public static readonly Counter<double> Cost = Meter.CreateCounter<double>("aos.worker.cost", "USD", "USD spent by turns, as the kernel priced it (read back with the turn context).");
    /// <summary>Turn durations (one attempt).</summary>
    public static readonly Histogram<double> TurnDuration = Meter.CreateHistogram<double>("aos.worker.turn.duration", "s", "Time a worker spent on a turn.");
    /// <summary>Model call durations.</summary>
    public static readonly Histogram<double> ModelDuration = Meter.CreateHistogram<double>("aos.worker.model.duration", "s", "Model call time, retries included.");
    /// <summary>Tool durations.</summary>
    public static readonly Histogram<double> ToolDuration = Meter.CreateHistogram<double>("aos.worker.tool.duration", "s", "Tool execution time.");

    /// <summary>A span for one turn attempt.</summary>
    public static Activity? StartTurn(TurnContext ctx, string workerId)
    {
        var a = Source.StartActivity($"invoke_agent {ctx.AgentName}", ActivityKind.Internal);
        if (a is null)
        {
            return null;
        }
        a.SetTag("gen_ai.operation.name", "invoke_agent");
        a.SetTag("gen_ai.agent.name", ctx.AgentName);
        a.SetTag("gen_ai.agent.id", ctx.AgentId.ToString());
        a.SetTag("gen_ai.conversation.id", ctx.ConversationId.ToString());
        a.SetTag("gen_ai.provider.name", ProviderName(ctx.Model?.Provider));
        a.SetTag("gen_ai.request.model", ctx.Model?.Name);
        a.SetTag("aos.turn.id", ctx.TurnId.ToString());
        a.SetTag("aos.turn.attempt", ctx.Attempt);
        a.SetTag("aos.tenant.id", ctx.TenantId.ToString());
        a.SetTag("aos.worker.id", workerId);
        return a;
    }

    /// <summary>A span for one tool execution.</summary>
    public static Activity? StartTool(string name, string? callId, string? implType, Guid stepId)
    {
        var a = Source.StartActivity($"execute_tool {name}", ActivityKind.Internal);
        if (a is null)
        {
            return null;
        }
        a.SetTag("gen_ai.operation.name", "execute_tool");
        a.SetTag("gen_ai.tool.name", name);
        a.SetTag("gen_ai.tool.call.id", callId);
        a.SetTag("gen_ai.tool.type", implType == "mcp" ? "extension" : "function");
        a.SetTag("aos.step.id", stepId.ToString());
        return a;
    }

    /// <summary>The gen_ai.provider.name of a registry provider.</summary>
    public static string ProviderName(string? provider) => provider switch
    {
        "openai" => "openai",
        "anthropic" => "anthropic",
        "google" => "gcp.gemini",
        "ollama" => "ollama",
        "builtin" => "pgagentos.scripted",
        null => "unknown",
        _ => provider,
    };

    /// <summary>
    /// Starts OTLP export of traces and metrics when OTEL_EXPORTER_OTLP_ENDPOINT is set (the exporter
    /// reads the endpoint, headers and protocol from the standard OTEL_* variables). Null otherwise.
    /// </summary>
    public static IDisposable? StartExportFromEnvironment(string serviceName = "pgagentos-worker")
    {
        if (string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT")))
        {
            return null;
        }
        var resource = ResourceBuilder.CreateDefault().AddService(serviceName);
        var tracer = Sdk.CreateTracerProviderBuilder().SetResourceBuilder(resource).AddSource(SourceName).AddOtlpExporter().Build();
        var meter = Sdk.CreateMeterProviderBuilder().SetResourceBuilder(resource).AddMeter(SourceName).AddOtlpExporter().Build();
        return new Both(tracer, meter);
    }

    private sealed class Both(TracerProvider? tracer, MeterProvider? meter) : IDisposable
    {
        public void Dispose()
        {
            tracer?.Dispose();
            meter?.Dispose();
        }
    }
}
