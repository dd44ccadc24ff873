import Foundation
import PlexorTestSupport
import Testing

/// `plexor serve`'s parts stop through a ServiceGroup on SIGTERM: the HTTP
/// server first, so parked polls are answered before anything else goes.
@Suite struct ServeShutdownTests {
    @Test func sigtermAnswersParkedPollsWithTheirCursorsThenExitsCleanly() async throws {
        let gateway = try await offTheTestThreads { try GatewayProcess() }
        defer { gateway.stop() }
        let tag = uniqueTag()
        try SQLPublisher().insert([tag], "1")
        // A minute's timeout: an answer within seconds can only be the drain's.
        async let parked = TestHTTPClient.get(port: gateway.port, "/poll?tags=\(tag)&timeout=60")
        try await waitUntil("the poll is parked") { try await metric(port: gateway.port, "plexor_polls_parked") == 1 }
        let signalled = ContinuousClock.now
        kill(gateway.process.processIdentifier, SIGTERM)
        let answer = try Answer(await parked)
        #expect(ContinuousClock.now - signalled < .seconds(20))
        #expect(answer.messages.isEmpty)
        #expect(answer.cursors == [tag: 1])
        try await waitUntil("plexor serve exits") { !gateway.process.isRunning }
        #expect(gateway.process.terminationReason == .exit)
        #expect(gateway.process.terminationStatus == 0)
    }
}
