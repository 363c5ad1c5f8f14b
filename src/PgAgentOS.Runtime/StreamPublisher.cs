using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using PgAgentOS.Client;

namespace PgAgentOS.Runtime;

/// <summary>
/// Sends deltas of a turn's answer on the aos_stream channel as pg_notify payloads
/// {"turn_id","conversation_id","seq","delta"}, each under 8000 bytes, in order, on a connection
/// of their own (never inside a transaction of the turn). Deltas that arrive while a
/// notification is being sent are merged into the next one. Best effort: a failed notification is
/// logged and dropped; the final text is always in the respond step.
/// </summary>
internal sealed class StreamPublisher
{
    /// <summary>Largest payload sent (PostgreSQL's limit is 8000 bytes).</summary>
    public const int MaxPayloadBytes = 7900;

    private readonly AosClient _client;
    private readonly Guid _turnId;
    private readonly Guid _conversationId;
    private readonly ILogger _log;
    private readonly Channel<string> _queue = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _pump;
    private long _seq;

    public StreamPublisher(AosClient client, Guid turnId, Guid conversationId, ILogger log)
    {
        _client = client;
        _turnId = turnId;
        _conversationId = conversationId;
        _log = log;
        _pump = Task.Run(PumpAsync);
    }

    /// <summary>Notifications sent so far.</summary>
    public long Sent => Interlocked.Read(ref _seq);

    public void Publish(string delta)
    {
        if (!string.IsNullOrEmpty(delta))
        {
            _queue.Writer.TryWrite(delta);
        }
    }

    /// <summary>Sends what is queued and stops.</summary>
    public async Task CompleteAsync()
    {
        _queue.Writer.TryComplete();
        await _pump;
    }

    private async Task PumpAsync()
    {
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync())
        {
            var sb = new StringBuilder();
            while (reader.TryRead(out var d))
            {
                sb.Append(d);
            }
            foreach (var payload in Payloads(sb.ToString()))
            {
                try
                {
                    await _client.NotifyAsync(AosClient.StreamChannel, payload);
                }
                catch (Exception e) when (e is Npgsql.NpgsqlException or AosException or TimeoutException or IOException)
                {
                    _log.LogDebug(e, "stream notification of turn {Turn} dropped", _turnId);
                }
            }
        }
    }

    /// <summary>Splits a delta into payloads under the size limit (never inside a surrogate pair).</summary>
    internal IEnumerable<string> Payloads(string delta)
    {
        var start = 0;
        while (start < delta.Length)
        {
            var length = Math.Min(delta.Length - start, 2000);
            while (true)
            {
                if (start + length < delta.Length && char.IsHighSurrogate(delta[start + length - 1]))
                {
                    length--;
                }
                var json = Json(delta.Substring(start, length), _seq + 1);
                if (Encoding.UTF8.GetByteCount(json) <= MaxPayloadBytes || length <= 1)
                {
                    Interlocked.Increment(ref _seq);
                    yield return json;
                    break;
                }
                length /= 2;
            }
            start += length;
        }
    }

    private string Json(string piece, long seq) => JsonSerializer.Serialize(new StreamDelta(_turnId, _conversationId, seq, piece), StreamJson.Options);

    private sealed record StreamDelta(
        [property: System.Text.Json.Serialization.JsonPropertyName("turn_id")] Guid TurnId,
        [property: System.Text.Json.Serialization.JsonPropertyName("conversation_id")] Guid ConversationId,
        [property: System.Text.Json.Serialization.JsonPropertyName("seq")] long Seq,
        [property: System.Text.Json.Serialization.JsonPropertyName("delta")] string Delta);

    private static class StreamJson
    {
        public static readonly JsonSerializerOptions Options = new();
    }
}
