-- pgAgentOS kernel — aos_agent: Agent → Conversation → Turn → Step, approvals, tool executions,
-- memory and observations. docs/state-machines.md draws the turn and step state machines.
--
-- Dispatch: the conversation is the unit the queue hands out, so that only one turn per
-- conversation runs at a time, in turn order. A conversation is idle (nothing to do), ready (its
-- active turn can be claimed), leased (a worker holds it: lease_token, lease_expires_at), waiting
-- (its turn waits for a human: approval, review, pause) or manual (driven by hand through the
-- spec's functions, without a lease token). Everything the hot path changes per step lives on
-- the conversation row in columns that no index covers, so PostgreSQL updates it in place (HOT).

CREATE SCHEMA aos_agent;
COMMENT ON SCHEMA aos_agent IS 'pgAgentOS agent loop: agents, conversations, turns, steps, approvals, memory, observations.';

-- Value rules of the hot tables as domains (see aos_core.driver for why).
CREATE DOMAIN aos_agent.conversation_status AS text CONSTRAINT conversation_status_check CHECK (VALUE IN ('active', 'paused', 'closed'));
CREATE DOMAIN aos_agent.run_state AS text
    CONSTRAINT conversation_run_state_check CHECK (VALUE IN ('idle', 'ready', 'leased', 'waiting', 'manual'));
CREATE DOMAIN aos_agent.phase AS text CONSTRAINT conversation_phase_check CHECK (VALUE IN ('input', 'model'));
CREATE DOMAIN aos_agent.title AS text CONSTRAINT conversation_title_check CHECK (length(VALUE) <= 500);
CREATE DOMAIN aos_agent.turn_status AS text
    CONSTRAINT turn_status_check CHECK (VALUE IN ('queued', 'running', 'waiting_tool', 'waiting_human', 'completed', 'failed', 'cancelled', 'dead'));
CREATE DOMAIN aos_agent.user_message AS text
    CONSTRAINT turn_user_message_check CHECK (octet_length(VALUE) BETWEEN 1 AND 1048576);  -- aos_core.max_content_bytes()
CREATE DOMAIN aos_agent.step_type AS text
    CONSTRAINT step_type_check CHECK (VALUE IN ('user_message', 'think', 'tool_call', 'tool_result', 'respond',
                                                'inject', 'override', 'pause', 'resume', 'error', 'note'));
CREATE DOMAIN aos_agent.step_status AS text
    CONSTRAINT step_status_check CHECK (VALUE IN ('completed', 'pending', 'approved', 'rejected', 'executing',
                                                  'needs_review', 'failed', 'abandoned', 'cancelled'));
CREATE DOMAIN aos_agent.approval_kind AS text CONSTRAINT approval_kind_check CHECK (VALUE IN ('approval', 'review'));
CREATE DOMAIN aos_agent.decision AS text CONSTRAINT approval_decision_check CHECK (VALUE IN ('approved', 'rejected'));
CREATE DOMAIN aos_agent.decision_source AS text CONSTRAINT approval_source_check CHECK (VALUE IN ('human', 'auto', 'policy'));
CREATE DOMAIN aos_agent.note AS text CONSTRAINT approval_note_check CHECK (length(VALUE) <= 4000);
CREATE DOMAIN aos_agent.execution_status AS text
    CONSTRAINT tool_execution_status_check CHECK (VALUE IN ('running', 'succeeded', 'failed', 'abandoned'));
COMMENT ON DOMAIN aos_agent.conversation_status IS 'A conversation is active, paused or closed.';
COMMENT ON DOMAIN aos_agent.run_state IS 'Where a conversation stands in the turn queue (see the header of this file).';
COMMENT ON DOMAIN aos_agent.phase IS 'What the active turn waits for next: input (a model call) or model output to record.';
COMMENT ON DOMAIN aos_agent.title IS 'A conversation title, at most 500 characters.';
COMMENT ON DOMAIN aos_agent.turn_status IS 'The state of a turn (docs/state-machines.md).';
COMMENT ON DOMAIN aos_agent.user_message IS 'A user message: 1 byte to 1 MiB.';
COMMENT ON DOMAIN aos_agent.step_type IS 'The kind of a step.';
COMMENT ON DOMAIN aos_agent.step_status IS 'The state of a step (docs/state-machines.md).';
COMMENT ON DOMAIN aos_agent.approval_kind IS 'A first decision (approval) or one after an interrupted execution (review).';
COMMENT ON DOMAIN aos_agent.decision IS 'A tool call approved or rejected.';
COMMENT ON DOMAIN aos_agent.decision_source IS 'Who decided: a person, the agent''s auto-approval, or a policy rule.';
COMMENT ON DOMAIN aos_agent.note IS 'A note on a decision, at most 4,000 characters.';
COMMENT ON DOMAIN aos_agent.execution_status IS 'The state of a tool execution ticket.';

CREATE TABLE aos_agent.agent (
    tenant_id    uuid        NOT NULL,
    agent_id     uuid        NOT NULL DEFAULT gen_random_uuid(),
    name         text        NOT NULL,
    display_name text,
    description  text,
    persona_id   uuid,
    model_id     uuid,
    tools        text[]      NOT NULL DEFAULT '{}',
    config       jsonb       NOT NULL DEFAULT '{}',
    role_key     text        NOT NULL DEFAULT 'agent',
    toolset      jsonb,
    principal_id uuid,
    is_active    boolean     NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agent_pkey PRIMARY KEY (tenant_id, agent_id),
    CONSTRAINT agent_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES aos_auth.tenant (tenant_id),
    CONSTRAINT agent_persona_fkey FOREIGN KEY (tenant_id, persona_id) REFERENCES aos_persona.persona (tenant_id, persona_id),
    CONSTRAINT agent_model_fkey FOREIGN KEY (model_id) REFERENCES aos_meta.llm_model_registry (model_id),
    CONSTRAINT agent_principal_fkey FOREIGN KEY (tenant_id, principal_id) REFERENCES aos_auth.principal (tenant_id, principal_id),
    CONSTRAINT agent_name_key UNIQUE (tenant_id, name),
    CONSTRAINT agent_name_check CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$'),
    CONSTRAINT agent_config_check CHECK (jsonb_typeof(config) = 'object'),
    CONSTRAINT agent_role_key_check
        CHECK (role_key IN ('admin', 'approver', 'operator', 'developer', 'auditor', 'agent', 'viewer', 'user'))
);
CREATE UNIQUE INDEX agent_id_key ON aos_agent.agent (agent_id);
COMMENT ON TABLE aos_agent.agent IS
    'Agents: a persona, a model, the tools (skills) they may call and their configuration (approval, budgets, dispatch).';
COMMENT ON COLUMN aos_agent.agent.config IS
    'auto_approve_tools, max_iterations, max_tokens_per_turn, max_cost_usd_per_turn, max_turn_seconds, max_attempts, dispatch (worker|manual), history_turns, model_params, script (for the builtin/scripted model).';

COMMENT ON COLUMN aos_agent.agent.toolset IS
    'The agent''s granted tools, {"tools": [...], "skills": [...]}, as a claim hands them to the model and the worker; computed by the kernel whenever the agent or a skill it lists changes, never written by clients.';

CREATE TABLE aos_agent.conversation (
    tenant_id         uuid        NOT NULL,
    conversation_id   uuid        NOT NULL DEFAULT gen_random_uuid(),
    agent_id          uuid        NOT NULL,
    user_principal_id uuid,
    title             aos_agent.title,
    context           aos_core.json_object NOT NULL DEFAULT '{}',
    status            aos_agent.conversation_status NOT NULL DEFAULT 'active',
    dispatch          aos_core.driver NOT NULL DEFAULT 'worker',
    turn_count        integer     NOT NULL DEFAULT 0,
    total_tokens      bigint      NOT NULL DEFAULT 0,
    total_cost_usd    numeric(16, 6) NOT NULL DEFAULT 0,
    -- dispatch
    run_state         aos_agent.run_state NOT NULL DEFAULT 'idle',
    active_turn_id    uuid,
    lease_token       uuid,
    lease_expires_at  timestamptz,
    lease_worker      text,
    ready_at          timestamptz,
    -- the active turn's running counters and budget (copied to the turn when it leaves running)
    cur_attempt       integer     NOT NULL DEFAULT 0,
    cur_model_id      uuid,
    cur_phase         aos_agent.phase NOT NULL DEFAULT 'input',
    cur_step_count    integer     NOT NULL DEFAULT 0,
    cur_iteration     integer     NOT NULL DEFAULT 0,
    cur_max_iterations integer    NOT NULL DEFAULT 10,
    cur_max_tokens    bigint,
    cur_max_cost_usd  numeric(16, 6),
    cur_input_tokens  bigint      NOT NULL DEFAULT 0,
    cur_output_tokens bigint      NOT NULL DEFAULT 0,
    cur_cost_usd      numeric(16, 6) NOT NULL DEFAULT 0,
    cur_run_started   timestamptz,
    cur_deadline      timestamptz,
    -- head of this conversation's event chain
    event_seq         bigint      NOT NULL DEFAULT 0,
    event_head        bytea       NOT NULL DEFAULT '\x',
    created_at        timestamptz NOT NULL DEFAULT now(),
    last_activity_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT conversation_pkey PRIMARY KEY (tenant_id, conversation_id),
    CONSTRAINT conversation_agent_fkey FOREIGN KEY (tenant_id, agent_id) REFERENCES aos_agent.agent (tenant_id, agent_id),
    CONSTRAINT conversation_lease_check CHECK ((run_state = 'leased') = (lease_token IS NOT NULL)),
    CONSTRAINT conversation_active_turn_check CHECK ((run_state = 'idle') = (active_turn_id IS NULL))
) WITH (fillfactor = 70);
CREATE UNIQUE INDEX conversation_id_key ON aos_agent.conversation (conversation_id);
CREATE INDEX conversation_agent_idx ON aos_agent.conversation (tenant_id, agent_id, created_at DESC);
CREATE INDEX conversation_ready_idx ON aos_agent.conversation (ready_at) WHERE run_state = 'ready';
CREATE INDEX conversation_tenant_ready_idx ON aos_agent.conversation (tenant_id, ready_at) WHERE run_state = 'ready';
CREATE INDEX conversation_lease_idx ON aos_agent.conversation (lease_expires_at) WHERE run_state IN ('leased', 'manual');
-- A worker of one tenant looks for expired leases of that tenant: without this index PostgreSQL
-- planned that query anew on every claim (no generic plan was as cheap as one for the given values).
CREATE INDEX conversation_tenant_lease_idx ON aos_agent.conversation (tenant_id, lease_expires_at) WHERE run_state IN ('leased', 'manual');
CREATE UNIQUE INDEX conversation_lease_token_key ON aos_agent.conversation (lease_token) WHERE lease_token IS NOT NULL;
COMMENT ON TABLE aos_agent.conversation IS
    'Conversations: the unit of dispatch (one running turn at a time, in order), their totals, and the head of their event chain.';

CREATE TABLE aos_agent.turn (
    tenant_id         uuid        NOT NULL,
    turn_id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    conversation_id   uuid        NOT NULL,
    agent_id          uuid        NOT NULL,
    turn_number       integer     NOT NULL,
    user_message      aos_agent.user_message NOT NULL,
    attachments       aos_core.json_array NOT NULL DEFAULT '[]',
    status            aos_agent.turn_status NOT NULL DEFAULT 'queued',
    driver            aos_core.driver,
    assistant_message text,
    error_message     text,
    errors            aos_core.json_array NOT NULL DEFAULT '[]',
    attempt           integer     NOT NULL DEFAULT 0,
    failures          integer     NOT NULL DEFAULT 0,
    max_attempts      integer     NOT NULL DEFAULT 3,
    step_count        integer     NOT NULL DEFAULT 0,
    iteration_count   integer     NOT NULL DEFAULT 0,
    input_tokens      bigint      NOT NULL DEFAULT 0,
    output_tokens     bigint      NOT NULL DEFAULT 0,
    tokens_used       bigint      NOT NULL DEFAULT 0,
    cost_usd          numeric(16, 6) NOT NULL DEFAULT 0,
    active_ms         bigint      NOT NULL DEFAULT 0,
    model_id          uuid,
    tool_usage        jsonb       NOT NULL DEFAULT '{}',
    budget            jsonb       NOT NULL DEFAULT '{}',
    messages          aos_core.json_array,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    completed_at      timestamptz,
    CONSTRAINT turn_pkey PRIMARY KEY (tenant_id, turn_id),
    CONSTRAINT turn_conversation_fkey FOREIGN KEY (tenant_id, conversation_id)
        REFERENCES aos_agent.conversation (tenant_id, conversation_id),
    CONSTRAINT turn_number_key UNIQUE (tenant_id, conversation_id, turn_number),
    CONSTRAINT turn_counts_check CHECK (attempt >= 0 AND failures >= 0 AND max_attempts >= 1 AND step_count >= 0
                                        AND tokens_used >= 0 AND cost_usd >= 0)
) WITH (fillfactor = 80);
CREATE UNIQUE INDEX turn_id_key ON aos_agent.turn (turn_id);
CREATE INDEX turn_created_idx ON aos_agent.turn (tenant_id, created_at);
-- conversation_id is included (it never changes, so updates of a turn stay HOT) so that analytics
-- count an agent's turns and conversations in a window from the index alone
CREATE INDEX turn_agent_idx ON aos_agent.turn (tenant_id, agent_id, created_at) INCLUDE (conversation_id);
COMMENT ON TABLE aos_agent.turn IS
    'Turns: one user message and everything the agent did to answer it. Finished turns (completed, failed, cancelled, dead) do not change.';
COMMENT ON COLUMN aos_agent.turn.messages IS
    'A completed turn''s steps as chat messages, the history later turns of the conversation send to the model; derived from the steps (kept current when a person injects into or overrides the turn), NULL until the turn completes.';
COMMENT ON COLUMN aos_agent.turn.failures IS 'Attempts that ended without a clean hand-off (worker lost, error). At max_attempts the turn is dead.';

CREATE TABLE aos_agent.step (
    tenant_id       uuid        NOT NULL,
    step_id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    turn_id         uuid        NOT NULL,
    conversation_id uuid        NOT NULL,
    step_number     integer     NOT NULL,
    step_type       aos_agent.step_type NOT NULL,
    status          aos_agent.step_status NOT NULL DEFAULT 'completed',
    iteration       integer     NOT NULL DEFAULT 0,
    attempt         integer     NOT NULL DEFAULT 0,
    tool_name       text,
    call_id         text,
    args_hash       bytea,
    parent_step_id  uuid,
    content         aos_core.json_object NOT NULL,
    tokens          integer,
    duration_ms     integer,
    created_at      timestamptz NOT NULL,
    completed_at    timestamptz,
    -- true while a tool call waits for a person; the index of waiting calls is defined on it
    -- rather than on status, so that the status changes of a running call (executing →
    -- completed) leave every indexed value as it was and PostgreSQL updates the row in place (HOT)
    awaiting_decision boolean   GENERATED ALWAYS AS (step_type = 'tool_call' AND status IN ('pending', 'needs_review')) STORED,
    CONSTRAINT step_pkey PRIMARY KEY (tenant_id, step_id),
    CONSTRAINT step_turn_number_key UNIQUE (tenant_id, turn_id, step_number),
    CONSTRAINT step_tool_check CHECK ((step_type IN ('tool_call', 'tool_result')) = (tool_name IS NOT NULL))
) WITH (fillfactor = 90);
CREATE INDEX step_created_idx ON aos_agent.step (tenant_id, created_at DESC);
CREATE INDEX step_pending_tool_idx ON aos_agent.step (tenant_id, created_at) WHERE awaiting_decision;
CREATE INDEX step_error_idx ON aos_agent.step (tenant_id, created_at DESC) WHERE step_type = 'error';  -- error_log
COMMENT ON TABLE aos_agent.step IS
    'Steps: every thought, tool call, tool result, answer and human intervention of a turn, in order. Content never changes; a tool call''s status moves through its approval and execution.';

CREATE TABLE aos_agent.approval (
    tenant_id       uuid        NOT NULL,
    step_id         uuid        NOT NULL,
    kind            aos_agent.approval_kind NOT NULL DEFAULT 'approval',
    turn_id         uuid        NOT NULL,
    tool_name       text        NOT NULL,
    args_hash       bytea       NOT NULL,
    decision        aos_agent.decision NOT NULL,
    source          aos_agent.decision_source NOT NULL,
    decided_by      uuid,
    decided_by_role text        NOT NULL,
    note            aos_agent.note,
    decided_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT approval_pkey PRIMARY KEY (tenant_id, step_id, kind)
);
COMMENT ON TABLE aos_agent.approval IS
    'One decision per tool call (kind approval), bound to the step, the tool and the SHA-256 of its arguments; by a human, the agent''s auto-approval or a policy. A call whose execution was interrupted gets one more decision (kind review).';

CREATE TABLE aos_agent.tool_execution (
    tenant_id    uuid        NOT NULL,
    execution_id uuid        NOT NULL DEFAULT gen_random_uuid(),
    step_id      uuid        NOT NULL,
    turn_id      uuid        NOT NULL,
    attempt      integer     NOT NULL,
    worker_id    text,
    status       aos_agent.execution_status NOT NULL DEFAULT 'running',
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    CONSTRAINT tool_execution_pkey PRIMARY KEY (tenant_id, execution_id)
);
CREATE UNIQUE INDEX tool_execution_running_key ON aos_agent.tool_execution (tenant_id, step_id) WHERE status = 'running';
-- The running executions of a turn (finishing, releasing or losing a turn ends them): without it
-- those statements read every running execution of the tenant, and were planned on every call.
CREATE INDEX tool_execution_running_turn_idx ON aos_agent.tool_execution (tenant_id, turn_id) WHERE status = 'running';
COMMENT ON TABLE aos_agent.tool_execution IS
    'Tickets: the kernel issues one (execution_id) when an approved tool call may start; the result is accepted only with it.';

CREATE TABLE aos_agent.memory (
    tenant_id       uuid        NOT NULL,
    memory_id       uuid        NOT NULL DEFAULT gen_random_uuid(),
    agent_id        uuid        NOT NULL,
    conversation_id uuid,
    key             text        NOT NULL,
    value           jsonb       NOT NULL,
    memory_type     text        NOT NULL DEFAULT 'fact',
    importance      real        NOT NULL DEFAULT 0.5,
    embedding       vector,
    access_count    integer     NOT NULL DEFAULT 0,
    expires_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT memory_pkey PRIMARY KEY (tenant_id, memory_id),
    CONSTRAINT memory_agent_fkey FOREIGN KEY (tenant_id, agent_id) REFERENCES aos_agent.agent (tenant_id, agent_id),
    CONSTRAINT memory_key_key UNIQUE (tenant_id, agent_id, key),
    CONSTRAINT memory_key_check CHECK (length(key) BETWEEN 1 AND 200),
    CONSTRAINT memory_type_check CHECK (memory_type IN ('fact', 'preference', 'summary', 'note')),
    CONSTRAINT memory_importance_check CHECK (importance BETWEEN 0 AND 1),
    CONSTRAINT memory_value_size_check CHECK (octet_length(value::text) <= 1048576)  -- as the API measures it
);
COMMENT ON TABLE aos_agent.memory IS 'What agents remember across conversations, by key (with an optional embedding for similarity search).';

-- agent_hourly: how an agent's finished turns ended, summed per hour of the turns' creation (UTC
-- hours), in sixteen shards per hour so that concurrent completions rarely wait for one another's
-- row lock. _finish_turn adds each finished turn (one upsert, updated in place). Analytics over an
-- agent's last days read at most 24 × 16 rows a day instead of every turn (get_agent_analytics read
-- ~21,000 wide turn rows at 10^7 steps: 490 ms).
CREATE TABLE aos_agent.agent_hourly (
    tenant_id       uuid           NOT NULL,
    agent_id        uuid           NOT NULL,
    hour            timestamptz    NOT NULL,
    shard           smallint       NOT NULL,
    finished_turns  bigint         NOT NULL DEFAULT 0,
    completed_turns bigint         NOT NULL DEFAULT 0,
    failed_turns    bigint         NOT NULL DEFAULT 0,   -- failed or dead
    tokens_used     bigint         NOT NULL DEFAULT 0,
    cost_usd        numeric(20, 6) NOT NULL DEFAULT 0,
    completed_ms    numeric        NOT NULL DEFAULT 0,   -- summed durations of the completed turns
    tool_usage      jsonb          NOT NULL DEFAULT '{}',
    CONSTRAINT agent_hourly_pkey PRIMARY KEY (tenant_id, agent_id, hour, shard),
    CONSTRAINT agent_hourly_shard_check CHECK (shard BETWEEN 0 AND 15)
);
COMMENT ON TABLE aos_agent.agent_hourly IS
    'Per agent and hour of the turns'' creation: finished, completed and failed turns, tokens, cost, durations and tool calls (added by _finish_turn; read by analytics).';

CREATE TABLE aos_agent.observation (
    tenant_id        uuid        NOT NULL,
    observation_id   uuid        NOT NULL DEFAULT gen_random_uuid(),
    observation_type text        NOT NULL,
    conversation_id  uuid,
    turn_id          uuid,
    step_id          uuid,
    observer_id      uuid,
    score            smallint,
    severity         text,
    content          jsonb       NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT observation_pkey PRIMARY KEY (tenant_id, observation_id),
    CONSTRAINT observation_type_check CHECK (observation_type IN ('rating', 'flag', 'note', 'correction', 'intervention')),
    CONSTRAINT observation_target_check CHECK (num_nonnulls(conversation_id, turn_id, step_id) >= 1),
    CONSTRAINT observation_score_check CHECK ((observation_type = 'rating') = (score IS NOT NULL) AND (score IS NULL OR score BETWEEN 1 AND 5)),
    CONSTRAINT observation_severity_check CHECK ((observation_type = 'flag') = (severity IS NOT NULL)
                                                 AND (severity IS NULL OR severity IN ('low', 'medium', 'high', 'critical'))),
    CONSTRAINT observation_content_check CHECK (jsonb_typeof(content) = 'object')
);
CREATE INDEX observation_turn_idx ON aos_agent.observation (tenant_id, turn_id) WHERE turn_id IS NOT NULL;
CREATE INDEX observation_created_idx ON aos_agent.observation (tenant_id, created_at DESC);
COMMENT ON TABLE aos_agent.observation IS 'Human observations: ratings (1-5), flags with a severity, notes, corrections, interventions.';
