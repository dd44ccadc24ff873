-- Version 5: chat rooms, an application on Plexor's own tags.
--
-- A site (a webmaster's account) owns rooms: its main room `NAME` and named
-- rooms `NAME/SUB`. A room's messages are ordinary messages on the tag
-- `chat:ROOM`; a person present in a room polls the private tag
-- `chat-presence:ROOM:PERSON`, and presence's online/offline events for
-- those tags become join/leave messages on the room's tag. Everything the
-- gateway does here is one function call, so a script can do it too.
--
-- Errors the gateway turns into HTTP statuses carry SQLSTATE `PXnnn`
-- (nnn: the status); a slow-mode refusal's DETAIL is the seconds to wait.

CREATE TABLE plexor.chat_sites (
    name              text        PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,31}$'),
    -- Origins allowed to embed the site's rooms (`https://example.com`).
    origins           text[]      NOT NULL DEFAULT '{}',
    -- Signs the site's tokens for its own users (HS256), and authorises its backend.
    secret            text        NOT NULL,
    guests_allowed    boolean     NOT NULL DEFAULT true,
    -- Default for rooms without their own: one message per N seconds per person (0: off).
    slow_mode_seconds int         NOT NULL DEFAULT 0 CHECK (slow_mode_seconds BETWEEN 0 AND 3600),
    -- Messages per minute: per site-verified person, per guest, per IP address.
    person_rate       int         NOT NULL DEFAULT 30 CHECK (person_rate BETWEEN 1 AND 6000),
    guest_rate        int         NOT NULL DEFAULT 10 CHECK (guest_rate BETWEEN 1 AND 6000),
    ip_rate           int         NOT NULL DEFAULT 60 CHECK (ip_rate BETWEEN 1 AND 60000),
    -- History kept per room: the newest N messages, and (when set) none older than D days.
    keep_messages     int         NOT NULL DEFAULT 10000 CHECK (keep_messages BETWEEN 1 AND 10000000),
    keep_days         int         CHECK (keep_days BETWEEN 1 AND 36500),
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- Rooms with settings of their own (rooms exist without a row).
CREATE TABLE plexor.chat_rooms (
    room              text   PRIMARY KEY,
    site              text   NOT NULL REFERENCES plexor.chat_sites (name) ON DELETE CASCADE,
    slow_mode_seconds int    CHECK (slow_mode_seconds BETWEEN 0 AND 3600),
    -- History shows only messages after this seq (a cleared room).
    cleared_seq       bigint NOT NULL DEFAULT 0
);

-- Guests (sub NULL, one row per guest session) and site-verified people
-- (one row per site and sub).
CREATE TABLE plexor.chat_people (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site       text        NOT NULL REFERENCES plexor.chat_sites (name) ON DELETE CASCADE,
    sub        text        CHECK (length(sub) BETWEEN 1 AND 255),
    name       text        NOT NULL,
    avatar     text,
    moderator  boolean     NOT NULL DEFAULT false,
    -- Where a guest came from, for bans by address.
    ip         inet,
    created_at timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site, sub)
);
CREATE INDEX chat_people_verified_name ON plexor.chat_people (site, lower(name)) WHERE sub IS NOT NULL;

CREATE SEQUENCE plexor.chat_message_ids;

-- Who posted what where: slow mode, deletion and moderation read it.
CREATE TABLE plexor.chat_messages (
    id         bigint      PRIMARY KEY,
    room       text        NOT NULL,
    message_id bigint      NOT NULL REFERENCES plexor.messages (id) ON DELETE CASCADE,
    person     bigint      NOT NULL REFERENCES plexor.chat_people (id) ON DELETE CASCADE,
    posted_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    deleted_at timestamptz
);
CREATE INDEX chat_messages_person ON plexor.chat_messages (person, room, posted_at);
CREATE INDEX chat_messages_message ON plexor.chat_messages (message_id);

CREATE TABLE plexor.chat_bans (
    id     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site   text        NOT NULL REFERENCES plexor.chat_sites (name) ON DELETE CASCADE,
    person bigint      REFERENCES plexor.chat_people (id) ON DELETE CASCADE,
    ip     inet,
    until  timestamptz NOT NULL,
    reason text,
    CHECK (person IS NOT NULL OR ip IS NOT NULL)
);
CREATE INDEX chat_bans_site ON plexor.chat_bans (site, until);

-- Every moderation action: who, what, when.
CREATE TABLE plexor.chat_moderation (
    id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site    text        NOT NULL REFERENCES plexor.chat_sites (name) ON DELETE CASCADE,
    room    text,
    actor   text        NOT NULL,
    action  text        NOT NULL,
    person  bigint,
    message bigint,
    detail  json,
    at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX chat_moderation_site ON plexor.chat_moderation (site, id);

-- Raises a PXnnn error (nnn: the HTTP status the gateway answers with).
CREATE FUNCTION plexor.chat_refuse(p_status int, p_message text, p_detail text DEFAULT '') RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'plexor: %', p_message USING ERRCODE = 'PX' || p_status::text, DETAIL = p_detail;
END
$$;

-- The site owning a room (`site` or `site/sub`); PX404 for a malformed room or an unknown site.
CREATE FUNCTION plexor.chat_room_site(p_room text) RETURNS plexor.chat_sites
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_site plexor.chat_sites;
BEGIN
    IF p_room IS NULL OR p_room !~ '^[a-z0-9][a-z0-9-]{0,31}(/[a-z0-9][a-z0-9_-]{0,31})?$' THEN
        PERFORM plexor.chat_refuse(404, format('%s is not a room name (SITE or SITE/ROOM: a-z 0-9 - _, at most 32 each)',
                                               coalesce(quote_literal(left(p_room, 80)), 'NULL')));
    END IF;
    SELECT * INTO v_site FROM plexor.chat_sites WHERE name = split_part(p_room, '/', 1);
    IF NOT FOUND THEN
        PERFORM plexor.chat_refuse(404, format('no site is named %s', quote_literal(split_part(p_room, '/', 1))));
    END IF;
    RETURN v_site;
END
$$;

-- A person as messages show them.
CREATE FUNCTION plexor.chat_user(p plexor.chat_people) RETURNS json
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT json_strip_nulls(json_build_object(
        'key', p.id::text, 'name', p.name, 'verified', p.sub IS NOT NULL, 'avatar', p.avatar,
        'mod', CASE WHEN p.moderator THEN true END))
$$;

-- Why a name or text is unacceptable, or NULL. Control characters are
-- refused (newlines only in texts), and so are the bidirectional overrides
-- that make a name read as another.
CREATE FUNCTION plexor.chat_text_problem(p_text text, p_min int, p_max int, p_newlines boolean) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN p_text IS NULL THEN 'is missing'
        WHEN p_text <> btrim(p_text, E' \n\r\t') THEN 'has spaces around it'
        WHEN length(p_text) < p_min THEN format('is shorter than %s characters', p_min)
        WHEN length(p_text) > p_max THEN format('is longer than %s characters', p_max)
        WHEN p_text ~ (CASE WHEN p_newlines THEN E'[\\x01-\\x09\\x0b-\\x1f\\x7f-\\x9f]' ELSE E'[\\x01-\\x1f\\x7f-\\x9f]' END)
            THEN 'has a control character'
        WHEN p_text ~ E'[\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]' THEN 'has a line separator or a direction override'
    END
$$;

CREATE FUNCTION plexor.chat_check_text(p_what text, p_text text, p_min int, p_max int, p_newlines boolean) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_problem text := plexor.chat_text_problem(p_text, p_min, p_max, p_newlines);
BEGIN
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'plexor: the % %', p_what, v_problem USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- When a ban on the person (or, for a guest, on the address) ends; NULL when none holds.
CREATE FUNCTION plexor.chat_banned_until(p_site text, p_person bigint, p_ip inet) RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT max(b.until) FROM plexor.chat_bans AS b
    WHERE b.site = p_site AND b.until > now()
      AND (b.person = p_person OR (p_ip IS NOT NULL AND b.ip = p_ip))
$$;

CREATE FUNCTION plexor.chat_check_not_banned(p_site text, p_person bigint, p_ip inet) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_until timestamptz := plexor.chat_banned_until(p_site, p_person, p_ip);
BEGIN
    IF v_until IS NOT NULL THEN
        PERFORM plexor.chat_refuse(403, 'you are banned from this chat until '
            || to_char(v_until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'),
            to_char(v_until AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
    END IF;
END
$$;

-- The address as inet, or NULL when it is not one.
CREATE FUNCTION plexor.chat_inet(p_ip text) RETURNS inet
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN p_ip::inet;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;

-- Sites -------------------------------------------------------------------

-- Creates a site; returns its secret (64 hex digits).
CREATE FUNCTION plexor.chat_site_add(p_name text, p_origins text[] DEFAULT '{}') RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_secret text := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
BEGIN
    IF p_name IS NULL OR p_name !~ '^[a-z0-9][a-z0-9-]{0,31}$' THEN
        RAISE EXCEPTION 'plexor: a site name is 1-32 characters from a-z 0-9 - (not first), not %',
            coalesce(quote_literal(left(p_name, 80)), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM plexor.chat_check_origins(p_origins);
    INSERT INTO plexor.chat_sites (name, origins, secret) VALUES (p_name, coalesce(p_origins, '{}'), v_secret);
    RETURN v_secret;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'plexor: a site named % exists already', quote_literal(p_name) USING ERRCODE = 'unique_violation';
END
$$;

-- Origins are `scheme://host[:port]`, as browsers send them.
CREATE FUNCTION plexor.chat_check_origins(p_origins text[]) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_origin text;
BEGIN
    IF cardinality(p_origins) > 50 THEN
        RAISE EXCEPTION 'plexor: at most 50 origins per site' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH v_origin IN ARRAY coalesce(p_origins, '{}') LOOP
        IF v_origin IS NULL OR v_origin !~ '^https?://[a-z0-9.-]{1,253}(:[0-9]{1,5})?$' THEN
            RAISE EXCEPTION 'plexor: % is not an origin', coalesce(quote_literal(left(v_origin, 80)), 'NULL')
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'An origin is scheme://host[:port] in lower case, without a path: https://example.com';
        END IF;
    END LOOP;
END
$$;

-- Changes a site's settings from a JSON object: origins (array of origins),
-- guests (boolean), slow_mode, person_rate, guest_rate, ip_rate,
-- keep_messages (numbers), keep_days (a number or null), new_secret (true:
-- returns a new secret). Returns the secret when it changed, else NULL.
CREATE FUNCTION plexor.chat_site_set(p_name text, p_settings json, p_actor text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_key    text;
    v_secret text;
    v_value  json;
BEGIN
    PERFORM 1 FROM plexor.chat_sites WHERE name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM plexor.chat_refuse(404, format('no site is named %s', coalesce(quote_literal(p_name), 'NULL')));
    END IF;
    IF json_typeof(p_settings) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'plexor: settings must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR v_key, v_value IN SELECT * FROM json_each(p_settings) LOOP
        BEGIN
            CASE v_key
            WHEN 'origins' THEN
                PERFORM plexor.chat_check_origins(ARRAY(SELECT json_array_elements_text(v_value)));
                UPDATE plexor.chat_sites SET origins = ARRAY(SELECT json_array_elements_text(v_value)) WHERE name = p_name;
            WHEN 'guests' THEN
                UPDATE plexor.chat_sites SET guests_allowed = v_value::text::boolean WHERE name = p_name;
            WHEN 'slow_mode' THEN
                UPDATE plexor.chat_sites SET slow_mode_seconds = v_value::text::int WHERE name = p_name;
            WHEN 'person_rate' THEN
                UPDATE plexor.chat_sites SET person_rate = v_value::text::int WHERE name = p_name;
            WHEN 'guest_rate' THEN
                UPDATE plexor.chat_sites SET guest_rate = v_value::text::int WHERE name = p_name;
            WHEN 'ip_rate' THEN
                UPDATE plexor.chat_sites SET ip_rate = v_value::text::int WHERE name = p_name;
            WHEN 'keep_messages' THEN
                UPDATE plexor.chat_sites SET keep_messages = v_value::text::int WHERE name = p_name;
            WHEN 'keep_days' THEN
                UPDATE plexor.chat_sites SET keep_days = nullif(v_value::text, 'null')::int WHERE name = p_name;
            WHEN 'new_secret' THEN
                IF v_value::text::boolean THEN
                    v_secret := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
                    UPDATE plexor.chat_sites SET secret = v_secret WHERE name = p_name;
                END IF;
            ELSE
                RAISE EXCEPTION 'plexor: unknown site setting %', quote_literal(left(v_key, 40))
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Settings: origins, guests, slow_mode, person_rate, guest_rate, ip_rate, keep_messages, keep_days, new_secret';
            END CASE;
        EXCEPTION WHEN invalid_text_representation OR check_violation OR numeric_value_out_of_range OR cannot_coerce THEN
            RAISE EXCEPTION 'plexor: % is not a valid value for %', left(v_value::text, 40), v_key
                USING ERRCODE = 'invalid_parameter_value';
        END;
    END LOOP;
    INSERT INTO plexor.chat_moderation (site, actor, action, detail)
    VALUES (p_name, coalesce(p_actor, 'sql:' || session_user), 'settings',
            (SELECT json_object_agg(key, CASE WHEN key = 'new_secret' THEN 'true'::json ELSE value END) FROM json_each(p_settings)));
    RETURN v_secret;
END
$$;

CREATE FUNCTION plexor.chat_site_remove(p_name text) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH gone AS (DELETE FROM plexor.chat_sites WHERE name = p_name RETURNING 1) SELECT EXISTS (SELECT FROM gone)
$$;

-- People ------------------------------------------------------------------

-- A guest session's person: a nickname a site-verified person of the site
-- does not hold. Returns the person's id and JSON.
CREATE FUNCTION plexor.chat_guest(p_site text, p_name text, p_ip text)
RETURNS TABLE (person bigint, "user" text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_site   plexor.chat_sites := plexor.chat_room_site(p_site);
    v_ip     inet := plexor.chat_inet(p_ip);
    v_person plexor.chat_people;
BEGIN
    PERFORM plexor.chat_check_text('nickname', p_name, 2, 32, false);
    IF NOT v_site.guests_allowed THEN
        PERFORM plexor.chat_refuse(403, 'this chat does not allow guests; sign in on the site');
    END IF;
    PERFORM plexor.chat_check_not_banned(v_site.name, NULL, v_ip);
    IF EXISTS (SELECT FROM plexor.chat_people AS p
               WHERE p.site = v_site.name AND p.sub IS NOT NULL AND lower(p.name) = lower(p_name)) THEN
        PERFORM plexor.chat_refuse(409, format('the name %s belongs to a member of this site; choose another', p_name));
    END IF;
    INSERT INTO plexor.chat_people (site, name, ip) VALUES (v_site.name, p_name, v_ip) RETURNING * INTO v_person;
    RETURN QUERY SELECT v_person.id, plexor.chat_user(v_person)::text;
END
$$;

-- A site-verified person (from the site's signed token), created or updated.
CREATE FUNCTION plexor.chat_verified(p_site text, p_sub text, p_name text, p_avatar text, p_moderator boolean)
RETURNS TABLE (person bigint, "user" text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_site   plexor.chat_sites := plexor.chat_room_site(p_site);
    v_person plexor.chat_people;
BEGIN
    PERFORM plexor.chat_check_text('name', p_name, 1, 64, false);
    IF p_avatar IS NOT NULL AND (length(p_avatar) > 1000 OR p_avatar !~ '^https?://[^\s"''<>\\]+$') THEN
        RAISE EXCEPTION 'plexor: the avatar must be an http(s) URL of at most 1000 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO plexor.chat_people AS p (site, sub, name, avatar, moderator)
    VALUES (v_site.name, p_sub, p_name, p_avatar, coalesce(p_moderator, false))
    ON CONFLICT (site, sub) DO UPDATE
        SET name = excluded.name, avatar = excluded.avatar, moderator = excluded.moderator, seen_at = now()
    RETURNING * INTO v_person;
    PERFORM plexor.chat_check_not_banned(v_site.name, v_person.id, NULL);
    RETURN QUERY SELECT v_person.id, plexor.chat_user(v_person)::text;
END
$$;

-- What a gateway needs to know of a site: its secret (to check the site's
-- tokens and its backend's requests), origins and rate limits.
CREATE FUNCTION plexor.chat_site_settings(p_site text)
RETURNS TABLE (secret text, origins text[], guests_allowed boolean, person_rate int, guest_rate int, ip_rate int)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.secret, s.origins, s.guests_allowed, s.person_rate, s.guest_rate, s.ip_rate
    FROM plexor.chat_sites AS s WHERE s.name = p_site
$$;

-- Who may act: 'site' (the site's backend, checked by the gateway),
-- 'person:ID' (a moderator of the site, or the author when p_author is
-- given and matches), NULL (an SQL session, recorded by its role name).
CREATE FUNCTION plexor.chat_actor(p_site text, p_actor text, p_author bigint DEFAULT NULL) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_person bigint;
BEGIN
    IF p_actor IS NULL THEN
        RETURN 'sql:' || session_user;
    ELSIF p_actor = 'site' THEN
        RETURN p_actor;
    ELSIF p_actor ~ '^person:[0-9]{1,18}$' THEN
        v_person := substr(p_actor, 8)::bigint;
        IF v_person = p_author OR EXISTS (SELECT FROM plexor.chat_people AS p
                                          WHERE p.id = v_person AND p.site = p_site AND p.moderator) THEN
            RETURN p_actor;
        END IF;
    END IF;
    PERFORM plexor.chat_refuse(403, 'only the site and its moderators may do this');
    RETURN NULL;
END
$$;

-- Posting -----------------------------------------------------------------

-- Posts a person's text to a room: checks the person, bans, guests and
-- slow mode; publishes {"type":"message",...} on the room's tag. Returns
-- the message's seq on that tag, time and JSON.
CREATE FUNCTION plexor.chat_post(p_room text, p_person bigint, p_ip text, p_text text)
RETURNS TABLE (seq bigint, at text, data text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_site       plexor.chat_sites := plexor.chat_room_site(p_room);
    v_person     plexor.chat_people;
    v_slow       int;
    v_wait       double precision;
    v_id         bigint;
    v_message_id bigint;
    v_time       timestamptz;
    v_data       json;
BEGIN
    -- The person's row lock makes one person's posts take turns (slow mode holds across gateways).
    SELECT * INTO v_person FROM plexor.chat_people AS p WHERE p.id = p_person AND p.site = v_site.name FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM plexor.chat_refuse(401, 'this session is no longer valid; sign in again');
    END IF;
    PERFORM plexor.chat_check_text('text', p_text, 1, 2000, true);
    PERFORM plexor.chat_check_not_banned(v_site.name, v_person.id, CASE WHEN v_person.sub IS NULL THEN v_person.ip END);
    IF v_person.sub IS NULL AND NOT v_site.guests_allowed THEN
        PERFORM plexor.chat_refuse(403, 'this chat no longer allows guests; sign in on the site');
    END IF;
    IF NOT v_person.moderator THEN
        v_slow := coalesce((SELECT r.slow_mode_seconds FROM plexor.chat_rooms AS r WHERE r.room = p_room), v_site.slow_mode_seconds);
        IF v_slow > 0 THEN
            SELECT extract(epoch FROM max(m.posted_at) + make_interval(secs => v_slow) - clock_timestamp()) INTO v_wait
            FROM plexor.chat_messages AS m WHERE m.person = v_person.id AND m.room = p_room;
            IF v_wait > 0 THEN
                PERFORM plexor.chat_refuse(429, format('slow mode: one message every %s seconds', v_slow), ceil(v_wait)::text);
            END IF;
        END IF;
    END IF;
    v_id := nextval('plexor.chat_message_ids');
    v_data := json_build_object('type', 'message', 'id', v_id, 'user', plexor.chat_user(v_person), 'text', p_text);
    INSERT INTO plexor.messages (tags, data) VALUES (ARRAY['chat:' || p_room], v_data) RETURNING id, time INTO v_message_id, v_time;
    INSERT INTO plexor.chat_messages (id, room, message_id, person, posted_at) VALUES (v_id, p_room, v_message_id, v_person.id, v_time);
    UPDATE plexor.chat_people SET seen_at = now() WHERE id = v_person.id;
    RETURN QUERY
        SELECT l.seq, to_char(v_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), v_data::text
        FROM plexor.log AS l WHERE l.message_id = v_message_id;
END
$$;

-- A page of a room's history, newest first: messages before seq p_before
-- (NULL: the newest), at most p_limit. Deleted messages are left out,
-- except for their author and the site's moderators (p_viewer), who see
-- them marked deleted.
CREATE FUNCTION plexor.chat_history(p_room text, p_before bigint, p_limit int, p_viewer bigint DEFAULT NULL)
RETURNS TABLE (seq bigint, at text, data text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_site      plexor.chat_sites := plexor.chat_room_site(p_room);
    v_moderator boolean := EXISTS (SELECT FROM plexor.chat_people AS p
                                   WHERE p.id = p_viewer AND p.site = v_site.name AND p.moderator);
    v_cleared   bigint := coalesce((SELECT r.cleared_seq FROM plexor.chat_rooms AS r WHERE r.room = p_room), 0);
BEGIN
    RETURN QUERY
        SELECT l.seq, to_char(m.time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), m.data::text
        FROM plexor.log AS l
        JOIN plexor.messages AS m ON m.id = l.message_id
        LEFT JOIN plexor.chat_messages AS c ON c.message_id = m.id
        WHERE l.tag = 'chat:' || p_room
          AND l.seq < coalesce(p_before, 9223372036854775807) AND l.seq > v_cleared
          AND m.only_for IS NULL
          AND m.data->>'type' IN ('message', 'system')
          AND (c.deleted_at IS NULL OR v_moderator OR c.person = p_viewer)
        ORDER BY l.seq DESC
        LIMIT greatest(1, least(p_limit, 200));
END
$$;

-- Who is in a room now: one entry per person, by name.
CREATE FUNCTION plexor.chat_presence(p_room text) RETURNS TABLE ("user" text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT plexor.chat_user(p)::text
    FROM plexor.presence AS pr
    JOIN plexor.chat_people AS p ON pr.tag = 'chat-presence:' || p_room || ':' || p.id
    WHERE starts_with(pr.tag, 'chat-presence:' || p_room || ':')
      AND p.site = split_part(p_room, '/', 1)
    ORDER BY lower(p.name), p.id
$$;

-- Presence's online/offline events for `chat-presence:ROOM:PERSON` tags
-- become join/leave messages on the room's tag, in the same transaction.
CREATE FUNCTION plexor.chat_presence_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO plexor.messages (tags, data)
    SELECT ARRAY['chat:' || x.room],
           json_build_object('type', CASE e.event WHEN 'online' THEN 'join' ELSE 'leave' END, 'user', plexor.chat_user(p))
    FROM added AS e
    CROSS JOIN LATERAL regexp_match(e.tag, '^chat-presence:([a-z0-9][a-z0-9-]{0,31}(?:/[a-z0-9][a-z0-9_-]{0,31})?):([0-9]{1,18})$') AS x0(parts)
    CROSS JOIN LATERAL (SELECT x0.parts[1] AS room, x0.parts[2]::bigint AS person) AS x
    JOIN plexor.chat_people AS p ON p.id = x.person AND p.site = split_part(x.room, '/', 1)
    ORDER BY e.pos;
    RETURN NULL;
EXCEPTION WHEN others THEN
    -- Presence must go on even if a room's message cannot be written.
    RAISE WARNING 'plexor: chat join/leave messages not written: %', SQLERRM;
    RETURN NULL;
END
$$;

CREATE TRIGGER chat_presence_events AFTER INSERT ON plexor.presence_events
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION plexor.chat_presence_events();

-- Moderation --------------------------------------------------------------

CREATE FUNCTION plexor.chat_record(p_site text, p_room text, p_actor text, p_action text,
                                   p_person bigint DEFAULT NULL, p_message bigint DEFAULT NULL, p_detail json DEFAULT NULL)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO plexor.chat_moderation (site, room, actor, action, person, message, detail)
    VALUES (p_site, p_room, p_actor, p_action, p_person, p_message, p_detail)
$$;

-- Deletes a message: its text is removed from the log (the author and
-- moderators still see that it was deleted; the moderation record keeps
-- the text), and {"type":"delete","id":N} tells every client at once.
CREATE FUNCTION plexor.chat_delete(p_room text, p_id bigint, p_actor text DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_site    plexor.chat_sites := plexor.chat_room_site(p_room);
    v_message plexor.chat_messages;
    v_actor   text;
    v_data    json;
BEGIN
    SELECT * INTO v_message FROM plexor.chat_messages AS c WHERE c.id = p_id AND c.room = p_room FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM plexor.chat_refuse(404, format('no message %s in room %s', p_id, p_room));
    END IF;
    v_actor := plexor.chat_actor(v_site.name, p_actor, v_message.person);
    IF v_message.deleted_at IS NOT NULL THEN
        RETURN false;
    END IF;
    SELECT m.data INTO v_data FROM plexor.messages AS m WHERE m.id = v_message.message_id;
    UPDATE plexor.messages AS m
    SET data = json_build_object('type', 'message', 'id', p_id, 'user', v_data->'user', 'deleted', true)
    WHERE m.id = v_message.message_id;
    UPDATE plexor.chat_messages SET deleted_at = clock_timestamp() WHERE id = p_id;
    PERFORM plexor.chat_record(v_site.name, p_room, v_actor, 'delete', v_message.person, p_id,
                               json_build_object('text', v_data->'text'));
    INSERT INTO plexor.messages (tags, data) VALUES (ARRAY['chat:' || p_room], json_build_object('type', 'delete', 'id', p_id));
    RETURN true;
END
$$;

-- Bans a person from the site's rooms for p_seconds; with p_by_address, a
-- guest's address too (new guest sessions from it are refused).
CREATE FUNCTION plexor.chat_ban(p_site text, p_person bigint, p_seconds int, p_by_address boolean DEFAULT false,
                                p_reason text DEFAULT NULL, p_actor text DEFAULT NULL) RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_site   plexor.chat_sites := plexor.chat_room_site(p_site);
    v_actor  text := plexor.chat_actor(v_site.name, p_actor);
    v_person plexor.chat_people;
    v_until  timestamptz;
BEGIN
    SELECT * INTO v_person FROM plexor.chat_people AS p WHERE p.id = p_person AND p.site = v_site.name;
    IF NOT FOUND THEN
        PERFORM plexor.chat_refuse(404, format('no person %s on site %s', p_person, v_site.name));
    END IF;
    IF p_seconds IS NULL OR p_seconds NOT BETWEEN 1 AND 31536000 THEN
        RAISE EXCEPTION 'plexor: a ban lasts 1 to 31536000 seconds (a year)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_reason IS NOT NULL THEN
        PERFORM plexor.chat_check_text('reason', p_reason, 1, 500, false);
    END IF;
    v_until := now() + make_interval(secs => p_seconds);
    INSERT INTO plexor.chat_bans (site, person, ip, until, reason)
    VALUES (v_site.name, v_person.id, CASE WHEN p_by_address AND v_person.sub IS NULL THEN v_person.ip END, v_until, p_reason);
    PERFORM plexor.chat_record(v_site.name, NULL, v_actor, 'ban', v_person.id, NULL,
        json_build_object('seconds', p_seconds, 'address', p_by_address AND v_person.ip IS NOT NULL AND v_person.sub IS NULL, 'reason', p_reason));
    RETURN v_until;
END
$$;

CREATE FUNCTION plexor.chat_unban(p_site text, p_person bigint, p_actor text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_site    plexor.chat_sites := plexor.chat_room_site(p_site);
    v_actor   text := plexor.chat_actor(v_site.name, p_actor);
    v_removed bigint;
BEGIN
    DELETE FROM plexor.chat_bans AS b WHERE b.site = v_site.name AND b.person = p_person;
    GET DIAGNOSTICS v_removed = ROW_COUNT;
    PERFORM plexor.chat_record(v_site.name, NULL, v_actor, 'unban', p_person);
    RETURN v_removed;
END
$$;

-- Slow mode for one room (0: off; NULL: the site's default).
CREATE FUNCTION plexor.chat_slow_mode(p_room text, p_seconds int, p_actor text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_site  plexor.chat_sites := plexor.chat_room_site(p_room);
    v_actor text := plexor.chat_actor(v_site.name, p_actor);
BEGIN
    IF p_seconds NOT BETWEEN 0 AND 3600 THEN
        RAISE EXCEPTION 'plexor: slow mode is 0 to 3600 seconds' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO plexor.chat_rooms (room, site, slow_mode_seconds) VALUES (p_room, v_site.name, p_seconds)
    ON CONFLICT (room) DO UPDATE SET slow_mode_seconds = excluded.slow_mode_seconds;
    PERFORM plexor.chat_record(v_site.name, p_room, v_actor, 'slow_mode', NULL, NULL, json_build_object('seconds', p_seconds));
    INSERT INTO plexor.messages (tags, data)
    VALUES (ARRAY['chat:' || p_room], json_build_object('type', 'settings', 'slow_mode', coalesce(p_seconds, v_site.slow_mode_seconds)));
END
$$;

CREATE FUNCTION plexor.chat_guests(p_site text, p_allowed boolean, p_actor text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_site  plexor.chat_sites := plexor.chat_room_site(p_site);
    v_actor text := plexor.chat_actor(v_site.name, p_actor);
BEGIN
    IF p_allowed IS NULL THEN
        RAISE EXCEPTION 'plexor: guests allowed must be true or false' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE plexor.chat_sites SET guests_allowed = p_allowed WHERE name = v_site.name;
    PERFORM plexor.chat_record(v_site.name, NULL, v_actor, 'guests', NULL, NULL, json_build_object('allowed', p_allowed));
END
$$;

-- Clears a room's history (everything up to now); {"type":"clear"} tells clients.
CREATE FUNCTION plexor.chat_clear(p_room text, p_actor text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_site  plexor.chat_sites := plexor.chat_room_site(p_room);
    v_actor text := plexor.chat_actor(v_site.name, p_actor);
    v_seq   bigint := coalesce((SELECT t.last_seq FROM plexor.tags AS t WHERE t.tag = 'chat:' || p_room), 0);
BEGIN
    INSERT INTO plexor.chat_rooms (room, site, cleared_seq) VALUES (p_room, v_site.name, v_seq)
    ON CONFLICT (room) DO UPDATE SET cleared_seq = greatest(plexor.chat_rooms.cleared_seq, excluded.cleared_seq);
    PERFORM plexor.chat_record(v_site.name, p_room, v_actor, 'clear', NULL, NULL, json_build_object('upto', v_seq));
    INSERT INTO plexor.messages (tags, data) VALUES (ARRAY['chat:' || p_room], json_build_object('type', 'clear', 'upto', v_seq));
    RETURN v_seq;
END
$$;

-- The site's moderation record, newest first, for the site and its moderators.
CREATE FUNCTION plexor.chat_moderation_log(p_site text, p_limit int DEFAULT 100, p_actor text DEFAULT NULL)
RETURNS TABLE (entry text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM plexor.chat_actor(p_site, p_actor);
    RETURN QUERY
    SELECT json_strip_nulls(json_build_object(
        'id', m.id, 'room', m.room, 'actor', m.actor, 'action', m.action, 'user', m.person::text,
        'message', m.message, 'detail', m.detail,
        'time', to_char(m.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')))::text
    FROM plexor.chat_moderation AS m WHERE m.site = p_site
    ORDER BY m.id DESC LIMIT greatest(1, least(p_limit, 1000));
END
$$;

-- Retention: a site's rooms keep what the site says (by default the newest
-- 10,000 messages, whatever their age); every other tag keeps the
-- gateway's policy.
CREATE FUNCTION plexor.chat_site_of_tag(p_tag text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN starts_with(p_tag, 'chat:') THEN split_part(substr(p_tag, 6), '/', 1) END
$$;

-- Each tag's limits: its site's for a site's room, the gateway's for the rest.
CREATE FUNCTION plexor.trim_limits(p_max_age interval, p_max_per_tag bigint)
RETURNS TABLE (tag text, last_seq bigint, keep bigint, max_age interval)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT t.tag, t.last_seq,
           CASE WHEN s.name IS NULL THEN p_max_per_tag ELSE s.keep_messages END,
           CASE WHEN s.name IS NULL THEN p_max_age ELSE make_interval(days => s.keep_days) END
    FROM plexor.tags AS t
    LEFT JOIN plexor.chat_sites AS s ON s.name = plexor.chat_site_of_tag(t.tag)
$$;

CREATE OR REPLACE FUNCTION plexor.trim(max_age interval, max_per_tag bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_ids     bigint[] := '{}';
    v_removed bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('plexor.trim')) THEN
        RETURN NULL;
    END IF;
    WITH d AS (
        DELETE FROM plexor.log AS l USING plexor.trim_limits($1, $2) AS k
        WHERE l.tag = k.tag AND k.keep IS NOT NULL AND l.seq <= k.last_seq - k.keep
        RETURNING l.message_id
    )
    SELECT v_ids || coalesce(array_agg(DISTINCT d.message_id), '{}') INTO v_ids FROM d;
    WITH old AS (
        SELECT l.tag, max(l.seq) AS upto
        FROM plexor.log AS l
        JOIN plexor.trim_limits($1, $2) AS k ON k.tag = l.tag AND k.max_age IS NOT NULL
        JOIN plexor.messages AS m ON m.id = l.message_id
        WHERE m.time < clock_timestamp() - k.max_age
        GROUP BY l.tag
    ), d AS (
        DELETE FROM plexor.log AS l USING old
        WHERE l.tag = old.tag AND l.seq <= old.upto
        RETURNING l.message_id
    )
    SELECT v_ids || coalesce(array_agg(DISTINCT d.message_id), '{}') INTO v_ids FROM d;
    DELETE FROM plexor.messages AS m
        WHERE m.id = ANY (v_ids)
          AND NOT EXISTS (SELECT 1 FROM plexor.log AS l WHERE l.message_id = m.id);
    GET DIAGNOSTICS v_removed = ROW_COUNT;
    -- Bans that ended, and guests not seen for 30 days with nothing left to their name.
    DELETE FROM plexor.chat_bans WHERE until < now();
    DELETE FROM plexor.chat_people AS p
    WHERE p.sub IS NULL AND p.seen_at < now() - interval '30 days'
      AND NOT EXISTS (SELECT FROM plexor.chat_messages AS c WHERE c.person = p.id);
    RETURN v_removed;
END
$$;

-- Access grants --------------------------------------------------------------

-- Tokens that let a client poll private tags (and the chat's sessions) are
-- signed with HMAC-SHA-256 under a key derived from the notification key:
-- HMAC(notification key, 'plexor token key v1'). Gateways derive the same.
CREATE FUNCTION plexor.token_mac(p_message text) RETURNS bytea
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_key    bytea;
    v_padded bytea;
    v_inner  bytea;
    v_outer  bytea;
BEGIN
    SELECT sha256(k.outer_pad || sha256(k.inner_pad || convert_to('plexor token key v1', 'UTF8'))) INTO v_key
    FROM plexor.notification_key AS k;
    v_padded := v_key || decode(repeat('00', 32), 'hex');
    v_inner := v_padded;
    v_outer := v_padded;
    FOR i IN 0 .. 63 LOOP
        v_inner := set_byte(v_inner, i, get_byte(v_padded, i) # 54);
        v_outer := set_byte(v_outer, i, get_byte(v_padded, i) # 92);
    END LOOP;
    RETURN sha256(v_outer || sha256(v_inner || convert_to(p_message, 'UTF8')));
END
$$;

CREATE FUNCTION plexor.base64url(p_bytes bytea) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT rtrim(translate(encode(p_bytes, 'base64'), E'+/\n', '-_'), '=')
$$;

-- A token that lets its holder poll `tags` (an entry ending in `*`: every
-- tag starting with what precedes it) for `seconds`. Sent as
-- `Authorization: Bearer <token>` with the poll. Any application server
-- with the plexor_publisher role can hand them to its users.
CREATE FUNCTION plexor.grant_access(tags text[], seconds int DEFAULT 3600) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_tag     text;
    v_problem text;
    v_body    text;
BEGIN
    IF coalesce(cardinality(tags), 0) NOT BETWEEN 1 AND 100 THEN
        RAISE EXCEPTION 'plexor: a grant names 1 to 100 tags' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF seconds IS NULL OR seconds NOT BETWEEN 1 AND 604800 THEN
        RAISE EXCEPTION 'plexor: a grant lasts 1 to 604800 seconds (a week)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH v_tag IN ARRAY tags LOOP
        v_problem := plexor.tag_problem(CASE WHEN right(v_tag, 1) = '*' AND length(v_tag) > 1 THEN left(v_tag, -1) ELSE v_tag END);
        IF v_problem IS NOT NULL THEN
            RAISE EXCEPTION 'plexor: the grant has an invalid tag %: it %', coalesce(quote_literal(left(v_tag, 140)), 'NULL'), v_problem
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    v_body := 'g1.' || plexor.base64url(convert_to(
        (extract(epoch FROM now())::bigint + seconds)::text || ' ' || array_to_string(tags, ' '), 'UTF8'));
    RETURN v_body || '.' || plexor.base64url(plexor.token_mac(v_body));
END
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA plexor FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA plexor FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA plexor FROM PUBLIC;

-- Applications hand out grants.
GRANT EXECUTE ON FUNCTION plexor.grant_access(text[], int) TO plexor_publisher;
-- Gateways run the chat.
GRANT EXECUTE ON FUNCTION
    plexor.chat_guest(text, text, text),
    plexor.chat_verified(text, text, text, text, boolean),
    plexor.chat_site_settings(text),
    plexor.chat_post(text, bigint, text, text),
    plexor.chat_history(text, bigint, int, bigint),
    plexor.chat_presence(text),
    plexor.chat_delete(text, bigint, text),
    plexor.chat_ban(text, bigint, int, boolean, text, text),
    plexor.chat_unban(text, bigint, text),
    plexor.chat_slow_mode(text, int, text),
    plexor.chat_guests(text, boolean, text),
    plexor.chat_clear(text, text),
    plexor.chat_moderation_log(text, int, text)
TO plexor_gateway;
