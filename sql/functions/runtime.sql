-- pgAgentOS kernel — what the runtime's workers need beyond the agent loop: how the tools of a
-- turn are implemented, and a read-only tenant binding for the sql_query tool.

-- turn_skills: SECURITY DEFINER because skills and their implementations are tenant tables the
-- worker role cannot read; the lease token names the turn (and so the tenant and agent).
CREATE FUNCTION aos_agent.turn_skills(p_turn_id uuid, p_lease_token uuid)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_target record;
    v_role   text;
    v_tools  text[];
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    PERFORM aos_core._check_id(p_lease_token, 'lease token');
    SELECT * INTO v_target FROM aos_agent._lease_target(p_turn_id, p_lease_token);
    PERFORM aos_auth._act_as(v_target.tenant_id);
    SELECT a.tools, a.role_key INTO v_tools, v_role
      FROM aos_agent.agent a WHERE a.tenant_id = v_target.tenant_id AND a.agent_id = v_target.agent_id;
    RETURN (
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'skill_key', s.skill_key, 'impl_type', i.impl_type, 'config', coalesce(i.config, '{}'),
                   'idempotent', s.idempotent, 'timeout_ms', s.timeout_ms, 'risk_level', s.risk_level,
                   'input_schema', s.input_schema) ORDER BY o.ord), '[]')
          FROM unnest(v_tools) WITH ORDINALITY o(key, ord)
          CROSS JOIN LATERAL aos_agent._skill(v_target.tenant_id, o.key) s
          LEFT JOIN LATERAL (SELECT x.impl_type, x.config FROM aos_skills.skill_impl x
                              WHERE x.tenant_id = s.tenant_id AND x.skill_key = s.skill_key AND x.enabled
                              ORDER BY x.version DESC LIMIT 1) i ON true
         WHERE s.skill_key IS NOT NULL
           AND coalesce((aos_agent._role_skill(v_target.tenant_id, v_role, o.key)).allowed, false));
END
$$;
COMMENT ON FUNCTION aos_agent.turn_skills(uuid, uuid) IS
    'A worker reads how the tools of the turn it holds are implemented: skill key, impl_type and config (the latest enabled version), idempotency, timeout, risk and JSON Schema.';

-- bind_turn_tenant: SECURITY DEFINER because it signs a tenant binding with the kernel secret.
-- It binds the current transaction (never the session) to the tenant of the turn the lease token
-- holds, and only inside a READ ONLY transaction: the sql_query tool then switches to
-- aos_analytics (SET LOCAL ROLE) and runs the model's query there, fenced by row-level security.
CREATE FUNCTION aos_agent.bind_turn_tenant(p_turn_id uuid, p_lease_token uuid)
RETURNS uuid
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
    IF current_setting('transaction_read_only') <> 'on' THEN
        RAISE EXCEPTION 'bind_turn_tenant works only in a read-only transaction'
            USING ERRCODE = 'AO011', HINT = 'Start the transaction with BEGIN TRANSACTION READ ONLY (or SET TRANSACTION READ ONLY) first.';
    END IF;
    v_tenant := (aos_agent._lease_target(p_turn_id, p_lease_token)).tenant_id;
    PERFORM aos_auth._bind(v_tenant, NULL, true);
    RETURN v_tenant;
END
$$;
COMMENT ON FUNCTION aos_agent.bind_turn_tenant(uuid, uuid) IS
    'Binds the current read-only transaction to the tenant of the turn a worker holds (for the sql_query tool); returns the tenant id.';
