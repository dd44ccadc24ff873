import Foundation
import NIOCore
import PlexorCore
import PlexorGateway
import PlexorPostgres
import PlexorTestSupport
import Testing

/// Invariant 2: nothing is lost across a PostgreSQL restart.
@Suite struct RestartTests {
    @Test func aPostgreSQLCrashInTheMiddleOfAStreamLosesNothing() async throws {
        let cluster = try TestCluster.make(name: "restart", durable: true)
        try cluster.start()
        defer {
            try? cluster.stop()
            try? FileManager.default.removeItem(atPath: cluster.dataDirectory)
        }
        try Migrator.migrate(PostgresConnection(cluster.connectionString))
        let gateway = try startGateway(cluster.connectionString) { $0.queryConnections = 1 }
        defer { gateway.shutdown() }
        let tag = uniqueTag("restart")
        let publisher = try SQLPublisher(cluster.connectionString)
        let client = Task { try await Self.receiveAll(tag: tag, count: 100, port: gateway.localPort) }

        for index in 1...50 { try publisher.insert([tag], String(index)) }
        // Wait until the client has caught up and is parked, so the crash hits a waiting stream.
        try await waitUntil("the client waits after message 50") {
            gateway.parked == 1 && gateway.metrics.messagesDelivered.load(ordering: .relaxed) >= 50
        }
        try cluster.kill()
        try cluster.start()
        let afterRestart = try SQLPublisher(cluster.connectionString)
        for index in 51...100 { try afterRestart.insert([tag], String(index)) }

        let received = try await client.value
        #expect(received == Array(1...100))
        #expect(gateway.waitUntilReady(timeout: .seconds(10)))
        let metrics = try await TestHTTPClient.get(port: gateway.localPort, "/metrics").body
        #expect(metrics.contains("plexor_listener_reconnects_total 1\n"))
    }

    /// Polls in a loop from cursor 0, retrying (with its cursor) on 503s and
    /// dropped connections, until `count` messages arrived.
    static func receiveAll(tag: String, count: Int, port: Int) async throws -> [Int64] {
        var received: [Int64] = []
        var cursor: Int64 = 0
        let deadline = ContinuousClock.now + .seconds(60)
        while received.count < count {
            guard ContinuousClock.now < deadline else { throw TestFailure("received only \(received.count) of \(count)") }
            guard let response = try? await TestHTTPClient.get(port: port, "/poll?tags=\(tag)@\(cursor)&timeout=10") else {
                try await Task.sleep(for: .milliseconds(50))
                continue
            }
            if response.status == .serviceUnavailable {
                try await Task.sleep(for: .milliseconds(50))  // a client's retry delay, not synchronisation
                continue
            }
            let answer = try Answer(response)
            received += answer.messages.map { $0.tags[tag]! }
            cursor = answer.cursors[tag]!
        }
        return received
    }
}
