-- pgAgentOS kernel — shared helpers: argument checks with clear errors, limits, hashing.
--
-- Limits (docs/sql-api.md): a message, a reasoning text, an answer, a tool's arguments or output
-- and a step's content may each be up to 1 MiB (1,048,576 bytes of text); names up to 100
-- characters; notes and reasons up to 4,000.

CREATE FUNCTION aos_core.max_content_bytes()
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 1048576 $$;
COMMENT ON FUNCTION aos_core.max_content_bytes() IS 'Largest message, reasoning, answer, tool input or output the kernel accepts (1 MiB).';

-- _check_text: NULL → 22004, blank → 22023, too long → AO010. Returns the text.
CREATE FUNCTION aos_core._check_text(p_value text, p_name text, p_max_bytes integer DEFAULT 1048576, p_allow_blank boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF p_value IS NULL THEN
        RAISE EXCEPTION '% must not be null', p_name USING ERRCODE = '22004', HINT = format('Pass a value for %s.', p_name);
    END IF;
    IF NOT p_allow_blank AND btrim(p_value) = '' THEN
        RAISE EXCEPTION '% must not be empty', p_name USING ERRCODE = '22023', HINT = format('Pass a non-empty %s.', p_name);
    END IF;
    IF octet_length(p_value) > p_max_bytes THEN
        RAISE EXCEPTION '% is % bytes, more than the limit of % bytes', p_name, octet_length(p_value), p_max_bytes
            USING ERRCODE = 'AO010', HINT = 'Shorten it, or store large content elsewhere and pass a reference.';
    END IF;
    RETURN p_value;
END
$$;
COMMENT ON FUNCTION aos_core._check_text(text, text, integer, boolean) IS 'Internal: argument check for text (null, blank, size).';

CREATE FUNCTION aos_core._check_json(p_value jsonb, p_name text, p_type text DEFAULT NULL, p_max_bytes integer DEFAULT 1048576)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF p_value IS NULL THEN
        RAISE EXCEPTION '% must not be null', p_name USING ERRCODE = '22004', HINT = format('Pass a JSON value for %s.', p_name);
    END IF;
    IF p_type IS NOT NULL AND jsonb_typeof(p_value) <> p_type THEN
        RAISE EXCEPTION '% must be a JSON %, got %', p_name, p_type, jsonb_typeof(p_value)
            USING ERRCODE = '22023', HINT = CASE p_type WHEN 'object' THEN format('Pass an object such as {} for %s.', p_name)
                                                         ELSE format('Pass a JSON %s for %s.', p_type, p_name) END;
    END IF;
    IF octet_length(p_value::text) > p_max_bytes THEN
        RAISE EXCEPTION '% is % bytes, more than the limit of % bytes', p_name, octet_length(p_value::text), p_max_bytes
            USING ERRCODE = 'AO010', HINT = 'Shorten it, or store large content elsewhere and pass a reference.';
    END IF;
    RETURN p_value;
END
$$;
COMMENT ON FUNCTION aos_core._check_json(jsonb, text, text, integer) IS 'Internal: argument check for JSON (null, type, size).';

CREATE FUNCTION aos_core._check_id(p_value uuid, p_name text)
RETURNS uuid
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF p_value IS NULL THEN
        RAISE EXCEPTION '% must not be null', p_name USING ERRCODE = '22004', HINT = format('Pass the %s.', p_name);
    END IF;
    RETURN p_value;
END
$$;
COMMENT ON FUNCTION aos_core._check_id(uuid, text) IS 'Internal: argument check for ids (not null).';

CREATE FUNCTION aos_core._not_found(p_what text, p_id anyelement)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION '% % not found', p_what, p_id
        USING ERRCODE = 'AO002',
              HINT = format('Check the id; %s of other tenants are invisible to this session.', p_what || 's');
END
$$;
COMMENT ON FUNCTION aos_core._not_found(text, anyelement) IS 'Internal: raises AO002 for an unknown id (or an id of another tenant).';

-- SHA-256 of a JSON value's canonical text (jsonb output is canonical: keys sorted, no spaces
-- variance). Binds approvals to the exact arguments.
-- STABLE, not IMMUTABLE: convert_to is STABLE, and PostgreSQL inlines a SQL function into the
-- calling statement only when the body is no more volatile than the declaration (an IMMUTABLE
-- declaration made every call a separate statement; it runs about once per step written).
CREATE FUNCTION aos_core.json_sha256(p_value jsonb)
RETURNS bytea
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$ SELECT sha256(convert_to(p_value::text, 'UTF8')) $$;
COMMENT ON FUNCTION aos_core.json_sha256(jsonb) IS 'SHA-256 of the canonical text of a JSON value (how tool arguments are bound to their approval).';

-- _merge_counts: two JSON objects of counts added key by key ({"a": 1} + {"a": 2, "b": 1}).
-- PL/pgSQL: a SQL function with a FROM clause is parsed and planned again in every statement that
-- calls it (here: every finished turn's hourly upsert); PL/pgSQL keeps its plan.
CREATE FUNCTION aos_core._merge_counts(p_a jsonb, p_b jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN (SELECT coalesce(jsonb_object_agg(u.key, u.n), '{}')
              FROM (SELECT x.key, sum(x.value::bigint) AS n
                      FROM (SELECT * FROM jsonb_each_text(coalesce(p_a, '{}')) UNION ALL SELECT * FROM jsonb_each_text(coalesce(p_b, '{}'))) x
                     GROUP BY x.key) u);
END
$$;
COMMENT ON FUNCTION aos_core._merge_counts(jsonb, jsonb) IS 'Internal: adds two JSON objects of counts key by key.';

-- _hour: the start of a timestamp's hour in UTC, whatever the session's TimeZone.
CREATE FUNCTION aos_core._hour(p_at timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
-- date_bin on absolute time (no time zone involved) is IMMUTABLE, so PostgreSQL inlines this;
-- extract(epoch FROM timestamptz) is only STABLE, and kept the function from being inlined.
AS $$ SELECT date_bin('1 hour', p_at, '2000-01-01 00:00:00+00'::timestamptz) $$;
COMMENT ON FUNCTION aos_core._hour(timestamptz) IS 'Internal: the start of the UTC hour a timestamp falls in.';

CREATE FUNCTION aos_core.format_duration(p_ms bigint)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_ms IS NULL THEN NULL
        WHEN p_ms < 1000 THEN p_ms || ' ms'
        WHEN p_ms < 60000 THEN round(p_ms / 1000.0, 1) || ' s'
        WHEN p_ms < 3600000 THEN round(p_ms / 60000.0, 1) || ' min'
        ELSE round(p_ms / 3600000.0, 1) || ' h'
    END
$$;
COMMENT ON FUNCTION aos_core.format_duration(bigint) IS 'Milliseconds as ms, s, min or h.';
