-- PROTOTYPE, applied only to the bench's own throwaway cluster by `aos bench --prototype hot-path`,
-- to measure what the fixes proposed in docs/benchmarks.md ("What we found") would give. It is not
-- part of the kernel: the kernel's owners decide how to fix it in sql/.
--
-- 1. Internal helpers that only ever run inside SECURITY DEFINER kernel functions (which already pin
--    search_path) drop their own `SET search_path`: a SET clause costs a GUC save/restore on every
--    call and stops SQL functions from being inlined. None of them is SECURITY DEFINER, so a caller
--    who runs one directly only gets their own privileges.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure
          FROM pg_proc p
         WHERE p.pronamespace::regnamespace::text IN ('aos_core', 'aos_agent', 'aos_auth', 'aos_meta', 'aos_skills')
           AND NOT p.prosecdef
           AND p.proname IN ('compute_cost', 'event_hash', 'json_sha256', '_step_ref', '_insert_step', '_act_as', '_check_json',
                             '_check_text', '_check_id', '_actor', '_over_budget', '_usage', '_skill', '_role_skill', '_lease_target',
                             '_decide_tool', '_advance', '_respond', 'max_content_bytes', 'shared_tenant', '_conversation_event',
                             '_finish_turn', '_activate_next', '_start_run', '_turn_context', '_park', '_resume', '_settle')
    LOOP
        EXECUTE format('ALTER FUNCTION %s RESET search_path', f);
    END LOOP;
END
$$;

-- 2. The two functions every row-level security policy calls, written so that they can be inlined
--    without a SET clause: every function and operator schema-qualified, so that a caller's
--    search_path cannot change what they mean.
CREATE OR REPLACE FUNCTION aos_auth.current_tenant()
RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN CURRENT_USER OPERATOR(pg_catalog.=) 'aos_owner'::pg_catalog.name
             AND COALESCE(pg_catalog.current_setting('aos.kernel_tenant', true), '') OPERATOR(pg_catalog.<>) ''
            THEN pg_catalog.current_setting('aos.kernel_tenant')::pg_catalog.uuid
        ELSE aos_auth._session_tenant()
    END
$$;
ALTER FUNCTION aos_auth.current_tenant() RESET search_path;

CREATE OR REPLACE FUNCTION aos_auth.kernel_scope()
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CURRENT_USER OPERATOR(pg_catalog.=) 'aos_owner'::pg_catalog.name
       AND COALESCE(pg_catalog.current_setting('aos.kernel_scope', true), '') OPERATOR(pg_catalog.=) 'all'
$$;
ALTER FUNCTION aos_auth.kernel_scope() RESET search_path;

-- 3. step_summary: inlinable (it only formats what the caller may already read).
ALTER FUNCTION aos_agent.step_summary(text, jsonb) RESET search_path;

-- 4. realtime_steps: the LIMIT applies to the tenant's steps alone, so that the newest 100 come from
--    step_created_idx (tenant_id, created_at DESC) whatever the planner guesses about the size of
--    the bound tenant (an InitPlan parameter: it assumes an average tenant and, for a big one,
--    sorted all of its steps).
CREATE OR REPLACE VIEW aos_agent.realtime_steps WITH (security_invoker = true) AS
SELECT s.step_id, s.created_at, s.conversation_id, s.turn_id, t.turn_number, a.name AS agent_name,
       s.step_number, s.step_type, s.status, s.tool_name, aos_agent.step_summary(s.step_type, s.content) AS summary,
       s.tokens, s.content
  FROM (SELECT x.* FROM aos_agent.step x
         WHERE x.tenant_id = (SELECT aos_auth.current_tenant())
         ORDER BY x.created_at DESC, x.step_number DESC
         LIMIT 100) s
  JOIN aos_agent.turn t ON t.tenant_id = s.tenant_id AND t.turn_id = s.turn_id
  JOIN aos_agent.agent a ON a.tenant_id = t.tenant_id AND a.agent_id = t.agent_id
 ORDER BY s.created_at DESC, s.step_number DESC;

-- 5. tool_call_queue: the skill of each row by a plain lateral subquery instead of a call of
--    aos_agent._skill() per row (a function with a SET clause is executed, not inlined).
CREATE OR REPLACE VIEW aos_agent.tool_call_queue WITH (security_invoker = true) AS
SELECT s.step_id, s.created_at AS requested_at, now() - s.created_at AS waiting_for, s.conversation_id, s.turn_id,
       a.name AS agent_name, s.tool_name, s.content -> 'arguments' AS arguments, s.status,
       sk.risk_level, s.content #>> '{decision,reason}' AS reason, left(t.user_message, 200) AS user_message
  FROM aos_agent.step s
  JOIN aos_agent.turn t ON t.tenant_id = s.tenant_id AND t.turn_id = s.turn_id
  JOIN aos_agent.agent a ON a.tenant_id = t.tenant_id AND a.agent_id = t.agent_id
  LEFT JOIN LATERAL (SELECT k.risk_level FROM aos_skills.skill k
                      WHERE k.tenant_id IN (s.tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)
                        AND k.skill_key = s.tool_name AND k.is_active
                      ORDER BY (k.tenant_id = s.tenant_id) DESC
                      LIMIT 1) sk ON true
 WHERE s.tenant_id = (SELECT aos_auth.current_tenant())
   AND s.step_type = 'tool_call' AND s.status IN ('pending', 'needs_review')
 ORDER BY CASE sk.risk_level WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, s.created_at;
