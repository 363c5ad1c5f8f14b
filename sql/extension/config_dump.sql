-- Extension-only: register the tables that hold users' rows with pg_extension_config_dump, so
-- that pg_dump of a database with the extension keeps them. Tables holding presets dump only the
-- rows users added.
SELECT pg_catalog.pg_extension_config_dump('aos_meta.llm_model_registry', 'WHERE NOT is_preset');
