-- pgAgentOS kernel — managing tenants, principals, roles, API keys and personas.
-- Definer functions here write tables no client role may write directly (keys, grants) and check
-- the caller themselves: a platform administrator, or an admin principal of the bound tenant.

-- The caller may administer the bound tenant: a platform administrator, or a principal holding
-- the admin role there.
CREATE FUNCTION aos_auth._is_tenant_admin(p_tenant_id uuid)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT aos_auth.is_platform_admin()
        OR EXISTS (SELECT 1 FROM aos_auth.role_grant g
                    WHERE g.tenant_id = p_tenant_id AND g.principal_id = aos_auth.current_principal()
                      AND g.role_key = 'admin' AND (g.expires_at IS NULL OR g.expires_at > now()))
$$;
COMMENT ON FUNCTION aos_auth._is_tenant_admin(uuid) IS 'Internal: the caller is a platform administrator or an admin principal of the tenant.';

CREATE FUNCTION aos_auth._require_tenant_admin(p_tenant_id uuid)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT aos_auth._is_tenant_admin(p_tenant_id) THEN
        RAISE EXCEPTION 'only an administrator of tenant % may do this', p_tenant_id
            USING ERRCODE = 'AO011', HINT = 'Use an administrator login, or a principal with the admin role in this tenant.';
    END IF;
END
$$;
COMMENT ON FUNCTION aos_auth._require_tenant_admin(uuid) IS 'Internal: raises AO011 unless the caller administers the tenant.';

-- create_tenant: platform administrators only. SECURITY DEFINER so that the tenant's first event
-- can be chained; it checks the caller itself.
CREATE FUNCTION aos_auth.create_tenant(p_name text, p_display_name text DEFAULT NULL, p_settings jsonb DEFAULT '{}')
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_id uuid := gen_random_uuid();
BEGIN
    IF NOT aos_auth.is_platform_admin() THEN
        RAISE EXCEPTION 'only platform administrators create tenants'
            USING ERRCODE = 'AO011', HINT = 'Connect with a login that is a member of aos_admin.';
    END IF;
    PERFORM aos_core._check_text(p_name, 'tenant name', 63);
    PERFORM aos_core._check_json(coalesce(p_settings, '{}'), 'settings', 'object', 65536);
    IF p_name !~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$' THEN
        RAISE EXCEPTION 'tenant name % is not valid', p_name
            USING ERRCODE = '22023', HINT = 'Use letters, digits, _ . - (up to 63 characters), starting with a letter or digit.';
    END IF;
    PERFORM aos_auth._act_as(v_id);
    BEGIN
        INSERT INTO aos_auth.tenant (tenant_id, name, display_name, settings)
        VALUES (v_id, p_name, p_display_name, coalesce(p_settings, '{}'));
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'a tenant named % exists already', p_name USING ERRCODE = 'AO012', HINT = 'Choose another name.';
    END;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION aos_auth.create_tenant(text, text, jsonb) IS 'Creates a tenant (platform administrators only); returns its id. Definer rights: the new tenant''s first event is chained by the kernel; it checks that the caller is a platform administrator.';

-- create_principal: SECURITY DEFINER because principals map logins to tenants (what set_tenant
-- trusts), so only administrators of the tenant may create them; checked here.
CREATE FUNCTION aos_auth.create_principal(
    p_tenant_id uuid, p_principal_type text, p_name text, p_db_role_name name DEFAULT NULL,
    p_email text DEFAULT NULL, p_roles text[] DEFAULT '{}', p_metadata jsonb DEFAULT '{}')
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid := aos_auth._enter();
    v_id     uuid := gen_random_uuid();
    v_role   text;
BEGIN
    PERFORM aos_core._check_id(p_tenant_id, 'tenant id');
    IF p_tenant_id <> v_tenant THEN
        RAISE EXCEPTION 'tenant % is not the tenant bound to this session', p_tenant_id
            USING ERRCODE = 'AO011', HINT = 'Bind that tenant first with aos_auth.set_tenant.';
    END IF;
    PERFORM aos_auth._require_tenant_admin(v_tenant);
    PERFORM aos_core._check_text(p_name, 'principal name', 200);
    IF p_principal_type IS NULL OR p_principal_type NOT IN ('human', 'agent', 'service', 'admin') THEN
        RAISE EXCEPTION 'principal type must be human, agent, service or admin, not %', coalesce(p_principal_type, 'NULL')
            USING ERRCODE = '22023', HINT = 'Pass one of human, agent, service, admin.';
    END IF;
    -- Mapping a login decides which tenant that login may bind (set_tenant): a decision about
    -- database accounts, which belong to the platform, not to one tenant's administrators.
    IF p_db_role_name IS NOT NULL AND NOT aos_auth.is_platform_admin() THEN
        RAISE EXCEPTION 'only platform administrators map logins to principals'
            USING ERRCODE = 'AO011', HINT = 'Create the principal without a login (use API keys), or ask a platform administrator.';
    END IF;
    IF p_db_role_name IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_db_role_name) THEN
        RAISE EXCEPTION 'login role % does not exist', p_db_role_name
            USING ERRCODE = '22023', HINT = 'Create the login first (CREATE ROLE ... LOGIN), or pass NULL.';
    END IF;
    IF p_db_role_name IS NOT NULL AND (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = p_db_role_name) THEN
        RAISE EXCEPTION 'login role % is a superuser or bypasses row-level security', p_db_role_name
            USING ERRCODE = '22023', HINT = 'Map principals to ordinary logins.';
    END IF;
    BEGIN
        INSERT INTO aos_auth.principal (tenant_id, principal_id, principal_type, name, email, db_role_name, metadata)
        VALUES (v_tenant, v_id, p_principal_type, p_name, p_email, p_db_role_name, coalesce(p_metadata, '{}'));
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'a principal named % (or mapped to login %) exists already', p_name, p_db_role_name
            USING ERRCODE = 'AO012', HINT = 'Choose another name or login.';
    END;
    FOREACH v_role IN ARRAY coalesce(p_roles, '{}') LOOP
        PERFORM aos_auth.grant_role(v_id, v_role);
    END LOOP;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION aos_auth.create_principal(uuid, text, text, name, text, text[], jsonb) IS
    'Creates a principal (human, agent, service, admin) in the bound tenant, optionally mapped to a login and with roles. Tenant administrators only. Definer rights: principals map logins to tenants, which is what set_tenant trusts; it checks that the caller administers the tenant (and maps logins only for platform administrators).';

-- grant_role / revoke_role: SECURITY DEFINER because role grants decide approvals and skill use;
-- tenant administrators only, checked here.
CREATE FUNCTION aos_auth.grant_role(p_principal_id uuid, p_role_key text, p_expires_at timestamptz DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid := aos_auth._enter();
BEGIN
    PERFORM aos_core._check_id(p_principal_id, 'principal id');
    PERFORM aos_auth._require_tenant_admin(v_tenant);
    IF p_role_key IS NULL OR p_role_key NOT IN ('admin', 'approver', 'operator', 'developer', 'auditor', 'agent', 'viewer', 'user') THEN
        RAISE EXCEPTION 'unknown role %', coalesce(p_role_key, 'NULL')
            USING ERRCODE = '22023', HINT = 'Roles: admin, approver, operator, developer, auditor, agent, viewer, user.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM aos_auth.principal WHERE tenant_id = v_tenant AND principal_id = p_principal_id) THEN
        PERFORM aos_core._not_found('principal', p_principal_id);
    END IF;
    INSERT INTO aos_auth.role_grant (tenant_id, principal_id, role_key, granted_by, expires_at)
    VALUES (v_tenant, p_principal_id, p_role_key, aos_auth.current_principal(), p_expires_at)
    ON CONFLICT (tenant_id, principal_id, role_key) DO UPDATE SET expires_at = EXCLUDED.expires_at;
    PERFORM aos_core._tenant_event(v_tenant, 'role.granted', p_principal_id, jsonb_build_object('role', p_role_key));
END
$$;
COMMENT ON FUNCTION aos_auth.grant_role(uuid, text, timestamptz) IS 'Grants a role to a principal of the bound tenant (tenant administrators only). Definer rights: role grants decide approvals and skill use and are not writable by clients; it checks that the caller administers the tenant.';

CREATE FUNCTION aos_auth.revoke_role(p_principal_id uuid, p_role_key text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid := aos_auth._enter();
    v_count  integer;
BEGIN
    PERFORM aos_core._check_id(p_principal_id, 'principal id');
    PERFORM aos_core._check_text(p_role_key, 'role', 20);
    PERFORM aos_auth._require_tenant_admin(v_tenant);
    DELETE FROM aos_auth.role_grant WHERE tenant_id = v_tenant AND principal_id = p_principal_id AND role_key = p_role_key;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count > 0 THEN
        PERFORM aos_core._tenant_event(v_tenant, 'role.revoked', p_principal_id, jsonb_build_object('role', p_role_key));
    END IF;
    RETURN v_count > 0;
END
$$;
COMMENT ON FUNCTION aos_auth.revoke_role(uuid, text) IS 'Revokes a role of a principal of the bound tenant; true if it was granted. Definer rights: role grants decide approvals and skill use and are not writable by clients; it checks that the caller administers the tenant.';

-- create_api_key: SECURITY DEFINER because api_key is not writable by clients; the secret is
-- returned once and only its SHA-256 is stored.
CREATE FUNCTION aos_auth.create_api_key(p_principal_id uuid, p_name text DEFAULT 'default', p_expires_at timestamptz DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid := aos_auth._enter();
    v_prefix text := substr(replace(gen_random_uuid()::text, '-', ''), 1, 12);
    v_key    text;
    v_id     uuid := gen_random_uuid();
BEGIN
    PERFORM aos_core._check_id(p_principal_id, 'principal id');
    PERFORM aos_core._check_text(p_name, 'key name', 200);
    IF p_expires_at IS NOT NULL AND p_expires_at <= now() THEN
        RAISE EXCEPTION 'expiry % is in the past', p_expires_at USING ERRCODE = '22023', HINT = 'Pass a future time, or NULL for no expiry.';
    END IF;
    IF NOT (aos_auth._is_tenant_admin(v_tenant) OR p_principal_id = aos_auth.current_principal()) THEN
        RAISE EXCEPTION 'only an administrator, or the principal itself, may create its API keys'
            USING ERRCODE = 'AO011', HINT = 'Ask an administrator of the tenant.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM aos_auth.principal WHERE tenant_id = v_tenant AND principal_id = p_principal_id AND is_active) THEN
        PERFORM aos_core._not_found('principal', p_principal_id);
    END IF;
    v_key := 'aos_' || v_prefix || '_' || replace(gen_random_uuid()::text, '-', '') || substr(replace(gen_random_uuid()::text, '-', ''), 1, 16);
    INSERT INTO aos_auth.api_key (tenant_id, key_id, principal_id, name, key_prefix, key_hash, expires_at)
    VALUES (v_tenant, v_id, p_principal_id, p_name, v_prefix, sha256(convert_to(v_key, 'UTF8')), p_expires_at);
    PERFORM aos_core._tenant_event(v_tenant, 'api_key.created', v_id,
        jsonb_build_object('principal_id', p_principal_id, 'prefix', v_prefix, 'name', p_name));
    RETURN v_key;
END
$$;
COMMENT ON FUNCTION aos_auth.create_api_key(uuid, text, timestamptz) IS
    'Creates an API key for a principal of the bound tenant and returns it (the only time it is shown; the kernel keeps its SHA-256). Definer rights: API keys are not writable by clients; it checks the caller and stores only the key''s SHA-256.';

CREATE FUNCTION aos_auth.revoke_api_key(p_key_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid := aos_auth._enter();
    v_count  integer;
BEGIN
    PERFORM aos_core._check_id(p_key_id, 'key id');
    PERFORM aos_auth._require_tenant_admin(v_tenant);
    UPDATE aos_auth.api_key SET revoked_at = now() WHERE tenant_id = v_tenant AND key_id = p_key_id AND revoked_at IS NULL;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count > 0 THEN
        PERFORM aos_core._tenant_event(v_tenant, 'api_key.revoked', p_key_id, '{}');
    END IF;
    RETURN v_count > 0;
END
$$;
COMMENT ON FUNCTION aos_auth.revoke_api_key(uuid) IS 'Revokes an API key of the bound tenant; true if it was active. Definer rights: API keys are not writable by clients; it checks that the caller administers the tenant.';

-- remove_allowlist_entry: tenants hold no DELETE privilege on the allowlist (see grants.sql), so
-- its administrators remove entries here.
CREATE FUNCTION aos_egress.remove_allowlist_entry(p_allowlist_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid := aos_auth._enter();
    v_count  integer;
BEGIN
    PERFORM aos_core._check_id(p_allowlist_id, 'allowlist id');
    PERFORM aos_auth._require_tenant_admin(v_tenant);
    DELETE FROM aos_egress.allowlist WHERE tenant_id = v_tenant AND allowlist_id = p_allowlist_id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count > 0;
END
$$;
COMMENT ON FUNCTION aos_egress.remove_allowlist_entry(uuid) IS
    'Removes an entry of the bound tenant''s egress allowlist (tenant administrators); true if there was one. Definer rights: clients hold no DELETE privilege on the allowlist, because it would let them lock the table for every tenant; it checks that the caller administers the tenant.';

-- ---------------------------------------------------------------------------------------------
-- Personas
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION aos_persona.create_persona(
    p_name text, p_system_prompt text, p_traits jsonb DEFAULT '{}', p_model_id uuid DEFAULT NULL,
    p_override_params jsonb DEFAULT '{}', p_rules jsonb DEFAULT '[]')
RETURNS uuid
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_tenant uuid := aos_auth._require_tenant();
    v_id     uuid;
BEGIN
    PERFORM aos_core._check_text(p_name, 'persona name', 100);
    PERFORM aos_core._check_text(p_system_prompt, 'system prompt', 400000);
    PERFORM aos_core._check_json(coalesce(p_traits, '{}'), 'traits', 'object', 65536);
    PERFORM aos_core._check_json(coalesce(p_override_params, '{}'), 'override params', 'object', 65536);
    PERFORM aos_core._check_json(coalesce(p_rules, '[]'), 'rules', 'array', 65536);
    IF p_model_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM aos_meta.llm_model_registry WHERE model_id = p_model_id) THEN
        PERFORM aos_core._not_found('model', p_model_id);
    END IF;
    BEGIN
        INSERT INTO aos_persona.persona (tenant_id, name, system_prompt, traits, model_id, override_params, rules)
        VALUES (v_tenant, p_name, p_system_prompt, coalesce(p_traits, '{}'), p_model_id, coalesce(p_override_params, '{}'), coalesce(p_rules, '[]'))
        RETURNING persona_id INTO v_id;
    EXCEPTION
        WHEN unique_violation THEN
            RAISE EXCEPTION 'a persona named % exists already', p_name USING ERRCODE = 'AO012', HINT = 'Choose another name.';
        WHEN check_violation THEN
            RAISE EXCEPTION 'persona name % is not valid', p_name
                USING ERRCODE = '22023', HINT = 'Use letters, digits, space, _ . - (up to 100 characters).';
    END;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION aos_persona.create_persona(text, text, jsonb, uuid, jsonb, jsonb) IS
    'Creates a persona in the bound tenant (the same as INSERT INTO aos_persona.persona, with checks); returns its id.';

CREATE FUNCTION aos_persona.get_effective_params(p_persona_id uuid, p_model_id uuid DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_tenant  uuid := aos_auth._require_tenant();
    v_persona aos_persona.persona%ROWTYPE;
BEGIN
    PERFORM aos_core._check_id(p_persona_id, 'persona id');
    SELECT * INTO v_persona FROM aos_persona.persona WHERE tenant_id = v_tenant AND persona_id = p_persona_id;
    IF NOT FOUND THEN
        PERFORM aos_core._not_found('persona', p_persona_id);
    END IF;
    RETURN aos_meta.resolve_model_params(
        coalesce(p_model_id, v_persona.model_id, aos_agent.default_model_id(v_tenant)),
        v_persona.override_params
            || CASE WHEN v_persona.max_tokens_per_request IS NULL THEN '{}'::jsonb
                    ELSE jsonb_build_object('max_tokens', v_persona.max_tokens_per_request) END);
END
$$;
COMMENT ON FUNCTION aos_persona.get_effective_params(uuid, uuid) IS
    'The parameters a persona''s calls use: the model''s defaults merged with the persona''s overrides.';
