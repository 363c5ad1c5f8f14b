-- pgAgentOS kernel — agents, conversations, messages, and the context of a turn (what one LLM
-- call needs: system prompt, history in the common chat format, tools, model and parameters).

-- ---------------------------------------------------------------------------------------------
-- Model and configuration helpers
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION aos_agent.default_model_id(p_tenant_id uuid)
RETURNS uuid
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    -- PL/pgSQL so that the query's plan is kept for the session (a SQL function here is planned on every call).
    RETURN (
    SELECT coalesce(
            (SELECT r.model_id
               FROM aos_auth.tenant t
               JOIN aos_meta.llm_model_registry r
                 ON t.settings ->> 'default_model' IN (r.provider || '/' || r.model_name, r.model_name)
              WHERE t.tenant_id = p_tenant_id
              ORDER BY r.is_active DESC LIMIT 1),
            (SELECT model_id FROM aos_meta.llm_model_registry WHERE provider = 'openai' AND model_name = 'gpt-4o-mini')));
END
$$;
COMMENT ON FUNCTION aos_agent.default_model_id(uuid) IS
    'The model agents use when neither they nor their persona name one: the tenant''s settings.default_model, else openai/gpt-4o-mini.';

-- _model_ref: a model named as a uuid, "provider/name" or "name".
CREATE FUNCTION aos_agent._model_ref(p_ref text)
RETURNS uuid
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_id uuid;
BEGIN
    IF p_ref IS NULL OR btrim(p_ref) = '' THEN
        RETURN NULL;
    END IF;
    IF p_ref ~ '^[0-9a-fA-F-]{36}$' THEN
        SELECT model_id INTO v_id FROM aos_meta.llm_model_registry WHERE model_id = p_ref::uuid;
    ELSIF position('/' IN p_ref) > 0 THEN
        SELECT model_id INTO v_id FROM aos_meta.llm_model_registry
         WHERE provider = split_part(p_ref, '/', 1) AND model_name = substr(p_ref, position('/' IN p_ref) + 1);
    ELSE
        SELECT model_id INTO v_id FROM aos_meta.llm_model_registry WHERE model_name = p_ref ORDER BY is_active DESC, provider LIMIT 1;
    END IF;
    IF v_id IS NULL THEN
        RAISE EXCEPTION 'model % is not in the registry', p_ref
            USING ERRCODE = 'AO002', HINT = 'Name a model as provider/name, e.g. openai/gpt-4o; SELECT provider, model_name FROM aos_meta.llm_model_registry lists them.';
    END IF;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION aos_agent._model_ref(text) IS 'Internal: resolves a model given as a uuid, provider/name or name.';

-- The agent configuration with defaults, checked.
CREATE FUNCTION aos_agent._agent_config(p_config jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v_cfg jsonb := '{"auto_approve_tools": false, "max_iterations": 10, "max_tokens_per_turn": 200000,
                     "max_cost_usd_per_turn": null, "max_turn_seconds": 600, "max_attempts": 3, "dispatch": "worker",
                     "history_turns": 20, "thinking_visible": true, "model_params": {}}'::jsonb;
    v_key text;
BEGIN
    PERFORM aos_core._check_json(coalesce(p_config, '{}'), 'config', 'object', 262144);
    v_cfg := v_cfg || coalesce(p_config, '{}');
    FOREACH v_key IN ARRAY ARRAY['auto_approve_tools', 'thinking_visible'] LOOP
        IF jsonb_typeof(v_cfg -> v_key) <> 'boolean' THEN
            RAISE EXCEPTION 'config.% must be true or false, got %', v_key, v_cfg -> v_key
                USING ERRCODE = '22023', HINT = format('Set "%s": true or false.', v_key);
        END IF;
    END LOOP;
    FOREACH v_key IN ARRAY ARRAY['max_iterations', 'max_tokens_per_turn', 'max_turn_seconds', 'max_attempts', 'history_turns'] LOOP
        IF jsonb_typeof(v_cfg -> v_key) <> 'number' OR (v_cfg ->> v_key)::numeric < 1
           OR (v_cfg ->> v_key)::numeric <> trunc((v_cfg ->> v_key)::numeric) OR (v_cfg ->> v_key)::numeric > 1000000000 THEN
            RAISE EXCEPTION 'config.% must be a positive whole number, got %', v_key, v_cfg -> v_key
                USING ERRCODE = '22023', HINT = format('Set "%s" to a whole number of at least 1.', v_key);
        END IF;
    END LOOP;
    IF jsonb_typeof(v_cfg -> 'max_cost_usd_per_turn') NOT IN ('null', 'number')
       OR (jsonb_typeof(v_cfg -> 'max_cost_usd_per_turn') = 'number' AND (v_cfg ->> 'max_cost_usd_per_turn')::numeric <= 0) THEN
        RAISE EXCEPTION 'config.max_cost_usd_per_turn must be a positive number or null, got %', v_cfg -> 'max_cost_usd_per_turn'
            USING ERRCODE = '22023', HINT = 'Set "max_cost_usd_per_turn": 0.50, or null for no cost limit.';
    END IF;
    IF v_cfg ->> 'dispatch' NOT IN ('worker', 'manual') OR jsonb_typeof(v_cfg -> 'dispatch') <> 'string' THEN
        RAISE EXCEPTION 'config.dispatch must be "worker" or "manual", got %', v_cfg -> 'dispatch'
            USING ERRCODE = '22023', HINT = 'worker: aos workers run the turns; manual: you drive them with run_turn and friends.';
    END IF;
    IF jsonb_typeof(v_cfg -> 'model_params') <> 'object' THEN
        RAISE EXCEPTION 'config.model_params must be a JSON object' USING ERRCODE = '22023', HINT = 'Set "model_params": {"temperature": 0.2}.';
    END IF;
    IF v_cfg ? 'script' AND jsonb_typeof(v_cfg -> 'script') <> 'array' THEN
        RAISE EXCEPTION 'config.script must be a JSON array of model responses'
            USING ERRCODE = '22023', HINT = 'See docs/runtime.md, "The scripted model".';
    END IF;
    RETURN v_cfg;
END
$$;
COMMENT ON FUNCTION aos_agent._agent_config(jsonb) IS 'Internal: an agent''s configuration merged with the defaults and checked.';

-- _skill: the skill a tenant sees under a key (its own first, else the shared catalogue).
CREATE FUNCTION aos_agent._skill(p_tenant_id uuid, p_skill_key text)
RETURNS aos_skills.skill
LANGUAGE sql STABLE
AS $$
    SELECT s.* FROM aos_skills.skill s
     WHERE s.tenant_id IN (p_tenant_id, aos_skills.shared_tenant()) AND s.skill_key = p_skill_key AND s.is_active
     ORDER BY (s.tenant_id = p_tenant_id) DESC
     LIMIT 1
$$;
COMMENT ON FUNCTION aos_agent._skill(uuid, text) IS 'Internal: the active skill a tenant sees under a key (its own, else the shared one).';

-- _role_skill: may a role use a skill in a tenant? Returns the grant (NULL when not granted).
CREATE FUNCTION aos_agent._role_skill(p_tenant_id uuid, p_role_key text, p_skill_key text)
RETURNS aos_skills.role_skill
LANGUAGE sql STABLE
AS $$
    SELECT g.* FROM aos_skills.role_skill g
     WHERE g.tenant_id IN (p_tenant_id, aos_skills.shared_tenant()) AND g.role_key = p_role_key AND g.skill_key = p_skill_key
     ORDER BY (g.tenant_id = p_tenant_id) DESC
     LIMIT 1
$$;
COMMENT ON FUNCTION aos_agent._role_skill(uuid, text, text) IS 'Internal: the role''s grant for a skill (the tenant''s row wins over the shared one).';

CREATE FUNCTION aos_agent._check_tools(p_tenant_id uuid, p_role_key text, p_tools text[])
RETURNS text[]
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_tool  text;
    v_out   text[] := '{}';
    v_grant aos_skills.role_skill;
BEGIN
    IF p_tools IS NULL THEN
        RETURN '{}';
    END IF;
    IF cardinality(p_tools) > 128 THEN
        RAISE EXCEPTION 'an agent may have at most 128 tools, got %', cardinality(p_tools)
            USING ERRCODE = 'AO010', HINT = 'Split the work between agents.';
    END IF;
    FOREACH v_tool IN ARRAY p_tools LOOP
        IF v_tool IS NULL OR (aos_agent._skill(p_tenant_id, v_tool)).skill_key IS NULL THEN
            RAISE EXCEPTION 'unknown tool %', coalesce(v_tool, 'NULL')
                USING ERRCODE = 'AO002', HINT = 'SELECT skill_key FROM aos_skills.skill lists the tools this tenant can use.';
        END IF;
        v_grant := aos_agent._role_skill(p_tenant_id, p_role_key, v_tool);
        IF v_grant.skill_key IS NULL OR NOT v_grant.allowed THEN
            RAISE EXCEPTION 'role % may not use tool %', p_role_key, v_tool
                USING ERRCODE = 'AO006', HINT = 'Grant it: INSERT INTO aos_skills.role_skill (tenant_id, role_key, skill_key) VALUES (...).';
        END IF;
        IF NOT v_tool = ANY (v_out) THEN
            v_out := v_out || v_tool;
        END IF;
    END LOOP;
    RETURN v_out;
END
$$;
COMMENT ON FUNCTION aos_agent._check_tools(uuid, text, text[]) IS 'Internal: the tools exist and the role may use them; duplicates removed.';

-- ---------------------------------------------------------------------------------------------
-- Conversation-chain events outside the step hot path.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION aos_core._conversation_event(p_tenant_id uuid, p_conversation_id uuid, p_event_type text,
                                             p_entity_id uuid, p_turn_id uuid, p_payload jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_at    timestamptz := clock_timestamp();
    v_actor text := aos_core._actor();
    v_seq   bigint;
    v_hash  bytea;
BEGIN
    UPDATE aos_agent.conversation c
       SET event_seq = c.event_seq + 1,
           event_head = aos_core.event_hash(c.event_head, c.tenant_id, c.conversation_id, c.event_seq + 1, p_event_type,
                                             p_entity_id, p_turn_id, v_actor, p_payload, v_at),
           last_activity_at = v_at
     WHERE c.tenant_id = p_tenant_id AND c.conversation_id = p_conversation_id
    RETURNING c.event_seq, c.event_head INTO v_seq, v_hash;
    IF v_seq IS NULL THEN
        PERFORM aos_core._not_found('conversation', p_conversation_id);
    END IF;
    INSERT INTO aos_core.event_log (tenant_id, chain_id, seq, event_type, entity_id, turn_id, actor, payload, created_at, hash)
    VALUES (p_tenant_id, p_conversation_id, v_seq, p_event_type, p_entity_id, p_turn_id, v_actor, p_payload, v_at, v_hash);
    RETURN v_seq;
END
$$;
COMMENT ON FUNCTION aos_core._conversation_event(uuid, uuid, text, uuid, uuid, jsonb) IS 'Internal: appends an event to a conversation''s chain.';

CREATE FUNCTION aos_agent._step_ref(p_step_id uuid, p_step_type text, p_content jsonb)
RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT jsonb_build_object('id', p_step_id, 'type', p_step_type, 'sha256', encode(aos_core.json_sha256(p_content), 'hex'))
$$;
COMMENT ON FUNCTION aos_agent._step_ref(uuid, text, jsonb) IS 'Internal: how an event refers to a step (id, type, SHA-256 of its content).';

-- ---------------------------------------------------------------------------------------------
-- create_agent / update_agent
-- ---------------------------------------------------------------------------------------------
-- SECURITY DEFINER: agents are written only through these functions (with their checks) and
-- their events are chained; the tenant is the session's (p_tenant_id must match it).
CREATE FUNCTION aos_agent.create_agent(
    p_tenant_id uuid, p_name text, p_persona_id uuid DEFAULT NULL, p_tools text[] DEFAULT '{}',
    p_config jsonb DEFAULT '{}', p_model text DEFAULT NULL, p_description text DEFAULT NULL,
    p_role_key text DEFAULT 'agent', p_principal_id uuid DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid := aos_auth._enter();
    v_id     uuid := gen_random_uuid();
    v_cfg    jsonb;
    v_tools  text[];
    v_model  uuid;
BEGIN
    PERFORM aos_core._check_id(p_tenant_id, 'tenant id');
    IF p_tenant_id <> v_tenant THEN
        RAISE EXCEPTION 'tenant % is not the tenant bound to this session', p_tenant_id
            USING ERRCODE = 'AO011', HINT = 'Pass aos_auth.current_tenant(), or bind that tenant first.';
    END IF;
    PERFORM aos_core._check_text(p_name, 'agent name', 100);
    IF p_name !~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$' THEN
        RAISE EXCEPTION 'agent name % is not valid', p_name
            USING ERRCODE = '22023', HINT = 'Use letters, digits, _ . - (up to 100 characters), starting with a letter or digit.';
    END IF;
    IF p_description IS NOT NULL THEN
        PERFORM aos_core._check_text(p_description, 'description', 4000, true);
    END IF;
    IF p_role_key IS NULL OR p_role_key NOT IN ('admin', 'approver', 'operator', 'developer', 'auditor', 'agent', 'viewer', 'user') THEN
        RAISE EXCEPTION 'unknown role %', coalesce(p_role_key, 'NULL') USING ERRCODE = '22023', HINT = 'Agents usually have the role agent.';
    END IF;
    v_cfg := aos_agent._agent_config(p_config);
    IF p_persona_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM aos_persona.persona WHERE tenant_id = v_tenant AND persona_id = p_persona_id) THEN
        PERFORM aos_core._not_found('persona', p_persona_id);
    END IF;
    IF p_principal_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM aos_auth.principal WHERE tenant_id = v_tenant AND principal_id = p_principal_id) THEN
        PERFORM aos_core._not_found('principal', p_principal_id);
    END IF;
    v_tools := aos_agent._check_tools(v_tenant, p_role_key, p_tools);
    v_model := aos_agent._model_ref(coalesce(p_model, v_cfg ->> 'model'));
    BEGIN
        INSERT INTO aos_agent.agent (tenant_id, agent_id, name, description, persona_id, model_id, tools, config, role_key, principal_id)
        VALUES (v_tenant, v_id, p_name, p_description, p_persona_id, v_model, v_tools, v_cfg - 'model', p_role_key, p_principal_id);
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'an agent named % exists already', p_name USING ERRCODE = 'AO012', HINT = 'Choose another name, or update that agent.';
    END;
    PERFORM aos_core._tenant_event(v_tenant, 'agent.created', v_id,
        jsonb_build_object('name', p_name, 'persona_id', p_persona_id, 'tools', to_jsonb(v_tools), 'model_id', v_model,
                           'config_sha256', encode(aos_core.json_sha256(v_cfg), 'hex')));
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION aos_agent.create_agent(uuid, text, uuid, text[], jsonb, text, text, text, uuid) IS
    'Creates an agent in the bound tenant: persona, tools (skills its role may use), configuration (approval, budgets, dispatch) and model (provider/name); returns its id. Definer rights: agents are written only through create_agent and update_agent, with their checks, and each change is chained into the event log; it acts only for the session''s tenant.';

-- SECURITY DEFINER for the same reason as create_agent.
CREATE FUNCTION aos_agent.update_agent(
    p_agent_id uuid, p_persona_id uuid DEFAULT NULL, p_tools text[] DEFAULT NULL, p_config jsonb DEFAULT NULL,
    p_model text DEFAULT NULL, p_is_active boolean DEFAULT NULL, p_description text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid := aos_auth._enter();
    v_agent  aos_agent.agent%ROWTYPE;
    v_cfg    jsonb;
BEGIN
    PERFORM aos_core._check_id(p_agent_id, 'agent id');
    SELECT * INTO v_agent FROM aos_agent.agent WHERE tenant_id = v_tenant AND agent_id = p_agent_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM aos_core._not_found('agent', p_agent_id);
    END IF;
    IF p_persona_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM aos_persona.persona WHERE tenant_id = v_tenant AND persona_id = p_persona_id) THEN
        PERFORM aos_core._not_found('persona', p_persona_id);
    END IF;
    v_cfg := CASE WHEN p_config IS NULL THEN v_agent.config ELSE aos_agent._agent_config(v_agent.config || p_config) END;
    UPDATE aos_agent.agent
       SET persona_id = coalesce(p_persona_id, persona_id),
           tools = CASE WHEN p_tools IS NULL THEN tools ELSE aos_agent._check_tools(v_tenant, role_key, p_tools) END,
           config = v_cfg - 'model',
           model_id = coalesce(aos_agent._model_ref(coalesce(p_model, p_config ->> 'model')), model_id),
           is_active = coalesce(p_is_active, is_active),
           description = coalesce(p_description, description),
           updated_at = now()
     WHERE tenant_id = v_tenant AND agent_id = p_agent_id;
    PERFORM aos_core._tenant_event(v_tenant, 'agent.updated', p_agent_id,
        jsonb_strip_nulls(jsonb_build_object('persona_id', p_persona_id, 'tools', to_jsonb(p_tools), 'config', p_config,
                                             'model', p_model, 'is_active', p_is_active)));
END
$$;
COMMENT ON FUNCTION aos_agent.update_agent(uuid, uuid, text[], jsonb, text, boolean, text) IS
    'Changes an agent: persona, tools, configuration (merged into the current one), model, active flag. NULL leaves a field as it is. Definer rights: agents are written only through create_agent and update_agent, with their checks, and each change is chained into the event log; it acts only for the session''s tenant.';

-- ---------------------------------------------------------------------------------------------
-- start_conversation / send_message
-- ---------------------------------------------------------------------------------------------
-- SECURITY DEFINER: conversations are created only here (dispatch columns, event chain).
CREATE FUNCTION aos_agent.start_conversation(
    p_agent_id uuid, p_user_principal_id uuid DEFAULT NULL, p_context jsonb DEFAULT '{}', p_title text DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid := aos_auth._enter();
    v_agent  aos_agent.agent%ROWTYPE;
    v_id     uuid := gen_random_uuid();
BEGIN
    PERFORM aos_core._check_id(p_agent_id, 'agent id');
    PERFORM aos_core._check_json(coalesce(p_context, '{}'), 'context', 'object', 262144);
    IF p_title IS NOT NULL THEN
        PERFORM aos_core._check_text(p_title, 'title', 500);
    END IF;
    SELECT * INTO v_agent FROM aos_agent.agent WHERE tenant_id = v_tenant AND agent_id = p_agent_id;
    IF NOT FOUND THEN
        PERFORM aos_core._not_found('agent', p_agent_id);
    END IF;
    IF NOT v_agent.is_active THEN
        RAISE EXCEPTION 'agent % is deactivated', v_agent.name
            USING ERRCODE = 'AO013', HINT = 'Reactivate it: SELECT aos_agent.update_agent(agent_id, p_is_active := true).';
    END IF;
    IF p_user_principal_id IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM aos_auth.principal WHERE tenant_id = v_tenant AND principal_id = p_user_principal_id) THEN
            PERFORM aos_core._not_found('principal', p_user_principal_id);
        END IF;
    END IF;
    INSERT INTO aos_agent.conversation (tenant_id, conversation_id, agent_id, user_principal_id, title, context, dispatch)
    VALUES (v_tenant, v_id, p_agent_id, coalesce(p_user_principal_id, aos_auth.current_principal()), p_title,
            coalesce(p_context, '{}'), v_agent.config ->> 'dispatch');
    PERFORM aos_core._conversation_event(v_tenant, v_id, 'conversation.started', v_id, NULL,
        jsonb_build_object('agent_id', p_agent_id, 'context_sha256', encode(aos_core.json_sha256(coalesce(p_context, '{}')), 'hex')));
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION aos_agent.start_conversation(uuid, uuid, jsonb, text) IS 'Starts a conversation with an agent of the bound tenant; returns its id. Definer rights: conversations (their dispatch state and event chain) are written only by the kernel; it acts only for the session''s tenant.';

-- SECURITY DEFINER: creates the turn and its first step, advances the conversation's dispatch
-- state and event chain, none of which clients may write directly.
CREATE FUNCTION aos_agent.send_message(p_conversation_id uuid, p_message text, p_attachments jsonb DEFAULT '[]')
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant    uuid := aos_auth._enter();
    v_at        timestamptz := clock_timestamp();
    v_actor     text := aos_core._actor();
    v_turn_id   uuid := gen_random_uuid();
    v_step_id   uuid := gen_random_uuid();
    v_content   jsonb;
    v_payload   jsonb;
    v_agent     aos_agent.agent%ROWTYPE;
    v_conv      record;
    v_number    integer;
    v_activated boolean;
BEGIN
    PERFORM aos_core._check_id(p_conversation_id, 'conversation id');
    PERFORM aos_core._check_text(p_message, 'message');
    PERFORM aos_core._check_json(coalesce(p_attachments, '[]'), 'attachments', 'array');
    SELECT a.* INTO v_agent
      FROM aos_agent.conversation c JOIN aos_agent.agent a ON a.tenant_id = c.tenant_id AND a.agent_id = c.agent_id
     WHERE c.tenant_id = v_tenant AND c.conversation_id = p_conversation_id;
    IF NOT FOUND THEN
        PERFORM aos_core._not_found('conversation', p_conversation_id);
    END IF;
    v_content := jsonb_build_object('text', p_message) || CASE WHEN coalesce(p_attachments, '[]') = '[]' THEN '{}'::jsonb
                                                            ELSE jsonb_build_object('attachments', p_attachments) END;
    v_payload := jsonb_build_object('turn_id', v_turn_id, 'steps', jsonb_build_array(aos_agent._step_ref(v_step_id, 'user_message', v_content)));

    UPDATE aos_agent.conversation c
       SET turn_count = c.turn_count + 1,
           active_turn_id = CASE WHEN c.run_state = 'idle' THEN v_turn_id ELSE c.active_turn_id END,
           run_state = CASE WHEN c.run_state <> 'idle' THEN c.run_state
                            WHEN c.status = 'paused' THEN 'waiting'
                            WHEN c.dispatch = 'manual' THEN 'manual'
                            ELSE 'ready' END,
           ready_at = CASE WHEN c.run_state = 'idle' THEN v_at ELSE c.ready_at END,
           cur_attempt = CASE WHEN c.run_state = 'idle' THEN 0 ELSE c.cur_attempt END,
           cur_step_count = CASE WHEN c.run_state = 'idle' THEN 1 ELSE c.cur_step_count END,
           cur_iteration = CASE WHEN c.run_state = 'idle' THEN 0 ELSE c.cur_iteration END,
           cur_phase = CASE WHEN c.run_state = 'idle' THEN 'input' ELSE c.cur_phase END,
           cur_model_id = CASE WHEN c.run_state = 'idle' THEN NULL ELSE c.cur_model_id END,
           cur_max_iterations = CASE WHEN c.run_state = 'idle' THEN (v_agent.config ->> 'max_iterations')::integer ELSE c.cur_max_iterations END,
           cur_max_tokens = CASE WHEN c.run_state = 'idle' THEN (v_agent.config ->> 'max_tokens_per_turn')::bigint ELSE c.cur_max_tokens END,
           cur_max_cost_usd = CASE WHEN c.run_state = 'idle' THEN (v_agent.config ->> 'max_cost_usd_per_turn')::numeric ELSE c.cur_max_cost_usd END,
           cur_input_tokens = CASE WHEN c.run_state = 'idle' THEN 0 ELSE c.cur_input_tokens END,
           cur_output_tokens = CASE WHEN c.run_state = 'idle' THEN 0 ELSE c.cur_output_tokens END,
           cur_cost_usd = CASE WHEN c.run_state = 'idle' THEN 0 ELSE c.cur_cost_usd END,
           cur_run_started = CASE WHEN c.run_state = 'idle' THEN NULL ELSE c.cur_run_started END,
           cur_deadline = CASE WHEN c.run_state = 'idle' THEN NULL ELSE c.cur_deadline END,
           lease_expires_at = CASE WHEN c.run_state = 'idle' THEN NULL ELSE c.lease_expires_at END,
           event_seq = c.event_seq + 1,
           event_head = aos_core.event_hash(c.event_head, c.tenant_id, c.conversation_id, c.event_seq + 1, 'turn.queued',
                                             v_turn_id, v_turn_id, v_actor, v_payload || jsonb_build_object('turn_number', c.turn_count + 1), v_at),
           last_activity_at = v_at
     WHERE c.tenant_id = v_tenant AND c.conversation_id = p_conversation_id AND c.status <> 'closed'
    RETURNING c.turn_count, (c.active_turn_id = v_turn_id) AS activated, c.run_state, c.event_seq, c.event_head, c.status
      INTO v_conv;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'conversation % is closed', p_conversation_id
            USING ERRCODE = 'AO003', HINT = 'Start a new conversation with aos_agent.start_conversation.';
    END IF;
    v_number := v_conv.turn_count;
    v_activated := v_conv.activated;

    INSERT INTO aos_agent.turn (tenant_id, turn_id, conversation_id, agent_id, turn_number, user_message, attachments,
                                status, max_attempts, step_count, budget, created_at)
    VALUES (v_tenant, v_turn_id, p_conversation_id, v_agent.agent_id, v_number, p_message, coalesce(p_attachments, '[]'),
            'queued',
            (v_agent.config ->> 'max_attempts')::integer, 1,
            jsonb_build_object('max_iterations', (v_agent.config ->> 'max_iterations')::integer,
                               'max_tokens', (v_agent.config ->> 'max_tokens_per_turn')::bigint,
                               'max_cost_usd', v_agent.config -> 'max_cost_usd_per_turn',
                               'max_seconds', (v_agent.config ->> 'max_turn_seconds')::integer),
            v_at);
    INSERT INTO aos_agent.step (tenant_id, step_id, turn_id, conversation_id, step_number, step_type, status, content, created_at, completed_at)
    VALUES (v_tenant, v_step_id, v_turn_id, p_conversation_id, 1, 'user_message', 'completed', v_content, v_at, v_at);
    INSERT INTO aos_core.event_log (tenant_id, chain_id, seq, event_type, entity_id, turn_id, actor, payload, created_at, hash)
    VALUES (v_tenant, p_conversation_id, v_conv.event_seq, 'turn.queued', v_turn_id, v_turn_id, v_actor,
            v_payload || jsonb_build_object('turn_number', v_number), v_at, v_conv.event_head);
    IF v_activated AND v_conv.run_state = 'ready' THEN
        PERFORM pg_notify('aos_turn_ready', v_turn_id::text);
    END IF;
    RETURN v_turn_id;
END
$$;
COMMENT ON FUNCTION aos_agent.send_message(uuid, text, jsonb) IS
    'Sends a user message: creates the next turn of the conversation (queued for a worker, or for you to drive with run_turn); returns the turn id. Definer rights: it creates the turn and its first step and advances the conversation''s dispatch state and event chain, none of which clients may write; it acts only for the session''s tenant.';
