using Spectre.Console.Cli;

namespace PgAgentOS.Cli.Commands;

/// <summary>Base of every command: runs it and turns failures into one line and an exit code.</summary>
public abstract class AosCommand<TSettings> : AsyncCommand<TSettings>
    where TSettings : AosSettings
{
    /// <summary>The invocation's context.</summary>
    protected static CliContext Ctx => CliContext.Current;

    /// <inheritdoc />
    public sealed override async Task<int> ExecuteAsync(CommandContext context, TSettings settings, CancellationToken cancellationToken)
    {
        try
        {
            return await RunAsync(settings, cancellationToken);
        }
        catch (Exception e)
        {
            return CliErrors.Report(e, Ctx);
        }
    }

    /// <summary>The command's work.</summary>
    protected abstract Task<int> RunAsync(TSettings settings, CancellationToken ct);
}
