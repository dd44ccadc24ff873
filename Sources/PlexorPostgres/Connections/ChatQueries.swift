import PlexorCore

/// What a gateway reads of a site before checking its requests: the secret
/// (the site's tokens, its backend's moderation) and the rate limits.
public struct ChatSiteSettings: Sendable, Equatable {
    public var secret: String
    /// Posts per minute: per site-verified person, per guest, per address.
    public var personRate: Int
    public var guestRate: Int
    public var addressRate: Int

    public init(secret: String, personRate: Int, guestRate: Int, addressRate: Int) {
        self.secret = secret
        self.personRate = personRate
        self.guestRate = guestRate
        self.addressRate = addressRate
    }
}

/// A site as its operator sees it (`plexor site`).
public struct ChatSite: Sendable, Equatable {
    public var name: String
    public var origins: [String]
    public var guestsAllowed: Bool
    public var slowModeSeconds: Int
    public var personRate: Int
    public var guestRate: Int
    public var addressRate: Int
    public var keepMessages: Int
    public var keepDays: Int?
    public var secret: String
}

/// What the widget's page needs of its site.
public struct ChatEmbedSettings: Sendable, Equatable {
    public var origins: [String]
    public var customCSS: String?
    public var guestsAllowed: Bool
}

/// A person a session was made for, with their JSON as messages show them.
public struct ChatPerson: Sendable, Equatable {
    public var id: Int64
    public var json: String
}

/// A room's message: its seq on the room's tag, time and JSON.
public struct ChatEntry: Sendable, Equatable {
    public var seq: Int64
    public var time: String
    public var data: String

    /// `{"seq":…,"time":"…","data":{…}}`.
    public var json: String { "{\"seq\":\(self.seq),\"time\":\"\(self.time)\",\"data\":\(self.data)}" }
}

/// The chat's SQL functions (`005_chat.sql`); each refusal is a
/// `PostgresError` whose SQLSTATE is `PX` and the HTTP status.
extension PostgresConnection {
    /// Creates a site; returns its secret.
    public func chatSiteAdd(name: String, origins: [String]) throws -> String {
        try self.query("SELECT plexor.chat_site_add($1, $2)", [name, ArrayLiteral.make(origins)]) { $0.string(0, 0)! }
    }

    /// Changes settings (a JSON object, see `plexor.chat_site_set`); returns a new secret if one was made.
    public func chatSiteSet(name: String, settings: String) throws -> String? {
        try self.query("SELECT plexor.chat_site_set($1, $2)", [name, settings]) { $0.string(0, 0) }
    }

    public func chatSiteRemove(name: String) throws -> Bool {
        try self.query("SELECT plexor.chat_site_remove($1)", [name]) { $0.bool(0, 0) ?? false }
    }

    /// Every site, or the one named.
    public func chatSites(named name: String? = nil) throws -> [ChatSite] {
        try self.query("""
            SELECT name, origins, guests_allowed, slow_mode_seconds, person_rate, guest_rate, ip_rate, keep_messages, keep_days, secret
            FROM plexor.chat_sites WHERE $1::text IS NULL OR name = $1 ORDER BY name
            """, [name]) { rows in
            (0..<rows.count).map { row in
                ChatSite(name: rows.string(row, 0)!, origins: rows.tagArray(row, 1) ?? [], guestsAllowed: rows.bool(row, 2)!,
                         slowModeSeconds: Int(rows.int64(row, 3)!), personRate: Int(rows.int64(row, 4)!),
                         guestRate: Int(rows.int64(row, 5)!), addressRate: Int(rows.int64(row, 6)!),
                         keepMessages: Int(rows.int64(row, 7)!), keepDays: rows.int64(row, 8).map { Int($0) }, secret: rows.string(row, 9)!)
            }
        }
    }

    public func chatSiteSettings(site: String) throws -> ChatSiteSettings? {
        try self.query("SELECT secret, person_rate, guest_rate, ip_rate FROM plexor.chat_site_settings($1)", [site]) { rows in
            guard rows.count == 1 else { return nil }
            return ChatSiteSettings(secret: rows.string(0, 0)!, personRate: Int(rows.int64(0, 1)!), guestRate: Int(rows.int64(0, 2)!),
                                    addressRate: Int(rows.int64(0, 3)!))
        }
    }

    public func chatGuest(site: String, name: String, address: String?) throws -> ChatPerson {
        try self.person("SELECT person, \"user\" FROM plexor.chat_guest($1, $2, $3)", [site, name, address])
    }

    public func chatVerified(site: String, subject: String, name: String, avatar: String?, moderator: Bool) throws -> ChatPerson {
        try self.person("SELECT person, \"user\" FROM plexor.chat_verified($1, $2, $3, $4, $5)",
                        [site, subject, name, avatar, moderator ? "true" : "false"])
    }

    private func person(_ sql: String, _ parameters: [String?]) throws -> ChatPerson {
        try self.query(sql, parameters) { rows in ChatPerson(id: rows.int64(0, 0)!, json: rows.string(0, 1)!) }
    }

    public func chatPost(room: String, person: Int64, address: String?, text: String) throws -> ChatEntry {
        try self.entries("SELECT seq, at, data FROM plexor.chat_post($1, $2, $3, $4)", [room, String(person), address, text])[0]
    }

    /// Newest first.
    public func chatHistory(room: String, before: Int64?, limit: Int, viewer: Int64?) throws -> [ChatEntry] {
        try self.entries("SELECT seq, at, data FROM plexor.chat_history($1, $2, $3, $4)",
                         [room, before.map(String.init), String(limit), viewer.map(String.init)])
    }

    private func entries(_ sql: String, _ parameters: [String?]) throws -> [ChatEntry] {
        try self.query(sql, parameters) { rows in
            (0..<rows.count).map { ChatEntry(seq: rows.int64($0, 0)!, time: rows.string($0, 1)!, data: rows.string($0, 2)!) }
        }
    }

    /// The JSON of each person present in the room.
    public func chatPresence(room: String) throws -> [String] {
        try self.strings("SELECT \"user\" FROM plexor.chat_presence($1)", [room])
    }

    /// Newest first, as JSON objects.
    public func chatModerationLog(site: String, limit: Int, actor: String) throws -> [String] {
        try self.strings("SELECT entry FROM plexor.chat_moderation_log($1, $2, $3)", [site, String(limit), actor])
    }

    private func strings(_ sql: String, _ parameters: [String?]) throws -> [String] {
        try self.query(sql, parameters) { rows in (0..<rows.count).map { rows.string($0, 0)! } }
    }

    public func chatSiteCSS(name: String, css: String?) throws {
        try self.execute("SELECT plexor.chat_site_css($1, $2)", [name, css])
    }

    public func chatEmbed(site: String) throws -> ChatEmbedSettings? {
        try self.query("SELECT origins, custom_css, guests_allowed FROM plexor.chat_embed($1)", [site]) { rows in
            rows.count == 1 ? ChatEmbedSettings(origins: rows.tagArray(0, 0) ?? [], customCSS: rows.string(0, 1), guestsAllowed: rows.bool(0, 2)!) : nil
        }
    }

    /// A remembered nickname's new identity.
    public func chatIdentityGuest(name: String) throws -> Int64 {
        try self.query("SELECT plexor.chat_identity_guest($1)", [name]) { $0.int64(0, 0)! }
    }

    /// An OpenID Connect identity, made or renamed.
    public func chatIdentityOIDC(issuer: String, subject: String, name: String, provider: String) throws -> Int64 {
        try self.query("SELECT plexor.chat_identity_oidc($1, $2, $3, $4)", [issuer, subject, name, provider]) { $0.int64(0, 0)! }
    }

    /// The identity's name and provider, if it still exists.
    public func chatIdentityName(_ identity: Int64) throws -> (name: String, provider: String?)? {
        try self.query("SELECT name, provider FROM plexor.chat_identity_name($1)", [String(identity)]) { rows in
            rows.count == 1 ? (rows.string(0, 0)!, rows.string(0, 1)) : nil
        }
    }

    /// The site's person for an identity.
    public func chatIdentityPerson(site: String, identity: Int64, address: String?) throws -> ChatPerson {
        try self.person("SELECT person, \"user\" FROM plexor.chat_identity_person($1, $2, $3)", [site, String(identity), address])
    }

    /// A session's person, still there and not banned; whether they are a guest.
    public func chatRenew(site: String, person: Int64) throws -> (person: ChatPerson, guest: Bool) {
        try self.query("SELECT person, \"user\", guest FROM plexor.chat_renew($1, $2)", [site, String(person)]) { rows in
            (ChatPerson(id: rows.int64(0, 0)!, json: rows.string(0, 1)!), rows.bool(0, 2)!)
        }
    }

    /// The seq of the room's newest message (0: none yet).
    public func chatLastSeq(room: String) throws -> Int64 {
        try self.query("SELECT plexor.chat_last_seq($1)", [room]) { $0.int64(0, 0)! }
    }

    /// One moderation function (`plexor.chat_delete(...)` and its kin) with
    /// its arguments and the acting `actor` last; returns its result as text.
    public func chatModerate(_ function: ChatModeration, _ arguments: [String?], actor: String) throws -> String? {
        let placeholders = (1...arguments.count + 1).map { "$\($0)" }.joined(separator: ", ")
        return try self.query("SELECT plexor.\(function.rawValue)(\(placeholders))::text", arguments + [actor]) { rows in
            rows.string(0, 0)
        }
    }
}

/// The moderation functions a gateway calls, by name.
public enum ChatModeration: String, Sendable {
    case delete = "chat_delete"
    case ban = "chat_ban"
    case unban = "chat_unban"
    case slowMode = "chat_slow_mode"
    case guests = "chat_guests"
    case clear = "chat_clear"
}
