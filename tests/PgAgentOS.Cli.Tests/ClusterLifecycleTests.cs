using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace PgAgentOS.Cli.Tests;

/// <summary>aos up / status / down on a real embedded cluster in a throwaway data directory.</summary>
public sealed class ClusterLifecycleTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "aos-up-test-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly Aos _aos = new(null);

    [Fact]
    public async Task UpCreatesThenOnlyReportsAndMovesOffAPortThatIsTaken()
    {
        try
        {
            var first = Json(await _aos.RunAsync("up", "--data-dir", _dir, "--json"));
            Assert.Equal("created", first.GetProperty("action").GetString());
            Assert.Equal("installed", first.GetProperty("kernel").GetProperty("action").GetString());
            var port = first.GetProperty("port").GetInt32();
            Assert.StartsWith("postgresql://aos:", first.GetProperty("url").GetString(), StringComparison.Ordinal);

            // Run again: nothing but a report.
            var again = Json(await _aos.RunAsync("up", "--data-dir", _dir, "--json"));
            Assert.Equal("running", again.GetProperty("action").GetString());
            Assert.Equal("unchanged", again.GetProperty("kernel").GetProperty("action").GetString());
            Assert.Equal(port, again.GetProperty("port").GetInt32());

            var status = Json(await _aos.RunAsync("status", "--data-dir", _dir, "--json"));
            Assert.True(status.GetProperty("running").GetBoolean());
            Assert.True(status.GetProperty("kernel_current").GetBoolean());

            Assert.Equal("stopped", Json(await _aos.RunAsync("down", "--data-dir", _dir, "--json")).GetProperty("action").GetString());
            Assert.False(Json(await _aos.RunAsync("status", "--data-dir", _dir, "--json")).GetProperty("running").GetBoolean());

            // Someone else now listens on the cluster's port: up starts it on another one.
            using var squatter = new TcpListener(IPAddress.Loopback, port);
            squatter.Start();
            var restarted = Json(await _aos.RunAsync("up", "--data-dir", _dir, "--json"));
            Assert.Equal("started", restarted.GetProperty("action").GetString());
            Assert.NotEqual(port, restarted.GetProperty("port").GetInt32());
            Assert.Equal("unchanged", restarted.GetProperty("kernel").GetProperty("action").GetString());
        }
        finally
        {
            await _aos.RunAsync("down", "--data-dir", _dir);
        }
    }

    [Fact]
    public async Task UpRefusesADirectoryThatIsNotAClusterAndChangesNothing()
    {
        Directory.CreateDirectory(_dir);
        await File.WriteAllTextAsync(Path.Combine(_dir, "notes.txt"), "mine");
        var r = await _aos.RunAsync("up", "--data-dir", _dir);
        Assert.Equal(ExitCodes.Conflict, r.Code);
        Assert.Single(r.Err.Trim().Split('\n'));
        Assert.Contains("is not a PostgreSQL data directory and is not empty", r.Err, StringComparison.Ordinal);
        Assert.Equal(["notes.txt"], Directory.GetFileSystemEntries(_dir).Select(Path.GetFileName));

        // A cluster that aos did not create is refused too.
        await File.WriteAllTextAsync(Path.Combine(_dir, "PG_VERSION"), "15\n");
        var foreign = await _aos.RunAsync("up", "--data-dir", _dir);
        Assert.Equal(ExitCodes.Conflict, foreign.Code);
        Assert.Contains("that aos did not create", foreign.Err, StringComparison.Ordinal);
    }

    private static JsonElement Json(CliResult r)
    {
        Assert.True(r.Code == 0, r.ToString());
        return JsonDocument.Parse(r.Out).RootElement.Clone();
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
