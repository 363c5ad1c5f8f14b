using System.Text.Json.Nodes;
using Npgsql;
using PgAgentOS.Client;

namespace PgAgentOS.Cli.Tests;

/// <summary>
/// A stand-in worker for the command tests (the real one is tested with the demo): claims turns
/// through the SDK as the worker login and plays a fixed part. A message that mentions "search"
/// gets a web_search call first (which the agent's configuration decides on); every answer is
/// "Echo: MESSAGE", streamed on aos_stream in three pieces before it is recorded.
/// </summary>
public sealed class FakeWorker : IAsyncDisposable
{
    private readonly NpgsqlDataSource _ds;
    private readonly AosClient _client;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    /// <summary>Starts the worker on a test database.</summary>
    public FakeWorker(KernelDatabase db)
    {
        ArgumentNullException.ThrowIfNull(db);
        _ds = db.DataSource(TestCluster.Worker);
        _client = new AosClient(_ds);
        _loop = Task.Run(() => LoopAsync(_stop.Token));
    }

    /// <summary>Turns this worker finished.</summary>
    public int Finished { get; private set; }

    private async Task LoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var turn = await _client.ClaimTurnAsync("fake-worker", 30, ct: ct);
                if (turn is null)
                {
                    await Task.Delay(50, ct);
                    continue;
                }
                await DriveAsync(turn, ct);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (AosException)
            {
                // A lost lease or a paused conversation: the next claim sorts it out.
                await Task.Delay(50, CancellationToken.None);
            }
        }
    }

    private async Task DriveAsync(TurnContext turn, CancellationToken ct)
    {
        var lease = turn.LeaseToken!.Value;
        foreach (var call in turn.ApprovedToolCalls)
        {
            var args = JsonNode.Parse(call.Arguments.GetRawText())!;
            var ticket = await _client.BeginToolExecutionAsync(turn.TurnId, lease, call.StepId, call.Name, args, ct);
            await _client.RecordToolResultAsync(turn.TurnId, call.Name, new JsonObject { ["results"] = new JsonArray("docs.python.org/3/library/asyncio.html") },
                leaseToken: lease, ticket: ticket, ct: ct);
        }
        if (turn.Iteration == 0 && turn.UserMessage.Contains("search", StringComparison.OrdinalIgnoreCase) && turn.Tools.Count > 0)
        {
            var r = await _client.RecordResponseAsync(turn.TurnId, lease, new ModelResponse
            {
                Thinking = "I should search first.",
                ToolCalls = [new ModelToolCall("call_1", "web_search", new JsonObject { ["query"] = turn.UserMessage })],
                Usage = new Usage(100, 20),
            }, ct);
            if (r.Status != "continue")
            {
                return; // waits for a person (the turn is parked; its lease is gone)
            }
            foreach (var d in r.ToolCalls.Where(d => d.Ticket is not null))
            {
                await _client.RecordToolResultAsync(turn.TurnId, d.Name, new JsonObject { ["results"] = new JsonArray("docs.python.org") },
                    leaseToken: lease, ticket: d.Ticket, ct: ct);
            }
        }
        var answer = "Echo: " + turn.UserMessage;
        var third = Math.Max(1, answer.Length / 3);
        var pieces = new[] { answer[..third], answer[third..Math.Min(answer.Length, 2 * third)], answer[Math.Min(answer.Length, 2 * third)..] };
        await using (var conn = await _ds.OpenConnectionAsync(ct))
        {
            for (var i = 0; i < pieces.Length; i++)
            {
                var payload = new JsonObject { ["turn_id"] = turn.TurnId, ["conversation_id"] = turn.ConversationId, ["seq"] = i + 1, ["delta"] = pieces[i] };
                await conn.ExecAsync("SELECT pg_notify($1, $2)", turn.StreamChannel!, payload.ToJsonString());
            }
        }
        await _client.RecordResponseAsync(turn.TurnId, lease, new ModelResponse { Text = answer, Usage = new Usage(200, 30) }, ct);
        Finished++;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }
}
