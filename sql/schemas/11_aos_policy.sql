-- pgAgentOS kernel — aos_policy: rules that decide tool calls before the defaults do.
-- process_tool_call evaluates the enabled rules of the tenant by priority (lowest first); the
-- first rule that matches decides: deny, require_approval or auto_approve.

CREATE SCHEMA aos_policy;
COMMENT ON SCHEMA aos_policy IS 'pgAgentOS policies: rules that deny, hold or auto-approve tool calls.';

CREATE TABLE aos_policy.policy_rule (
    tenant_id   uuid        NOT NULL,
    rule_id     uuid        NOT NULL DEFAULT gen_random_uuid(),
    name        text        NOT NULL,
    skill_key   text,
    agent_id    uuid,
    risk_levels text[],
    args_match  jsonb,
    action      text        NOT NULL,
    priority    integer     NOT NULL DEFAULT 100,
    enabled     boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT policy_rule_pkey PRIMARY KEY (tenant_id, rule_id),
    CONSTRAINT policy_rule_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES aos_auth.tenant (tenant_id),
    CONSTRAINT policy_rule_name_key UNIQUE (tenant_id, name),
    CONSTRAINT policy_rule_action_check CHECK (action IN ('deny', 'require_approval', 'auto_approve')),
    CONSTRAINT policy_rule_args_check CHECK (args_match IS NULL OR jsonb_typeof(args_match) = 'object'),
    CONSTRAINT policy_rule_risk_check CHECK (risk_levels IS NULL OR risk_levels <@ ARRAY['low', 'medium', 'high', 'critical'])
);
COMMENT ON TABLE aos_policy.policy_rule IS
    'Tool-call rules: match on skill, agent, risk level and arguments (args_match: the call''s arguments contain this JSON); the first match by priority decides.';
