using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace PgAgentOS.Runtime.Tests;

/// <summary>A request a local server received.</summary>
public sealed record SeenRequest(string Method, string Path, IReadOnlyDictionary<string, string> Headers, JsonNode? Body, string RawBody);

/// <summary>An ASP.NET Core minimal server on 127.0.0.1 with a free port, for the duration of a test.</summary>
public sealed class LocalServer : IAsyncDisposable
{
    private WebApplication _app = null!;

    /// <summary>http://127.0.0.1:port</summary>
    public Uri BaseUri { get; private set; } = new("http://127.0.0.1:1");

    /// <summary>The port.</summary>
    public int Port => BaseUri.Port;

    /// <summary>Requests received, in order.</summary>
    public ConcurrentQueue<SeenRequest> Requests { get; } = new();

    /// <summary>Starts a server; <paramref name="map"/> adds its endpoints.</summary>
    public static async Task<LocalServer> StartAsync(Action<WebApplication, LocalServer> map)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var self = new LocalServer { _app = app };
        app.Use(async (ctx, next) =>
        {
            ctx.Request.EnableBuffering();
            var raw = await new StreamReader(ctx.Request.Body).ReadToEndAsync();
            ctx.Request.Body.Position = 0;
            JsonNode? body = null;
            try
            {
                body = raw.Length > 0 ? JsonNode.Parse(raw) : null;
            }
            catch (System.Text.Json.JsonException)
            {
            }
            self.Requests.Enqueue(new SeenRequest(ctx.Request.Method, ctx.Request.Path + ctx.Request.QueryString,
                ctx.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase), body, raw));
            await next(ctx);
        });
        map(app, self);
        await app.StartAsync();
        self.BaseUri = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        return self;
    }

    /// <summary>Writes server-sent events (event name optional) and flushes after each.</summary>
    public static async Task WriteSseAsync(HttpResponse response, IEnumerable<(string? Event, string Data)> events)
    {
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        foreach (var (name, data) in events)
        {
            if (name is not null)
            {
                await response.WriteAsync($"event: {name}\n");
            }
            await response.WriteAsync($"data: {data}\n\n");
            await response.Body.FlushAsync();
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
