-- pgAgentOS kernel — triggers: what must not change does not (defence in depth behind the
-- privileges: clients hold no UPDATE or DELETE on these tables at all), and direct writes to the
-- tables users may write (personas, skills, policies, allowlists, tenants, principals) are
-- recorded in the tenant's event chain.

CREATE FUNCTION aos_core._refuse_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'AO014', HINT = 'Recorded history does not change; record a new event instead.';
END
$$;
COMMENT ON FUNCTION aos_core._refuse_change() IS 'Trigger: refuses UPDATE, DELETE and TRUNCATE of append-only tables.';

CREATE TRIGGER event_log_immutable BEFORE UPDATE OR DELETE ON aos_core.event_log
    FOR EACH ROW EXECUTE FUNCTION aos_core._refuse_change();
CREATE TRIGGER event_log_no_truncate BEFORE TRUNCATE ON aos_core.event_log
    FOR EACH STATEMENT EXECUTE FUNCTION aos_core._refuse_change();
CREATE TRIGGER checkpoint_head_immutable BEFORE UPDATE OR DELETE ON aos_core.checkpoint_head
    FOR EACH ROW EXECUTE FUNCTION aos_core._refuse_change();
CREATE TRIGGER checkpoint_head_no_truncate BEFORE TRUNCATE ON aos_core.checkpoint_head
    FOR EACH STATEMENT EXECUTE FUNCTION aos_core._refuse_change();
CREATE TRIGGER approval_immutable BEFORE UPDATE OR DELETE ON aos_agent.approval
    FOR EACH ROW EXECUTE FUNCTION aos_core._refuse_change();
CREATE TRIGGER approval_no_truncate BEFORE TRUNCATE ON aos_agent.approval
    FOR EACH STATEMENT EXECUTE FUNCTION aos_core._refuse_change();
CREATE TRIGGER step_no_delete BEFORE DELETE ON aos_agent.step
    FOR EACH ROW EXECUTE FUNCTION aos_core._refuse_change();
CREATE TRIGGER step_no_truncate BEFORE TRUNCATE ON aos_agent.step
    FOR EACH STATEMENT EXECUTE FUNCTION aos_core._refuse_change();
CREATE TRIGGER turn_no_delete BEFORE DELETE ON aos_agent.turn
    FOR EACH ROW EXECUTE FUNCTION aos_core._refuse_change();
CREATE TRIGGER turn_no_truncate BEFORE TRUNCATE ON aos_agent.turn
    FOR EACH STATEMENT EXECUTE FUNCTION aos_core._refuse_change();
CREATE TRIGGER conversation_no_delete BEFORE DELETE ON aos_agent.conversation
    FOR EACH ROW EXECUTE FUNCTION aos_core._refuse_change();

-- A step's content never changes; its status moves only along the tool-call state machine
-- (docs/state-machines.md).
CREATE FUNCTION aos_agent._step_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.content IS DISTINCT FROM OLD.content OR NEW.step_type <> OLD.step_type OR NEW.step_number <> OLD.step_number
       OR NEW.turn_id <> OLD.turn_id OR NEW.tenant_id <> OLD.tenant_id OR NEW.conversation_id <> OLD.conversation_id
       OR NEW.tool_name IS DISTINCT FROM OLD.tool_name OR NEW.args_hash IS DISTINCT FROM OLD.args_hash
       OR NEW.call_id IS DISTINCT FROM OLD.call_id OR NEW.created_at <> OLD.created_at OR NEW.attempt <> OLD.attempt THEN
        RAISE EXCEPTION 'step % is immutable: only its status may change', OLD.step_id
            USING ERRCODE = 'AO014', HINT = 'Record a new step (an override, a note) instead of editing one.';
    END IF;
    IF NEW.status <> OLD.status AND NOT (
           (OLD.status = 'pending' AND NEW.status IN ('approved', 'rejected', 'cancelled'))
        OR (OLD.status = 'approved' AND NEW.status IN ('executing', 'completed', 'failed', 'cancelled'))
        OR (OLD.status = 'executing' AND NEW.status IN ('completed', 'failed', 'approved', 'needs_review', 'cancelled'))
        OR (OLD.status = 'needs_review' AND NEW.status IN ('approved', 'rejected', 'cancelled'))
        OR (OLD.status = 'completed' AND OLD.step_type = 'think' AND NEW.status = 'abandoned')) THEN
        RAISE EXCEPTION 'step % cannot go from % to %', OLD.step_id, OLD.status, NEW.status
            USING ERRCODE = 'AO003', HINT = 'See the step state machine in docs/state-machines.md.';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION aos_agent._step_guard() IS 'Trigger: step content is immutable and status follows the tool-call state machine.';
CREATE TRIGGER step_guard BEFORE UPDATE ON aos_agent.step FOR EACH ROW EXECUTE FUNCTION aos_agent._step_guard();

-- A finished turn does not change (appended interventions still count its steps), and turn
-- states move only along the turn state machine.
CREATE FUNCTION aos_agent._turn_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF OLD.status IN ('completed', 'failed', 'cancelled', 'dead') THEN
        -- step_count and messages follow the steps, to which people may append (inject, override)
        IF (to_jsonb(NEW) - 'step_count' - 'messages') IS DISTINCT FROM (to_jsonb(OLD) - 'step_count' - 'messages') THEN
            RAISE EXCEPTION 'turn % is % and does not change', OLD.turn_id, OLD.status
                USING ERRCODE = 'AO014', HINT = 'Overrides and notes are recorded as new steps (override_response, add_observation).';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.user_message <> OLD.user_message OR NEW.turn_number <> OLD.turn_number OR NEW.conversation_id <> OLD.conversation_id
       OR NEW.tenant_id <> OLD.tenant_id OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'the message and identity of turn % do not change', OLD.turn_id
            USING ERRCODE = 'AO014', HINT = 'Send a new message instead.';
    END IF;
    IF NEW.status <> OLD.status AND NOT (
           (OLD.status = 'queued' AND NEW.status IN ('running', 'queued', 'cancelled', 'failed', 'dead', 'waiting_human'))
        OR (OLD.status = 'running' AND NEW.status IN ('waiting_tool', 'waiting_human', 'queued', 'completed', 'failed', 'cancelled', 'dead'))
        OR (OLD.status = 'waiting_tool' AND NEW.status IN ('queued', 'running', 'waiting_human', 'cancelled', 'failed'))
        OR (OLD.status = 'waiting_human' AND NEW.status IN ('queued', 'running', 'waiting_tool', 'cancelled', 'failed'))) THEN
        RAISE EXCEPTION 'turn % cannot go from % to %', OLD.turn_id, OLD.status, NEW.status
            USING ERRCODE = 'AO003', HINT = 'See the turn state machine in docs/state-machines.md.';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION aos_agent._turn_guard() IS 'Trigger: finished turns are immutable and turn status follows the state machine.';
CREATE TRIGGER turn_guard BEFORE UPDATE ON aos_agent.turn FOR EACH ROW EXECUTE FUNCTION aos_agent._turn_guard();

-- Direct writes users may make are chained into the tenant's event log.
-- SECURITY DEFINER: clients may not write the event log; the row already passed row-level
-- security for the caller, so its tenant_id is one the caller may act for.
CREATE FUNCTION aos_core._audit_row()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_row    jsonb := CASE WHEN TG_OP = 'DELETE' THEN to_jsonb(OLD) ELSE to_jsonb(NEW) END;
    v_tenant uuid := (v_row ->> 'tenant_id')::uuid;
BEGIN
    IF v_tenant = aos_skills.shared_tenant() THEN
        RETURN NULL;  -- the shared skill catalogue belongs to no tenant chain
    END IF;
    -- Rows written with row security off are a reload (pg_restore, a dump fed to psql): their events
    -- come with them in the same dump. Only superusers can write these tables with row_security off.
    IF current_setting('row_security') = 'off' THEN
        RETURN NULL;
    END IF;
    PERFORM aos_auth._act_as(v_tenant);
    PERFORM aos_core._tenant_event(v_tenant, TG_TABLE_NAME || '.' || lower(TG_OP), (v_row ->> nullif(TG_ARGV[0], ''))::uuid,
        jsonb_build_object('row_sha256', encode(aos_core.json_sha256(v_row - 'event_seq' - 'event_head' - 'updated_at'), 'hex'))
        || CASE WHEN v_row ->> nullif(TG_ARGV[0], '') IS NULL THEN jsonb_build_object('key', v_row ->> TG_ARGV[1]) ELSE '{}'::jsonb END);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION aos_core._audit_row() IS 'Trigger: records a direct write to a user-writable table in the tenant''s event chain. Definer rights: clients may not write the event log; the row it records already passed row-level security for the caller.';

CREATE TRIGGER tenant_audit AFTER INSERT OR UPDATE OF name, display_name, is_active, settings ON aos_auth.tenant
    FOR EACH ROW EXECUTE FUNCTION aos_core._audit_row('tenant_id', 'name');
CREATE TRIGGER principal_audit AFTER INSERT OR UPDATE OR DELETE ON aos_auth.principal
    FOR EACH ROW EXECUTE FUNCTION aos_core._audit_row('principal_id', 'name');
CREATE TRIGGER persona_audit AFTER INSERT OR UPDATE OR DELETE ON aos_persona.persona
    FOR EACH ROW EXECUTE FUNCTION aos_core._audit_row('persona_id', 'name');
CREATE TRIGGER skill_audit AFTER INSERT OR UPDATE OR DELETE ON aos_skills.skill
    FOR EACH ROW EXECUTE FUNCTION aos_core._audit_row('', 'skill_key');
CREATE TRIGGER skill_impl_audit AFTER INSERT OR UPDATE OR DELETE ON aos_skills.skill_impl
    FOR EACH ROW EXECUTE FUNCTION aos_core._audit_row('', 'skill_key');
CREATE TRIGGER role_skill_audit AFTER INSERT OR UPDATE OR DELETE ON aos_skills.role_skill
    FOR EACH ROW EXECUTE FUNCTION aos_core._audit_row('', 'skill_key');
CREATE TRIGGER policy_rule_audit AFTER INSERT OR UPDATE OR DELETE ON aos_policy.policy_rule
    FOR EACH ROW EXECUTE FUNCTION aos_core._audit_row('rule_id', 'name');
CREATE TRIGGER allowlist_audit AFTER INSERT OR UPDATE OR DELETE ON aos_egress.allowlist
    FOR EACH ROW EXECUTE FUNCTION aos_core._audit_row('allowlist_id', 'host');

CREATE FUNCTION aos_core._touch()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION aos_core._touch() IS 'Trigger: keeps updated_at current.';
CREATE TRIGGER tenant_touch BEFORE UPDATE OF name, display_name, is_active, settings ON aos_auth.tenant
    FOR EACH ROW EXECUTE FUNCTION aos_core._touch();
CREATE TRIGGER principal_touch BEFORE UPDATE ON aos_auth.principal FOR EACH ROW EXECUTE FUNCTION aos_core._touch();
CREATE TRIGGER persona_touch BEFORE UPDATE ON aos_persona.persona FOR EACH ROW EXECUTE FUNCTION aos_core._touch();
CREATE TRIGGER skill_touch BEFORE UPDATE ON aos_skills.skill FOR EACH ROW EXECUTE FUNCTION aos_core._touch();
CREATE TRIGGER registry_touch BEFORE UPDATE ON aos_meta.llm_model_registry FOR EACH ROW EXECUTE FUNCTION aos_core._touch();
