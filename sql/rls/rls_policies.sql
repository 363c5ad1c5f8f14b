-- pgAgentOS kernel — row-level security.
-- Every tenant-owned table has RLS enabled and FORCED (so that the owner, and with it every
-- SECURITY DEFINER function, is fenced too), with policies keyed on the bound tenant, read once
-- per statement through (SELECT aos_auth.current_tenant()). The only other way in is the kernel
-- scope of the few definer functions that must see across tenants (the turn queue). The catalog
-- lint test fails on any table with a tenant_id column that lacks FORCE RLS or a policy.
-- aos_meta holds no tenant rows: the model registry is shared and written only by administrators.

DO $rls$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY ARRAY[
        'aos_auth.principal', 'aos_auth.role_grant', 'aos_auth.api_key',
        'aos_persona.persona',
        'aos_core.run', 'aos_core.event_log', 'aos_core.checkpoint', 'aos_core.checkpoint_head',
        'aos_egress.allowlist', 'aos_egress.request',
        'aos_policy.policy_rule',
        'aos_agent.agent', 'aos_agent.conversation', 'aos_agent.turn', 'aos_agent.step', 'aos_agent.approval',
        'aos_agent.tool_execution', 'aos_agent.memory', 'aos_agent.observation', 'aos_agent.agent_hourly']
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', v_table);
        EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', v_table);
        EXECUTE format('CREATE POLICY tenant_isolation ON %s USING (tenant_id = (SELECT aos_auth.current_tenant()) OR (SELECT aos_auth.kernel_scope()))', v_table);
    END LOOP;
END
$rls$;

-- Tenants: a session sees its own tenant; platform administrators see and create all.
ALTER TABLE aos_auth.tenant ENABLE ROW LEVEL SECURITY;
ALTER TABLE aos_auth.tenant FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON aos_auth.tenant
    USING (tenant_id = (SELECT aos_auth.current_tenant()) OR (SELECT aos_auth.kernel_scope()) OR (SELECT aos_auth.is_platform_admin()));

-- Skills: every tenant reads its own and the shared catalogue; a tenant writes only its own
-- rows, and only its administrators do; the shared catalogue is written by platform administrators.
DO $skills$
DECLARE
    v_table text;
    v_write text;
BEGIN
    FOREACH v_table IN ARRAY ARRAY['aos_skills.skill', 'aos_skills.skill_impl', 'aos_skills.role_skill'] LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', v_table);
        EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', v_table);
        EXECUTE format($p$CREATE POLICY tenant_read ON %s FOR SELECT
            USING (tenant_id = (SELECT aos_auth.current_tenant()) OR tenant_id = aos_skills.shared_tenant() OR (SELECT aos_auth.kernel_scope()))$p$, v_table);
        -- One policy per writing command rather than FOR ALL: a FOR ALL policy applies to SELECT
        -- too, so every read of a skill (each claim, each tool decision) evaluated the write
        -- conditions (is_platform_admin costs ~60 µs) for rows it could read anyway.
        v_write := $w$((tenant_id = (SELECT aos_auth.current_tenant()) AND (SELECT aos_auth._is_tenant_admin(aos_auth.current_tenant())))
                   OR (tenant_id = aos_skills.shared_tenant() AND (SELECT aos_auth.is_platform_admin()))
                   OR (SELECT aos_auth.kernel_scope()))$w$;
        EXECUTE format('CREATE POLICY tenant_insert ON %s FOR INSERT WITH CHECK %s', v_table, v_write);
        EXECUTE format('CREATE POLICY tenant_update ON %s FOR UPDATE USING %s WITH CHECK %s', v_table, v_write, v_write);
        EXECUTE format('CREATE POLICY tenant_delete ON %s FOR DELETE USING %s', v_table, v_write);
    END LOOP;
END
$skills$;

-- Policies and egress allowlists are written by the tenant's administrators only.
CREATE POLICY admin_write ON aos_policy.policy_rule AS RESTRICTIVE FOR INSERT
    WITH CHECK ((SELECT aos_auth._is_tenant_admin(aos_auth.current_tenant())) OR (SELECT aos_auth.kernel_scope()));
CREATE POLICY admin_update ON aos_policy.policy_rule AS RESTRICTIVE FOR UPDATE
    USING ((SELECT aos_auth._is_tenant_admin(aos_auth.current_tenant())) OR (SELECT aos_auth.kernel_scope()));
CREATE POLICY admin_delete ON aos_policy.policy_rule AS RESTRICTIVE FOR DELETE
    USING ((SELECT aos_auth._is_tenant_admin(aos_auth.current_tenant())) OR (SELECT aos_auth.kernel_scope()));
CREATE POLICY admin_write ON aos_egress.allowlist AS RESTRICTIVE FOR INSERT
    WITH CHECK ((SELECT aos_auth._is_tenant_admin(aos_auth.current_tenant())) OR (SELECT aos_auth.kernel_scope()));
CREATE POLICY admin_update ON aos_egress.allowlist AS RESTRICTIVE FOR UPDATE
    USING ((SELECT aos_auth._is_tenant_admin(aos_auth.current_tenant())) OR (SELECT aos_auth.kernel_scope()));
CREATE POLICY admin_delete ON aos_egress.allowlist AS RESTRICTIVE FOR DELETE
    USING ((SELECT aos_auth._is_tenant_admin(aos_auth.current_tenant())) OR (SELECT aos_auth.kernel_scope()));

-- The kernel secret: no grants at all, and row-level security as well, so that a role granted
-- pg_read_all_data (which reads every table but does not bypass row-level security) cannot read
-- the key that signs session bindings either. Only aos_owner, i.e. the kernel's definer
-- functions, see its row.
ALTER TABLE aos_auth.kernel_secret ENABLE ROW LEVEL SECURITY;
ALTER TABLE aos_auth.kernel_secret FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_only ON aos_auth.kernel_secret USING (current_user = 'aos_owner');
