-- pgAgentOS kernel — aos_meta: roles, the installed version, the LLM model registry and the
-- hierarchical resolution of model parameters (registry defaults -> persona -> agent -> call).

-- ---------------------------------------------------------------------------------------------
-- Roles. They are cluster-wide, so they are created only when missing and are never dropped by
-- the kernel (DROP EXTENSION leaves them for the other databases that may use them).
--   aos_owner      NOLOGIN, owns every kernel object; nobody logs in as it.
--   aos_app        applications acting for one bound tenant (aos_auth.set_tenant).
--   aos_worker     runtime workers; they reach a tenant's rows only through a turn they lease.
--   aos_admin      platform administrators: may bind any tenant and create tenants. Not owner,
--                  not superuser, not BYPASSRLS: row-level security applies to them too.
--   aos_analytics  read-only access to the monitoring views and analytics of a bound tenant.
-- ---------------------------------------------------------------------------------------------
DO $roles$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['aos_owner', 'aos_app', 'aos_worker', 'aos_admin', 'aos_analytics'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = v_role) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS', v_role);
        END IF;
    END LOOP;
    -- An administrator can do what an application can.
    IF NOT pg_catalog.pg_has_role('aos_admin', 'aos_app', 'MEMBER') THEN
        GRANT aos_app TO aos_admin;
    END IF;
    -- Whoever installs must be able to hand the objects to aos_owner (ALTER ... OWNER requires
    -- membership unless the installer is a superuser, for example on managed PostgreSQL).
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
       AND NOT pg_catalog.pg_has_role(current_user, 'aos_owner', 'MEMBER') THEN
        EXECUTE pg_catalog.format('GRANT aos_owner TO %I', current_user);
    END IF;
END
$roles$;

CREATE SCHEMA aos_meta;
COMMENT ON SCHEMA aos_meta IS 'pgAgentOS metadata: installed version, LLM model registry, parameter resolution.';

-- ---------------------------------------------------------------------------------------------
-- installed_version: exactly one row, written by the install script and by upgrade scripts.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE aos_meta.installed_version (
    version          text        NOT NULL,
    schema_version   integer     NOT NULL,
    install_method   text        NOT NULL,
    pg_version       text        NOT NULL,
    pgvector_version text,
    installed_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    upgraded_at      timestamptz,
    metadata         jsonb       NOT NULL DEFAULT '{}',
    CONSTRAINT installed_version_pkey PRIMARY KEY (version),
    CONSTRAINT installed_version_method_check CHECK (install_method IN ('extension', 'manual'))
);
CREATE UNIQUE INDEX installed_version_singleton ON aos_meta.installed_version ((true));
COMMENT ON TABLE aos_meta.installed_version IS 'The installed pgAgentOS kernel version (one row).';

INSERT INTO aos_meta.installed_version (version, schema_version, install_method, pg_version, pgvector_version)
SELECT '0.1.0', 1,
       CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pgagentos')
            THEN 'extension' ELSE 'manual' END,
       pg_catalog.current_setting('server_version'),
       (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'vector');

-- ---------------------------------------------------------------------------------------------
-- Deep merge of two JSON objects: keys of p_overlay win; nested objects merge recursively; a JSON
-- null in p_overlay removes the key. Non-object overlays replace the base.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION aos_meta.jsonb_deep_merge(p_base jsonb, p_overlay jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_overlay IS NULL THEN p_base
        WHEN p_base IS NULL OR jsonb_typeof(p_base) <> 'object' OR jsonb_typeof(p_overlay) <> 'object' THEN p_overlay
        ELSE COALESCE((
            SELECT jsonb_object_agg(k, v)
            FROM (
                SELECT key AS k,
                       CASE WHEN o.value IS NULL THEN b.value
                            ELSE aos_meta.jsonb_deep_merge(b.value, o.value) END AS v
                FROM jsonb_each(p_base) b
                FULL JOIN jsonb_each(p_overlay) o USING (key)
            ) m
            WHERE v IS NOT NULL AND v <> 'null'::jsonb
        ), '{}'::jsonb)
    END
$$;
COMMENT ON FUNCTION aos_meta.jsonb_deep_merge(jsonb, jsonb) IS
    'Recursive merge of JSON objects: the overlay wins, nested objects merge, a null in the overlay removes the key.';

-- ---------------------------------------------------------------------------------------------
-- llm_model_registry: the models agents can use, with prices and default parameters.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE aos_meta.llm_model_registry (
    model_id                  uuid        NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    provider                  text        NOT NULL,
    model_name                text        NOT NULL,
    display_name              text,
    context_window            integer     NOT NULL,
    max_output_tokens         integer     NOT NULL,
    input_price_per_mtok      numeric(12, 4) NOT NULL DEFAULT 0,
    output_price_per_mtok     numeric(12, 4) NOT NULL DEFAULT 0,
    default_params            jsonb       NOT NULL DEFAULT '{}',
    supports_function_calling boolean     NOT NULL DEFAULT true,
    supports_streaming        boolean     NOT NULL DEFAULT true,
    supports_vision           boolean     NOT NULL DEFAULT false,
    supports_reasoning        boolean     NOT NULL DEFAULT false,
    endpoint_template         text,
    api_key_env_var           text,
    is_active                 boolean     NOT NULL DEFAULT true,
    is_preset                 boolean     NOT NULL DEFAULT false,
    created_at                timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at                timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT llm_model_registry_pkey PRIMARY KEY (model_id),
    CONSTRAINT llm_model_registry_provider_model_key UNIQUE (provider, model_name),
    CONSTRAINT llm_model_registry_provider_check
        CHECK (provider IN ('openai', 'anthropic', 'google', 'ollama', 'openai_compatible', 'builtin')),
    CONSTRAINT llm_model_registry_model_name_check CHECK (length(btrim(model_name)) BETWEEN 1 AND 200),
    CONSTRAINT llm_model_registry_context_check CHECK (context_window > 0),
    CONSTRAINT llm_model_registry_max_output_check CHECK (max_output_tokens > 0 AND max_output_tokens <= context_window),
    CONSTRAINT llm_model_registry_price_check CHECK (input_price_per_mtok >= 0 AND output_price_per_mtok >= 0),
    CONSTRAINT llm_model_registry_params_check CHECK (jsonb_typeof(default_params) = 'object')
);
COMMENT ON TABLE aos_meta.llm_model_registry IS
    'LLM models agents can use: provider, context window, output limit, USD price per million input/output tokens, default parameters and capabilities.';

-- The presets have the same model_id in every database (derived from provider and name), so that
-- rows referring to them survive pg_dump/pg_restore (the extension recreates the presets; only
-- rows users added are dumped) and mean the same model in every installation.
INSERT INTO aos_meta.llm_model_registry
    (model_id, provider, model_name, display_name, context_window, max_output_tokens, input_price_per_mtok,
     output_price_per_mtok, default_params, supports_function_calling, supports_streaming,
     supports_vision, supports_reasoning, endpoint_template, api_key_env_var, is_preset)
SELECT md5('pgagentos-model:' || v.provider || '/' || v.model_name)::uuid, v.provider, v.model_name, v.display_name,
       v.context_window, v.max_output_tokens, v.input_price_per_mtok, v.output_price_per_mtok, v.default_params::jsonb,
       v.supports_function_calling, v.supports_streaming, v.supports_vision, v.supports_reasoning, v.endpoint_template,
       v.api_key_env_var, v.is_preset
FROM (VALUES
    ('openai', 'gpt-4o', 'GPT-4o', 128000, 16384, 2.50, 10.00,
        '{"temperature": 0.7, "max_tokens": 4096}', true, true, true, false,
        'https://api.openai.com/v1', 'OPENAI_API_KEY', true),
    ('openai', 'gpt-4o-mini', 'GPT-4o mini', 128000, 16384, 0.15, 0.60,
        '{"temperature": 0.7, "max_tokens": 4096}', true, true, true, false,
        'https://api.openai.com/v1', 'OPENAI_API_KEY', true),
    ('openai', 'gpt-4.1', 'GPT-4.1', 1047576, 32768, 2.00, 8.00,
        '{"temperature": 0.7, "max_tokens": 4096}', true, true, true, false,
        'https://api.openai.com/v1', 'OPENAI_API_KEY', true),
    ('openai', 'gpt-4.1-mini', 'GPT-4.1 mini', 1047576, 32768, 0.40, 1.60,
        '{"temperature": 0.7, "max_tokens": 4096}', true, true, true, false,
        'https://api.openai.com/v1', 'OPENAI_API_KEY', true),
    ('openai', 'o4-mini', 'o4-mini', 200000, 100000, 1.10, 4.40,
        '{"max_tokens": 8192, "reasoning_effort": "medium"}', true, true, true, true,
        'https://api.openai.com/v1', 'OPENAI_API_KEY', true),
    ('anthropic', 'claude-sonnet-4-20250514', 'Claude Sonnet 4', 200000, 64000, 3.00, 15.00,
        '{"temperature": 0.7, "max_tokens": 4096}', true, true, true, true,
        'https://api.anthropic.com', 'ANTHROPIC_API_KEY', true),
    ('anthropic', 'claude-opus-4-1-20250805', 'Claude Opus 4.1', 200000, 32000, 15.00, 75.00,
        '{"temperature": 0.7, "max_tokens": 4096}', true, true, true, true,
        'https://api.anthropic.com', 'ANTHROPIC_API_KEY', true),
    ('anthropic', 'claude-3-5-haiku-20241022', 'Claude Haiku 3.5', 200000, 8192, 0.80, 4.00,
        '{"temperature": 0.7, "max_tokens": 4096}', true, true, true, false,
        'https://api.anthropic.com', 'ANTHROPIC_API_KEY', true),
    ('google', 'gemini-2.5-pro', 'Gemini 2.5 Pro', 1048576, 65536, 1.25, 10.00,
        '{"temperature": 0.7, "max_tokens": 8192}', true, true, true, true,
        'https://generativelanguage.googleapis.com/v1beta/openai', 'GOOGLE_API_KEY', true),
    ('google', 'gemini-2.5-flash', 'Gemini 2.5 Flash', 1048576, 65536, 0.30, 2.50,
        '{"temperature": 0.7, "max_tokens": 8192}', true, true, true, true,
        'https://generativelanguage.googleapis.com/v1beta/openai', 'GOOGLE_API_KEY', true),
    ('ollama', 'llama3.1:8b', 'Llama 3.1 8B (Ollama)', 131072, 8192, 0, 0,
        '{"temperature": 0.7, "max_tokens": 2048}', true, true, false, false,
        'http://localhost:11434', NULL, true),
    ('ollama', 'qwen2.5:7b', 'Qwen 2.5 7B (Ollama)', 32768, 8192, 0, 0,
        '{"temperature": 0.7, "max_tokens": 2048}', true, true, false, false,
        'http://localhost:11434', NULL, true),
    ('ollama', 'mistral:7b', 'Mistral 7B (Ollama)', 32768, 8192, 0, 0,
        '{"temperature": 0.7, "max_tokens": 2048}', true, true, false, false,
        'http://localhost:11434', NULL, true),
    ('builtin', 'scripted', 'Scripted stand-in (deterministic, not an AI)', 1000000, 100000, 0, 0,
        '{"max_tokens": 4096}', true, true, false, true, NULL::text, NULL::text, true)
) v(provider, model_name, display_name, context_window, max_output_tokens, input_price_per_mtok,
    output_price_per_mtok, default_params, supports_function_calling, supports_streaming,
    supports_vision, supports_reasoning, endpoint_template, api_key_env_var, is_preset);

-- ---------------------------------------------------------------------------------------------
-- resolve_model_params: the parameters one LLM call uses, merged in the order
--   registry defaults -> persona overrides -> agent overrides -> per-call overrides.
-- Nested objects merge; a JSON null at a higher level removes the key. The result also names the
-- provider and model. max_tokens above the model's output limit is refused.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION aos_meta.resolve_model_params(
    p_model_id       uuid,
    p_persona_params jsonb DEFAULT '{}',
    p_agent_params   jsonb DEFAULT '{}',
    p_call_params    jsonb DEFAULT '{}'
)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_model  aos_meta.llm_model_registry%ROWTYPE;
    v_params jsonb;
    v_layer  jsonb;
BEGIN
    IF p_model_id IS NULL THEN
        RAISE EXCEPTION 'model id must not be null'
            USING ERRCODE = '22004', HINT = 'Pass a model_id from aos_meta.llm_model_registry.';
    END IF;
    SELECT * INTO v_model FROM aos_meta.llm_model_registry WHERE model_id = p_model_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model % is not in the registry', p_model_id
            USING ERRCODE = 'AO002', HINT = 'SELECT model_id, provider, model_name FROM aos_meta.llm_model_registry lists the models.';
    END IF;
    -- (a loop over an array, not over a VALUES query: resolving runs on every claim)
    FOR i IN 1 .. 3 LOOP
        v_layer := (ARRAY[p_persona_params, p_agent_params, p_call_params])[i];
        IF v_layer IS NOT NULL AND jsonb_typeof(v_layer) <> 'object' THEN
            RAISE EXCEPTION '% parameters must be a JSON object, got %', (ARRAY['persona', 'agent', 'call'])[i], jsonb_typeof(v_layer)
                USING ERRCODE = '22023', HINT = 'Pass parameters such as {"temperature": 0.2}.';
        END IF;
    END LOOP;
    -- (empty layers are skipped: resolving runs on every claim)
    v_params := v_model.default_params;
    IF p_persona_params IS NOT NULL AND p_persona_params <> '{}' THEN
        v_params := aos_meta.jsonb_deep_merge(v_params, p_persona_params);
    END IF;
    IF p_agent_params IS NOT NULL AND p_agent_params <> '{}' THEN
        v_params := aos_meta.jsonb_deep_merge(v_params, p_agent_params);
    END IF;
    IF p_call_params IS NOT NULL AND p_call_params <> '{}' THEN
        v_params := aos_meta.jsonb_deep_merge(v_params, p_call_params);
    END IF;
    IF v_params ? 'max_tokens' THEN
        IF jsonb_typeof(v_params -> 'max_tokens') <> 'number' OR (v_params ->> 'max_tokens')::numeric <= 0 THEN
            RAISE EXCEPTION 'max_tokens must be a positive number, got %', v_params -> 'max_tokens'
                USING ERRCODE = '22023', HINT = 'Set max_tokens to a positive integer.';
        END IF;
        IF (v_params ->> 'max_tokens')::numeric > v_model.max_output_tokens THEN
            RAISE EXCEPTION 'max_tokens % exceeds the output limit % of %/%',
                    v_params ->> 'max_tokens', v_model.max_output_tokens, v_model.provider, v_model.model_name
                USING ERRCODE = '22023', HINT = 'Lower max_tokens in the persona, agent or call parameters.';
        END IF;
    END IF;
    IF v_params ? 'temperature' AND (jsonb_typeof(v_params -> 'temperature') <> 'number'
        OR (v_params ->> 'temperature')::numeric NOT BETWEEN 0 AND 2) THEN
        RAISE EXCEPTION 'temperature must be a number between 0 and 2, got %', v_params -> 'temperature'
            USING ERRCODE = '22023', HINT = 'Use a temperature such as 0.2 for focused answers or 1.0 for varied ones.';
    END IF;
    RETURN v_params || jsonb_build_object('provider', v_model.provider, 'model', v_model.model_name);
END
$$;
COMMENT ON FUNCTION aos_meta.resolve_model_params(uuid, jsonb, jsonb, jsonb) IS
    'Parameters for one LLM call: registry defaults, then persona, agent and per-call overrides (deep merge; null removes a key).';

CREATE FUNCTION aos_meta.find_model(p_provider text, p_model_name text)
RETURNS uuid
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_id uuid;
BEGIN
    IF p_model_name IS NULL OR btrim(p_model_name) = '' THEN
        RAISE EXCEPTION 'model name must not be empty'
            USING ERRCODE = '22023', HINT = 'Pass a model name such as ''gpt-4o''.';
    END IF;
    SELECT model_id INTO v_id FROM aos_meta.llm_model_registry
     WHERE model_name = p_model_name AND (p_provider IS NULL OR provider = p_provider)
     ORDER BY is_active DESC, provider
     LIMIT 1;
    IF v_id IS NULL THEN
        RAISE EXCEPTION 'model %/% is not in the registry', coalesce(p_provider, '*'), p_model_name
            USING ERRCODE = 'AO002', HINT = 'SELECT provider, model_name FROM aos_meta.llm_model_registry lists the models.';
    END IF;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION aos_meta.find_model(text, text) IS
    'The model_id of a registry entry by provider (NULL for any) and model name.';
