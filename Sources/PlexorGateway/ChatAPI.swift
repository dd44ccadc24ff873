import Foundation
import NIOCore
import NIOHTTP1
import PlexorAccess
import PlexorChat
import PlexorCore
import PlexorPostgres
import Synchronization

/// A chat request as the HTTP handler hands it over.
struct ChatCall: Sendable {
    var method: HTTPMethod
    var route: ChatRoute
    var query: String
    var authorization: String?
    var body: [UInt8]
    /// The client's address (rate limits, guests' bans).
    var address: String?
}

/// A chat answer: always JSON.
struct ChatReply: Sendable {
    var status: HTTPResponseStatus
    var body: String
    var headers: [(String, String)] = []

    static func error(_ status: HTTPResponseStatus, _ message: String, headers: [(String, String)] = []) -> ChatReply {
        ChatReply(status: status, body: "{\"error\":\(JSONString.quoted(message))}", headers: headers)
    }

    static let unauthorized = ChatReply.error(.unauthorized, "a chat session is required: Authorization: Bearer <session> (POST /chat/session makes one)",
                                              headers: [("WWW-Authenticate", "Bearer")])
}

/// `/chat/...`: sessions, posting, history, room presence and moderation.
/// Checks what it can on the event loop (sessions, bodies, rate limits) and
/// leaves the rest to one SQL function call per request (`005_chat.sql`).
final class ChatAPI: Sendable {
    /// Seconds a session lasts.
    static let sessionLifetime: Int64 = 86_400
    /// A site's settings read longer ago than this are read again.
    static let settingsLifetime: Double = 10

    private let pool: PostgresPool
    private let access: AccessControl
    private let metrics: GatewayMetrics
    /// Guest sessions one address may start a minute (the default 30: ten at once, for a school or an office behind one address).
    private let guestSessionsPerMinute: Int
    private let limits = Mutex(RateLimits())
    private let sites = Mutex<[String: (settings: ChatSiteSettings, read: Double)]>([:])

    init(pool: PostgresPool, access: AccessControl, metrics: GatewayMetrics, guestSessionsPerMinute: Int = 30) {
        self.guestSessionsPerMinute = guestSessionsPerMinute
        self.pool = pool
        self.access = access
        self.metrics = metrics
    }

    func handle(_ call: ChatCall, on loop: any EventLoop) -> EventLoopFuture<ChatReply> {
        switch (call.route, call.method) {
        case (.session, .POST):
            return self.session(call, on: loop)
        case (.room(let room, .messages), .POST):
            return self.post(call, room, on: loop)
        case (.room(let room, .history), .GET):
            return self.history(call, room, on: loop)
        case (.room(let room, .presence), .GET):
            return self.presence(call, room, on: loop)
        case (.room(let room, .moderation), .POST):
            return self.moderate(call, room, on: loop)
        case (.room(let room, .moderation), .GET):
            return self.moderationLog(call, room, on: loop)
        case (.session, _), (.room(_, .messages), _):
            return loop.makeSucceededFuture(Self.methodNotAllowed(call.method, allowed: "POST"))
        case (.room(_, .history), _), (.room(_, .presence), _):
            return loop.makeSucceededFuture(Self.methodNotAllowed(call.method, allowed: "GET"))
        case (.room(_, .moderation), _):
            return loop.makeSucceededFuture(Self.methodNotAllowed(call.method, allowed: "GET, POST"))
        }
    }

    // MARK: Sessions

    private func session(_ call: ChatCall, on loop: any EventLoop) -> EventLoopFuture<ChatReply> {
        let request: ChatBody.Session
        do {
            request = try ChatBody.decode(ChatBody.Session.self, from: call.body,
                                          expecting: #"{"site":"…","guest":"nickname"} or {"site":"…","token":"<the site's JWT>"}"#)
        } catch {
            return loop.makeSucceededFuture(.error(.badRequest, error.description))
        }
        guard Room.isSite(request.site) else {
            return loop.makeSucceededFuture(.error(.notFound, "\(request.site.prefix(40)) is not a site name"))
        }
        switch (request.guest, request.token) {
        case (nil, nil) where request.renew == true:
            // The same person, a fresh session: a guest keeps their key.
            guard let current = self.session(call, site: request.site) else { return loop.makeSucceededFuture(.unauthorized) }
            return self.run(on: loop) { connection in
                let renewed = try connection.chatRenew(site: request.site, person: current.person)
                return self.sessionReply(site: request.site, person: renewed.person, guest: renewed.guest)
            }
        case (let guest?, nil):
            let name: String
            do {
                name = try ChatText.nickname(guest)
            } catch {
                return loop.makeSucceededFuture(.error(.badRequest, error.description))
            }
            if let refusal = self.takeGuestSession(address: call.address) { return loop.makeSucceededFuture(refusal) }
            return self.run(on: loop) { connection in
                let person = try connection.chatGuest(site: request.site, name: name, address: call.address)
                return self.sessionReply(site: request.site, person: person, guest: true)
            }
        case (nil, let token?):
            return self.run(on: loop) { connection in
                guard let settings = try self.settings(request.site, connection) else {
                    return .error(.notFound, "no site is named \(request.site)")
                }
                let vouched: SiteToken
                do {
                    vouched = try SiteToken.verify(token, secret: Array(settings.secret.utf8), now: Self.now())
                } catch let failure as SiteToken.Failure {
                    return .error(.unauthorized, failure.description)
                }
                let person = try connection.chatVerified(site: request.site, subject: vouched.subject, name: vouched.name,
                                                         avatar: vouched.avatar, moderator: vouched.moderator)
                return self.sessionReply(site: request.site, person: person, guest: false)
            }
        default:
            return loop.makeSucceededFuture(.error(.badRequest, "give one of guest (a nickname), token (the site's signed token) or renew: true"))
        }
    }

    /// Each guest session is a row: an address may make only so many. A `429` when it has.
    func takeGuestSession(address: String?) -> ChatReply? {
        let key = "session:" + (address ?? "unknown")
        guard let wait = self.limits.withLock({ $0.take([(key, self.guestSessionsPerMinute)], now: Self.uptime()) }) else { return nil }
        return self.rateLimited(wait, "too many guest sessions from your address")
    }

    /// `201` with a new session for the person (also what the sign-in pages answer).
    func sessionReply(site: String, person: ChatPerson, guest: Bool) -> ChatReply {
        guard let signer = self.access.signer else { return .error(.serviceUnavailable, "PostgreSQL is unavailable; retry") }
        let session = SessionToken(expires: Self.now() + Self.sessionLifetime, site: site, person: person.id, guest: guest)
        return ChatReply(status: .created, body: """
            {"session":\(JSONString.quoted(session.token(signer: signer))),"expires":\(session.expires),"user":\(person.json)}
            """)
    }

    /// The session in the request, for this site; nil answers 401.
    private func session(_ call: ChatCall, site: String) -> SessionToken? {
        guard case .session(let session)? = self.access.credential(call.authorization), session.site == site else { return nil }
        return session
    }

    // MARK: Posting and reading

    private func post(_ call: ChatCall, _ room: Room, on loop: any EventLoop) -> EventLoopFuture<ChatReply> {
        guard let session = self.session(call, site: room.site) else { return loop.makeSucceededFuture(.unauthorized) }
        let text: String
        do {
            let body = try ChatBody.decode(ChatBody.Post.self, from: call.body, expecting: #"{"text":"…"}"#)
            text = try ChatText.message(body.text)
        } catch {
            return loop.makeSucceededFuture(.error(.badRequest, error.description))
        }
        let address = call.address ?? "unknown"
        // Known limits are checked here, so a flood never reaches the database.
        let cached = self.sites.withLock { $0[room.site] }.flatMap { Self.uptime() - $0.read < Self.settingsLifetime ? $0.settings : nil }
        if let cached, let refusal = self.takePost(session, address, cached) {
            return loop.makeSucceededFuture(refusal)
        }
        return self.run(on: loop) { connection in
            if cached == nil {
                guard let settings = try self.settings(room.site, connection) else {
                    return .error(.notFound, "no site is named \(room.site)")
                }
                if let refusal = self.takePost(session, address, settings) { return refusal }
            }
            let entry = try connection.chatPost(room: room.name, person: session.person, address: call.address, text: text)
            self.metrics.chatPosts.add(1, ordering: .relaxed)
            return ChatReply(status: .created, body: entry.json)
        }
    }

    /// Takes a post from the person's and the address's buckets; a 429 when either is empty.
    private func takePost(_ session: SessionToken, _ address: String, _ settings: ChatSiteSettings) -> ChatReply? {
        let limits = [("person:\(session.site):\(session.person)", session.guest ? settings.guestRate : settings.personRate),
                      ("address:\(session.site):\(address)", settings.addressRate)]
        guard let wait = self.limits.withLock({ $0.take(limits, now: Self.uptime()) }) else { return nil }
        return self.rateLimited(wait, "you are posting too fast")
    }

    private func rateLimited(_ wait: Double, _ message: String) -> ChatReply {
        self.metrics.chatRateLimited.add(1, ordering: .relaxed)
        let seconds = max(1, Int(wait.rounded(.up)))
        return .error(.tooManyRequests, "\(message); retry in \(seconds) s", headers: [("Retry-After", String(seconds))])
    }

    private func history(_ call: ChatCall, _ room: Room, on loop: any EventLoop) -> EventLoopFuture<ChatReply> {
        var before: Int64?
        var limit = 50
        for item in call.query.split(separator: "&") {
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let value = pair.count == 2 ? pair[1] : ""
            switch pair[0] {
            case "before":
                guard let seq = Int64(value), seq >= 1 else {
                    return loop.makeSucceededFuture(.error(.badRequest, "before must be a seq, 1 or more"))
                }
                before = seq
            case "limit":
                guard let count = Int(value), (1...200).contains(count) else {
                    return loop.makeSucceededFuture(.error(.badRequest, "limit must be 1 to 200"))
                }
                limit = count
            default:
                return loop.makeSucceededFuture(.error(.badRequest, "unknown parameter \(pair[0].prefix(40)); use before and limit"))
            }
        }
        let credential = self.access.credential(call.authorization)
        if call.authorization != nil && credential == nil { return loop.makeSucceededFuture(.unauthorized) }
        // A private room's history is for those who may follow it.
        if self.access.privateTags.isPrivate(room.tag) && !self.access.privateTags.allows(room.tag, to: credential) {
            return loop.makeSucceededFuture(.error(.forbidden, "this room is private"))
        }
        var viewer: Int64?
        if case .session(let session)? = credential, session.site == room.site { viewer = session.person }
        return self.run(on: loop) { [viewer, before, limit] connection in
            // The newest page also says where live messages go on from: read first, so none falls between.
            let last = before == nil ? try connection.chatLastSeq(room: room.name) : nil
            let page = try connection.chatHistory(room: room.name, before: last.map { $0 + 1 } ?? before, limit: limit, viewer: viewer)
            // Oldest first; `before` asks for the page before this one, null when there is none.
            let next = page.count == limit ? page.last.map { String($0.seq) } ?? "null" : "null"
            let messages = page.reversed().map(\.json).joined(separator: ",")
            return ChatReply(status: .ok, body: "{\"messages\":[\(messages)],\"before\":\(next)\(last.map { ",\"last\":\($0)" } ?? "")}")
        }
    }

    private func presence(_ call: ChatCall, _ room: Room, on loop: any EventLoop) -> EventLoopFuture<ChatReply> {
        guard self.session(call, site: room.site) != nil else { return loop.makeSucceededFuture(.unauthorized) }
        return self.run(on: loop) { connection in
            let people = try connection.chatPresence(room: room.name)
            return ChatReply(status: .ok, body: "{\"people\":[\(people.joined(separator: ","))]}")
        }
    }

    // MARK: Moderation

    private func moderate(_ call: ChatCall, _ room: Room, on loop: any EventLoop) -> EventLoopFuture<ChatReply> {
        let request: ChatBody.Moderation
        let function: ChatModeration
        let arguments: [String?]
        do {
            request = try ChatBody.decode(ChatBody.Moderation.self, from: call.body, expecting: #"{"action":"…",…}"#)
            (function, arguments) = try Self.moderation(request, room)
        } catch {
            return loop.makeSucceededFuture(.error(.badRequest, error.description))
        }
        return self.asModerator(call, room, on: loop) { connection, actor in
            let result = try connection.chatModerate(function, arguments, actor: actor)
            return ChatReply(status: .ok, body: "{\"done\":\(JSONString.quoted(request.action)),\"result\":\(result.map(JSONString.quoted) ?? "null")}")
        }
    }

    private func moderationLog(_ call: ChatCall, _ room: Room, on loop: any EventLoop) -> EventLoopFuture<ChatReply> {
        return self.asModerator(call, room, on: loop) { connection, actor in
            let entries = try connection.chatModerationLog(site: room.site, limit: 200, actor: actor)
            return ChatReply(status: .ok, body: "{\"actions\":[\(entries.joined(separator: ","))]}")
        }
    }

    /// Runs `body` for the site's backend (`Bearer <site secret>`, actor
    /// `site`) or a person's session (actor `person:ID`; the database checks
    /// that they moderate the site, or wrote the message they delete).
    private func asModerator(_ call: ChatCall, _ room: Room, on loop: any EventLoop,
                             _ body: @escaping @Sendable (PostgresConnection, String) throws -> ChatReply) -> EventLoopFuture<ChatReply> {
        guard let token = call.authorization.flatMap(bearerToken) else { return loop.makeSucceededFuture(.unauthorized) }
        if let session = self.session(call, site: room.site) {
            return self.run(on: loop) { connection in try body(connection, "person:\(session.person)") }
        }
        return self.run(on: loop) { connection in
            guard let settings = try self.settings(room.site, connection) else {
                return .error(.notFound, "no site is named \(room.site)")
            }
            guard constantTimeEquals(token, settings.secret) else { return .unauthorized }
            return try body(connection, "site")
        }
    }

    /// The SQL function and its arguments (the actor comes last) for a moderation request.
    private static func moderation(_ request: ChatBody.Moderation, _ room: Room) throws(ChatText.Problem) -> (ChatModeration, [String?]) {
        func required<T>(_ value: T?, _ name: String) throws(ChatText.Problem) -> T {
            guard let value else { throw ChatText.Problem(description: "\(request.action) needs \(name)") }
            return value
        }
        func person() throws(ChatText.Problem) -> String {
            let user = try required(request.user, "user (the person's key)")
            guard !user.isEmpty, user.count <= 18, user.allSatisfy(\.isASCII), user.allSatisfy(\.isNumber) else {
                throw ChatText.Problem(description: "user must be a person's key, as messages show it")
            }
            return user
        }
        switch request.action {
        case "delete":
            return (.delete, [room.name, String(try required(request.id, "id (the message's id)"))])
        case "ban":
            let reason = try request.reason.map { reason throws(ChatText.Problem) in try ChatText.checkedReason(reason) }
            return (.ban, [room.site, try person(), String(try required(request.seconds, "seconds")),
                           (request.address ?? false) ? "true" : "false", reason])
        case "unban":
            return (.unban, [room.site, try person()])
        case "slow_mode":
            return (.slowMode, [room.name, String(try required(request.seconds, "seconds (0 turns it off)"))])
        case "guests":
            return (.guests, [room.site, try required(request.allowed, "allowed (true or false)") ? "true" : "false"])
        case "clear":
            return (.clear, [room.name])
        default:
            throw ChatText.Problem(description: "unknown action \(request.action.prefix(40)); actions: delete, ban, unban, slow_mode, guests, clear")
        }
    }

    // MARK: Support

    /// A site's settings, read now (and cached for the rate limits).
    private func settings(_ site: String, _ connection: PostgresConnection) throws -> ChatSiteSettings? {
        let settings = try connection.chatSiteSettings(site: site)
        self.sites.withLock { sites in
            if let settings {
                // Bounded: at most one entry per site that exists.
                sites[site] = (settings, Self.uptime())
            } else {
                sites.removeValue(forKey: site)
            }
        }
        return settings
    }

    /// Runs `body` on a pool connection; refusals and failures become answers.
    private func run(on loop: any EventLoop, _ body: @escaping @Sendable (PostgresConnection) throws -> ChatReply) -> EventLoopFuture<ChatReply> {
        self.pool.withConnection(on: loop) { connection in
            do {
                return try body(connection)
            } catch let error as PostgresError where error.kind == .statement {
                return Self.reply(for: error)
            }
        }.flatMapErrorThrowing { _ in
            .error(.serviceUnavailable, "PostgreSQL is unavailable; retry")
        }
    }

    static func reply(for error: PostgresError) -> ChatReply {
        if let status = error.chatStatus {
            var headers: [(String, String)] = []
            if status == 429, let seconds = error.detail, Int(seconds) != nil { headers.append(("Retry-After", seconds)) }
            if status == 401 { headers.append(("WWW-Authenticate", "Bearer")) }
            return .error(HTTPResponseStatus(statusCode: status), error.message, headers: headers)
        }
        if error.sqlState == "23505" { return .error(.conflict, error.message) }
        if error.isInvalidInput { return .error(.badRequest, error.message) }
        return .error(.serviceUnavailable, "the chat could not do that: \(error.message)")
    }

    private static func methodNotAllowed(_ method: HTTPMethod, allowed: String) -> ChatReply {
        .error(.methodNotAllowed, "method \(method) is not allowed here; use \(allowed)", headers: [("Allow", allowed + ", OPTIONS")])
    }

    private static func now() -> Int64 { Int64(Date().timeIntervalSince1970) }

    private static func uptime() -> Double { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }
}
