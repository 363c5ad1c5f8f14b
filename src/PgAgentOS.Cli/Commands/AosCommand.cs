using PgAgentOS.Client;
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

/// <summary>Base of the commands that act for one tenant (--tenant, AOS_TENANT, or the only tenant).</summary>
public abstract class TenantCommand<TSettings> : AosCommand<TSettings>
    where TSettings : TenantSettings
{
    /// <inheritdoc />
    protected sealed override async Task<int> RunAsync(TSettings settings, CancellationToken ct)
    {
        await using var session = await Session.OpenAsync(Ctx, settings, ct: ct);
        var tenant = await session.TenantAsync(Ctx, settings.Tenant, ct);
        return await RunAsync(session, tenant, session.For(tenant), settings, ct);
    }

    /// <summary>The command's work, with a client bound to the tenant.</summary>
    protected abstract Task<int> RunAsync(Session session, TenantRef tenant, AosClient client, TSettings settings, CancellationToken ct);
}
