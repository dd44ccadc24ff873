import Foundation
import PlexorCore
import PlexorGateway
import PlexorTestSupport
import Testing

/// Clients that are slow, silent, flooding or speak another protocol are
/// shed within the configured limits, while good polls keep being answered.
@Suite struct HostileClientTests {
    @Test func slowlorisConnectionsAreClosedWithA408WhileGoodPollsAreAnswered() async throws {
        let gateway = try startGateway {
            $0.headerTimeoutSeconds = 2
            $0.idleTimeoutSeconds = 30
        }
        defer { gateway.shutdown() }
        let port = gateway.localPort
        let slowCount = 200
        // On a thread of its own, timed by the wall clock rather than by the test threads' turns.
        let (closedAt, answers, goodPolls) = try await offTheTestThreads { () throws -> ([Int: Duration], [Int: String], [Duration]) in
            let slow = try (0..<slowCount).map { _ in try RawSocket(port: port) }
            let request = Array("GET /poll?tags=\(uniqueTag())&timeout=0 HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
            let good = try RawSocket(port: port)
            let started = ContinuousClock.now
            var closedAt: [Int: Duration] = [:]
            var answers: [Int: String] = [:]
            var goodPolls: [Duration] = []
            var sent = 0
            // A byte every 250 ms on each slow connection, for at most 8 s.
            while closedAt.count < slow.count, ContinuousClock.now - started < .seconds(8) {
                for (index, socket) in slow.enumerated() where closedAt[index] == nil {
                    if sent < request.count { socket.sendNow([request[sent]]) }
                    let (bytes, closed) = socket.receive(waitingUpTo: 0)
                    answers[index, default: ""] += String(decoding: bytes, as: UTF8.self)
                    if closed { closedAt[index] = ContinuousClock.now - started }
                }
                sent += 1
                let polled = ContinuousClock.now
                good.sendNow(Array("GET /poll?tags=\(uniqueTag())&timeout=0 HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
                let (bytes, _) = good.receive(waitingUpTo: 5000)
                guard try RawResponse(String(decoding: bytes, as: UTF8.self)).status == 200 else { throw TestFailure("a good poll failed") }
                goodPolls.append(ContinuousClock.now - polled)
                usleep(250_000)
            }
            return (closedAt, answers, goodPolls)
        }
        // Answered while the slow clients were held.
        let sorted = goodPolls.sorted()
        #expect(sorted[sorted.count / 2] < .milliseconds(500) && sorted.last! < .seconds(5), "good polls took \(sorted)")
        #expect(closedAt.count == slowCount, "\(slowCount - closedAt.count) slow connections are still open")
        // Two seconds of header timeout, checked once a second.
        #expect(closedAt.values.allSatisfy { $0 < .seconds(4) + .milliseconds(500) }, "\(closedAt.values.max()!)")
        #expect(answers.values.allSatisfy { $0.hasPrefix("HTTP/1.1 408 ") })
        #expect(gateway.metrics.timedOutRequests.load(ordering: .relaxed) >= slowCount)
    }

    @Test(arguments: [
        ("a TLS ClientHello", [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]),
        ("an HTTP/0.9 request", Array("GET /poll?tags=a\r\n".utf8)),
    ] as [(String, [UInt8])])
    func anotherProtocolIsRefusedAtOnce(_ what: String, _ bytes: [UInt8]) async throws {
        let gateway = try startGateway()  // the default 10 s header timeout
        defer { gateway.shutdown() }
        let socket = try RawSocket(port: gateway.localPort)
        socket.sendNow(bytes)
        let (received, closed) = try await socket.receive(within: 3000)
        let response = try RawResponse(String(decoding: received, as: UTF8.self))
        #expect(response.status == 400, "\(what)")
        let closedLater = try await socket.receive(within: 3000).closed
        #expect(closed || closedLater, "\(what): the connection stayed open")
    }

    @Test func aClientThatPipelinesAHundredThousandPollsWithoutReadingCannotGrowTheGateway() async throws {
        let gateway = try await offTheTestThreads { try GatewayProcess() }
        let tag = uniqueTag()
        try SQLPublisher().insert([tag], String(repeating: "1", count: 200))
        let poll = Array("GET /poll?tags=\(tag)@0&timeout=0 HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        // Warm up: the tag's recent log, the loops' buffers.
        for _ in 0..<20 { #expect(try await TestHTTPClient.get(port: gateway.port, "/poll?tags=\(tag)@0&timeout=0").status == .ok) }
        let before = try gateway.residentBytes

        let flooder = try RawSocket(port: gateway.port, bufferBytes: 4096)
        let all = Array(Array(repeating: poll, count: 100_000).joined())
        var offset = 0
        var lastProgress = ContinuousClock.now
        // Until everything is sent, or the gateway has stopped reading for a second.
        while offset < all.count, ContinuousClock.now - lastProgress < .seconds(1) {
            let sent = flooder.sendNow(Array(all[offset..<min(offset + 65536, all.count)]))
            #expect(sent >= 0, "the gateway closed the connection")
            if sent < 0 { break }
            if sent > 0 {
                offset += sent
                lastProgress = .now
            } else {
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        // The gateway answers what it has read; then nothing changes.
        var answered = -1
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(60)
        while clock.now < deadline {
            let now = try await metric(port: gateway.port, #"plexor_polls_answered_total{outcome="messages"}"#)
            if now == answered { break }
            answered = now
            try await Task.sleep(for: .milliseconds(500))
        }
        let after = try gateway.residentBytes
        #expect(after - before < 10 * 1024 * 1024, "RSS grew from \(before) to \(after) bytes; \(answered) polls answered")
        #expect(offset < all.count, "the gateway read all \(all.count) bytes without their answers being read")
        // Everyone else is still served.
        #expect(try await TestHTTPClient.get(port: gateway.port, "/healthz").status == .ok)
        withExtendedLifetime(flooder) {}
    }

    @Test func atTheDescriptorLimitANewClientGetsA503NotAHang() async throws {
        // 150 descriptors: the gateway lowers --max-connections to fit.
        let gateway = try await offTheTestThreads {
            try GatewayProcess(arguments: ["--max-connections", "10000", "--threads", "2", "--query-connections", "1"], descriptorLimit: 150)
        }
        // Figures read on one connection kept open: once it is the only one (earlier requests' closes
        // reach the gateway a moment later), exactly limit - 1 more fit.
        let watcher = try RawSocket(port: gateway.port)
        func figure(_ name: String) async throws -> Int {
            watcher.sendNow(Array("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            var text = ""
            while (try? RawResponse(text)) == nil {
                let (bytes, closed) = try await watcher.receive(within: 3000)
                guard !bytes.isEmpty, !closed else { throw TestFailure("no /metrics answer: \(text)") }
                text += String(decoding: bytes, as: UTF8.self)
            }
            let line = try RawResponse(text).body.split(separator: "\n").first { $0.hasPrefix(name + " ") }
            return try #require(line.flatMap { Int($0.dropFirst(name.count + 1)) })
        }
        try await waitUntil("the kept connection is the only one open") { try await figure("plexor_connections_open") == 1 }
        let limit = try await figure("plexor_connections_limit")
        var open: [RawSocket] = []  // kept open, so each holds a descriptor
        var statuses: [Int] = []
        for _ in 0..<150 {
            let socket = try RawSocket(port: gateway.port)
            socket.sendNow(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            let (bytes, _) = try await socket.receive(within: 3000)
            statuses.append(try RawResponse(String(decoding: bytes, as: UTF8.self)).status)
            open.append(socket)
        }
        // Served while descriptors last (less a reserve), then refused at once; never a hang.
        let served = statuses.prefix { $0 == 200 }.count
        #expect(served > 0 && served < 150 - 64, "\(served) served")
        #expect(served == limit - 1, "/metrics states the limit the gateway keeps")
        #expect(statuses.dropFirst(served).allSatisfy { $0 == 503 }, "\(statuses)")
        withExtendedLifetime((open, watcher)) {}
    }
}
