import PlexorCore
import PlexorTestSupport
import Testing
@testable import PlexorPostgres

/// What the roles `plexor migrate` makes may do, against a real PostgreSQL.
@Suite struct PrivilegeTests {
    /// SQLSTATE 42501: the statement was refused for want of a privilege.
    static let insufficientPrivilege = "42501"

    func expectRefused(_ connection: PostgresConnection, _ sql: String, _ parameters: [String?] = [],
                       sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try connection.execute(sql, parameters)
            Issue.record("\(sql) was allowed", sourceLocation: sourceLocation)
        } catch let error as PostgresError {
            #expect(error.sqlState == Self.insufficientPrivilege, "\(sql): \(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(sql): \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func aPublisherCanPublishAndNothingElse() throws {
        let publisher = try PostgresConnection(TestDatabase.connectionString(asRole: "plexor_test_publisher", granted: ["plexor_publisher"]))
        let tag = uniqueTag(), other = uniqueTag()
        let id = try publisher.query("INSERT INTO plexor.messages (tags, data) VALUES ($1, '1') RETURNING id", ["{\(tag)}"]) { $0.int64(0, 0) }
        #expect(id != nil)
        try publisher.execute("INSERT INTO plexor.messages (tags, data, only_for) VALUES ($1, '2', NULL), ($2, '3', $3)",
                              ["{\(tag),\(other)}", "{\(tag)}", "{\(other)}"])
        let published = try publisher.query("SELECT plexor.publish($1, '4')", ["{\(tag)}"]) { $0.int64(0, 0) }
        #expect(published != nil)

        let owner = try PostgresConnection(TestDatabase.connectionString)
        let seqs = try owner.query("SELECT seq FROM plexor.log WHERE tag = $1 ORDER BY seq", [tag]) { rows in
            (0..<rows.count).map { rows.int64($0, 0)! }
        }
        #expect(seqs == [1, 2, 3, 4])

        self.expectRefused(publisher, "UPDATE plexor.tags SET last_seq = 9223372036854775807 WHERE tag = $1", [tag])
        self.expectRefused(publisher, "INSERT INTO plexor.tags (tag, last_seq) VALUES ($1, 5)", [uniqueTag()])
        self.expectRefused(publisher, "DELETE FROM plexor.tags WHERE tag = $1", [tag])
        self.expectRefused(publisher, "INSERT INTO plexor.log (tag, seq, message_id) VALUES ($1, 5, $2)", [tag, String(id!)])
        self.expectRefused(publisher, "DELETE FROM plexor.log WHERE tag = $1", [tag])
        self.expectRefused(publisher, "UPDATE plexor.settings SET value = 1")
        self.expectRefused(publisher, "UPDATE plexor.messages SET data = '5' WHERE id = $1", [String(id!)])
        self.expectRefused(publisher, "DELETE FROM plexor.messages WHERE id = $1", [String(id!)])
        self.expectRefused(publisher, "SELECT data FROM plexor.messages WHERE id = $1", [String(id!)])
        self.expectRefused(publisher, "SELECT key FROM plexor.notification_key")
        self.expectRefused(publisher, "SELECT plexor.trim(NULL, 0)")
        self.expectRefused(publisher, "SELECT * FROM plexor.catch_up($1, '{0}', 10)", ["{\(tag)}"])
    }

    @Test func aRoleWithNoGrantsCannotPublishOrReadTheKey() throws {
        let stranger = try PostgresConnection(TestDatabase.connectionString(asRole: "plexor_test_stranger", granted: []))
        self.expectRefused(stranger, "INSERT INTO plexor.messages (tags, data) VALUES ($1, '1')", ["{\(uniqueTag())}"])
        self.expectRefused(stranger, "SELECT plexor.publish($1, '1')", ["{\(uniqueTag())}"])
        self.expectRefused(stranger, "SELECT key FROM plexor.notification_key")
    }

    @Test func aGatewayRoleRunsTheChatAndAPublisherOnlyHandsOutGrants() throws {
        let owner = try PostgresConnection(TestDatabase.connectionString)
        let site = uniqueTag("site")
        _ = try owner.chatSiteAdd(name: site, origins: [])
        let gateway = try PostgresConnection(TestDatabase.connectionString(asRole: "plexor_test_gateway", granted: ["plexor_gateway"]))
        #expect(try gateway.chatSiteSettings(site: site) != nil)
        let guest = try gateway.chatGuest(site: site, name: "Ann", address: "10.1.2.3")
        let posted = try gateway.chatPost(room: site, person: guest.id, address: nil, text: "hi")
        #expect(try gateway.chatHistory(room: site, before: nil, limit: 10, viewer: nil) == [posted])
        #expect(try gateway.chatPresence(room: site).isEmpty)
        _ = try gateway.chatModerate(.clear, [site], actor: "site")
        #expect(try gateway.chatModerationLog(site: site, limit: 10, actor: "site").count == 1)
        // The gateway reaches the chat's tables only through its functions.
        self.expectRefused(gateway, "SELECT secret FROM plexor.chat_sites")
        self.expectRefused(gateway, "UPDATE plexor.chat_people SET moderator = true")
        self.expectRefused(gateway, "SELECT plexor.chat_site_add('x')")

        let publisher = try PostgresConnection(TestDatabase.connectionString(asRole: "plexor_test_publisher", granted: ["plexor_publisher"]))
        #expect(try publisher.query("SELECT plexor.grant_access('{a}', 60)") { $0.string(0, 0)! }.hasPrefix("g1."))
        self.expectRefused(publisher, "SELECT plexor.chat_post($1, $2, NULL, 'x')", [site, String(guest.id)])
        self.expectRefused(publisher, "SELECT plexor.token_mac('x')")
        self.expectRefused(publisher, "SELECT plexor.chat_delete($1, 1)", [site])
    }

    @Test func aGatewayRoleCanReadTheKeyAndCatchUpButNotWriteTheLog() throws {
        let gateway = try PostgresConnection(TestDatabase.connectionString(asRole: "plexor_test_gateway", granted: ["plexor_gateway"]))
        _ = try gateway.notificationKey()
        let tag = Tag(trusted: uniqueTag())
        let published = try gateway.publish([PublishRequest(tags: [tag], data: "1", onlyFor: nil)])
        #expect(published.first?.seqs == [TagSeq(tag: tag, seq: 1)])
        let windows = try gateway.catchUp([TagCursor(tag: tag, cursor: 0)], maximumPerTag: 10)
        #expect(windows.first?.entries.map(\.seq) == [1])
        #expect(try gateway.fetchMessage(id: published[0].id)?.seq(for: tag) == 1)
        _ = try gateway.trim(RetentionPolicy(maximumAgeSeconds: nil, maximumPerTag: 1_000_000))
        self.expectRefused(gateway, "UPDATE plexor.tags SET last_seq = 0 WHERE tag = $1", [tag.name])
        self.expectRefused(gateway, "DELETE FROM plexor.log WHERE tag = $1", [tag.name])
        self.expectRefused(gateway, "UPDATE plexor.notification_key SET key = key")
    }

    @Test func theTriggerSignsWhatTheGatewayVerifies() throws {
        let owner = try PostgresConnection(TestDatabase.connectionString)
        let signature = NotificationSignature(key: try owner.notificationKey())!
        let body = Array("m chat 1 2026-11-26T10:00:00.123456Z 1 chat 1 0\n{\"é\":1}".utf8)
        // The database's own HMAC of the same bytes, with the stored padded keys.
        let signed = try owner.query("""
            SELECT encode(sha256(outer_pad || sha256(inner_pad || convert_to($1, 'UTF8'))), 'hex') || ' ' || $1
            FROM plexor.notification_key
            """, [String(decoding: body, as: UTF8.self)]) { $0.string(0, 0)! }
        #expect(Array(signed.utf8) == signature.sign(body))
        let verified = Array(signed.utf8).withUnsafeBytes { signature.verify($0).map(Array.init) }
        #expect(verified == body)
    }
}
