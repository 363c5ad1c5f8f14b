-- pgAgentOS kernel — the agent loop: the turn queue (claim, lease, heartbeat, reclaim), the
-- context of a turn, recording steps, tool-call decisions and tickets, completion and failure.
--
-- Every write of a worker carries its lease token and is refused (AO004) once the lease has
-- passed to someone else. A turn driven by hand (the spec's section 5: run_turn, then
-- process_tool_call / record_tool_result / complete_turn without a token) holds a "manual"
-- lease that workers respect until it has been idle for 15 minutes.

-- PL/pgSQL rather than SQL: a SQL function that reads a table cannot be inlined, and PostgreSQL
-- parses and plans its body again in every statement that calls it (each model response's
-- conversation UPDATE did); PL/pgSQL keeps the plan for the session.
CREATE FUNCTION aos_meta.compute_cost(p_model_id uuid, p_input_tokens bigint, p_output_tokens bigint)
RETURNS numeric
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_cost numeric;
BEGIN
    SELECT round((coalesce(p_input_tokens, 0) * r.input_price_per_mtok + coalesce(p_output_tokens, 0) * r.output_price_per_mtok) / 1000000.0, 6)
      INTO v_cost
      FROM aos_meta.llm_model_registry r WHERE r.model_id = p_model_id;
    RETURN v_cost;
END
$$;
COMMENT ON FUNCTION aos_meta.compute_cost(uuid, bigint, bigint) IS 'USD cost of a call from the registry''s prices per million input and output tokens.';

CREATE FUNCTION aos_agent.manual_lease()
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT interval '15 minutes' $$;
COMMENT ON FUNCTION aos_agent.manual_lease() IS 'How long a turn driven by hand stays reserved after its last call before workers may take it over.';

-- ---------------------------------------------------------------------------------------------
-- _diagnose: why a turn write was refused. Always raises.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION aos_agent._diagnose(p_turn_id uuid, p_lease_token uuid, p_at timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v       record;
    v_found boolean;
BEGIN
    IF p_lease_token IS NOT NULL THEN
        PERFORM set_config('aos.kernel_scope', 'all', true);
    END IF;
    -- With a token, only a turn that token once leased is diagnosed (its run row carries the
    -- token): anyone else learns nothing about a turn of another tenant, not even that it exists.
    SELECT t.turn_number, t.status AS turn_status, c.status AS conv_status, c.run_state, c.lease_token, c.lease_worker,
           c.active_turn_id, c.cur_deadline, c.cur_iteration, c.cur_max_iterations,
           (SELECT a.turn_number FROM aos_agent.turn a WHERE a.tenant_id = c.tenant_id AND a.turn_id = c.active_turn_id) AS active_number,
           (SELECT r.status FROM aos_core.run r
             WHERE r.tenant_id = t.tenant_id AND r.turn_id = t.turn_id AND r.lease_token = p_lease_token LIMIT 1) AS token_run_status
      INTO v
      FROM aos_agent.turn t
      JOIN aos_agent.conversation c ON c.tenant_id = t.tenant_id AND c.conversation_id = t.conversation_id
     WHERE t.turn_id = p_turn_id
       AND CASE WHEN p_lease_token IS NULL THEN t.tenant_id = aos_auth.current_tenant()
                ELSE EXISTS (SELECT 1 FROM aos_core.run r
                              WHERE r.tenant_id = t.tenant_id AND r.turn_id = t.turn_id AND r.lease_token = p_lease_token) END;
    v_found := FOUND;
    PERFORM set_config('aos.kernel_scope', '', true);
    IF NOT v_found AND p_lease_token IS NOT NULL THEN
        RAISE EXCEPTION 'the lease on turn % is no longer yours', p_turn_id
            USING ERRCODE = 'AO004', HINT = 'Another worker took the turn over (your lease expired), or it was paused or cancelled. Stop working on it.';
    END IF;
    IF NOT v_found THEN
        PERFORM aos_core._not_found('turn', p_turn_id);
    END IF;
    -- A zombie: its lease expired and the turn was taken over. Whatever happened to the turn since,
    -- the answer for that worker is the same: the lease is gone.
    IF v.token_run_status = 'lost' THEN
        RAISE EXCEPTION 'the lease on turn % expired and the turn was taken over', p_turn_id
            USING ERRCODE = 'AO004', HINT = 'Stop working on it: another attempt runs (or ran) it.';
    END IF;
    IF v.turn_status IN ('completed', 'failed', 'cancelled', 'dead') THEN
        RAISE EXCEPTION 'turn % is %', p_turn_id, v.turn_status
            USING ERRCODE = 'AO003', HINT = 'A finished turn does not change; send a new message for a new turn.';
    END IF;
    IF v.conv_status = 'paused' THEN
        RAISE EXCEPTION 'the conversation of turn % is paused', p_turn_id
            USING ERRCODE = 'AO008', HINT = 'Stop working on it; aos_agent.resume_conversation lets it run again.';
    END IF;
    IF p_lease_token IS NOT NULL AND (v.lease_token IS DISTINCT FROM p_lease_token OR v.active_turn_id <> p_turn_id OR v.run_state <> 'leased') THEN
        RAISE EXCEPTION 'the lease on turn % is no longer yours', p_turn_id
            USING ERRCODE = 'AO004', HINT = 'Another worker took the turn over (your lease expired), or it was paused or cancelled. Stop working on it.';
    END IF;
    IF p_lease_token IS NULL THEN
        IF v.active_turn_id IS DISTINCT FROM p_turn_id THEN
            RAISE EXCEPTION 'turn % waits for turn % of its conversation', p_turn_id, v.active_number
                USING ERRCODE = 'AO003', HINT = 'Turns of a conversation run one at a time, in order.';
        ELSIF v.run_state = 'leased' THEN
            RAISE EXCEPTION 'turn % is being run by worker %', p_turn_id, v.lease_worker
                USING ERRCODE = 'AO003', HINT = 'A worker holds it; watch it with aos tail, or pause the conversation first.';
        ELSIF v.run_state = 'ready' THEN
            RAISE EXCEPTION 'turn % has not been started', p_turn_id
                USING ERRCODE = 'AO003', HINT = 'Call aos_agent.run_turn(turn_id) first.';
        ELSIF v.run_state = 'waiting' THEN
            RAISE EXCEPTION 'turn % is waiting (%)', p_turn_id, v.turn_status
                USING ERRCODE = 'AO003', HINT = 'Decide its pending tool calls (aos_agent.approve_step) first.';
        END IF;
    END IF;
    IF v.cur_deadline IS NOT NULL AND v.cur_deadline < p_at THEN
        RAISE EXCEPTION 'turn % ran past its time budget', p_turn_id
            USING ERRCODE = 'AO007', HINT = 'Fail the turn (aos_agent.fail_turn), or raise the agent''s max_turn_seconds.';
    END IF;
    IF v.cur_iteration >= v.cur_max_iterations THEN
        RAISE EXCEPTION 'turn % used all % iterations of its budget', p_turn_id, v.cur_max_iterations
            USING ERRCODE = 'AO007', HINT = 'Fail the turn (aos_agent.fail_turn), or raise the agent''s max_iterations.';
    END IF;
    RAISE EXCEPTION 'turn % cannot take this step now (state %)', p_turn_id, v.turn_status
        USING ERRCODE = 'AO003', HINT = 'aos_agent.get_turn_state(turn_id) shows where it is.';
END
$$;
COMMENT ON FUNCTION aos_agent._diagnose(uuid, uuid, timestamptz) IS 'Internal: raises the error that explains why a write to a turn was refused.';

-- ---------------------------------------------------------------------------------------------
-- _advance: the one UPDATE every step write makes. It checks the lease (or the manual lease),
-- the conversation state, the deadline and the iteration budget; bumps the active turn's step
-- counter, iteration, tokens and cost; links the event into the conversation's chain; and
-- writes that event. p_kind: 'model' (output of a model response), 'input' (tool results,
-- injected messages), 'end' (fail_turn: ending a turn is allowed past its deadline), 'other'.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION aos_agent._advance(
    p_turn_id uuid, p_lease_token uuid, p_nsteps integer, p_kind text,
    p_input_tokens bigint, p_output_tokens bigint, p_cost numeric,
    p_event_type text, p_payload jsonb, p_at timestamptz,
    OUT tenant_id uuid, OUT conversation_id uuid, OUT first_step integer, OUT iteration integer, OUT attempt integer,
    OUT tokens bigint, OUT cost numeric, OUT max_tokens bigint, OUT max_cost numeric, OUT model_id uuid, OUT worker_id text)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_actor  text := aos_core._actor();
    v_tenant uuid;
    v_conv   uuid;
    v_seq    bigint;
BEGIN
    -- Each path is one statement: the conversation's UPDATE and the INSERT of its event (a
    -- statement costs its executor set-up and its row-level security InitPlans, whatever it does).
    -- The two paths stay two statements: a worker's finds the conversation through the unique
    -- lease-token index, one by hand through its key (and renews the manual lease); one statement
    -- for both would choose between them at run time and be planned anew on every call.
    IF p_lease_token IS NOT NULL THEN
        -- A worker: the lease token finds the conversation (across tenants, hence the scope).
        PERFORM set_config('aos.kernel_scope', 'all', true);
        WITH c AS (
            UPDATE aos_agent.conversation c
               SET cur_step_count = c.cur_step_count + p_nsteps,
                   cur_iteration = c.cur_iteration + CASE WHEN p_kind = 'model' AND c.cur_phase <> 'model' THEN 1 ELSE 0 END,
                   cur_phase = CASE WHEN p_kind IN ('model', 'input') THEN p_kind ELSE c.cur_phase END,
                   cur_input_tokens = c.cur_input_tokens + coalesce(p_input_tokens, 0),
                   cur_output_tokens = c.cur_output_tokens + coalesce(p_output_tokens, 0),
                   cur_cost_usd = c.cur_cost_usd + CASE WHEN p_cost IS NOT NULL THEN p_cost
                                                        WHEN p_input_tokens IS NULL AND p_output_tokens IS NULL THEN 0
                                                        ELSE coalesce(aos_meta.compute_cost(c.cur_model_id, p_input_tokens, p_output_tokens), 0) END,
                   event_seq = c.event_seq + 1,
                   event_head = aos_core.event_hash(c.event_head, c.tenant_id, c.conversation_id, c.event_seq + 1, p_event_type, NULL,
                                                     p_turn_id, v_actor, p_payload || jsonb_build_object('first_step', c.cur_step_count + 1), p_at),
                   last_activity_at = p_at
             WHERE c.lease_token = p_lease_token AND c.run_state = 'leased' AND c.active_turn_id = p_turn_id AND c.status = 'active'
               AND (p_kind = 'end' OR c.cur_deadline IS NULL OR c.cur_deadline >= p_at)
               AND NOT (p_kind = 'model' AND c.cur_phase <> 'model' AND c.cur_iteration >= c.cur_max_iterations)
            RETURNING c.tenant_id AS r_tenant, c.conversation_id AS r_conv, c.cur_step_count - p_nsteps + 1 AS r_first,
                      c.cur_iteration AS r_iteration, c.cur_attempt AS r_attempt, c.cur_input_tokens + c.cur_output_tokens AS r_tokens,
                      c.cur_cost_usd AS r_cost, c.cur_max_tokens AS r_max_tokens, c.cur_max_cost_usd AS r_max_cost,
                      c.cur_model_id AS r_model, c.lease_worker AS r_worker, c.event_seq AS r_seq, c.event_head AS r_hash),
        e AS (
            INSERT INTO aos_core.event_log (tenant_id, chain_id, seq, event_type, entity_id, turn_id, actor, payload, created_at, hash)
            SELECT c.r_tenant, c.r_conv, c.r_seq, p_event_type, NULL, p_turn_id, v_actor,
                   p_payload || jsonb_build_object('first_step', c.r_first), p_at, c.r_hash
              FROM c)
        SELECT c.r_tenant, c.r_conv, c.r_first, c.r_iteration, c.r_attempt, c.r_tokens, c.r_cost, c.r_max_tokens, c.r_max_cost,
               c.r_model, c.r_worker, c.r_seq
          INTO tenant_id, conversation_id, first_step, iteration, attempt, tokens, cost, max_tokens, max_cost, model_id, worker_id, v_seq
          FROM c;
        PERFORM set_config('aos.kernel_scope', '', true);
    ELSE
        -- By hand: the session's tenant, the spec's functions without a token.
        v_tenant := aos_auth._require_tenant();
        SELECT t.conversation_id INTO v_conv FROM aos_agent.turn t WHERE t.tenant_id = v_tenant AND t.turn_id = p_turn_id;
        IF v_conv IS NULL THEN
            PERFORM aos_core._not_found('turn', p_turn_id);
        END IF;
        WITH c AS (
            UPDATE aos_agent.conversation c
               SET cur_step_count = c.cur_step_count + p_nsteps,
                   cur_iteration = c.cur_iteration + CASE WHEN p_kind = 'model' AND c.cur_phase <> 'model' THEN 1 ELSE 0 END,
                   cur_phase = CASE WHEN p_kind IN ('model', 'input') THEN p_kind ELSE c.cur_phase END,
                   cur_input_tokens = c.cur_input_tokens + coalesce(p_input_tokens, 0),
                   cur_output_tokens = c.cur_output_tokens + coalesce(p_output_tokens, 0),
                   cur_cost_usd = c.cur_cost_usd + CASE WHEN p_cost IS NOT NULL THEN p_cost
                                                        WHEN p_input_tokens IS NULL AND p_output_tokens IS NULL THEN 0
                                                        ELSE coalesce(aos_meta.compute_cost(c.cur_model_id, p_input_tokens, p_output_tokens), 0) END,
                   event_seq = c.event_seq + 1,
                   event_head = aos_core.event_hash(c.event_head, c.tenant_id, c.conversation_id, c.event_seq + 1, p_event_type, NULL,
                                                     p_turn_id, v_actor, p_payload || jsonb_build_object('first_step', c.cur_step_count + 1), p_at),
                   -- the manual lease is renewed at most once a minute: lease_expires_at is indexed, and an
                   -- unchanged value lets PostgreSQL update the row in place (HOT)
                   lease_expires_at = CASE WHEN c.dispatch = 'manual' THEN NULL
                                           WHEN c.lease_expires_at >= p_at + aos_agent.manual_lease() - interval '1 minute' THEN c.lease_expires_at
                                           ELSE p_at + aos_agent.manual_lease() END,
                   last_activity_at = p_at
             WHERE c.tenant_id = v_tenant AND c.conversation_id = v_conv AND c.run_state = 'manual' AND c.active_turn_id = p_turn_id
               AND c.status = 'active'
               AND (p_kind = 'end' OR c.cur_deadline IS NULL OR c.cur_deadline >= p_at)
               AND NOT (p_kind = 'model' AND c.cur_phase <> 'model' AND c.cur_iteration >= c.cur_max_iterations)
            RETURNING c.tenant_id AS r_tenant, c.conversation_id AS r_conv, c.cur_step_count - p_nsteps + 1 AS r_first,
                      c.cur_iteration AS r_iteration, c.cur_attempt AS r_attempt, c.cur_input_tokens + c.cur_output_tokens AS r_tokens,
                      c.cur_cost_usd AS r_cost, c.cur_max_tokens AS r_max_tokens, c.cur_max_cost_usd AS r_max_cost,
                      c.cur_model_id AS r_model, c.lease_worker AS r_worker, c.event_seq AS r_seq, c.event_head AS r_hash),
        e AS (
            INSERT INTO aos_core.event_log (tenant_id, chain_id, seq, event_type, entity_id, turn_id, actor, payload, created_at, hash)
            SELECT c.r_tenant, c.r_conv, c.r_seq, p_event_type, NULL, p_turn_id, v_actor,
                   p_payload || jsonb_build_object('first_step', c.r_first), p_at, c.r_hash
              FROM c)
        SELECT c.r_tenant, c.r_conv, c.r_first, c.r_iteration, c.r_attempt, c.r_tokens, c.r_cost, c.r_max_tokens, c.r_max_cost,
               c.r_model, c.r_worker, c.r_seq
          INTO tenant_id, conversation_id, first_step, iteration, attempt, tokens, cost, max_tokens, max_cost, model_id, worker_id, v_seq
          FROM c;
    END IF;
    IF v_seq IS NULL THEN
        PERFORM aos_agent._diagnose(p_turn_id, p_lease_token, p_at);
    END IF;
    PERFORM aos_auth._act_as(tenant_id);
END
$$;
COMMENT ON FUNCTION aos_agent._advance(uuid, uuid, integer, text, bigint, bigint, numeric, text, jsonb, timestamptz) IS
    'Internal: checks the lease and budgets of a turn write, advances the conversation''s counters and event chain, and logs the event.';

-- _admin_advance: the same for interventions by people (no lease): approvals, injections,
-- overrides, pauses. Steps go to the active turn (counter on the conversation) or, for a turn
-- that is not active, to the turn's own counter.
CREATE FUNCTION aos_agent._admin_advance(
    p_tenant_id uuid, p_turn_id uuid, p_nsteps integer, p_kind text, p_event_type text, p_payload jsonb, p_at timestamptz,
    OUT conversation_id uuid, OUT first_step integer, OUT iteration integer, OUT attempt integer, OUT is_active boolean)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_actor text := aos_core._actor();
    v_conv  uuid;
    v_seq   bigint;
    v_hash  bytea;
    v_first integer;
BEGIN
    SELECT t.conversation_id INTO v_conv FROM aos_agent.turn t WHERE t.tenant_id = p_tenant_id AND t.turn_id = p_turn_id;
    IF v_conv IS NULL THEN
        PERFORM aos_core._not_found('turn', p_turn_id);
    END IF;
    UPDATE aos_agent.conversation c
       SET cur_step_count = c.cur_step_count + CASE WHEN c.active_turn_id = p_turn_id THEN p_nsteps ELSE 0 END,
           cur_phase = CASE WHEN c.active_turn_id = p_turn_id AND p_kind IN ('model', 'input') THEN p_kind ELSE c.cur_phase END,
           event_seq = c.event_seq + 1,
           event_head = aos_core.event_hash(c.event_head, c.tenant_id, c.conversation_id, c.event_seq + 1, p_event_type, NULL,
                                             p_turn_id, v_actor, p_payload, p_at),
           last_activity_at = p_at
     WHERE c.tenant_id = p_tenant_id AND c.conversation_id = v_conv
    RETURNING c.conversation_id, c.active_turn_id IS NOT DISTINCT FROM p_turn_id, c.cur_step_count - p_nsteps + 1, c.cur_iteration,
              c.cur_attempt, c.event_seq, c.event_head
      INTO conversation_id, is_active, v_first, iteration, attempt, v_seq, v_hash;
    IF is_active THEN
        first_step := v_first;
    ELSE
        UPDATE aos_agent.turn t SET step_count = t.step_count + p_nsteps
         WHERE t.tenant_id = p_tenant_id AND t.turn_id = p_turn_id
        RETURNING t.step_count - p_nsteps + 1, t.iteration_count, t.attempt INTO first_step, iteration, attempt;
    END IF;
    INSERT INTO aos_core.event_log (tenant_id, chain_id, seq, event_type, entity_id, turn_id, actor, payload, created_at, hash)
    VALUES (p_tenant_id, conversation_id, v_seq, p_event_type, NULL, p_turn_id, v_actor, p_payload, p_at, v_hash);
END
$$;
COMMENT ON FUNCTION aos_agent._admin_advance(uuid, uuid, integer, text, text, jsonb, timestamptz) IS
    'Internal: numbers the steps of a human intervention and links its event into the conversation''s chain.';

CREATE FUNCTION aos_agent._insert_step(
    p_tenant_id uuid, p_step_id uuid, p_turn_id uuid, p_conversation_id uuid, p_step_number integer, p_step_type text,
    p_status text, p_iteration integer, p_attempt integer, p_content jsonb, p_at timestamptz,
    p_tool_name text DEFAULT NULL, p_call_id text DEFAULT NULL, p_args_hash bytea DEFAULT NULL, p_parent_step_id uuid DEFAULT NULL,
    p_tokens integer DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    -- PL/pgSQL rather than SQL: a SQL function's INSERT is planned anew on every call, PL/pgSQL
    -- keeps its plan for the session (this runs once per tool result, injection, override, error).
    INSERT INTO aos_agent.step (tenant_id, step_id, turn_id, conversation_id, step_number, step_type, status, iteration, attempt,
                                tool_name, call_id, args_hash, parent_step_id, content, tokens, created_at, completed_at)
    VALUES (p_tenant_id, p_step_id, p_turn_id, p_conversation_id, p_step_number, p_step_type, p_status, p_iteration, p_attempt,
            p_tool_name, p_call_id, p_args_hash, p_parent_step_id, p_content, p_tokens, p_at,
            CASE WHEN p_status IN ('completed', 'rejected', 'failed', 'cancelled') THEN p_at END);
END
$$;
COMMENT ON FUNCTION aos_agent._insert_step(uuid, uuid, uuid, uuid, integer, text, text, integer, integer, jsonb, timestamptz, text, text, bytea, uuid, integer) IS
    'Internal: inserts one step row.';

-- ---------------------------------------------------------------------------------------------
-- Moving turns between states
-- ---------------------------------------------------------------------------------------------
-- _activate_next: after the active turn finished, hand the conversation to its next queued turn
-- (or make it idle). Returns the next turn's id.
CREATE FUNCTION aos_agent._activate_next(p_tenant_id uuid, p_conversation_id uuid, p_after_number integer, p_at timestamptz,
                                         p_notify boolean DEFAULT true)
RETURNS uuid
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_next  aos_agent.turn%ROWTYPE;
    v_state text;
BEGIN
    SELECT * INTO v_next FROM aos_agent.turn
     WHERE tenant_id = p_tenant_id AND conversation_id = p_conversation_id AND turn_number > p_after_number AND status = 'queued'
     ORDER BY turn_number LIMIT 1;
    IF NOT FOUND THEN
        UPDATE aos_agent.conversation
           SET run_state = 'idle', active_turn_id = NULL, lease_token = NULL, lease_expires_at = NULL, lease_worker = NULL,
               ready_at = NULL, cur_run_started = NULL, cur_deadline = NULL
         WHERE tenant_id = p_tenant_id AND conversation_id = p_conversation_id;
        RETURN NULL;
    END IF;
    UPDATE aos_agent.conversation c
       SET run_state = CASE WHEN c.status <> 'active' THEN 'waiting' WHEN c.dispatch = 'manual' THEN 'manual' ELSE 'ready' END,
           active_turn_id = v_next.turn_id, lease_token = NULL, lease_expires_at = NULL, lease_worker = NULL, ready_at = p_at,
           cur_attempt = v_next.attempt, cur_model_id = NULL, cur_phase = 'input', cur_step_count = v_next.step_count,
           cur_iteration = v_next.iteration_count,
           cur_max_iterations = coalesce((v_next.budget ->> 'max_iterations')::integer, 10),
           cur_max_tokens = (v_next.budget ->> 'max_tokens')::bigint,
           cur_max_cost_usd = (v_next.budget ->> 'max_cost_usd')::numeric,
           cur_input_tokens = v_next.input_tokens, cur_output_tokens = v_next.output_tokens, cur_cost_usd = v_next.cost_usd,
           cur_run_started = NULL, cur_deadline = NULL
     WHERE c.tenant_id = p_tenant_id AND c.conversation_id = p_conversation_id
    RETURNING c.run_state INTO v_state;
    IF v_state = 'ready' AND p_notify THEN
        PERFORM pg_notify('aos_turn_ready', v_next.turn_id::text);
    END IF;
    RETURN CASE WHEN v_state = 'ready' THEN v_next.turn_id END;
END
$$;
COMMENT ON FUNCTION aos_agent._activate_next(uuid, uuid, integer, timestamptz, boolean) IS 'Internal: gives the conversation to its next queued turn, or makes it idle.';

-- _finish_turn: a turn ends (completed, failed, cancelled, dead). Its counters move from the
-- conversation to the turn, open runs and executions close, undecided tool calls are
-- cancelled, the conversation's totals grow and its next turn becomes active.
CREATE FUNCTION aos_agent._finish_turn(p_tenant_id uuid, p_turn_id uuid, p_status text, p_answer text, p_error text, p_at timestamptz,
                                       p_notify_next boolean DEFAULT true)
RETURNS uuid
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_turn aos_agent.turn%ROWTYPE;
    v_conv aos_agent.conversation%ROWTYPE;
    v_active boolean;
    v_next   uuid;
    v_done   aos_agent.turn%ROWTYPE;
BEGIN
    SELECT * INTO v_turn FROM aos_agent.turn WHERE tenant_id = p_tenant_id AND turn_id = p_turn_id FOR UPDATE;
    SELECT * INTO v_conv FROM aos_agent.conversation WHERE tenant_id = p_tenant_id AND conversation_id = v_turn.conversation_id FOR UPDATE;
    v_active := v_conv.active_turn_id IS NOT DISTINCT FROM p_turn_id;
    UPDATE aos_agent.turn t
       SET status = p_status,
           assistant_message = coalesce(p_answer, t.assistant_message),
           error_message = coalesce(p_error, t.error_message),
           errors = CASE WHEN p_error IS NULL THEN t.errors
                         ELSE t.errors || jsonb_build_object('attempt', t.attempt, 'error', p_error, 'at', p_at) END,
           step_count = CASE WHEN v_active THEN v_conv.cur_step_count ELSE t.step_count END,
           iteration_count = CASE WHEN v_active THEN v_conv.cur_iteration ELSE t.iteration_count END,
           input_tokens = CASE WHEN v_active THEN v_conv.cur_input_tokens ELSE t.input_tokens END,
           output_tokens = CASE WHEN v_active THEN v_conv.cur_output_tokens ELSE t.output_tokens END,
           tokens_used = CASE WHEN v_active THEN v_conv.cur_input_tokens + v_conv.cur_output_tokens ELSE t.tokens_used END,
           cost_usd = CASE WHEN v_active THEN v_conv.cur_cost_usd ELSE t.cost_usd END,
           tool_usage = (SELECT coalesce(jsonb_object_agg(u.tool_name, u.n), '{}')
                           FROM (SELECT s.tool_name, count(*) AS n FROM aos_agent.step s
                                  WHERE s.tenant_id = p_tenant_id AND s.turn_id = p_turn_id AND s.step_type = 'tool_call'
                                  GROUP BY s.tool_name) u),
           active_ms = t.active_ms + CASE WHEN v_active AND v_conv.cur_run_started IS NOT NULL
                                          THEN (extract(epoch FROM p_at - v_conv.cur_run_started) * 1000)::bigint ELSE 0 END,
           -- the history later turns read (only completed turns are history)
           messages = CASE WHEN p_status = 'completed' THEN aos_agent._turn_messages(p_tenant_id, p_turn_id) END,
           completed_at = p_at
     WHERE t.tenant_id = p_tenant_id AND t.turn_id = p_turn_id
    RETURNING t.* INTO v_done;
    -- the agent's hourly analytics (the hour the turn was created; a shard by turn, so that
    -- concurrent completions of one agent seldom wait for the same row)
    INSERT INTO aos_agent.agent_hourly AS h (tenant_id, agent_id, hour, shard, finished_turns, completed_turns, failed_turns,
                                             tokens_used, cost_usd, completed_ms, tool_usage)
    VALUES (p_tenant_id, v_done.agent_id, aos_core._hour(v_done.created_at), (abs(hashtext(p_turn_id::text)) % 16)::smallint, 1,
            (p_status = 'completed')::integer, (p_status IN ('failed', 'dead'))::integer, v_done.tokens_used, v_done.cost_usd,
            CASE WHEN p_status = 'completed' THEN extract(epoch FROM p_at - v_done.created_at) * 1000 ELSE 0 END, v_done.tool_usage)
    ON CONFLICT (tenant_id, agent_id, hour, shard) DO UPDATE
       SET finished_turns = h.finished_turns + 1,
           completed_turns = h.completed_turns + excluded.completed_turns,
           failed_turns = h.failed_turns + excluded.failed_turns,
           tokens_used = h.tokens_used + excluded.tokens_used,
           cost_usd = h.cost_usd + excluded.cost_usd,
           completed_ms = h.completed_ms + excluded.completed_ms,
           tool_usage = CASE WHEN excluded.tool_usage = '{}' THEN h.tool_usage ELSE aos_core._merge_counts(h.tool_usage, excluded.tool_usage) END;
    UPDATE aos_core.run
       SET status = CASE p_status WHEN 'completed' THEN 'succeeded' WHEN 'cancelled' THEN 'cancelled' ELSE 'failed' END,
           ended_at = p_at,
           error = CASE WHEN p_error IS NULL THEN NULL ELSE jsonb_build_object('error', p_error) END
     WHERE tenant_id = p_tenant_id AND turn_id = p_turn_id AND status = 'running';
    UPDATE aos_agent.tool_execution SET status = 'abandoned', finished_at = p_at
     WHERE tenant_id = p_tenant_id AND turn_id = p_turn_id AND status = 'running';
    UPDATE aos_agent.step SET status = 'cancelled', completed_at = p_at
     WHERE tenant_id = p_tenant_id AND turn_id = p_turn_id AND step_type = 'tool_call'
       AND status IN ('pending', 'approved', 'executing', 'needs_review');
    IF v_active THEN
        UPDATE aos_agent.conversation
           SET total_tokens = total_tokens + cur_input_tokens + cur_output_tokens,
               total_cost_usd = total_cost_usd + cur_cost_usd
         WHERE tenant_id = p_tenant_id AND conversation_id = v_turn.conversation_id;
        v_next := aos_agent._activate_next(p_tenant_id, v_turn.conversation_id, v_turn.turn_number, p_at, p_notify_next);
    END IF;
    PERFORM aos_core._conversation_event(p_tenant_id, v_turn.conversation_id, 'turn.' || p_status, p_turn_id, p_turn_id,
        jsonb_strip_nulls(jsonb_build_object('answer_sha256', CASE WHEN p_answer IS NULL THEN NULL
                                                                    ELSE encode(sha256(convert_to(p_answer, 'UTF8')), 'hex') END,
                                             'error', p_error)));
    -- No NOTIFY here: a notifying transaction holds PostgreSQL's notification lock through its
    -- commit, which would serialise every turn's completion. Workers send aos_turn_done after the
    -- commit; watchers poll as well.
    RETURN v_next;
END
$$;
COMMENT ON FUNCTION aos_agent._finish_turn(uuid, uuid, text, text, text, timestamptz, boolean) IS
    'Internal: ends a turn and hands the conversation to the next one; returns that turn when it is ready for a worker.';

-- _park: the active turn waits for people (approval, review, pause); no worker holds it.
CREATE FUNCTION aos_agent._park(p_tenant_id uuid, p_turn_id uuid, p_turn_status text, p_run_status text, p_at timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_conv aos_agent.conversation%ROWTYPE;
BEGIN
    SELECT c.* INTO v_conv FROM aos_agent.conversation c JOIN aos_agent.turn t
        ON t.tenant_id = c.tenant_id AND t.conversation_id = c.conversation_id
     WHERE t.tenant_id = p_tenant_id AND t.turn_id = p_turn_id;
    UPDATE aos_agent.turn t
       SET status = p_turn_status,
           active_ms = t.active_ms + CASE WHEN v_conv.cur_run_started IS NULL THEN 0
                                          ELSE (extract(epoch FROM p_at - v_conv.cur_run_started) * 1000)::bigint END
     WHERE t.tenant_id = p_tenant_id AND t.turn_id = p_turn_id;
    UPDATE aos_agent.conversation
       SET run_state = 'waiting', lease_token = NULL, lease_expires_at = NULL, lease_worker = NULL,
           cur_run_started = NULL, cur_deadline = NULL
     WHERE tenant_id = p_tenant_id AND conversation_id = v_conv.conversation_id AND active_turn_id = p_turn_id;
    UPDATE aos_core.run SET status = p_run_status, ended_at = p_at
     WHERE tenant_id = p_tenant_id AND turn_id = p_turn_id AND status = 'running';
    IF p_turn_status = 'waiting_tool' THEN
        PERFORM pg_notify('aos_approval_needed', p_turn_id::text);
    END IF;
END
$$;
COMMENT ON FUNCTION aos_agent._park(uuid, uuid, text, text, timestamptz) IS 'Internal: the active turn waits for people and holds no worker.';

-- _resume: a waiting turn may go on: a worker claims it (or its driver goes on by hand).
CREATE FUNCTION aos_agent._resume(p_tenant_id uuid, p_turn_id uuid, p_at timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_turn aos_agent.turn%ROWTYPE;
    v_state text;
BEGIN
    SELECT * INTO v_turn FROM aos_agent.turn WHERE tenant_id = p_tenant_id AND turn_id = p_turn_id;
    UPDATE aos_agent.conversation c
       SET run_state = CASE WHEN v_turn.driver = 'manual' OR c.dispatch = 'manual' THEN 'manual' ELSE 'ready' END,
           ready_at = p_at,
           lease_expires_at = CASE WHEN v_turn.driver = 'manual' AND c.dispatch <> 'manual' THEN p_at + aos_agent.manual_lease() END,
           cur_run_started = CASE WHEN v_turn.driver = 'manual' OR c.dispatch = 'manual' THEN p_at END
     WHERE c.tenant_id = p_tenant_id AND c.conversation_id = v_turn.conversation_id AND c.active_turn_id = p_turn_id
       AND c.status = 'active' AND c.run_state = 'waiting'
    RETURNING c.run_state INTO v_state;
    IF v_state IS NULL THEN
        RETURN;  -- still paused: resume_conversation will release it
    END IF;
    UPDATE aos_agent.turn SET status = CASE WHEN v_state = 'manual' THEN 'running' ELSE 'queued' END
     WHERE tenant_id = p_tenant_id AND turn_id = p_turn_id;
    IF v_state = 'ready' THEN
        PERFORM pg_notify('aos_turn_ready', p_turn_id::text);
    ELSE
        INSERT INTO aos_core.run (tenant_id, turn_id, conversation_id, attempt, driver, status, started_at)
        VALUES (p_tenant_id, p_turn_id, v_turn.conversation_id, greatest(v_turn.attempt, 1), 'manual', 'running', p_at);
    END IF;
END
$$;
COMMENT ON FUNCTION aos_agent._resume(uuid, uuid, timestamptz) IS 'Internal: a waiting turn may run again (queued for workers, or back to its manual driver).';

-- _settle: after a decision, resume the turn when none of its tool calls waits for people.
CREATE FUNCTION aos_agent._settle(p_tenant_id uuid, p_turn_id uuid, p_at timestamptz)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM aos_agent.step
                WHERE tenant_id = p_tenant_id AND turn_id = p_turn_id AND step_type = 'tool_call'
                  AND status IN ('pending', 'needs_review')) THEN
        RETURN false;
    END IF;
    IF EXISTS (SELECT 1 FROM aos_agent.turn WHERE tenant_id = p_tenant_id AND turn_id = p_turn_id AND status IN ('waiting_tool', 'waiting_human')) THEN
        PERFORM aos_agent._resume(p_tenant_id, p_turn_id, p_at);
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION aos_agent._settle(uuid, uuid, timestamptz) IS 'Internal: resumes a turn once no tool call of it waits for a decision.';

-- _check_budget: after usage was recorded, a turn over its token or cost budget fails.
-- STABLE, not IMMUTABLE: format() is STABLE, and PostgreSQL inlines a SQL function only when
-- its body is no more volatile than the function says (as IMMUTABLE it was planned on every call).
CREATE FUNCTION aos_agent._over_budget(p_tokens bigint, p_cost numeric, p_max_tokens bigint, p_max_cost numeric)
RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE
        WHEN p_max_tokens IS NOT NULL AND p_tokens > p_max_tokens
            THEN format('budget: %s tokens used, the limit is %s', p_tokens, p_max_tokens)
        WHEN p_max_cost IS NOT NULL AND p_cost > p_max_cost
            THEN format('budget: $%s spent, the limit is $%s', p_cost, p_max_cost)
    END
$$;
COMMENT ON FUNCTION aos_agent._over_budget(bigint, numeric, bigint, numeric) IS 'Internal: why a turn is over its token or cost budget, or NULL.';

-- ---------------------------------------------------------------------------------------------
-- The context of a turn: what one LLM call needs.
-- ---------------------------------------------------------------------------------------------
-- _turn_messages: one turn's steps as chat messages (user, injected, assistant with its tool
-- calls, tool results, the answer or its latest override). The answered tool calls of one model
-- response (same iteration) form one assistant message, placed where the first of them was.
-- A completed turn keeps the result in turn.messages (see _finish_turn, inject_message,
-- override_response), so that later turns read their history without rebuilding it.
CREATE FUNCTION aos_agent._turn_messages(p_tenant_id uuid, p_turn_id uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_msgs jsonb;
BEGIN
    WITH st AS MATERIALIZED (
        SELECT s.step_number, s.step_id, s.step_type, s.content, s.tool_name, s.iteration, s.parent_step_id,
               coalesce(s.call_id, 'call_' || substr(replace(s.step_id::text, '-', ''), 1, 24)) AS call_id
          FROM aos_agent.step s
         WHERE s.tenant_id = p_tenant_id AND s.turn_id = p_turn_id
           AND s.step_type IN ('user_message', 'inject', 'tool_call', 'tool_result', 'respond', 'override')
    ), results AS (
        SELECT r.step_number, r.content, c.call_id AS parent_call_id, r.parent_step_id
          FROM st r LEFT JOIN st c ON c.step_id = r.parent_step_id
         WHERE r.step_type = 'tool_result'
    ), calls AS (
        SELECT min(c.step_number) AS pos,
               jsonb_agg(jsonb_build_object('id', c.call_id, 'type', 'function',
                   'function', jsonb_build_object('name', c.tool_name, 'arguments', (c.content -> 'arguments')::text))
                   ORDER BY c.step_number) AS tool_calls
          FROM st c
         WHERE c.step_type = 'tool_call' AND EXISTS (SELECT 1 FROM results r WHERE r.parent_step_id = c.step_id)
         GROUP BY c.iteration
    ), override AS (
        SELECT o.content ->> 'text' AS text FROM st o WHERE o.step_type = 'override' ORDER BY o.step_number DESC LIMIT 1
    ), msgs AS (
        SELECT m.step_number AS pos,
               CASE m.step_type
                   WHEN 'user_message' THEN jsonb_build_object('role', 'user', 'content', m.content ->> 'text')
                   WHEN 'inject' THEN jsonb_build_object('role', coalesce(m.content ->> 'role', 'system'), 'content', m.content ->> 'text')
                   ELSE jsonb_build_object('role', 'assistant',
                                           'content', coalesce((SELECT o.text FROM override o), m.content ->> 'text'))
               END AS msg
          FROM st m
         WHERE m.step_type IN ('user_message', 'inject', 'respond')
        UNION ALL
        SELECT r.step_number,
               jsonb_build_object('role', 'tool', 'tool_call_id', r.parent_call_id,
                   'content', CASE WHEN NOT coalesce((r.content ->> 'success')::boolean, true)
                                   THEN 'Error: ' || coalesce(r.content ->> 'error', 'the tool failed')
                                   WHEN jsonb_typeof(r.content -> 'output') = 'string' THEN r.content ->> 'output'
                                   ELSE coalesce((r.content -> 'output')::text, 'null') END)
          FROM results r
        UNION ALL
        SELECT c.pos, jsonb_build_object('role', 'assistant', 'content', NULL, 'tool_calls', c.tool_calls)
          FROM calls c
    )
    SELECT coalesce(jsonb_agg(msg ORDER BY pos), '[]') INTO v_msgs FROM msgs;
    RETURN v_msgs;
END
$$;
COMMENT ON FUNCTION aos_agent._turn_messages(uuid, uuid) IS
    'Internal: one turn''s steps as chat messages (user, injected, assistant with tool calls, tool results, the answer or its latest override).';

-- _refresh_messages: a person added a step to a turn (inject, override); a completed turn's kept
-- messages follow.
CREATE FUNCTION aos_agent._refresh_messages(p_tenant_id uuid, p_turn_id uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    UPDATE aos_agent.turn SET messages = aos_agent._turn_messages(p_tenant_id, p_turn_id)
     WHERE tenant_id = p_tenant_id AND turn_id = p_turn_id AND status = 'completed';
END
$$;
COMMENT ON FUNCTION aos_agent._refresh_messages(uuid, uuid) IS 'Internal: rebuilds the kept chat messages of a completed turn after a person added a step to it.';

-- _turn_context: everything an LLM call for the turn needs.
CREATE FUNCTION aos_agent._turn_context(p_tenant_id uuid, p_turn_id uuid, p_history boolean DEFAULT true)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_turn  aos_agent.turn%ROWTYPE;
    v_conv  aos_agent.conversation%ROWTYPE;
    v_agent aos_agent.agent%ROWTYPE;
BEGIN
    SELECT * INTO v_turn FROM aos_agent.turn WHERE tenant_id = p_tenant_id AND turn_id = p_turn_id;
    IF NOT FOUND THEN
        PERFORM aos_core._not_found('turn', p_turn_id);
    END IF;
    SELECT * INTO v_conv FROM aos_agent.conversation WHERE tenant_id = p_tenant_id AND conversation_id = v_turn.conversation_id;
    SELECT * INTO v_agent FROM aos_agent.agent WHERE tenant_id = p_tenant_id AND agent_id = v_turn.agent_id;
    RETURN aos_agent._context(v_turn, v_conv, v_agent, p_history);
END
$$;
COMMENT ON FUNCTION aos_agent._turn_context(uuid, uuid, boolean) IS 'Internal: everything an LLM call for the turn needs (without the earlier turns'' messages when p_history is false).';

-- _context: the context of a turn from its row, its conversation's and its agent's (a claim has
-- them at hand). The messages are the earlier turns' (history_messages of them, the first ones)
-- followed by this turn's; without p_history only this turn's (refresh_turn: the worker keeps the
-- history it was given with the claim; a person's later change to an earlier turn, such as an
-- override of its answer, reaches the conversation's next turn).
CREATE FUNCTION aos_agent._context(p_turn aos_agent.turn, p_conv aos_agent.conversation, p_agent aos_agent.agent,
    p_history boolean DEFAULT true)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_tenant   uuid := p_turn.tenant_id;
    v_turn_id  uuid := p_turn.turn_id;
    v_persona  aos_persona.persona%ROWTYPE;
    v_model    aos_meta.llm_model_registry%ROWTYPE;
    v_params   jsonb;
    v_toolset  record;
    v_tools    jsonb;
    v_skills   jsonb;
    v_system   text;
    v_msgs     jsonb := '[]';
    v_approved jsonb := '[]';
    v_awaiting jsonb := '[]';
    v_active   boolean;
    v_hist     record;
    v_hist_n   integer := 0;
BEGIN
    IF p_agent.persona_id IS NOT NULL THEN
        SELECT * INTO v_persona FROM aos_persona.persona WHERE tenant_id = v_tenant AND persona_id = p_agent.persona_id;
    END IF;
    v_active := p_conv.active_turn_id IS NOT DISTINCT FROM v_turn_id;
    SELECT * INTO v_model FROM aos_meta.llm_model_registry
     WHERE model_id = coalesce(p_turn.model_id, p_agent.model_id, v_persona.model_id, aos_agent.default_model_id(v_tenant));
    v_params := aos_meta.resolve_model_params(v_model.model_id,
        coalesce(v_persona.override_params, '{}')
            || CASE WHEN v_persona.max_tokens_per_request IS NULL THEN '{}'::jsonb
                    ELSE jsonb_build_object('max_tokens', v_persona.max_tokens_per_request) END,
        coalesce(p_agent.config -> 'model_params', '{}'), '{}');

    v_system := coalesce(v_persona.system_prompt, 'You are a helpful assistant.');
    IF v_persona.rules IS NOT NULL AND jsonb_array_length(v_persona.rules) > 0 THEN
        v_system := v_system || E'\n\nRules:\n' ||
            (SELECT string_agg('- ' || CASE WHEN jsonb_typeof(x) = 'string' THEN x #>> '{}' ELSE x::text END, E'\n')
               FROM jsonb_array_elements(v_persona.rules) x);
    END IF;

    -- kept on the agent row (see aos_agent._agent_keep_toolset); built when a skill change cleared it
    IF p_agent.toolset IS NOT NULL THEN
        v_tools := p_agent.toolset -> 'tools';
        v_skills := p_agent.toolset -> 'skills';
    ELSE
        v_toolset := aos_agent._toolset_of(v_tenant, p_agent.tools, p_agent.role_key);
        v_tools := v_toolset.tools;
        v_skills := v_toolset.skills;
    END IF;

    -- The history in the common chat format: the messages of earlier completed turns (the last
    -- history_turns of them), kept on each turn when it completed, then this turn's, built now.
    -- One indexed read of a few rows instead of rebuilding every earlier turn from its steps
    -- (0.3-0.6 ms of a claim with nine earlier turns). A turn completed before the column
    -- existed is built from its steps.
    IF p_history THEN
        FOR v_hist IN
            SELECT h.turn_id, h.messages FROM (
                SELECT x.turn_id, x.turn_number, x.messages FROM aos_agent.turn x
                 WHERE x.tenant_id = v_tenant AND x.conversation_id = p_turn.conversation_id
                   AND x.turn_number < p_turn.turn_number AND x.status = 'completed'
                 ORDER BY x.turn_number DESC
                 LIMIT coalesce((p_agent.config ->> 'history_turns')::integer, 20)) h
             ORDER BY h.turn_number
        LOOP
            v_msgs := v_msgs || coalesce(v_hist.messages, aos_agent._turn_messages(v_tenant, v_hist.turn_id));
        END LOOP;
        v_hist_n := jsonb_array_length(v_msgs);
    END IF;
    -- this turn's: while the user's message is its only step, that message (and no tool calls)
    IF p_conv.active_turn_id = v_turn_id AND p_conv.cur_step_count = 1 THEN
        v_msgs := v_msgs || jsonb_build_array(jsonb_build_object('role', 'user', 'content', p_turn.user_message));
    ELSE
        v_msgs := v_msgs || aos_agent._turn_messages(v_tenant, v_turn_id);
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'step_id', s.step_id, 'call_id', coalesce(s.call_id, 'call_' || substr(replace(s.step_id::text, '-', ''), 1, 24)),
                   'name', s.tool_name, 'arguments', s.content -> 'arguments', 'iteration', s.iteration) ORDER BY s.step_number)
                   FILTER (WHERE s.status = 'approved'), '[]'),
               coalesce(jsonb_agg(jsonb_build_object('step_id', s.step_id, 'name', s.tool_name,
                   'arguments', s.content -> 'arguments', 'status', s.status) ORDER BY s.step_number)
                   FILTER (WHERE s.status IN ('pending', 'needs_review')), '[]')
          INTO v_approved, v_awaiting
          FROM aos_agent.step s
         WHERE s.tenant_id = v_tenant AND s.turn_id = v_turn_id AND s.step_type = 'tool_call'
           AND s.status IN ('approved', 'pending', 'needs_review');
    END IF;

    RETURN jsonb_build_object(
        'tenant_id', v_tenant,
        'turn_id', v_turn_id,
        'conversation_id', p_turn.conversation_id,
        'agent_id', p_agent.agent_id,
        'agent_name', p_agent.name,
        'turn_number', p_turn.turn_number,
        'status', p_turn.status,
        'driver', p_turn.driver,
        'attempt', p_turn.attempt,
        'user_message', p_turn.user_message,
        'system_prompt', v_system,
        'messages', v_msgs,
        'history_included', p_history,
        'history_messages', v_hist_n,
        'tools', v_tools,
        'model', jsonb_build_object('model_id', v_model.model_id, 'provider', v_model.provider, 'name', v_model.model_name,
                                    'supports_streaming', v_model.supports_streaming, 'supports_reasoning', v_model.supports_reasoning),
        'params', v_params,
        'iteration', CASE WHEN v_active THEN p_conv.cur_iteration ELSE p_turn.iteration_count END,
        'iteration_count', CASE WHEN v_active THEN p_conv.cur_iteration ELSE p_turn.iteration_count END,
        'budget', jsonb_build_object(
            'max_iterations', coalesce((p_turn.budget ->> 'max_iterations')::integer, 10),
            'max_tokens', p_turn.budget -> 'max_tokens',
            'max_cost_usd', p_turn.budget -> 'max_cost_usd',
            'max_seconds', p_turn.budget -> 'max_seconds',
            'tokens_used', CASE WHEN v_active THEN p_conv.cur_input_tokens + p_conv.cur_output_tokens ELSE p_turn.tokens_used END,
            'cost_usd', CASE WHEN v_active THEN p_conv.cur_cost_usd ELSE p_turn.cost_usd END,
            'deadline', CASE WHEN v_active THEN p_conv.cur_deadline END),
        'approved_tool_calls', v_approved,
        'awaiting_approval', v_awaiting,
        'thinking_visible', coalesce((p_agent.config ->> 'thinking_visible')::boolean, true),
        'stream_channel', aos_agent._stream_channel(v_tenant),
        'skills', v_skills,
        'script', p_agent.config -> 'script');
END
$$;
COMMENT ON FUNCTION aos_agent._context(aos_agent.turn, aos_agent.conversation, aos_agent.agent, boolean) IS
    'Internal: everything an LLM call for the turn needs, from the rows of the turn, its conversation and its agent.';

-- ---------------------------------------------------------------------------------------------
-- Tool-call decisions
-- ---------------------------------------------------------------------------------------------
-- _decide_tool: may the agent call this tool, and does the call wait for a person?
--   not among the agent's tools, unknown, or not granted to its role  -> AO006
--   missing required arguments                                       -> rejected
--   the first matching policy rule (by priority)                      -> its action
--   risk high or critical                                             -> pending
--   the role's grant says requires_approval true/false                -> pending/approved
--   agent auto_approve_tools and the skill does not require approval  -> approved
--   otherwise                                                         -> pending
CREATE FUNCTION aos_agent._decide_tool(p_tenant_id uuid, p_agent_id uuid, p_tool_name text, p_input jsonb,
    OUT decision text, OUT source text, OUT reason text, OUT idempotent boolean)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v record;
    v_missing text[];
BEGIN
    -- One statement reads what the decision needs: the agent, the skill the tenant sees under the
    -- name (its own, else the shared one), the role's grant (the tenant's row wins) and the first
    -- policy rule that matches.
    SELECT a.name AS agent_name, a.role_key, a.config, p_tool_name = ANY (a.tools) AS listed,
           s.skill_key, s.input_schema, s.requires_approval, s.risk_level, s.idempotent,
           g.skill_key AS grant_key, g.allowed, g.requires_approval AS grant_requires_approval,
           r.action AS rule_action, r.name AS rule_name
      INTO v
      FROM aos_agent.agent a
      LEFT JOIN LATERAL (SELECT x.skill_key, x.input_schema, x.requires_approval, x.risk_level, x.idempotent
                           FROM aos_skills.skill x
                          WHERE x.tenant_id IN (p_tenant_id, aos_skills.shared_tenant()) AND x.skill_key = p_tool_name AND x.is_active
                          ORDER BY (x.tenant_id = p_tenant_id) DESC LIMIT 1) s ON true
      LEFT JOIN LATERAL (SELECT y.skill_key, y.allowed, y.requires_approval
                           FROM aos_skills.role_skill y
                          WHERE y.tenant_id IN (p_tenant_id, aos_skills.shared_tenant()) AND y.role_key = a.role_key
                            AND y.skill_key = p_tool_name
                          ORDER BY (y.tenant_id = p_tenant_id) DESC LIMIT 1) g ON true
      LEFT JOIN LATERAL (SELECT z.action, z.name
                           FROM aos_policy.policy_rule z
                          WHERE z.tenant_id = p_tenant_id AND z.enabled
                            AND (z.skill_key IS NULL OR z.skill_key = p_tool_name)
                            AND (z.agent_id IS NULL OR z.agent_id = p_agent_id)
                            AND (z.risk_levels IS NULL OR s.risk_level = ANY (z.risk_levels))
                            AND (z.args_match IS NULL OR p_input @> z.args_match)
                          ORDER BY z.priority, z.name LIMIT 1) r ON true
     WHERE a.tenant_id = p_tenant_id AND a.agent_id = p_agent_id;
    IF NOT coalesce(v.listed, false) THEN
        RAISE EXCEPTION 'agent % may not use tool %', v.agent_name, p_tool_name
            USING ERRCODE = 'AO006', HINT = 'Add it to the agent''s tools (aos_agent.update_agent) if its role is granted the skill.';
    END IF;
    IF v.skill_key IS NULL OR v.grant_key IS NULL OR NOT v.allowed THEN
        RAISE EXCEPTION 'role % of agent % is not granted tool %', v.role_key, v.agent_name, p_tool_name
            USING ERRCODE = 'AO006', HINT = 'An administrator grants skills to roles in aos_skills.role_skill.';
    END IF;
    idempotent := v.idempotent;
    IF v.input_schema ? 'required' THEN
        SELECT array_agg(k) INTO v_missing
          FROM jsonb_array_elements_text(v.input_schema -> 'required') k
         WHERE NOT p_input ? k;
        IF v_missing IS NOT NULL THEN
            decision := 'rejected'; source := 'policy';
            reason := format('invalid arguments: missing %s', array_to_string(v_missing, ', '));
            RETURN;
        END IF;
    END IF;
    IF v.rule_action IS NOT NULL THEN
        source := 'policy';
        reason := format('policy rule %s', v.rule_name);
        decision := CASE v.rule_action WHEN 'deny' THEN 'rejected' WHEN 'auto_approve' THEN 'approved' ELSE 'pending' END;
        RETURN;
    END IF;
    IF v.risk_level IN ('high', 'critical') THEN
        decision := 'pending'; source := 'human'; reason := format('%s-risk tool', v.risk_level);
    ELSIF v.grant_requires_approval IS NOT NULL THEN
        decision := CASE WHEN v.grant_requires_approval THEN 'pending' ELSE 'approved' END;
        source := CASE WHEN v.grant_requires_approval THEN 'human' ELSE 'auto' END;
        reason := format('role %s grant', v.role_key);
    ELSIF coalesce((v.config ->> 'auto_approve_tools')::boolean, false) AND NOT v.requires_approval THEN
        decision := 'approved'; source := 'auto'; reason := 'agent auto-approves this tool';
    ELSE
        decision := 'pending'; source := 'human';
        reason := CASE WHEN v.requires_approval THEN 'the tool requires approval' ELSE 'the agent requires approval of tool calls' END;
    END IF;
END
$$;
COMMENT ON FUNCTION aos_agent._decide_tool(uuid, uuid, text, jsonb) IS
    'Internal: decides a tool call from the agent''s tools, role grants, policy rules, risk and auto-approval.';

-- _lease_target: the tenant and agent of the turn a lease token holds (for decisions that must
-- be made before the write). Nothing about the turn is revealed without the right token.
CREATE FUNCTION aos_agent._lease_target(p_turn_id uuid, p_lease_token uuid, OUT tenant_id uuid, OUT agent_id uuid)
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    PERFORM set_config('aos.kernel_scope', 'all', true);
    SELECT c.tenant_id, c.agent_id INTO tenant_id, agent_id
      FROM aos_agent.conversation c
     WHERE c.lease_token = p_lease_token AND c.active_turn_id = p_turn_id AND c.run_state = 'leased';
    PERFORM set_config('aos.kernel_scope', '', true);
    IF tenant_id IS NULL THEN
        PERFORM aos_agent._diagnose(p_turn_id, p_lease_token, clock_timestamp());
    END IF;
    PERFORM aos_auth._act_as(tenant_id);
END
$$;
COMMENT ON FUNCTION aos_agent._lease_target(uuid, uuid) IS 'Internal: the tenant and agent behind a valid lease token; the calling kernel function then acts for that tenant (_act_as).';

-- ---------------------------------------------------------------------------------------------
-- _respond: records one model response: thinking, tool calls (each decided), and, when final,
-- the answer and the turn's completion, in one transaction. The heart of record_response,
-- record_thinking, process_tool_call and complete_turn.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION aos_agent._respond(
    p_turn_id uuid, p_lease_token uuid, p_thinking text, p_next_action text, p_text text, p_calls jsonb, p_final boolean,
    p_input_tokens bigint, p_output_tokens bigint, p_cost numeric, p_estimated boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_at       timestamptz := clock_timestamp();
    v_tenant   uuid;
    v_agent    uuid;
    v_adv      record;
    v_target   record;
    v_ids      uuid[] := '{}';
    v_types    text[] := '{}';
    v_status   text[] := '{}';
    v_contents jsonb[] := '{}';
    v_tools    text[] := '{}';
    v_callids  text[] := '{}';
    v_hashes   bytea[] := '{}';
    v_parents  uuid[] := '{}';
    v_refs     jsonb := '[]';
    v_results  jsonb := '[]';
    v_call     jsonb;
    v_args     jsonb;
    v_dec      record;
    v_id       uuid;
    v_pending  boolean := false;
    v_ticket   uuid;
    v_budget   text;
    v_tokens   integer;
    v_ntools   integer := jsonb_array_length(p_calls);
    v_next     uuid;
    i          integer;
BEGIN
    IF p_lease_token IS NOT NULL THEN
        IF v_ntools > 0 THEN
            v_target := aos_agent._lease_target(p_turn_id, p_lease_token);
            v_tenant := v_target.tenant_id;
            v_agent := v_target.agent_id;
        END IF;
    ELSE
        v_tenant := aos_auth._require_tenant();
        SELECT t.agent_id INTO v_agent FROM aos_agent.turn t WHERE t.tenant_id = v_tenant AND t.turn_id = p_turn_id;
        IF v_agent IS NULL THEN
            PERFORM aos_core._not_found('turn', p_turn_id);
        END IF;
    END IF;

    IF p_thinking IS NOT NULL THEN
        v_ids := v_ids || gen_random_uuid(); v_types := v_types || 'think'::text; v_status := v_status || 'completed'::text;
        v_contents := v_contents || (jsonb_build_object('reasoning', p_thinking)
                                     || CASE WHEN p_next_action IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('next_action', p_next_action) END);
        v_tools := v_tools || NULL::text; v_callids := v_callids || NULL::text; v_hashes := v_hashes || NULL::bytea; v_parents := v_parents || NULL::uuid;
    END IF;
    -- Simple expressions rather than queries (a loop over jsonb_array_elements is a statement).
    FOR i IN 0 .. v_ntools - 1 LOOP
        v_call := p_calls -> i;
        IF jsonb_typeof(v_call) <> 'object' OR jsonb_typeof(v_call -> 'name') <> 'string' THEN
            RAISE EXCEPTION 'a tool call must be an object with a "name"' USING ERRCODE = '22023',
                HINT = 'Pass {"id": "call_1", "name": "web_search", "arguments": {"query": "..."}}.';
        END IF;
        PERFORM aos_core._check_text(v_call ->> 'name', 'tool name', 64);
        v_args := coalesce(v_call -> 'arguments', '{}');
        IF jsonb_typeof(v_args) = 'string' THEN
            BEGIN
                v_args := (v_args #>> '{}')::jsonb;
            EXCEPTION WHEN invalid_text_representation THEN
                RAISE EXCEPTION 'the arguments of tool call % are not JSON', v_call ->> 'name'
                    USING ERRCODE = '22P02', HINT = 'Pass the arguments as a JSON object.';
            END;
        END IF;
        IF jsonb_typeof(v_args) <> 'object' THEN
            RAISE EXCEPTION 'the arguments of tool call % must be a JSON object, got %', v_call ->> 'name', jsonb_typeof(v_args)
                USING ERRCODE = '22023', HINT = 'Pass the arguments as {"name": value, ...}.';
        END IF;
        PERFORM aos_core._check_json(v_args, 'tool arguments', 'object');
        IF v_call ? 'id' AND (jsonb_typeof(v_call -> 'id') <> 'string' OR length(v_call ->> 'id') > 200) THEN
            RAISE EXCEPTION 'tool call id must be a string of at most 200 characters' USING ERRCODE = '22023',
                HINT = 'Pass the id the provider gave the call, e.g. "call_abc123".';
        END IF;
        v_dec := aos_agent._decide_tool(v_tenant, v_agent, v_call ->> 'name', v_args);
        v_id := gen_random_uuid();
        v_ids := v_ids || v_id; v_types := v_types || 'tool_call'::text;
        v_status := v_status || (CASE v_dec.decision WHEN 'approved' THEN (CASE WHEN p_lease_token IS NOT NULL THEN 'executing' ELSE 'approved' END)
                                                     WHEN 'rejected' THEN 'rejected' ELSE 'pending' END)::text;
        v_contents := v_contents || jsonb_build_object('tool', v_call ->> 'name', 'arguments', v_args,
            'decision', jsonb_build_object('status', v_dec.decision, 'source', v_dec.source, 'reason', v_dec.reason));
        v_tools := v_tools || (v_call ->> 'name'); v_callids := v_callids || (v_call ->> 'id');
        v_hashes := v_hashes || aos_core.json_sha256(v_args); v_parents := v_parents || NULL::uuid;
        v_pending := v_pending OR v_dec.decision = 'pending';
        IF v_dec.decision = 'rejected' THEN
            -- the model hears why: a tool result that says so
            v_ids := v_ids || gen_random_uuid(); v_types := v_types || 'tool_result'::text; v_status := v_status || 'completed'::text;
            v_contents := v_contents || jsonb_build_object('tool', v_call ->> 'name', 'output', NULL, 'success', false,
                                                            'error', 'tool call rejected: ' || v_dec.reason);
            v_tools := v_tools || (v_call ->> 'name'); v_callids := v_callids || (v_call ->> 'id'); v_hashes := v_hashes || NULL::bytea;
            v_parents := v_parents || v_id;
        END IF;
    END LOOP;
    IF p_final THEN
        v_ids := v_ids || gen_random_uuid(); v_types := v_types || 'respond'::text; v_status := v_status || 'completed'::text;
        v_contents := v_contents || jsonb_build_object('text', p_text);
        v_tools := v_tools || NULL::text; v_callids := v_callids || NULL::text; v_hashes := v_hashes || NULL::bytea; v_parents := v_parents || NULL::uuid;
    END IF;
    IF cardinality(v_ids) = 0 THEN
        RAISE EXCEPTION 'the response records nothing' USING ERRCODE = '22023',
            HINT = 'Pass thinking, tool calls or a final text.';
    END IF;
    FOR i IN 1 .. cardinality(v_ids) LOOP
        v_refs := v_refs || jsonb_build_array(aos_agent._step_ref(v_ids[i], v_types[i], v_contents[i]));
    END LOOP;

    v_adv := aos_agent._advance(p_turn_id, p_lease_token, cardinality(v_ids), 'model',
        p_input_tokens, p_output_tokens, p_cost, CASE WHEN p_final THEN 'turn.answered' ELSE 'model.responded' END,
        jsonb_build_object('steps', v_refs) || CASE WHEN p_input_tokens IS NULL AND p_output_tokens IS NULL THEN '{}'::jsonb
            ELSE jsonb_build_object('input_tokens', p_input_tokens, 'output_tokens', p_output_tokens) END, v_at);
    v_tenant := v_adv.tenant_id;

    IF p_final THEN
        IF EXISTS (SELECT 1 FROM aos_agent.step WHERE tenant_id = v_tenant AND turn_id = p_turn_id
                      AND step_type = 'tool_call' AND status IN ('pending', 'needs_review', 'executing')) THEN
            RAISE EXCEPTION 'turn % has tool calls that are waiting or running', p_turn_id
                USING ERRCODE = 'AO003', HINT = 'Record their results (or have them decided) before completing the turn.';
        END IF;
    END IF;

    v_tokens := CASE WHEN p_input_tokens IS NULL AND p_output_tokens IS NULL THEN NULL
                     ELSE (coalesce(p_input_tokens, 0) + coalesce(p_output_tokens, 0))::integer END;
    IF v_pending THEN
        -- another call of this response waits for a person: run none until it is decided
        v_status := array_replace(v_status, 'executing', 'approved');
    END IF;
    -- One statement writes the response: its steps, the decisions of its tool calls, and the
    -- execution tickets of those a worker may run now (each statement costs its executor set-up and
    -- row-level security InitPlans; without tool calls the last two write nothing).
    WITH u AS MATERIALIZED (
        SELECT * FROM unnest(v_ids, v_types, v_status, v_tools, v_callids, v_hashes, v_parents, v_contents)
                      WITH ORDINALITY u(id, typ, st, tool, call_id, hash, parent, content, ord)),
    steps AS (
        INSERT INTO aos_agent.step (tenant_id, step_id, turn_id, conversation_id, step_number, step_type, status, iteration, attempt,
                                    tool_name, call_id, args_hash, parent_step_id, content, tokens, created_at, completed_at)
        SELECT v_tenant, u.id, p_turn_id, v_adv.conversation_id, v_adv.first_step + u.ord::integer - 1, u.typ, u.st, v_adv.iteration,
               v_adv.attempt, u.tool, u.call_id, u.hash, u.parent, u.content,
               CASE WHEN u.ord = cardinality(v_ids) THEN v_tokens END, v_at,
               CASE WHEN u.st IN ('completed', 'rejected', 'failed', 'cancelled') THEN v_at END
          FROM u),
    decided AS (
        INSERT INTO aos_agent.approval (tenant_id, step_id, turn_id, tool_name, args_hash, decision, source, decided_by_role, note, decided_at)
        SELECT v_tenant, u.id, p_turn_id, u.tool, u.hash, CASE WHEN u.st = 'rejected' THEN 'rejected' ELSE 'approved' END,
               u.content #>> '{decision,source}', session_user, u.content #>> '{decision,reason}', v_at
          FROM u
         WHERE u.typ = 'tool_call' AND u.st IN ('approved', 'executing', 'rejected')),
    issued AS (
        INSERT INTO aos_agent.tool_execution (tenant_id, step_id, turn_id, attempt, worker_id, started_at)
        SELECT v_tenant, u.id, p_turn_id, v_adv.attempt, v_adv.worker_id, v_at
          FROM u
         WHERE u.typ = 'tool_call' AND u.st = 'executing'
        RETURNING step_id, execution_id)
    SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
               'step_id', u.id, 'call_id', u.call_id, 'name', u.tool,
               'status', CASE u.st WHEN 'pending' THEN 'awaiting_approval' WHEN 'executing' THEN 'approved' ELSE u.st END,
               'decided_by', u.content #>> '{decision,source}', 'reason', u.content #>> '{decision,reason}',
               'ticket', i.execution_id,
               'result_step_id', CASE WHEN u.st = 'rejected' THEN v_ids[u.ord + 1] END)) ORDER BY u.ord), '[]')
      INTO v_results
      FROM u
      LEFT JOIN issued i ON i.step_id = u.id
     WHERE u.typ = 'tool_call';

    v_budget := aos_agent._over_budget(v_adv.tokens, v_adv.cost, v_adv.max_tokens, v_adv.max_cost);
    IF v_budget IS NOT NULL THEN
        PERFORM aos_agent._finish_turn(v_tenant, p_turn_id, 'failed', NULL, v_budget, v_at);
        RETURN jsonb_build_object('status', 'failed', 'reason', v_budget, 'step_ids', to_jsonb(v_ids), 'tool_calls', v_results);
    END IF;
    IF p_final THEN
        -- A worker's completion does not NOTIFY inside its transaction (a notifying transaction holds
        -- PostgreSQL's notification lock through its commit, which would serialise all completions):
        -- the next turn of the conversation is returned, and the worker wakes the others after the commit.
        v_next := aos_agent._finish_turn(v_tenant, p_turn_id, 'completed', p_text, NULL, v_at, p_lease_token IS NULL);
        RETURN jsonb_strip_nulls(jsonb_build_object('status', 'completed', 'step_ids', to_jsonb(v_ids), 'tool_calls', v_results,
                                                    'next_turn_id', CASE WHEN p_lease_token IS NOT NULL THEN v_next END));
    END IF;
    IF v_pending THEN
        PERFORM aos_agent._park(v_tenant, p_turn_id, 'waiting_tool', 'parked', v_at);
        RETURN jsonb_build_object('status', 'waiting_approval', 'step_ids', to_jsonb(v_ids), 'tool_calls', v_results);
    END IF;
    RETURN jsonb_build_object('status', 'continue', 'step_ids', to_jsonb(v_ids), 'tool_calls', v_results);
END
$$;
COMMENT ON FUNCTION aos_agent._respond(uuid, uuid, text, text, text, jsonb, boolean, bigint, bigint, numeric, boolean) IS
    'Internal: records one model response (thinking, decided tool calls, final answer) in one statement batch.';

-- _usage: tokens and cost from a usage object ({"input_tokens", "output_tokens", "cost_usd"} or
-- the OpenAI names prompt_tokens / completion_tokens) or a total.
CREATE FUNCTION aos_agent._usage(p_usage jsonb, p_total integer, p_cost numeric,
    OUT input_tokens bigint, OUT output_tokens bigint, OUT cost numeric, OUT estimated boolean)
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF p_usage IS NOT NULL AND jsonb_typeof(p_usage) <> 'object' THEN
        RAISE EXCEPTION 'usage must be a JSON object' USING ERRCODE = '22023',
            HINT = 'Pass {"input_tokens": 120, "output_tokens": 45} (cost_usd optional).';
    END IF;
    input_tokens := coalesce(p_usage ->> 'input_tokens', p_usage ->> 'prompt_tokens')::bigint;
    output_tokens := coalesce(p_usage ->> 'output_tokens', p_usage ->> 'completion_tokens')::bigint;
    cost := coalesce(p_cost, (p_usage ->> 'cost_usd')::numeric);
    estimated := false;
    IF input_tokens IS NULL AND output_tokens IS NULL AND coalesce(p_total, 0) <> 0 THEN
        -- only a total: counted as input tokens, priced at the (lower) input rate
        input_tokens := p_total;
        estimated := true;
    END IF;
    IF input_tokens < 0 OR output_tokens < 0 OR p_total < 0 OR cost < 0 THEN
        RAISE EXCEPTION 'token counts and cost must not be negative' USING ERRCODE = '22023', HINT = 'Pass the usage the provider reported.';
    END IF;
EXCEPTION WHEN invalid_text_representation OR numeric_value_out_of_range THEN
    RAISE EXCEPTION 'usage has a token count or cost that is not a number: %', p_usage
        USING ERRCODE = '22023', HINT = 'Token counts are whole numbers; cost_usd a decimal.';
END
$$;
COMMENT ON FUNCTION aos_agent._usage(jsonb, integer, numeric) IS 'Internal: input/output tokens and cost from a usage object or a total.';

-- ---------------------------------------------------------------------------------------------
-- The public step-recording API
-- ---------------------------------------------------------------------------------------------
-- All SECURITY DEFINER: they write steps, events and the conversation's counters, which no
-- client may write directly. The tenant comes from the lease token (workers) or the session
-- binding (by hand), never from an argument.

CREATE FUNCTION aos_agent.record_response(p_turn_id uuid, p_lease_token uuid, p_response jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_u     record;
    v_calls jsonb;
    v_final boolean;
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    PERFORM aos_core._check_json(p_response, 'response', 'object', 4 * aos_core.max_content_bytes());
    v_calls := coalesce(p_response -> 'tool_calls', '[]');
    IF jsonb_typeof(v_calls) <> 'array' THEN
        RAISE EXCEPTION 'response.tool_calls must be an array' USING ERRCODE = '22023', HINT = 'Pass "tool_calls": [] when there are none.';
    END IF;
    v_final := coalesce((p_response ->> 'final')::boolean, jsonb_array_length(v_calls) = 0 AND p_response ? 'text');
    IF v_final AND jsonb_array_length(v_calls) > 0 THEN
        RAISE EXCEPTION 'a final response cannot call tools' USING ERRCODE = '22023', HINT = 'Either answer (final) or call tools.';
    END IF;
    IF v_final THEN
        PERFORM aos_core._check_text(p_response ->> 'text', 'response text', aos_core.max_content_bytes(), true);
    END IF;
    IF p_response ? 'thinking' AND p_response -> 'thinking' <> 'null' THEN
        PERFORM aos_core._check_text(p_response ->> 'thinking', 'thinking');
    END IF;
    v_u := aos_agent._usage(p_response -> 'usage', NULL, NULL);
    RETURN aos_agent._respond(p_turn_id, p_lease_token, nullif(p_response ->> 'thinking', ''), NULL, p_response ->> 'text', v_calls, v_final,
                              v_u.input_tokens, v_u.output_tokens, v_u.cost, v_u.estimated);
END
$$;
COMMENT ON FUNCTION aos_agent.record_response(uuid, uuid, jsonb) IS
    'Records one model response in one transaction: {"thinking", "tool_calls": [{"id","name","arguments"}], "text", "final", "usage"}. Returns the decision (and execution ticket) of each tool call, and the turn''s new status. Definer rights: steps, events and the conversation''s counters are written only by the kernel; the tenant comes from the lease token or from the session''s binding, never from an argument.';

CREATE FUNCTION aos_agent.record_thinking(p_turn_id uuid, p_reasoning text, p_next_action text DEFAULT NULL, p_lease_token uuid DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    PERFORM aos_core._check_text(p_reasoning, 'reasoning');
    IF p_next_action IS NOT NULL THEN
        PERFORM aos_core._check_text(p_next_action, 'next action', 4000, true);
    END IF;
    RETURN (aos_agent._respond(p_turn_id, p_lease_token, p_reasoning, p_next_action, NULL, '[]', false, NULL, NULL, NULL, false)
              -> 'step_ids' ->> 0)::uuid;
END
$$;
COMMENT ON FUNCTION aos_agent.record_thinking(uuid, text, text, uuid) IS 'Records a thinking step (the model''s reasoning) of a turn; returns the step id. Definer rights: steps, events and the conversation''s counters are written only by the kernel; the tenant comes from the lease token or from the session''s binding, never from an argument.';

CREATE FUNCTION aos_agent.process_tool_call(p_turn_id uuid, p_tool_name text, p_tool_input jsonb,
                                            p_lease_token uuid DEFAULT NULL, p_call_id text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_result jsonb;
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    PERFORM aos_core._check_text(p_tool_name, 'tool name', 64);
    PERFORM aos_core._check_json(p_tool_input, 'tool input');
    v_result := aos_agent._respond(p_turn_id, p_lease_token, NULL, NULL, NULL,
        jsonb_build_array(jsonb_strip_nulls(jsonb_build_object('id', p_call_id, 'name', p_tool_name, 'arguments', p_tool_input))),
        false, NULL, NULL, NULL, false);
    RETURN (v_result -> 'tool_calls' -> 0) || jsonb_build_object('turn_status', v_result ->> 'status');
END
$$;
COMMENT ON FUNCTION aos_agent.process_tool_call(uuid, text, jsonb, uuid, text) IS
    'Records a tool call and decides it: status approved (run it; workers get a ticket), awaiting_approval (the turn waits for approve_step) or rejected (with the reason). Definer rights: steps, decisions, tickets and events are written only by the kernel; the tenant comes from the lease token or from the session''s binding, never from an argument.';

-- The same with the arguments as JSON text: what a client sends when it passes the model's
-- "arguments" string as a plain text parameter (Npgsql, JDBC, psycopg 3). A quoted literal in
-- psql ('{"query": "..."}') also lands here. Invoker rights: it only parses and delegates.
CREATE FUNCTION aos_agent.process_tool_call(p_turn_id uuid, p_tool_name text, p_tool_input text,
                                            p_lease_token uuid DEFAULT NULL, p_call_id text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_input jsonb;
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    PERFORM aos_core._check_text(p_tool_name, 'tool name', 64);
    PERFORM aos_core._check_text(p_tool_input, 'tool input', 1048576);  -- aos_core.max_content_bytes()
    BEGIN
        v_input := p_tool_input::jsonb;
    EXCEPTION WHEN invalid_text_representation THEN
        RAISE EXCEPTION 'the arguments of tool call % are not JSON', p_tool_name
            USING ERRCODE = '22P02', HINT = 'Pass the arguments the model returned, e.g. {"query": "asyncio"}.';
    END;
    RETURN aos_agent.process_tool_call(p_turn_id, p_tool_name, v_input, p_lease_token, p_call_id);
END
$$;
COMMENT ON FUNCTION aos_agent.process_tool_call(uuid, text, text, uuid, text) IS
    'process_tool_call with the arguments as JSON text (the model''s "arguments" string, passed as a text parameter).';

CREATE FUNCTION aos_agent.complete_turn(p_turn_id uuid, p_assistant_message text, p_tokens_used integer DEFAULT 0,
                                        p_cost_usd numeric DEFAULT NULL, p_lease_token uuid DEFAULT NULL,
                                        p_usage jsonb DEFAULT NULL, p_thinking text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_u record;
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    PERFORM aos_core._check_text(p_assistant_message, 'assistant message', aos_core.max_content_bytes(), true);
    IF p_thinking IS NOT NULL THEN
        PERFORM aos_core._check_text(p_thinking, 'thinking');
    END IF;
    v_u := aos_agent._usage(p_usage, p_tokens_used, p_cost_usd);
    PERFORM aos_agent._respond(p_turn_id, p_lease_token, p_thinking, NULL, p_assistant_message, '[]', true,
                               v_u.input_tokens, v_u.output_tokens, v_u.cost, v_u.estimated);
END
$$;
COMMENT ON FUNCTION aos_agent.complete_turn(uuid, text, integer, numeric, uuid, jsonb, text) IS
    'Completes a turn with the agent''s answer and its usage (tokens; cost computed from the model registry when not given). Definer rights: steps, events and the conversation''s counters are written only by the kernel; the tenant comes from the lease token or from the session''s binding, never from an argument.';

-- _issue_ticket: the ticket (a running tool_execution) for an approved tool call of the turn, when
-- an approval covers exactly this tool and these arguments (p_hash; NULL: the step's own); NULL
-- when none does.
CREATE FUNCTION aos_agent._issue_ticket(p_tenant_id uuid, p_turn_id uuid, p_step_id uuid, p_tool_name text, p_hash bytea,
                                        p_attempt integer, p_worker_id text, p_at timestamptz)
RETURNS uuid
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_step aos_agent.step%ROWTYPE;
    v_hash bytea;
    v_id   uuid;
BEGIN
    SELECT * INTO v_step FROM aos_agent.step
     WHERE tenant_id = p_tenant_id AND step_id = p_step_id AND turn_id = p_turn_id AND step_type = 'tool_call'
     FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    v_hash := coalesce(p_hash, v_step.args_hash);
    IF v_step.status <> 'approved' OR v_step.tool_name <> p_tool_name OR v_step.args_hash <> v_hash
       OR NOT EXISTS (SELECT 1 FROM aos_agent.approval a
                       WHERE a.tenant_id = p_tenant_id AND a.step_id = p_step_id AND a.decision = 'approved'
                         AND a.tool_name = p_tool_name AND a.args_hash = v_hash
                         AND NOT EXISTS (SELECT 1 FROM aos_agent.approval b WHERE b.tenant_id = a.tenant_id AND b.step_id = a.step_id
                                                                              AND b.kind = 'review' AND b.decision = 'rejected')) THEN
        RETURN NULL;
    END IF;
    INSERT INTO aos_agent.tool_execution (tenant_id, step_id, turn_id, attempt, worker_id, started_at)
    VALUES (p_tenant_id, p_step_id, p_turn_id, p_attempt, p_worker_id, p_at)
    RETURNING execution_id INTO v_id;
    UPDATE aos_agent.step SET status = 'executing' WHERE tenant_id = p_tenant_id AND step_id = p_step_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION aos_agent._issue_ticket(uuid, uuid, uuid, text, bytea, integer, text, timestamptz) IS
    'Internal: issues the ticket for an approved tool call when an approval covers exactly that tool and those arguments, else NULL.';

CREATE FUNCTION aos_agent.begin_tool_execution(p_turn_id uuid, p_lease_token uuid, p_step_id uuid, p_tool_name text, p_arguments jsonb)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_at   timestamptz := clock_timestamp();
    v_adv  record;
    v_hash bytea;
    v_id   uuid;
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    PERFORM aos_core._check_id(p_step_id, 'step id');
    PERFORM aos_core._check_text(p_tool_name, 'tool name', 64);
    PERFORM aos_core._check_json(p_arguments, 'arguments', 'object');
    v_hash := aos_core.json_sha256(p_arguments);
    v_adv := aos_agent._advance(p_turn_id, p_lease_token, 0, 'other', NULL, NULL, NULL, 'tool.started',
        jsonb_build_object('step_id', p_step_id, 'tool', p_tool_name, 'args_sha256', encode(v_hash, 'hex')), v_at);
    v_id := aos_agent._issue_ticket(v_adv.tenant_id, p_turn_id, p_step_id, p_tool_name, v_hash, v_adv.attempt,
        (SELECT lease_worker FROM aos_agent.conversation WHERE tenant_id = v_adv.tenant_id AND conversation_id = v_adv.conversation_id), v_at);
    IF v_id IS NULL THEN
        RAISE EXCEPTION 'no approval covers % on step % with these arguments', p_tool_name, p_step_id
            USING ERRCODE = 'AO005',
                  HINT = 'Run only tool calls the kernel approved, with exactly the approved tool and arguments (run_turn lists them under approved_tool_calls).';
    END IF;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION aos_agent.begin_tool_execution(uuid, uuid, uuid, text, jsonb) IS
    'Issues the ticket that lets a worker run an approved tool call: only for that step, that tool and exactly the approved arguments. Definer rights: tickets (tool_execution rows) are issued only by the kernel, and only for calls an approval covers; the tenant comes from the lease token or from the session''s binding.';

CREATE FUNCTION aos_agent.record_tool_result(p_turn_id uuid, p_tool_name text, p_output jsonb, p_success boolean DEFAULT true,
                                             p_error_message text DEFAULT NULL, p_lease_token uuid DEFAULT NULL,
                                             p_ticket uuid DEFAULT NULL, p_step_id uuid DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_at      timestamptz := clock_timestamp();
    v_id      uuid := gen_random_uuid();
    v_content jsonb;
    v_adv     record;
    v_call    aos_agent.step%ROWTYPE;
    v_tenant  uuid;
    v_step    uuid;
    v_call_id text;
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    PERFORM aos_core._check_text(p_tool_name, 'tool name', 64);
    IF p_output IS NOT NULL THEN
        PERFORM aos_core._check_json(p_output, 'tool output');
    END IF;
    IF p_error_message IS NOT NULL THEN
        PERFORM aos_core._check_text(p_error_message, 'error message', 65536, true);
    END IF;
    IF p_lease_token IS NOT NULL AND p_ticket IS NULL THEN
        RAISE EXCEPTION 'a worker must present the execution ticket of the tool call'
            USING ERRCODE = 'AO005', HINT = 'begin_tool_execution (or record_response) issues the ticket.';
    END IF;
    IF p_lease_token IS NULL THEN
        -- By hand: a result for a call that was not approved is refused before anything else.
        v_tenant := aos_auth._require_tenant();
        IF NOT EXISTS (SELECT 1 FROM aos_agent.step s
                        WHERE s.tenant_id = v_tenant AND s.turn_id = p_turn_id AND s.step_type = 'tool_call' AND s.tool_name = p_tool_name
                          AND s.status IN ('approved', 'executing') AND (p_step_id IS NULL OR s.step_id = p_step_id))
           AND EXISTS (SELECT 1 FROM aos_agent.step s
                        WHERE s.tenant_id = v_tenant AND s.turn_id = p_turn_id AND s.step_type = 'tool_call' AND s.tool_name = p_tool_name
                          AND s.status IN ('pending', 'needs_review', 'rejected') AND (p_step_id IS NULL OR s.step_id = p_step_id)) THEN
            RAISE EXCEPTION 'the % call of turn % is not approved', p_tool_name, p_turn_id
                USING ERRCODE = 'AO005', HINT = 'Run a tool call only after aos_agent.approve_step approved it; a rejected call has no result.';
        END IF;
    END IF;
    v_content := jsonb_build_object('tool', p_tool_name, 'output', p_output, 'success', coalesce(p_success, true))
                 || CASE WHEN p_error_message IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('error', p_error_message) END;
    v_adv := aos_agent._advance(p_turn_id, p_lease_token, 1, 'input', NULL, NULL, NULL, 'tool.result',
        jsonb_build_object('steps', jsonb_build_array(aos_agent._step_ref(v_id, 'tool_result', v_content)), 'ticket', p_ticket), v_at);

    IF p_ticket IS NOT NULL THEN
        -- A worker's result: the ticket ends and its call completes in one statement. The call is
        -- found by its key (a scalar subquery) rather than by a join, which the planner may turn
        -- into a scan of the tenant's steps.
        WITH x AS (
            UPDATE aos_agent.tool_execution e
               SET status = CASE WHEN coalesce(p_success, true) THEN 'succeeded' ELSE 'failed' END, finished_at = v_at
             WHERE e.tenant_id = v_adv.tenant_id AND e.execution_id = p_ticket AND e.turn_id = p_turn_id AND e.status = 'running'
            RETURNING e.step_id)
        UPDATE aos_agent.step s
           SET status = CASE WHEN coalesce(p_success, true) THEN 'completed' ELSE 'failed' END, completed_at = v_at,
               duration_ms = (extract(epoch FROM v_at - s.created_at) * 1000)::integer
         WHERE s.tenant_id = v_adv.tenant_id AND s.step_id = (SELECT x.step_id FROM x) AND s.tool_name = p_tool_name
        RETURNING s.step_id, s.call_id INTO v_step, v_call_id;
        IF v_step IS NULL THEN
            -- (the ticket may have been ended by the statement above: the exception undoes it)
            RAISE EXCEPTION 'ticket % is not a running execution of % in turn %', p_ticket, p_tool_name, p_turn_id
                USING ERRCODE = 'AO005', HINT = 'Present the ticket begin_tool_execution issued for this call; a ticket is good for one result.';
        END IF;
    ELSE
        SELECT * INTO v_call FROM aos_agent.step
         WHERE tenant_id = v_adv.tenant_id AND turn_id = p_turn_id AND step_type = 'tool_call' AND tool_name = p_tool_name
           AND status IN ('approved', 'executing') AND (p_step_id IS NULL OR step_id = p_step_id)
         ORDER BY step_number LIMIT 1;
        IF NOT FOUND THEN
            IF EXISTS (SELECT 1 FROM aos_agent.step WHERE tenant_id = v_adv.tenant_id AND turn_id = p_turn_id AND step_type = 'tool_call'
                          AND tool_name = p_tool_name AND status IN ('pending', 'needs_review')) THEN
                RAISE EXCEPTION 'the % call of turn % is not approved', p_tool_name, p_turn_id
                    USING ERRCODE = 'AO005', HINT = 'It waits for aos_agent.approve_step; run it only after approval.';
            END IF;
            RAISE EXCEPTION 'turn % has no approved % call without a result', p_turn_id, p_tool_name
                USING ERRCODE = 'AO003', HINT = 'Record the call first with aos_agent.process_tool_call.';
        END IF;
        v_step := v_call.step_id;
        v_call_id := v_call.call_id;
        UPDATE aos_agent.tool_execution SET status = CASE WHEN coalesce(p_success, true) THEN 'succeeded' ELSE 'failed' END, finished_at = v_at
         WHERE tenant_id = v_adv.tenant_id AND step_id = v_step AND status = 'running';
        UPDATE aos_agent.step SET status = CASE WHEN coalesce(p_success, true) THEN 'completed' ELSE 'failed' END, completed_at = v_at,
                                  duration_ms = (extract(epoch FROM v_at - created_at) * 1000)::integer
         WHERE tenant_id = v_adv.tenant_id AND step_id = v_step;
    END IF;
    PERFORM aos_agent._insert_step(v_adv.tenant_id, v_id, p_turn_id, v_adv.conversation_id, v_adv.first_step, 'tool_result', 'completed',
        v_adv.iteration, v_adv.attempt, v_content, v_at, p_tool_name, v_call_id, NULL, v_step);
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION aos_agent.record_tool_result(uuid, text, jsonb, boolean, text, uuid, uuid, uuid) IS
    'Records the result of an approved tool call (workers present the execution ticket); returns the tool_result step id. Definer rights: steps, tickets and events are written only by the kernel; the tenant comes from the lease token or from the session''s binding, never from an argument.';

-- ---------------------------------------------------------------------------------------------
-- The turn queue: claim, run_turn, heartbeat, release, fail, cancel
-- ---------------------------------------------------------------------------------------------
-- _start_run: the conversation's active turn starts an attempt (a worker's lease or by hand).
CREATE FUNCTION aos_agent._begin_attempt(p_turn aos_agent.turn, p_agent aos_agent.agent, p_driver text, p_worker_id text,
                                         p_lease interval, p_at timestamptz,
                                         OUT token uuid, OUT turn aos_agent.turn, OUT conv aos_agent.conversation)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_tenant  uuid := p_turn.tenant_id;
    v_model   uuid := p_agent.model_id;
    v_left_ms bigint := coalesce((p_turn.budget ->> 'max_seconds')::bigint, 600) * 1000 - p_turn.active_ms;
    v_actor   text := aos_core._actor();
    v_payload jsonb := jsonb_strip_nulls(jsonb_build_object('attempt', p_turn.attempt + 1, 'driver', p_driver, 'worker', p_worker_id));
BEGIN
    token := CASE WHEN p_driver = 'worker' THEN gen_random_uuid() END;
    -- (step by step: as one coalesce with a subquery it was planned anew on every claim)
    IF v_model IS NULL AND p_agent.persona_id IS NOT NULL THEN
        SELECT model_id INTO v_model FROM aos_persona.persona WHERE tenant_id = v_tenant AND persona_id = p_agent.persona_id;
    END IF;
    IF v_model IS NULL THEN
        v_model := aos_agent.default_model_id(v_tenant);
    END IF;
    -- one UPDATE of the conversation: the lease, and the link of the turn.started event in its chain
    UPDATE aos_agent.conversation c
       SET run_state = CASE WHEN p_driver = 'worker' THEN 'leased' ELSE 'manual' END,
           lease_token = token,
           lease_expires_at = CASE WHEN p_driver = 'worker' THEN p_at + p_lease
                                   WHEN c.dispatch = 'manual' THEN NULL ELSE p_at + aos_agent.manual_lease() END,
           lease_worker = p_worker_id,
           cur_attempt = p_turn.attempt + 1,
           cur_model_id = v_model,
           cur_run_started = p_at,
           cur_deadline = p_at + make_interval(secs => greatest(v_left_ms, 0) / 1000.0),
           event_seq = c.event_seq + 1,
           event_head = aos_core.event_hash(c.event_head, c.tenant_id, c.conversation_id, c.event_seq + 1, 'turn.started',
                                             p_turn.turn_id, p_turn.turn_id, v_actor, v_payload, p_at),
           last_activity_at = p_at
     WHERE c.tenant_id = v_tenant AND c.conversation_id = p_turn.conversation_id
    RETURNING c.* INTO conv;
    -- the turn, its run and its event in one statement
    WITH t AS (
        UPDATE aos_agent.turn x
           SET status = 'running', driver = p_driver, attempt = x.attempt + 1, started_at = coalesce(x.started_at, p_at),
               model_id = v_model
         WHERE x.tenant_id = v_tenant AND x.turn_id = p_turn.turn_id
        RETURNING x.*
    ), r AS (
        INSERT INTO aos_core.run (tenant_id, turn_id, conversation_id, attempt, driver, worker_id, lease_token, status, started_at)
        VALUES (v_tenant, p_turn.turn_id, p_turn.conversation_id, p_turn.attempt + 1, p_driver, p_worker_id, token, 'running', p_at)
    ), e AS (
        INSERT INTO aos_core.event_log (tenant_id, chain_id, seq, event_type, entity_id, turn_id, actor, payload, created_at, hash)
        VALUES (v_tenant, p_turn.conversation_id, conv.event_seq, 'turn.started', p_turn.turn_id, p_turn.turn_id, v_actor, v_payload,
                p_at, conv.event_head)
    )
    SELECT t.* INTO turn FROM t;
END
$$;
COMMENT ON FUNCTION aos_agent._begin_attempt(aos_agent.turn, aos_agent.agent, text, text, interval, timestamptz) IS
    'Internal: the active turn (read FOR UPDATE by the caller, with its agent) starts an attempt; returns the lease token and the turn and conversation as they are now.';

CREATE FUNCTION aos_agent._start_run(p_tenant_id uuid, p_turn_id uuid, p_driver text, p_worker_id text, p_lease interval, p_at timestamptz)
RETURNS uuid
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_turn  aos_agent.turn%ROWTYPE;
    v_agent aos_agent.agent%ROWTYPE;
BEGIN
    SELECT * INTO v_turn FROM aos_agent.turn WHERE tenant_id = p_tenant_id AND turn_id = p_turn_id FOR UPDATE;
    SELECT * INTO v_agent FROM aos_agent.agent WHERE tenant_id = p_tenant_id AND agent_id = v_turn.agent_id;
    RETURN (aos_agent._begin_attempt(v_turn, v_agent, p_driver, p_worker_id, p_lease, p_at)).token;
END
$$;
COMMENT ON FUNCTION aos_agent._start_run(uuid, uuid, text, text, interval, timestamptz) IS 'Internal: the active turn starts an attempt.';

-- _lost_attempt: the lease of the active turn expired (its worker died or hung). The attempt is
-- recorded as lost, its thinking marked abandoned, and tool executions it may have started are
-- re-run only when the tool is idempotent; otherwise they wait for a person (needs_review).
-- Returns true when the turn can be claimed again.
CREATE FUNCTION aos_agent._lost_attempt(p_tenant_id uuid, p_turn_id uuid, p_at timestamptz)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_conv   aos_agent.conversation%ROWTYPE;
    v_turn   aos_agent.turn%ROWTYPE;
    v_exec   record;
    v_review boolean := false;
    v_msg    text;
BEGIN
    SELECT * INTO v_turn FROM aos_agent.turn WHERE tenant_id = p_tenant_id AND turn_id = p_turn_id FOR UPDATE;
    SELECT * INTO v_conv FROM aos_agent.conversation WHERE tenant_id = p_tenant_id AND conversation_id = v_turn.conversation_id;
    v_msg := format('attempt %s lost: %s lease expired at %s', v_turn.attempt,
                    CASE WHEN v_conv.run_state = 'manual' THEN 'the manual' ELSE coalesce('worker ' || v_conv.lease_worker || '''s', 'the') END,
                    v_conv.lease_expires_at);
    UPDATE aos_core.run SET status = 'lost', ended_at = p_at, error = jsonb_build_object('error', v_msg)
     WHERE tenant_id = p_tenant_id AND turn_id = p_turn_id AND status = 'running';
    UPDATE aos_agent.step SET status = 'abandoned'
     WHERE tenant_id = p_tenant_id AND turn_id = p_turn_id AND attempt = v_turn.attempt AND step_type = 'think' AND status = 'completed';
    FOR v_exec IN
        SELECT e.execution_id, s.step_id, s.tool_name FROM aos_agent.tool_execution e
          JOIN aos_agent.step s ON s.tenant_id = e.tenant_id AND s.step_id = e.step_id
         WHERE e.tenant_id = p_tenant_id AND e.turn_id = p_turn_id AND e.status = 'running'
    LOOP
        UPDATE aos_agent.tool_execution SET status = 'abandoned', finished_at = p_at
         WHERE tenant_id = p_tenant_id AND execution_id = v_exec.execution_id;
        IF coalesce((aos_agent._skill(p_tenant_id, v_exec.tool_name)).idempotent, false) THEN
            UPDATE aos_agent.step SET status = 'approved' WHERE tenant_id = p_tenant_id AND step_id = v_exec.step_id;
        ELSE
            UPDATE aos_agent.step SET status = 'needs_review' WHERE tenant_id = p_tenant_id AND step_id = v_exec.step_id;
            v_review := true;
        END IF;
    END LOOP;
    UPDATE aos_agent.turn t
       SET failures = t.failures + 1,
           errors = t.errors || jsonb_build_object('attempt', t.attempt, 'error', v_msg, 'at', p_at),
           active_ms = t.active_ms + CASE WHEN v_conv.cur_run_started IS NULL THEN 0
                                          ELSE (extract(epoch FROM least(v_conv.lease_expires_at, p_at) - v_conv.cur_run_started) * 1000)::bigint END,
           status = 'queued'
     WHERE tenant_id = p_tenant_id AND turn_id = p_turn_id;
    UPDATE aos_agent.conversation
       SET run_state = 'ready', lease_token = NULL, lease_expires_at = NULL, lease_worker = NULL, cur_run_started = NULL,
           cur_deadline = NULL, cur_phase = 'input'
     WHERE tenant_id = p_tenant_id AND conversation_id = v_turn.conversation_id;
    PERFORM aos_core._conversation_event(p_tenant_id, v_turn.conversation_id, 'turn.attempt_lost', p_turn_id, p_turn_id,
        jsonb_build_object('attempt', v_turn.attempt, 'needs_review', v_review));
    IF v_review AND v_turn.failures + 1 < v_turn.max_attempts THEN
        PERFORM aos_agent._park(p_tenant_id, p_turn_id, 'waiting_human', 'lost', p_at);
        RETURN false;
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION aos_agent._lost_attempt(uuid, uuid, timestamptz) IS 'Internal: records a lost attempt (expired lease) and decides what the next one may do.';

-- claim_turn: SECURITY DEFINER because the queue spans tenants (kernel scope); only workers and
-- administrators may call it. Reclaims expired leases first, counts attempts at claim time, ends
-- turns that used up their attempts (dead) or their time, and returns the turn's context.
CREATE FUNCTION aos_agent.claim_turn(p_worker_id text, p_lease_seconds integer DEFAULT 30, p_tenant_id uuid DEFAULT NULL,
                                     p_start_approved boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = 'all'
AS $$
DECLARE
    v_at     timestamptz;
    v_c      record;
    v_turn   aos_agent.turn%ROWTYPE;
    v_agent  aos_agent.agent%ROWTYPE;
    v_run    record;
    v_ctx    jsonb;
    v_call   jsonb;
    v_ticket uuid;
    v_reclaim boolean;
    i        integer;
BEGIN
    IF NOT (pg_has_role(session_user, 'aos_worker', 'MEMBER') OR aos_auth.is_platform_admin()) THEN
        RAISE EXCEPTION 'only workers claim turns' USING ERRCODE = 'AO011', HINT = 'Connect with a login that is a member of aos_worker.';
    END IF;
    PERFORM aos_core._check_text(p_worker_id, 'worker id', 200);
    IF p_lease_seconds IS NULL OR p_lease_seconds NOT BETWEEN 1 AND 3600 THEN
        RAISE EXCEPTION 'lease must be between 1 and 3600 seconds, got %', p_lease_seconds
            USING ERRCODE = '22023', HINT = 'A lease of 30 seconds, renewed by heartbeat every 10, suits most workers.';
    END IF;
    FOR i IN 1 .. 50 LOOP
        v_at := clock_timestamp();
        -- One query per case rather than "p_tenant_id IS NULL OR c.tenant_id = p_tenant_id":
        -- PostgreSQL planned that one anew on every claim (a plan for the given value always looked
        -- cheaper than the generic one), a third of the claim's time.
        IF p_tenant_id IS NULL THEN
            SELECT c.tenant_id, c.conversation_id, c.active_turn_id INTO v_c
              FROM aos_agent.conversation c
             WHERE c.run_state IN ('leased', 'manual') AND c.lease_expires_at < v_at
             ORDER BY c.lease_expires_at
             LIMIT 1
               FOR UPDATE SKIP LOCKED;
        ELSE
            SELECT c.tenant_id, c.conversation_id, c.active_turn_id INTO v_c
              FROM aos_agent.conversation c
             WHERE c.run_state IN ('leased', 'manual') AND c.lease_expires_at < v_at AND c.tenant_id = p_tenant_id
             ORDER BY c.lease_expires_at
             LIMIT 1
               FOR UPDATE SKIP LOCKED;
        END IF;
        v_reclaim := FOUND;
        IF NOT v_reclaim THEN
            IF p_tenant_id IS NULL THEN
                SELECT c.tenant_id, c.conversation_id, c.active_turn_id INTO v_c
                  FROM aos_agent.conversation c
                 WHERE c.run_state = 'ready'
                 ORDER BY c.ready_at
                 LIMIT 1
                   FOR UPDATE SKIP LOCKED;
            ELSE
                SELECT c.tenant_id, c.conversation_id, c.active_turn_id INTO v_c
                  FROM aos_agent.conversation c
                 WHERE c.run_state = 'ready' AND c.tenant_id = p_tenant_id
                 ORDER BY c.ready_at
                 LIMIT 1
                   FOR UPDATE SKIP LOCKED;
            END IF;
            IF NOT FOUND THEN
                RETURN NULL;
            END IF;
        END IF;
        -- the claim happens now, with the conversation locked (not when the search began)
        v_at := clock_timestamp();
        PERFORM aos_auth._act_as(v_c.tenant_id);
        IF v_reclaim AND NOT aos_agent._lost_attempt(v_c.tenant_id, v_c.active_turn_id, v_at) THEN
            CONTINUE;
        END IF;
        SELECT * INTO v_turn FROM aos_agent.turn WHERE tenant_id = v_c.tenant_id AND turn_id = v_c.active_turn_id FOR UPDATE;
        IF v_turn.failures >= v_turn.max_attempts THEN
            PERFORM aos_agent._finish_turn(v_c.tenant_id, v_turn.turn_id, 'dead', NULL,
                format('gave up after %s failed attempts', v_turn.failures), v_at);
            CONTINUE;
        END IF;
        IF v_turn.active_ms >= coalesce((v_turn.budget ->> 'max_seconds')::bigint, 600) * 1000 THEN
            PERFORM aos_agent._finish_turn(v_c.tenant_id, v_turn.turn_id, 'failed', NULL,
                format('budget: ran %s of its %s seconds', v_turn.active_ms / 1000, v_turn.budget ->> 'max_seconds'), v_at);
            CONTINUE;
        END IF;
        SELECT * INTO v_agent FROM aos_agent.agent WHERE tenant_id = v_c.tenant_id AND agent_id = v_turn.agent_id;
        -- the rows read here and written by the attempt make the context: nothing is read twice
        v_run := aos_agent._begin_attempt(v_turn, v_agent, 'worker', p_worker_id, make_interval(secs => p_lease_seconds), v_at);
        v_ctx := jsonb_build_object('lease_token', v_run.token, 'lease_expires_at', (v_run.conv).lease_expires_at, 'reclaimed', v_reclaim)
                 || aos_agent._context(v_run.turn, v_run.conv, v_agent);
        -- p_start_approved: the first approved call (after an approval) starts in the claim's
        -- transaction, so the worker gets its ticket with the turn and runs the tool without another
        -- round trip. The others start one by one as the worker reaches them (begin_tool_execution),
        -- so that a worker lost in between leaves only the call it was running to review.
        v_call := CASE WHEN p_start_approved THEN v_ctx -> 'approved_tool_calls' -> 0 END;
        IF v_call IS NOT NULL THEN
            v_ticket := aos_agent._issue_ticket(v_c.tenant_id, v_turn.turn_id, (v_call ->> 'step_id')::uuid, v_call ->> 'name', NULL,
                (v_run.turn).attempt, p_worker_id, v_at);
            IF v_ticket IS NOT NULL THEN
                -- The worker runs the tool as soon as it has the ticket, so this claim must be durable
                -- before it does: a claim lost in a crash would give the call back to be run again.
                -- (The SDK commits claims without waiting for the WAL flush; this overrides that.)
                PERFORM set_config('synchronous_commit', 'on', true);
                PERFORM aos_agent._advance(v_turn.turn_id, v_run.token, 0, 'other', NULL, NULL, NULL, 'tool.started',
                    jsonb_build_object('step_id', v_call ->> 'step_id', 'tool', v_call ->> 'name',
                                       'args_sha256', encode(aos_core.json_sha256(v_call -> 'arguments'), 'hex')), v_at);
                v_ctx := jsonb_set(v_ctx, '{approved_tool_calls,0,ticket}', to_jsonb(v_ticket));
            END IF;
        END IF;
        RETURN v_ctx;
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION aos_agent.claim_turn(text, integer, uuid, boolean) IS
    'A worker takes the next runnable turn (FOR UPDATE SKIP LOCKED; expired leases first), with a lease token and expiry on the database clock. Returns the turn''s context, or NULL; with p_start_approved, the first approved tool call comes started, with its ticket (approved_tool_calls[0].ticket). Definer rights: the queue spans tenants (kernel scope); it checks that the caller is a worker or a platform administrator, and hands out one turn with its lease.';

-- run_turn: the spec's entry point for driving a turn. With a lease token it only returns the
-- context (for the worker holding it). Without one the caller drives the turn by hand: it takes
-- the turn (a manual lease) if it is the conversation's runnable turn.
CREATE FUNCTION aos_agent.run_turn(p_turn_id uuid, p_lease_token uuid DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_at     timestamptz := clock_timestamp();
    v_tenant uuid;
    v_conv   aos_agent.conversation%ROWTYPE;
    v_turn   aos_agent.turn%ROWTYPE;
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    IF p_lease_token IS NOT NULL THEN
        v_tenant := (aos_agent._lease_target(p_turn_id, p_lease_token)).tenant_id;   -- (and acts for it)
        RETURN aos_agent._turn_context(v_tenant, p_turn_id);
    END IF;
    v_tenant := aos_auth._enter();
    SELECT * INTO v_turn FROM aos_agent.turn WHERE tenant_id = v_tenant AND turn_id = p_turn_id;
    IF NOT FOUND THEN
        PERFORM aos_core._not_found('turn', p_turn_id);
    END IF;
    SELECT * INTO v_conv FROM aos_agent.conversation WHERE tenant_id = v_tenant AND conversation_id = v_turn.conversation_id FOR UPDATE;
    IF v_conv.status = 'paused' AND v_turn.status NOT IN ('completed', 'failed', 'cancelled', 'dead') THEN
        RAISE EXCEPTION 'conversation % is paused', v_conv.conversation_id
            USING ERRCODE = 'AO008', HINT = 'Nothing runs until aos_agent.resume_conversation; aos_agent.get_turn_state reads the turn meanwhile.';
    END IF;
    IF v_turn.status IN ('completed', 'failed', 'cancelled', 'dead') OR v_conv.active_turn_id IS DISTINCT FROM p_turn_id
       OR v_conv.run_state = 'waiting' THEN
        IF v_turn.status = 'queued' THEN
            RAISE EXCEPTION 'turn % waits for an earlier turn of its conversation', p_turn_id
                USING ERRCODE = 'AO003', HINT = 'Turns of a conversation run one at a time, in order; finish the earlier one first.';
        END IF;
        RETURN aos_agent._turn_context(v_tenant, p_turn_id);  -- finished or waiting: for reading
    END IF;
    IF v_conv.run_state = 'leased' AND v_conv.lease_expires_at >= v_at THEN
        RAISE EXCEPTION 'turn % is being run by worker %', p_turn_id, v_conv.lease_worker
            USING ERRCODE = 'AO003', HINT = 'Workers run this agent''s turns; give the agent config {"dispatch": "manual"} to drive them by hand.';
    END IF;
    IF v_conv.status <> 'active' THEN
        RAISE EXCEPTION 'conversation % is %', v_conv.conversation_id, v_conv.status
            USING ERRCODE = 'AO008', HINT = 'Resume it with aos_agent.resume_conversation first.';
    END IF;
    IF v_conv.run_state = 'leased' THEN
        PERFORM aos_agent._lost_attempt(v_tenant, p_turn_id, v_at);
        SELECT * INTO v_conv FROM aos_agent.conversation WHERE tenant_id = v_tenant AND conversation_id = v_turn.conversation_id;
    END IF;
    IF v_conv.run_state = 'ready' THEN
        PERFORM aos_agent._start_run(v_tenant, p_turn_id, 'manual', NULL, NULL, v_at);
    ELSIF v_conv.run_state = 'manual' THEN
        UPDATE aos_agent.conversation
           SET lease_expires_at = CASE WHEN dispatch = 'manual' THEN NULL ELSE v_at + aos_agent.manual_lease() END,
               cur_run_started = coalesce(cur_run_started, v_at)
         WHERE tenant_id = v_tenant AND conversation_id = v_conv.conversation_id;
        IF v_turn.status = 'queued' THEN
            PERFORM aos_agent._start_run(v_tenant, p_turn_id, 'manual', NULL, NULL, v_at);
        END IF;
    END IF;
    RETURN aos_agent._turn_context(v_tenant, p_turn_id);
END
$$;
COMMENT ON FUNCTION aos_agent.run_turn(uuid, uuid) IS
    'Everything an LLM call for the turn needs (system prompt, messages in chat format, tools as JSON-Schema functions, model and parameters, budget, approved tool calls). Without a lease token it takes the turn to drive it by hand. Definer rights: it takes the turn (lease, run, event) and reads its context; the tenant comes from the lease token or from the session''s binding, never from an argument.';

-- refresh_turn: what changed in a held turn since the claim, for a worker about to call the model
-- again (after a tool result): the context of run_turn without the earlier turns' messages, which
-- the worker has from its claim. A claim's history is the longest part of a context (twenty turns
-- by default), and run_turn rebuilt and sent it again after every tool.
CREATE FUNCTION aos_agent.refresh_turn(p_turn_id uuid, p_lease_token uuid)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid;
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    PERFORM aos_core._check_id(p_lease_token, 'lease token');
    v_tenant := (aos_agent._lease_target(p_turn_id, p_lease_token)).tenant_id;   -- (and acts for it)
    RETURN aos_agent._turn_context(v_tenant, p_turn_id, false);
END
$$;
COMMENT ON FUNCTION aos_agent.refresh_turn(uuid, uuid) IS
    'For the worker holding the turn: its context as run_turn returns it, but with this turn''s messages only (history_included false); the earlier turns'' messages are the first history_messages of the claim''s context. Definer rights: the tenant comes from the lease token.';

CREATE FUNCTION aos_agent.heartbeat(p_turn_id uuid, p_lease_token uuid, p_lease_seconds integer DEFAULT 30)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = 'all'
AS $$
DECLARE
    v_expiry timestamptz;
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    PERFORM aos_core._check_id(p_lease_token, 'lease token');
    IF p_lease_seconds IS NULL OR p_lease_seconds NOT BETWEEN 1 AND 3600 THEN
        RAISE EXCEPTION 'lease must be between 1 and 3600 seconds, got %', p_lease_seconds
            USING ERRCODE = '22023', HINT = 'Renew with the lease length you claimed with.';
    END IF;
    UPDATE aos_agent.conversation
       SET lease_expires_at = greatest(lease_expires_at, clock_timestamp() + make_interval(secs => p_lease_seconds))
     WHERE lease_token = p_lease_token AND active_turn_id = p_turn_id AND run_state = 'leased' AND status = 'active'
    RETURNING lease_expires_at INTO v_expiry;
    IF v_expiry IS NULL THEN
        PERFORM aos_agent._diagnose(p_turn_id, p_lease_token, clock_timestamp());
    END IF;
    RETURN v_expiry;
END
$$;
COMMENT ON FUNCTION aos_agent.heartbeat(uuid, uuid, integer) IS
    'Extends a worker''s lease on a turn (database clock); refused with AO004 once the lease is lost, AO008 when the conversation was paused. Definer rights: leases are kernel state that clients cannot write; only the holder of the lease token can extend it.';

CREATE FUNCTION aos_agent.release_turn(p_turn_id uuid, p_lease_token uuid, p_reason text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_at  timestamptz := clock_timestamp();
    v_adv record;
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    PERFORM aos_core._check_id(p_lease_token, 'lease token');
    v_adv := aos_agent._advance(p_turn_id, p_lease_token, 0, 'other', NULL, NULL, NULL, 'turn.released',
        jsonb_strip_nulls(jsonb_build_object('reason', left(p_reason, 4000))), v_at);
    IF EXISTS (SELECT 1 FROM aos_agent.tool_execution WHERE tenant_id = v_adv.tenant_id AND turn_id = p_turn_id AND status = 'running') THEN
        RAISE EXCEPTION 'turn % has a tool execution running', p_turn_id
            USING ERRCODE = 'AO003', HINT = 'Record its result first; a released turn must not leave a tool half-run.';
    END IF;
    PERFORM aos_agent._park(v_adv.tenant_id, p_turn_id, 'queued', 'released', v_at);
    UPDATE aos_agent.conversation SET run_state = 'ready', ready_at = v_at, cur_phase = 'input'
     WHERE tenant_id = v_adv.tenant_id AND conversation_id = v_adv.conversation_id AND status = 'active';
    PERFORM pg_notify('aos_turn_ready', p_turn_id::text);
END
$$;
COMMENT ON FUNCTION aos_agent.release_turn(uuid, uuid, text) IS
    'A worker hands a turn back cleanly (for example when shutting down): it becomes claimable at once and no failure is counted. Definer rights: leases, runs and events are kernel state that clients cannot write; only the holder of the lease token can release it.';

CREATE FUNCTION aos_agent.fail_turn(p_turn_id uuid, p_error_message text, p_lease_token uuid DEFAULT NULL,
                                    p_details jsonb DEFAULT NULL, p_retry boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_at      timestamptz := clock_timestamp();
    v_id      uuid := gen_random_uuid();
    v_content jsonb;
    v_adv     record;
    v_turn    aos_agent.turn%ROWTYPE;
    v_state   text;
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    PERFORM aos_core._check_text(p_error_message, 'error message', 65536);
    IF p_details IS NOT NULL THEN
        PERFORM aos_core._check_json(p_details, 'details', 'object', 262144);
    END IF;
    v_content := jsonb_build_object('message', p_error_message) || CASE WHEN p_details IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('details', p_details) END;
    v_adv := aos_agent._advance(p_turn_id, p_lease_token, 1, 'end', NULL, NULL, NULL, 'turn.error',
        jsonb_build_object('steps', jsonb_build_array(aos_agent._step_ref(v_id, 'error', v_content))), v_at);
    PERFORM aos_agent._insert_step(v_adv.tenant_id, v_id, p_turn_id, v_adv.conversation_id, v_adv.first_step, 'error', 'completed',
        v_adv.iteration, v_adv.attempt, v_content, v_at);
    SELECT * INTO v_turn FROM aos_agent.turn WHERE tenant_id = v_adv.tenant_id AND turn_id = p_turn_id;
    IF coalesce(p_retry, false) AND v_turn.failures + 1 < v_turn.max_attempts
       AND NOT EXISTS (SELECT 1 FROM aos_agent.tool_execution WHERE tenant_id = v_adv.tenant_id AND turn_id = p_turn_id AND status = 'running') THEN
        UPDATE aos_agent.turn SET failures = failures + 1,
               errors = errors || jsonb_build_object('attempt', attempt, 'error', p_error_message, 'at', v_at)
         WHERE tenant_id = v_adv.tenant_id AND turn_id = p_turn_id;
        PERFORM aos_agent._park(v_adv.tenant_id, p_turn_id, 'queued', 'failed', v_at);
        -- queued again: for workers, or (a conversation driven by hand) for the next run_turn
        UPDATE aos_agent.conversation SET run_state = CASE WHEN dispatch = 'manual' THEN 'manual' ELSE 'ready' END,
               ready_at = v_at, cur_phase = 'input'
         WHERE tenant_id = v_adv.tenant_id AND conversation_id = v_adv.conversation_id AND status = 'active'
        RETURNING run_state INTO v_state;
        IF v_state = 'ready' THEN
            PERFORM pg_notify('aos_turn_ready', p_turn_id::text);
        END IF;
        RETURN 'retry';
    END IF;
    PERFORM aos_agent._finish_turn(v_adv.tenant_id, p_turn_id, 'failed', NULL, p_error_message, v_at);
    RETURN 'failed';
END
$$;
COMMENT ON FUNCTION aos_agent.fail_turn(uuid, text, uuid, jsonb, boolean) IS
    'Records an error and fails the turn; with p_retry and attempts left, the turn is queued again instead (returns retry or failed). Definer rights: steps, events and the conversation''s counters are written only by the kernel; the tenant comes from the lease token or from the session''s binding, never from an argument.';
