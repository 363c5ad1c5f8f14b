using Spectre.Console;
using System.Text;
using System.Text.Json.Nodes;
using PgAgentOS.Client;

namespace PgAgentOS.Cli.Live;

/// <summary>Shows a followed turn in the terminal: thinking, tool calls, approvals, tool results, the streamed answer.</summary>
public sealed class TurnView(CliContext ctx, string agentName)
{
    private readonly StringBuilder _streamed = new();
    private bool _inStream;

    /// <summary>The answer, once the respond step was seen.</summary>
    public string? Answer { get; private set; }

    /// <summary>True when part of the answer arrived as streamed deltas.</summary>
    public bool Streamed { get; private set; }

    /// <summary>The text of a step's content ("text"), or its summary.</summary>
    public static string TextOf(StepRow step)
    {
        ArgumentNullException.ThrowIfNull(step);
        try
        {
            return (string?)(JsonNode.Parse(step.Content) as JsonObject)?["text"] ?? step.Summary;
        }
        catch (System.Text.Json.JsonException)
        {
            return step.Summary;
        }
    }

    /// <summary>Shows one event.</summary>
    public void Show(TurnEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        switch (e)
        {
            case DeltaEvent d:
                if (!_inStream)
                {
                    ctx.Console.Markup($"[green]{Render.Esc(agentName)}>[/] ");
                    _inStream = true;
                    Streamed = true;
                }
                ctx.Out.Write(d.Delta.Delta);
                ctx.Out.Flush();
                _streamed.Append(d.Delta.Delta);
                break;
            case StepEvent { Step.StepType: "user_message" }:
                break;
            case StepEvent { Step.StepType: "respond", IsNew: true } r:
                Answer = TextOf(r.Step);
                if (_inStream)
                {
                    var sofar = _streamed.ToString();
                    ctx.Out.WriteLine(Answer.StartsWith(sofar, StringComparison.Ordinal) ? Answer[sofar.Length..] : "");
                    ctx.Out.Flush();
                    _inStream = false;
                    _streamed.Clear();
                    if (!Answer.StartsWith(sofar, StringComparison.Ordinal))
                    {
                        // Some deltas were missed (or the worker retried): show the recorded answer whole.
                        ctx.Console.MarkupLine($"[green]{Render.Esc(agentName)}>[/] {Render.Esc(Answer)}");
                    }
                }
                else if (Answer != _streamed.ToString())
                {
                    ctx.Console.MarkupLine($"[green]{Render.Esc(agentName)}>[/] {Render.Esc(Answer)}");
                }
                _streamed.Clear();
                break;
            case StepEvent { Step.StepType: "tool_call" } t:
                EndStream();
                if (t.IsNew)
                {
                    ctx.Console.MarkupLine($"  [yellow]tool call[/]    {Render.Esc(Render.Clip(t.Step.Summary, 140))}  {Render.Status(t.Step.Status)} [dim]{Ids.Short(t.Step.StepId)}[/]");
                }
                else if (t.Step.Status is not ("executing" or "completed"))
                {
                    ctx.Console.MarkupLine($"  [yellow]decision[/]     {Render.Esc(t.Step.ToolName)}: {Render.Status(t.Step.Status)}");
                }
                else if (t.Before is "pending" or "needs_review")
                {
                    // A worker took the approved call before this view read it as approved: the approval
                    // still happened, and says so once.
                    ctx.Console.MarkupLine($"  [yellow]decision[/]     {Render.Esc(t.Step.ToolName)}: {Render.Status("approved")}");
                }
                break;
            case StepEvent { IsNew: true } s:
                // A model's reasoning is recorded together with its answer, so after a streamed answer it shows up last.
                var label = s.Step.StepType == "think" && (_inStream || _streamed.Length > 0) ? "thinking (recorded with the answer)" : Render.Label(s.Step.StepType);
                EndStream();
                ctx.Console.MarkupLine($"  [{Render.Colour(s.Step.StepType)}]{Render.Esc(label),-12}[/] {Render.Esc(Render.Clip(s.Step.Summary, 160))}");
                break;
            case UnclaimedEvent u:
                EndStream();
                ctx.Console.MarkupLine($"  [yellow]no worker has taken this turn after {u.For.TotalSeconds:0} s: start one with aos worker (in another terminal)[/]");
                break;
            case FinishedEvent f:
                EndStream();
                if (f.Turn.Status != "completed")
                {
                    ctx.Console.MarkupLine($"  [red]turn {Render.Esc(f.Turn.Status)}[/]{(f.Turn.ErrorMessage is null ? "" : ": " + Render.Esc(f.Turn.ErrorMessage))}");
                }
                break;
        }
    }

    private void EndStream()
    {
        if (_inStream)
        {
            ctx.Out.WriteLine();
            _inStream = false;
        }
    }
}
