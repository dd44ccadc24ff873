import Foundation
import PlexorCore
import PlexorGateway
import PlexorPostgres
import PlexorTestSupport
import Testing

/// Any database session can `NOTIFY` any channel with any payload: only the
/// trigger's signed payloads may make a gateway deliver.
@Suite struct ForgedNotificationTests {
    func metric(_ gateway: Gateway, _ sample: String) async throws -> Int {
        try await PlexorGatewayIntegrationTests.metric(port: gateway.localPort, sample)
    }

    static let unsigned = #"plexor_listener_notifications_dropped_total{reason="unsigned"}"#
    static let malformed = #"plexor_listener_notifications_dropped_total{reason="malformed"}"#
    static let mismatched = #"plexor_listener_notifications_dropped_total{reason="mismatched_reference"}"#

    @Test func forgeriesFromARoleWithNoGrantsDeliverNothingAndMoveNoCursor() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let tag = uniqueTag(), elsewhere = uniqueTag()
        let owner = try SQLPublisher()
        let otherID = try owner.insert([elsewhere], #""secret of another tag""#)
        let stranger = try PostgresConnection(TestDatabase.connectionString(asRole: "plexor_test_stranger", granted: []))

        async let parked = TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(tag)@0&timeout=30")
        try await waitUntil("the poll is parked") { gateway.parked == 1 }
        let droppedBefore = try await self.metric(gateway, Self.unsigned)
        let forgeries = [
            // What the trigger sent before payloads were signed, with a time and data that break JSON.
            "m \(tag) 1 2026-11-26T10:00:00.123456Z\",\"x 1 \(tag) 1 0\n{\"unterminated",
            // A count that would need terabytes to reserve.
            "m \(tag) 1 2026-11-26T10:00:00.123456Z 4611686018427387904 \(tag) 1 0\n1",
            // A well-formed body behind a signature made without the key.
            String(repeating: "0", count: 64) + " m \(tag) 1 2026-11-26T10:00:00.123456Z 1 \(tag) 1 0\n\"forged\"",
            // A reference to another tag's message.
            "r \(tag) 1 \(otherID)",
            String(repeating: "x", count: 7999),
        ]
        for forgery in forgeries {
            try stranger.execute("SELECT pg_notify('plexor:' || $1, $2)", [tag, forgery])
        }
        try await waitUntil("the gateway dropped every forgery") {
            let dropped = try await self.metric(gateway, Self.unsigned)
            return dropped >= droppedBefore + forgeries.count
        }
        #expect(gateway.parked == 1, "a forgery answered the parked poll")

        let id = try owner.insert([tag], #"{"text":"real"}"#)
        let answer = try Answer(await parked)
        #expect(answer.messages.map(\.id) == [id])
        #expect(answer.messages.map(\.dataJSON) == [#"{"text":"real"}"#])
        #expect(answer.cursors == [tag: 1])
        let again = try Answer(await TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(tag)@0&timeout=0"))
        #expect(again.messages.map(\.id) == [id])
    }

    @Test func aSignedReferenceToAnotherTagsMessageIsNotDelivered() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let tag = uniqueTag(), elsewhere = uniqueTag()
        let owner = try SQLPublisher()
        let signature = NotificationSignature(key: try owner.connection.notificationKey())!
        let otherID = try owner.insert([elsewhere], #""secret of another tag""#)

        async let parked = TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(tag)@0&timeout=30")
        try await waitUntil("the poll is parked") { gateway.parked == 1 }
        let mismatchedBefore = try await self.metric(gateway, Self.mismatched)
        let malformedBefore = try await self.metric(gateway, Self.malformed)
        // Signed with the key, as only the trigger (or the key's readers) can.
        for body in ["r \(tag) 1 \(otherID)", "m \(tag) 1 not-a-time 1 \(tag) 1 0\n1"] {
            let payload = String(decoding: signature.sign(Array(body.utf8)), as: UTF8.self)
            try owner.connection.execute("SELECT pg_notify(plexor.channel($1), $2)", [tag, payload])
        }
        try await waitUntil("the gateway dropped both") {
            let mismatched = try await self.metric(gateway, Self.mismatched)
            let malformed = try await self.metric(gateway, Self.malformed)
            return mismatched == mismatchedBefore + 1 && malformed == malformedBefore + 1
        }
        #expect(gateway.parked == 1, "the reference answered the parked poll")

        let id = try owner.insert([tag], #""mine""#)
        let answer = try Answer(await parked)
        #expect(answer.messages.map(\.id) == [id])
        #expect(answer.messages.map(\.dataJSON) == [#""mine""#])
    }

    @Test func aGatewayRunsAsPlexorGatewayAndAppsPublishAsPlexorPublisher() async throws {
        let gatewayRole = try TestDatabase.connectionString(asRole: "plexor_test_gateway", granted: ["plexor_gateway"])
        let gateway = try startGateway(gatewayRole) { $0.apiToken = "s3cret" }
        defer { gateway.shutdown() }
        let tag = uniqueTag()
        let publisher = try SQLPublisher(TestDatabase.connectionString(asRole: "plexor_test_publisher", granted: ["plexor_publisher"]))
        async let parked = TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(tag)@0&timeout=30")
        try await waitUntil("the poll is parked") { gateway.parked == 1 }
        let id = try publisher.insert([tag], #""from the app""#)
        #expect(try Answer(await parked).messages.map(\.id) == [id])

        let client = try await TestHTTPClient.connect(port: gateway.localPort)
        defer { Task { await client.close() } }
        let published = try await client.request(.POST, "/publish", headers: [("Authorization", "Bearer s3cret")],
                                                 body: #"{"tags":["\#(tag)"],"data":"over HTTP"}"#)
        #expect(published.status == .created, "\(published.body)")
        let both = try Answer(await client.get("/poll?tags=\(tag)@0&timeout=0"))
        #expect(both.messages.map(\.dataJSON) == [#""from the app""#, #""over HTTP""#])
    }
}
