using Spectre.Console;
using PgAgentOS.Client;

namespace PgAgentOS.Cli.Live;

/// <summary>Asks the person at the terminal to approve or reject a tool call (or approves it when --yes was given).</summary>
public sealed class Approver(CliContext ctx, AosClient client, bool yes, string source, bool quiet = false)
{
    /// <summary>
    /// Decides a waiting tool call. Returns false when there was nobody to ask (end of input):
    /// the call stays waiting for someone else (aos approvals).
    /// </summary>
    public async Task<bool> DecideAsync(StepRow step, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(step);
        bool approve;
        if (yes)
        {
            if (!quiet)
            {
                ctx.Console.MarkupLine($"  [yellow]approval[/]     approving {Render.Esc(step.ToolName)} (--yes)");
            }
            approve = true;
        }
        else
        {
            ctx.Console.Markup($"  [yellow]approval[/]     run {Render.Esc(Render.Clip(step.Summary, 120))}? [[y/N]] ");
            ctx.Out.Flush();
            var answer = await ctx.ReadLineAsync(ct);
            if (answer is null)
            {
                ctx.Out.WriteLine();
                ctx.Console.MarkupLine($"  [yellow]no answer: the call waits in the approval queue (aos approvals; aos approve {Ids.Short(step.StepId)})[/]");
                return false;
            }
            if (!ctx.IsTerminal)
            {
                ctx.Out.WriteLine(answer);
            }
            approve = answer.Trim().ToLowerInvariant() is "y" or "yes";
        }
        await client.ApproveStepAsync(step.StepId, approve, note: approve ? $"approved in {source}" : $"rejected in {source}", ct: ct);
        return true;
    }
}
