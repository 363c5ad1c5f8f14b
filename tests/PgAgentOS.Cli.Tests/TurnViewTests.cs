using System.Text.RegularExpressions;
using PgAgentOS.Cli.Live;
using PgAgentOS.Client;

namespace PgAgentOS.Cli.Tests;

/// <summary>What a followed turn shows when the follower reads a tool call's status late.</summary>
public sealed class TurnViewTests
{
    private static (TurnView View, StringWriter Output) View()
    {
        var output = new StringWriter();
        return (new TurnView(new CliContext(output, new StringWriter(), isTerminal: false, _ => null), "researcher"), output);
    }

    private static StepRow Call(Guid id, string status) =>
        new(id, DateTimeOffset.UtcNow, Guid.Empty, Guid.Empty, 1, "researcher", 2, "tool_call", status, "web_search",
            "web_search {\"query\": \"q\"}", "{}");

    // A worker starts an approved call in the claim that follows the approval, so the follower can
    // read the call as approved, or already executing or completed: the decision shows once either way.
    [Theory]
    [InlineData("needs_review", "approved")]
    [InlineData("pending", "approved")]
    [InlineData("pending", "executing")]
    [InlineData("pending", "completed")]
    public void AnApprovedCallShowsItsDecisionOnceWhateverStatusTheFollowerReadsNext(string waiting, string next)
    {
        var (view, output) = View();
        var id = Guid.NewGuid();
        view.Show(new StepEvent(Call(id, waiting), true));
        view.Show(new StepEvent(Call(id, next), false, waiting));
        if (next != "completed")
        {
            view.Show(new StepEvent(Call(id, "completed"), false, next));
        }
        Assert.Single(Regex.Matches(output.ToString(), "decision +web_search: approved"));
    }

    [Fact]
    public void AnAutoApprovedCallShowsNoDecisionAndARejectedOneItsRejection()
    {
        var (view, output) = View();
        var auto = Guid.NewGuid();
        view.Show(new StepEvent(Call(auto, "approved"), true));
        view.Show(new StepEvent(Call(auto, "executing"), false, "approved"));
        view.Show(new StepEvent(Call(auto, "completed"), false, "executing"));
        Assert.DoesNotContain("decision", output.ToString(), StringComparison.Ordinal);

        var rejected = Guid.NewGuid();
        view.Show(new StepEvent(Call(rejected, "pending"), true));
        view.Show(new StepEvent(Call(rejected, "rejected"), false, "pending"));
        Assert.Matches("decision +web_search: rejected", output.ToString());
        Assert.DoesNotMatch("decision +web_search: approved", output.ToString());
    }
}
