import Foundation
import PlexorPostgres
import PlexorTestSupport
import Testing

/// `plexor serve` with no database configured: its own PostgreSQL, and the
/// least-privilege roles even there.
@Suite struct EmbeddedServeTests {
    @Test func theEmbeddedGatewayRunsAsGatewayAndTheQuickStartPublishesAsApp() async throws {
        let directory = "/tmp/plexor-embedded-\(getpid())"
        try? FileManager.default.removeItem(atPath: directory)
        let gateway = try await offTheTestThreads { try GatewayProcess(embedded: directory) }
        defer {
            gateway.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
        // The command the welcome prints, as a user would paste it.
        let line = try #require(gateway.welcome.split(separator: "\n").first { $0.contains("publish one:") })
        let connectionString = try #require(line.split(separator: "'").dropFirst().first.map(String.init))
        #expect(connectionString.contains("user=app"))

        let tag = uniqueTag()
        async let parked = TestHTTPClient.get(port: gateway.port, "/poll?tags=\(tag)@0&timeout=30")
        let app = try PostgresConnection(connectionString)
        try await waitUntil("the poll is parked") { try await metric(port: gateway.port, "plexor_polls_parked") == 1 }
        try app.execute("INSERT INTO plexor.messages (tags, data) VALUES ($1, '\"hi\"')", ["{\(tag)}"])
        let answer = try Answer(await parked)
        #expect(answer.messages.map(\.dataJSON) == [#""hi""#])

        let owner = try PostgresConnection(connectionString.replacingOccurrences(of: "user=app", with: "user=plexor"))
        let listenerRole = try owner.query("SELECT usename FROM pg_stat_activity WHERE application_name = 'plexor-listener'") {
            $0.count == 1 ? $0.string(0, 0) : nil
        }
        #expect(listenerRole == "gateway")
        #expect(throws: PostgresError.self) { try app.execute("UPDATE plexor.tags SET last_seq = 0") }
    }
}
