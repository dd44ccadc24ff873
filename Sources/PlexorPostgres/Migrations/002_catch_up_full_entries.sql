-- Version 2: catch-up returns every entry's data and only_for, and leaves
-- the visibility decision to the gateway, which can then keep the entries
-- for other polls of the same tag (each event loop's recent log).

DROP FUNCTION plexor.catch_up(text[], bigint[], int);

-- Catch-up for one poll, from one snapshot. For every tag: one row with seq
-- NULL carrying the tag's last seq and the first seq still kept; then, when
-- the cursor is behind, up to max_per_tag log entries after
-- greatest(cursor, first_seq - 1). A NULL cursor ("from now") reads only the head.
CREATE FUNCTION plexor.catch_up(tags text[], cursors bigint[], max_per_tag int)
RETURNS TABLE (tag text, last_seq bigint, first_seq bigint,
               seq bigint, id bigint, at text, data text, only_for text[])
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
        seq := NULL; id := NULL; at := NULL; data := NULL; only_for := NULL;
        RETURN NEXT;
        CONTINUE WHEN $2[i] IS NULL OR $2[i] >= v_last;
        v_from := greatest($2[i], v_first - 1);
        RETURN QUERY
            SELECT $1[i], v_last, v_first, l.seq, m.id,
                   to_char(m.time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                   m.data::text, m.only_for
            FROM plexor.log AS l JOIN plexor.messages AS m ON m.id = l.message_id
            WHERE l.tag = $1[i] AND l.seq > v_from
            ORDER BY l.seq
            LIMIT $3;
    END LOOP;
END
$$;
