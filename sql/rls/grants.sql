-- pgAgentOS kernel — ownership and privileges. Runs last.
-- Every object belongs to the NOLOGIN role aos_owner; EXECUTE is revoked from PUBLIC on every
-- function and granted explicitly, role by role (least privilege).

DO $owner$
DECLARE
    v_obj record;
BEGIN
    FOR v_obj IN
        SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.nspname LIKE 'aos\_%'
    LOOP
        EXECUTE pg_catalog.format('ALTER SCHEMA %I OWNER TO aos_owner', v_obj.nspname);
        EXECUTE pg_catalog.format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', v_obj.nspname);
        EXECUTE pg_catalog.format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM PUBLIC', v_obj.nspname);
        EXECUTE pg_catalog.format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA %I FROM PUBLIC', v_obj.nspname);
    END LOOP;
    FOR v_obj IN
        SELECT c.oid::pg_catalog.regclass AS rel, c.relkind
        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname LIKE 'aos\_%' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s OWNER TO aos_owner', v_obj.rel);
    END LOOP;
    FOR v_obj IN
        SELECT p.oid::pg_catalog.regprocedure AS fn
        FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname LIKE 'aos\_%'
    LOOP
        EXECUTE pg_catalog.format('ALTER ROUTINE %s OWNER TO aos_owner', v_obj.fn);
    END LOOP;
    FOR v_obj IN
        SELECT t.oid::pg_catalog.regtype AS typ
        FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname LIKE 'aos\_%' AND t.typtype IN ('d', 'e') 
    LOOP
        EXECUTE pg_catalog.format('ALTER TYPE %s OWNER TO aos_owner', v_obj.typ);
    END LOOP;
END
$owner$;

-- aos_meta ---------------------------------------------------------------------------------------
GRANT USAGE ON SCHEMA aos_meta TO aos_app, aos_worker, aos_admin, aos_analytics;
GRANT SELECT ON aos_meta.installed_version, aos_meta.llm_model_registry TO aos_app, aos_worker, aos_admin, aos_analytics;
GRANT INSERT, UPDATE, DELETE ON aos_meta.llm_model_registry TO aos_admin;
GRANT EXECUTE ON FUNCTION
    aos_meta.jsonb_deep_merge(jsonb, jsonb),
    aos_meta.resolve_model_params(uuid, jsonb, jsonb, jsonb),
    aos_meta.find_model(text, text)
  TO aos_app, aos_worker, aos_admin, aos_analytics;

-- Everyone who reads tenant tables needs the functions the policies call. They reveal only the
-- caller's own binding.
GRANT USAGE ON SCHEMA aos_auth, aos_persona, aos_skills, aos_core, aos_agent, aos_egress, aos_policy
    TO aos_app, aos_worker, aos_admin, aos_analytics;
GRANT EXECUTE ON FUNCTION
    aos_auth.current_tenant, aos_auth.current_principal, aos_auth.kernel_scope, aos_auth.is_platform_admin,
    aos_auth._session_tenant, aos_auth._session_principal, aos_auth._is_tenant_admin, aos_skills.shared_tenant,
    aos_agent._skill, aos_agent.step_summary,
    -- argument checks and error helpers used by the invoker-rights functions
    aos_auth._require_tenant, aos_core._check_text, aos_core._check_json, aos_core._check_id, aos_core._not_found,
    aos_agent.default_model_id, aos_agent._model_ref, aos_meta.resolve_model_params
  TO aos_app, aos_worker, aos_admin, aos_analytics;

-- aos_app: applications acting for their bound tenant ------------------------------------------
GRANT EXECUTE ON FUNCTION
    aos_auth.set_tenant, aos_auth.authenticate, aos_auth.clear_tenant,
    aos_auth.create_principal, aos_auth.grant_role, aos_auth.revoke_role, aos_auth.create_api_key, aos_auth.revoke_api_key,
    aos_persona.create_persona, aos_persona.get_effective_params,
    aos_agent.default_model_id, aos_agent.create_agent, aos_agent.update_agent, aos_agent.start_conversation, aos_agent.send_message,
    aos_agent.run_turn, aos_agent.record_response, aos_agent.record_thinking,
    aos_agent.process_tool_call(uuid, text, jsonb, uuid, text), aos_agent.process_tool_call(uuid, text, text, uuid, text),
    aos_agent.record_tool_result, aos_agent.complete_turn, aos_agent.fail_turn, aos_agent.cancel_turn,
    aos_agent.approve_step, aos_agent.bulk_approve_tools, aos_agent.inject_message, aos_agent.override_response,
    aos_agent.pause_conversation, aos_agent.resume_conversation, aos_agent.close_conversation,
    aos_agent.rate_turn, aos_agent.flag_issue, aos_agent.add_observation,
    aos_agent.get_turn_state, aos_agent.get_conversation_history, aos_agent.get_agent_analytics, aos_agent.get_hourly_activity,
    aos_agent.remember, aos_agent.recall, aos_agent.forget, aos_agent.step_summary, aos_agent.manual_lease,
    aos_core.verify_event_chain, aos_core.create_checkpoint, aos_core.verify_checkpoint, aos_core.event_hash,
    aos_core.json_sha256, aos_core.format_duration, aos_core.max_content_bytes, aos_meta.compute_cost
  TO aos_app;
GRANT SELECT ON
    aos_auth.tenant, aos_auth.principal, aos_auth.role_grant,
    aos_persona.persona, aos_skills.skill, aos_skills.skill_impl, aos_skills.role_skill,
    aos_core.run, aos_core.event_log, aos_core.checkpoint, aos_core.checkpoint_head,
    aos_egress.allowlist, aos_egress.request, aos_policy.policy_rule,
    aos_agent.agent, aos_agent.conversation, aos_agent.turn, aos_agent.step, aos_agent.approval, aos_agent.tool_execution,
    aos_agent.memory, aos_agent.observation, aos_agent.agent_hourly,
    aos_agent.realtime_steps, aos_agent.tool_call_queue, aos_agent.thinking_trace, aos_agent.conversation_timeline,
    aos_agent.agent_stats, aos_agent.dashboard_overview, aos_agent.error_log, aos_agent.turn_queue
  TO aos_app, aos_analytics;
GRANT SELECT (tenant_id, key_id, principal_id, name, key_prefix, created_at, expires_at, revoked_at) ON aos_auth.api_key TO aos_app;
-- The spec's Quick Start writes personas directly; skills, policies and allowlists are written
-- by tenant administrators (row-level security checks the role).
-- UPDATE is granted column by column and DELETE not at all: a table-level UPDATE or DELETE
-- privilege also allows LOCK TABLE ... IN ACCESS EXCLUSIVE MODE, with which any session of any
-- tenant could stop every other tenant's reads of these shared tables. Tenants switch rows off
-- instead (persona.is_active, skill.is_active, skill_impl.enabled, role_skill.allowed,
-- policy_rule.enabled) and remove allowlist entries with aos_egress.remove_allowlist_entry;
-- platform administrators may delete.
GRANT INSERT ON aos_persona.persona, aos_skills.skill, aos_skills.skill_impl, aos_skills.role_skill,
    aos_policy.policy_rule, aos_egress.allowlist TO aos_app;
DO $update$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY ARRAY['aos_persona.persona', 'aos_skills.skill', 'aos_skills.skill_impl', 'aos_skills.role_skill',
                                   'aos_policy.policy_rule', 'aos_egress.allowlist'] LOOP
        EXECUTE (SELECT pg_catalog.format('GRANT UPDATE (%s) ON %s TO aos_app',
                                          pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum), v_table)
                   FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = v_table::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> 'tenant_id');
    END LOOP;
END
$update$;
GRANT DELETE ON aos_persona.persona, aos_skills.skill, aos_skills.skill_impl, aos_skills.role_skill,
    aos_policy.policy_rule, aos_egress.allowlist TO aos_admin;
GRANT EXECUTE ON FUNCTION aos_egress.remove_allowlist_entry TO aos_app;

-- aos_admin: platform administrators (members of aos_app too) --------------------------------------
-- Column grants: the head of the tenant's event chain (event_seq, event_head) is written by the
-- kernel only; an administrator who could rewrite it could fork or truncate the tenant's chain.
GRANT INSERT (tenant_id, name, display_name, is_active, settings) ON aos_auth.tenant TO aos_admin;
GRANT UPDATE (name, display_name, is_active, settings) ON aos_auth.tenant TO aos_admin;
GRANT EXECUTE ON FUNCTION aos_auth.create_tenant, aos_agent.refresh_toolsets TO aos_admin;

-- aos_worker: only through the turns it leases ------------------------------------------------------
GRANT EXECUTE ON FUNCTION
    aos_agent.claim_turn, aos_agent.run_turn, aos_agent.refresh_turn, aos_agent.heartbeat, aos_agent.release_turn,
    aos_agent.record_response, aos_agent.record_thinking, aos_agent.begin_tool_execution,
    aos_agent.process_tool_call(uuid, text, jsonb, uuid, text), aos_agent.process_tool_call(uuid, text, text, uuid, text),
    aos_agent.record_tool_result, aos_agent.complete_turn, aos_agent.fail_turn,
    aos_agent.turn_memory_read, aos_agent.turn_memory_write, aos_meta.compute_cost, aos_core.json_sha256
  TO aos_worker;
GRANT EXECUTE ON FUNCTION aos_agent.claim_turn, aos_agent.heartbeat, aos_agent.release_turn, aos_agent.begin_tool_execution
  TO aos_admin;

-- aos_analytics: read-only ----------------------------------------------------------------------------
GRANT EXECUTE ON FUNCTION
    aos_auth.set_tenant, aos_auth.authenticate, aos_auth.clear_tenant,
    aos_agent.get_agent_analytics, aos_agent.get_hourly_activity, aos_agent.get_turn_state, aos_agent.get_conversation_history,
    aos_agent.step_summary, aos_core.verify_event_chain, aos_core.verify_checkpoint, aos_core.format_duration,
    aos_core.event_hash, aos_core.json_sha256
  TO aos_analytics;

-- ==================================================================================================
-- Runtime (issue 5): what workers need for tools (sql/functions/egress.sql, runtime.sql).
-- ==================================================================================================
GRANT EXECUTE ON FUNCTION
    aos_agent.turn_skills(uuid, uuid), aos_agent.bind_turn_tenant(uuid, uuid),
    aos_egress.check_host(uuid, uuid, text, text, text, text, integer, uuid), aos_egress.log_request(uuid, uuid, jsonb)
  TO aos_worker;
-- The sql_query tool runs the model's query after SET LOCAL ROLE aos_analytics, inside a read-only
-- transaction bound to the turn's tenant (aos_agent.bind_turn_tenant). Workers may switch to that
-- role but must not inherit its privileges: aos_worker does not inherit, so worker logins get
-- aos_worker's own privileges and can only SET ROLE aos_analytics (PostgreSQL 15 and later).
-- Only when needed: ALTER ROLE rewrites the role's row in the cluster-wide catalog without a row
-- lock, so two installs into two databases of one cluster at once failed with "tuple concurrently
-- updated" when both altered it (seen in the test suite).
DO $member$
BEGIN
    IF (SELECT r.rolinherit FROM pg_catalog.pg_roles r WHERE r.rolname = 'aos_worker') THEN
        ALTER ROLE aos_worker NOINHERIT;
    END IF;
    IF NOT pg_catalog.pg_has_role('aos_worker', 'aos_analytics', 'MEMBER') THEN
        GRANT aos_analytics TO aos_worker;
    END IF;
END
$member$;

-- the tenant's stream channel, for watchers (workers get it in the turn context)
GRANT EXECUTE ON FUNCTION aos_agent.stream_channel() TO aos_app, aos_analytics;

-- what the verifiers (invoker rights) call
GRANT EXECUTE ON FUNCTION aos_core._checkpoint_entries TO aos_app, aos_analytics;
