-- Plexor schema, version 1: messages, per-tag sequences, the per-tag log,
-- the publish trigger, catch-up and retention.
--
-- Applied by `plexor migrate` inside one transaction, under an advisory lock.

CREATE TABLE plexor.settings (
    name  text   PRIMARY KEY,
    value bigint NOT NULL
);
INSERT INTO plexor.settings (name, value) VALUES ('max_data_bytes', 262144);

-- The publish API: INSERT INTO plexor.messages (tags, data [, only_for]).
CREATE TABLE plexor.messages (
    id       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tags     text[]      NOT NULL,
    data     json        NOT NULL,
    only_for text[],
    time     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX messages_time ON plexor.messages (time);

-- The last seq handed out per tag. Its row is the lock that orders publishers.
CREATE TABLE plexor.tags (
    tag      text   PRIMARY KEY,
    last_seq bigint NOT NULL
);

-- (tag, seq) -> message: what catch-up reads. Retention trims it from the front.
CREATE TABLE plexor.log (
    tag        text   NOT NULL,
    seq        bigint NOT NULL,
    message_id bigint NOT NULL REFERENCES plexor.messages (id) ON DELETE CASCADE,
    PRIMARY KEY (tag, seq)
);
CREATE INDEX log_message_id ON plexor.log (message_id);

CREATE FUNCTION plexor.max_data_bytes() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT value FROM plexor.settings WHERE name = 'max_data_bytes'), 262144)
$$;

-- The NOTIFY channel of a tag. Channel names are at most 63 bytes, so long
-- tags go by hash; the payload always names its tag, so sharing is harmless.
CREATE FUNCTION plexor.channel(tag text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN octet_length($1) <= 56 THEN 'plexor:' || $1
                ELSE 'plexor#' || md5($1) END
$$;

-- Why a tag is invalid, or NULL when it is valid.
CREATE FUNCTION plexor.tag_problem(tag text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN $1 IS NULL THEN 'is NULL'
        WHEN $1 = '' THEN 'is empty'
        WHEN length($1) > 128 THEN 'is longer than 128 characters'
        WHEN $1 !~ '^[A-Za-z0-9_.:/-]+$' THEN 'has a character outside A-Z a-z 0-9 _ - . : /'
    END
$$;

CREATE FUNCTION plexor.check_tag_list(tags text[], what text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_count   int := coalesce(cardinality(tags), 0);
    v_tag     text;
    v_problem text;
BEGIN
    IF v_count = 0 THEN
        RAISE EXCEPTION 'plexor: % must list at least one tag', what
            USING ERRCODE = 'check_violation';
    END IF;
    IF array_ndims(tags) <> 1 THEN
        RAISE EXCEPTION 'plexor: % must be a one-dimensional array of tags', what
            USING ERRCODE = 'check_violation';
    END IF;
    IF v_count > 100 THEN
        RAISE EXCEPTION 'plexor: % lists % tags; at most 100 are allowed', what, v_count
            USING ERRCODE = 'check_violation';
    END IF;
    FOREACH v_tag IN ARRAY tags LOOP
        v_problem := plexor.tag_problem(v_tag);
        IF v_problem IS NOT NULL THEN
            RAISE EXCEPTION 'plexor: % has an invalid tag %: it %', what,
                    coalesce(quote_literal(left(v_tag, 140)), 'NULL'), v_problem
                USING ERRCODE = 'check_violation',
                      HINT = 'A tag is 1-128 characters from A-Z a-z 0-9 _ - . : /';
        END IF;
    END LOOP;
    IF (SELECT count(DISTINCT t) FROM unnest(tags) AS t) <> v_count THEN
        RAISE EXCEPTION 'plexor: % lists a tag more than once', what
            USING ERRCODE = 'check_violation';
    END IF;
END
$$;

-- BEFORE ROW: reject a bad message with an error that names the problem.
CREATE FUNCTION plexor.messages_validate() RETURNS trigger
LANGUAGE plpgsql AS $$
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

-- AFTER STATEMENT: lock every tag of the statement once, in sorted order, hand
-- out the next seqs (so per tag, seq order is commit order), record them in
-- the log and NOTIFY each tag's channel.
--
-- Payload, fields separated by one space (tags never contain spaces):
--   m <tag> <id> <time> <n> <tag1> <seq1> ... <tagN> <seqN> <k> <only1> ... <onlyK>\n<data>
-- or, when that would not fit in a NOTIFY (7999 bytes), a reference:
--   r <tag> <seq> <id>
CREATE FUNCTION plexor.messages_sequence() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r         record;
    v_head    text;
    v_payload text;
    i         int;
BEGIN
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
            v_payload := 'm ' || r.tags[i] || ' ' || v_head || E'\n' || r.data;
            IF octet_length(v_payload) > 7999 THEN
                v_payload := 'r ' || r.tags[i] || ' ' || r.seqs[i] || ' ' || r.id;
            END IF;
            PERFORM pg_notify(plexor.channel(r.tags[i]), v_payload);
        END LOOP;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER messages_validate BEFORE INSERT ON plexor.messages
    FOR EACH ROW EXECUTE FUNCTION plexor.messages_validate();
CREATE TRIGGER messages_sequence AFTER INSERT ON plexor.messages
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION plexor.messages_sequence();

-- Publish one message; returns its id.
CREATE FUNCTION plexor.publish(tags text[], data json, only_for text[] DEFAULT NULL) RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO plexor.messages (tags, data, only_for) VALUES ($1, $2, $3) RETURNING id
$$;

-- Publish many messages in one statement (the HTTP publish path batches
-- concurrent requests into one call: one commit, one NOTIFY lock).
-- tags and only_for arrive as array literals, data as JSON text.
-- Returns, for each input position, the message id and each tag's seq.
CREATE FUNCTION plexor.publish_batch(tags text[], data text[], only_for text[])
RETURNS TABLE (ord bigint, id bigint, tag text, seq bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_ids bigint[];
BEGIN
    WITH inserted AS (
        INSERT INTO plexor.messages (tags, data, only_for)
        SELECT b.tags::text[], b.data::json, b.only_for::text[]
        FROM unnest($1, $2, $3) WITH ORDINALITY AS b(tags, data, only_for, ord)
        ORDER BY b.ord
        RETURNING messages.id
    )
    SELECT array_agg(inserted.id ORDER BY inserted.id) INTO v_ids FROM inserted;
    RETURN QUERY
        SELECT i.ord, l.message_id, l.tag, l.seq
        FROM unnest(v_ids) WITH ORDINALITY AS i(id, ord)
        JOIN plexor.log AS l ON l.message_id = i.id
        ORDER BY i.ord, l.tag;
END
$$;

-- Catch-up for one poll, from one snapshot. For every tag: one row with seq
-- NULL carrying the tag's last seq and the first seq still kept; then, when
-- the cursor is behind, up to max_per_tag log entries after
-- greatest(cursor, first_seq - 1), with the data of those visible to the
-- poll's tags (only_for). A NULL cursor ("from now") reads only the head.
CREATE FUNCTION plexor.catch_up(tags text[], cursors bigint[], max_per_tag int)
RETURNS TABLE (tag text, last_seq bigint, first_seq bigint,
               seq bigint, id bigint, at text, data text, visible boolean)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_last  bigint;
    v_first bigint;
    v_from  bigint;
    i       int;
BEGIN
    FOR i IN 1 .. coalesce(cardinality($1), 0) LOOP
        v_last := coalesce((SELECT t.last_seq FROM plexor.tags AS t WHERE t.tag = $1[i]), 0);
        v_first := coalesce((SELECT min(l.seq) FROM plexor.log AS l WHERE l.tag = $1[i]), v_last + 1);
        tag := $1[i]; last_seq := v_last; first_seq := v_first;
        seq := NULL; id := NULL; at := NULL; data := NULL; visible := NULL;
        RETURN NEXT;
        CONTINUE WHEN $2[i] IS NULL OR $2[i] >= v_last;
        v_from := greatest($2[i], v_first - 1);
        RETURN QUERY
            SELECT $1[i], v_last, v_first, l.seq, m.id,
                   to_char(m.time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                   CASE WHEN m.only_for IS NULL OR m.only_for && $1 THEN m.data::text END,
                   (m.only_for IS NULL OR m.only_for && $1)
            FROM plexor.log AS l JOIN plexor.messages AS m ON m.id = l.message_id
            WHERE l.tag = $1[i] AND l.seq > v_from
            ORDER BY l.seq
            LIMIT $3;
    END LOOP;
END
$$;

-- One message by id, for payloads that went by reference.
CREATE FUNCTION plexor.message(id bigint)
RETURNS TABLE (at text, tags text[], seqs bigint[], only_for text[], data text)
LANGUAGE sql STABLE AS $$
    SELECT to_char(m.time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           s.tags, s.seqs, m.only_for, m.data::text
    FROM plexor.messages AS m
    CROSS JOIN LATERAL (
        SELECT array_agg(l.tag ORDER BY l.tag) AS tags, array_agg(l.seq ORDER BY l.tag) AS seqs
        FROM plexor.log AS l WHERE l.message_id = m.id
    ) AS s
    WHERE m.id = $1
$$;

-- Retention. Trims each tag's log from the front only, so what is kept stays
-- a gapless range [first_seq, last_seq]: by count (keep the newest
-- max_per_tag) and by age (drop up to the newest seq older than max_age).
-- Messages left in no log are deleted. One gateway at a time: the others
-- find the lock taken and return NULL. Returns the number of messages removed.
CREATE FUNCTION plexor.trim(max_age interval, max_per_tag bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
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
