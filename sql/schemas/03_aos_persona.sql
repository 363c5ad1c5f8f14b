-- pgAgentOS kernel — aos_persona: who an agent is (system prompt, traits, model and parameters).

CREATE SCHEMA aos_persona;
COMMENT ON SCHEMA aos_persona IS 'pgAgentOS personas: system prompt, traits, model and parameter overrides.';

CREATE TABLE aos_persona.persona (
    tenant_id              uuid        NOT NULL,
    persona_id             uuid        NOT NULL DEFAULT gen_random_uuid(),
    name                   text        NOT NULL,
    system_prompt          text        NOT NULL,
    traits                 jsonb       NOT NULL DEFAULT '{}',
    rules                  jsonb       NOT NULL DEFAULT '[]',
    model_id               uuid,
    override_params        jsonb       NOT NULL DEFAULT '{}',
    max_tokens_per_request integer,
    version                integer     NOT NULL DEFAULT 1,
    is_active              boolean     NOT NULL DEFAULT true,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT persona_pkey PRIMARY KEY (tenant_id, persona_id),
    CONSTRAINT persona_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES aos_auth.tenant (tenant_id),
    CONSTRAINT persona_model_fkey FOREIGN KEY (model_id) REFERENCES aos_meta.llm_model_registry (model_id),
    CONSTRAINT persona_name_key UNIQUE (tenant_id, name),
    CONSTRAINT persona_name_check CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_ .-]{0,99}$'),
    CONSTRAINT persona_system_prompt_check CHECK (octet_length(system_prompt) BETWEEN 1 AND 400000),
    CONSTRAINT persona_traits_check CHECK (jsonb_typeof(traits) = 'object'),
    CONSTRAINT persona_rules_check CHECK (jsonb_typeof(rules) = 'array'),
    CONSTRAINT persona_params_check CHECK (jsonb_typeof(override_params) = 'object'),
    CONSTRAINT persona_max_tokens_check CHECK (max_tokens_per_request IS NULL OR max_tokens_per_request > 0)
);
CREATE UNIQUE INDEX persona_id_key ON aos_persona.persona (persona_id);
COMMENT ON TABLE aos_persona.persona IS
    'Personas: the system prompt, traits and rules an agent speaks with, and the model and parameter overrides it uses.';
