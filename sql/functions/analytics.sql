-- pgAgentOS kernel — analytics. They read no steps: get_agent_analytics counts turns from an
-- index and sums agent_hourly; get_hourly_activity reads the tenant's turns of the last days.

-- plan_cache_mode: tenants differ in size by orders of magnitude, so a plan cached for "an average
-- tenant" (PostgreSQL's generic plan, chosen after five calls in a session) can be the wrong one
-- for the largest; planning each call costs well under a millisecond here.
CREATE FUNCTION aos_agent.get_agent_analytics(p_agent_id uuid, p_days integer DEFAULT 7)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    v_tenant        uuid := aos_auth._require_tenant();
    v_since         timestamptz;
    v_result        jsonb;
    v_turns         bigint;
    v_conversations bigint;
    v_edge          timestamptz;
BEGIN
    PERFORM aos_core._check_id(p_agent_id, 'agent id');
    IF p_days IS NULL OR p_days NOT BETWEEN 1 AND 3650 THEN
        RAISE EXCEPTION 'days must be between 1 and 3650, got %', p_days USING ERRCODE = '22023', HINT = 'For example 7 for the last week.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM aos_agent.agent WHERE tenant_id = v_tenant AND agent_id = p_agent_id) THEN
        PERFORM aos_core._not_found('agent', p_agent_id);
    END IF;
    v_since := now() - make_interval(days => p_days);
    v_edge := to_timestamp(floor(extract(epoch FROM v_since) / 3600) * 3600);   -- as aos_core._hour (internal, not granted to callers)
    IF v_edge < v_since THEN
        v_edge := v_edge + interval '1 hour';   -- the first whole hour of the window
    END IF;
    -- Turns and conversations in the window from turn_agent_idx alone (an index-only scan: it
    -- includes conversation_id). How the finished ones ended: the hourly sums of the whole hours
    -- (agent_hourly), and the turns themselves for the part of an hour the window starts in.
    SELECT count(*), count(DISTINCT t.conversation_id) INTO v_turns, v_conversations
      FROM aos_agent.turn t
     WHERE t.tenant_id = v_tenant AND t.agent_id = p_agent_id AND t.created_at >= v_since;
    WITH o AS MATERIALIZED (
        SELECT h.completed_turns AS completed, h.failed_turns AS failed, h.tokens_used, h.cost_usd, h.completed_ms, h.tool_usage
          FROM aos_agent.agent_hourly h
         WHERE h.tenant_id = v_tenant AND h.agent_id = p_agent_id AND h.hour >= v_edge
        UNION ALL
        SELECT (x.status = 'completed')::integer, (x.status IN ('failed', 'dead'))::integer, x.tokens_used, x.cost_usd,
               CASE WHEN x.status = 'completed' THEN extract(epoch FROM x.completed_at - x.created_at) * 1000 ELSE 0 END, x.tool_usage
          FROM aos_agent.turn x
         WHERE x.tenant_id = v_tenant AND x.agent_id = p_agent_id AND x.created_at >= v_since AND x.created_at < v_edge
           AND x.status IN ('completed', 'failed', 'cancelled', 'dead'))
    SELECT jsonb_build_object(
               'agent_id', p_agent_id,
               'days', p_days,
               'total_conversations', v_conversations,
               'total_turns', v_turns,
               'completed_turns', coalesce(sum(o.completed), 0),
               'failed_turns', coalesce(sum(o.failed), 0),
               'total_tokens', coalesce(sum(o.tokens_used), 0),
               'total_cost_usd', coalesce(round(sum(o.cost_usd), 6), 0),
               'avg_turn_duration_ms', coalesce(round(sum(o.completed_ms) / nullif(sum(o.completed), 0)), 0),
               'success_rate', coalesce(round(100.0 * sum(o.completed) / nullif(sum(o.completed) + sum(o.failed), 0), 1), 0),
               'tool_usage', coalesce((SELECT jsonb_object_agg(k, n) FROM (
                                        SELECT u.key AS k, sum(u.value::bigint) AS n
                                          FROM o x CROSS JOIN LATERAL jsonb_each_text(x.tool_usage) u
                                         GROUP BY u.key) tu), '{}'),
               'avg_rating', (SELECT round(avg(r.score), 2) FROM aos_agent.observation r
                               JOIN aos_agent.turn x ON x.tenant_id = r.tenant_id AND x.turn_id = r.turn_id
                              WHERE r.tenant_id = v_tenant AND r.observation_type = 'rating' AND x.agent_id = p_agent_id
                                AND r.created_at >= v_since))
      INTO v_result
      FROM o;
    RETURN v_result;
END
$$;
COMMENT ON FUNCTION aos_agent.get_agent_analytics(uuid, integer) IS
    'An agent''s last p_days: conversations, turns, tokens, cost, average turn duration, success rate (%), tool usage, average rating.';

CREATE FUNCTION aos_agent.get_hourly_activity(p_tenant_id uuid DEFAULT NULL, p_days integer DEFAULT 1)
RETURNS TABLE (hour timestamptz, turn_count bigint, step_count bigint, token_count bigint, cost_usd numeric, tool_calls bigint, failed_turns bigint)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_tenant uuid := aos_auth._require_tenant();
BEGIN
    IF p_tenant_id IS NOT NULL AND p_tenant_id <> v_tenant THEN
        RAISE EXCEPTION 'tenant % is not the tenant bound to this session', p_tenant_id
            USING ERRCODE = 'AO011', HINT = 'Bind that tenant first (aos_auth.set_tenant).';
    END IF;
    IF p_days IS NULL OR p_days NOT BETWEEN 1 AND 366 THEN
        RAISE EXCEPTION 'days must be between 1 and 366, got %', p_days USING ERRCODE = '22023', HINT = 'For example 1 for the last day.';
    END IF;
    RETURN QUERY
    SELECT date_trunc('hour', t.created_at), count(*), coalesce(sum(t.step_count), 0)::bigint, coalesce(sum(t.tokens_used), 0)::bigint,
           coalesce(sum(t.cost_usd), 0), coalesce(sum((SELECT sum(u.value::bigint) FROM jsonb_each_text(t.tool_usage) u)), 0)::bigint,
           count(*) FILTER (WHERE t.status IN ('failed', 'dead'))
      FROM aos_agent.turn t
     WHERE t.tenant_id = v_tenant AND t.created_at >= now() - make_interval(days => p_days)
     GROUP BY 1 ORDER BY 1;
END
$$;
COMMENT ON FUNCTION aos_agent.get_hourly_activity(uuid, integer) IS
    'Activity of the bound tenant per hour over the last p_days: turns, steps, tokens, cost, tool calls, failed turns.';
