using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using Anthropic;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using OllamaSharp;
using OpenAI;
using PgAgentOS.Client;

namespace PgAgentOS.Runtime.Models;

/// <summary>A provider is not configured (a key or URL is missing) or not known.</summary>
public sealed class ProviderConfigurationException(string message) : Exception(message);

/// <summary>
/// Picks the IChatClient for a turn's model from the registry's provider: OpenAI's client for
/// openai, openai_compatible and google (its OpenAI-compatible endpoint); Anthropic's official
/// client; OllamaSharp for ollama; the scripted stand-in for builtin. Provider clients are kept per
/// model; all are wrapped with Microsoft.Extensions.AI's OpenTelemetry middleware. The clients'
/// own retries are switched off: the worker retries (ModelCaller) so that one policy applies.
/// </summary>
public sealed class ChatClientFactory(WorkerOptions options, ILoggerFactory? loggerFactory) : IDisposable
{
    private readonly ConcurrentDictionary<string, IChatClient> _clients = new(StringComparer.Ordinal);

    /// <summary>The client for a turn.</summary>
    public IChatClient Get(TurnContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        if (options.ChatClientFactory?.Invoke(ctx) is { } custom)
        {
            return Wrap(custom);
        }
        var model = ctx.Model ?? throw new ProviderConfigurationException("the turn names no model");
        if (model.Provider == "builtin")
        {
            return Wrap(new ScriptedChatClient(ctx.Script));
        }
        return _clients.GetOrAdd(model.Provider + "/" + model.Name, _ => Wrap(CreateProviderClient(model, options.Providers, options.ModelCallTimeout)));
    }

    /// <summary>The provider's own client for a model (no middleware).</summary>
    public static IChatClient CreateProviderClient(ModelInfo model, ProviderSettings p, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(p);
        switch (model.Provider)
        {
            case "openai":
                return OpenAi(model.Name, p.OpenAiApiKey ?? throw new ProviderConfigurationException(
                    $"model openai/{model.Name} needs OPENAI_API_KEY (and OPENAI_BASE_URL for another endpoint)"), p.OpenAiBaseUrl, timeout);
            case "openai_compatible":
                return OpenAi(model.Name, p.OpenAiCompatibleKey ?? "not-needed", p.OpenAiCompatibleUrl ?? throw new ProviderConfigurationException(
                    $"model openai_compatible/{model.Name} needs AOS_OPENAI_COMPATIBLE_URL (e.g. http://localhost:8000/v1)"), timeout);
            case "google":
                return OpenAi(model.Name, p.GoogleApiKey ?? throw new ProviderConfigurationException(
                    $"model google/{model.Name} needs GOOGLE_API_KEY"), p.GoogleBaseUrl, timeout);
            case "anthropic":
                var key = p.AnthropicApiKey ?? throw new ProviderConfigurationException($"model anthropic/{model.Name} needs ANTHROPIC_API_KEY");
                var anthropic = new AnthropicClient(new Anthropic.Core.ClientOptions
                {
                    ApiKey = key,
                    BaseUrl = p.AnthropicBaseUrl ?? "https://api.anthropic.com",
                    MaxRetries = 0,
                    Timeout = timeout,
                });
                return anthropic.AsIChatClient(model.Name);
            case "ollama":
                return new OllamaApiClient(new Uri(p.OllamaHost), model.Name);
            default:
                throw new ProviderConfigurationException($"provider {model.Provider} is not supported by this worker");
        }
    }

    private static IChatClient OpenAi(string model, string key, string? baseUrl, TimeSpan timeout)
    {
        var o = new OpenAIClientOptions { RetryPolicy = new ClientRetryPolicy(0), NetworkTimeout = timeout };
        if (!string.IsNullOrWhiteSpace(baseUrl))
        {
            o.Endpoint = new Uri(baseUrl);
        }
        return new OpenAIClient(new ApiKeyCredential(key), o).GetChatClient(model).AsIChatClient();
    }

    private IChatClient Wrap(IChatClient inner)
    {
        var built = new ChatClientBuilder(inner)
            .UseOpenTelemetry(loggerFactory, RuntimeTelemetry.SourceName, c => c.EnableSensitiveData = false)
            .Build();
        return options.ChatClientMiddleware?.Invoke(built) ?? built;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var c in _clients.Values)
        {
            c.Dispose();
        }
        _clients.Clear();
    }
}

/// <summary>Which provider errors are worth another attempt.</summary>
public static class TransientErrors
{
    /// <summary>True for rate limits (429), server errors (5xx), 408, timeouts and broken connections.</summary>
    public static bool IsTransient(Exception e)
    {
        for (var x = e; x is not null; x = x.InnerException)
        {
            if (StatusOf(x) is { } status)
            {
                return status is 408 or 409 or 429 or >= 500;
            }
            if (x is TimeoutException or SocketException or IOException or HttpIOException)
            {
                return true;
            }
            if (x is HttpRequestException { StatusCode: null })
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The HTTP status an exception carries, if any (HttpRequestException, ClientResultException, provider exceptions).</summary>
    public static int? StatusOf(Exception e)
    {
        switch (e)
        {
            case HttpRequestException { StatusCode: { } s }:
                return (int)s;
            case ClientResultException { Status: > 0 } c:
                return c.Status;
        }
        foreach (var name in new[] { "StatusCode", "Status" })
        {
            var prop = e.GetType().GetProperty(name, BindingFlags.Public | BindingFlags.Instance);
            var v = prop?.GetValue(e);
            switch (v)
            {
                case HttpStatusCode hs:
                    return (int)hs;
                case int i when i >= 100:
                    return i;
            }
        }
        return null;
    }
}
