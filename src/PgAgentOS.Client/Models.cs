using System.Text.Json;
using System.Text.Json.Nodes;

namespace PgAgentOS.Client;

/// <summary>A message in the common chat format (OpenAI's), as run_turn returns the history.</summary>
public sealed record ChatMessageDto
{
    /// <summary>system, user, assistant or tool.</summary>
    public required string Role { get; init; }

    /// <summary>Text (null for an assistant message that only calls tools).</summary>
    public string? Content { get; init; }

    /// <summary>Tool calls of an assistant message.</summary>
    public IReadOnlyList<ToolCallDto>? ToolCalls { get; init; }

    /// <summary>For a tool message: the call it answers.</summary>
    public string? ToolCallId { get; init; }
}

/// <summary>A tool call inside an assistant message.</summary>
public sealed record ToolCallDto(string Id, string Type, ToolCallFunction Function);

/// <summary>Name and JSON-encoded arguments of a tool call.</summary>
public sealed record ToolCallFunction(string Name, string Arguments);

/// <summary>A tool as a JSON-Schema function definition.</summary>
public sealed record ToolDefinition(string Type, ToolFunctionDefinition Function);

/// <summary>Name, description and parameters schema of a tool.</summary>
public sealed record ToolFunctionDefinition(string Name, string Description, JsonElement Parameters);

/// <summary>The model a turn uses.</summary>
public sealed record ModelInfo(Guid ModelId, string Provider, string Name, bool SupportsStreaming, bool SupportsReasoning);

/// <summary>Budget of a turn and what it used so far.</summary>
public sealed record TurnBudget
{
    /// <summary>Model responses allowed.</summary>
    public int MaxIterations { get; init; }

    /// <summary>Tokens allowed (null: no limit).</summary>
    public long? MaxTokens { get; init; }

    /// <summary>USD allowed (null: no limit).</summary>
    public decimal? MaxCostUsd { get; init; }

    /// <summary>Wall-clock seconds of running allowed.</summary>
    public int? MaxSeconds { get; init; }

    /// <summary>Tokens used so far.</summary>
    public long TokensUsed { get; init; }

    /// <summary>USD spent so far.</summary>
    public decimal CostUsd { get; init; }

    /// <summary>When the running attempt must end (database clock).</summary>
    public DateTimeOffset? Deadline { get; init; }
}

/// <summary>An approved tool call the worker still has to run.</summary>
public sealed record PendingToolCall(Guid StepId, string CallId, string Name, JsonElement Arguments, int Iteration)
{
    /// <summary>The execution ticket, when the claim started the call (claim_turn with p_start_approved).</summary>
    public Guid? Ticket { get; init; }
}

/// <summary>A tool call waiting for a person.</summary>
public sealed record AwaitingToolCall(Guid StepId, string Name, JsonElement Arguments, string Status);

/// <summary>Everything one LLM call for a turn needs (aos_agent.run_turn / claim_turn).</summary>
public sealed record TurnContext
{
    /// <summary>Tenant.</summary>
    public Guid TenantId { get; init; }
    /// <summary>Turn.</summary>
    public Guid TurnId { get; init; }
    /// <summary>Conversation.</summary>
    public Guid ConversationId { get; init; }
    /// <summary>Agent.</summary>
    public Guid AgentId { get; init; }
    /// <summary>Agent name.</summary>
    public string AgentName { get; init; } = "";
    /// <summary>Number of the turn in its conversation.</summary>
    public int TurnNumber { get; init; }
    /// <summary>Turn status.</summary>
    public string Status { get; init; } = "";
    /// <summary>worker or manual.</summary>
    public string? Driver { get; init; }
    /// <summary>Attempt number (claims of this turn).</summary>
    public int Attempt { get; init; }
    /// <summary>The user's message.</summary>
    public string UserMessage { get; init; } = "";
    /// <summary>The system prompt (persona).</summary>
    public string SystemPrompt { get; init; } = "";
    /// <summary>History in chat format: the earlier turns' messages (<see cref="HistoryMessages"/> of them, first), then this turn's.</summary>
    public IReadOnlyList<ChatMessageDto> Messages { get; init; } = [];
    /// <summary>False for a context from aos_agent.refresh_turn, whose <see cref="Messages"/> are this turn's only.</summary>
    public bool HistoryIncluded { get; init; } = true;
    /// <summary>How many of <see cref="Messages"/> come from earlier turns (null from a kernel that does not say).</summary>
    public int? HistoryMessages { get; init; }
    /// <summary>Tools as function definitions.</summary>
    public IReadOnlyList<ToolDefinition> Tools { get; init; } = [];
    /// <summary>Model.</summary>
    public ModelInfo Model { get; init; } = null!;
    /// <summary>Resolved parameters (model → persona → agent).</summary>
    public JsonObject Params { get; init; } = [];
    /// <summary>Model responses so far.</summary>
    public int Iteration { get; init; }
    /// <summary>Budget.</summary>
    public TurnBudget Budget { get; init; } = new();
    /// <summary>Approved calls still to run.</summary>
    public IReadOnlyList<PendingToolCall> ApprovedToolCalls { get; init; } = [];
    /// <summary>Calls waiting for people.</summary>
    public IReadOnlyList<AwaitingToolCall> AwaitingApproval { get; init; } = [];
    /// <summary>Script of the builtin scripted model (agent config), if any.</summary>
    public JsonElement? Script { get; init; }
    /// <summary>Whether thinking is shown.</summary>
    public bool ThinkingVisible { get; init; } = true;
    /// <summary>How the agent's tools are implemented (the same as turn_skills; in the context so that workers need no second call).</summary>
    public IReadOnlyList<SkillImplementation>? Skills { get; init; }
    /// <summary>The tenant's channel for streamed answer deltas (see AosClient.StreamChannelAsync).</summary>
    public string? StreamChannel { get; init; }
    /// <summary>The worker's lease (claim_turn only).</summary>
    public Guid? LeaseToken { get; init; }
    /// <summary>When the lease expires (database clock).</summary>
    public DateTimeOffset? LeaseExpiresAt { get; init; }
    /// <summary>True when the claim took over an expired lease.</summary>
    public bool Reclaimed { get; init; }

    /// <summary>True for a full context of <paramref name="turnId"/> whose earlier turns' messages can complete a refresh_turn context.</summary>
    internal bool CanLendHistoryTo(Guid turnId) =>
        TurnId == turnId && HistoryIncluded && HistoryMessages is { } n && n <= Messages.Count;

    /// <summary>
    /// A context from aos_agent.refresh_turn (this turn's messages only) completed with the earlier
    /// turns' messages of <paramref name="held"/>, the context the worker got with its claim; the
    /// lease of <paramref name="held"/> is kept. A context that includes its history is returned as it is.
    /// </summary>
    public TurnContext WithHistoryOf(TurnContext held)
    {
        ArgumentNullException.ThrowIfNull(held);
        if (HistoryIncluded)
        {
            return this;
        }
        if (!held.CanLendHistoryTo(TurnId))
        {
            throw new ArgumentException("the held context is not a full context of the same turn", nameof(held));
        }
        var n = held.HistoryMessages!.Value;
        return this with
        {
            Messages = [.. held.Messages.Take(n), .. Messages],
            HistoryIncluded = true,
            HistoryMessages = n,
            LeaseToken = LeaseToken ?? held.LeaseToken,
            LeaseExpiresAt = LeaseExpiresAt ?? held.LeaseExpiresAt,
            Reclaimed = held.Reclaimed,
        };
    }
}

/// <summary>A tool call as the model produced it.</summary>
public sealed record ModelToolCall(string? Id, string Name, JsonNode? Arguments);

/// <summary>Token usage of a model call.</summary>
public sealed record Usage(long? InputTokens, long? OutputTokens, decimal? CostUsd = null);

/// <summary>One model response to record (aos_agent.record_response).</summary>
public sealed record ModelResponse
{
    /// <summary>Reasoning, if the provider returned some.</summary>
    public string? Thinking { get; init; }
    /// <summary>Answer text.</summary>
    public string? Text { get; init; }
    /// <summary>Tool calls.</summary>
    public IReadOnlyList<ModelToolCall> ToolCalls { get; init; } = [];
    /// <summary>True for the final answer (default: no tool calls and some text).</summary>
    public bool? Final { get; init; }
    /// <summary>Usage.</summary>
    public Usage? Usage { get; init; }
}

/// <summary>The kernel's decision on a tool call.</summary>
public sealed record ToolCallDecision
{
    /// <summary>The tool_call step.</summary>
    public Guid StepId { get; init; }
    /// <summary>The provider's call id.</summary>
    public string? CallId { get; init; }
    /// <summary>Tool name.</summary>
    public string Name { get; init; } = "";
    /// <summary>approved, awaiting_approval or rejected.</summary>
    public string Status { get; init; } = "";
    /// <summary>Who or what decided (auto, policy, human).</summary>
    public string? DecidedBy { get; init; }
    /// <summary>Why.</summary>
    public string? Reason { get; init; }
    /// <summary>The execution ticket, when a worker may run it now.</summary>
    public Guid? Ticket { get; init; }
    /// <summary>For rejected calls: the tool_result step that tells the model.</summary>
    public Guid? ResultStepId { get; init; }
    /// <summary>process_tool_call only: the turn's status after the call.</summary>
    public string? TurnStatus { get; init; }
}

/// <summary>What recording a response did (aos_agent.record_response).</summary>
public sealed record ResponseResult
{
    /// <summary>continue, waiting_approval, completed or failed.</summary>
    public string Status { get; init; } = "";
    /// <summary>Why it failed (a budget).</summary>
    public string? Reason { get; init; }
    /// <summary>The steps recorded.</summary>
    public IReadOnlyList<Guid> StepIds { get; init; } = [];
    /// <summary>Decisions on the tool calls.</summary>
    public IReadOnlyList<ToolCallDecision> ToolCalls { get; init; } = [];

    /// <summary>
    /// When a worker's response completed the turn and the conversation's next turn became ready:
    /// that turn. The kernel does not NOTIFY aos_turn_ready for it inside the worker's transaction;
    /// the worker should after its commit (the runtime does).
    /// </summary>
    public Guid? NextTurnId { get; init; }
}

/// <summary>A step as the monitoring views show it.</summary>
public sealed record StepRow(
    Guid StepId, DateTimeOffset CreatedAt, Guid ConversationId, Guid TurnId, int TurnNumber, string AgentName,
    int StepNumber, string StepType, string Status, string? ToolName, string Summary, string Content);

/// <summary>A tool call waiting for a decision.</summary>
public sealed record ApprovalRequest(
    Guid StepId, DateTimeOffset RequestedAt, Guid ConversationId, Guid TurnId, string AgentName, string ToolName,
    string Arguments, string Status, string? RiskLevel, string? Reason, string? UserMessage);

/// <summary>Result of verifying the event log.</summary>
public sealed record ChainVerification
{
    /// <summary>True when every check passed.</summary>
    public bool Ok { get; init; }
    /// <summary>Tenant.</summary>
    public Guid TenantId { get; init; }
    /// <summary>Chains checked.</summary>
    public long Chains { get; init; }
    /// <summary>Events checked.</summary>
    public long Events { get; init; }
    /// <summary>The first bad entry, if any.</summary>
    public ChainProblem? FirstBad { get; init; }
}

/// <summary>Where a chain is broken.</summary>
public sealed record ChainProblem(Guid ChainId, long? Seq, string Reason);

/// <summary>A notification from the kernel (ids only).</summary>
public sealed record AosNotification(string Channel, string Payload)
{
    /// <summary>The payload as a uuid, when it is one.</summary>
    public Guid? Id => Guid.TryParse(Payload, out var g) ? g : null;
}
