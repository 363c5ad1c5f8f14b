-- pgAgentOS example: one agent answers one question, driven by hand in SQL.
--
-- The whole agent loop, one function call at a time, as an external runtime would drive it:
-- tenant, persona, agent, conversation, message, run_turn (what the LLM call needs), thinking,
-- tool calls (one auto-approved, one approved by a person), tool results, the answer, then the
-- monitoring views, a rating, the analytics and the audit trail.
--
-- Run it as a platform administrator (a login that is a member of aos_admin, for example the
-- database owner after `aos install`) on a database with the kernel installed:
--
--     psql -X -v ON_ERROR_STOP=1 -d mydb -f examples/simple_agent.sql
--
-- It creates a new tenant each time (named after the clock), so it can run again and again.
-- A test (ExampleTests) runs it against every build, so it does not rot.

\set ON_ERROR_STOP 1
\pset pager off

\echo
\echo == 1. A tenant, bound to this session, and a person who may approve tool calls
SELECT aos_auth.create_tenant('example-' || to_char(clock_timestamp(), 'YYYYMMDD-HH24MISS-US'), 'Example Co') AS tenant_id \gset
SELECT aos_auth.set_tenant(:'tenant_id');
SELECT aos_auth.create_principal(:'tenant_id', 'human', 'alice', NULL, 'alice@example.com', ARRAY['approver']) AS alice_id \gset

\echo
\echo == 2. A persona: who the agent is, on which model, with which parameters
SELECT aos_persona.create_persona(
    p_name            := 'python_tutor',
    p_system_prompt   := 'You are a patient Python tutor. Answer with a short explanation and one example.',
    p_traits          := '{"patient": true, "concise": true}',
    p_model_id        := aos_meta.find_model('openai', 'gpt-4o-mini'),
    p_override_params := '{"temperature": 0.3}'
) AS persona_id \gset

\echo
\echo == 3. An agent with two tools. It auto-approves tool calls, except those whose skill
\echo ==    requires approval (code_execute does). dispatch manual: no worker takes its turns.
SELECT aos_agent.create_agent(
    p_tenant_id  := :'tenant_id',
    p_name       := 'tutor',
    p_persona_id := :'persona_id',
    p_tools      := ARRAY['web_search', 'code_execute'],
    p_config     := '{"auto_approve_tools": true, "dispatch": "manual", "max_iterations": 5}'
) AS agent_id \gset
SELECT name, tools, config ->> 'auto_approve_tools' AS auto_approve, config ->> 'dispatch' AS dispatch
  FROM aos_agent.agent WHERE agent_id = :'agent_id';

\echo
\echo == 4. A conversation and a message from the user: a queued turn
SELECT aos_agent.start_conversation(p_agent_id := :'agent_id', p_title := 'asyncio') AS conversation_id \gset
SELECT aos_agent.send_message(:'conversation_id', 'How do I run two coroutines at the same time in Python?') AS turn_id \gset
SELECT turn_number, status, user_message FROM aos_agent.turn WHERE turn_id = :'turn_id';

\echo
\echo == 5. run_turn: everything the LLM call needs (and the turn is now ours to drive)
SELECT r ->> 'system_prompt' AS system_prompt,
       jsonb_array_length(r -> 'messages') AS messages,
       (SELECT string_agg(t #>> '{function,name}', ', ') FROM jsonb_array_elements(r -> 'tools') t) AS tools,
       r -> 'params' AS params
  FROM aos_agent.run_turn(:'turn_id') r;
SELECT status, driver, attempt FROM aos_agent.turn WHERE turn_id = :'turn_id';

\echo
\echo == 6. The model thinks, then searches (web_search: approved at once, the runtime runs it)
SELECT aos_agent.record_thinking(:'turn_id', 'The user wants concurrency with asyncio; check the docs for gather.', 'web_search');
SELECT d ->> 'status' AS status, d ->> 'decided_by' AS decided_by, d ->> 'reason' AS reason
  FROM aos_agent.process_tool_call(:'turn_id', 'web_search', '{"query": "asyncio gather example"}') d;
SELECT aos_agent.record_tool_result(:'turn_id', 'web_search',
    '{"results": [{"title": "Coroutines and Tasks", "url": "https://docs.python.org/3/library/asyncio-task.html"}]}');

\echo
\echo == 7. ... then wants to run code (code_execute requires approval: the turn waits)
SELECT aos_agent.record_thinking(:'turn_id', 'Verify the example before showing it.', 'code_execute');
SELECT d ->> 'status' AS status, d ->> 'turn_status' AS turn_status, d ->> 'step_id' AS step_id
  FROM aos_agent.process_tool_call(:'turn_id', 'code_execute', '{"code": "await Promise.all([1, 2])"}') d \gset call_
\echo :call_status :call_turn_status
SELECT tool_name, arguments, status, risk_level, reason FROM aos_agent.tool_call_queue;
SELECT run_state FROM aos_agent.turn_queue WHERE conversation_id = :'conversation_id';

\echo
\echo == 8. Alice approves it; the turn goes back to its driver, who runs the tool
SELECT aos_agent.approve_step(:'call_step_id', true, :'alice_id', 'sandboxed, harmless');
SELECT status FROM aos_agent.turn WHERE turn_id = :'turn_id';
SELECT aos_agent.record_tool_result(:'turn_id', 'code_execute', '{"result": [1, 2], "console": []}');

\echo
\echo == 9. The answer, with the usage the provider reported (the cost comes from the registry)
SELECT aos_agent.complete_turn(
    p_turn_id           := :'turn_id',
    p_assistant_message := 'Use asyncio.gather: `await asyncio.gather(first(), second())` runs both coroutines concurrently.',
    p_usage             := '{"input_tokens": 1200, "output_tokens": 180}');
SELECT status, step_count, input_tokens, output_tokens, tokens_used, cost_usd, tool_usage
  FROM aos_agent.turn WHERE turn_id = :'turn_id';

\echo
\echo == 10. Watching: the timeline, the reasoning, the latest steps, the dashboard
SELECT step_number, step_type, status, approval, left(summary, 70) AS summary
  FROM aos_agent.conversation_timeline WHERE conversation_id = :'conversation_id'
 ORDER BY turn_number, step_number;
SELECT step_number, reasoning, next_action FROM aos_agent.thinking_trace WHERE turn_id = :'turn_id' ORDER BY step_number;
SELECT step_number, step_type, tool_name, left(summary, 50) AS summary FROM aos_agent.realtime_steps LIMIT 3;
SELECT active_agents, active_conversations, running_turns, queued_turns, pending_approvals, turns_24h, tokens_24h, cost_24h_usd
  FROM aos_agent.dashboard_overview;

\echo
\echo == 11. People in the loop after the fact: a rating and a note
SELECT aos_agent.rate_turn(:'turn_id', :'alice_id', 5, '{"accuracy": 5, "clarity": 4}') IS NOT NULL AS rated;
SELECT aos_agent.add_observation(:'alice_id', 'note', '{"text": "good first answer"}', p_turn_id := :'turn_id') IS NOT NULL AS noted;

\echo
\echo == 12. Analytics (in the shape the spec shows) and hourly activity
SELECT jsonb_pretty(aos_agent.get_agent_analytics(:'agent_id', 7) - 'agent_id');
SELECT turn_count, step_count, token_count, cost_usd, tool_calls, failed_turns FROM aos_agent.get_hourly_activity(:'tenant_id', 1);
SELECT agent_name, conversations, turns, completed_turns, total_tokens, success_rate FROM aos_agent.agent_stats;

\echo
\echo == 13. The audit trail: every step is in the hash-chained event log
SELECT event_type, count(*) FROM aos_core.event_log WHERE chain_id = :'conversation_id' GROUP BY 1 ORDER BY min(seq);
SELECT v ->> 'ok' AS chain_ok, v ->> 'events' AS events FROM aos_core.verify_event_chain() v;
