-- pgAgentOS kernel — aos_skills: the tools agents may call, how they run, and which roles may
-- use them. Built-in skills belong to the shared catalogue (tenant 00000000-...-000000000000)
-- that every tenant reads; tenants add their own (for example MCP tools) under their tenant id.

CREATE SCHEMA aos_skills;
COMMENT ON SCHEMA aos_skills IS 'pgAgentOS skills (tools): definitions, implementations, role permissions.';

CREATE FUNCTION aos_skills.shared_tenant()
RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT '00000000-0000-0000-0000-000000000000'::pg_catalog.uuid $$;
COMMENT ON FUNCTION aos_skills.shared_tenant() IS 'The tenant id of the shared skill catalogue every tenant can read.';

CREATE TABLE aos_skills.skill (
    tenant_id         uuid        NOT NULL,
    skill_key         text        NOT NULL,
    name              text        NOT NULL,
    description       text        NOT NULL,
    category          text        NOT NULL DEFAULT 'general',
    input_schema      jsonb       NOT NULL DEFAULT '{"type": "object", "properties": {}}',
    output_schema     jsonb,
    requires_approval boolean     NOT NULL DEFAULT false,
    risk_level        text        NOT NULL DEFAULT 'low',
    idempotent        boolean     NOT NULL DEFAULT false,
    timeout_ms        integer     NOT NULL DEFAULT 30000,
    is_active         boolean     NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT skill_pkey PRIMARY KEY (tenant_id, skill_key),
    CONSTRAINT skill_key_check CHECK (skill_key ~ '^[a-zA-Z][a-zA-Z0-9_.-]{0,63}$'),
    CONSTRAINT skill_risk_level_check CHECK (risk_level IN ('low', 'medium', 'high', 'critical')),
    CONSTRAINT skill_input_schema_check CHECK (jsonb_typeof(input_schema) = 'object' AND input_schema ->> 'type' = 'object'),
    CONSTRAINT skill_description_check CHECK (length(description) BETWEEN 1 AND 4000),
    CONSTRAINT skill_timeout_check CHECK (timeout_ms BETWEEN 100 AND 3600000)
);
COMMENT ON TABLE aos_skills.skill IS
    'Skills (tools): JSON Schema of the arguments, whether a call needs approval by default, risk level, idempotency.';
COMMENT ON COLUMN aos_skills.skill.idempotent IS
    'True when running the tool twice does no harm: after a worker crash such a call is re-run; others wait for a human.';

CREATE TABLE aos_skills.skill_impl (
    tenant_id  uuid        NOT NULL,
    skill_key  text        NOT NULL,
    version    integer     NOT NULL DEFAULT 1,
    impl_type  text        NOT NULL,
    config     jsonb       NOT NULL DEFAULT '{}',
    enabled    boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT skill_impl_pkey PRIMARY KEY (tenant_id, skill_key, version),
    CONSTRAINT skill_impl_skill_fkey FOREIGN KEY (tenant_id, skill_key)
        REFERENCES aos_skills.skill (tenant_id, skill_key) ON DELETE CASCADE,
    CONSTRAINT skill_impl_type_check CHECK (impl_type IN ('builtin', 'http', 'sql', 'mcp')),
    CONSTRAINT skill_impl_config_check CHECK (jsonb_typeof(config) = 'object')
);
COMMENT ON TABLE aos_skills.skill_impl IS
    'How a skill runs: builtin (in the worker), http (a request through the egress allowlist), sql (a read-only query as the tenant), mcp (a tool of an MCP server).';

CREATE TABLE aos_skills.role_skill (
    tenant_id         uuid        NOT NULL,
    role_key          text        NOT NULL,
    skill_key         text        NOT NULL,
    allowed           boolean     NOT NULL DEFAULT true,
    requires_approval boolean,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT role_skill_pkey PRIMARY KEY (tenant_id, role_key, skill_key),
    CONSTRAINT role_skill_role_key_check
        CHECK (role_key IN ('admin', 'approver', 'operator', 'developer', 'auditor', 'agent', 'viewer', 'user'))
);
COMMENT ON TABLE aos_skills.role_skill IS
    'Which roles may use which skills. A tenant row overrides the shared row for the same role and skill (allowed = false revokes).';

-- The built-in skills the runtime provides.
INSERT INTO aos_skills.skill (tenant_id, skill_key, name, description, category, input_schema, requires_approval, risk_level, idempotent, timeout_ms)
VALUES
    (aos_skills.shared_tenant(), 'web_search', 'Web search',
     'Search the web and return the top results (title, URL, snippet).', 'research',
     '{"type": "object", "properties": {"query": {"type": "string", "minLength": 1, "maxLength": 500, "description": "What to search for"}, "max_results": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5}}, "required": ["query"], "additionalProperties": false}',
     false, 'low', true, 20000),
    (aos_skills.shared_tenant(), 'code_execute', 'Run JavaScript',
     'Run a JavaScript snippet in a sandbox (no files, no network) and return its result and console output.', 'compute',
     '{"type": "object", "properties": {"code": {"type": "string", "minLength": 1, "maxLength": 100000, "description": "JavaScript source; the value of the last expression is returned"}}, "required": ["code"], "additionalProperties": false}',
     true, 'medium', false, 10000),
    (aos_skills.shared_tenant(), 'http_fetch', 'Fetch a URL',
     'Fetch an https URL on the tenant''s egress allowlist and return status, headers and body (text, truncated).', 'network',
     '{"type": "object", "properties": {"url": {"type": "string", "format": "uri", "maxLength": 2000}, "method": {"type": "string", "enum": ["GET", "HEAD"], "default": "GET"}}, "required": ["url"], "additionalProperties": false}',
     false, 'medium', true, 20000),
    (aos_skills.shared_tenant(), 'sql_query', 'Query the database',
     'Run a read-only SQL query as the conversation''s tenant (row-level security applies) and return the rows.', 'data',
     '{"type": "object", "properties": {"sql": {"type": "string", "minLength": 1, "maxLength": 20000}, "max_rows": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}, "required": ["sql"], "additionalProperties": false}',
     false, 'medium', true, 15000),
    (aos_skills.shared_tenant(), 'retrieve', 'Search documents',
     'Search the tenant''s documents (full text, and vectors when embeddings exist) and return the best passages.', 'research',
     '{"type": "object", "properties": {"query": {"type": "string", "minLength": 1, "maxLength": 1000}, "top_k": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5}}, "required": ["query"], "additionalProperties": false}',
     false, 'low', true, 10000),
    (aos_skills.shared_tenant(), 'memory_read', 'Recall a memory',
     'Read what the agent remembered under a key, or list its keys when no key is given.', 'memory',
     '{"type": "object", "properties": {"key": {"type": "string", "maxLength": 200}}, "additionalProperties": false}',
     false, 'low', true, 5000),
    (aos_skills.shared_tenant(), 'memory_write', 'Remember something',
     'Store a value under a key in the agent''s memory (kept across conversations).', 'memory',
     '{"type": "object", "properties": {"key": {"type": "string", "minLength": 1, "maxLength": 200}, "value": {"description": "Any JSON value"}}, "required": ["key", "value"], "additionalProperties": false}',
     false, 'low', true, 5000),
    (aos_skills.shared_tenant(), 'clock', 'Current time',
     'Return the current date and time (UTC and, if given, in a time zone).', 'utility',
     '{"type": "object", "properties": {"timezone": {"type": "string", "maxLength": 64}}, "additionalProperties": false}',
     false, 'low', true, 2000);

INSERT INTO aos_skills.skill_impl (tenant_id, skill_key, impl_type, config)
SELECT aos_skills.shared_tenant(), skill_key,
       CASE skill_key WHEN 'sql_query' THEN 'sql' ELSE 'builtin' END,
       jsonb_build_object('builtin', skill_key)
FROM aos_skills.skill WHERE tenant_id = aos_skills.shared_tenant();

-- Agents may use every built-in skill; viewers none. Tenants override per role and skill.
INSERT INTO aos_skills.role_skill (tenant_id, role_key, skill_key, allowed)
SELECT aos_skills.shared_tenant(), r.role_key, s.skill_key, true
FROM aos_skills.skill s
CROSS JOIN (VALUES ('agent'), ('admin'), ('developer'), ('operator')) r(role_key)
WHERE s.tenant_id = aos_skills.shared_tenant();
