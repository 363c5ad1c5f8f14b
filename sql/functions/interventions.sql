-- pgAgentOS kernel — people in the loop: approvals, injected messages, overrides, pause and
-- resume, cancellation, ratings, flags, notes; reading a turn or a conversation; agent memory.
-- All public functions are SECURITY DEFINER because they write steps, events and the
-- conversation's dispatch state, which clients may not write directly; each acts only for the
-- session's bound tenant and checks who decides.

-- _approver: the principal a decision is made by. p_admin_id must be a principal of the bound
-- tenant holding one of p_roles; a session bound to a principal may decide only in its own name.
-- A platform administrator may decide without a principal (p_admin_id NULL).
CREATE FUNCTION aos_agent._approver(p_tenant_id uuid, p_admin_id uuid, p_roles text[])
RETURNS uuid
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_session uuid := aos_auth.current_principal();
    v_who     uuid := coalesce(p_admin_id, v_session);
BEGIN
    IF v_who IS NULL THEN
        IF aos_auth.is_platform_admin() THEN
            RETURN NULL;
        END IF;
        RAISE EXCEPTION 'no principal to decide as' USING ERRCODE = 'AO011',
            HINT = 'Pass p_admin_id (a principal with the admin or approver role), or authenticate as one.';
    END IF;
    IF v_session IS NOT NULL AND v_who <> v_session AND NOT aos_auth.is_platform_admin() THEN
        RAISE EXCEPTION 'principal % may not act in the name of principal %', v_session, v_who
            USING ERRCODE = 'AO011', HINT = 'Decide as yourself: omit p_admin_id or pass your own principal id.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM aos_auth.role_grant g JOIN aos_auth.principal p
                       ON p.tenant_id = g.tenant_id AND p.principal_id = g.principal_id AND p.is_active
                    WHERE g.tenant_id = p_tenant_id AND g.principal_id = v_who AND g.role_key = ANY (p_roles)
                      AND (g.expires_at IS NULL OR g.expires_at > now())) THEN
        RAISE EXCEPTION 'principal % is not an % of this tenant', v_who, array_to_string(p_roles, ' or ')
            USING ERRCODE = 'AO011', HINT = 'Grant the role with aos_auth.grant_role, or let such a principal decide.';
    END IF;
    RETURN v_who;
END
$$;
COMMENT ON FUNCTION aos_agent._approver(uuid, uuid, text[]) IS 'Internal: who makes a human decision, checked against the tenant''s role grants.';

-- _decide_step: one human decision on a tool call waiting for approval (or review).
CREATE FUNCTION aos_agent._decide_step(p_tenant_id uuid, p_step_id uuid, p_approved boolean, p_by uuid, p_note text, p_at timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_step    aos_agent.step%ROWTYPE;
    v_kind    text;
    v_adv     record;
    v_res_id  uuid := gen_random_uuid();
    v_content jsonb;
BEGIN
    SELECT * INTO v_step FROM aos_agent.step WHERE tenant_id = p_tenant_id AND step_id = p_step_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM aos_core._not_found('step', p_step_id);
    END IF;
    IF v_step.step_type <> 'tool_call' THEN
        RAISE EXCEPTION 'step % is a % step; only tool calls are approved', p_step_id, v_step.step_type
            USING ERRCODE = 'AO003', HINT = 'SELECT * FROM aos_agent.tool_call_queue lists the tool calls waiting for a decision.';
    END IF;
    IF v_step.status NOT IN ('pending', 'needs_review') THEN
        RAISE EXCEPTION 'tool call % was already decided (it is %)', p_step_id, v_step.status
            USING ERRCODE = 'AO009', HINT = 'One decision per tool call; SELECT * FROM aos_agent.approval WHERE step_id = ... shows it.';
    END IF;
    v_kind := CASE v_step.status WHEN 'needs_review' THEN 'review' ELSE 'approval' END;
    BEGIN
        INSERT INTO aos_agent.approval (tenant_id, step_id, kind, turn_id, tool_name, args_hash, decision, source, decided_by, decided_by_role, note, decided_at)
        VALUES (p_tenant_id, p_step_id, v_kind, v_step.turn_id, v_step.tool_name, v_step.args_hash,
                CASE WHEN p_approved THEN 'approved' ELSE 'rejected' END, 'human', p_by, session_user, p_note, p_at);
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'tool call % was already decided', p_step_id
            USING ERRCODE = 'AO009', HINT = 'Another approver decided it first.';
    END;
    IF p_approved THEN
        SELECT * INTO v_adv FROM aos_agent._admin_advance(p_tenant_id, v_step.turn_id, 0, 'other', 'step.approved',
            jsonb_build_object('step_id', p_step_id, 'kind', v_kind, 'by', p_by, 'tool', v_step.tool_name,
                               'args_sha256', encode(v_step.args_hash, 'hex')), p_at);
        UPDATE aos_agent.step SET status = 'approved' WHERE tenant_id = p_tenant_id AND step_id = p_step_id;
    ELSE
        v_content := jsonb_build_object('tool', v_step.tool_name, 'output', NULL, 'success', false,
                                        'error', 'tool call rejected' || coalesce(': ' || p_note, ''));
        SELECT * INTO v_adv FROM aos_agent._admin_advance(p_tenant_id, v_step.turn_id, 1, 'input', 'step.rejected',
            jsonb_build_object('step_id', p_step_id, 'kind', v_kind, 'by', p_by, 'tool', v_step.tool_name,
                               'args_sha256', encode(v_step.args_hash, 'hex'),
                               'steps', jsonb_build_array(aos_agent._step_ref(v_res_id, 'tool_result', v_content))), p_at);
        UPDATE aos_agent.step SET status = 'rejected', completed_at = p_at WHERE tenant_id = p_tenant_id AND step_id = p_step_id;
        PERFORM aos_agent._insert_step(p_tenant_id, v_res_id, v_step.turn_id, v_step.conversation_id, v_adv.first_step, 'tool_result',
            'completed', v_adv.iteration, v_adv.attempt, v_content, p_at, v_step.tool_name, v_step.call_id, NULL, p_step_id);
    END IF;
    PERFORM aos_agent._settle(p_tenant_id, v_step.turn_id, p_at);
END
$$;
COMMENT ON FUNCTION aos_agent._decide_step(uuid, uuid, boolean, uuid, text, timestamptz) IS 'Internal: records a human decision on a tool call and resumes its turn when nothing else waits.';

CREATE FUNCTION aos_agent.approve_step(p_step_id uuid, p_approved boolean, p_admin_id uuid DEFAULT NULL, p_note text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid := aos_auth._enter();
BEGIN
    PERFORM aos_core._check_id(p_step_id, 'step id');
    IF p_approved IS NULL THEN
        RAISE EXCEPTION 'p_approved must be true or false' USING ERRCODE = '22004', HINT = 'true approves the call, false rejects it.';
    END IF;
    IF p_note IS NOT NULL THEN
        PERFORM aos_core._check_text(p_note, 'note', 4000, true);
    END IF;
    PERFORM aos_agent._decide_step(v_tenant, p_step_id, p_approved,
        aos_agent._approver(v_tenant, p_admin_id, ARRAY['admin', 'approver']), p_note, clock_timestamp());
END
$$;
COMMENT ON FUNCTION aos_agent.approve_step(uuid, boolean, uuid, text) IS
    'Approves (true) or rejects (false) a tool call waiting for a decision. One decision per call; the approver needs the admin or approver role. Definer rights: decisions, steps and events are written only by the kernel; it checks the approver''s role in the session''s tenant.';

CREATE FUNCTION aos_agent.bulk_approve_tools(p_step_ids uuid[], p_admin_id uuid DEFAULT NULL, p_note text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid := aos_auth._enter();
    v_by     uuid;
    v_bad    uuid;
    v_id     uuid;
    v_at     timestamptz := clock_timestamp();
    v_count  integer := 0;
BEGIN
    IF p_step_ids IS NULL OR cardinality(p_step_ids) = 0 THEN
        RAISE EXCEPTION 'no step ids given' USING ERRCODE = '22023', HINT = 'Pass an array of tool-call step ids from aos_agent.tool_call_queue.';
    END IF;
    IF cardinality(p_step_ids) > 1000 THEN
        RAISE EXCEPTION 'at most 1000 steps at once, got %', cardinality(p_step_ids) USING ERRCODE = 'AO010', HINT = 'Approve in batches.';
    END IF;
    IF p_note IS NOT NULL THEN
        PERFORM aos_core._check_text(p_note, 'note', 4000, true);
    END IF;
    v_by := aos_agent._approver(v_tenant, p_admin_id, ARRAY['admin', 'approver']);
    -- All or nothing: every id must be a tool call of this tenant waiting for a decision.
    SELECT u.id INTO v_bad FROM unnest(p_step_ids) u(id)
     WHERE u.id IS NULL OR NOT EXISTS (SELECT 1 FROM aos_agent.step s WHERE s.tenant_id = v_tenant AND s.step_id = u.id
                                          AND s.step_type = 'tool_call' AND s.status IN ('pending', 'needs_review'))
     LIMIT 1;
    IF FOUND THEN
        IF v_bad IS NULL OR NOT EXISTS (SELECT 1 FROM aos_agent.step WHERE tenant_id = v_tenant AND step_id = v_bad) THEN
            PERFORM aos_core._not_found('step', v_bad);
        END IF;
        RAISE EXCEPTION 'step % is not a tool call waiting for a decision; nothing was approved', v_bad
            USING ERRCODE = 'AO009', HINT = 'Pass only ids from aos_agent.tool_call_queue.';
    END IF;
    FOR v_id IN SELECT DISTINCT u.id FROM unnest(p_step_ids) u(id) LOOP
        PERFORM aos_agent._decide_step(v_tenant, v_id, true, v_by, p_note, v_at);
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END
$$;
COMMENT ON FUNCTION aos_agent.bulk_approve_tools(uuid[], uuid, text) IS
    'Approves several waiting tool calls at once (all or nothing); returns how many. Definer rights: decisions, steps and events are written only by the kernel; it checks the approver''s role and that every step is in the session''s tenant.';

CREATE FUNCTION aos_agent.inject_message(p_conversation_id uuid, p_message text, p_admin_id uuid DEFAULT NULL,
                                         p_message_type text DEFAULT 'system')
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant  uuid := aos_auth._enter();
    v_at      timestamptz := clock_timestamp();
    v_id      uuid := gen_random_uuid();
    v_by      uuid;
    v_turn    uuid;
    v_content jsonb;
    v_adv     record;
BEGIN
    PERFORM aos_core._check_id(p_conversation_id, 'conversation id');
    PERFORM aos_core._check_text(p_message, 'message');
    IF p_message_type IS NULL OR p_message_type NOT IN ('system', 'user') THEN
        RAISE EXCEPTION 'message type must be system or user, not %', coalesce(p_message_type, 'NULL')
            USING ERRCODE = '22023', HINT = 'system: an instruction the model sees; user: words in the user''s voice.';
    END IF;
    v_by := aos_agent._approver(v_tenant, p_admin_id, ARRAY['admin', 'approver', 'operator']);
    SELECT coalesce(c.active_turn_id,
                    (SELECT t.turn_id FROM aos_agent.turn t WHERE t.tenant_id = c.tenant_id AND t.conversation_id = c.conversation_id
                      ORDER BY t.turn_number DESC LIMIT 1))
      INTO v_turn
      FROM aos_agent.conversation c WHERE c.tenant_id = v_tenant AND c.conversation_id = p_conversation_id;
    IF NOT FOUND THEN
        PERFORM aos_core._not_found('conversation', p_conversation_id);
    END IF;
    IF v_turn IS NULL THEN
        RAISE EXCEPTION 'conversation % has no turn to inject into yet', p_conversation_id
            USING ERRCODE = 'AO003', HINT = 'Send the first message (aos_agent.send_message), or put standing instructions in the persona.';
    END IF;
    v_content := jsonb_build_object('text', p_message, 'role', p_message_type, 'by', v_by);
    SELECT * INTO v_adv FROM aos_agent._admin_advance(v_tenant, v_turn, 1, 'input', 'message.injected',
        jsonb_build_object('steps', jsonb_build_array(aos_agent._step_ref(v_id, 'inject', v_content))), v_at);
    PERFORM aos_agent._insert_step(v_tenant, v_id, v_turn, p_conversation_id, v_adv.first_step, 'inject', 'completed',
        v_adv.iteration, v_adv.attempt, v_content, v_at);
    PERFORM aos_agent._refresh_messages(v_tenant, v_turn);
    INSERT INTO aos_agent.observation (tenant_id, observation_type, conversation_id, turn_id, step_id, observer_id, content)
    VALUES (v_tenant, 'intervention', p_conversation_id, v_turn, v_id, v_by, jsonb_build_object('action', 'inject', 'role', p_message_type));
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION aos_agent.inject_message(uuid, text, uuid, text) IS
    'Adds a message (system instruction or user words) to the conversation; the model sees it from its next call on. Returns the step id. Definer rights: it writes a step, an observation and an event, which clients cannot write; it checks the caller''s role in the session''s tenant.';

CREATE FUNCTION aos_agent.override_response(p_turn_id uuid, p_new_response text, p_admin_id uuid DEFAULT NULL, p_reason text DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant  uuid := aos_auth._enter();
    v_at      timestamptz := clock_timestamp();
    v_id      uuid := gen_random_uuid();
    v_by      uuid;
    v_turn    aos_agent.turn%ROWTYPE;
    v_content jsonb;
    v_adv     record;
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    PERFORM aos_core._check_text(p_new_response, 'new response');
    IF p_reason IS NOT NULL THEN
        PERFORM aos_core._check_text(p_reason, 'reason', 4000, true);
    END IF;
    v_by := aos_agent._approver(v_tenant, p_admin_id, ARRAY['admin', 'approver', 'operator']);
    SELECT * INTO v_turn FROM aos_agent.turn WHERE tenant_id = v_tenant AND turn_id = p_turn_id;
    IF NOT FOUND THEN
        PERFORM aos_core._not_found('turn', p_turn_id);
    END IF;
    IF v_turn.status <> 'completed' THEN
        RAISE EXCEPTION 'turn % is %; only a completed turn''s answer can be overridden', p_turn_id, v_turn.status
            USING ERRCODE = 'AO003', HINT = 'Wait for the turn to complete, or inject a message to steer it.';
    END IF;
    v_content := jsonb_build_object('text', p_new_response, 'reason', p_reason, 'by', v_by,
                                    'previous_sha256', encode(sha256(convert_to(coalesce(v_turn.assistant_message, ''), 'UTF8')), 'hex'));
    SELECT * INTO v_adv FROM aos_agent._admin_advance(v_tenant, p_turn_id, 1, 'other', 'answer.overridden',
        jsonb_build_object('steps', jsonb_build_array(aos_agent._step_ref(v_id, 'override', v_content))), v_at);
    PERFORM aos_agent._insert_step(v_tenant, v_id, p_turn_id, v_turn.conversation_id, v_adv.first_step, 'override', 'completed',
        v_adv.iteration, v_adv.attempt, v_content, v_at);
    PERFORM aos_agent._refresh_messages(v_tenant, p_turn_id);
    INSERT INTO aos_agent.observation (tenant_id, observation_type, conversation_id, turn_id, step_id, observer_id, content)
    VALUES (v_tenant, 'correction', v_turn.conversation_id, p_turn_id, v_id, v_by, jsonb_strip_nulls(jsonb_build_object('reason', p_reason)));
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION aos_agent.override_response(uuid, text, uuid, text) IS
    'Records a corrected answer for a completed turn (an override step): the original stays in the history; later model calls see the correction. Definer rights: it writes a step, an observation and an event, which clients cannot write; it checks the caller''s role in the session''s tenant.';

CREATE FUNCTION aos_agent.pause_conversation(p_conversation_id uuid, p_reason text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant  uuid := aos_auth._enter();
    v_at      timestamptz := clock_timestamp();
    v_conv    aos_agent.conversation%ROWTYPE;
    v_id      uuid := gen_random_uuid();
    v_content jsonb;
    v_adv     record;
BEGIN
    PERFORM aos_core._check_id(p_conversation_id, 'conversation id');
    IF p_reason IS NOT NULL THEN
        PERFORM aos_core._check_text(p_reason, 'reason', 4000, true);
    END IF;
    SELECT * INTO v_conv FROM aos_agent.conversation WHERE tenant_id = v_tenant AND conversation_id = p_conversation_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM aos_core._not_found('conversation', p_conversation_id);
    END IF;
    IF v_conv.status <> 'active' THEN
        RAISE EXCEPTION 'conversation % is % already', p_conversation_id, v_conv.status
            USING ERRCODE = 'AO003', HINT = CASE v_conv.status WHEN 'paused' THEN 'aos_agent.resume_conversation resumes it.' ELSE 'It is closed.' END;
    END IF;
    UPDATE aos_agent.conversation SET status = 'paused' WHERE tenant_id = v_tenant AND conversation_id = p_conversation_id;
    IF v_conv.active_turn_id IS NOT NULL THEN
        v_content := jsonb_strip_nulls(jsonb_build_object('reason', p_reason, 'by', aos_auth.current_principal()));
        SELECT * INTO v_adv FROM aos_agent._admin_advance(v_tenant, v_conv.active_turn_id, 1, 'other', 'conversation.paused',
            jsonb_build_object('steps', jsonb_build_array(aos_agent._step_ref(v_id, 'pause', v_content))), v_at);
        PERFORM aos_agent._insert_step(v_tenant, v_id, v_conv.active_turn_id, p_conversation_id, v_adv.first_step, 'pause', 'completed',
            v_adv.iteration, v_adv.attempt, v_content, v_at);
        IF v_conv.run_state IN ('leased', 'manual') THEN
            PERFORM aos_agent._park(v_tenant, v_conv.active_turn_id, 'waiting_human', 'paused', v_at);
        ELSIF v_conv.run_state = 'ready' THEN
            UPDATE aos_agent.conversation SET run_state = 'waiting' WHERE tenant_id = v_tenant AND conversation_id = p_conversation_id;
        END IF;
    ELSE
        PERFORM aos_core._conversation_event(v_tenant, p_conversation_id, 'conversation.paused', p_conversation_id, NULL,
            jsonb_strip_nulls(jsonb_build_object('reason', p_reason)));
    END IF;
END
$$;
COMMENT ON FUNCTION aos_agent.pause_conversation(uuid, text) IS
    'Pauses a conversation: no turn of it runs until it is resumed; a worker running its turn is stopped at its next write (AO008). Definer rights: it changes the conversation''s dispatch state and writes a step and an event, which clients cannot write; it acts only for the session''s tenant.';

CREATE FUNCTION aos_agent.resume_conversation(p_conversation_id uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid := aos_auth._enter();
    v_at     timestamptz := clock_timestamp();
    v_conv   aos_agent.conversation%ROWTYPE;
    v_id     uuid := gen_random_uuid();
    v_adv    record;
BEGIN
    PERFORM aos_core._check_id(p_conversation_id, 'conversation id');
    SELECT * INTO v_conv FROM aos_agent.conversation WHERE tenant_id = v_tenant AND conversation_id = p_conversation_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM aos_core._not_found('conversation', p_conversation_id);
    END IF;
    IF v_conv.status <> 'paused' THEN
        RAISE EXCEPTION 'conversation % is not paused (it is %)', p_conversation_id, v_conv.status
            USING ERRCODE = 'AO003', HINT = 'Only a paused conversation can be resumed.';
    END IF;
    UPDATE aos_agent.conversation SET status = 'active' WHERE tenant_id = v_tenant AND conversation_id = p_conversation_id;
    IF v_conv.active_turn_id IS NOT NULL THEN
        SELECT * INTO v_adv FROM aos_agent._admin_advance(v_tenant, v_conv.active_turn_id, 1, 'other', 'conversation.resumed',
            jsonb_build_object('steps', jsonb_build_array(aos_agent._step_ref(v_id, 'resume', '{}'))), v_at);
        PERFORM aos_agent._insert_step(v_tenant, v_id, v_conv.active_turn_id, p_conversation_id, v_adv.first_step, 'resume', 'completed',
            v_adv.iteration, v_adv.attempt, jsonb_strip_nulls(jsonb_build_object('by', aos_auth.current_principal())), v_at);
        PERFORM aos_agent._settle(v_tenant, v_conv.active_turn_id, v_at);
        -- a turn that had not started yet
        PERFORM aos_agent._resume(v_tenant, v_conv.active_turn_id, v_at)
          FROM aos_agent.turn t WHERE t.tenant_id = v_tenant AND t.turn_id = v_conv.active_turn_id AND t.status = 'queued';
    ELSE
        PERFORM aos_core._conversation_event(v_tenant, p_conversation_id, 'conversation.resumed', p_conversation_id, NULL, '{}');
    END IF;
END
$$;
COMMENT ON FUNCTION aos_agent.resume_conversation(uuid) IS 'Resumes a paused conversation: its turn is queued for a worker again (or goes back to its manual driver). Definer rights: it changes the conversation''s dispatch state and writes a step and an event, which clients cannot write; it acts only for the session''s tenant.';

CREATE FUNCTION aos_agent.cancel_turn(p_turn_id uuid, p_reason text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid := aos_auth._enter();
    v_status text;
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    IF p_reason IS NOT NULL THEN
        PERFORM aos_core._check_text(p_reason, 'reason', 4000, true);
    END IF;
    SELECT status INTO v_status FROM aos_agent.turn WHERE tenant_id = v_tenant AND turn_id = p_turn_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM aos_core._not_found('turn', p_turn_id);
    END IF;
    IF v_status IN ('completed', 'failed', 'cancelled', 'dead') THEN
        RAISE EXCEPTION 'turn % is % already', p_turn_id, v_status USING ERRCODE = 'AO003', HINT = 'A finished turn does not change.';
    END IF;
    PERFORM aos_agent._finish_turn(v_tenant, p_turn_id, 'cancelled', NULL, 'cancelled' || coalesce(': ' || p_reason, ''), clock_timestamp());
END
$$;
COMMENT ON FUNCTION aos_agent.cancel_turn(uuid, text) IS 'Cancels a turn that has not finished; a worker running it is stopped at its next write. Definer rights: it ends the turn (turn, steps, runs, tickets, events), which clients cannot write; it acts only for the session''s tenant.';

CREATE FUNCTION aos_agent.close_conversation(p_conversation_id uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid := aos_auth._enter();
    v_conv   aos_agent.conversation%ROWTYPE;
BEGIN
    PERFORM aos_core._check_id(p_conversation_id, 'conversation id');
    SELECT * INTO v_conv FROM aos_agent.conversation WHERE tenant_id = v_tenant AND conversation_id = p_conversation_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM aos_core._not_found('conversation', p_conversation_id);
    END IF;
    IF v_conv.status = 'closed' THEN
        RAISE EXCEPTION 'conversation % is closed already', p_conversation_id USING ERRCODE = 'AO003', HINT = 'Nothing to do.';
    END IF;
    IF v_conv.run_state <> 'idle' THEN
        RAISE EXCEPTION 'conversation % still has a turn in progress', p_conversation_id
            USING ERRCODE = 'AO003', HINT = 'Let it finish, or cancel it with aos_agent.cancel_turn.';
    END IF;
    UPDATE aos_agent.conversation SET status = 'closed' WHERE tenant_id = v_tenant AND conversation_id = p_conversation_id;
    PERFORM aos_core._conversation_event(v_tenant, p_conversation_id, 'conversation.closed', p_conversation_id, NULL, '{}');
END
$$;
COMMENT ON FUNCTION aos_agent.close_conversation(uuid) IS 'Closes an idle conversation: it takes no more messages. Definer rights: it changes the conversation and writes an event, which clients cannot write; it acts only for the session''s tenant.';

-- ---------------------------------------------------------------------------------------------
-- Observations: ratings, flags, notes
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION aos_agent._observe(p_tenant_id uuid, p_type text, p_observer uuid, p_content jsonb, p_score integer, p_severity text,
                                   p_conversation_id uuid, p_turn_id uuid, p_step_id uuid)
RETURNS uuid
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_conv uuid := p_conversation_id;
    v_turn uuid := p_turn_id;
    v_id   uuid := gen_random_uuid();
    v_x    record;
BEGIN
    IF p_step_id IS NULL AND p_turn_id IS NULL AND p_conversation_id IS NULL THEN
        RAISE EXCEPTION 'name what the % is about: a step, a turn or a conversation', p_type
            USING ERRCODE = '22023', HINT = 'Pass p_step_id, p_turn_id or p_conversation_id.';
    END IF;
    IF p_step_id IS NOT NULL THEN
        SELECT turn_id, conversation_id INTO v_x FROM aos_agent.step WHERE tenant_id = p_tenant_id AND step_id = p_step_id;
        IF NOT FOUND THEN PERFORM aos_core._not_found('step', p_step_id); END IF;
        IF (v_turn IS NOT NULL AND v_turn <> v_x.turn_id) OR (v_conv IS NOT NULL AND v_conv <> v_x.conversation_id) THEN
            RAISE EXCEPTION 'step % is not part of the turn or conversation given', p_step_id
                USING ERRCODE = '22023', HINT = 'Pass only the step id, or ids that belong together.';
        END IF;
        v_turn := v_x.turn_id; v_conv := v_x.conversation_id;
    END IF;
    IF v_turn IS NOT NULL THEN
        SELECT conversation_id INTO v_x FROM aos_agent.turn WHERE tenant_id = p_tenant_id AND turn_id = v_turn;
        IF NOT FOUND THEN PERFORM aos_core._not_found('turn', v_turn); END IF;
        IF v_conv IS NOT NULL AND v_conv <> v_x.conversation_id THEN
            RAISE EXCEPTION 'turn % is not part of conversation %', v_turn, v_conv
                USING ERRCODE = '22023', HINT = 'Pass only the turn id, or ids that belong together.';
        END IF;
        v_conv := v_x.conversation_id;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM aos_agent.conversation WHERE tenant_id = p_tenant_id AND conversation_id = v_conv) THEN
        PERFORM aos_core._not_found('conversation', v_conv);
    END IF;
    IF p_observer IS NOT NULL AND NOT EXISTS (SELECT 1 FROM aos_auth.principal WHERE tenant_id = p_tenant_id AND principal_id = p_observer) THEN
        RAISE EXCEPTION 'principal % is not a principal of this tenant', p_observer
            USING ERRCODE = 'AO011', HINT = 'Pass a principal of the bound tenant, or NULL.';
    END IF;
    -- A session bound to a principal observes in its own name (administrators may record for others).
    IF p_observer IS DISTINCT FROM aos_auth.current_principal() AND aos_auth.current_principal() IS NOT NULL
       AND NOT aos_auth._is_tenant_admin(p_tenant_id) THEN
        RAISE EXCEPTION 'principal % may not record an observation in the name of principal %', aos_auth.current_principal(), p_observer
            USING ERRCODE = 'AO011', HINT = 'Omit the observer (it defaults to you) or pass your own principal id.';
    END IF;
    INSERT INTO aos_agent.observation (tenant_id, observation_id, observation_type, conversation_id, turn_id, step_id, observer_id, score, severity, content)
    VALUES (p_tenant_id, v_id, p_type, v_conv, v_turn, p_step_id, p_observer, p_score, p_severity, coalesce(p_content, '{}'));
    PERFORM aos_core._conversation_event(p_tenant_id, v_conv, 'observation.' || p_type, v_id, v_turn,
        jsonb_strip_nulls(jsonb_build_object('step_id', p_step_id, 'score', p_score, 'severity', p_severity,
                                             'content_sha256', encode(aos_core.json_sha256(coalesce(p_content, '{}')), 'hex'))));
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION aos_agent._observe(uuid, text, uuid, jsonb, integer, text, uuid, uuid, uuid) IS 'Internal: records an observation about a step, turn or conversation.';

CREATE FUNCTION aos_agent.rate_turn(p_turn_id uuid, p_admin_id uuid DEFAULT NULL, p_score integer DEFAULT NULL, p_aspects jsonb DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid := aos_auth._enter();
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    IF p_score IS NULL OR p_score NOT BETWEEN 1 AND 5 THEN
        RAISE EXCEPTION 'score must be between 1 and 5, got %', coalesce(p_score::text, 'NULL')
            USING ERRCODE = '22023', HINT = '1 is poor, 5 is excellent.';
    END IF;
    IF p_aspects IS NOT NULL THEN
        PERFORM aos_core._check_json(p_aspects, 'aspects', 'object', 65536);
    END IF;
    RETURN aos_agent._observe(v_tenant, 'rating', coalesce(p_admin_id, aos_auth.current_principal()),
        coalesce(jsonb_build_object('aspects', p_aspects), '{}'), p_score, NULL, NULL, p_turn_id, NULL);
END
$$;
COMMENT ON FUNCTION aos_agent.rate_turn(uuid, uuid, integer, jsonb) IS 'Rates a turn from 1 to 5, optionally per aspect ({"accuracy": 4, ...}); returns the observation id. Definer rights: observations and their events are written only by the kernel; it acts only for the session''s tenant.';

CREATE FUNCTION aos_agent.flag_issue(p_admin_id uuid, p_severity text, p_reason text, p_step_id uuid DEFAULT NULL,
                                     p_turn_id uuid DEFAULT NULL, p_conversation_id uuid DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid := aos_auth._enter();
BEGIN
    IF p_severity IS NULL OR p_severity NOT IN ('low', 'medium', 'high', 'critical') THEN
        RAISE EXCEPTION 'severity must be low, medium, high or critical, not %', coalesce(p_severity, 'NULL')
            USING ERRCODE = '22023', HINT = 'Pass one of low, medium, high, critical.';
    END IF;
    PERFORM aos_core._check_text(p_reason, 'reason', 4000);
    RETURN aos_agent._observe(v_tenant, 'flag', coalesce(p_admin_id, aos_auth.current_principal()),
        jsonb_build_object('reason', p_reason), NULL, p_severity, p_conversation_id, p_turn_id, p_step_id);
END
$$;
COMMENT ON FUNCTION aos_agent.flag_issue(uuid, text, text, uuid, uuid, uuid) IS 'Flags a problem with a step, turn or conversation, with a severity; returns the observation id. Definer rights: observations and their events are written only by the kernel; it acts only for the session''s tenant.';

CREATE FUNCTION aos_agent.add_observation(p_observer_id uuid, p_observation_type text, p_content jsonb,
                                          p_conversation_id uuid DEFAULT NULL, p_turn_id uuid DEFAULT NULL, p_step_id uuid DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid := aos_auth._enter();
BEGIN
    IF p_observation_type IS NULL OR p_observation_type NOT IN ('note', 'correction', 'intervention') THEN
        RAISE EXCEPTION 'observation type must be note, correction or intervention, not %', coalesce(p_observation_type, 'NULL')
            USING ERRCODE = '22023', HINT = 'Ratings go through rate_turn, flags through flag_issue.';
    END IF;
    PERFORM aos_core._check_json(p_content, 'content', 'object', 262144);
    RETURN aos_agent._observe(v_tenant, p_observation_type, coalesce(p_observer_id, aos_auth.current_principal()), p_content,
                              NULL, NULL, p_conversation_id, p_turn_id, p_step_id);
END
$$;
COMMENT ON FUNCTION aos_agent.add_observation(uuid, text, jsonb, uuid, uuid, uuid) IS 'Adds an admin note (or correction, intervention record) about a step, turn or conversation. Definer rights: observations and their events are written only by the kernel; it acts only for the session''s tenant.';

-- ---------------------------------------------------------------------------------------------
-- Reading a turn and a conversation
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION aos_agent.get_turn_state(p_turn_id uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_tenant uuid := aos_auth._require_tenant();
    v_turn   jsonb;
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    SELECT to_jsonb(t) - 'budget' - 'messages' || jsonb_build_object('budget', t.budget) INTO v_turn
      FROM aos_agent.turn t WHERE t.tenant_id = v_tenant AND t.turn_id = p_turn_id;
    IF v_turn IS NULL THEN
        PERFORM aos_core._not_found('turn', p_turn_id);
    END IF;
    RETURN v_turn || jsonb_build_object('steps',
        (SELECT coalesce(jsonb_agg(jsonb_build_object('step_id', s.step_id, 'step_number', s.step_number, 'step_type', s.step_type,
                    'status', s.status, 'tool_name', s.tool_name, 'content', s.content, 'created_at', s.created_at) ORDER BY s.step_number), '[]')
           FROM aos_agent.step s WHERE s.tenant_id = v_tenant AND s.turn_id = p_turn_id));
END
$$;
COMMENT ON FUNCTION aos_agent.get_turn_state(uuid) IS 'A turn with all its steps, as JSON.';

CREATE FUNCTION aos_agent.get_conversation_history(p_conversation_id uuid, p_include_steps boolean DEFAULT false, p_limit integer DEFAULT 50)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_tenant uuid := aos_auth._require_tenant();
    v_conv   jsonb;
BEGIN
    PERFORM aos_core._check_id(p_conversation_id, 'conversation id');
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'limit must be between 1 and 1000, got %', p_limit USING ERRCODE = '22023', HINT = 'Page through long conversations.';
    END IF;
    SELECT jsonb_build_object('conversation_id', c.conversation_id, 'agent_id', c.agent_id, 'title', c.title, 'status', c.status,
                              'turn_count', c.turn_count, 'total_tokens', c.total_tokens, 'total_cost_usd', c.total_cost_usd,
                              'created_at', c.created_at, 'last_activity_at', c.last_activity_at)
      INTO v_conv FROM aos_agent.conversation c WHERE c.tenant_id = v_tenant AND c.conversation_id = p_conversation_id;
    IF v_conv IS NULL THEN
        PERFORM aos_core._not_found('conversation', p_conversation_id);
    END IF;
    RETURN v_conv || jsonb_build_object('turns', (
        SELECT coalesce(jsonb_agg(x.j ORDER BY x.turn_number), '[]') FROM (
            SELECT t.turn_number,
                   jsonb_build_object('turn_id', t.turn_id, 'turn_number', t.turn_number, 'status', t.status,
                       'user_message', t.user_message, 'assistant_message', t.assistant_message,
                       'final_answer', coalesce((SELECT s.content ->> 'text' FROM aos_agent.step s WHERE s.tenant_id = v_tenant
                                                  AND s.turn_id = t.turn_id AND s.step_type = 'override' ORDER BY s.step_number DESC LIMIT 1),
                                                t.assistant_message),
                       'tokens_used', t.tokens_used, 'cost_usd', t.cost_usd, 'created_at', t.created_at, 'completed_at', t.completed_at)
                   || CASE WHEN p_include_steps THEN jsonb_build_object('steps', aos_agent.get_turn_state(t.turn_id) -> 'steps') ELSE '{}'::jsonb END AS j
              FROM aos_agent.turn t WHERE t.tenant_id = v_tenant AND t.conversation_id = p_conversation_id
             ORDER BY t.turn_number DESC LIMIT p_limit) x));
END
$$;
COMMENT ON FUNCTION aos_agent.get_conversation_history(uuid, boolean, integer) IS
    'A conversation and its last p_limit turns (final answers include overrides), optionally with every step.';

-- ---------------------------------------------------------------------------------------------
-- Memory
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION aos_agent._remember(p_tenant_id uuid, p_agent_id uuid, p_key text, p_value jsonb, p_memory_type text,
                                    p_importance real, p_conversation_id uuid, p_embedding vector)
RETURNS uuid
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_id uuid;
BEGIN
    PERFORM aos_core._check_text(p_key, 'memory key', 200);
    PERFORM aos_core._check_json(p_value, 'memory value');
    IF p_memory_type IS NULL OR p_memory_type NOT IN ('fact', 'preference', 'summary', 'note') THEN
        RAISE EXCEPTION 'memory type must be fact, preference, summary or note, not %', coalesce(p_memory_type, 'NULL')
            USING ERRCODE = '22023', HINT = 'Most memories are facts.';
    END IF;
    IF p_importance IS NULL OR p_importance NOT BETWEEN 0 AND 1 THEN
        RAISE EXCEPTION 'importance must be between 0 and 1, got %', p_importance USING ERRCODE = '22023', HINT = 'Use 0.5 when unsure.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM aos_agent.agent WHERE tenant_id = p_tenant_id AND agent_id = p_agent_id) THEN
        PERFORM aos_core._not_found('agent', p_agent_id);
    END IF;
    IF p_conversation_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM aos_agent.conversation WHERE tenant_id = p_tenant_id AND conversation_id = p_conversation_id AND agent_id = p_agent_id) THEN
        PERFORM aos_core._not_found('conversation', p_conversation_id);
    END IF;
    INSERT INTO aos_agent.memory (tenant_id, agent_id, conversation_id, key, value, memory_type, importance, embedding)
    VALUES (p_tenant_id, p_agent_id, p_conversation_id, p_key, p_value, p_memory_type, p_importance, p_embedding)
    ON CONFLICT (tenant_id, agent_id, key) DO UPDATE
       SET value = EXCLUDED.value, memory_type = EXCLUDED.memory_type, importance = EXCLUDED.importance,
           embedding = coalesce(EXCLUDED.embedding, aos_agent.memory.embedding), updated_at = now()
    RETURNING memory_id INTO v_id;
    PERFORM aos_core._tenant_event(p_tenant_id, 'memory.written', v_id,
        jsonb_build_object('agent_id', p_agent_id, 'key', p_key, 'value_sha256', encode(aos_core.json_sha256(p_value), 'hex')));
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION aos_agent._remember(uuid, uuid, text, jsonb, text, real, uuid, vector) IS 'Internal: stores (or replaces) a memory of an agent.';

CREATE FUNCTION aos_agent.remember(p_agent_id uuid, p_key text, p_value jsonb, p_memory_type text DEFAULT 'fact',
                                   p_importance real DEFAULT 0.5, p_conversation_id uuid DEFAULT NULL, p_embedding vector DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
BEGIN
    PERFORM aos_core._check_id(p_agent_id, 'agent id');
    RETURN aos_agent._remember(aos_auth._enter(), p_agent_id, p_key, p_value, p_memory_type, p_importance, p_conversation_id, p_embedding);
END
$$;
COMMENT ON FUNCTION aos_agent.remember(uuid, text, jsonb, text, real, uuid, vector) IS 'Stores a value under a key in an agent''s memory (replacing an older value); returns the memory id. Definer rights: memory is written only by the kernel, and each write is chained into the event log; it acts only for the session''s tenant.';

CREATE FUNCTION aos_agent.recall(p_agent_id uuid, p_key text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid := aos_auth._enter();
    v_value  jsonb;
BEGIN
    PERFORM aos_core._check_id(p_agent_id, 'agent id');
    IF NOT EXISTS (SELECT 1 FROM aos_agent.agent WHERE tenant_id = v_tenant AND agent_id = p_agent_id) THEN
        PERFORM aos_core._not_found('agent', p_agent_id);
    END IF;
    IF p_key IS NULL THEN
        SELECT coalesce(jsonb_object_agg(key, value), '{}') INTO v_value FROM aos_agent.memory
         WHERE tenant_id = v_tenant AND agent_id = p_agent_id AND (expires_at IS NULL OR expires_at > now());
        RETURN v_value;
    END IF;
    UPDATE aos_agent.memory SET access_count = access_count + 1
     WHERE tenant_id = v_tenant AND agent_id = p_agent_id AND key = p_key AND (expires_at IS NULL OR expires_at > now())
    RETURNING value INTO v_value;
    RETURN v_value;
END
$$;
COMMENT ON FUNCTION aos_agent.recall(uuid, text) IS 'The value an agent remembered under a key (NULL if none), or all its memories as one object when the key is NULL. Definer rights: it counts reads (access_count), which clients cannot write; it acts only for the session''s tenant.';

CREATE FUNCTION aos_agent.forget(p_agent_id uuid, p_key text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid := aos_auth._enter();
    v_id     uuid;
BEGIN
    PERFORM aos_core._check_id(p_agent_id, 'agent id');
    PERFORM aos_core._check_text(p_key, 'memory key', 200);
    DELETE FROM aos_agent.memory WHERE tenant_id = v_tenant AND agent_id = p_agent_id AND key = p_key RETURNING memory_id INTO v_id;
    IF v_id IS NOT NULL THEN
        PERFORM aos_core._tenant_event(v_tenant, 'memory.forgotten', v_id, jsonb_build_object('agent_id', p_agent_id, 'key', p_key));
    END IF;
    RETURN v_id IS NOT NULL;
END
$$;
COMMENT ON FUNCTION aos_agent.forget(uuid, text) IS 'Deletes a memory of an agent; true if there was one. Definer rights: memory is written only by the kernel, and each deletion is chained into the event log; it acts only for the session''s tenant.';

-- Workers reach memory only through the turn they hold the lease of (the agent of that turn).
CREATE FUNCTION aos_agent.turn_memory_write(p_turn_id uuid, p_lease_token uuid, p_key text, p_value jsonb)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_target record;
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    PERFORM aos_core._check_id(p_lease_token, 'lease token');
    SELECT * INTO v_target FROM aos_agent._lease_target(p_turn_id, p_lease_token);
    PERFORM aos_auth._act_as(v_target.tenant_id);
    RETURN aos_agent._remember(v_target.tenant_id, v_target.agent_id, p_key, p_value, 'fact', 0.5,
        (SELECT conversation_id FROM aos_agent.turn WHERE tenant_id = v_target.tenant_id AND turn_id = p_turn_id), NULL);
END
$$;
COMMENT ON FUNCTION aos_agent.turn_memory_write(uuid, uuid, text, jsonb) IS 'The memory_write tool: a worker stores a memory of the agent of the turn it holds. Definer rights: workers hold no table privileges: the lease token decides the tenant and the agent.';

CREATE FUNCTION aos_agent.turn_memory_read(p_turn_id uuid, p_lease_token uuid, p_key text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_target record;
    v_value  jsonb;
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    PERFORM aos_core._check_id(p_lease_token, 'lease token');
    SELECT * INTO v_target FROM aos_agent._lease_target(p_turn_id, p_lease_token);
    PERFORM aos_auth._act_as(v_target.tenant_id);
    IF p_key IS NULL THEN
        SELECT coalesce(jsonb_agg(key ORDER BY key), '[]') INTO v_value FROM aos_agent.memory
         WHERE tenant_id = v_target.tenant_id AND agent_id = v_target.agent_id AND (expires_at IS NULL OR expires_at > now());
        RETURN jsonb_build_object('keys', v_value);
    END IF;
    SELECT value INTO v_value FROM aos_agent.memory
     WHERE tenant_id = v_target.tenant_id AND agent_id = v_target.agent_id AND key = p_key AND (expires_at IS NULL OR expires_at > now());
    RETURN jsonb_build_object('key', p_key, 'found', v_value IS NOT NULL, 'value', v_value);
END
$$;
COMMENT ON FUNCTION aos_agent.turn_memory_read(uuid, uuid, text) IS 'The memory_read tool: a worker reads a memory (or the list of keys) of the agent of the turn it holds. Definer rights: workers hold no table privileges: the lease token decides the tenant and the agent.';
