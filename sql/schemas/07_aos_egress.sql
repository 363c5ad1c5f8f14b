-- pgAgentOS kernel — aos_egress: which hosts a tenant's tools may reach, and the log of every
-- outbound request decision (allowed or denied, with the address that was checked).
-- The worker enforces the allowlist at connect time; the kernel holds the data.

CREATE SCHEMA aos_egress;
COMMENT ON SCHEMA aos_egress IS 'pgAgentOS egress control: per-tenant host allowlist and request log.';

CREATE TABLE aos_egress.allowlist (
    tenant_id    uuid        NOT NULL,
    allowlist_id uuid        NOT NULL DEFAULT gen_random_uuid(),
    host         text        NOT NULL,
    port         integer     NOT NULL DEFAULT 443,
    skill_key    text,
    allow_subdomains boolean NOT NULL DEFAULT false,
    note         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT allowlist_pkey PRIMARY KEY (tenant_id, allowlist_id),
    CONSTRAINT allowlist_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES aos_auth.tenant (tenant_id),
    -- exact, normalised host names only: lower case, no trailing dot, no wildcards, no userinfo
    CONSTRAINT allowlist_host_check CHECK (host ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$'),
    CONSTRAINT allowlist_port_check CHECK (port BETWEEN 1 AND 65535)
);
CREATE UNIQUE INDEX allowlist_entry_key ON aos_egress.allowlist (tenant_id, host, port, coalesce(skill_key, ''));
COMMENT ON TABLE aos_egress.allowlist IS
    'Hosts a tenant''s tools may reach over https: exact host names (allow_subdomains widens to its subdomains), per port, optionally per skill.';

CREATE TABLE aos_egress.request (
    tenant_id   uuid        NOT NULL,
    request_id  uuid        NOT NULL DEFAULT gen_random_uuid(),
    turn_id     uuid,
    step_id     uuid,
    skill_key   text,
    method      text        NOT NULL,
    url         text        NOT NULL,
    host        text        NOT NULL,
    resolved_ip inet,
    decision    text        NOT NULL,
    reason      text,
    status_code integer,
    bytes       bigint,
    duration_ms integer,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT request_pkey PRIMARY KEY (tenant_id, request_id),
    CONSTRAINT request_decision_check CHECK (decision IN ('allow', 'deny'))
);
CREATE INDEX request_created_idx ON aos_egress.request (tenant_id, created_at DESC);
COMMENT ON TABLE aos_egress.request IS 'Every outbound request a tool attempted: allowed or denied, why, and the address that was checked.';
