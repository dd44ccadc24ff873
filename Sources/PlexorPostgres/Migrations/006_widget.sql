-- Version 6: what the embeddable chat widget needs.
--
-- 1. A site's own CSS for its widget (never from a URL).
-- 2. Identities on the gateway's own origin: a person signs in once (a
--    nickname remembered there, or an OpenID Connect provider) and is
--    themselves on every site's widget, as a person of that site keyed by
--    (site, identity).
-- 3. Renewing a session for the same person.

ALTER TABLE plexor.chat_sites ADD COLUMN custom_css text CHECK (octet_length(custom_css) <= 20000);

CREATE TABLE plexor.chat_identities (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text        NOT NULL,
    -- NULL for a remembered nickname; else the OpenID Connect issuer, its subject and its display name.
    issuer     text,
    subject    text,
    provider   text,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (issuer, subject)
);

ALTER TABLE plexor.chat_people ADD COLUMN identity bigint REFERENCES plexor.chat_identities (id) ON DELETE CASCADE;
CREATE UNIQUE INDEX chat_people_identity ON plexor.chat_people (site, identity) WHERE identity IS NOT NULL;

-- A person as messages show them; `via`: the provider an identity signed in with.
CREATE OR REPLACE FUNCTION plexor.chat_user(p plexor.chat_people) RETURNS json
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT json_strip_nulls(json_build_object(
        'key', p.id::text, 'name', p.name, 'verified', p.sub IS NOT NULL, 'avatar', p.avatar,
        'mod', CASE WHEN p.moderator THEN true END,
        'via', (SELECT i.provider FROM plexor.chat_identities AS i WHERE i.id = p.identity)))
$$;

-- Sets (or with NULL removes) a site's CSS for its widget.
CREATE FUNCTION plexor.chat_site_css(p_name text, p_css text, p_actor text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF octet_length(p_css) > 20000 THEN
        RAISE EXCEPTION 'plexor: a site''s CSS is at most 20000 bytes' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_css ~ '[\x01-\x08\x0b\x0c\x0e-\x1f]' OR position('</' IN p_css) > 0 THEN
        RAISE EXCEPTION 'plexor: the CSS has a control character or ''</''' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE plexor.chat_sites SET custom_css = p_css WHERE name = p_name;
    IF NOT FOUND THEN
        PERFORM plexor.chat_refuse(404, format('no site is named %s', coalesce(quote_literal(p_name), 'NULL')));
    END IF;
    PERFORM plexor.chat_record(p_name, NULL, coalesce(p_actor, 'sql:' || session_user), 'css', NULL, NULL,
                               json_build_object('bytes', octet_length(p_css)));
END
$$;

-- What the widget's page needs of its site.
CREATE FUNCTION plexor.chat_embed(p_site text)
RETURNS TABLE (origins text[], custom_css text, guests_allowed boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.origins, s.custom_css, s.guests_allowed FROM plexor.chat_sites AS s WHERE s.name = p_site
$$;

-- A remembered nickname: an identity of its own.
CREATE FUNCTION plexor.chat_identity_guest(p_name text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM plexor.chat_check_text('nickname', p_name, 2, 32, false);
    INSERT INTO plexor.chat_identities (name) VALUES (p_name) RETURNING id INTO v_id;
    RETURN v_id;
END
$$;

-- An OpenID Connect identity, created or renamed.
CREATE FUNCTION plexor.chat_identity_oidc(p_issuer text, p_subject text, p_name text, p_provider text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM plexor.chat_check_text('name', p_name, 1, 64, false);
    IF coalesce(length(p_subject), 0) NOT BETWEEN 1 AND 255 OR coalesce(length(p_issuer), 0) NOT BETWEEN 1 AND 500 THEN
        RAISE EXCEPTION 'plexor: an identity needs an issuer and a subject' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO plexor.chat_identities AS i (name, issuer, subject, provider) VALUES (p_name, p_issuer, p_subject, p_provider)
    ON CONFLICT (issuer, subject) DO UPDATE SET name = excluded.name, provider = excluded.provider
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;

-- The identity's name, when it exists.
CREATE FUNCTION plexor.chat_identity_name(p_identity bigint) RETURNS TABLE (name text, provider text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT i.name, i.provider FROM plexor.chat_identities AS i WHERE i.id = p_identity
$$;

-- The site's person for an identity (made on first use). Such people are
-- not vouched for by the site: guests' rules apply (guests allowed, bans by
-- address, names of the site's verified members).
CREATE FUNCTION plexor.chat_identity_person(p_site text, p_identity bigint, p_ip text)
RETURNS TABLE (person bigint, "user" text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_site     plexor.chat_sites := plexor.chat_room_site(p_site);
    v_ip       inet := plexor.chat_inet(p_ip);
    v_identity plexor.chat_identities;
    v_person   plexor.chat_people;
BEGIN
    SELECT * INTO v_identity FROM plexor.chat_identities AS i WHERE i.id = p_identity;
    IF NOT FOUND THEN
        PERFORM plexor.chat_refuse(401, 'this sign-in is no longer valid; sign in again');
    END IF;
    IF NOT v_site.guests_allowed THEN
        PERFORM plexor.chat_refuse(403, 'this chat is for the site''s signed-in members only');
    END IF;
    PERFORM plexor.chat_check_not_banned(v_site.name, NULL, v_ip);
    IF EXISTS (SELECT FROM plexor.chat_people AS p
               WHERE p.site = v_site.name AND p.sub IS NOT NULL AND lower(p.name) = lower(v_identity.name)) THEN
        PERFORM plexor.chat_refuse(409, format('the name %s belongs to a member of this site', v_identity.name));
    END IF;
    INSERT INTO plexor.chat_people AS p (site, name, ip, identity)
    VALUES (v_site.name, v_identity.name, v_ip, v_identity.id)
    ON CONFLICT (site, identity) WHERE identity IS NOT NULL
        DO UPDATE SET name = excluded.name, ip = excluded.ip, seen_at = now()
    RETURNING * INTO v_person;
    PERFORM plexor.chat_check_not_banned(v_site.name, v_person.id, v_ip);
    RETURN QUERY SELECT v_person.id, plexor.chat_user(v_person)::text;
END
$$;

-- A session's person, still there and not banned: for renewing the session.
CREATE FUNCTION plexor.chat_renew(p_site text, p_person bigint)
RETURNS TABLE (person bigint, "user" text, guest boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_person plexor.chat_people;
BEGIN
    SELECT * INTO v_person FROM plexor.chat_people AS p WHERE p.id = p_person AND p.site = p_site;
    IF NOT FOUND THEN
        PERFORM plexor.chat_refuse(401, 'this session is no longer valid; sign in again');
    END IF;
    PERFORM plexor.chat_check_not_banned(p_site, v_person.id, CASE WHEN v_person.sub IS NULL THEN v_person.ip END);
    UPDATE plexor.chat_people SET seen_at = now() WHERE id = v_person.id;
    RETURN QUERY SELECT v_person.id, plexor.chat_user(v_person)::text, v_person.sub IS NULL;
END
$$;

-- The seq of a room's newest message (0 for none): where a widget that
-- has read the history goes on from.
CREATE FUNCTION plexor.chat_last_seq(p_room text) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce((SELECT t.last_seq FROM plexor.tags AS t WHERE t.tag = 'chat:' || p_room), 0)
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA plexor FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA plexor FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    plexor.chat_embed(text),
    plexor.chat_identity_guest(text),
    plexor.chat_identity_oidc(text, text, text, text),
    plexor.chat_identity_name(bigint),
    plexor.chat_identity_person(text, bigint, text),
    plexor.chat_renew(text, bigint),
    plexor.chat_last_seq(text)
TO plexor_gateway;
