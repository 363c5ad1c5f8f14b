-- Extension-only: register the tables that hold users' rows with pg_extension_config_dump, so
-- that pg_dump of a database with the extension keeps them (the upstream implementation loses
-- every row this way). Tables seeded by the install script dump only the rows users added.
-- The kernel secret is not dumped: a restored database gets a new one (session bindings do not
-- outlive a session anyway).
SELECT pg_catalog.pg_extension_config_dump('aos_meta.llm_model_registry', 'WHERE NOT is_preset');
SELECT pg_catalog.pg_extension_config_dump('aos_auth.tenant', '');
SELECT pg_catalog.pg_extension_config_dump('aos_auth.principal', '');
SELECT pg_catalog.pg_extension_config_dump('aos_auth.role_grant', '');
SELECT pg_catalog.pg_extension_config_dump('aos_auth.api_key', '');
SELECT pg_catalog.pg_extension_config_dump('aos_persona.persona', '');
SELECT pg_catalog.pg_extension_config_dump('aos_skills.skill', 'WHERE tenant_id <> ''00000000-0000-0000-0000-000000000000''');
SELECT pg_catalog.pg_extension_config_dump('aos_skills.skill_impl', 'WHERE tenant_id <> ''00000000-0000-0000-0000-000000000000''');
SELECT pg_catalog.pg_extension_config_dump('aos_skills.role_skill', 'WHERE tenant_id <> ''00000000-0000-0000-0000-000000000000''');
SELECT pg_catalog.pg_extension_config_dump('aos_core.run', '');
SELECT pg_catalog.pg_extension_config_dump('aos_core.event_log', '');
SELECT pg_catalog.pg_extension_config_dump('aos_core.checkpoint', '');
SELECT pg_catalog.pg_extension_config_dump('aos_core.checkpoint_head', '');
SELECT pg_catalog.pg_extension_config_dump('aos_egress.allowlist', '');
SELECT pg_catalog.pg_extension_config_dump('aos_egress.request', '');
SELECT pg_catalog.pg_extension_config_dump('aos_policy.policy_rule', '');
SELECT pg_catalog.pg_extension_config_dump('aos_agent.agent', '');
SELECT pg_catalog.pg_extension_config_dump('aos_agent.conversation', '');
SELECT pg_catalog.pg_extension_config_dump('aos_agent.turn', '');
SELECT pg_catalog.pg_extension_config_dump('aos_agent.step', '');
SELECT pg_catalog.pg_extension_config_dump('aos_agent.approval', '');
SELECT pg_catalog.pg_extension_config_dump('aos_agent.tool_execution', '');
SELECT pg_catalog.pg_extension_config_dump('aos_agent.memory', '');
SELECT pg_catalog.pg_extension_config_dump('aos_agent.observation', '');
SELECT pg_catalog.pg_extension_config_dump('aos_agent.agent_hourly', '');
