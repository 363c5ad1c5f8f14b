-- pgAgentOS kernel — verifying the event log, and checkpoints kept outside the database.
--
-- verify_event_chain recomputes every link (each event's hash from its predecessor's stored
-- hash and its own fields), checks that sequence numbers have no gaps, that each chain's head
-- (on the conversation or tenant row) is its last event, and that every step an event names
-- still has the content hash the event recorded. It names the first bad entry.
-- What it cannot see: a deleted tail whose head was rewritten to match. create_checkpoint
-- exports a digest over the chain heads; verify_checkpoint later proves that every exported
-- head is still in the log (docs/security.md).

-- Invoker rights: everything it reads (the log, the chain heads on conversations and tenants,
-- the steps) is readable by the caller under row-level security, so it needs no more.
CREATE FUNCTION aos_core.verify_event_chain(p_tenant_id uuid DEFAULT NULL, p_chain_id uuid DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_tenant uuid := aos_auth._require_tenant();
    v_bad    record;
    v_counts record;
BEGIN
    IF p_tenant_id IS NOT NULL AND p_tenant_id <> v_tenant THEN
        RAISE EXCEPTION 'tenant % is not the tenant bound to this session', p_tenant_id
            USING ERRCODE = 'AO011', HINT = 'Bind that tenant first (aos_auth.set_tenant), then verify.';
    END IF;
    SELECT count(DISTINCT chain_id) AS chains, count(*) AS events INTO v_counts
      FROM aos_core.event_log WHERE tenant_id = v_tenant AND (p_chain_id IS NULL OR chain_id = p_chain_id);

    SELECT * INTO v_bad FROM (
        -- every link
        SELECT e.chain_id, e.seq,
               CASE WHEN e.seq <> coalesce(e.prev_seq, 0) + 1 THEN format('sequence jumps from %s to %s', coalesce(e.prev_seq, 0), e.seq)
                    ELSE 'hash does not match the event (it was changed, reordered or inserted)' END AS reason
          FROM (SELECT l.*, lag(l.seq) OVER w AS prev_seq, lag(l.hash) OVER w AS prev_hash
                  FROM aos_core.event_log l
                 WHERE l.tenant_id = v_tenant AND (p_chain_id IS NULL OR l.chain_id = p_chain_id)
                WINDOW w AS (PARTITION BY l.chain_id ORDER BY l.seq)) e
         WHERE e.seq <> coalesce(e.prev_seq, 0) + 1
            OR e.hash <> aos_core.event_hash(coalesce(e.prev_hash, '\x'::bytea), e.tenant_id, e.chain_id, e.seq, e.event_type,
                                             e.entity_id, e.turn_id, e.actor, e.payload, e.created_at)
        UNION ALL
        -- every head is its chain's last event
        SELECT h.chain_id, h.head_seq,
               format('the chain head says seq %s but the log ends at seq %s', h.head_seq, coalesce(l.seq, 0))
          FROM (SELECT c.conversation_id AS chain_id, c.event_seq AS head_seq, c.event_head AS head_hash
                  FROM aos_agent.conversation c WHERE c.tenant_id = v_tenant AND c.event_seq > 0
                UNION ALL
                SELECT t.tenant_id, t.event_seq, t.event_head FROM aos_auth.tenant t WHERE t.tenant_id = v_tenant AND t.event_seq > 0) h
          LEFT JOIN LATERAL (SELECT x.seq, x.hash FROM aos_core.event_log x WHERE x.tenant_id = v_tenant AND x.chain_id = h.chain_id
                              ORDER BY x.seq DESC LIMIT 1) l ON true
         WHERE (p_chain_id IS NULL OR h.chain_id = p_chain_id)
           AND (l.seq IS DISTINCT FROM h.head_seq OR l.hash IS DISTINCT FROM h.head_hash)
        UNION ALL
        -- every step an event names still has the content it had
        SELECT e.chain_id, e.seq,
               CASE WHEN s.step_id IS NULL THEN format('step %s is missing', r ->> 'id')
                    ELSE format('step %s changed after it was recorded', r ->> 'id') END
          FROM aos_core.event_log e
         CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(e.payload -> 'steps') = 'array' THEN e.payload -> 'steps' ELSE '[]' END) r
          LEFT JOIN aos_agent.step s ON s.tenant_id = e.tenant_id AND s.step_id = (r ->> 'id')::uuid
         WHERE e.tenant_id = v_tenant AND (p_chain_id IS NULL OR e.chain_id = p_chain_id)
           AND (s.step_id IS NULL OR s.step_type <> r ->> 'type' OR encode(aos_core.json_sha256(s.content), 'hex') <> r ->> 'sha256')
        UNION ALL
        -- every step is named by an event
        SELECT s.conversation_id, NULL::bigint, format('step %s is not in the event log', s.step_id)
          FROM aos_agent.step s
         WHERE s.tenant_id = v_tenant AND (p_chain_id IS NULL OR s.conversation_id = p_chain_id)
           AND NOT EXISTS (SELECT 1 FROM aos_core.event_log e
                            WHERE e.tenant_id = v_tenant AND e.chain_id = s.conversation_id
                              AND e.payload -> 'steps' @> jsonb_build_array(jsonb_build_object('id', s.step_id)))
    ) bad
    ORDER BY seq NULLS LAST, chain_id
    LIMIT 1;

    RETURN jsonb_build_object('ok', v_bad IS NULL, 'tenant_id', v_tenant, 'chains', v_counts.chains, 'events', v_counts.events,
        'first_bad', CASE WHEN v_bad IS NULL THEN NULL
                          ELSE jsonb_build_object('chain_id', v_bad.chain_id, 'seq', v_bad.seq, 'reason', v_bad.reason) END);
END
$$;
COMMENT ON FUNCTION aos_core.verify_event_chain(uuid, uuid) IS
    'Recomputes the bound tenant''s event chains (or one chain) and names the first bad entry: {"ok", "chains", "events", "first_bad": {"chain_id", "seq", "reason"}}.';

CREATE FUNCTION aos_core._checkpoint_entries(p_tenant_id uuid, p_checkpoint_no bigint)
RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(string_agg(h.chain_id::text || ':' || h.seq || ':' || encode(h.hash, 'hex'), E'\n' ORDER BY h.chain_id), '')
    FROM aos_core.checkpoint_head h WHERE h.tenant_id = p_tenant_id AND h.checkpoint_no = p_checkpoint_no
$$;
COMMENT ON FUNCTION aos_core._checkpoint_entries(uuid, bigint) IS 'Internal: the canonical text of the heads a checkpoint covers.';

-- create_checkpoint: SECURITY DEFINER because checkpoint tables are not writable by clients;
-- tenant administrators (and workers, through their service) call it for their own tenant.
CREATE FUNCTION aos_core.create_checkpoint()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET aos.kernel_tenant = ''
SET aos.kernel_scope = ''
AS $$
DECLARE
    v_tenant uuid := aos_auth._enter();
    v_prev   aos_core.checkpoint%ROWTYPE;
    v_no     bigint;
    v_digest bytea;
    v_chains integer;
    v_events bigint;
BEGIN
    -- One checkpoint at a time per tenant. A row lock on the tenant, not an advisory lock: any
    -- session may take advisory locks, so another tenant could hold this one forever.
    PERFORM 1 FROM aos_auth.tenant WHERE tenant_id = v_tenant FOR NO KEY UPDATE;
    SELECT * INTO v_prev FROM aos_core.checkpoint WHERE tenant_id = v_tenant ORDER BY checkpoint_no DESC LIMIT 1;
    v_no := coalesce(v_prev.checkpoint_no, 0) + 1;
    INSERT INTO aos_core.checkpoint (tenant_id, checkpoint_no, digest, chains, events)
    VALUES (v_tenant, v_no, '\x', 0, 0);
    INSERT INTO aos_core.checkpoint_head (tenant_id, checkpoint_no, chain_id, seq, hash)
    SELECT v_tenant, v_no, h.chain_id, h.seq, h.hash
      FROM (SELECT c.conversation_id AS chain_id, c.event_seq AS seq, c.event_head AS hash
              FROM aos_agent.conversation c WHERE c.tenant_id = v_tenant AND c.event_seq > 0
            UNION ALL
            SELECT t.tenant_id, t.event_seq, t.event_head FROM aos_auth.tenant t WHERE t.tenant_id = v_tenant AND t.event_seq > 0) h
     WHERE NOT EXISTS (SELECT 1 FROM aos_core.checkpoint_head p
                        WHERE p.tenant_id = v_tenant AND p.chain_id = h.chain_id AND p.seq = h.seq AND p.checkpoint_no < v_no);
    v_digest := sha256(coalesce(v_prev.digest, '\x'::bytea) || sha256(convert_to(aos_core._checkpoint_entries(v_tenant, v_no), 'UTF8')));
    SELECT count(*), coalesce(sum(seq), 0) INTO v_chains, v_events
      FROM (SELECT DISTINCT ON (chain_id) chain_id, seq FROM aos_core.checkpoint_head
             WHERE tenant_id = v_tenant ORDER BY chain_id, checkpoint_no DESC) latest;
    UPDATE aos_core.checkpoint SET digest = v_digest, chains = v_chains, events = v_events
     WHERE tenant_id = v_tenant AND checkpoint_no = v_no;
    RETURN jsonb_build_object('tenant_id', v_tenant, 'checkpoint_no', v_no, 'digest', encode(v_digest, 'hex'),
                              'chains', v_chains, 'events', v_events, 'created_at', now());
END
$$;
COMMENT ON FUNCTION aos_core.create_checkpoint() IS
    'Seals the current heads of the bound tenant''s event chains into a digest. Store the returned JSON outside the database (aos verify --export). Definer rights: checkpoint tables are not writable by clients; it seals only the session''s tenant.';

-- Invoker rights, like verify_event_chain: the checkpoint tables and the log are readable by the
-- caller for its own tenant.
CREATE FUNCTION aos_core.verify_checkpoint(p_checkpoint jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_tenant uuid := aos_auth._require_tenant();
    v_no     bigint;
    v_digest bytea := '\x';
    v_k      bigint;
    v_bad    record;
    v_chain  jsonb;
BEGIN
    PERFORM aos_core._check_json(p_checkpoint, 'checkpoint', 'object', 65536);
    -- A forged checkpoint must not slip through a NULL comparison: every field is required and typed.
    IF jsonb_typeof(p_checkpoint -> 'tenant_id') IS DISTINCT FROM 'string'
       OR jsonb_typeof(p_checkpoint -> 'checkpoint_no') IS DISTINCT FROM 'number'
       OR jsonb_typeof(p_checkpoint -> 'digest') IS DISTINCT FROM 'string' THEN
        RAISE EXCEPTION 'a checkpoint needs tenant_id, checkpoint_no and digest' USING ERRCODE = '22023',
            HINT = 'Pass the JSON that aos_core.create_checkpoint returned.';
    END IF;
    IF (p_checkpoint ->> 'tenant_id')::uuid IS DISTINCT FROM v_tenant THEN
        RAISE EXCEPTION 'the checkpoint belongs to tenant %, not to the bound tenant', p_checkpoint ->> 'tenant_id'
            USING ERRCODE = 'AO011', HINT = 'Bind that tenant first.';
    END IF;
    IF (p_checkpoint ->> 'checkpoint_no')::numeric <> trunc((p_checkpoint ->> 'checkpoint_no')::numeric)
       OR (p_checkpoint ->> 'checkpoint_no')::numeric NOT BETWEEN 1 AND 9223372036854775807 THEN
        RAISE EXCEPTION 'checkpoint_no must be a whole number of at least 1, got %', p_checkpoint -> 'checkpoint_no'
            USING ERRCODE = '22023', HINT = 'Pass the JSON that aos_core.create_checkpoint returned.';
    END IF;
    v_no := (p_checkpoint ->> 'checkpoint_no')::bigint;
    IF NOT EXISTS (SELECT 1 FROM aos_core.checkpoint WHERE tenant_id = v_tenant AND checkpoint_no = v_no) THEN
        RETURN jsonb_build_object('ok', false, 'checkpoint_no', v_no, 'reason', format('checkpoint %s is missing from the database', v_no));
    END IF;
    FOR v_k IN 1 .. v_no LOOP
        v_digest := sha256(v_digest || sha256(convert_to(aos_core._checkpoint_entries(v_tenant, v_k), 'UTF8')));
    END LOOP;
    IF encode(v_digest, 'hex') IS DISTINCT FROM lower(p_checkpoint ->> 'digest') THEN
        RETURN jsonb_build_object('ok', false, 'checkpoint_no', v_no,
            'reason', 'the checkpoint records in the database do not produce the exported digest (they were altered)');
    END IF;
    SELECT h.chain_id, h.seq,
           CASE WHEN e.seq IS NULL THEN format('chain %s lost its events from seq %s on', h.chain_id, h.seq)
                ELSE format('event %s of chain %s changed since the checkpoint', h.seq, h.chain_id) END AS reason
      INTO v_bad
      FROM aos_core.checkpoint_head h
      LEFT JOIN aos_core.event_log e ON e.tenant_id = h.tenant_id AND e.chain_id = h.chain_id AND e.seq = h.seq
     WHERE h.tenant_id = v_tenant AND h.checkpoint_no <= v_no AND (e.seq IS NULL OR e.hash <> h.hash)
     ORDER BY h.checkpoint_no, h.chain_id
     LIMIT 1;
    IF FOUND THEN
        RETURN jsonb_build_object('ok', false, 'checkpoint_no', v_no, 'chain_id', v_bad.chain_id, 'seq', v_bad.seq, 'reason', v_bad.reason);
    END IF;
    -- The heads are still there; the links that lead to them must still hold too (a prefix of
    -- the current chain), so the whole log is verified as well.
    v_chain := aos_core.verify_event_chain();
    IF NOT (v_chain ->> 'ok')::boolean THEN
        RETURN jsonb_build_object('ok', false, 'checkpoint_no', v_no, 'chain_id', v_chain #> '{first_bad,chain_id}',
            'seq', v_chain #> '{first_bad,seq}', 'reason', 'the event log fails verification: ' || (v_chain #>> '{first_bad,reason}'));
    END IF;
    RETURN jsonb_build_object('ok', true, 'checkpoint_no', v_no);
END
$$;
COMMENT ON FUNCTION aos_core.verify_checkpoint(jsonb) IS
    'Checks an exported checkpoint against the database: the digest still follows from the stored checkpoints, every head it covered is still in the log, and the log still verifies (verify_event_chain).';
