-- pgAgentOS kernel — what the runtime's workers need beyond the agent loop: how the tools of a
-- turn are implemented, and a read-only tenant binding for the sql_query tool.

-- _agent_toolset: an agent's granted tools, for the model and for the worker (both in the turn
-- context, so that a worker needs no second call after its claim).
CREATE FUNCTION aos_agent._agent_toolset(p_tenant_id uuid, p_agent_id uuid, OUT tools jsonb, OUT skills jsonb)
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    -- One statement, joined directly (no calls of _skill/_role_skill: SQL functions called per
    -- row are planned on every call, which made this the costliest part of a claim). PL/pgSQL so
    -- that the plan is kept for the session. A tool counts when the tenant sees an active skill
    -- under its name (its own, else the shared one) and the agent's role is granted it.
    SELECT coalesce(jsonb_agg(jsonb_build_object('type', 'function', 'function',
               jsonb_build_object('name', s.skill_key, 'description', s.description, 'parameters', s.input_schema))
               ORDER BY o.ord), '[]'),
           coalesce(jsonb_agg(jsonb_build_object(
               'skill_key', s.skill_key, 'impl_type', i.impl_type, 'config', coalesce(i.config, '{}'),
               'idempotent', s.idempotent, 'timeout_ms', s.timeout_ms, 'risk_level', s.risk_level,
               'input_schema', s.input_schema) ORDER BY o.ord), '[]')
      INTO tools, skills
      FROM aos_agent.agent a
     CROSS JOIN LATERAL unnest(a.tools) WITH ORDINALITY o(key, ord)
      JOIN LATERAL (SELECT x.tenant_id, x.skill_key, x.description, x.input_schema, x.idempotent, x.timeout_ms, x.risk_level
                      FROM aos_skills.skill x
                     WHERE x.tenant_id IN (p_tenant_id, aos_skills.shared_tenant()) AND x.skill_key = o.key AND x.is_active
                     ORDER BY (x.tenant_id = p_tenant_id) DESC LIMIT 1) s ON true
      JOIN LATERAL (SELECT y.allowed FROM aos_skills.role_skill y
                     WHERE y.tenant_id IN (p_tenant_id, aos_skills.shared_tenant()) AND y.role_key = a.role_key AND y.skill_key = o.key
                     ORDER BY (y.tenant_id = p_tenant_id) DESC LIMIT 1) g ON g.allowed
      LEFT JOIN LATERAL (SELECT x.impl_type, x.config FROM aos_skills.skill_impl x
                          WHERE x.tenant_id = s.tenant_id AND x.skill_key = s.skill_key AND x.enabled
                          ORDER BY x.version DESC LIMIT 1) i ON true
     WHERE a.tenant_id = p_tenant_id AND a.agent_id = p_agent_id;
END
$$;
COMMENT ON FUNCTION aos_agent._agent_toolset(uuid, uuid) IS
    'Internal: an agent''s granted tools, as JSON-Schema functions for the model (tools) and with their implementations for the worker (skills: skill, impl_type, config, idempotency, timeout, risk, schema).';

CREATE FUNCTION aos_agent._agent_skills(p_tenant_id uuid, p_agent_id uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN (aos_agent._agent_toolset(p_tenant_id, p_agent_id)).skills;
END
$$;
COMMENT ON FUNCTION aos_agent._agent_skills(uuid, uuid) IS 'Internal: the implementations of an agent''s granted tools (skill, impl_type, config, idempotency, timeout, risk, schema).';

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
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    PERFORM aos_core._check_id(p_lease_token, 'lease token');
    SELECT * INTO v_target FROM aos_agent._lease_target(p_turn_id, p_lease_token);
    RETURN aos_agent._agent_skills(v_target.tenant_id, v_target.agent_id);
END
$$;
COMMENT ON FUNCTION aos_agent.turn_skills(uuid, uuid) IS
    'A worker reads how the tools of the turn it holds are implemented: skill key, impl_type and config (the latest enabled version), idempotency, timeout, risk and JSON Schema. Definer rights: skills are tenant rows the worker role cannot read; the lease token names the tenant.';

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
    'Binds the current read-only transaction to the tenant of the turn a worker holds (for the sql_query tool); returns the tenant id. Definer rights: the binding is signed with the kernel secret, which only the owner reads.';

-- Streamed answer deltas go out on a channel per tenant whose name only the kernel can compute
-- (an HMAC of the tenant id with the kernel secret): LISTEN needs no privilege in PostgreSQL, so
-- a channel shared by all tenants would let any session read every tenant's answers as they
-- stream, and send fake ones. Workers get the name in the turn context; watchers of the bound
-- tenant from aos_agent.stream_channel().
CREATE FUNCTION aos_agent._stream_channel(p_tenant_id uuid)
RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT 'aos_stream_' || left(encode(aos_auth._hmac('aos-stream-v1|' || p_tenant_id::text), 'hex'), 40)
$$;
COMMENT ON FUNCTION aos_agent._stream_channel(uuid) IS 'Internal: the notification channel of a tenant''s streamed answers (owner-only: it reads the kernel secret).';

CREATE FUNCTION aos_agent.stream_channel()
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
BEGIN
    RETURN aos_agent._stream_channel(aos_auth._enter());
END
$$;
COMMENT ON FUNCTION aos_agent.stream_channel() IS
    'The channel on which workers stream the bound tenant''s answer deltas (LISTEN to it). Definer rights: the name is an HMAC with the kernel secret, so other tenants cannot compute it.';
