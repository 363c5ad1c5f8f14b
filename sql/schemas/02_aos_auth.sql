-- pgAgentOS kernel — aos_auth: tenants, principals, role grants, API keys, and the tenant
-- binding of a session.
--
-- How a session gets a tenant (docs/security.md explains why):
--   * aos_auth.set_tenant(tenant) works for platform administrators (members of aos_admin, or
--     superusers) and for login roles mapped to an active principal of that tenant
--     (principal.db_role_name). Anyone else is refused (AO011).
--   * aos_auth.authenticate(api_key) binds the tenant and principal the key belongs to.
--   * The binding is three settings: aos.tenant_id, aos.principal_id and aos.binding, an
--     HMAC-SHA256 over them, the backend pid and start time and the session user, keyed with a secret only the
--     kernel owner can read. A client that sets aos.tenant_id itself gets no tenant: the
--     signature does not verify. No valid binding means no rows (policies compare to NULL).
--   * Inside kernel functions (SECURITY DEFINER, owned by aos_owner) the tenant is the one the
--     function established: aos.kernel_tenant, trusted only while current_user is aos_owner, and
--     reset on entry to every definer function by its SET clause (the catalog lint checks this).

CREATE SCHEMA aos_auth;
COMMENT ON SCHEMA aos_auth IS 'pgAgentOS tenancy: tenants, principals, role grants, API keys, session binding.';

-- ---------------------------------------------------------------------------------------------
-- The kernel secret: 64 random bytes, stored as its HMAC inner and outer pads so that HMAC-SHA256
-- needs only the built-in sha256(). Readable by aos_owner only (no grants).
-- ---------------------------------------------------------------------------------------------
CREATE TABLE aos_auth.kernel_secret (
    singleton  boolean     NOT NULL DEFAULT true,
    ipad_key   bytea       NOT NULL,
    opad_key   bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT kernel_secret_pkey PRIMARY KEY (singleton),
    CONSTRAINT kernel_secret_singleton_check CHECK (singleton),
    CONSTRAINT kernel_secret_length_check CHECK (length(ipad_key) = 64 AND length(opad_key) = 64)
);
COMMENT ON TABLE aos_auth.kernel_secret IS 'Key of the session-binding HMAC (as inner/outer pads). Owner-only.';

DO $secret$
DECLARE
    v_key  bytea := uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())
                 || uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid());
    v_ipad bytea := v_key;
    v_opad bytea := v_key;
    i      integer;
BEGIN
    FOR i IN 0..63 LOOP
        v_ipad := set_byte(v_ipad, i, get_byte(v_key, i) # 54);  -- 0x36
        v_opad := set_byte(v_opad, i, get_byte(v_key, i) # 92);  -- 0x5c
    END LOOP;
    INSERT INTO aos_auth.kernel_secret (ipad_key, opad_key) VALUES (v_ipad, v_opad);
END
$secret$;

-- ---------------------------------------------------------------------------------------------
-- Tenants, principals, role grants, API keys.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE aos_auth.tenant (
    tenant_id    uuid        NOT NULL DEFAULT gen_random_uuid(),
    name         text        NOT NULL,
    display_name text,
    is_active    boolean     NOT NULL DEFAULT true,
    settings     jsonb       NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- head of the tenant's event chain (events not tied to a conversation)
    event_seq    bigint      NOT NULL DEFAULT 0,
    event_head   bytea       NOT NULL DEFAULT '\x',
    CONSTRAINT tenant_pkey PRIMARY KEY (tenant_id),
    CONSTRAINT tenant_name_key UNIQUE (name),
    CONSTRAINT tenant_name_check CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    CONSTRAINT tenant_display_name_check CHECK (length(display_name) <= 200),
    CONSTRAINT tenant_settings_check CHECK (jsonb_typeof(settings) = 'object'),
    -- the shared skill catalogue's id (aos_skills.shared_tenant()) is nobody's tenant
    CONSTRAINT tenant_not_shared_check CHECK (tenant_id <> '00000000-0000-0000-0000-000000000000')
) WITH (fillfactor = 80);
COMMENT ON TABLE aos_auth.tenant IS 'Tenants: every tenant-owned row carries a tenant_id and is fenced by row-level security.';
COMMENT ON COLUMN aos_auth.tenant.settings IS 'Tenant settings, e.g. {"daily_cost_budget_usd": 50}.';

CREATE TABLE aos_auth.principal (
    tenant_id      uuid        NOT NULL,
    principal_id   uuid        NOT NULL DEFAULT gen_random_uuid(),
    principal_type text        NOT NULL,
    name           text        NOT NULL,
    email          text,
    db_role_name   name,
    metadata       jsonb       NOT NULL DEFAULT '{}',
    is_active      boolean     NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT principal_pkey PRIMARY KEY (tenant_id, principal_id),
    CONSTRAINT principal_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES aos_auth.tenant (tenant_id),
    CONSTRAINT principal_name_key UNIQUE (tenant_id, name),
    CONSTRAINT principal_type_check CHECK (principal_type IN ('human', 'agent', 'service', 'admin')),
    CONSTRAINT principal_name_check CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    CONSTRAINT principal_metadata_check CHECK (jsonb_typeof(metadata) = 'object')
);
CREATE UNIQUE INDEX principal_db_role_name_key ON aos_auth.principal (db_role_name) WHERE db_role_name IS NOT NULL;
CREATE UNIQUE INDEX principal_id_key ON aos_auth.principal (principal_id);
COMMENT ON TABLE aos_auth.principal IS 'Who acts in a tenant: humans, agents, services, admins. db_role_name maps a login role to the principal.';

CREATE TABLE aos_auth.role_grant (
    tenant_id    uuid        NOT NULL,
    principal_id uuid        NOT NULL,
    role_key     text        NOT NULL,
    granted_by   uuid,
    expires_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT role_grant_pkey PRIMARY KEY (tenant_id, principal_id, role_key),
    CONSTRAINT role_grant_principal_fkey FOREIGN KEY (tenant_id, principal_id)
        REFERENCES aos_auth.principal (tenant_id, principal_id) ON DELETE CASCADE,
    CONSTRAINT role_grant_role_key_check
        CHECK (role_key IN ('admin', 'approver', 'operator', 'developer', 'auditor', 'agent', 'viewer', 'user'))
);
COMMENT ON TABLE aos_auth.role_grant IS 'Roles of principals in their tenant: admin and approver may decide tool calls; role_skill maps roles to skills.';

CREATE TABLE aos_auth.api_key (
    tenant_id    uuid        NOT NULL,
    key_id       uuid        NOT NULL DEFAULT gen_random_uuid(),
    principal_id uuid        NOT NULL,
    name         text        NOT NULL,
    key_prefix   text        NOT NULL,
    key_hash     bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    CONSTRAINT api_key_pkey PRIMARY KEY (tenant_id, key_id),
    CONSTRAINT api_key_principal_fkey FOREIGN KEY (tenant_id, principal_id)
        REFERENCES aos_auth.principal (tenant_id, principal_id) ON DELETE CASCADE,
    CONSTRAINT api_key_hash_check CHECK (length(key_hash) = 32)
);
CREATE UNIQUE INDEX api_key_prefix_key ON aos_auth.api_key (key_prefix);
COMMENT ON TABLE aos_auth.api_key IS 'API keys of principals. Only the SHA-256 of the secret is stored; the key is shown once, when created.';

-- ---------------------------------------------------------------------------------------------
-- HMAC-SHA256 with the kernel secret (RFC 2104 with precomputed pads).
-- ---------------------------------------------------------------------------------------------
-- PL/pgSQL rather than SQL here and in _binding_message: a SQL function whose body has a FROM
-- clause or a subquery is not inlined, and PostgreSQL parses and plans it again in every
-- transaction that verifies a binding (that is, in every transaction of an application session).
CREATE FUNCTION aos_auth._hmac(p_message text)
RETURNS bytea
LANGUAGE plpgsql STABLE STRICT
AS $$
DECLARE
    v_mac bytea;
BEGIN
    SELECT sha256(s.opad_key || sha256(s.ipad_key || convert_to(p_message, 'UTF8'))) INTO v_mac
      FROM aos_auth.kernel_secret s;
    RETURN v_mac;
END
$$;
COMMENT ON FUNCTION aos_auth._hmac(text) IS 'Internal: HMAC-SHA256 of a message with the kernel secret (owner-only).';

-- The backend's start time is signed with its pid, so that a binding copied out of a session
-- that has ended is worthless in a later backend that happens to get the same pid.
CREATE FUNCTION aos_auth._binding_message(p_tenant text, p_principal text)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
AS $$
BEGIN
    RETURN concat_ws('|', 'aos-binding-v2', p_tenant, coalesce(p_principal, ''), pg_backend_pid()::text,
                     (SELECT (extract(epoch FROM a.backend_start) * 1000000)::bigint::text
                        FROM pg_stat_get_activity(pg_backend_pid()) a),
                     session_user::text);
END
$$;
COMMENT ON FUNCTION aos_auth._binding_message(text, text) IS
    'Internal: what the session binding signs (tenant, principal, backend pid and start time, session user).';

-- _session_tenant: the verified tenant of the session binding, or NULL.
-- SECURITY DEFINER because it reads the kernel secret, which no client role may read.
CREATE FUNCTION aos_auth._session_tenant()
RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant    text := nullif(current_setting('aos.tenant_id', true), '');
    v_principal text := nullif(current_setting('aos.principal_id', true), '');
    v_sig       text := nullif(current_setting('aos.binding', true), '');
BEGIN
    IF v_tenant IS NULL OR v_sig IS NULL THEN
        RETURN NULL;
    END IF;
    IF encode(aos_auth._hmac(aos_auth._binding_message(v_tenant, v_principal)), 'hex') <> v_sig THEN
        RETURN NULL;
    END IF;
    -- Only text the kernel signed gets here, and it signs a uuid's text: the cast cannot fail.
    -- (No EXCEPTION block: it would start a subtransaction in every statement, and those are
    -- not allowed in parallel queries.)
    RETURN v_tenant::uuid;
END
$$;
COMMENT ON FUNCTION aos_auth._session_tenant() IS
    'Internal: the tenant bound by set_tenant/authenticate if its signature verifies, else NULL. Definer rights: it reads the kernel secret.';

-- current_tenant: the tenant every policy compares with. Inside kernel functions it is the tenant
-- the function established; everywhere else the verified session binding.
-- PARALLEL RESTRICTED: the binding is checked against the backend's pid, which a parallel worker
-- does not share; policies call it as an InitPlan, which the leader runs, so plans stay parallel.
-- No SET clause, so that PostgreSQL can inline it (it runs in every statement of the hot path);
-- instead every name in it is schema-qualified, operators included, so that a caller's
-- search_path cannot change what it means. Without a binding it does not even call the verifier.
CREATE FUNCTION aos_auth.current_tenant()
RETURNS uuid
LANGUAGE sql STABLE PARALLEL RESTRICTED
AS $$
    SELECT CASE
        WHEN CURRENT_USER OPERATOR(pg_catalog.=) 'aos_owner'::pg_catalog.name
             AND pg_catalog.current_setting('aos.kernel_tenant', true) OPERATOR(pg_catalog.<>) ''
            THEN pg_catalog.current_setting('aos.kernel_tenant')::pg_catalog.uuid
        WHEN COALESCE(pg_catalog.current_setting('aos.binding', true), '') OPERATOR(pg_catalog.=) ''
            THEN NULL::pg_catalog.uuid
        ELSE aos_auth._session_tenant()
    END
$$;
COMMENT ON FUNCTION aos_auth.current_tenant() IS
    'The tenant bound to this session (aos_auth.set_tenant or authenticate), or NULL. A forged aos.tenant_id setting yields NULL.';

-- _session_principal: the verified principal of the binding, or NULL. Definer: reads the secret.
CREATE FUNCTION aos_auth._session_principal()
RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
BEGIN
    IF aos_auth._session_tenant() IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN nullif(current_setting('aos.principal_id', true), '')::uuid;
END
$$;
COMMENT ON FUNCTION aos_auth._session_principal() IS
    'Internal: the principal bound with the tenant, if the binding verifies. Definer rights: it reads the kernel secret.';

-- aos.kernel_principal is trusted only together with aos.kernel_tenant: every definer function
-- resets aos.kernel_tenant on entry, and the kernel writes both at once (_enter, _act_as), so a
-- value a client SET before calling a kernel function is never believed.
CREATE FUNCTION aos_auth.current_principal()
RETURNS uuid
LANGUAGE sql STABLE PARALLEL RESTRICTED
AS $$
    SELECT CASE
        WHEN CURRENT_USER OPERATOR(pg_catalog.=) 'aos_owner'::pg_catalog.name
             AND pg_catalog.current_setting('aos.kernel_tenant', true) OPERATOR(pg_catalog.<>) ''
             AND pg_catalog.current_setting('aos.kernel_principal', true) OPERATOR(pg_catalog.<>) ''
            THEN pg_catalog.current_setting('aos.kernel_principal')::pg_catalog.uuid
        WHEN COALESCE(pg_catalog.current_setting('aos.binding', true), '') OPERATOR(pg_catalog.=) ''
            THEN NULL::pg_catalog.uuid
        ELSE aos_auth._session_principal()
    END
$$;
COMMENT ON FUNCTION aos_auth.current_principal() IS 'The principal bound to this session, or NULL (for example an administrator bound with set_tenant).';

-- kernel_scope: true only inside the few kernel functions that must look across tenants (the
-- turn queue, lookups of a turn by its id). A client cannot get it: it needs current_user to be
-- aos_owner, which only definer functions are, and each of them resets the setting on entry.
CREATE FUNCTION aos_auth.kernel_scope()
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CURRENT_USER OPERATOR(pg_catalog.=) 'aos_owner'::pg_catalog.name
       AND COALESCE(pg_catalog.current_setting('aos.kernel_scope', true), '') OPERATOR(pg_catalog.=) 'all'
$$;
COMMENT ON FUNCTION aos_auth.kernel_scope() IS 'True only inside kernel functions that work across tenants (the turn queue); never for a client.';

-- is_platform_admin: the caller (the session's login, or the role it SET ROLE to) is a member of
-- aos_admin, or a superuser.
-- No SET clause, so that PostgreSQL inlines it (policies and claims call it; with a SET clause it
-- was parsed and planned on every call); every name in it is schema-qualified instead.
CREATE FUNCTION aos_auth.is_platform_admin()
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.pg_has_role(CASE WHEN CURRENT_USER OPERATOR(pg_catalog.=) 'aos_owner'::pg_catalog.name
                                       THEN SESSION_USER ELSE CURRENT_USER END, 'aos_admin', 'MEMBER')
$$;
COMMENT ON FUNCTION aos_auth.is_platform_admin() IS 'True for members of aos_admin and superusers (the calling login, not a function owner).';

-- _require_tenant: the bound tenant, or AO001. Used first thing by kernel functions.
CREATE FUNCTION aos_auth._require_tenant()
RETURNS uuid
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_tenant uuid := aos_auth.current_tenant();
BEGIN
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION 'no tenant is bound to this session'
            USING ERRCODE = 'AO001',
                  HINT = 'Call aos_auth.set_tenant(tenant_id) (administrators, mapped logins) or aos_auth.authenticate(api_key) first.';
    END IF;
    RETURN v_tenant;
END
$$;
COMMENT ON FUNCTION aos_auth._require_tenant() IS 'Internal: the bound tenant, or error AO001.';

-- _enter: first statement of a kernel function acting for the session's tenant. Pins the
-- verified tenant (and principal) for the rest of the function, so that later statements do not
-- verify the signature again. The function's SET clause restores both on exit.
CREATE FUNCTION aos_auth._enter()
RETURNS uuid
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_tenant    uuid := aos_auth._require_tenant();
    v_principal uuid := aos_auth.current_principal();
BEGIN
    PERFORM set_config('aos.kernel_tenant', v_tenant::text, true);
    PERFORM set_config('aos.kernel_principal', coalesce(v_principal::text, ''), true);
    RETURN v_tenant;
END
$$;
COMMENT ON FUNCTION aos_auth._enter() IS 'Internal: pins the verified tenant for the running kernel function (restored on its exit).';

-- _act_as: inside a kernel function, act for a tenant found through a checked path (a turn the
-- caller holds the lease of, a tenant an administrator bound).
CREATE FUNCTION aos_auth._act_as(p_tenant_id uuid, p_principal_id uuid DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    PERFORM set_config('aos.kernel_tenant', p_tenant_id::text, true);
    PERFORM set_config('aos.kernel_principal', coalesce(p_principal_id::text, ''), true);
END
$$;
COMMENT ON FUNCTION aos_auth._act_as(uuid, uuid) IS 'Internal: sets the tenant a kernel function acts for (restored on its exit).';

-- ---------------------------------------------------------------------------------------------
-- set_tenant / authenticate / clear_tenant
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION aos_auth._bind(p_tenant_id uuid, p_principal_id uuid, p_local boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    PERFORM set_config('aos.tenant_id', p_tenant_id::text, p_local);
    PERFORM set_config('aos.principal_id', coalesce(p_principal_id::text, ''), p_local);
    PERFORM set_config('aos.binding',
        encode(aos_auth._hmac(aos_auth._binding_message(p_tenant_id::text, p_principal_id::text)), 'hex'), p_local);
END
$$;
COMMENT ON FUNCTION aos_auth._bind(uuid, uuid, boolean) IS 'Internal: writes a signed session binding.';

-- set_tenant: SECURITY DEFINER because it signs the binding with the kernel secret and reads
-- tenants and principals across tenants; it checks the caller itself (admin or mapped login).
CREATE FUNCTION aos_auth.set_tenant(p_tenant_id uuid, p_local boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = 'all'
AS $$
DECLARE
    v_active    boolean;
    v_principal uuid;
BEGIN
    IF p_tenant_id IS NULL THEN
        RAISE EXCEPTION 'tenant id must not be null'
            USING ERRCODE = '22004', HINT = 'Pass the tenant_id of aos_auth.tenant; aos_auth.clear_tenant() unbinds.';
    END IF;
    SELECT is_active INTO v_active FROM aos_auth.tenant WHERE tenant_id = p_tenant_id;
    IF NOT aos_auth.is_platform_admin() THEN
        SELECT p.principal_id INTO v_principal
          FROM aos_auth.principal p
         WHERE p.db_role_name = session_user AND p.tenant_id = p_tenant_id AND p.is_active;
        IF v_principal IS NULL OR v_active IS NULL THEN
            RAISE EXCEPTION 'login % may not act for tenant %', session_user, p_tenant_id
                USING ERRCODE = 'AO011',
                      HINT = 'Use an API key (aos_auth.authenticate), a login mapped to a principal of that tenant, or an administrator login.';
        END IF;
    ELSIF v_active IS NULL THEN
        RAISE EXCEPTION 'tenant % does not exist', p_tenant_id
            USING ERRCODE = 'AO002', HINT = 'SELECT tenant_id, name FROM aos_auth.tenant lists the tenants.';
    END IF;
    IF NOT v_active THEN
        RAISE EXCEPTION 'tenant % is deactivated', p_tenant_id
            USING ERRCODE = 'AO013', HINT = 'An administrator can reactivate it: UPDATE aos_auth.tenant SET is_active = true.';
    END IF;
    PERFORM aos_auth._bind(p_tenant_id, v_principal, coalesce(p_local, false));
END
$$;
COMMENT ON FUNCTION aos_auth.set_tenant(uuid, boolean) IS
    'Binds the session (or, with p_local, the transaction) to a tenant. Allowed for administrators and for logins mapped to a principal of the tenant. Definer rights: it signs the binding with the kernel secret and reads principals across tenants; it checks the caller itself (platform administrator, or a login mapped to a principal of the tenant).';

-- authenticate: SECURITY DEFINER because it reads API keys across tenants (by the key's prefix)
-- and signs the binding; the key itself is the proof.
CREATE FUNCTION aos_auth.authenticate(p_api_key text, p_local boolean DEFAULT false)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = 'all'
AS $$
DECLARE
    v_key record;
BEGIN
    IF p_api_key IS NULL OR p_api_key !~ '^aos_[0-9a-f]{12}_[0-9a-f]{48}$' THEN
        RAISE EXCEPTION 'that is not a pgAgentOS API key'
            USING ERRCODE = '22023', HINT = 'API keys look like aos_<12 hex>_<48 hex>; aos_auth.create_api_key makes one.';
    END IF;
    SELECT k.tenant_id, k.principal_id, k.key_hash, k.expires_at, k.revoked_at, p.is_active AS principal_active, t.is_active AS tenant_active
      INTO v_key
      FROM aos_auth.api_key k
      JOIN aos_auth.principal p ON p.tenant_id = k.tenant_id AND p.principal_id = k.principal_id
      JOIN aos_auth.tenant t ON t.tenant_id = k.tenant_id
     WHERE k.key_prefix = substr(p_api_key, 5, 12);
    IF NOT FOUND OR v_key.key_hash <> sha256(convert_to(p_api_key, 'UTF8')) OR v_key.revoked_at IS NOT NULL
       OR (v_key.expires_at IS NOT NULL AND v_key.expires_at <= now()) OR NOT v_key.principal_active OR NOT v_key.tenant_active THEN
        RAISE EXCEPTION 'the API key is not valid'
            USING ERRCODE = 'AO011', HINT = 'The key may be mistyped, revoked or expired; ask an administrator for a new one.';
    END IF;
    PERFORM aos_auth._bind(v_key.tenant_id, v_key.principal_id, coalesce(p_local, false));
    RETURN v_key.tenant_id;
END
$$;
COMMENT ON FUNCTION aos_auth.authenticate(text, boolean) IS
    'Binds the session (or transaction) to the tenant and principal of an API key; returns the tenant id. Definer rights: it looks API keys up across tenants by their prefix and signs the binding with the kernel secret; the key itself is the proof.';

CREATE FUNCTION aos_auth.clear_tenant()
RETURNS void
LANGUAGE sql VOLATILE
AS $$
    SELECT set_config('aos.tenant_id', '', false), set_config('aos.principal_id', '', false), set_config('aos.binding', '', false);
    SELECT NULL::void;
$$;
COMMENT ON FUNCTION aos_auth.clear_tenant() IS 'Unbinds the session from its tenant.';
