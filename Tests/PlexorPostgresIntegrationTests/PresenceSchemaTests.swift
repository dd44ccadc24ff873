import Foundation
import PlexorCore
import PlexorTestSupport
import Testing
@testable import PlexorPostgres

/// Presence in SQL, against a real PostgreSQL: each test in a database of
/// its own, since a sweep reaches every tag. Grace periods are parameters,
/// so "not yet" and "now" need no waiting.
@Suite struct PresenceSchemaTests {
    let connectionString: String
    let owner: PostgresConnection
    let gatewayA = UUID()
    let gatewayB = UUID()

    init() throws {
        self.connectionString = try TestDatabase.makeFreshDatabase()
        self.owner = try PostgresConnection(self.connectionString)
    }

    /// Whether the gateway must report all its counts again.
    func heartbeat(_ gateway: UUID) throws -> Bool {
        try self.owner.presenceHeartbeat(GatewayHeartbeat(id: gateway, host: "test", pid: 1, port: 1,
                                                          connections: 0, parked: 0, listened: 0)).mustReportAll
    }

    func report(_ gateway: UUID, _ counts: [(String, Int)]) throws {
        try self.owner.presenceReport(gateway: gateway, counts.map { (Tag(trusted: $0.0), $0.1) })
    }

    func online(_ prefixes: [String]? = nil) throws -> [String: Int64] {
        Dictionary(uniqueKeysWithValues: try self.owner.online(prefixes: prefixes).map { ($0.tag, $0.listeners) })
    }

    func events(after position: Int64 = 0, _ prefixes: [String]? = nil) throws -> [String] {
        try self.owner.presencePage(after: position, prefixes: prefixes, limit: 1000).events.map { "\($0.position) \($0.kind) \($0.tag)" }
    }

    @Test func aTagIsOnlineFromItsFirstListenerUntilAGracePeriodAfterItsLast() throws {
        _ = try self.heartbeat(self.gatewayA)
        try self.report(self.gatewayA, [("ann", 1)])
        #expect(try self.online() == ["ann": 1])
        let reply = try self.owner.presenceHeartbeat(GatewayHeartbeat(id: self.gatewayA, host: "test", pid: 1, port: 1,
                                                                       connections: 0, parked: 0, listened: 0))
        #expect(reply == .init(mustReportAll: false, lastPosition: 1, onlineTags: 1))
        try self.report(self.gatewayA, [("ann", 0)])
        // In its grace period: online, with no listener.
        #expect(try self.online() == ["ann": 0])
        #expect(try self.owner.presenceSweep(grace: 3600, heartbeatTimeout: 3600) == 0)
        // Back within the grace period: no event.
        try self.report(self.gatewayA, [("ann", 2)])
        try self.report(self.gatewayA, [("ann", 0)])
        #expect(try self.owner.presenceSweep(grace: 0, heartbeatTimeout: 3600) == 1)
        #expect(try self.online().isEmpty)
        #expect(try self.events() == ["1 online ann", "2 offline ann"])
    }

    @Test func countsAddUpAcrossGatewaysAndTheLastToLeaveMakesOneOfflineEvent() throws {
        _ = try self.heartbeat(self.gatewayA)
        _ = try self.heartbeat(self.gatewayB)
        try self.report(self.gatewayA, [("room", 1)])
        try self.report(self.gatewayB, [("room", 2)])
        #expect(try self.online() == ["room": 3])
        try self.report(self.gatewayA, [("room", 0)])
        #expect(try self.online() == ["room": 2])
        #expect(try self.owner.presenceSweep(grace: 0, heartbeatTimeout: 3600) == 0)
        try self.report(self.gatewayB, [("room", 0)])
        #expect(try self.owner.presenceSweep(grace: 0, heartbeatTimeout: 3600) == 1)
        #expect(try self.events() == ["1 online room", "2 offline room"])
    }

    @Test func theListenersOfAGatewayThatStoppedHeartbeatingAreRemovedBySweep() throws {
        _ = try self.heartbeat(self.gatewayA)
        _ = try self.heartbeat(self.gatewayB)
        try self.report(self.gatewayA, [("ann", 1), ("bob", 1)])
        try self.report(self.gatewayB, [("bob", 1)])
        try self.owner.execute("UPDATE plexor.gateways SET heartbeat_at = heartbeat_at - interval '1 hour' WHERE id = $1",
                               [self.gatewayA.uuidString])
        #expect(try self.owner.presenceSweep(grace: 3600, heartbeatTimeout: 60) == 0)
        #expect(try self.online() == ["ann": 0, "bob": 1])
        #expect(try self.owner.presenceSweep(grace: 0, heartbeatTimeout: 60) == 1)
        #expect(try self.events() == ["1 online ann", "2 online bob", "3 offline ann"])
        // The silent gateway comes back: it is told to report everything again.
        #expect(try self.heartbeat(self.gatewayA))
    }

    @Test func aGatewayReportsEverythingAgainAfterItsRowsAreLostAndNoEventFollows() throws {
        #expect(try self.heartbeat(self.gatewayA))
        #expect(try self.heartbeat(self.gatewayA) == false)
        try self.report(self.gatewayA, [("ann", 1)])
        // What a crash does to the unlogged tables.
        try self.owner.execute("TRUNCATE plexor.gateways, plexor.presence_listeners")
        #expect(try self.owner.presenceSweep(grace: 3600, heartbeatTimeout: 60) == 0)
        #expect(try self.online() == ["ann": 0])
        #expect(try self.heartbeat(self.gatewayA))
        try self.report(self.gatewayA, [("ann", 1)])
        #expect(try self.owner.presenceSweep(grace: 0, heartbeatTimeout: 60) == 0)
        #expect(try self.online() == ["ann": 1])
        #expect(try self.events() == ["1 online ann"])
    }

    @Test func aGatewayThatLeavesStartsTheGracePeriodOfItsTags() throws {
        _ = try self.heartbeat(self.gatewayA)
        _ = try self.heartbeat(self.gatewayB)
        try self.report(self.gatewayA, [("ann", 1)])
        try self.owner.presenceLeave(gateway: self.gatewayA)
        #expect(try self.online() == ["ann": 0])
        // Its client reconnects to another gateway in time: no event.
        try self.report(self.gatewayB, [("ann", 1)])
        #expect(try self.owner.presenceSweep(grace: 0, heartbeatTimeout: 3600) == 0)
        #expect(try self.events() == ["1 online ann"])
        let gateways = try self.owner.query("SELECT count(*) FROM plexor.gateways WHERE id = $1", [self.gatewayA.uuidString]) { $0.int64(0, 0) }
        #expect(gateways == 0)
    }

    @Test func prefixesLimitOnlineAndTheEvents() throws {
        _ = try self.heartbeat(self.gatewayA)
        try self.report(self.gatewayA, [("room5/u/ann", 2), ("room5/u/bob", 1), ("room6/u/cy", 1), ("news", 1)])
        #expect(try self.online(["room5/"]) == ["room5/u/ann": 2, "room5/u/bob": 1])
        #expect(try self.online(["news", "room6/"]) == ["news": 1, "room6/u/cy": 1])
        #expect(try self.events(after: 0, ["room6/"]) == ["4 online room6/u/cy"])
        // A prefix is text, not a pattern.
        #expect(try self.online(["room_"]).isEmpty)
    }

    @Test func positionsAreGaplessAndInCommitOrderUnderConcurrentReports() throws {
        let connectionString = self.connectionString
        let results = NIOLockedResults()
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            results.append(Result {
                let connection = try PostgresConnection(connectionString)
                let gateway = UUID()
                _ = try connection.presenceHeartbeat(GatewayHeartbeat(id: gateway, host: "w", pid: 1, port: 1, connections: 0, parked: 0, listened: 0))
                for round in 0..<10 {
                    try connection.presenceReport(gateway: gateway, [(Tag(trusted: "w\(worker)-\(round)"), 1)])
                }
                return []
            })
        }
        for result in results.values { _ = try result.get() }
        let positions = try self.owner.presencePage(after: 0, prefixes: nil, limit: 1000).events.map(\.position)
        #expect(positions == Array(1...40))
    }

    @Test func retentionRemovesOldEventsAndAPageSaysWhereTheyEnded() throws {
        _ = try self.heartbeat(self.gatewayA)
        try self.report(self.gatewayA, [("a", 1), ("b", 1)])
        try self.report(self.gatewayA, [("c", 1)])
        try self.owner.execute("UPDATE plexor.presence_events SET time = time - interval '8 days' WHERE pos <= 2")
        #expect(try self.owner.presenceTrim(maximumAgeSeconds: 7 * 86_400) == 2)
        let page = try self.owner.presencePage(after: 0, prefixes: nil, limit: 1000)
        #expect(page.trimmedUpTo == 2)
        #expect(page.lastPosition == 3)
        #expect(page.events.map(\.tag) == ["c"])
        // The SQL function applications use lists what is left.
        let positions = try self.owner.query("SELECT pos FROM plexor.watch(0)") { rows in (0..<rows.count).map { rows.int64($0, 0)! } }
        #expect(positions == [3])
    }

    @Test func applicationsMayReadPresenceButNotWriteIt() throws {
        let application = try PostgresConnection(TestDatabase.connectionString(
            try TestDatabase.connectionString(asRole: "plexor_test_publisher", granted: ["plexor_publisher"]),
            database: self.databaseName))
        _ = try self.heartbeat(self.gatewayA)
        try self.report(self.gatewayA, [("ann", 1)])
        #expect(try application.online(prefixes: nil).map(\.tag) == ["ann"])
        let events = try application.query("SELECT pos, tag, event FROM plexor.watch(0, '{an}')") { rows in
            (0..<rows.count).map { "\(rows.int64($0, 0)!) \(rows.string($0, 2)!) \(rows.string($0, 1)!)" }
        }
        #expect(events == ["1 online ann"])
        for sql in [
            "SELECT plexor.presence_report('\(UUID().uuidString)', '{x}', '{1}')",
            "SELECT plexor.presence_heartbeat('\(UUID().uuidString)', 'h', 1, 1, 0, 0, 0)",
            "SELECT plexor.presence_sweep('0 s', '0 s')",
            "SELECT plexor.presence_leave('\(self.gatewayA.uuidString)')",
            "SELECT plexor.presence_trim('0 s')",
            "SELECT * FROM plexor.presence_listeners",
            "SELECT * FROM plexor.gateways",
            "DELETE FROM plexor.presence_events",
        ] {
            do {
                try application.execute(sql)
                Issue.record("\(sql) was allowed")
            } catch let error as PostgresError {
                #expect(error.sqlState == "42501", "\(sql): \(error)")
            }
        }
        let stranger = try PostgresConnection(TestDatabase.connectionString(
            try TestDatabase.connectionString(asRole: "plexor_test_stranger", granted: []), database: self.databaseName))
        #expect(throws: PostgresError.self) { try stranger.online(prefixes: nil) }
    }

    var databaseName: String {
        get throws {
            try self.owner.query("SELECT current_database()") { $0.string(0, 0)! }
        }
    }
}
