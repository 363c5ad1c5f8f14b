-- pgAgentOS kernel — row-level security.
-- Every tenant-owned table has RLS enabled and FORCED (so that the owner, and with it every
-- SECURITY DEFINER function, is fenced too), with policies keyed on the bound tenant, read once
-- per statement through (SELECT aos_auth.current_tenant()). The catalog lint test fails on any
-- table in an aos_* schema that has a tenant_id column and lacks FORCE RLS or a policy.

-- aos_meta holds no tenant rows: the model registry is shared by all tenants and written only by
-- administrators (see grants.sql).
