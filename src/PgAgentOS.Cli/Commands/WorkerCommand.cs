using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PgAgentOS.Cli.Commands;

/// <summary>Options of aos worker.</summary>
public sealed class WorkerSettings : ClusterSettings
{
    /// <summary>--concurrency.</summary>
    [CommandOption("-c|--concurrency <N>")]
    [Description("How many turns to run at once.")]
    [DefaultValue(4)]
    public int Concurrency { get; init; } = 4;

    /// <summary>--id.</summary>
    [CommandOption("--id <NAME>")]
    [Description("Worker name recorded with each claim. Default: host name and process id.")]
    public string? Id { get; init; }

    /// <summary>--until-idle.</summary>
    [CommandOption("--until-idle")]
    [Description("Exit when no turn is ready (for scripts and CI) instead of waiting for more.")]
    public bool UntilIdle { get; init; }

    /// <inheritdoc />
    public override ValidationResult Validate() =>
        Concurrency is < 1 or > 256 ? ValidationResult.Error("--concurrency must be between 1 and 256") : ValidationResult.Success();
}

/// <summary>aos worker (waits for the runtime).</summary>
public sealed class WorkerCommand : AosCommand<WorkerSettings>
{
    /// <inheritdoc />
    protected override Task<int> RunAsync(WorkerSettings settings, CancellationToken ct) =>
        throw new CliException("the worker is not built yet", ExitCodes.Prerequisite);
}
