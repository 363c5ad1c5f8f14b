-- pgAgentOS kernel — aos_core: runs (each worker attempt at a turn) and the append-only,
-- hash-chained event log.
--
-- The event log is a set of chains: one per conversation (its head lives on the conversation
-- row, which every step already updates, so the chain costs no extra lock) and one per tenant
-- for events outside conversations (head on the tenant row). Appends to a chain are serialised
-- by that row's lock, so concurrent writers never fork a chain. Each event's hash covers the
-- previous hash and the event's canonical text; events about steps carry the SHA-256 of the
-- step's content, so an edited step is detected too. Checkpoints (digests over chain heads) are
-- exported and checked later, which catches a deleted tail even when its head was rewritten.

CREATE SCHEMA aos_core;
COMMENT ON SCHEMA aos_core IS 'pgAgentOS core: runs (worker attempts) and the immutable, hash-chained event log.';

-- The value rules of the tables every step and claim writes are domains, not table CHECK
-- constraints: PostgreSQL parses and plans a table's CHECK constraints again in every INSERT and
-- UPDATE statement, and checks all of them on every UPDATE whatever it changes, while a domain's
-- rule is prepared once per session and checked only where a value of the domain is written (a
-- one-row step INSERT: 47 us with four CHECK constraints, ~35 with domains). Rules that tie two
-- columns together stay table constraints. Each domain constraint keeps the name the table
-- constraint had, so a violation still names it.
CREATE DOMAIN aos_core.driver AS text CONSTRAINT driver_check CHECK (VALUE IN ('worker', 'manual'));
CREATE DOMAIN aos_core.json_object AS jsonb CONSTRAINT json_object_check CHECK (jsonb_typeof(VALUE) = 'object');
CREATE DOMAIN aos_core.json_array AS jsonb CONSTRAINT json_array_check CHECK (jsonb_typeof(VALUE) = 'array');
CREATE DOMAIN aos_core.run_status AS text
    CONSTRAINT run_status_check CHECK (VALUE IN ('running', 'parked', 'released', 'succeeded', 'failed', 'lost', 'cancelled', 'paused'));
CREATE DOMAIN aos_core.event_seq AS bigint CONSTRAINT event_log_seq_check CHECK (VALUE >= 1);
CREATE DOMAIN aos_core.sha256 AS bytea CONSTRAINT sha256_check CHECK (length(VALUE) = 32);
COMMENT ON DOMAIN aos_core.driver IS 'Who drives a turn: a worker (lease token) or a person (by hand).';
COMMENT ON DOMAIN aos_core.json_object IS 'A JSON object.';
COMMENT ON DOMAIN aos_core.json_array IS 'A JSON array.';
COMMENT ON DOMAIN aos_core.run_status IS 'How an attempt at a turn stands or ended.';
COMMENT ON DOMAIN aos_core.event_seq IS 'Position of an event in its chain, from 1.';
COMMENT ON DOMAIN aos_core.sha256 IS 'A SHA-256 digest (32 bytes).';

CREATE TABLE aos_core.run (
    tenant_id       uuid        NOT NULL,
    run_id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    turn_id         uuid        NOT NULL,
    conversation_id uuid        NOT NULL,
    attempt         integer     NOT NULL,
    driver          aos_core.driver NOT NULL,
    worker_id       text,
    lease_token     uuid,
    status          aos_core.run_status NOT NULL DEFAULT 'running',
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    error           jsonb,
    CONSTRAINT run_pkey PRIMARY KEY (tenant_id, run_id),
    CONSTRAINT run_attempt_check CHECK (attempt >= 1)
);
CREATE INDEX run_turn_idx ON aos_core.run (tenant_id, turn_id, attempt);
COMMENT ON TABLE aos_core.run IS
    'Each attempt at a turn: who ran it (worker id, lease token), how it ended (parked for approval, succeeded, failed, lost when its lease expired).';

CREATE TABLE aos_core.event_log (
    tenant_id  uuid        NOT NULL,
    chain_id   uuid        NOT NULL,
    seq        aos_core.event_seq NOT NULL,
    event_type text        NOT NULL,
    entity_id  uuid,
    turn_id    uuid,
    actor      text        NOT NULL,
    payload    jsonb       NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    hash       aos_core.sha256 NOT NULL,
    CONSTRAINT event_log_pkey PRIMARY KEY (tenant_id, chain_id, seq)
);
COMMENT ON TABLE aos_core.event_log IS
    'Append-only log of every state change, hash-chained per conversation (chain_id = conversation_id) and per tenant (chain_id = tenant_id).';

CREATE TABLE aos_core.checkpoint (
    tenant_id     uuid        NOT NULL,
    checkpoint_no bigint      NOT NULL,
    digest        bytea       NOT NULL,
    chains        integer     NOT NULL,
    events        bigint      NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT checkpoint_pkey PRIMARY KEY (tenant_id, checkpoint_no)
);
COMMENT ON TABLE aos_core.checkpoint IS
    'Digests over the heads of a tenant''s event chains. Export each one (aos verify --export) and keep it outside the database.';

CREATE TABLE aos_core.checkpoint_head (
    tenant_id     uuid   NOT NULL,
    checkpoint_no bigint NOT NULL,
    chain_id      uuid   NOT NULL,
    seq           bigint NOT NULL,
    hash          bytea  NOT NULL,
    CONSTRAINT checkpoint_head_pkey PRIMARY KEY (tenant_id, checkpoint_no, chain_id),
    CONSTRAINT checkpoint_head_checkpoint_fkey FOREIGN KEY (tenant_id, checkpoint_no)
        REFERENCES aos_core.checkpoint (tenant_id, checkpoint_no)
);
COMMENT ON TABLE aos_core.checkpoint_head IS 'The chain heads a checkpoint covers (only the chains that grew since the previous one).';

-- The hash of an event: previous hash plus the event's canonical text. Timestamps enter as
-- microseconds since the epoch, so the text does not depend on DateStyle or TimeZone.
CREATE FUNCTION aos_core.event_hash(
    p_prev bytea, p_tenant_id uuid, p_chain_id uuid, p_seq bigint, p_event_type text,
    p_entity_id uuid, p_turn_id uuid, p_actor text, p_payload jsonb, p_created_at timestamptz)
RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT sha256(p_prev || convert_to(concat_ws('|', 'aos-event-v1', p_tenant_id, p_chain_id, p_seq, p_event_type,
        coalesce(p_entity_id::text, ''), coalesce(p_turn_id::text, ''), p_actor, coalesce(p_payload, '{}'::jsonb)::text,
        (extract(epoch FROM p_created_at) * 1000000)::bigint), 'UTF8'))
$$;
COMMENT ON FUNCTION aos_core.event_hash(bytea, uuid, uuid, bigint, text, uuid, uuid, text, jsonb, timestamptz) IS
    'SHA-256 of the previous hash and the canonical text of an event: how every link of an event chain is computed (and verified).';

CREATE FUNCTION aos_core._actor()
RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT coalesce('principal:' || aos_auth.current_principal()::text, 'role:' || session_user::text)
$$;
COMMENT ON FUNCTION aos_core._actor() IS 'Internal: who acts, for the event log (the bound principal, else the login role).';

-- Appends an event to the tenant's own chain (events that are not about one conversation).
CREATE FUNCTION aos_core._tenant_event(p_tenant_id uuid, p_event_type text, p_entity_id uuid, p_payload jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_at    timestamptz := clock_timestamp();
    v_actor text := aos_core._actor();
    v_seq   bigint;
    v_hash  bytea;
BEGIN
    UPDATE aos_auth.tenant t
       SET event_seq = t.event_seq + 1,
           event_head = aos_core.event_hash(t.event_head, t.tenant_id, t.tenant_id, t.event_seq + 1, p_event_type,
                                             p_entity_id, NULL, v_actor, p_payload, v_at)
     WHERE t.tenant_id = p_tenant_id
    RETURNING t.event_seq, t.event_head INTO v_seq, v_hash;
    IF v_seq IS NULL THEN
        RAISE EXCEPTION 'tenant % does not exist', p_tenant_id USING ERRCODE = 'AO002', HINT = 'Bind an existing tenant.';
    END IF;
    INSERT INTO aos_core.event_log (tenant_id, chain_id, seq, event_type, entity_id, turn_id, actor, payload, created_at, hash)
    VALUES (p_tenant_id, p_tenant_id, v_seq, p_event_type, p_entity_id, NULL, v_actor, p_payload, v_at, v_hash);
    RETURN v_seq;
END
$$;
COMMENT ON FUNCTION aos_core._tenant_event(uuid, text, uuid, jsonb) IS 'Internal: appends an event to a tenant''s chain.';
