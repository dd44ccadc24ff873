-- Version 3: only the trigger can make a gateway deliver, and a publisher
-- can publish and do nothing else.
--
-- 1. NOTIFY needs no privilege: any session may send any payload on any
--    channel. So every payload the trigger sends is signed with
--    HMAC-SHA-256, keyed by a secret made here that only the schema owner
--    and plexor_gateway can read, and sent as 64 hex digits, a space and
--    the payload. Gateways drop (and count) every payload whose signature
--    does not match.
-- 2. The triggers and plexor.publish run with the schema owner's rights
--    (SECURITY DEFINER, fixed search_path), so publishers need no rights on
--    plexor.tags or plexor.log. Two roles carry what each side needs:
--    plexor_publisher (INSERT on plexor.messages, plexor.publish) and
--    plexor_gateway (listen, catch up, retention, the HTTP publish path).

-- Roles belong to the cluster, not the database: another database may have
-- made them already (possibly at this moment).
DO $$
BEGIN
    BEGIN
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'plexor_publisher') THEN
            CREATE ROLE plexor_publisher NOLOGIN;
        END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    BEGIN
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'plexor_gateway') THEN
            CREATE ROLE plexor_gateway NOLOGIN;
        END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    -- The HTTP publish path: a gateway publishes too.
    IF NOT pg_catalog.pg_has_role('plexor_gateway', 'plexor_publisher', 'MEMBER') THEN
        GRANT plexor_publisher TO plexor_gateway;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'plexor: the roles plexor_publisher and plexor_gateway are missing and % may not create them', current_user
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Create them once as a superuser: CREATE ROLE plexor_publisher NOLOGIN; '
                     'CREATE ROLE plexor_gateway NOLOGIN; GRANT plexor_publisher TO plexor_gateway;';
END
$$;

-- The signing key, with the two padded keys HMAC hashes before the message
-- (key XOR 0x36…, key XOR 0x5c…), so the trigger needs only sha256().
CREATE TABLE plexor.notification_key (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    key       bytea   NOT NULL CHECK (octet_length(key) = 32),
    inner_pad bytea   NOT NULL,
    outer_pad bytea   NOT NULL
);

DO $$
DECLARE
    -- 244 random bits from the server's strong random source.
    v_key    bytea := decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex');
    v_padded bytea;
    v_inner  bytea;
    v_outer  bytea;
BEGIN
    v_padded := v_key || decode(repeat('00', 32), 'hex');
    v_inner := v_padded;
    v_outer := v_padded;
    FOR i IN 0 .. 63 LOOP
        v_inner := set_byte(v_inner, i, get_byte(v_padded, i) # 54);
        v_outer := set_byte(v_outer, i, get_byte(v_padded, i) # 92);
    END LOOP;
    INSERT INTO plexor.notification_key (key, inner_pad, outer_pad) VALUES (v_key, v_inner, v_outer);
END
$$;

-- BEFORE ROW: as in version 1, now with the owner's rights (it reads plexor.settings).
CREATE OR REPLACE FUNCTION plexor.messages_validate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_size  bigint;
    v_limit bigint;
BEGIN
    IF NEW.tags IS NULL THEN
        RAISE EXCEPTION 'plexor: tags must not be NULL' USING ERRCODE = 'not_null_violation';
    END IF;
    PERFORM plexor.check_tag_list(NEW.tags, 'tags');
    IF NEW.only_for IS NOT NULL THEN
        PERFORM plexor.check_tag_list(NEW.only_for, 'only_for');
    END IF;
    IF NEW.data IS NULL THEN
        RAISE EXCEPTION 'plexor: data must not be SQL NULL'
            USING ERRCODE = 'not_null_violation',
                  HINT = 'Publish a JSON null as ''null''::json';
    END IF;
    v_size := octet_length(NEW.data::text);
    v_limit := plexor.max_data_bytes();
    IF v_size > v_limit THEN
        RAISE EXCEPTION 'plexor: data is % bytes; the limit is % bytes', v_size, v_limit
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    NEW.time := clock_timestamp();
    RETURN NEW;
END
$$;

-- AFTER STATEMENT: as in version 2, with the owner's rights, and each
-- payload signed:
--   <hmac> m <tag> <id> <time> <n> <tag1> <seq1> ... <tagN> <seqN> <k> <only1> ... <onlyK>\n<data>
--   <hmac> r <tag> <seq> <id>
-- <hmac> is HMAC-SHA-256 of everything after it and its space, in UTF-8, as
-- 64 lowercase hex digits. A payload is at most 7999 bytes in all.
CREATE OR REPLACE FUNCTION plexor.messages_sequence() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r         record;
    v_head    text;
    v_body    text;
    v_inner   bytea;
    v_outer   bytea;
    i         int;
BEGIN
    SELECT k.inner_pad, k.outer_pad INTO v_inner, v_outer FROM plexor.notification_key AS k;

    INSERT INTO plexor.tags (tag, last_seq)
        SELECT DISTINCT u.tag, 0 FROM new_rows AS n CROSS JOIN LATERAL unnest(n.tags) AS u(tag)
        ORDER BY 1
        ON CONFLICT (tag) DO NOTHING;
    PERFORM 1 FROM plexor.tags AS t
        WHERE t.tag IN (SELECT unnest(n.tags) FROM new_rows AS n)
        ORDER BY t.tag
        FOR UPDATE;

    INSERT INTO plexor.log (tag, seq, message_id)
        SELECT e.tag, t.last_seq + row_number() OVER (PARTITION BY e.tag ORDER BY e.id), e.id
        FROM (SELECT n.id, u.tag FROM new_rows AS n CROSS JOIN LATERAL unnest(n.tags) AS u(tag)) AS e
        JOIN plexor.tags AS t ON t.tag = e.tag;
    UPDATE plexor.tags AS t SET last_seq = t.last_seq + c.added
        FROM (SELECT u.tag, count(*) AS added
              FROM new_rows AS n CROSS JOIN LATERAL unnest(n.tags) AS u(tag)
              GROUP BY u.tag) AS c
        WHERE t.tag = c.tag;

    FOR r IN
        SELECT n.id, n.data::text AS data, coalesce(n.only_for, '{}') AS only_for,
               to_char(n.time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at,
               s.tags, s.seqs
        FROM new_rows AS n
        CROSS JOIN LATERAL (
            SELECT array_agg(l.tag ORDER BY l.tag) AS tags, array_agg(l.seq ORDER BY l.tag) AS seqs
            FROM plexor.log AS l WHERE l.message_id = n.id
        ) AS s
        ORDER BY n.id
    LOOP
        v_head := r.id || ' ' || r.at || ' ' || cardinality(r.tags);
        FOR i IN 1 .. cardinality(r.tags) LOOP
            v_head := v_head || ' ' || r.tags[i] || ' ' || r.seqs[i];
        END LOOP;
        v_head := v_head || ' ' || cardinality(r.only_for);
        IF cardinality(r.only_for) > 0 THEN
            v_head := v_head || ' ' || array_to_string(r.only_for, ' ');
        END IF;
        FOR i IN 1 .. cardinality(r.tags) LOOP
            v_body := 'm ' || r.tags[i] || ' ' || v_head || E'\n' || r.data;
            IF octet_length(v_body) > 7999 - 65 THEN
                v_body := 'r ' || r.tags[i] || ' ' || r.seqs[i] || ' ' || r.id;
            END IF;
            PERFORM pg_notify(plexor.channel(r.tags[i]),
                encode(sha256(v_outer || sha256(v_inner || convert_to(v_body, 'UTF8'))), 'hex') || ' ' || v_body);
        END LOOP;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION plexor.publish(tags text[], data json, only_for text[] DEFAULT NULL) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO plexor.messages (tags, data, only_for) VALUES ($1, $2, $3) RETURNING id
$$;

-- Retention deletes from every table: the owner's rights, for plexor_gateway.
CREATE OR REPLACE FUNCTION plexor.trim(max_age interval, max_per_tag bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_ids     bigint[] := '{}';
    v_removed bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('plexor.trim')) THEN
        RETURN NULL;
    END IF;
    IF $2 IS NOT NULL THEN
        WITH d AS (
            DELETE FROM plexor.log AS l USING plexor.tags AS t
            WHERE l.tag = t.tag AND l.seq <= t.last_seq - $2
            RETURNING l.message_id
        )
        SELECT v_ids || coalesce(array_agg(DISTINCT d.message_id), '{}') INTO v_ids FROM d;
    END IF;
    IF $1 IS NOT NULL THEN
        WITH old AS (
            SELECT l.tag, max(l.seq) AS upto
            FROM plexor.log AS l JOIN plexor.messages AS m ON m.id = l.message_id
            WHERE m.time < clock_timestamp() - $1
            GROUP BY l.tag
        ), d AS (
            DELETE FROM plexor.log AS l USING old
            WHERE l.tag = old.tag AND l.seq <= old.upto
            RETURNING l.message_id
        )
        SELECT v_ids || coalesce(array_agg(DISTINCT d.message_id), '{}') INTO v_ids FROM d;
    END IF;
    DELETE FROM plexor.messages AS m
        WHERE m.id = ANY (v_ids)
          AND NOT EXISTS (SELECT 1 FROM plexor.log AS l WHERE l.message_id = m.id);
    GET DIAGNOSTICS v_removed = ROW_COUNT;
    RETURN v_removed;
END
$$;

-- Nothing for anyone by default (functions are executable by PUBLIC unless
-- revoked); then each role gets what it needs and no more.
REVOKE ALL ON ALL TABLES IN SCHEMA plexor FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA plexor FROM PUBLIC;
GRANT USAGE ON SCHEMA plexor TO plexor_publisher, plexor_gateway;

-- Publishing: INSERT (RETURNING id needs SELECT on id) and plexor.publish.
GRANT INSERT ON plexor.messages TO plexor_publisher;
GRANT SELECT (id) ON plexor.messages TO plexor_publisher;
GRANT EXECUTE ON FUNCTION plexor.publish(text[], json, text[]) TO plexor_publisher;

-- A gateway: reads the log, the key and the settings; catches up, fetches
-- large messages, trims, publishes batches, maps tags to channels.
GRANT SELECT ON plexor.messages, plexor.log, plexor.tags, plexor.settings,
                plexor.schema_migrations, plexor.notification_key TO plexor_gateway;
GRANT EXECUTE ON FUNCTION
    plexor.channel(text),
    plexor.catch_up(text[], bigint[], int),
    plexor.message(bigint),
    plexor.trim(interval, bigint),
    plexor.publish_batch(text[], text[], text[]),
    plexor.max_data_bytes()
TO plexor_gateway;
