import Foundation
import NIOHTTP1
import PlexorGateway
import PlexorPostgres
import PlexorTestSupport
import Testing

/// Presence through gateways: real polls, real PostgreSQL, several gateways.
/// Each test has a database of its own (a sweep reaches every tag), and
/// gateways that write every 250 ms with a one-second grace period.
@Suite struct PresenceTests {
    static let token = "presence-token"

    func presenceGateway(_ database: String, grace: Int = 1, _ configure: (inout GatewayConfiguration) -> Void = { _ in }) throws -> Gateway {
        try startGateway(database) {
            $0.apiToken = Self.token
            $0.presence.enabled = true
            $0.presence.interval = .milliseconds(250)
            $0.presence.graceSeconds = grace
            $0.presence.heartbeatTimeoutSeconds = 2
            configure(&$0)
        }
    }

    func get(_ port: Int, _ uri: String, token: String? = Self.token) async throws -> TestResponse {
        let client = try await TestHTTPClient.connect(port: port)
        defer { Task { await client.close() } }
        return try await client.request(.GET, uri, headers: token.map { [("Authorization", "Bearer \($0)")] } ?? [])
    }

    func online(_ port: Int, _ query: String = "") async throws -> [String: Int] {
        let response = try await self.get(port, "/online" + query)
        guard response.status == .ok else { throw TestFailure("GET /online: \(response.status) \(response.body)") }
        let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as! [String: Any]
        return object["online"] as! [String: Int]
    }

    /// `GET /watch`: the events as "online tag" lines, and the cursor.
    func watch(_ port: Int, _ query: String) async throws -> (events: [String], cursor: Int64, reset: [String: Any]?) {
        let response = try await self.get(port, "/watch?" + query)
        guard response.status == .ok else { throw TestFailure("GET /watch: \(response.status) \(response.body)") }
        let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as! [String: Any]
        let events = (object["events"] as! [[String: Any]]).map { "\($0["event"]!) \($0["tag"]!)" }
        return (events, (object["cursor"] as! NSNumber).int64Value, object["reset"] as? [String: Any])
    }

    /// A client parked on `tag` until the socket is closed (set to nil).
    func park(_ port: Int, _ tag: String) throws -> RawSocket {
        let socket = try RawSocket(port: port)
        socket.sendNow(Array("GET /poll?tags=\(tag)&timeout=60 HTTP/1.1\r\nHost: test\r\n\r\n".utf8))
        return socket
    }

    @Test func listenersAddUpAcrossGatewaysAndTheLastToLeaveEndsItOnce() async throws {
        let database = try TestDatabase.makeFreshDatabase()
        let gateways = try (0..<3).map { _ in try self.presenceGateway(database) }
        defer { gateways.forEach { $0.shutdown() } }
        let ports = gateways.map(\.localPort)
        let tag = uniqueTag("room")
        var clients: [RawSocket?] = try [self.park(ports[0], tag), self.park(ports[1], tag), self.park(ports[1], tag), self.park(ports[2], tag)]
        try await waitUntil("every listener counts") { try await self.online(ports[0])[tag] == 4 }
        #expect(try await metric(port: ports[1], "plexor_presence_tracked_tags") == 1)
        try await waitUntil("the heartbeat sees the tag online") { try await metric(port: ports[2], "plexor_presence_online_tags") == 1 }
        var events = 0
        for port in ports { events += try await metric(port: port, "plexor_presence_events_total") }
        #expect(events == 1)
        clients[0] = nil
        clients[1] = nil
        try await waitUntil("two listeners are left") { try await self.online(ports[2])[tag] == 2 }
        clients[2] = nil
        clients[3] = nil
        // The last one left: offline after the grace period, reported once.
        let offline = try await self.watch(ports[0], "after=1&timeout=20")
        #expect(offline.events == ["offline \(tag)"])
        #expect(offline.cursor == 2)
        #expect(try await self.watch(ports[1], "after=0&timeout=0").events == ["online \(tag)", "offline \(tag)"])
        #expect(try await self.online(ports[2]).isEmpty)
    }

    @Test func aClientThatRePollsAfterEachAnswerStaysOnline() async throws {
        let database = try TestDatabase.makeFreshDatabase()
        // Grace for a loaded machine's slowest gap between an answer and the next poll, and a
        // heartbeat timeout its own late heartbeat cannot reach (it would take itself for dead).
        let gateway = try self.presenceGateway(database, grace: 5) { $0.presence.heartbeatTimeoutSeconds = 20 }
        defer { gateway.shutdown() }
        let tag = uniqueTag("user")
        let publisher = try SQLPublisher(database)
        let client = try await TestHTTPClient.connect(port: gateway.localPort)
        defer { Task { await client.close() } }
        var cursor: Int64 = 0
        // Twenty answers, each followed at once by the next poll, over several reports.
        for index in 1...20 {
            let uri = "/poll?tags=\(tag)@\(cursor)&timeout=30"
            async let answer = client.get(uri)
            try await waitUntil("the poll waits") { gateway.parked == 1 }
            if index % 5 == 0 {
                try await waitUntil("a report counts it") { try await self.online(gateway.localPort)[tag] == 1 }
            }
            try publisher.insert([tag], String(index))
            cursor = try Answer(await answer).cursors[tag]!
        }
        #expect(try await self.watch(gateway.localPort, "after=0&timeout=0").events == ["online \(tag)"])
    }

    @Test func watchFromNowWaitsForTheNextEventAndPrefixesFilter() async throws {
        let database = try TestDatabase.makeFreshDatabase()
        let gateway = try self.presenceGateway(database)
        defer { gateway.shutdown() }
        let now = try await self.watch(gateway.localPort, "timeout=0")
        #expect(now.events.isEmpty)
        let start = now.cursor
        async let next = self.watch(gateway.localPort, "after=\(start)&prefix=room5/&timeout=20")
        let other = try self.park(gateway.localPort, "room6/u/bob")
        try await waitUntil("the first listener is online") { try await self.online(gateway.localPort)["room6/u/bob"] == 1 }
        let ann = try self.park(gateway.localPort, "room5/u/ann")
        let answer = try await next
        #expect(answer.events == ["online room5/u/ann"])
        #expect(answer.cursor == start + 2)
        #expect(try await self.online(gateway.localPort, "?prefix=room5/") == ["room5/u/ann": 1])
        _ = (other, ann)
    }

    @Test func aWaitingWatchIsAnsweredWithItsCursorWhenTheGatewayStops() async throws {
        let database = try TestDatabase.makeFreshDatabase()
        let gateway = try self.presenceGateway(database)
        let socket = try RawSocket(port: gateway.localPort)
        socket.sendNow(Array("GET /watch?after=0&timeout=60 HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer \(Self.token)\r\n\r\n".utf8))
        // Accepted (the metrics request is the other connection) before the stop closes the listening socket.
        try await waitUntil("the watch's connection is accepted") { try await metric(port: gateway.localPort, "plexor_connections_open") >= 2 }
        // Nothing to say: the watch waits (or its read is still on its way); either way the stop answers it.
        gateway.shutdown()
        let (bytes, _) = try await socket.receive(within: 5000)
        let answer = String(decoding: bytes, as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 200"))
        #expect(answer.hasSuffix(#"{"events":[],"cursor":0}"#))
    }

    @Test func presenceNeedsTheTokenAndSaysWhenItIsOff() async throws {
        let database = try TestDatabase.makeFreshDatabase()
        let gateway = try self.presenceGateway(database)
        defer { gateway.shutdown() }
        #expect(try await self.get(gateway.localPort, "/online", token: nil).status == .unauthorized)
        #expect(try await self.get(gateway.localPort, "/watch", token: "wrong").status == .unauthorized)
        #expect(try await self.get(gateway.localPort, "/watch?after=x").status == .badRequest)
        let off = try self.presenceGateway(database) { $0.presence.enabled = false }
        defer { off.shutdown() }
        let response = try await self.get(off.localPort, "/online")
        #expect(response.status == .notFound)
        #expect(response.body.contains("presence is off"))
        let noToken = try self.presenceGateway(database) { $0.apiToken = nil }
        defer { noToken.shutdown() }
        #expect(try await self.get(noToken.localPort, "/online").status == .notFound)
    }

    @Test func aWatchBehindRetentionIsToldWhereTheEventsEnded() async throws {
        let database = try TestDatabase.makeFreshDatabase()
        let gateway = try self.presenceGateway(database)
        defer { gateway.shutdown() }
        let parked = try self.park(gateway.localPort, "a")
        try await waitUntil("a is online") { try await self.online(gateway.localPort)["a"] == 1 }
        let owner = try PostgresConnection(database)
        try owner.execute("UPDATE plexor.presence_events SET time = time - interval '30 days'")
        #expect(try owner.presenceTrim(maximumAgeSeconds: 86_400) == 1)
        let answer = try await self.watch(gateway.localPort, "after=0&timeout=0")
        #expect(answer.events.isEmpty)
        #expect(answer.reset?["reason"] as? String == "expired")
        #expect((answer.reset?["cursor"] as? NSNumber)?.int64Value == 1)
        let ahead = try await self.watch(gateway.localPort, "after=99&timeout=0")
        #expect(ahead.reset?["reason"] as? String == "ahead")
        #expect(ahead.cursor == 1)
        _ = parked
    }

    @Test func aGatewayThatStopsCleanlyCausesNoEventWhenItsClientsMoveOnInTime() async throws {
        let database = try TestDatabase.makeFreshDatabase()
        let grace = 5  // room for a loaded machine between the stop and the other gateway's report
        let leaving = try self.presenceGateway(database, grace: grace)
        let staying = try self.presenceGateway(database, grace: grace)
        defer { staying.shutdown() }
        let tag = uniqueTag("ann")
        let onLeaving = try self.park(leaving.localPort, tag)
        try await waitUntil("ann is online") { try await self.online(staying.localPort)[tag] == 1 }
        let owner = try PostgresConnection(database)
        let stopped = try owner.query("SELECT now()::text") { $0.string(0, 0)! }
        leaving.shutdown()
        // Drained: the client is answered and polls again, at the other gateway.
        let (answer, _) = try await onLeaving.receive(within: 5000)
        #expect(String(decoding: answer, as: UTF8.self).hasPrefix("HTTP/1.1 200"))
        let onStaying = try self.park(staying.localPort, tag)
        try await waitUntil("a grace period has passed") {
            try owner.query("SELECT now() > $1::timestamptz + $2::interval", [stopped, "\(grace + 1) seconds"]) { $0.bool(0, 0)! }
        }
        #expect(try await self.watch(staying.localPort, "after=0&timeout=0").events == ["online \(tag)"])
        #expect(try await self.online(staying.localPort)[tag] == 1)
        _ = onStaying
    }

    @Test func theListenersOfAGatewayKilledWithoutGoodbyeGoOfflineWithoutHelp() async throws {
        let database = try TestDatabase.makeFreshDatabase()
        let survivor = try self.presenceGateway(database)
        defer { survivor.shutdown() }
        let doomed = try await offTheTestThreads {
            try GatewayProcess(arguments: ["--presence-grace", "1", "--presence-heartbeat-timeout", "2"], databaseURL: database)
        }
        defer { doomed.stop() }
        let tag = uniqueTag("ann")
        let parked = try self.park(doomed.port, tag)
        try await waitUntil("the listener on the doomed gateway counts") { try await self.online(survivor.localPort)[tag] == 1 }
        kill(doomed.process.processIdentifier, SIGKILL)
        let offline = try await self.watch(survivor.localPort, "after=1&timeout=30")
        #expect(offline.events == ["offline \(tag)"])
        _ = parked
    }

    @Test func aPostgreSQLCrashCausesNoOfflineOnlinePairForTagsThatKeptTheirListeners() async throws {
        let cluster = try TestCluster.make(name: "presence-restart", durable: true)
        try cluster.start()
        defer {
            try? cluster.stop()
            try? FileManager.default.removeItem(atPath: cluster.dataDirectory)
        }
        try Migrator.migrate(PostgresConnection(cluster.connectionString))
        let grace = 5
        let gateway = try self.presenceGateway(cluster.connectionString, grace: grace)
        defer { gateway.shutdown() }
        // A client that polls again after every answer, as the JS client does (also after a 503).
        let client = Task { try await Self.keepPolling(tag: "kept", port: gateway.localPort) }
        defer { client.cancel() }
        try await waitUntil("kept is online") { try await self.online(gateway.localPort)["kept"] == 1 }
        try cluster.kill()
        try cluster.start()
        let owner = try PostgresConnection(cluster.connectionString)
        let listeners = { try owner.query("SELECT count(*) FROM plexor.presence_listeners") { $0.int64(0, 0) ?? 0 } }
        // The crash emptied the unlogged tables; the gateway reports again.
        try await waitUntil("the gateway reported again") { (try? listeners()) == 1 }
        let restarted = try owner.query("SELECT now()::text") { $0.string(0, 0)! }
        // Sweeps go on past a whole grace period after the restart: still no event but the first.
        try await waitUntil("a grace period has passed", timeout: .seconds(30)) {
            try owner.query("SELECT now() > $1::timestamptz + $2::interval", [restarted, "\(grace + 1) seconds"]) { $0.bool(0, 0)! }
        }
        let events = try owner.query("SELECT event || ' ' || tag FROM plexor.watch(0)") { rows in (0..<rows.count).map { rows.string($0, 0)! } }
        #expect(events == ["online kept"])
        // Still online; its count is 1 whenever the client's poll is in (not between two polls, or retrying).
        try await waitUntil("kept counts its listener") { try await self.online(gateway.localPort) == ["kept": 1] }
    }

    /// Polls `tag` again after every answer or failure until cancelled.
    static func keepPolling(tag: String, port: Int) async throws {
        var cursor: Int64 = 0
        while !Task.isCancelled {
            guard let response = try? await TestHTTPClient.get(port: port, "/poll?tags=\(tag)@\(cursor)&timeout=5"),
                  response.status == .ok else {
                try await Task.sleep(for: .milliseconds(20))  // a client's retry delay, not synchronisation
                continue
            }
            cursor = try Answer(response).cursors[tag]!
        }
    }
}
