-- pgAgentOS kernel — what the planner is told about tenant_id.
--
-- Every hot-path query names a tenant and a narrower key: a step by (tenant_id, turn_id), a turn
-- or a conversation by its id. Several indexes lead with tenant_id (the key's, and the listing
-- indexes on (tenant_id, created_at) or (tenant_id, agent_id, ...)), so the planner chooses among
-- them by how many rows it expects the tenant to have. With ANALYZE's statistics it reads that from
-- the column's most common values, and a tenant created after the table's last ANALYZE is in none
-- of them: on a table of few tenants it is estimated at one row, every index leading with tenant_id
-- then costs the same, and the planner may take a listing index and filter the tenant's whole
-- history for one turn (found by the bench: a new tenant's turns slowed down as its steps
-- accumulated, 1 ms a query after a few thousand steps). Large tables are analysed rarely (every
-- 10 % of growth by default), so a tenant onboarded in between would pay that until then.
--
-- Without statistics on tenant_id the planner assumes every tenant holds the same small share of a
-- table (0.5 %), whatever it has seen, and the index that also matches the narrower key is always
-- the cheaper one. (A table of fewer than 200 rows still puts a tenant at one row; autovacuum
-- analyses a new installation's tables within a minute of their first rows, and the plans made
-- before are replaced then.) A tenant's value and a generic plan's parameter get the same estimate, so a
-- kernel function's plans no longer depend on which tenant called it first. aos_auth.tenant is left
-- alone: tenant_id is its key. tests/PgAgentOS.Kernel.Tests/PlannerStatisticsTests.cs reads the
-- plans of a new tenant's turn.
DO $stats$
DECLARE
    v_table regclass;
BEGIN
    FOR v_table IN
        SELECT a.attrelid::regclass
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE a.attname = 'tenant_id' AND NOT a.attisdropped AND c.relkind IN ('r', 'p')
           AND n.nspname IN ('aos_meta', 'aos_auth', 'aos_persona', 'aos_skills', 'aos_core', 'aos_egress', 'aos_policy', 'aos_agent')
           AND c.oid <> 'aos_auth.tenant'::regclass
         ORDER BY a.attrelid::regclass::text
    LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN tenant_id SET STATISTICS 0', v_table);
    END LOOP;
END
$stats$;
