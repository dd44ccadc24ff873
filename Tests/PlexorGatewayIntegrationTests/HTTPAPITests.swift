import Foundation
import NIOCore
import NIOHTTP1
import PlexorCore
import PlexorGateway
import PlexorPostgres
import PlexorTestSupport
import Testing

/// The HTTP contract: errors, publish, health, metrics, CORS, keep-alive, limits.
@Suite struct HTTPAPITests {
    static func isJSONError(_ response: TestResponse) -> Bool {
        guard let object = try? JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any] else { return false }
        return object["error"] is String && response.headers.first(name: "content-type") == "application/json"
    }

    @Test func badRequestsGetA4xxWithAJSONErrorAndTheServerKeepsServing() async throws {
        let gateway = try startGateway { $0.pollLimits = PollLimits(maximumTags: 3) }
        defer { gateway.shutdown() }
        let client = try await TestHTTPClient.connect(port: gateway.localPort)
        defer { Task { await client.close() } }
        let cases: [(HTTPMethod, String, HTTPResponseStatus)] = [
            (.GET, "/poll", .badRequest),
            (.GET, "/poll?tags=", .badRequest),
            (.GET, "/poll?tags=a,,b", .badRequest),
            (.GET, "/poll?tags=a@", .badRequest),
            (.GET, "/poll?tags=a@x", .badRequest),
            (.GET, "/poll?tags=a@-3", .badRequest),
            (.GET, "/poll?tags=a,a", .badRequest),
            (.GET, "/poll?tags=a,b,c,d", .badRequest),
            (.GET, "/poll?tags=a%20b", .badRequest),
            (.GET, "/poll?tags=a&timeout=-1", .badRequest),
            (.GET, "/poll?tags=a&timeout=ten", .badRequest),
            (.GET, "/nowhere", .notFound),
            (.POST, "/poll?tags=a", .methodNotAllowed),
            (.DELETE, "/healthz", .methodNotAllowed),
            (.POST, "/publish", .notFound),  // no publish token configured
        ]
        for (method, uri, status) in cases {
            let response = try await client.request(method, uri)
            #expect(response.status == status, "\(method) \(uri)")
            #expect(Self.isJSONError(response), "\(method) \(uri): \(response.body)")
        }
        // The same keep-alive connection still serves a good request.
        let tag = uniqueTag()
        let answer = try Answer(await client.get("/poll?tags=\(tag)&timeout=0"))
        #expect(answer.cursors == [tag: 0])
    }

    @Test func unparseableHTTPGetsAJSON400AndOthersAreStillServed() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let port = gateway.localPort
        let raw = try await Task.detached { try rawHTTPExchange(port: port, "GET /poll?tags=a HTTP/1.1\r\nHost: x\r\nContent-Length: zebra\r\n\r\n") }.value
        #expect(raw.hasPrefix("HTTP/1.1 400"))
        #expect(raw.hasSuffix("{\"error\":\"Content-Length must be a whole number\"}"))
        #expect(try await TestHTTPClient.get(port: port, "/healthz").status == .ok)
    }

    @Test func gatewaysShareAPortWithReusePortAndEachHasItsStatusPort() async throws {
        let first = try startGateway { $0.reusePort = true; $0.statusPort = 0 }
        defer { first.shutdown() }
        let port = first.localPort
        #expect(throws: (any Error).self) { try startGateway { $0.port = port } }
        let second = try startGateway { $0.port = port; $0.reusePort = true; $0.statusPort = 0 }
        defer { second.shutdown() }
        #expect(second.localPort == port)

        // A poll parked through the shared port shows on the status port of the gateway that took it.
        let client = try await TestHTTPClient.connect(port: port)
        let tag = uniqueTag()
        let poll = Task { try await client.get("/poll?tags=\(tag)") }
        try await waitUntil("the poll is parked") { first.parked + second.parked == 1 }
        let holder = first.parked == 1 ? first : second
        let other = first.parked == 1 ? second : first
        let holderMetrics = try await TestHTTPClient.get(port: holder.localStatusPort!, "/metrics").body
        let otherMetrics = try await TestHTTPClient.get(port: other.localStatusPort!, "/metrics").body
        #expect(holderMetrics.contains("plexor_polls_parked 1\n"))
        #expect(otherMetrics.contains("plexor_polls_parked 0\n"))
        try SQLPublisher().insert([tag], "1")
        #expect(try Answer(await poll.value).cursors == [tag: 1])
        await client.close()
    }

    @Test func healthReadinessAndMetrics() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        #expect(try await TestHTTPClient.get(port: gateway.localPort, "/healthz").body == "{\"status\":\"ok\"}")
        let ready = try await TestHTTPClient.get(port: gateway.localPort, "/readyz")
        #expect(ready.status == .ok)
        let metrics = try await TestHTTPClient.get(port: gateway.localPort, "/metrics")
        #expect(metrics.headers.first(name: "content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
        #expect(metrics.body.contains("# TYPE plexor_polls_parked gauge\nplexor_polls_parked 0\n"))
        #expect(metrics.body.contains("plexor_listener_connected 1\n"))
    }

    @Test func readinessFailsWhileTheDatabaseIsUnreachable() async throws {
        var configuration = GatewayConfiguration(connectionString: "host=/nonexistent-plexor-socket-dir connect_timeout=1")
        configuration.port = 0
        configuration.eventLoopThreads = 1
        let gateway = try Gateway.start(configuration, logger: TestDatabase.logger)
        defer { gateway.shutdown() }
        let ready = try await TestHTTPClient.get(port: gateway.localPort, "/readyz")
        #expect(ready.status == .serviceUnavailable)
        let poll = try await TestHTTPClient.get(port: gateway.localPort, "/poll?tags=a")
        #expect(poll.status == .serviceUnavailable)
        #expect(Self.isJSONError(poll))
    }

    @Test func corsHeadersAndPreflight() async throws {
        let gateway = try startGateway { $0.corsOrigin = "https://example.org" }
        defer { gateway.shutdown() }
        let client = try await TestHTTPClient.connect(port: gateway.localPort)
        defer { Task { await client.close() } }
        let poll = try await client.get("/poll?tags=\(uniqueTag())&timeout=0")
        #expect(poll.headers.first(name: "access-control-allow-origin") == "https://example.org")
        let preflight = try await client.request(.OPTIONS, "/publish")
        #expect(preflight.status == .noContent)
        #expect(preflight.headers.first(name: "access-control-allow-methods")?.contains("POST") == true)
        #expect(preflight.headers.first(name: "access-control-allow-headers")?.contains("Authorization") == true)
    }

    @Test func connectionsBeyondTheLimitGetA503() async throws {
        let gateway = try startGateway { $0.maximumConnections = 1 }
        defer { gateway.shutdown() }
        let first = try await TestHTTPClient.connect(port: gateway.localPort)
        defer { Task { await first.close() } }
        #expect(try await first.get("/healthz").status == .ok)
        // Told at once, before it sends anything, and closed.
        let text = try rawHTTPExchange(port: gateway.localPort, "")
        let second = try RawResponse(text)
        #expect(second.status == 503)
        #expect(second.headers["retry-after"] == "1")
        #expect(second.body.hasPrefix(#"{"error":"the server is at its limit of 1 connections"#))
        try await waitUntil("the refused connection is counted closed") {
            gateway.metrics.openConnections.load(ordering: .relaxed) == 1
        }
    }

    @Test func aFullGatewaysStatusPortStillAnswers() async throws {
        let gateway = try startGateway { $0.maximumConnections = 1; $0.statusPort = 0 }
        defer { gateway.shutdown() }
        let first = try await TestHTTPClient.connect(port: gateway.localPort)
        defer { Task { await first.close() } }
        #expect(try await first.get("/healthz").status == .ok)
        #expect(try RawResponse(try rawHTTPExchange(port: gateway.localPort, "")).status == 503)
        let metrics = try await TestHTTPClient.get(port: gateway.localStatusPort!, "/metrics")
        #expect(metrics.status == .ok)
        #expect(metrics.body.contains("plexor_connections_limit 1\n"))
        // Its allowance is bounded too: past it, the status port refuses like the main one.
        try await waitUntil("only the first connection is open") { gateway.metrics.openConnections.load(ordering: .relaxed) == 1 }
        var held: [TestHTTPClient] = []
        defer { for client in held { Task { await client.close() } } }
        for _ in 0..<Gateway.statusConnections {
            let client = try await TestHTTPClient.connect(port: gateway.localStatusPort!)
            #expect(try await client.get("/healthz").status == .ok)
            held.append(client)
        }
        #expect(try RawResponse(try rawHTTPExchange(port: gateway.localStatusPort!, "")).status == 503)
    }

    @Test func publishOverHTTPReachesParkedPolls() async throws {
        let gateway = try startGateway { $0.apiToken = "s3cret" }
        defer { gateway.shutdown() }
        let a = uniqueTag(), b = uniqueTag()
        let client = try await TestHTTPClient.connect(port: gateway.localPort)
        defer { Task { await client.close() } }
        async let parked = TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(b)&timeout=30")
        try await waitUntil("the poll is parked") { gateway.parked == 1 }
        let response = try await client.request(.POST, "/publish", headers: [("Authorization", "Bearer s3cret")],
                                                body: #"{"tags":["\#(a)","\#(b)"],"data":{"text":"via HTTP"}}"#)
        #expect(response.status == .created)
        let body = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as! [String: Any]
        #expect((body["seqs"] as? [String: Int]) == [a: 1, b: 1])
        let answer = try Answer(await parked)
        #expect(answer.messages.map(\.id) == [(body["id"] as! NSNumber).int64Value])
        #expect(answer.messages.first?.dataJSON == #"{"text":"via HTTP"}"#)
    }

    @Test func publishRejectsBadTokensAndBodies() async throws {
        let gateway = try startGateway {
            $0.apiToken = "s3cret"
            $0.maximumBodyBytes = 300_000
        }
        defer { gateway.shutdown() }
        let client = try await TestHTTPClient.connect(port: gateway.localPort)
        defer { Task { await client.close() } }
        let good = #"{"tags":["x"],"data":1}"#
        let cases: [([(String, String)], String, HTTPResponseStatus)] = [
            ([], good, .unauthorized),
            ([("Authorization", "Bearer wrong")], good, .unauthorized),
            ([("Authorization", "s3cret")], good, .unauthorized),
            ([("Authorization", "Bearer s3cret")], "not json", .badRequest),
            ([("Authorization", "Bearer s3cret")], #"{"tags":["a b"],"data":1}"#, .badRequest),
            ([("Authorization", "Bearer s3cret")], #"{"tags":["a"]}"#, .badRequest),
            // Valid JSON the gateway passes on, over the database's 256 KiB data limit.
            ([("Authorization", "Bearer s3cret")], #"{"tags":["a"],"data":""# + String(repeating: "x", count: 270_000) + #""}"#, .payloadTooLarge),
        ]
        for (headers, body, status) in cases {
            let response = try await client.request(.POST, "/publish", headers: headers, body: body)
            #expect(response.status == status, "\(headers) \(body.prefix(40))")
            #expect(Self.isJSONError(response), "\(response.body)")
        }
        // Over the body limit: refused before reading it, and the connection is closed.
        let tooBig = try await client.request(.POST, "/publish", headers: [("Authorization", "Bearer s3cret")],
                                              body: String(repeating: " ", count: 300_001))
        #expect(tooBig.status == .payloadTooLarge)
        try await client.closed.get()
    }

    @Test func concurrentHTTPPublishesAllLandWithDistinctSeqs() async throws {
        let gateway = try startGateway { $0.apiToken = "t" }
        defer { gateway.shutdown() }
        let tag = uniqueTag()
        let port = gateway.localPort
        let seqs = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<50 {
                group.addTask {
                    let client = try await TestHTTPClient.connect(port: port)
                    defer { Task { await client.close() } }
                    let response = try await client.request(.POST, "/publish", headers: [("Authorization", "Bearer t")],
                                                            body: #"{"tags":["\#(tag)"],"data":\#(index)}"#)
                    let body = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as! [String: Any]
                    return (body["seqs"] as! [String: Int])[tag]!
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(seqs.sorted() == Array(1...50))
    }
}
