using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using PgAgentOS.Client;
using PgAgentOS.Runtime.Egress;
using PgAgentOS.Runtime.Tools;

namespace PgAgentOS.Runtime.Tests;

/// <summary>http_fetch and the egress allowlist (RELIABILITY E1–E4).</summary>
public sealed class EgressTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    /// <summary>A resolver that answers from a table (and counts lookups).</summary>
    private sealed class FakeDns(Func<string, int, IPAddress[]> answer) : IDnsResolver
    {
        public ConcurrentQueue<string> Lookups { get; } = new();

        public Task<IPAddress[]> ResolveAsync(string host, CancellationToken ct)
        {
            Lookups.Enqueue(host);
            return Task.FromResult(answer(host, Lookups.Count));
        }
    }

    /// <summary>Records where connections would go and never opens one (no traffic leaves the machine).</summary>
    private sealed class NoNetwork
    {
        public ConcurrentQueue<IPEndPoint> Attempts { get; } = new();

        public ValueTask<Stream> Connect(IPEndPoint endpoint, CancellationToken ct)
        {
            Attempts.Enqueue(endpoint);
            throw new IOException("test: no network");
        }
    }

    private async Task<(TenantSetup T, ToolCall Call)> LeasedAsync(string name, params (string Host, int Port)[] allow)
    {
        var t = await Kit.TenantAsync(db, name, ["http_fetch"]);
        foreach (var (host, port) in allow)
        {
            await t.App.AllowEgressAsync(host, port);
        }
        await t.AskAsync("fetch something");
        var ctx = await t.Worker.ClaimTurnAsync("w-egress", 60, t.Tenant);
        Assert.NotNull(ctx);
        var skill = Assert.Single(await t.Worker.TurnSkillsAsync(ctx.TurnId, ctx.LeaseToken!.Value));
        Assert.Equal("http_fetch", skill.SkillKey);
        return (t, new ToolCall(ctx, ctx.LeaseToken!.Value, Guid.NewGuid(), "call_1", "http_fetch", [], skill, t.Worker));
    }

    private static Task<ToolResult> FetchAsync(HttpFetchTool tool, ToolCall call, string url) =>
        tool.RunAsync(call with { Arguments = new JsonObject { ["url"] = url } }, CancellationToken.None);

    private static async Task<List<JsonObject>> LogAsync(TenantSetup t) =>
        await t.App.QueryJsonAsync("SELECT decision, host, url, reason, resolved_ip::text AS ip, status_code FROM aos_egress.request ORDER BY created_at");

    [Fact]
    public async Task E1_AHostOffTheAllowlistIsRefusedBeforeAnyLookupAndLogged()
    {
        var (other, _) = await LeasedAsync("egress-b", ("b-only.example.com", 443));
        var (t, call) = await LeasedAsync("egress-a", ("allowed.example.com", 443));
        var dns = new FakeDns((_, _) => [IPAddress.Parse("93.184.216.34")]);
        var net = new NoNetwork();
        var tool = new HttpFetchTool(new EgressOptions { Resolver = dns, Connector = net.Connect });

        var r1 = await FetchAsync(tool, call, "https://evil.example.net/steal");
        var r2 = await FetchAsync(tool, call, "https://b-only.example.com/");
        Assert.False(r1.Success);
        Assert.Contains("not on the tenant's egress allowlist", r1.Error, StringComparison.Ordinal);
        Assert.False(r2.Success);
        Assert.Empty(dns.Lookups);
        Assert.Empty(net.Attempts);
        var log = await LogAsync(t);
        Assert.Equal(["deny", "deny"], log.Select(l => (string)l["decision"]!));
        Assert.Equal(["evil.example.net", "b-only.example.com"], log.Select(l => (string)l["host"]!));
        Assert.Empty(await LogAsync(other));
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("10.1.2.3")]
    [InlineData("172.16.5.4")]
    [InlineData("192.168.1.1")]
    [InlineData("169.254.169.254")]
    [InlineData("100.64.0.1")]
    [InlineData("0.0.0.0")]
    [InlineData("::1")]
    [InlineData("fc00::5")]
    [InlineData("fe80::1")]
    [InlineData("::ffff:127.0.0.1")]
    [InlineData("::ffff:10.0.0.5")]
    [InlineData("64:ff9b::a00:1")]
    public async Task E2_AnAllowlistedNameThatResolvesToASpecialAddressIsRefused(string address)
    {
        var (t, call) = await LeasedAsync("e2", ("internal.example.com", 443));
        var dns = new FakeDns((_, _) => [IPAddress.Parse("93.184.216.34"), IPAddress.Parse(address)]);
        var net = new NoNetwork();
        var tool = new HttpFetchTool(new EgressOptions { Resolver = dns, Connector = net.Connect });
        var r = await FetchAsync(tool, call, "https://internal.example.com/admin");
        Assert.False(r.Success);
        Assert.Contains("resolves to", r.Error, StringComparison.Ordinal);
        Assert.Empty(net.Attempts);
        var deny = Assert.Single(await LogAsync(t));
        Assert.Equal("deny", (string)deny["decision"]!);
        Assert.Equal(IPAddress.Parse(address).ToString(), IPAddress.Parse(((string)deny["ip"]!).Split('/')[0]).ToString());
    }

    [Theory]
    [InlineData("https://2130706433/")]
    [InlineData("https://0177.0.0.1/")]
    [InlineData("https://0x7f000001/")]
    [InlineData("https://[::1]/")]
    [InlineData("https://127.0.0.1/")]
    public async Task E2_LiteralAddressesInAnyFormAreRefused(string url)
    {
        var (t, call) = await LeasedAsync("e2lit", ("allowed.example.com", 443));
        var net = new NoNetwork();
        var r = await FetchAsync(new HttpFetchTool(new EgressOptions { Connector = net.Connect }), call, url);
        Assert.False(r.Success);
        Assert.Empty(net.Attempts);
        Assert.Equal("deny", (string)Assert.Single(await LogAsync(t))["decision"]!);
    }

    [Fact]
    public void E2_OnlyGlobalUnicastPasses()
    {
        Assert.Null(AddressPolicy.Refusal(IPAddress.Parse("8.8.8.8")));
        Assert.Null(AddressPolicy.Refusal(IPAddress.Parse("93.184.216.34")));
        Assert.Null(AddressPolicy.Refusal(IPAddress.Parse("2606:4700:4700::1111")));
        foreach (var bad in new[] { "127.0.0.1", "10.0.0.1", "172.31.255.255", "192.168.0.1", "169.254.169.254", "100.127.255.255", "0.0.0.0",
                     "255.255.255.255", "224.0.0.1", "::", "::1", "fc00::1", "fd12::1", "fe80::1", "::ffff:127.0.0.1", "::ffff:192.168.1.1",
                     "64:ff9b::a00:1", "2002:7f00:1::", "2001:db8::1", "ff02::1", "::127.0.0.1" })
        {
            Assert.NotNull(AddressPolicy.Refusal(IPAddress.Parse(bad)));
        }
        Assert.Null(AddressPolicy.Refusal(IPAddress.Parse("172.32.0.1")));
        Assert.Null(AddressPolicy.Refusal(IPAddress.Parse("100.128.0.1")));
    }

    [Fact]
    public async Task E3_TheConnectionGoesOnlyToTheAddressThatWasChecked()
    {
        var (_, call) = await LeasedAsync("e3", ("rebind.example.com", 443));
        // DNS rebinding: a public address first, loopback afterwards.
        var dns = new FakeDns((_, n) => n == 1 ? [IPAddress.Parse("93.184.216.34")] : [IPAddress.Loopback]);
        var net = new NoNetwork();
        var tool = new HttpFetchTool(new EgressOptions { Resolver = dns, Connector = net.Connect });
        var r = await FetchAsync(tool, call, "https://rebind.example.com/");
        Assert.False(r.Success);
        Assert.Single(dns.Lookups);
        var attempt = Assert.Single(net.Attempts);
        Assert.Equal(IPAddress.Parse("93.184.216.34"), attempt.Address);
        Assert.DoesNotContain(net.Attempts, a => IPAddress.IsLoopback(a.Address));
    }

    [Theory]
    [InlineData("https://allowed.example.com@evil.example.net/", "user information")]
    [InlineData("https://allowed.example.com.evil.example.net/", "allowlist")]
    [InlineData("https://evil-allowed.example.com/", "allowlist")]
    [InlineData("https://xallowed.example.com/", "allowlist")]
    [InlineData("http://allowed.example.com/", "https only")]
    [InlineData("file:///etc/passwd", "scheme")]
    [InlineData("gopher://allowed.example.com/", "scheme")]
    [InlineData("ftp://allowed.example.com/", "scheme")]
    [InlineData("https://allowed.example.com:8443/", "allowlist")]
    [InlineData("https://\u0430llowed.example.com/", "allowlist")]
    public async Task E4_UrlConfusionIsRefused(string url, string why)
    {
        var (_, call) = await LeasedAsync("e4", ("allowed.example.com", 443));
        var dns = new FakeDns((_, _) => [IPAddress.Parse("93.184.216.34")]);
        var net = new NoNetwork();
        var r = await FetchAsync(new HttpFetchTool(new EgressOptions { Resolver = dns, Connector = net.Connect }), call, url);
        Assert.False(r.Success);
        Assert.Contains(why, r.Error, StringComparison.Ordinal);
        Assert.Empty(dns.Lookups);
        Assert.Empty(net.Attempts);
    }

    [Fact]
    public async Task E4_UpperCaseAndATrailingDotMatchTheEntry()
    {
        var (_, call) = await LeasedAsync("e4ok", ("allowed.example.com", 443));
        var dns = new FakeDns((_, _) => [IPAddress.Parse("93.184.216.34")]);
        var net = new NoNetwork();
        var r = await FetchAsync(new HttpFetchTool(new EgressOptions { Resolver = dns, Connector = net.Connect }), call, "https://ALLOWED.Example.COM./x");
        Assert.False(r.Success); // no network in tests: the allowlist and address checks passed, the connection was attempted
        Assert.Equal("allowed.example.com", Assert.Single(dns.Lookups));
        Assert.Single(net.Attempts);
    }

    [Fact]
    public async Task FetchesThroughTheTestEndpointAndRechecksEveryRedirect()
    {
        await using var server = await LocalServer.StartAsync((app, _) =>
        {
            app.MapGet("/ok", () => Results.Text("hello from the allowed host", "text/plain"));
            app.MapGet("/r1", () => Results.Redirect("/r2"));
            app.MapGet("/r2", () => Results.Redirect("/r3"));
            app.MapGet("/r3", () => Results.Redirect("/ok"));
            app.MapGet("/loop", () => Results.Redirect("/loop"));
            app.MapGet("/to-evil", () => Results.Redirect("https://evil.example.net/"));
            app.MapGet("/to-internal", () => Results.Redirect("https://internal.example.com/"));
            app.MapGet("/to-metadata", () => Results.Redirect("http://169.254.169.254/latest/meta-data/"));
        });
        var (t, call) = await LeasedAsync("redirects", ("api.example.test", server.Port), ("internal.example.com", 443));
        var dns = new FakeDns((host, _) => host == "api.example.test" ? [IPAddress.Loopback] : [IPAddress.Parse("10.0.0.5")]);
        var tool = new HttpFetchTool(new EgressOptions
        {
            Resolver = dns,
            InsecureTestEndpoints = new HashSet<string> { $"api.example.test:{server.Port}" },
        });
        var baseUrl = $"http://api.example.test:{server.Port}";

        var ok = await FetchAsync(tool, call, baseUrl + "/ok");
        Assert.True(ok.Success, ok.Error);
        Assert.Equal(200, (int)ok.Output!["status"]!);
        Assert.Equal("hello from the allowed host", (string)ok.Output!["body"]!);

        var three = await FetchAsync(tool, call, baseUrl + "/r1");
        Assert.True(three.Success, three.Error);
        Assert.EndsWith("/ok", (string)three.Output!["url"]!, StringComparison.Ordinal);

        var loop = await FetchAsync(tool, call, baseUrl + "/loop");
        Assert.False(loop.Success);
        Assert.Contains("more than 3 redirects", loop.Error, StringComparison.Ordinal);

        var evil = await FetchAsync(tool, call, baseUrl + "/to-evil");
        Assert.Contains("not on the tenant's egress allowlist", evil.Error, StringComparison.Ordinal);
        var internalHop = await FetchAsync(tool, call, baseUrl + "/to-internal");
        Assert.Contains("resolves to 10.0.0.5", internalHop.Error, StringComparison.Ordinal);
        var metadata = await FetchAsync(tool, call, baseUrl + "/to-metadata");
        Assert.False(metadata.Success);
        Assert.Contains("literal addresses", metadata.Error, StringComparison.Ordinal);

        Assert.All(server.Requests, r => Assert.False(r.Headers.ContainsKey("Authorization")));
        Assert.All(server.Requests, r => Assert.False(r.Headers.ContainsKey("Cookie")));
        var log = await LogAsync(t);
        Assert.Contains(log, l => (string)l["decision"]! == "allow" && (int?)l["status_code"] == 200 && ((string)l["ip"]!).StartsWith("127.0.0.1", StringComparison.Ordinal));
        Assert.Contains(log, l => (string)l["decision"]! == "deny" && (string)l["host"]! == "evil.example.net");
        Assert.Contains(log, l => (string)l["decision"]! == "deny" && ((string?)l["ip"] ?? "").StartsWith("10.0.0.5", StringComparison.Ordinal));
        Assert.Contains(log, l => (string)l["decision"]! == "deny" && ((string?)l["reason"] ?? "").Contains("more than 3 redirects", StringComparison.Ordinal));
    }

    [Fact]
    public async Task PlainHttpToALoopbackServerIsRefusedWithoutTheTestOption()
    {
        await using var server = await LocalServer.StartAsync((app, _) => app.MapGet("/ok", () => "hello"));
        var (_, call) = await LeasedAsync("notest", ("api.example.test", server.Port));
        var dns = new FakeDns((_, _) => [IPAddress.Loopback]);
        var r = await FetchAsync(new HttpFetchTool(new EgressOptions { Resolver = dns }), call, $"http://api.example.test:{server.Port}/ok");
        Assert.False(r.Success);
        Assert.Contains("https only", r.Error, StringComparison.Ordinal);
        var r2 = await FetchAsync(new HttpFetchTool(new EgressOptions { Resolver = dns }), call, $"https://api.example.test:{server.Port}/ok");
        Assert.False(r2.Success);
        Assert.Contains("loopback", r2.Error, StringComparison.Ordinal);
        Assert.Empty(server.Requests);
    }

    [Fact]
    public async Task TheKernelChecksAreBoundToTheLease()
    {
        var (t, call) = await LeasedAsync("lease", ("allowed.example.com", 443));
        var e = await Assert.ThrowsAsync<LeaseLostException>(() =>
            t.Worker.CheckEgressHostAsync(call.TurnId, Guid.NewGuid(), "http_fetch", "GET", "https://allowed.example.com/", "allowed.example.com", 443));
        Assert.Equal("AO004", e.SqlState);
        var ok = await t.Worker.CheckEgressHostAsync(call.TurnId, call.LeaseToken, "http_fetch", "GET", "https://allowed.example.com/", "Allowed.Example.com.", 443);
        Assert.True(ok.Allowed);
        var wrongPort = await t.Worker.CheckEgressHostAsync(call.TurnId, call.LeaseToken, "http_fetch", "GET", "https://allowed.example.com:444/", "allowed.example.com", 444);
        Assert.False(wrongPort.Allowed);
    }
}
