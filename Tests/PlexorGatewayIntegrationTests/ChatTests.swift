import Foundation
import NIOHTTP1
import PlexorAccess
import PlexorGateway
import PlexorPostgres
import PlexorTestSupport
import PlexorTransport
import Testing

/// Chat rooms through real gateways and a real PostgreSQL: sessions,
/// posting, history, rate limits, moderation, room presence, private tags.
@Suite struct ChatTests {
    /// A site of its own for each test, made with SQL as a script would.
    struct Site {
        var name: String
        var secret: String
        let owner: PostgresConnection

        init(_ database: String? = nil, settings: String? = nil) throws {
            self.owner = try PostgresConnection(try database ?? TestDatabase.connectionString)
            self.name = uniqueTag("site")
            self.secret = try self.owner.query("SELECT plexor.chat_site_add($1, '{https://example.com}')", [self.name]) { $0.string(0, 0)! }
            if let settings { try self.owner.execute("SELECT plexor.chat_site_set($1, $2)", [self.name, settings]) }
        }

        /// A token the site's backend signs for one of its users.
        func token(sub: String, name: String, mod: Bool = false, expiresIn: Int64 = 300, secret: String? = nil,
                   header: String = #"{"alg":"HS256","typ":"JWT"}"#) -> String {
            let exp = Int64(Date().timeIntervalSince1970) + expiresIn
            return SiteToken.sign(header: header, claims: #"{"sub":"\#(sub)","name":"\#(name)","mod":\#(mod),"exp":\#(exp)}"#,
                                  secret: Array((secret ?? self.secret).utf8))
        }
    }

    /// One person's HTTP client.
    struct Chatter {
        var port: Int
        var session: String?
        var key: String?
        var address: String?
        /// Sent as `X-Forwarded-For`, as a proxy would.
        var forwardedFor: String?

        func request(_ method: HTTPMethod, _ uri: String, body: String? = nil, bearer: String? = nil) async throws -> (status: Int, json: [String: Any], headers: HTTPHeaders) {
            let client = try await TestHTTPClient.connect(port: self.port, localAddress: self.address)
            defer { Task { await client.close() } }
            let token = bearer ?? self.session
            let headers = (token.map { [("Authorization", "Bearer \($0)")] } ?? []) + (self.forwardedFor.map { [("X-Forwarded-For", $0)] } ?? [])
            let response = try await client.request(method, uri, headers: headers, body: body)
            let json = (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any] ?? [:]
            return (Int(response.status.code), json, response.headers)
        }

        func post(_ room: String, _ text: String) async throws -> (status: Int, json: [String: Any], headers: HTTPHeaders) {
            try await self.request(.POST, "/chat/\(room)/messages", body: try jsonString(["text": text]))
        }

        /// The texts of a history page, oldest first (nil text: a deleted message).
        func history(_ room: String, _ query: String = "") async throws -> (texts: [String?], before: Int64?) {
            let answer = try await self.request(.GET, "/chat/\(room)/history" + query)
            guard answer.status == 200 else { throw TestFailure("history: \(answer.status) \(answer.json)") }
            let messages = answer.json["messages"] as! [[String: Any]]
            let texts = messages.map { (($0["data"] as! [String: Any])["text"] as? String) }
            return (texts, (answer.json["before"] as? NSNumber)?.int64Value)
        }
    }

    static func guest(_ port: Int, _ site: String, _ name: String, address: String? = nil, forwardedFor: String? = nil) async throws -> Chatter {
        var chatter = Chatter(port: port, address: address, forwardedFor: forwardedFor)
        let answer = try await chatter.request(.POST, "/chat/session", body: try jsonString(["site": site, "guest": name]))
        guard answer.status == 201 else { throw TestFailure("guest session: \(answer.status) \(answer.json)") }
        chatter.session = answer.json["session"] as? String
        chatter.key = (answer.json["user"] as! [String: Any])["key"] as? String
        return chatter
    }

    static func member(_ port: Int, _ site: Site, sub: String, name: String, mod: Bool = false) async throws -> Chatter {
        var chatter = Chatter(port: port)
        let answer = try await chatter.request(.POST, "/chat/session",
                                               body: try jsonString(["site": site.name, "token": site.token(sub: sub, name: name, mod: mod)]))
        guard answer.status == 201 else { throw TestFailure("member session: \(answer.status) \(answer.json)") }
        chatter.session = answer.json["session"] as? String
        chatter.key = (answer.json["user"] as! [String: Any])["key"] as? String
        return chatter
    }

    @Test func guestAndSiteVerifiedSessionsAndTheTokensThatAreRefused() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let site = try Site()
        let other = try Site()
        let port = gateway.localPort
        let member = try await Self.member(port, site, sub: "u-1", name: "Maria", mod: true)
        let posted = try await member.post(site.name, "hi")
        let user = (posted.json["data"] as! [String: Any])["user"] as! [String: Any]
        #expect(user["name"] as? String == "Maria")
        #expect(user["verified"] as? Bool == true)
        #expect(user["mod"] as? Bool == true)

        let anonymous = Chatter(port: port)
        let refused: [(String, String)] = [
            (site.token(sub: "u-2", name: "Eve", secret: other.secret), "signature"),  // another site's secret
            (site.token(sub: "u-2", name: "Eve", expiresIn: -5), "expired"),
            (site.token(sub: "u-2", name: "Eve", expiresIn: 3600), "minutes ahead"),
            (site.token(sub: "u-2", name: "Eve", header: #"{"alg":"none"}"#), "HS256"),
            (site.token(sub: "u-2", name: "Eve", header: #"{"alg":"HS512"}"#), "HS256"),
            ("not.a.jwt", "malformed"),
        ]
        for (token, reason) in refused {
            let answer = try await anonymous.request(.POST, "/chat/session", body: try jsonString(["site": site.name, "token": token]))
            #expect(answer.status == 401, "\(reason)")
            #expect((answer.json["error"] as? String)?.contains(reason) == true, "\(answer.json)")
        }
        // Site A's session cannot post in site B's room.
        #expect(try await member.post(other.name, "hi").status == 401)
        // A verified member's name is not available to guests, whatever its case.
        let taken = try await anonymous.request(.POST, "/chat/session", body: try jsonString(["site": site.name, "guest": " maria "]))
        #expect(taken.status == 409)
        for bad in ["x", String(repeating: "y", count: 33), "a\u{7}b"] {
            #expect(try await anonymous.request(.POST, "/chat/session", body: try jsonString(["site": site.name, "guest": bad])).status == 400)
        }
        #expect(try await anonymous.request(.POST, "/chat/session", body: try jsonString(["site": "no-such-site", "guest": "Ann"])).status == 404)
        #expect(try await anonymous.request(.POST, "/chat/session", body: "{").status == 400)
        #expect(try await anonymous.request(.GET, "/chat/session").status == 405)
        let guest = try await Self.guest(port, site.name, "Ann")
        let guestUser = (try await guest.post(site.name, "hello").json["data"] as! [String: Any])["user"] as! [String: Any]
        #expect(guestUser["verified"] as? Bool == false)
        // A session is signed: changing a byte of it makes it worthless.
        var forged = guest
        forged.session = String(guest.session!.dropLast()) + (guest.session!.hasSuffix("A") ? "B" : "A")
        #expect(try await forged.post(site.name, "forged").status == 401)
    }

    @Test func postingValidatesTheTextAndStoresItAsAPlexorMessage() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let site = try Site()
        let ann = try await Self.guest(gateway.localPort, site.name, "Ann")
        let room = site.name + "/support"
        let posted = try await ann.post(room, "  <script>alert(1)</script>\r\nsecond line  ")
        #expect(posted.status == 201)
        let data = posted.json["data"] as! [String: Any]
        #expect(data["type"] as? String == "message")
        #expect(data["text"] as? String == "<script>alert(1)</script>\nsecond line")
        // An ordinary message on the room's tag: any Plexor client follows it.
        let seq = (posted.json["seq"] as! NSNumber).int64Value
        let answer = try Answer(await TestHTTPClient.get(port: gateway.localPort, "/poll?tags=chat:\(room)@\(seq - 1)&timeout=0"))
        #expect(answer.messages.count == 1)
        #expect((answer.messages[0].data as! [String: Any])["id"] as? NSNumber == data["id"] as? NSNumber)
        for bad in ["", "   ", String(repeating: "x", count: 2001), "bell\u{7}", "rtl\u{202E}override"] {
            let refused = try await ann.post(room, bad)
            #expect(refused.status == 400, "\(bad.debugDescription)")
        }
        #expect(try await ann.request(.POST, "/chat/\(room)/messages", body: #"{"txt":"x"}"#).status == 400)
        #expect(try await ann.request(.POST, "/chat/\(room)/messages", body: "[1]").status == 400)
        #expect(try await Chatter(port: gateway.localPort).post(room, "no session").status == 401)
        #expect(try await ann.post("Bad_Room", "x").status == 404)
        #expect(try await ann.post(site.name + "/a/b", "x").status == 404)
        // Rooms of a site that does not exist.
        #expect(try await ann.post("nosuchsite", "x").status == 401)
    }

    @Test func historyPagesBackwardsAndLeavesDeletedMessagesOut() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let site = try Site(settings: #"{"person_rate":600}"#)
        let ann = try await Self.member(gateway.localPort, site, sub: "ann", name: "Ann")
        var ids: [Int64] = []
        for index in 1...7 {
            let posted = try await ann.post(site.name, "m\(index)")
            ids.append(((posted.json["data"] as! [String: Any])["id"] as! NSNumber).int64Value)
        }
        // A system message from SQL is history too.
        try site.owner.execute("INSERT INTO plexor.messages (tags, data) VALUES ($1, '{\"type\":\"system\",\"text\":\"welcome\"}')",
                               ["{chat:\(site.name)}"])
        #expect(try await ann.request(.POST, "/chat/\(site.name)/moderation", body: #"{"action":"delete","id":\#(ids[5])}"#).status == 200)
        let reader = Chatter(port: gateway.localPort)
        let newest = try await reader.history(site.name, "?limit=3")
        #expect(newest.texts == ["m5", "m7", "welcome"])
        let older = try await reader.history(site.name, "?limit=3&before=\(newest.before!)")
        #expect(older.texts == ["m2", "m3", "m4"])
        let oldest = try await reader.history(site.name, "?limit=3&before=\(older.before!)")
        #expect(oldest.texts == ["m1"])
        #expect(oldest.before == nil)
        // The author sees that it was deleted, the text gone.
        let authorView = try await ann.request(.GET, "/chat/\(site.name)/history?limit=4")
        let deleted = (authorView.json["messages"] as! [[String: Any]]).map { $0["data"] as! [String: Any] }.filter { $0["deleted"] as? Bool == true }
        #expect(deleted.count == 1)
        #expect(deleted.first?["text"] == nil)
        for bad in ["?limit=0", "?limit=201", "?before=x", "?before=0", "?page=2"] {
            #expect(try await reader.request(.GET, "/chat/\(site.name)/history\(bad)").status == 400, "\(bad)")
        }
        #expect(try await reader.request(.POST, "/chat/\(site.name)/history").status == 405)
    }

    @Test func aFloodIsRefusedWith429WithoutSlowingAnyoneElse() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        // Guests: one post a minute, bursts of 3 (the least a bucket holds), so no refill
        // comes within the test however slowly a loaded machine runs it.
        let site = try Site(settings: #"{"guest_rate":1}"#)
        let flooder = try await Self.guest(gateway.localPort, site.name, "Flood", address: "127.0.0.2")
        var statuses: [Int] = []
        var retryAfter: String?
        for index in 0..<20 {
            let answer = try await flooder.post(site.name, "spam \(index)")
            statuses.append(answer.status)
            if answer.status == 429 { retryAfter = answer.headers.first(name: "Retry-After") }
        }
        #expect(statuses.prefix(3) == [201, 201, 201])
        #expect(statuses.dropFirst(3).allSatisfy { $0 == 429 })
        #expect(retryAfter.flatMap(Int.init).map { (1...60).contains($0) } == true)
        // Another person on another address posts at once.
        let calm = try await Self.guest(gateway.localPort, site.name, "Calm", address: "127.0.0.3")
        #expect(try await calm.post(site.name, "hello").status == 201)
        // Nothing refused reached the room.
        #expect(try await calm.history(site.name).texts == ["spam 0", "spam 1", "spam 2", "hello"])
    }

    @Test func guestsOnOneAddressShareItsLimit() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        // Three posts at once per address, plenty per guest.
        let site = try Site(settings: #"{"ip_rate":6,"guest_rate":600}"#)
        var statuses: [Int] = []
        for index in 0..<4 {
            let guest = try await Self.guest(gateway.localPort, site.name, "Sharer\(index)", address: "127.0.0.4")
            statuses.append(try await guest.post(site.name, "x").status)
        }
        #expect(statuses == [201, 201, 201, 429])
        let elsewhere = try await Self.guest(gateway.localPort, site.name, "Elsewhere", address: "127.0.0.6")
        #expect(try await elsewhere.post(site.name, "x").status == 201)
    }

    @Test func behindATrustedProxyTheForwardedAddressIsTheOneLimited() async throws {
        let gateway = try startGateway { $0.trustedProxies = try! TrustedProxies(parsing: "127.0.0.5") }
        defer { gateway.shutdown() }
        let site = try Site(settings: #"{"ip_rate":6,"guest_rate":600}"#)
        func statuses(address: String, forwardedFor: (Int) -> String) async throws -> [Int] {
            var statuses: [Int] = []
            for index in 0..<4 {
                let guest = try await Self.guest(gateway.localPort, site.name, "Guest\(address)x\(index)", address: address,
                                                 forwardedFor: forwardedFor(index))
                statuses.append(try await guest.post(site.name, "x").status)
            }
            return statuses
        }
        // Through the proxy, two people behind it are limited apart: each gets three posts at once.
        #expect(try await statuses(address: "127.0.0.5", forwardedFor: { "6.6.6.6, 198.51.100.\($0 % 2 + 1)" }) == [201, 201, 201, 201])
        #expect(try await statuses(address: "127.0.0.5", forwardedFor: { _ in "198.51.100.3" }) == [201, 201, 201, 429])
        // Anyone else's X-Forwarded-For is ignored: a new claim each time does not escape the limit.
        #expect(try await statuses(address: "127.0.0.7", forwardedFor: { "198.51.100.\(10 + $0)" }) == [201, 201, 201, 429])
    }

    @Test func slowModeBansAndGuestsOffAreEnforcedAndRecorded() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let site = try Site(settings: #"{"guest_rate":600}"#)  // slow mode, not the rate limit, is under test
        let port = gateway.localPort
        let moderator = try await Self.member(port, site, sub: "mod", name: "Mod", mod: true)
        let ann = try await Self.guest(port, site.name, "Ann", address: "127.0.0.5")
        // Only the site and its moderators moderate.
        #expect(try await ann.request(.POST, "/chat/\(site.name)/moderation", body: #"{"action":"slow_mode","seconds":60}"#).status == 403)
        #expect(try await moderator.request(.POST, "/chat/\(site.name)/moderation", body: #"{"action":"slow_mode","seconds":60}"#).status == 200)
        #expect(try await ann.post(site.name, "one").status == 201)
        let second = try await ann.post(site.name, "two")
        #expect(second.status == 429)
        #expect(second.headers.first(name: "Retry-After").flatMap(Int.init).map { (55...60).contains($0) } == true)
        #expect(try await moderator.post(site.name, "moderators are not slowed").status == 201)
        #expect(try await moderator.post(site.name, "at all").status == 201)
        // Another room of the site is not in slow mode.
        #expect(try await ann.post(site.name + "/other", "elsewhere").status == 201)

        // The site's backend bans Ann, by address too: her session and new guest sessions from her address are refused.
        let backend = Chatter(port: port, session: nil)
        let ban = try await backend.request(.POST, "/chat/\(site.name)/moderation",
                                            body: #"{"action":"ban","user":"\#(ann.key!)","seconds":600,"address":true,"reason":"spam"}"#,
                                            bearer: site.secret)
        #expect(ban.status == 200)
        let banned = try await ann.post(site.name + "/other", "still here?")
        #expect(banned.status == 403)
        #expect((banned.json["error"] as? String)?.contains("banned") == true)
        let again = try await backend.request(.POST, "/chat/session", body: try jsonString(["site": site.name, "guest": "NotAnn"]))
        #expect(again.status == 201)  // another address
        let sameAddress = Chatter(port: port, address: "127.0.0.5")
        #expect(try await sameAddress.request(.POST, "/chat/session", body: try jsonString(["site": site.name, "guest": "NotAnn"])).status == 403)
        #expect(try await backend.request(.POST, "/chat/\(site.name)/moderation", body: #"{"action":"unban","user":"\#(ann.key!)"}"#,
                                          bearer: "wrong secret").status == 401)
        #expect(try await moderator.request(.POST, "/chat/\(site.name)/moderation", body: #"{"action":"unban","user":"\#(ann.key!)"}"#).status == 200)
        #expect(try await ann.post(site.name + "/other", "back").status == 201)

        // Guests off: guests can neither post nor start sessions; members can.
        try site.owner.execute("SELECT plexor.chat_guests($1, false)", [site.name])
        #expect(try await ann.post(site.name + "/other", "guest?").status == 403)
        #expect(try await sameAddress.request(.POST, "/chat/session", body: try jsonString(["site": site.name, "guest": "Bob"])).status == 403)
        #expect(try await moderator.post(site.name + "/other", "members still talk").status == 201)

        for bad in [#"{"action":"explode"}"#, #"{"action":"ban","user":"x","seconds":5}"#, #"{"action":"ban","user":"1"}"#,
                    #"{"action":"slow_mode","seconds":99999}"#, #"{"action":"delete"}"#] {
            #expect(try await moderator.request(.POST, "/chat/\(site.name)/moderation", body: bad).status == 400, "\(bad)")
        }
        #expect(try await moderator.request(.POST, "/chat/\(site.name)/moderation", body: #"{"action":"delete","id":999999999}"#).status == 404)
        // Every action is recorded: who, what, when.
        let log = try await moderator.request(.GET, "/chat/\(site.name)/moderation")
        let actions = (log.json["actions"] as! [[String: Any]]).map { "\($0["actor"]!) \($0["action"]!)" }
        let sql = "sql:" + (try site.owner.query("SELECT session_user::text") { $0.string(0, 0)! })
        #expect(actions == ["\(sql) guests", "person:\(moderator.key!) unban", "site ban", "person:\(moderator.key!) slow_mode", "\(sql) settings"])
        #expect(try await ann.request(.GET, "/chat/\(site.name)/moderation").status == 403)
    }

    @Test func aDeletionReachesEveryClientOnEveryGateway() async throws {
        let first = try startGateway()
        let second = try startGateway()
        defer { [first, second].forEach { $0.shutdown() } }
        let site = try Site()
        let author = try await Self.guest(first.localPort, site.name, "Ann")
        let moderator = try await Self.member(second.localPort, site, sub: "m", name: "Mod", mod: true)
        let posted = try await author.post(site.name, "regrettable")
        let seq = (posted.json["seq"] as! NSNumber).int64Value
        let id = ((posted.json["data"] as! [String: Any])["id"] as! NSNumber).int64Value
        // A reader on the other gateway waits on the room's tag after the message.
        let roomTag = "chat:" + site.name
        async let next = TestHTTPClient.get(port: second.localPort, "/poll?tags=\(roomTag)@\(seq)&timeout=20")
        try await waitUntil("the reader waits") { second.parked == 1 }
        #expect(try await moderator.request(.POST, "/chat/\(site.name)/moderation", body: #"{"action":"delete","id":\#(id)}"#).status == 200)
        let answer = try Answer(await next)
        #expect(answer.messages.map(\.dataJSON) == [#"{"id":\#(id),"type":"delete"}"#])
        // The log no longer has the text (a reader catching up from 0 sees the tombstone).
        let replay = try Answer(await TestHTTPClient.get(port: first.localPort, "/poll?tags=chat:\(site.name)@0&timeout=0"))
        #expect(replay.messages.first.map { ($0.data as! [String: Any])["text"] == nil } == true)
        // The moderation record keeps it for the site.
        let log = try await moderator.request(.GET, "/chat/\(site.name)/moderation")
        #expect(((log.json["actions"] as! [[String: Any]])[0]["detail"] as! [String: Any])["text"] as? String == "regrettable")
        // Authors may delete their own messages, not others'.
        let other = try await moderator.post(site.name, "mine")
        let otherID = ((other.json["data"] as! [String: Any])["id"] as! NSNumber).int64Value
        #expect(try await author.request(.POST, "/chat/\(site.name)/moderation", body: #"{"action":"delete","id":\#(otherID)}"#).status == 403)
    }

    @Test func clearingARoomEmptiesItsHistory() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let site = try Site()
        let ann = try await Self.guest(gateway.localPort, site.name, "Ann")
        #expect(try await ann.post(site.name, "before").status == 201)
        let backend = Chatter(port: gateway.localPort)
        #expect(try await backend.request(.POST, "/chat/\(site.name)/moderation", body: #"{"action":"clear"}"#, bearer: site.secret).status == 200)
        #expect(try await backend.history(site.name).texts.isEmpty)
        #expect(try await ann.post(site.name, "after").status == 201)
        #expect(try await backend.history(site.name).texts == ["after"])
    }

    @Test func roomPresenceIsOneEntryPerPersonWithJoinAndLeaveOnTheRoomsTag() async throws {
        let database = try TestDatabase.makeFreshDatabase()
        let gateways = try (0..<2).map { _ in
            try startGateway(database) {
                $0.presence.enabled = true
                $0.presence.interval = .milliseconds(250)
                $0.presence.graceSeconds = 1
                $0.presence.heartbeatTimeoutSeconds = 2
            }
        }
        defer { gateways.forEach { $0.shutdown() } }
        let site = try Site(database)
        let ann = try await Self.guest(gateways[0].localPort, site.name, "Ann")
        let bob = try await Self.guest(gateways[0].localPort, site.name, "Bob")
        let room = site.name + "/lobby"
        let presenceTag = "chat-presence:\(room):\(ann.key!)"
        // Someone else's presence tag, or none: refused.
        #expect(try await bob.request(.GET, "/poll?tags=\(presenceTag)&timeout=0").status == 403)
        #expect(try await Chatter(port: gateways[0].localPort).request(.GET, "/chat/\(room)/presence").status == 401)
        // Ann in two tabs, one on each gateway.
        var tabs: [RawSocket?] = try gateways.map { gateway in
            let socket = try RawSocket(port: gateway.localPort)
            socket.sendNow(Array("GET /poll?tags=\(presenceTag)&timeout=60 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(ann.session!)\r\n\r\n".utf8))
            return socket
        }
        func present() async throws -> [String] {
            let answer = try await bob.request(.GET, "/chat/\(room)/presence")
            return (answer.json["people"] as! [[String: Any]]).map { $0["name"] as! String }
        }
        try await waitUntil("Ann is present") { try await present() == ["Ann"] }
        #expect(tabs.count == 2)
        tabs[0] = nil
        // One tab left: still one entry, and no leave.
        try await waitUntil("the first tab's gateway reported it gone") { try await metric(port: gateways[0].localPort, "plexor_presence_tracked_tags") == 0 }
        #expect(try await present() == ["Ann"])
        tabs[1] = nil
        try await waitUntil("Ann left after the grace period") { try await present().isEmpty }
        let events = try Answer(await TestHTTPClient.get(port: gateways[1].localPort, "/poll?tags=chat:\(room)@0&timeout=0"))
        #expect(events.messages.map { "\(($0.data as! [String: Any])["type"]!) \((($0.data as! [String: Any])["user"] as! [String: Any])["name"]!)" }
                == ["join Ann", "leave Ann"])
    }

    @Test func aGrantMadeWithSQLOpensAPrivateTag() async throws {
        let gateway = try startGateway { $0.privatePrefixes = ["vip:"] }
        defer { gateway.shutdown() }
        let tag = "vip:" + uniqueTag("lounge")
        let owner = try PostgresConnection(try TestDatabase.connectionString)
        let grant = try owner.query("SELECT plexor.grant_access($1, 60)", ["{\(tag)}"]) { $0.string(0, 0)! }
        let client = Chatter(port: gateway.localPort)
        #expect(try await client.request(.GET, "/poll?tags=\(tag)&timeout=0").status == 403)
        let answer = try await client.request(.GET, "/poll?tags=\(tag)&timeout=0", bearer: grant)
        #expect(answer.status == 200)
        #expect(try await client.request(.GET, "/poll?tags=\(tag)x&timeout=0", bearer: grant).status == 403)
        let prefixGrant = try owner.query("SELECT plexor.grant_access('{vip:*}', 60)") { $0.string(0, 0)! }
        #expect(try await client.request(.GET, "/poll?tags=\(tag)x&timeout=0", bearer: prefixGrant).status == 200)
        // A private room's history is for those who may follow it.
        let site = try Site()
        let roomTag = "chat:" + site.name
        let privateRoom = try startGateway { $0.privatePrefixes = [roomTag] }
        defer { privateRoom.shutdown() }
        let ann = try await Self.guest(privateRoom.localPort, site.name, "Ann")
        #expect(try await Chatter(port: privateRoom.localPort).request(.GET, "/chat/\(site.name)/history").status == 403)
        #expect(try await ann.request(.GET, "/chat/\(site.name)/history").status == 200)
        #expect(try await ann.request(.GET, "/poll?tags=chat:\(site.name)&timeout=0").status == 200)
    }
}

extension ChatTests {
    /// The README's ten-line examples, run as a site's backend would run them.
    @Test(arguments: [["php", "examples/site-token.php"], ["python3", "examples/site_token.py"]])
    func theREADMEsTokenExamplesSignTokensTheGatewayAccepts(_ command: [String]) async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let example = try String(contentsOf: root.appendingPathComponent(command[1]), encoding: .utf8)
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(readme.contains(example), "the README shows \(command[1]) as it is")
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let site = try Site()
        let secret = site.secret
        let token = try await offTheTestThreads {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [command[0], root.appendingPathComponent(command[1]).path, "user-7", "Zoë"]
            process.environment = ProcessInfo.processInfo.environment.merging(["PLEXOR_SITE_SECRET": secret]) { $1 }
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let text = output.readToEnd()
            process.waitUntilExit()
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let answer = try await Chatter(port: gateway.localPort).request(.POST, "/chat/session",
                                                                         body: try jsonString(["site": site.name, "token": token]))
        #expect(answer.status == 201, "\(answer.json)")
        #expect((answer.json["user"] as? [String: Any])?["name"] as? String == "Zoë")
    }
}

func jsonString(_ object: [String: String]) throws -> String {
    String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
}
