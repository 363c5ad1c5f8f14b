using System.Net;
using System.Net.Sockets;

namespace PgAgentOS.Runtime.Egress;

/// <summary>
/// Which addresses tools must never reach: loopback, private, link-local (cloud metadata),
/// carrier-grade NAT, documentation, multicast, reserved, and IPv6 forms that embed IPv4
/// (mapped ::ffff:0:0/96, compatible ::/96, NAT64 64:ff9b::/96, 6to4, Teredo). Only global
/// unicast passes. (RELIABILITY E2.)
/// </summary>
public static class AddressPolicy
{
    private static readonly (IPAddress Net, int Bits, string Why)[] V4 =
    [
        (IPAddress.Parse("0.0.0.0"), 8, "this-network (0.0.0.0/8)"),
        (IPAddress.Parse("10.0.0.0"), 8, "private (10.0.0.0/8)"),
        (IPAddress.Parse("100.64.0.0"), 10, "carrier-grade NAT (100.64.0.0/10)"),
        (IPAddress.Parse("127.0.0.0"), 8, "loopback (127.0.0.0/8)"),
        (IPAddress.Parse("169.254.0.0"), 16, "link-local / cloud metadata (169.254.0.0/16)"),
        (IPAddress.Parse("172.16.0.0"), 12, "private (172.16.0.0/12)"),
        (IPAddress.Parse("192.0.0.0"), 24, "IETF protocol assignments (192.0.0.0/24)"),
        (IPAddress.Parse("192.0.2.0"), 24, "documentation (192.0.2.0/24)"),
        (IPAddress.Parse("192.88.99.0"), 24, "6to4 relay (192.88.99.0/24)"),
        (IPAddress.Parse("192.168.0.0"), 16, "private (192.168.0.0/16)"),
        (IPAddress.Parse("198.18.0.0"), 15, "benchmarking (198.18.0.0/15)"),
        (IPAddress.Parse("198.51.100.0"), 24, "documentation (198.51.100.0/24)"),
        (IPAddress.Parse("203.0.113.0"), 24, "documentation (203.0.113.0/24)"),
        (IPAddress.Parse("224.0.0.0"), 4, "multicast (224.0.0.0/4)"),
        (IPAddress.Parse("240.0.0.0"), 4, "reserved (240.0.0.0/4, broadcast)"),
    ];

    private static readonly (IPAddress Net, int Bits, string Why)[] V6 =
    [
        (IPAddress.Parse("::"), 96, "IPv4-compatible or unspecified (::/96)"),
        (IPAddress.Parse("::ffff:0:0"), 96, "IPv4-mapped (::ffff:0:0/96)"),
        (IPAddress.Parse("64:ff9b::"), 96, "NAT64 (64:ff9b::/96)"),
        (IPAddress.Parse("64:ff9b:1::"), 48, "local NAT64 (64:ff9b:1::/48)"),
        (IPAddress.Parse("100::"), 64, "discard (100::/64)"),
        (IPAddress.Parse("2001::"), 23, "IETF protocol assignments and Teredo (2001::/23)"),
        (IPAddress.Parse("2001:db8::"), 32, "documentation (2001:db8::/32)"),
        (IPAddress.Parse("2002::"), 16, "6to4 (2002::/16)"),
        (IPAddress.Parse("fc00::"), 7, "unique local (fc00::/7)"),
        (IPAddress.Parse("fe80::"), 10, "link-local (fe80::/10)"),
        (IPAddress.Parse("fec0::"), 10, "site-local (fec0::/10)"),
        (IPAddress.Parse("ff00::"), 8, "multicast (ff00::/8)"),
    ];

    /// <summary>Why a tool may not connect to this address, or null when it may.</summary>
    public static string? Refusal(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            if (address.IsIPv4MappedToIPv6)
            {
                var inner = Refusal(address.MapToIPv4());
                return "IPv4-mapped IPv6 address" + (inner is null ? "" : " of a " + inner + " address");
            }
            foreach (var (net, bits, why) in V6)
            {
                if (InPrefix(address, net, bits))
                {
                    return why;
                }
            }
            // only global unicast (2000::/3) is reachable
            var first = address.GetAddressBytes()[0];
            return (first & 0xE0) == 0x20 ? null : "not a global unicast IPv6 address";
        }
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            foreach (var (net, bits, why) in V4)
            {
                if (InPrefix(address, net, bits))
                {
                    return why;
                }
            }
            return null;
        }
        return "not an IP address";
    }

    private static bool InPrefix(IPAddress address, IPAddress net, int bits)
    {
        var a = address.GetAddressBytes();
        var n = net.GetAddressBytes();
        if (a.Length != n.Length)
        {
            return false;
        }
        var full = bits / 8;
        for (var i = 0; i < full; i++)
        {
            if (a[i] != n[i])
            {
                return false;
            }
        }
        var rest = bits % 8;
        if (rest == 0)
        {
            return true;
        }
        var mask = (byte)(0xFF << (8 - rest));
        return (a[full] & mask) == (n[full] & mask);
    }
}

/// <summary>Resolves host names (injected in tests to play DNS tricks).</summary>
public interface IDnsResolver
{
    /// <summary>The addresses of a host name.</summary>
    Task<IPAddress[]> ResolveAsync(string host, CancellationToken ct);
}

/// <summary>The system's resolver.</summary>
public sealed class SystemDnsResolver : IDnsResolver
{
    /// <inheritdoc />
    public Task<IPAddress[]> ResolveAsync(string host, CancellationToken ct) => Dns.GetHostAddressesAsync(host, ct);
}

/// <summary>Opens a TCP connection to an address that was checked (injected in tests).</summary>
public delegate ValueTask<Stream> SocketConnector(IPEndPoint endpoint, CancellationToken ct);

/// <summary>Limits and seams of http_fetch.</summary>
public sealed record EgressOptions
{
    /// <summary>Redirects followed (each hop is checked again).</summary>
    public int MaxRedirects { get; init; } = 3;
    /// <summary>Bytes of a response body read at most.</summary>
    public int MaxResponseBytes { get; init; } = 512 * 1024;
    /// <summary>Time limit of one fetch (all hops).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(20);
    /// <summary>Name resolution (default: the system's).</summary>
    public IDnsResolver Resolver { get; init; } = new SystemDnsResolver();
    /// <summary>How connections are opened (default: a TCP socket to the checked address).</summary>
    public SocketConnector? Connector { get; init; }

    /// <summary>
    /// TEST ONLY, empty by default: "host:port" pairs that may be fetched over plain http and may
    /// resolve to a loopback address (a local test server). Never set this in production.
    /// </summary>
    public IReadOnlySet<string> InsecureTestEndpoints { get; init; } = new HashSet<string>();
}
