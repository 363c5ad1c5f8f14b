-- pgAgentOS kernel — what the runtime's workers need beyond the agent loop: how the tools of a
-- turn are implemented, and a read-only tenant binding for the sql_query tool.

-- _toolset_of: the granted tools of an agent with these tools and this role, for the model and
-- for the worker (both in the turn context, so that a worker needs no second call after its claim).
CREATE FUNCTION aos_agent._toolset_of(p_tenant_id uuid, p_tools text[], p_role_key text, OUT tools jsonb, OUT skills jsonb)
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    -- One statement, joined directly (no calls of _skill/_role_skill: SQL functions called per
    -- row are planned on every call). PL/pgSQL so that the plan is kept for the session. A tool
    -- counts when the tenant sees an active skill under its name (its own, else the shared one)
    -- and the role is granted it.
    SELECT coalesce(jsonb_agg(jsonb_build_object('type', 'function', 'function',
               jsonb_build_object('name', s.skill_key, 'description', s.description, 'parameters', s.input_schema))
               ORDER BY o.ord), '[]'),
           coalesce(jsonb_agg(jsonb_build_object(
               'skill_key', s.skill_key, 'impl_type', i.impl_type, 'config', coalesce(i.config, '{}'),
               'idempotent', s.idempotent, 'timeout_ms', s.timeout_ms, 'risk_level', s.risk_level,
               'input_schema', s.input_schema) ORDER BY o.ord), '[]')
      INTO tools, skills
      FROM unnest(p_tools) WITH ORDINALITY o(key, ord)
      JOIN LATERAL (SELECT x.tenant_id, x.skill_key, x.description, x.input_schema, x.idempotent, x.timeout_ms, x.risk_level
                      FROM aos_skills.skill x
                     WHERE x.tenant_id IN (p_tenant_id, aos_skills.shared_tenant()) AND x.skill_key = o.key AND x.is_active
                     ORDER BY (x.tenant_id = p_tenant_id) DESC LIMIT 1) s ON true
      JOIN LATERAL (SELECT y.allowed FROM aos_skills.role_skill y
                     WHERE y.tenant_id IN (p_tenant_id, aos_skills.shared_tenant()) AND y.role_key = p_role_key AND y.skill_key = o.key
                     ORDER BY (y.tenant_id = p_tenant_id) DESC LIMIT 1) g ON g.allowed
      LEFT JOIN LATERAL (SELECT x.impl_type, x.config FROM aos_skills.skill_impl x
                          WHERE x.tenant_id = s.tenant_id AND x.skill_key = s.skill_key AND x.enabled
                          ORDER BY x.version DESC LIMIT 1) i ON true;
END
$$;
COMMENT ON FUNCTION aos_agent._toolset_of(uuid, text[], text) IS
    'Internal: the granted tools of an agent with these tools and this role, as JSON-Schema functions for the model (tools) and with their implementations for the worker (skills: skill, impl_type, config, idempotency, timeout, risk, schema).';

-- _toolset_lock: the advisory lock key under which toolsets are computed (shared) and the
-- catalogue's changes refresh them (exclusive).
CREATE FUNCTION aos_agent._toolset_lock()
RETURNS bigint
LANGUAGE sql IMMUTABLE
AS $$
    SELECT 7402361580029113601::bigint
$$;
COMMENT ON FUNCTION aos_agent._toolset_lock() IS 'Internal: the advisory lock key of toolset maintenance.';

-- _agent_keep_toolset: every write of an agent row sets its toolset from its tools and role and the
-- skill catalogue as they are now; a value a writer passes is never kept (the worker runs the
-- implementations it lists). A reload (row security off: pg_restore, a dump fed to psql) leaves it
-- NULL: the catalogue may not be loaded yet, or differ from the dumped one; claims then build the
-- tools on every call until the agent is written again (aos_agent.refresh_toolsets does all).
-- The shared advisory lock pairs with the exclusive one of _skills_changed: a skill change and an
-- agent write never both work from a catalogue that misses the other.
CREATE FUNCTION aos_agent._agent_keep_toolset()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_set record;
BEGIN
    IF current_setting('row_security') = 'off' THEN
        NEW.toolset := NULL;
        RETURN NEW;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(aos_agent._toolset_lock());
    SELECT t.tools, t.skills INTO v_set FROM aos_agent._toolset_of(NEW.tenant_id, NEW.tools, NEW.role_key) t;
    NEW.toolset := jsonb_build_object('tools', v_set.tools, 'skills', v_set.skills);
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION aos_agent._agent_keep_toolset() IS 'Trigger: an agent row''s toolset is computed from its tools, its role and the skill catalogue, never taken from the writer.';
CREATE TRIGGER agent_keep_toolset BEFORE INSERT OR UPDATE ON aos_agent.agent
    FOR EACH ROW EXECUTE FUNCTION aos_agent._agent_keep_toolset();

-- _skills_changed: a skill, an implementation or a role grant changed: the agents that list the
-- skill (of that tenant; of every tenant for the shared catalogue) compute their toolset again.
CREATE FUNCTION aos_agent._skills_changed()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = 'all'
AS $$
DECLARE
    v_tenant uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.tenant_id ELSE NEW.tenant_id END;
    v_keys   text[] := ARRAY[CASE WHEN TG_OP <> 'INSERT' THEN OLD.skill_key END, CASE WHEN TG_OP <> 'DELETE' THEN NEW.skill_key END];
BEGIN
    IF current_setting('row_security') = 'off' THEN
        RETURN NULL;  -- a reload: the agents come with their toolsets
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.tenant_id <> NEW.tenant_id THEN
        v_tenant := aos_skills.shared_tenant();  -- (moved between tenants: refresh everyone who might list it)
    END IF;
    -- (after the lock, the UPDATE's snapshot sees every agent written before it)
    PERFORM pg_advisory_xact_lock(aos_agent._toolset_lock());
    IF v_tenant = aos_skills.shared_tenant() THEN
        UPDATE aos_agent.agent a SET toolset = NULL WHERE a.tools && v_keys;
    ELSE
        UPDATE aos_agent.agent a SET toolset = NULL WHERE a.tenant_id = v_tenant AND a.tools && v_keys;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION aos_agent._skills_changed() IS
    'Trigger: agents that list a changed skill compute their toolset again. Definer rights: a tenant administrator who changes a skill may not write agent rows, and a change of the shared catalogue reaches the agents of every tenant (kernel scope).';
CREATE TRIGGER skill_refresh_toolsets AFTER INSERT OR UPDATE OR DELETE ON aos_skills.skill
    FOR EACH ROW EXECUTE FUNCTION aos_agent._skills_changed();
CREATE TRIGGER skill_impl_refresh_toolsets AFTER INSERT OR UPDATE OR DELETE ON aos_skills.skill_impl
    FOR EACH ROW EXECUTE FUNCTION aos_agent._skills_changed();
CREATE TRIGGER role_skill_refresh_toolsets AFTER INSERT OR UPDATE OR DELETE ON aos_skills.role_skill
    FOR EACH ROW EXECUTE FUNCTION aos_agent._skills_changed();

-- refresh_toolsets: after a reload (pg_restore), agents carry no kept toolset and claims build it
-- on every call; this computes them all again. SECURITY DEFINER because agent rows are written
-- only by the kernel.
CREATE FUNCTION aos_agent.refresh_toolsets()
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = 'all'
AS $$
DECLARE
    v_count integer;
BEGIN
    IF NOT aos_auth.is_platform_admin() THEN
        RAISE EXCEPTION 'only platform administrators refresh every agent''s tools'
            USING ERRCODE = '42501', HINT = 'Connect as a member of aos_admin.';
    END IF;
    UPDATE aos_agent.agent a SET toolset = NULL;  -- the trigger computes each one
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;
COMMENT ON FUNCTION aos_agent.refresh_toolsets() IS
    'Computes every agent''s kept tools again (after a pg_restore, which leaves them empty and makes claims build them on every call); returns how many agents. Definer rights: agent rows are written only by the kernel, across tenants (kernel scope); only platform administrators may call it.';

CREATE FUNCTION aos_agent._agent_skills(p_tenant_id uuid, p_agent_id uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    -- the agent's kept tools (built when a reload left them empty)
    RETURN coalesce((SELECT coalesce(a.toolset -> 'skills', (aos_agent._toolset_of(a.tenant_id, a.tools, a.role_key)).skills)
                       FROM aos_agent.agent a WHERE a.tenant_id = p_tenant_id AND a.agent_id = p_agent_id), '[]');
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
