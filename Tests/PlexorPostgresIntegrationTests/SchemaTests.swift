import Foundation
import NIOCore
import PlexorCore
import PlexorTestSupport
import Testing
@testable import PlexorPostgres

/// The SQL publish API and the trigger, against a real PostgreSQL.
@Suite struct SchemaTests {
    let connection: PostgresConnection

    init() throws {
        self.connection = try PostgresConnection(TestDatabase.connectionString)
    }

    func count(_ sql: String, _ parameters: [String?] = []) throws -> Int64 {
        try self.connection.query(sql, parameters) { $0.int64(0, 0) ?? 0 }
    }

    func seqs(of tag: String, _ connection: PostgresConnection? = nil) throws -> [Int64] {
        try (connection ?? self.connection).query("SELECT seq FROM plexor.log WHERE tag = $1 ORDER BY seq", [tag]) { rows in
            (0..<rows.count).map { rows.int64($0, 0)! }
        }
    }

    @Test func migratingAgainChangesNothing() throws {
        #expect(try Migrator.migrate(self.connection).isEmpty)
    }

    @Test func concurrentMigrationsOfAFreshDatabaseAllSucceed() throws {
        let database = "plexor_migrate_\(UInt32.random(in: 0...UInt32.max))"
        try self.connection.execute("CREATE DATABASE \(database)")
        let base = try TestDatabase.connectionString
        let target = TestDatabase.connectionString(base, database: database)
        let results = NIOLockedResults()
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            results.append(Result { try Migrator.migrate(PostgresConnection(target)) })
        }
        let applied = try results.values.map { try $0.get() }
        #expect(applied.filter { !$0.isEmpty }.count == 1)
        let recorded = try PostgresConnection(target).query("SELECT count(*) FROM plexor.schema_migrations") { $0.int64(0, 0) }
        #expect(recorded == Int64(try Migrator.bundledMigrations().count))
    }

    @Test func givesEachTagGaplessSeqsAcrossRowsAndStatements() throws {
        let a = uniqueTag(), b = uniqueTag()
        try self.connection.execute("INSERT INTO plexor.messages (tags, data) VALUES ($1, '1'), ($2, '2'), ($3, '3')",
                                    ["{\(a),\(b)}", "{\(b)}", "{\(a)}"])
        _ = try self.connection.query("SELECT plexor.publish($1, '4')", ["{\(a)}"]) { _ in () }
        #expect(try self.seqs(of: a) == [1, 2, 3])
        #expect(try self.seqs(of: b) == [1, 2])
    }

    @Test func rollbackStoresNothingAndLeavesNoHole() throws {
        let tag = uniqueTag()
        try self.connection.execute("BEGIN")
        try self.connection.execute("INSERT INTO plexor.messages (tags, data) VALUES ($1, '1')", ["{\(tag)}"])
        try self.connection.execute("ROLLBACK")
        try self.connection.execute("INSERT INTO plexor.messages (tags, data) VALUES ($1, '2')", ["{\(tag)}"])
        #expect(try self.seqs(of: tag) == [1])
    }

    @Test func concurrentPublishersProduceGaplessSeqsInCommitOrder() throws {
        let tag = uniqueTag()
        let base = try TestDatabase.connectionString
        let failures = NIOLockedResults()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            failures.append(Result {
                let connection = try PostgresConnection(base)
                for index in 0..<100 {
                    try connection.execute("INSERT INTO plexor.messages (tags, data) VALUES ($1, $2)", ["{\(tag)}", "[\(worker),\(index)]"])
                }
                return []
            })
        }
        for result in failures.values { _ = try result.get() }
        #expect(try self.seqs(of: tag) == Array(1...800))
        // Per worker, its own messages' seqs ascend: seq order is commit order.
        let rows = try self.connection.query(
            "SELECT (m.data->>0)::int, (m.data->>1)::int, l.seq FROM plexor.log l JOIN plexor.messages m ON m.id = l.message_id WHERE l.tag = $1 ORDER BY l.seq",
            [tag]) { rows in (0..<rows.count).map { (rows.int64($0, 0)!, rows.int64($0, 1)!) } }
        for worker in 0..<8 {
            #expect(rows.filter { $0.0 == Int64(worker) }.map(\.1) == Array(0..<100).map(Int64.init))
        }
    }

    @Test(arguments: [
        ("('{}', '1', NULL)", "tags must list at least one tag", "23514"),
        ("(NULL, '1', NULL)", "tags must not be NULL", "23502"),
        ("('{a,a}', '1', NULL)", "lists a tag more than once", "23514"),
        ("('{\"a b\"}', '1', NULL)", "has a character outside", "23514"),
        ("('{\"a,b\"}', '1', NULL)", "has a character outside", "23514"),
        ("('{a,\"b c\"}', '1', NULL)", "has a character outside", "23514"),
        ("('{\"\"}', '1', NULL)", "is empty", "23514"),
        ("(ARRAY[NULL]::text[], '1', NULL)", "is NULL", "23514"),
        ("(ARRAY[repeat('x', 129)], '1', NULL)", "longer than 128", "23514"),
        // Lists of several tags are checked tag by tag as well.
        ("(ARRAY['a', NULL], '1', NULL)", "is NULL", "23514"),
        ("('{a,\"b,c\"}', '1', NULL)", "has a character outside", "23514"),
        ("(ARRAY['a', repeat('x', 129)], '1', NULL)", "longer than 128", "23514"),
        ("('{a,b,a}', '1', NULL)", "lists a tag more than once", "23514"),
        ("((SELECT array_agg('t' || i) FROM generate_series(1, 101) i), '1', NULL)", "at most 100", "23514"),
        ("('{{a},{b}}', '1', NULL)", "one-dimensional", "23514"),
        ("('{a}', NULL, NULL)", "data must not be SQL NULL", "23502"),
        ("('{a}', '1', '{}')", "only_for must list at least one tag", "23514"),
        ("('{a}', '1', '{\"x y\"}')", "only_for has an invalid tag", "23514"),
        ("('{a}', '{bad', NULL)", "invalid input syntax for type json", "22P02"),
        ("('{a}', to_json(repeat('x', 300000)), NULL)", "the limit is 262144 bytes", "54000"),
    ])
    func rejectsBadMessagesWithAClearErrorAndStoresNothing(values: String, message: String, sqlState: String) throws {
        // A good row in the same statement must not be stored either.
        let good = uniqueTag()
        let sql = "INSERT INTO plexor.messages (tags, data, only_for) VALUES ('{\(good)}', '0', NULL), \(values)"
        #expect {
            try self.connection.execute(sql)
        } throws: { error in
            guard let error = error as? PostgresError else { return false }
            return error.message.contains(message) && error.sqlState == sqlState
        }
        #expect(try self.count("SELECT count(*) FROM plexor.messages WHERE $1 = ANY (tags)", [good]) == 0)
        #expect(try self.count("SELECT count(*) FROM plexor.tags WHERE tag = $1", [good]) == 0)
    }

    @Test func catchUpReadsHeadsEntriesAndOnlyFor() throws {
        let room = uniqueTag(), admins = uniqueTag(), empty = uniqueTag()
        try self.connection.execute("INSERT INTO plexor.messages (tags, data) VALUES ($1, '\"one\"')", ["{\(room)}"])
        try self.connection.execute("INSERT INTO plexor.messages (tags, data, only_for) VALUES ($1, '\"secret\"', $2)", ["{\(room)}", "{\(admins)}"])
        try self.connection.execute("INSERT INTO plexor.messages (tags, data) VALUES ($1, '\"three\"')", ["{\(room)}"])
        let request = [TagCursor(tag: Tag(trusted: room), cursor: 0), TagCursor(tag: Tag(trusted: empty), cursor: nil)]
        let windows = try self.connection.catchUp(request, maximumPerTag: 100)
        #expect(windows.map(\.lastSeq) == [3, 0])
        #expect(windows[0].entries.map(\.seq) == [1, 2, 3])
        #expect(windows[0].entries.map { String(buffer: $0.data) } == ["\"one\"", "\"secret\"", "\"three\""])
        #expect(windows[0].entries.map { $0.onlyFor?.map(\.name) } == [nil, [admins], nil])
        let asAdmin = try self.connection.catchUp([TagCursor(tag: Tag(trusted: room), cursor: 1), TagCursor(tag: Tag(trusted: admins), cursor: nil)],
                                                  maximumPerTag: 1)
        #expect(asAdmin[0].entries.map { String(buffer: $0.data) } == ["\"secret\""])
    }

    @Test func trimsByCountFromTheFrontOfEachTag() throws {
        let connection = try PostgresConnection(TestDatabase.makeFreshDatabase())
        let tag = uniqueTag(), other = uniqueTag()
        for index in 1...5 {
            try connection.execute("INSERT INTO plexor.messages (tags, data) VALUES ($1, $2)", ["{\(tag)}", String(index)])
        }
        // Shares a message with `tag`: the message must survive while `other` keeps it.
        try connection.execute("INSERT INTO plexor.messages (tags, data) VALUES ($1, '6')", ["{\(tag),\(other)}"])
        for index in 7...8 {
            try connection.execute("INSERT INTO plexor.messages (tags, data) VALUES ($1, $2)", ["{\(tag)}", String(index)])
        }
        _ = try connection.trim(RetentionPolicy(maximumAgeSeconds: nil, maximumPerTag: 2))
        #expect(try seqs(of: tag, connection) == [7, 8])
        #expect(try seqs(of: other, connection) == [1])
        let windows = try connection.catchUp([TagCursor(tag: Tag(trusted: tag), cursor: 3)], maximumPerTag: 10)
        #expect(windows[0].firstSeq == 7)
        #expect(windows[0].lastSeq == 8)
    }

    @Test func trimsByAgeKeepingARangeWithoutHoles() throws {
        let connection = try PostgresConnection(TestDatabase.makeFreshDatabase())
        let tag = uniqueTag()
        for index in 1...3 {
            try connection.execute("INSERT INTO plexor.messages (tags, data) VALUES ($1, $2)", ["{\(tag)}", String(index)])
        }
        // Age the first two (time need not rise with seq: the second is made older than the first).
        try connection.execute("UPDATE plexor.messages m SET time = now() - interval '2 hours' FROM plexor.log l WHERE l.message_id = m.id AND l.tag = $1 AND l.seq = 1", [tag])
        try connection.execute("UPDATE plexor.messages m SET time = now() - interval '3 hours' FROM plexor.log l WHERE l.message_id = m.id AND l.tag = $1 AND l.seq = 2", [tag])
        _ = try connection.trim(RetentionPolicy(maximumAgeSeconds: 3600, maximumPerTag: nil))
        #expect(try seqs(of: tag, connection) == [3])
    }

    @Test func aSitesRoomsKeepTheSitesHistoryLimitsInsteadOfTheGateways() throws {
        let connection = try PostgresConnection(TestDatabase.makeFreshDatabase())
        _ = try connection.chatSiteAdd(name: "keeper", origins: [])
        _ = try connection.chatSiteAdd(name: "short", origins: [])
        _ = try connection.chatSiteSet(name: "short", settings: #"{"keep_messages":2,"keep_days":1}"#)
        let tags = ["chat:keeper", "chat:keeper/help", "chat:short", "chat:nosite", "plain"]
        for tag in tags {
            for index in 1...4 {
                try connection.execute("INSERT INTO plexor.messages (tags, data) VALUES ($1, $2)", ["{\(tag)}", String(index)])
            }
        }
        // Everything is two days old but the last message of each tag.
        try connection.execute("UPDATE plexor.messages m SET time = now() - interval '2 days' FROM plexor.log l WHERE l.message_id = m.id AND l.seq < 4")
        _ = try connection.trim(RetentionPolicy(maximumAgeSeconds: 3600, maximumPerTag: 3))
        // The default for a site: the newest 10,000, whatever their age.
        #expect(try seqs(of: "chat:keeper", connection) == [1, 2, 3, 4])
        #expect(try seqs(of: "chat:keeper/help", connection) == [1, 2, 3, 4])
        // A site's own limits.
        #expect(try seqs(of: "chat:short", connection) == [4])
        // Not a site's room: the gateway's policy.
        #expect(try seqs(of: "chat:nosite", connection) == [4])
        #expect(try seqs(of: "plain", connection) == [4])
    }

    @Test func fetchesAMessageByID() throws {
        let a = uniqueTag(), b = uniqueTag()
        let id = try self.connection.query("SELECT plexor.publish($1, '{\"big\":true}', $2)", ["{\(a),\(b)}", "{\(a)}"]) { $0.int64(0, 0)! }
        let message = try #require(try self.connection.fetchMessage(id: id))
        #expect(Set(message.seqs.map(\.tag.name)) == [a, b])
        #expect(message.onlyFor?.map(\.name) == [a])
        #expect(String(buffer: message.data) == "{\"big\":true}")
        #expect(try self.connection.fetchMessage(id: -1) == nil)
    }

    @Test func batchPublishReturnsIdsAndSeqsInOrder() throws {
        let a = uniqueTag(), b = uniqueTag()
        let published = try self.connection.publish([
            PublishRequest(tags: [Tag(trusted: a), Tag(trusted: b)], data: "1", onlyFor: nil),
            PublishRequest(tags: [Tag(trusted: b)], data: "{\"q\":\"\\\"quoted\\\" {x,y}\"}", onlyFor: [Tag(trusted: a)]),
        ])
        #expect(published.count == 2)
        #expect(published[0].seqs.map(\.seq) == [1, 1])
        #expect(published[1].seqs == [TagSeq(tag: Tag(trusted: b), seq: 2)])
        let stored = try self.connection.fetchMessage(id: published[1].id)
        #expect(stored.map { String(buffer: $0.data) } == "{\"q\":\"\\\"quoted\\\" {x,y}\"}")
    }
}

/// Collects results from concurrent workers.
/// `@unchecked Sendable`: the results are behind `lock`.
final class NIOLockedResults: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [Result<[Int], Error>] = []

    func append(_ result: Result<[Int], Error>) {
        self.lock.lock()
        self.stored.append(result)
        self.lock.unlock()
    }

    var values: [Result<[Int], Error>] {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.stored
    }
}
