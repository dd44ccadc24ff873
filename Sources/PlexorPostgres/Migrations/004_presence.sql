-- Version 4: presence — which tags have listeners on any gateway, and a
-- durable stream of their online/offline events.
--
-- Gateways keep listener counts in memory and write only changes, batched
-- (plexor.presence_report), to an UNLOGGED table keyed by (tag, gateway);
-- each gateway heartbeats a row of its own. A tag is online from its first
-- listener until a grace period after its last one, on every gateway, went
-- away: plexor.presence_sweep, run by any gateway (one at a time), ends
-- the grace periods and removes the rows of gateways whose heartbeat
-- stopped. Every transition gets a gapless position, in commit order, in
-- plexor.presence_events; each transaction that adds some NOTIFYs
-- plexor_presence once with the last position (a hint: any session may
-- NOTIFY that channel, so readers query plexor.watch rather than trust it).
--
-- After a PostgreSQL crash the unlogged tables are empty while the online
-- state (plexor.presence) and the events are not: gateways find their
-- heartbeat row gone and report everything again, within the grace period,
-- so tags that kept their listeners see no offline/online pair.

CREATE UNLOGGED TABLE plexor.gateways (
    id           uuid        PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    heartbeat_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    host         text        NOT NULL,
    pid          int         NOT NULL,
    port         int         NOT NULL,
    connections  int         NOT NULL DEFAULT 0,
    parked       int         NOT NULL DEFAULT 0,
    listened     int         NOT NULL DEFAULT 0
);

-- Only counts above zero are stored.
CREATE UNLOGGED TABLE plexor.presence_listeners (
    tag       text NOT NULL,
    gateway   uuid NOT NULL,
    listeners int  NOT NULL CHECK (listeners > 0),
    PRIMARY KEY (tag, gateway)
);
CREATE INDEX presence_listeners_gateway ON plexor.presence_listeners (gateway);

-- The online tags. empty_since: when the last listener anywhere went away
-- (NULL while there is one); the tag goes offline a grace period later.
CREATE TABLE plexor.presence (
    tag          text        PRIMARY KEY,
    online_since timestamptz NOT NULL DEFAULT clock_timestamp(),
    empty_since  timestamptz
);

CREATE TABLE plexor.presence_events (
    pos   bigint      PRIMARY KEY,
    tag   text        NOT NULL,
    event text        NOT NULL CHECK (event IN ('online', 'offline')),
    time  timestamptz NOT NULL
);

-- The last position given, and the last one removed by retention.
CREATE TABLE plexor.presence_position (
    only_row     boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    last_pos     bigint  NOT NULL DEFAULT 0,
    trimmed_upto bigint  NOT NULL DEFAULT 0
);
INSERT INTO plexor.presence_position DEFAULT VALUES;

-- Appends events for the tags that became online (p_online) and offline
-- (p_offline). Called with plexor.presence's lock held; the position row's
-- lock, held to commit, keeps positions in commit order.
CREATE FUNCTION plexor.presence_emit(p_online text[], p_offline text[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_count bigint := coalesce(cardinality(p_online), 0) + coalesce(cardinality(p_offline), 0);
    v_last  bigint;
    v_now   timestamptz := clock_timestamp();
BEGIN
    IF v_count = 0 THEN
        RETURN 0;
    END IF;
    UPDATE plexor.presence_position SET last_pos = last_pos + v_count RETURNING last_pos INTO v_last;
    INSERT INTO plexor.presence_events (pos, tag, event, time)
    SELECT v_last - v_count + row_number() OVER (), e.tag, e.event, v_now
    FROM (
        SELECT t AS tag, 'online' AS event FROM unnest(p_online) AS t
        UNION ALL
        SELECT t, 'offline' FROM unnest(p_offline) AS t
    ) AS e;
    PERFORM pg_notify('plexor_presence', v_last::text);
    RETURN v_count;
END
$$;

-- After listener rows changed for p_tags: online events for tags now
-- listened that were not online; grace starts for online tags left with
-- no listener anywhere, and ends for those listened again. Returns the
-- number of events.
CREATE FUNCTION plexor.presence_settle(p_tags text[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_now    timestamptz := clock_timestamp();
    v_online text[];
BEGIN
    WITH listened AS (
        SELECT DISTINCT l.tag FROM plexor.presence_listeners AS l WHERE l.tag = ANY (p_tags)
    ), came AS (
        INSERT INTO plexor.presence (tag)
        SELECT tag FROM listened ORDER BY tag
        ON CONFLICT (tag) DO NOTHING
        RETURNING tag
    )
    SELECT coalesce(array_agg(tag ORDER BY tag), '{}') INTO v_online FROM came;
    UPDATE plexor.presence AS p SET empty_since = NULL
    WHERE p.tag = ANY (p_tags) AND p.empty_since IS NOT NULL
      AND EXISTS (SELECT 1 FROM plexor.presence_listeners AS l WHERE l.tag = p.tag);
    UPDATE plexor.presence AS p SET empty_since = v_now
    WHERE p.tag = ANY (p_tags) AND p.empty_since IS NULL
      AND NOT EXISTS (SELECT 1 FROM plexor.presence_listeners AS l WHERE l.tag = p.tag);
    RETURN plexor.presence_emit(v_online, NULL);
END
$$;

-- A gateway's listener counts for the tags whose count changed (0: none
-- left). All presence writes take turns on one lock: they are batched, at
-- most about one a second per gateway. Returns the number of events.
CREATE FUNCTION plexor.presence_report(p_gateway uuid, p_tags text[], p_counts int[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF cardinality(p_tags) IS DISTINCT FROM cardinality(p_counts) THEN
        RAISE EXCEPTION 'plexor: % tags but % counts', cardinality(p_tags), cardinality(p_counts)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(cardinality(p_tags), 0) = 0 THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('plexor.presence'));
    DELETE FROM plexor.presence_listeners AS l
    USING unnest(p_tags, p_counts) AS c(tag, listeners)
    WHERE l.gateway = p_gateway AND l.tag = c.tag AND c.listeners <= 0;
    INSERT INTO plexor.presence_listeners (tag, gateway, listeners)
    SELECT c.tag, p_gateway, max(c.listeners)
    FROM unnest(p_tags, p_counts) AS c(tag, listeners)
    WHERE c.listeners > 0
    GROUP BY c.tag
    ORDER BY c.tag
    ON CONFLICT (tag, gateway) DO UPDATE SET listeners = excluded.listeners;
    RETURN plexor.presence_settle(p_tags);
END
$$;

-- A gateway's heartbeat, with its figures for `plexor status`. Returns
-- whether its row was missing (new gateway, a database that lost its
-- unlogged tables, or a gateway swept as dead: it must report all its
-- counts again), the last event position, and how many tags are online.
CREATE FUNCTION plexor.presence_heartbeat(p_gateway uuid, p_host text, p_pid int, p_port int,
                                          p_connections int, p_parked int, p_listened int)
RETURNS TABLE (must_report boolean, last_pos bigint, online_tags bigint)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH beat AS (
        INSERT INTO plexor.gateways AS g (id, host, pid, port, connections, parked, listened)
        VALUES (p_gateway, p_host, p_pid, p_port, p_connections, p_parked, p_listened)
        ON CONFLICT (id) DO UPDATE SET heartbeat_at = clock_timestamp(), host = excluded.host, pid = excluded.pid,
            port = excluded.port, connections = excluded.connections, parked = excluded.parked, listened = excluded.listened
        RETURNING (xmax = 0) AS inserted
    )
    SELECT beat.inserted, (SELECT h.last_pos FROM plexor.presence_position AS h), (SELECT count(*) FROM plexor.presence)
    FROM beat
$$;

-- A gateway going away cleanly: its listeners are gone (their tags start
-- their grace period, so clients that reconnect elsewhere in time cause
-- no event).
CREATE FUNCTION plexor.presence_leave(p_gateway uuid) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_tags text[];
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('plexor.presence'));
    DELETE FROM plexor.gateways WHERE id = p_gateway;
    WITH gone AS (DELETE FROM plexor.presence_listeners WHERE gateway = p_gateway RETURNING tag)
    SELECT coalesce(array_agg(tag), '{}') INTO v_tags FROM gone;
    RETURN plexor.presence_settle(v_tags);
END
$$;

-- Removes gateways silent for p_heartbeat_timeout (and their listeners),
-- starts the grace period of online tags with no listener (also after a
-- crash emptied the listeners), and ends, with an offline event, that of
-- tags empty for p_grace. One gateway at a time; the others return NULL.
CREATE FUNCTION plexor.presence_sweep(p_grace interval, p_heartbeat_timeout interval) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_now     timestamptz := clock_timestamp();
    v_offline text[];
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('plexor.presence_sweep')) THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('plexor.presence'));
    WITH dead AS (DELETE FROM plexor.gateways WHERE heartbeat_at < v_now - p_heartbeat_timeout RETURNING id)
    DELETE FROM plexor.presence_listeners AS l USING dead WHERE l.gateway = dead.id;
    UPDATE plexor.presence AS p SET empty_since = v_now
    WHERE p.empty_since IS NULL
      AND NOT EXISTS (SELECT 1 FROM plexor.presence_listeners AS l WHERE l.tag = p.tag);
    WITH gone AS (
        DELETE FROM plexor.presence AS p
        WHERE p.empty_since <= v_now - p_grace
          AND NOT EXISTS (SELECT 1 FROM plexor.presence_listeners AS l WHERE l.tag = p.tag)
        RETURNING p.tag
    )
    SELECT coalesce(array_agg(tag ORDER BY tag), '{}') INTO v_offline FROM gone;
    RETURN plexor.presence_emit(NULL, v_offline);
END
$$;

-- Retention of events by age; plexor.watch reports what it removed.
CREATE FUNCTION plexor.presence_trim(p_max_age interval) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_upto    bigint;
    v_removed bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('plexor.presence_trim')) THEN
        RETURN NULL;
    END IF;
    SELECT max(pos) INTO v_upto FROM plexor.presence_events WHERE time < clock_timestamp() - p_max_age;
    IF v_upto IS NULL THEN
        RETURN 0;
    END IF;
    DELETE FROM plexor.presence_events WHERE pos <= v_upto;
    GET DIAGNOSTICS v_removed = ROW_COUNT;
    UPDATE plexor.presence_position SET trimmed_upto = greatest(trimmed_upto, v_upto);
    RETURN v_removed;
END
$$;

-- LIKE patterns matching tags that start with one of p_prefixes (taken
-- literally: \, % and _ are escaped). Queries use it once, as an InitPlan
-- (`(SELECT plexor.presence_patterns(...))::text[]`), then a plain LIKE ANY per row.
CREATE FUNCTION plexor.presence_patterns(p_prefixes text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT array_agg(replace(replace(replace(p, '\', '\\'), '%', '\%'), '_', '\_') || '%') FROM unnest(p_prefixes) AS p
$$;

-- For applications: the online tags and their listeners on every gateway
-- (0 during the grace period), optionally only those with one of the prefixes.
CREATE FUNCTION plexor.online(prefixes text[] DEFAULT NULL)
RETURNS TABLE (tag text, listeners bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT p.tag, coalesce(l.listeners, 0)::bigint
    FROM plexor.presence AS p
    LEFT JOIN (SELECT tag, sum(listeners) AS listeners FROM plexor.presence_listeners GROUP BY tag) AS l ON l.tag = p.tag
    WHERE $1 IS NULL OR p.tag LIKE ANY ((SELECT plexor.presence_patterns($1))::text[])
    ORDER BY p.tag COLLATE "C"
$$;

-- For applications: events after position `after`, oldest first.
CREATE FUNCTION plexor.watch(after bigint, prefixes text[] DEFAULT NULL)
RETURNS TABLE (pos bigint, tag text, event text, "time" timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT e.pos, e.tag, e.event, e.time
    FROM plexor.presence_events AS e
    WHERE e.pos > $1 AND ($2 IS NULL OR e.tag LIKE ANY ((SELECT plexor.presence_patterns($2))::text[]))
    ORDER BY e.pos
$$;

-- For gateways (GET /watch): at most p_limit events after p_after in one
-- snapshot, with the last position given and the last one removed (a row
-- with a NULL pos carries them when there is no event).
CREATE FUNCTION plexor.presence_page(p_after bigint, p_prefixes text[], p_limit int)
RETURNS TABLE (pos bigint, tag text, event text, "time" text, last_pos bigint, trimmed_upto bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH head AS (SELECT h.last_pos, h.trimmed_upto FROM plexor.presence_position AS h),
    page AS (
        SELECT e.pos, e.tag, e.event,
               to_char(e.time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS time
        FROM plexor.presence_events AS e
        WHERE e.pos > greatest(p_after, (SELECT trimmed_upto FROM head))
          AND (p_prefixes IS NULL OR e.tag LIKE ANY ((SELECT plexor.presence_patterns(p_prefixes))::text[]))
        ORDER BY e.pos
        LIMIT p_limit
    )
    SELECT page.pos, page.tag, page.event, page.time, head.last_pos, head.trimmed_upto FROM page, head
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, head.last_pos, head.trimmed_upto FROM head
    ORDER BY 1 NULLS LAST
$$;

REVOKE ALL ON plexor.gateways, plexor.presence_listeners, plexor.presence, plexor.presence_events,
              plexor.presence_position FROM PUBLIC;
REVOKE ALL ON FUNCTION
    plexor.presence_emit(text[], text[]),
    plexor.presence_settle(text[]),
    plexor.presence_report(uuid, text[], int[]),
    plexor.presence_heartbeat(uuid, text, int, int, int, int, int),
    plexor.presence_leave(uuid),
    plexor.presence_sweep(interval, interval),
    plexor.presence_trim(interval),
    plexor.presence_patterns(text[]),
    plexor.online(text[]),
    plexor.watch(bigint, text[]),
    plexor.presence_page(bigint, text[], int)
FROM PUBLIC;

-- Applications read presence (plexor_gateway is a member of plexor_publisher).
GRANT EXECUTE ON FUNCTION plexor.online(text[]), plexor.watch(bigint, text[]) TO plexor_publisher;
-- Gateways write it, and read `plexor status`'s figures.
GRANT SELECT ON plexor.gateways TO plexor_gateway;
GRANT EXECUTE ON FUNCTION
    plexor.presence_report(uuid, text[], int[]),
    plexor.presence_heartbeat(uuid, text, int, int, int, int, int),
    plexor.presence_leave(uuid),
    plexor.presence_sweep(interval, interval),
    plexor.presence_trim(interval),
    plexor.presence_page(bigint, text[], int)
TO plexor_gateway;
