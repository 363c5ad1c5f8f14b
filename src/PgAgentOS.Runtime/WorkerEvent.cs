namespace PgAgentOS.Runtime;

/// <summary>What a worker event reports.</summary>
public enum WorkerEventKind
{
    /// <summary>A slot claimed a turn.</summary>
    TurnClaimed,
    /// <summary>Steps were recorded (a model response, a tool result).</summary>
    StepRecorded,
    /// <summary>A piece of the answer streamed (also sent on aos_stream).</summary>
    StreamDelta,
    /// <summary>A tool started running (with its ticket).</summary>
    ToolStarted,
    /// <summary>A tool finished and its result was recorded.</summary>
    ToolFinished,
    /// <summary>The turn waits for an approval; the slot is free.</summary>
    WaitingForApproval,
    /// <summary>The turn finished (completed or failed).</summary>
    TurnFinished,
    /// <summary>The worker stopped working on the turn without finishing it (lease lost, paused, shutdown, database gone).</summary>
    TurnDropped,
    /// <summary>Something went wrong (a retry, a lost connection, a failed tool).</summary>
    Error,
}

/// <summary>Something a worker did, for logs, the CLI and tests.</summary>
/// <param name="Kind">What happened.</param>
/// <param name="TurnId">The turn, when there is one.</param>
/// <param name="ConversationId">Its conversation.</param>
/// <param name="Message">A readable line (for StreamDelta the delta itself).</param>
/// <param name="ToolName">The tool, for tool events.</param>
/// <param name="Status">A status: the turn's (completed, failed, waiting_approval, continue) or the tool's (ok, error).</param>
public sealed record WorkerEvent(WorkerEventKind Kind, Guid? TurnId, Guid? ConversationId, string Message,
    string? ToolName = null, string? Status = null)
{
    /// <summary>When it happened.</summary>
    public DateTimeOffset At { get; init; } = DateTimeOffset.UtcNow;

    /// <inheritdoc />
    public override string ToString() =>
        $"{Kind} turn={TurnId?.ToString() ?? "-"}{(ToolName is null ? "" : " tool=" + ToolName)}{(Status is null ? "" : " status=" + Status)} {Message}";
}
