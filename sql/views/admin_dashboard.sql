-- pgAgentOS kernel — monitoring views. All security_invoker: they show only the rows the
-- caller's row-level security allows (the bound tenant), and each filters on the bound tenant
-- explicitly so that an index leading with tenant_id answers it.

CREATE FUNCTION aos_agent.step_summary(p_step_type text, p_content jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT left(regexp_replace(coalesce(
        CASE p_step_type
            WHEN 'think' THEN p_content ->> 'reasoning'
            WHEN 'tool_call' THEN (p_content ->> 'tool') || ' ' || (p_content -> 'arguments')::text
            WHEN 'tool_result' THEN CASE WHEN (p_content ->> 'success')::boolean IS FALSE THEN 'error: ' || (p_content ->> 'error')
                                         WHEN jsonb_typeof(p_content -> 'output') = 'string' THEN p_content ->> 'output'
                                         ELSE (p_content -> 'output')::text END
            WHEN 'error' THEN p_content ->> 'message'
            WHEN 'pause' THEN 'paused' || coalesce(': ' || (p_content ->> 'reason'), '')
            WHEN 'resume' THEN 'resumed'
            ELSE p_content ->> 'text'
        END, ''), '\s+', ' ', 'g'), 200)
$$;
COMMENT ON FUNCTION aos_agent.step_summary(text, jsonb) IS 'One line (at most 200 characters) describing a step, for views and terminals.';

CREATE VIEW aos_agent.realtime_steps WITH (security_invoker = true) AS
SELECT s.step_id, s.created_at, s.conversation_id, s.turn_id, t.turn_number, a.name AS agent_name,
       s.step_number, s.step_type, s.status, s.tool_name, aos_agent.step_summary(s.step_type, s.content) AS summary,
       s.tokens, s.content
  FROM (SELECT x.* FROM aos_agent.step x
         WHERE x.tenant_id = (SELECT aos_auth.current_tenant())
         ORDER BY x.created_at DESC, x.step_number DESC
         LIMIT 100) s   -- the newest 100 steps first (index step_created_idx), then their turn and agent
  JOIN aos_agent.turn t ON t.tenant_id = s.tenant_id AND t.turn_id = s.turn_id
  JOIN aos_agent.agent a ON a.tenant_id = t.tenant_id AND a.agent_id = t.agent_id
 ORDER BY s.created_at DESC, s.step_number DESC;
COMMENT ON VIEW aos_agent.realtime_steps IS 'The latest 100 steps of the bound tenant, newest first.';

CREATE VIEW aos_agent.tool_call_queue WITH (security_invoker = true) AS
SELECT s.step_id, s.created_at AS requested_at, now() - s.created_at AS waiting_for, s.conversation_id, s.turn_id,
       a.name AS agent_name, s.tool_name, s.content -> 'arguments' AS arguments, s.status,
       sk.risk_level, s.content #>> '{decision,reason}' AS reason, left(t.user_message, 200) AS user_message
  FROM aos_agent.step s
  JOIN aos_agent.turn t ON t.tenant_id = s.tenant_id AND t.turn_id = s.turn_id
  JOIN aos_agent.agent a ON a.tenant_id = t.tenant_id AND a.agent_id = t.agent_id
  LEFT JOIN LATERAL (SELECT x.risk_level FROM aos_skills.skill x
                      WHERE x.tenant_id IN (s.tenant_id, aos_skills.shared_tenant()) AND x.skill_key = s.tool_name
                      ORDER BY (x.tenant_id = s.tenant_id) DESC LIMIT 1) sk ON true
 WHERE s.tenant_id = (SELECT aos_auth.current_tenant())
   AND s.awaiting_decision   -- step_type tool_call, status pending or needs_review (index step_pending_tool_idx)
 ORDER BY CASE sk.risk_level WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, s.created_at;
COMMENT ON VIEW aos_agent.tool_call_queue IS
    'Tool calls waiting for a decision (pending approval, or needs_review after an interrupted run), riskiest and oldest first.';

CREATE VIEW aos_agent.thinking_trace WITH (security_invoker = true) AS
SELECT t.conversation_id, t.turn_id, t.turn_number, s.step_id, s.step_number, s.iteration, s.attempt, s.status,
       s.content ->> 'reasoning' AS reasoning, s.content ->> 'next_action' AS next_action, s.created_at
  FROM aos_agent.turn t
  JOIN aos_agent.step s ON s.tenant_id = t.tenant_id AND s.turn_id = t.turn_id AND s.conversation_id = t.conversation_id
 WHERE t.tenant_id = (SELECT aos_auth.current_tenant()) AND s.step_type = 'think';
COMMENT ON VIEW aos_agent.thinking_trace IS 'The reasoning steps of turns (filter by conversation_id or turn_id); abandoned ones came from a lost attempt.';

CREATE VIEW aos_agent.conversation_timeline WITH (security_invoker = true) AS
SELECT t.conversation_id, t.turn_id, t.turn_number, t.status AS turn_status, s.step_id, s.step_number, s.created_at,
       s.step_type, s.status, s.tool_name, aos_agent.step_summary(s.step_type, s.content) AS summary,
       ap.decision AS approval, ap.source AS approved_by_source, ap.decided_by AS approved_by, ap.note AS approval_note,
       s.content
  FROM aos_agent.turn t
  JOIN aos_agent.step s ON s.tenant_id = t.tenant_id AND s.turn_id = t.turn_id AND s.conversation_id = t.conversation_id
  LEFT JOIN LATERAL (SELECT a.decision, a.source, a.decided_by, a.note FROM aos_agent.approval a
                      WHERE a.tenant_id = s.tenant_id AND a.step_id = s.step_id
                      ORDER BY a.decided_at DESC LIMIT 1) ap ON s.step_type = 'tool_call'
 WHERE t.tenant_id = (SELECT aos_auth.current_tenant());
COMMENT ON VIEW aos_agent.conversation_timeline IS
    'Every step of every turn with its approval decision (filter by conversation_id; order by turn_number, step_number).';

CREATE VIEW aos_agent.agent_stats WITH (security_invoker = true) AS
SELECT a.agent_id, a.name AS agent_name, a.is_active,
       count(DISTINCT t.conversation_id) AS conversations,
       count(t.turn_id) AS turns,
       count(t.turn_id) FILTER (WHERE t.status = 'completed') AS completed_turns,
       count(t.turn_id) FILTER (WHERE t.status IN ('failed', 'dead')) AS failed_turns,
       count(t.turn_id) FILTER (WHERE t.status IN ('queued', 'running', 'waiting_tool', 'waiting_human')) AS open_turns,
       coalesce(sum(t.tokens_used), 0) AS total_tokens,
       coalesce(sum(t.cost_usd), 0) AS total_cost_usd,
       round(avg(extract(epoch FROM t.completed_at - t.created_at) * 1000) FILTER (WHERE t.status = 'completed')) AS avg_turn_duration_ms,
       round(100.0 * count(t.turn_id) FILTER (WHERE t.status = 'completed')
             / nullif(count(t.turn_id) FILTER (WHERE t.status IN ('completed', 'failed', 'dead')), 0), 1) AS success_rate,
       max(t.created_at) AS last_turn_at
  FROM aos_agent.agent a
  LEFT JOIN aos_agent.turn t ON t.tenant_id = a.tenant_id AND t.agent_id = a.agent_id
 WHERE a.tenant_id = (SELECT aos_auth.current_tenant())
 GROUP BY a.agent_id, a.name, a.is_active;
COMMENT ON VIEW aos_agent.agent_stats IS 'Per agent: conversations, turns (completed, failed, open), tokens, cost, average duration, success rate.';

CREATE VIEW aos_agent.dashboard_overview WITH (security_invoker = true) AS
SELECT tn.tenant_id, tn.name AS tenant_name,
       (SELECT count(*) FROM aos_agent.agent a WHERE a.tenant_id = tn.tenant_id AND a.is_active) AS active_agents,
       (SELECT count(*) FROM aos_agent.conversation c WHERE c.tenant_id = tn.tenant_id AND c.status = 'active') AS active_conversations,
       (SELECT count(*) FROM aos_agent.conversation c WHERE c.tenant_id = tn.tenant_id AND c.run_state = 'leased') AS running_turns,
       (SELECT count(*) FROM aos_agent.conversation c WHERE c.tenant_id = tn.tenant_id AND c.run_state = 'ready') AS queued_turns,
       (SELECT count(*) FROM aos_agent.step s WHERE s.tenant_id = tn.tenant_id AND s.awaiting_decision) AS pending_approvals,
       d.turns_24h, d.failed_24h, d.tokens_24h, d.cost_24h_usd
  FROM aos_auth.tenant tn
 CROSS JOIN LATERAL (
        SELECT count(*) AS turns_24h,
               count(*) FILTER (WHERE t.status IN ('failed', 'dead')) AS failed_24h,
               coalesce(sum(t.tokens_used), 0) AS tokens_24h,
               coalesce(sum(t.cost_usd), 0) AS cost_24h_usd
          FROM aos_agent.turn t WHERE t.tenant_id = tn.tenant_id AND t.created_at > now() - interval '24 hours') d
 WHERE tn.tenant_id = (SELECT aos_auth.current_tenant());
COMMENT ON VIEW aos_agent.dashboard_overview IS 'One row for the bound tenant: agents, conversations, running and queued turns, pending approvals, the last 24 hours.';

CREATE VIEW aos_agent.error_log WITH (security_invoker = true) AS
SELECT s.step_id, s.created_at, s.conversation_id, s.turn_id, s.content ->> 'message' AS message, s.content -> 'details' AS details
  FROM aos_agent.step s
 WHERE s.tenant_id = (SELECT aos_auth.current_tenant()) AND s.step_type = 'error';
COMMENT ON VIEW aos_agent.error_log IS 'Error steps recorded by workers and fail_turn.';

CREATE VIEW aos_agent.turn_queue WITH (security_invoker = true) AS
SELECT c.conversation_id, c.agent_id, c.run_state, c.active_turn_id AS turn_id, c.ready_at, c.lease_worker, c.lease_expires_at,
       c.cur_attempt AS attempt, now() - c.ready_at AS waiting_for
  FROM aos_agent.conversation c
 WHERE c.tenant_id = (SELECT aos_auth.current_tenant()) AND c.run_state <> 'idle';
COMMENT ON VIEW aos_agent.turn_queue IS 'Conversations with a turn in progress: ready (queued for workers), leased (a worker runs it), waiting (for people), manual.';
