using System.ComponentModel;
using Spectre.Console.Cli;

namespace PgAgentOS.Cli.Commands;

/// <summary>Options of aos demo.</summary>
public sealed class DemoSettings : ClusterSettings
{
    /// <summary>--yes.</summary>
    [CommandOption("-y|--yes")]
    [Description("Approve the tool call without asking (for scripts and CI).")]
    public bool Yes { get; init; }

    /// <summary>--message.</summary>
    [CommandOption("--message <TEXT>")]
    [Description("What to ask the demo agent.")]
    public string? Message { get; init; }

    /// <summary>--offline.</summary>
    [CommandOption("--offline")]
    [Description("Use the scripted stand-in model even when a real provider is configured.")]
    public bool Offline { get; init; }

    /// <summary>--model.</summary>
    [CommandOption("--model <MODEL>")]
    [Description("Use this model (provider/name) instead of picking one from the environment.")]
    public string? Model { get; init; }
}

/// <summary>aos demo (waits for the runtime).</summary>
public sealed class DemoCommand : AosCommand<DemoSettings>
{
    /// <inheritdoc />
    protected override Task<int> RunAsync(DemoSettings settings, CancellationToken ct) =>
        throw new CliException("the demo is not built yet", ExitCodes.Prerequisite);
}
