namespace PgAgentOS.Cli.Tests;

/// <summary>Every command's help (with its example) and the errors for bad usage, against golden files.</summary>
public sealed class HelpTests
{
    /// <summary>Every command of aos, as typed.</summary>
    public static readonly string[][] Commands =
    [
        [], ["demo"], ["up"], ["down"], ["status"], ["install"], ["worker"],
        ["tenant"], ["tenant", "create"], ["tenant", "list"], ["tenant", "show"],
        ["persona"], ["persona", "create"], ["persona", "list"], ["persona", "show"],
        ["agent"], ["agent", "create"], ["agent", "list"], ["agent", "show"],
        ["conversation"], ["conversation", "start"], ["conversation", "list"],
        ["chat"], ["send"], ["tail"], ["timeline"], ["stats"], ["verify"],
        ["approvals"], ["approve"], ["reject"], ["inject"], ["override"], ["pause"], ["resume"], ["rate"], ["flag"],
    ];

    public static TheoryData<string> CommandNames()
    {
        var data = new TheoryData<string>();
        foreach (var c in Commands)
        {
            data.Add(string.Join(' ', c));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(CommandNames))]
    public async Task HelpShowsUsageAndAnExample(string command)
    {
        var args = command.Length == 0 ? new[] { "--help" } : [.. command.Split(' '), "--help"];
        var r = await new Aos(null).RunAsync(args);
        Expect.Ok(r);
        Assert.Contains("USAGE:", r.Out, StringComparison.Ordinal);
        Assert.Contains("EXAMPLES:", r.Out, StringComparison.Ordinal);
        Assert.Equal("", r.Err);
        Golden.Check("help-" + (command.Length == 0 ? "aos" : command.Replace(' ', '-')), r);
    }

    [Theory]
    [InlineData("unknown-command", "frobnicate")]
    [InlineData("unknown-flag", "tenant list --bogus")]
    [InlineData("missing-argument", "approve")]
    [InlineData("extra-argument", "resume abc def")]
    [InlineData("bad-severity", "flag 1234abcd oops --severity urgent")]
    [InlineData("bad-score", "rate 1234abcd 9")]
    [InlineData("bad-as", "inject 1234abcd hello --as robot")]
    [InlineData("bad-install-method", "install --method magic")]
    [InlineData("missing-prompt", "persona create helper")]
    [InlineData("bad-days", "stats --days 0")]
    [InlineData("bad-timeout", "send 1234abcd hi --timeout 0")]
    [InlineData("export-and-checkpoint", "verify --export a.json --checkpoint b.json")]
    [InlineData("bad-concurrency", "worker --concurrency 0")]
    public async Task BadUsageIsOneLineAndExitCode2(string name, string command)
    {
        // No database is configured: usage is checked before anything connects.
        var r = await new Aos(null).RunAsync(command.Split(' '));
        Expect.Code(2, r);
        var line = Assert.Single(r.Err.TrimEnd('\n').Split('\n'));
        Assert.StartsWith("aos: ", line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.All, StringComparison.Ordinal);
        Golden.Check("usage-" + name, r);
    }

    [Fact]
    public async Task VersionIsTheKernelVersion()
    {
        var r = await new Aos(null).RunAsync("--version");
        Assert.Equal(0, r.Code);
        Assert.Equal(PgAgentOS.Client.KernelScript.Version, r.Out.Trim());
    }
}
