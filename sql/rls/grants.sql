-- pgAgentOS kernel — ownership and privileges. Runs last.
-- Every object belongs to the NOLOGIN role aos_owner; EXECUTE is revoked from PUBLIC on every
-- function and granted explicitly, role by role (least privilege).

DO $owner$
DECLARE
    v_obj record;
BEGIN
    FOR v_obj IN
        SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.nspname LIKE 'aos\_%'
    LOOP
        EXECUTE pg_catalog.format('ALTER SCHEMA %I OWNER TO aos_owner', v_obj.nspname);
        EXECUTE pg_catalog.format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', v_obj.nspname);
        EXECUTE pg_catalog.format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM PUBLIC', v_obj.nspname);
        EXECUTE pg_catalog.format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA %I FROM PUBLIC', v_obj.nspname);
    END LOOP;
    FOR v_obj IN
        SELECT c.oid::pg_catalog.regclass AS rel, c.relkind
        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname LIKE 'aos\_%' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s OWNER TO aos_owner', v_obj.rel);
    END LOOP;
    FOR v_obj IN
        SELECT p.oid::pg_catalog.regprocedure AS fn
        FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname LIKE 'aos\_%'
    LOOP
        EXECUTE pg_catalog.format('ALTER ROUTINE %s OWNER TO aos_owner', v_obj.fn);
    END LOOP;
    FOR v_obj IN
        SELECT t.oid::pg_catalog.regtype AS typ
        FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname LIKE 'aos\_%' AND t.typtype IN ('d', 'e') 
    LOOP
        EXECUTE pg_catalog.format('ALTER TYPE %s OWNER TO aos_owner', v_obj.typ);
    END LOOP;
END
$owner$;

-- aos_meta ---------------------------------------------------------------------------------------
GRANT USAGE ON SCHEMA aos_meta TO aos_app, aos_worker, aos_admin, aos_analytics;
GRANT SELECT ON aos_meta.installed_version, aos_meta.llm_model_registry TO aos_app, aos_worker, aos_admin, aos_analytics;
GRANT INSERT, UPDATE, DELETE ON aos_meta.llm_model_registry TO aos_admin;
GRANT EXECUTE ON FUNCTION
    aos_meta.jsonb_deep_merge(jsonb, jsonb),
    aos_meta.resolve_model_params(uuid, jsonb, jsonb, jsonb),
    aos_meta.find_model(text, text)
  TO aos_app, aos_worker, aos_admin, aos_analytics;
