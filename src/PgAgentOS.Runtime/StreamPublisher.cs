using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using PgAgentOS.Client;

namespace PgAgentOS.Runtime;

/// <summary>
/// Sends deltas of a turn's answer on the tenant's stream channel (named by the kernel, in the
/// turn context) as pg_notify payloads
/// {"turn_id","conversation_id","seq","delta"}, each under 8000 bytes, in order, on a connection
/// of their own (never inside a transaction of the turn). Deltas are gathered for
/// <c>flushInterval</c> and sent together: a notification is a transaction (with a transaction id),
/// so one per token would cost the database more than the steps themselves. An answer that is
/// complete before its first flush is not streamed at all: the respond step, recorded at once,
/// carries it. Once something was sent, the rest is sent too, so that a follower sees the whole
/// text. Best effort: a failed notification is logged and dropped; the final text is always in
/// the respond step.
/// </summary>
internal sealed class StreamPublisher
{
    /// <summary>Largest payload sent (PostgreSQL's limit is 8000 bytes).</summary>
    public const int MaxPayloadBytes = 7900;

    private readonly AosClient _client;
    private readonly Guid _turnId;
    private readonly Guid _conversationId;
    private readonly string _channel;
    private readonly ILogger _log;
    private readonly Channel<string> _queue = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly TaskCompletionSource _completed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TimeSpan _flushInterval;
    private readonly Task _pump;
    private long _seq;

    public StreamPublisher(AosClient client, string channel, Guid turnId, Guid conversationId, ILogger log, TimeSpan flushInterval = default)
    {
        _channel = channel;
        _client = client;
        _turnId = turnId;
        _conversationId = conversationId;
        _log = log;
        _flushInterval = flushInterval < TimeSpan.Zero ? TimeSpan.Zero : flushInterval;
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

    /// <summary>The answer is complete: sends what is queued (unless nothing was sent yet) and stops.</summary>
    public async Task CompleteAsync()
    {
        _queue.Writer.TryComplete();
        _completed.TrySetResult();
        await _pump;
    }

    private async Task PumpAsync()
    {
        var reader = _queue.Reader;
        var lastFlush = (long?)null;
        while (await reader.WaitToReadAsync())
        {
            // Gather for the flush interval (counted from the previous flush), or until the answer is complete.
            var wait = _flushInterval - (lastFlush is { } t ? System.Diagnostics.Stopwatch.GetElapsedTime(t) : TimeSpan.Zero);
            if (wait > TimeSpan.Zero && !_completed.Task.IsCompleted)
            {
                await Task.WhenAny(Task.Delay(wait), _completed.Task);
            }
            if (_completed.Task.IsCompleted && Sent == 0 && _flushInterval > TimeSpan.Zero)
            {
                // complete before the first flush: the respond step carries the text
                while (reader.TryRead(out _))
                {
                }
                continue;
            }
            lastFlush = System.Diagnostics.Stopwatch.GetTimestamp();
            var sb = new StringBuilder();
            while (reader.TryRead(out var d))
            {
                sb.Append(d);
            }
            foreach (var payload in Payloads(sb.ToString()))
            {
                try
                {
                    await _client.NotifyAsync(_channel, payload);
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
