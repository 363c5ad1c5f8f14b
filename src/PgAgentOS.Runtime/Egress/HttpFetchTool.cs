using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using PgAgentOS.Client;
using PgAgentOS.Runtime.Tools;

namespace PgAgentOS.Runtime.Egress;

/// <summary>A connection was refused by the address check.</summary>
public sealed class EgressDeniedException(string message, IPAddress? address) : Exception(message)
{
    /// <summary>The address that was refused.</summary>
    public IPAddress? Address { get; } = address;
}

/// <summary>
/// http_fetch through the tenant's egress allowlist (RELIABILITY E1–E4):
/// <list type="bullet">
/// <item>https only (plain http only for endpoints in the test-only option), no user info in the
/// URL, the host as a name (never a literal address), compared exactly after normalisation
/// (lower case, no trailing dot, IDN as punycode), with its port, by the kernel
/// (aos_egress.check_host, which logs refusals);</item>
/// <item>the name is resolved once per connection, in SocketsHttpHandler.ConnectCallback; every
/// address is checked against private and special ranges and the connection goes only to an
/// address that was checked (no rebinding window); no proxy;</item>
/// <item>redirects are followed by hand, at most three, each hop checked like the first; no
/// Authorization header or cookie is ever sent;</item>
/// <item>every decision lands in aos_egress.request.</item>
/// </list>
/// </summary>
public sealed class HttpFetchTool(EgressOptions options) : ITool
{
    private static readonly HttpRequestOptionsKey<ConnectionState> StateKey = new("aos.egress");

    private sealed class ConnectionState
    {
        public required string Host { get; init; }
        public required int Port { get; init; }
        public IPAddress? Connected { get; set; }
    }

    /// <inheritdoc />
    public async Task<ToolResult> RunAsync(ToolCall call, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(call);
        var url = call.Arguments.Text("url") ?? "";
        var method = (call.Arguments.Text("method") ?? "GET").ToUpperInvariant();
        if (method is not ("GET" or "HEAD"))
        {
            return ToolResult.Fail("only GET and HEAD are allowed");
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(options.Timeout);
        using var handler = CreateHandler();
        using var http = new HttpClient(handler, disposeHandler: false) { Timeout = Timeout.InfiniteTimeSpan };

        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri))
        {
            await LogAsync(call, "deny", "not an absolute URL", method, url, url.Length > 200 ? url[..200] : url, null, null, null, null, ct);
            return ToolResult.Fail("not an absolute URL");
        }
        for (var hop = 0; ; hop++)
        {
            var refusal = CheckUri(uri, out var host, out var port);
            if (refusal is not null)
            {
                await LogAsync(call, "deny", refusal, method, uri.OriginalString, host ?? uri.Host, null, null, null, null, ct);
                return ToolResult.Fail($"refused: {refusal}");
            }
            var decision = await call.Client.CheckEgressHostAsync(call.TurnId, call.LeaseToken, call.Name, method, uri.AbsoluteUri, host!, port,
                call.StepId, ct);
            if (!decision.Allowed)
            {
                return ToolResult.Fail($"refused: {decision.Reason}");
            }
            if (hop > options.MaxRedirects)
            {
                await LogAsync(call, "deny", $"more than {options.MaxRedirects} redirects", method, uri.AbsoluteUri, host!, null, null, null, null, ct);
                return ToolResult.Fail($"refused: more than {options.MaxRedirects} redirects");
            }

            var state = new ConnectionState { Host = host!, Port = port };
            using var request = new HttpRequestMessage(new HttpMethod(method), uri);
            request.Options.Set(StateKey, state);
            request.Headers.UserAgent.ParseAdd("pgAgentOS-worker/0.1");
            request.Headers.Accept.ParseAdd("*/*");
            var watch = Stopwatch.StartNew();
            HttpResponseMessage response;
            try
            {
                response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            }
            catch (HttpRequestException e) when (FindDenied(e) is { } denied)
            {
                await LogAsync(call, "deny", denied.Message, method, uri.AbsoluteUri, host!, denied.Address?.ToString(), null, null, null, ct);
                return ToolResult.Fail($"refused: {denied.Message}");
            }
            catch (Exception e) when (e is HttpRequestException or IOException or SocketException
                                      || (e is OperationCanceledException && !ct.IsCancellationRequested))
            {
                var why = e is OperationCanceledException ? $"timed out after {options.Timeout.TotalSeconds:0} s" : e.Message;
                await LogAsync(call, "allow", "request failed: " + why, method, uri.AbsoluteUri, host!, state.Connected?.ToString(), null, null,
                    (int)watch.ElapsedMilliseconds, ct);
                return ToolResult.Fail("the request failed: " + why);
            }
            using (response)
            {
                var status = (int)response.StatusCode;
                if (status is >= 300 and < 400 && response.Headers.Location is { } location)
                {
                    await LogAsync(call, "allow", $"redirect to {location}", method, uri.AbsoluteUri, host!, state.Connected?.ToString(), status, 0,
                        (int)watch.ElapsedMilliseconds, ct);
                    uri = location.IsAbsoluteUri ? location : new Uri(uri, location);
                    continue;
                }
                var (body, bytes, truncated) = await ReadBodyAsync(response, method, timeout.Token);
                await LogAsync(call, "allow", null, method, uri.AbsoluteUri, host!, state.Connected?.ToString(), status, bytes,
                    (int)watch.ElapsedMilliseconds, ct);
                var headers = new JsonObject();
                foreach (var h in response.Content.Headers.Concat(response.Headers))
                {
                    if (h.Key is "Content-Type" or "Content-Length" or "Last-Modified" or "ETag" or "Date" or "Cache-Control")
                    {
                        headers[h.Key.ToLowerInvariant()] = string.Join(", ", h.Value);
                    }
                }
                return ToolResult.Ok(new JsonObject
                {
                    ["url"] = uri.AbsoluteUri,
                    ["status"] = status,
                    ["headers"] = headers,
                    ["body"] = body,
                    ["bytes"] = bytes,
                    ["truncated"] = truncated,
                });
            }
        }
    }

    /// <summary>Why a URL may not be fetched at all (scheme, user info, literal address), or null; the normalised host and port.</summary>
    public string? CheckUri(Uri uri, out string? host, out int port)
    {
        ArgumentNullException.ThrowIfNull(uri);
        host = null;
        port = uri.IsDefaultPort ? (uri.Scheme == "http" ? 80 : 443) : uri.Port;
        if (uri.Scheme is not ("https" or "http"))
        {
            return $"scheme {uri.Scheme} is not allowed (https only)";
        }
        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            return "URLs with user information (user@host) are not allowed";
        }
        if (uri.HostNameType is UriHostNameType.IPv4 or UriHostNameType.IPv6)
        {
            var ip = IPAddress.Parse(uri.Host.Trim('[', ']'));
            return $"literal addresses are not allowed ({ip}{(AddressPolicy.Refusal(ip) is { } r ? ": " + r : "")}); allowlist a host name";
        }
        if (uri.HostNameType != UriHostNameType.Dns)
        {
            return "the host is not a DNS name";
        }
        host = uri.IdnHost.TrimEnd('.').ToLowerInvariant();
        if (uri.Scheme == "http" && !options.InsecureTestEndpoints.Contains($"{host}:{port}"))
        {
            return "plain http is not allowed (https only)";
        }
        return null;
    }

    private SocketsHttpHandler CreateHandler() => new()
    {
        AllowAutoRedirect = false,
        UseCookies = false,
        UseProxy = false,
        Credentials = null,
        PreAuthenticate = false,
        AutomaticDecompression = DecompressionMethods.All,
        ConnectTimeout = TimeSpan.FromSeconds(10),
        MaxResponseHeadersLength = 64,
        PooledConnectionLifetime = TimeSpan.FromMinutes(1),
        ConnectCallback = ConnectAsync,
    };

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        if (!context.InitialRequestMessage.Options.TryGetValue(StateKey, out var state))
        {
            throw new EgressDeniedException("a connection without an egress check", null);
        }
        var host = context.DnsEndPoint.Host.TrimEnd('.').ToLowerInvariant();
        var port = context.DnsEndPoint.Port;
        if (host != state.Host || port != state.Port)
        {
            throw new EgressDeniedException($"{host}:{port} was not the host that was checked", null);
        }
        var addresses = await options.Resolver.ResolveAsync(host, ct);
        if (addresses.Length == 0)
        {
            throw new EgressDeniedException($"{host} has no address", null);
        }
        var testEndpoint = options.InsecureTestEndpoints.Contains($"{host}:{port}");
        foreach (var a in addresses)
        {
            if (testEndpoint && IPAddress.IsLoopback(a))
            {
                continue;
            }
            if (AddressPolicy.Refusal(a) is { } why)
            {
                throw new EgressDeniedException($"{host} resolves to {a}, a {why} address", a);
            }
        }
        Exception? last = null;
        foreach (var a in addresses)
        {
            try
            {
                var stream = options.Connector is { } connector
                    ? await connector(new IPEndPoint(a, port), ct)
                    : await ConnectSocketAsync(new IPEndPoint(a, port), ct);
                state.Connected = a;
                return stream;
            }
            catch (Exception e) when (e is SocketException or IOException)
            {
                last = e;
            }
        }
        throw new IOException($"could not connect to {host}:{port}", last);
    }

    private static async ValueTask<Stream> ConnectSocketAsync(IPEndPoint endpoint, CancellationToken ct)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endpoint, ct);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private async Task<(JsonNode? Body, long Bytes, bool Truncated)> ReadBodyAsync(HttpResponseMessage response, string method, CancellationToken ct)
    {
        if (method == "HEAD")
        {
            return (null, 0, false);
        }
        await using var stream = await response.Content.ReadAsStreamAsync(ct);
        var buffer = new byte[options.MaxResponseBytes + 1];
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(read), ct);
            if (n == 0)
            {
                break;
            }
            read += n;
        }
        var truncated = read > options.MaxResponseBytes;
        var length = Math.Min(read, options.MaxResponseBytes);
        var type = response.Content.Headers.ContentType?.MediaType ?? "";
        var textual = type.StartsWith("text/", StringComparison.Ordinal) || type.Contains("json", StringComparison.Ordinal)
                      || type.Contains("xml", StringComparison.Ordinal) || type.Contains("javascript", StringComparison.Ordinal) || type.Length == 0;
        if (!textual)
        {
            return (JsonValue.Create($"({type}, {length.ToString(CultureInfo.InvariantCulture)} bytes, not text)"), length, truncated);
        }
        Encoding encoding;
        try
        {
            encoding = response.Content.Headers.ContentType?.CharSet is { Length: > 0 } cs ? Encoding.GetEncoding(cs.Trim('"')) : Encoding.UTF8;
        }
        catch (ArgumentException)
        {
            encoding = Encoding.UTF8;
        }
        return (JsonValue.Create(encoding.GetString(buffer, 0, length)), length, truncated);
    }

    private static EgressDeniedException? FindDenied(Exception e)
    {
        for (var x = e; x is not null; x = x.InnerException)
        {
            if (x is EgressDeniedException d)
            {
                return d;
            }
        }
        return null;
    }

    private static async Task LogAsync(ToolCall call, string decision, string? reason, string method, string url, string host, string? ip,
        int? status, long? bytes, int? durationMs, CancellationToken ct)
    {
        await call.Client.LogEgressRequestAsync(call.TurnId, call.LeaseToken, new EgressLogEntry
        {
            Decision = decision,
            Reason = reason,
            Method = method,
            Url = url.Length > 4000 ? url[..4000] : url,
            Host = string.IsNullOrEmpty(host) ? "(none)" : host,
            ResolvedIp = ip,
            StatusCode = status,
            Bytes = bytes,
            DurationMs = durationMs,
            SkillKey = call.Name,
            StepId = call.StepId,
        }, ct);
    }
}
