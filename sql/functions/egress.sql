-- pgAgentOS kernel — egress decisions for the runtime's network tools.
--
-- A worker asks before every outbound request (and every redirect hop) whether the host and port
-- are on the allowlist of the tenant of the turn it holds; the lease token is the proof that it
-- works for that tenant. Refusals are logged here, in the same call. The worker then resolves
-- the name itself, checks every address against private and special ranges, connects only to an
-- address it checked, and logs what it did (allowed, or refused for the address) with
-- aos_egress.log_request. docs/runtime.md, "Egress", describes the whole path.

-- _normalize_host: lower case, no trailing dot; NULL when it is not a plain DNS name.
CREATE FUNCTION aos_egress._normalize_host(p_host text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN h ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$' THEN h END
      FROM (SELECT rtrim(lower(btrim(p_host)), '.') AS h) x
$$;
COMMENT ON FUNCTION aos_egress._normalize_host(text) IS
    'Internal: a host name in the allowlist''s form (lower case, no trailing dot), or NULL for anything else (userinfo, wildcards, spaces).';

-- _insert_request: one row of the request log (the caller established the tenant).
CREATE FUNCTION aos_egress._insert_request(p_tenant_id uuid, p_turn_id uuid, p_step_id uuid, p_skill_key text, p_method text,
    p_url text, p_host text, p_resolved_ip inet, p_decision text, p_reason text, p_status_code integer, p_bytes bigint,
    p_duration_ms integer)
RETURNS uuid
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO aos_egress.request (tenant_id, turn_id, step_id, skill_key, method, url, host, resolved_ip, decision, reason,
                                    status_code, bytes, duration_ms, created_at)
    VALUES (p_tenant_id, p_turn_id, p_step_id, p_skill_key, left(coalesce(p_method, 'GET'), 16), left(p_url, 4000),
            left(p_host, 255), p_resolved_ip, p_decision, left(p_reason, 2000), p_status_code, p_bytes, p_duration_ms, clock_timestamp())
    RETURNING request_id
$$;
COMMENT ON FUNCTION aos_egress._insert_request(uuid, uuid, uuid, text, text, text, text, inet, text, text, integer, bigint, integer) IS
    'Internal: appends one decision to aos_egress.request.';

-- check_host: SECURITY DEFINER because the allowlist and the request log are tenant tables that
-- the worker role cannot read or write; the tenant comes from the lease token, never from an
-- argument. A refusal is logged before the function returns.
CREATE FUNCTION aos_egress.check_host(p_turn_id uuid, p_lease_token uuid, p_skill_key text, p_method text, p_url text,
                                      p_host text, p_port integer, p_step_id uuid DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid;
    v_host   text;
    v_entry  uuid;
    v_reason text;
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    PERFORM aos_core._check_id(p_lease_token, 'lease token');
    PERFORM aos_core._check_text(p_skill_key, 'skill key', 64);
    PERFORM aos_core._check_text(p_url, 'url', 8000);
    PERFORM aos_core._check_text(p_host, 'host', 1000);
    IF p_port IS NULL OR p_port NOT BETWEEN 1 AND 65535 THEN
        RAISE EXCEPTION 'port must be between 1 and 65535, got %', p_port USING ERRCODE = '22023', HINT = 'Pass the port the request goes to.';
    END IF;
    v_tenant := (aos_agent._lease_target(p_turn_id, p_lease_token)).tenant_id;
    PERFORM aos_auth._act_as(v_tenant);
    v_host := aos_egress._normalize_host(p_host);
    IF v_host IS NULL THEN
        v_reason := 'not a host name the allowlist can hold';
    ELSE
        SELECT a.allowlist_id INTO v_entry
          FROM aos_egress.allowlist a
         WHERE a.tenant_id = v_tenant AND a.port = p_port AND (a.skill_key IS NULL OR a.skill_key = p_skill_key)
           AND (a.host = v_host OR (a.allow_subdomains AND right(v_host, length(a.host) + 1) = '.' || a.host))
         ORDER BY (a.host = v_host) DESC, (a.skill_key IS NOT NULL) DESC
         LIMIT 1;
        IF v_entry IS NULL THEN
            v_reason := format('%s:%s is not on the tenant''s egress allowlist', v_host, p_port);
        END IF;
    END IF;
    IF v_reason IS NOT NULL THEN
        PERFORM aos_egress._insert_request(v_tenant, p_turn_id, p_step_id, p_skill_key, p_method, p_url, left(p_host, 255), NULL,
                                           'deny', v_reason, NULL, NULL, NULL);
        RETURN jsonb_build_object('allowed', false, 'host', v_host, 'reason', v_reason);
    END IF;
    RETURN jsonb_build_object('allowed', true, 'host', v_host, 'allowlist_id', v_entry);
END
$$;
COMMENT ON FUNCTION aos_egress.check_host(uuid, uuid, text, text, text, text, integer, uuid) IS
    'A worker asks whether a tool of the turn it holds may reach host:port (exact host, or a subdomain of an entry that allows them; the port must match). Refusals are logged in aos_egress.request.';

-- log_request: SECURITY DEFINER for the same reason; the worker reports what happened after
-- the allowlist said yes: refused for the address it resolved, or sent (status, bytes, time).
CREATE FUNCTION aos_egress.log_request(p_turn_id uuid, p_lease_token uuid, p_request jsonb)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid;
    v_ip     inet;
BEGIN
    PERFORM aos_core._check_id(p_turn_id, 'turn id');
    PERFORM aos_core._check_id(p_lease_token, 'lease token');
    PERFORM aos_core._check_json(p_request, 'request', 'object', 65536);
    IF coalesce(p_request ->> 'decision', '') NOT IN ('allow', 'deny') THEN
        RAISE EXCEPTION 'request.decision must be allow or deny' USING ERRCODE = '22023', HINT = 'Pass {"decision": "deny", "reason": "..."}.';
    END IF;
    PERFORM aos_core._check_text(p_request ->> 'url', 'request.url', 8000);
    PERFORM aos_core._check_text(p_request ->> 'host', 'request.host', 1000);
    BEGIN
        v_ip := (p_request ->> 'resolved_ip')::inet;
    EXCEPTION WHEN invalid_text_representation THEN
        RAISE EXCEPTION 'request.resolved_ip is not an address: %', p_request ->> 'resolved_ip'
            USING ERRCODE = '22P02', HINT = 'Pass the address the name resolved to, e.g. "93.184.216.34".';
    END;
    v_tenant := (aos_agent._lease_target(p_turn_id, p_lease_token)).tenant_id;
    PERFORM aos_auth._act_as(v_tenant);
    RETURN aos_egress._insert_request(v_tenant, p_turn_id, (p_request ->> 'step_id')::uuid, p_request ->> 'skill_key',
        p_request ->> 'method', p_request ->> 'url', p_request ->> 'host', v_ip, p_request ->> 'decision', p_request ->> 'reason',
        (p_request ->> 'status_code')::integer, (p_request ->> 'bytes')::bigint, (p_request ->> 'duration_ms')::integer);
EXCEPTION WHEN invalid_text_representation OR numeric_value_out_of_range THEN
    RAISE EXCEPTION 'request has a malformed field: %', SQLERRM USING ERRCODE = '22023',
        HINT = 'step_id is a uuid; status_code, bytes and duration_ms are whole numbers.';
END
$$;
COMMENT ON FUNCTION aos_egress.log_request(uuid, uuid, jsonb) IS
    'A worker logs an outbound request of the turn it holds: {"decision", "reason", "method", "url", "host", "resolved_ip", "status_code", "bytes", "duration_ms", "skill_key", "step_id"}.';
