import Foundation
import PlexorGateway
import PlexorPostgres
import PlexorRealplexor
import PlexorTestSupport
import Testing

/// Realplexor's WAIT and IN lines on real gateways and a real PostgreSQL,
/// byte for byte as REALPLEXOR.md §2–§3 describes them.
@Suite struct RealplexorTests {
    static let head = "HTTP/1.1 200 OK\r\nConnection: close\r\nCache-Control: no-store, no-cache, must-revalidate\r\n"
        + "Expires: Mon, 26 Jul 1997 05:00:00 GMT\r\nContent-Type: text/javascript; charset=utf-8\r\n\r\n \r\n"

    /// A Realplexor id (`\w+`), unique to the test.
    static func id(_ name: String) -> String {
        "rp_\(UInt64.random(in: 0...UInt64.max) % 1_000_000_000_000)_\(name)"
    }

    /// Ids unique to the test that sort as `names` do.
    static func ids(_ names: String...) -> [String] {
        let base = Self.id("")
        return names.map { base + $0 }
    }

    static func realplexorGateway(_ database: String? = nil, _ configure: (inout GatewayConfiguration) -> Void = { _ in }) throws -> Gateway {
        try startGateway(database) {
            $0.realplexor.waitPort = 0
            $0.realplexor.inPort = 0
            configure(&$0)
        }
    }

    /// A WAIT connection whose head has come, and what came with it.
    struct Waiting: @unchecked Sendable {
        let socket: RawSocket
        let afterHead: [UInt8]
    }

    /// Sends `request` to the WAIT port; returns once the head has come (it must come before any message).
    static func wait(_ gateway: Gateway, _ request: String) async throws -> Waiting {
        let socket = try RawSocket(port: gateway.localRealplexorWaitPort!)
        socket.sendNow(Array(request.utf8))
        var received: [UInt8] = []
        let head = Array(Self.head.utf8)
        while received.count < head.count {
            let (bytes, closed) = try await socket.receive(within: 5000)
            received += bytes
            if closed || bytes.isEmpty { break }
        }
        #expect(String(decoding: received.prefix(head.count), as: UTF8.self) == Self.head)
        return Waiting(socket: socket, afterHead: Array(received.dropFirst(head.count)))
    }

    /// Everything after the head up to the gateway's close (bounded).
    static func rest(_ waiting: Waiting, seconds: Int = 20) async throws -> String {
        var received = waiting.afterHead
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            let (bytes, closed) = try await waiting.socket.receive(within: 1000)
            received += bytes
            if closed { return String(decoding: received, as: UTF8.self) }
        }
        throw TestFailure("the WAIT reply did not end within \(seconds) s: \(String(decoding: received, as: UTF8.self))")
    }

    /// One IN request, sent as the PHP API sends it: the request, a half-close, then read to the end.
    static func send(_ gateway: Gateway, identifier: String, body: String) async throws -> String {
        try await offTheTestThreads {
            let socket = try RawSocket(port: gateway.localRealplexorInPort!)
            socket.sendNow(Array(("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(body.utf8.count)\r\n"
                + "X-Realplexor: identifier=\(identifier)\r\n\r\n" + body).utf8))
            shutdown(socket.descriptor, Int32(SHUT_WR))
            var received: [UInt8] = []
            for _ in 0..<100 {
                let (bytes, closed) = socket.receive(waitingUpTo: 200)
                received += bytes
                if closed { break }
            }
            return String(decoding: received, as: UTF8.self)
        }
    }

    static let sent = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n"

    static func block(_ ids: [(String, Int)], _ data: String) -> String {
        let list = ids.map { "\"\($0.0)\": \"\($0.1)\"" }.joined(separator: ", ")
        return "  {\n    \"ids\": { \(list) },\n    \"data\": \(data)\n  }"
    }

    static func body(_ blocks: String...) -> String {
        "[\n" + blocks.joined(separator: ",\n") + "\n]"
    }

    @Test func theHeadComesAtOnceThenTheMessageThenTheClose() async throws {
        let gateway = try Self.realplexorGateway()
        defer { gateway.shutdown() }
        let ids = Self.ids("a", "b"), a = ids[0], b = ids[1]
        let socket = try await Self.wait(gateway, "GET /?identifier=\(b),\(a)&ncrnd=1733130000000 HTTP/1.1\r\nHost: rpl\r\n\r\n")
        try await waitUntil("the WAIT request is parked") { gateway.parked == 1 }
        try SQLPublisher().insert([a, b, Self.id("other")], #"{"text": "hi"}"#)
        #expect(try await Self.rest(socket) == Self.body(Self.block([(a, 1), (b, 1)], #"{"text": "hi"}"#)))
    }

    @Test func messagesNewerThanTheCursorsAnswerAtOnceEachOnceInOrder() async throws {
        let gateway = try Self.realplexorGateway()
        defer { gateway.shutdown() }
        let ids = Self.ids("a", "b"), a = ids[0], b = ids[1]
        let publisher = try SQLPublisher()
        try publisher.insert([a], "1")
        try publisher.insert([a, b], #""both""#)
        try publisher.insert([b], "[3]")
        let socket = try await Self.wait(gateway, "GET /?identifier=1:\(a),0:\(b) HTTP/1.1\r\nHost: rpl\r\n\r\n")
        #expect(try await Self.rest(socket) == Self.body(Self.block([(a, 2), (b, 1)], #""both""#), Self.block([(b, 2)], "[3]")))
        // "0" is everything still kept.
        let all = try await Self.wait(gateway, "identifier=0:\(a)\n")
        #expect(try await Self.rest(all) == Self.body(Self.block([(a, 1)], "1"), Self.block([(a, 2)], #""both""#)))
    }

    @Test func thePostFormIgnoresTheReferersIdentifier() async throws {
        let gateway = try Self.realplexorGateway()
        defer { gateway.shutdown() }
        let a = Self.id("a")
        try SQLPublisher().insert([a], #""posted""#)
        let body = "identifier=0:\(a)\n"
        let socket = try await Self.wait(gateway, "POST / HTTP/1.1\r\nHost: rpl\r\nReferer: http://site.example/?identifier=0:\(Self.id("x"))\r\n"
            + "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
        #expect(try await Self.rest(socket) == Self.body(Self.block([(a, 1)], #""posted""#)))
    }

    @Test func aCursorPlexorNeverIssuedIsFromNow() async throws {
        let gateway = try Self.realplexorGateway()
        defer { gateway.shutdown() }
        let ids = Self.ids("a", "b"), a = ids[0], b = ids[1]
        let publisher = try SQLPublisher()
        try publisher.insert([a, b], #""before""#)
        let socket = try await Self.wait(gateway, "GET /?identifier=1795682590.55441000200000:\(a),99999:\(b) HTTP/1.1\r\nHost: rpl\r\n\r\n")
        try await waitUntil("the WAIT request is parked at the head") { gateway.parked == 1 }
        try publisher.insert([b], #""after""#)
        #expect(try await Self.rest(socket) == Self.body(Self.block([(b, 2)], #""after""#)))
    }

    @Test func badRequestsCloseSilentlyOrAreRefusedNeverTruncated() async throws {
        let gateway = try Self.realplexorGateway()
        defer { gateway.shutdown() }
        let port = gateway.localRealplexorWaitPort!
        #expect(try rawHTTPExchange(port: port, "GET /?identifier=&x=1 HTTP/1.1\r\nHost: rpl\r\n\r\n") == "")
        #expect(try rawHTTPExchange(port: port, "GET /?identifier=-bad HTTP/1.1\r\nHost: rpl\r\n\r\n") == "")
        let padding = String(repeating: "p", count: WaitRequestScanner.maximumBytesBeforeMarker + 1)
        #expect(try rawHTTPExchange(port: port, padding + "identifier=abc\n") == "")
        let many = (0...100).map { "id\($0)" }.joined(separator: ",")
        let refused = try RawResponse(try rawHTTPExchange(port: port, "GET /?identifier=\(many) HTTP/1.1\r\nHost: rpl\r\n\r\n"))
        #expect(refused.status == 400)
        #expect(refused.body == "a request may listen to at most 100 ids\n")
        try await waitUntil("every refused connection is closed") { gateway.metrics.openConnections.load(ordering: .relaxed) == 0 }
    }

    @Test func withNothingToSayTheReplyIsTheHeadAloneAtTheTimeout() async throws {
        let gateway = try Self.realplexorGateway { $0.realplexor.waitTimeoutSeconds = 1 }
        defer { gateway.shutdown() }
        let socket = try await Self.wait(gateway, "GET /?identifier=\(Self.id("quiet")) HTTP/1.1\r\nHost: rpl\r\n\r\n")
        #expect(try await Self.rest(socket, seconds: 10) == "")
    }

    @Test func sendsWithTargetsAndLimitersOverIN() async throws {
        let gateway = try Self.realplexorGateway()
        defer { gateway.shutdown() }
        let room = Self.id("room"), member = Self.id("member"), stranger = Self.id("stranger")
        let everyone = try await Self.wait(gateway, "GET /?identifier=\(room) HTTP/1.1\r\nHost: rpl\r\n\r\n")
        let members = try await Self.wait(gateway, "GET /?identifier=\(room),\(member) HTTP/1.1\r\nHost: rpl\r\n\r\n")
        let strangers = try await Self.wait(gateway, "GET /?identifier=\(room),\(stranger) HTTP/1.1\r\nHost: rpl\r\n\r\n")
        try await waitUntil("three WAIT requests are parked") { gateway.parked == 3 }
        // A cursor on a target is read and not used: Plexor numbers messages as they commit.
        #expect(try await Self.send(gateway, identifier: "12345:\(room),*\(member)", body: #"{"secret": true}"#) == Self.sent)
        #expect(try await Self.send(gateway, identifier: room, body: " \"for all\"\n") == Self.sent)
        #expect(try await Self.rest(members) == Self.body(Self.block([(room, 1)], #"{"secret": true}"#)))
        // The others skip what they may not see and get the next message.
        #expect(try await Self.rest(everyone) == Self.body(Self.block([(room, 2)], #""for all""#)))
        #expect(try await Self.rest(strangers) == Self.body(Self.block([(room, 2)], #""for all""#)))
    }

    @Test func inRefusesWhatItCannotSend() async throws {
        let gateway = try Self.realplexorGateway { $0.maximumBodyBytes = 1000 }
        defer { gateway.shutdown() }
        let refusals = [
            (Self.id("a"), "{not json", "HTTP/1.0 400 Bad Request", "the data is not JSON: expected a member name at byte 1\n"),
            ("", "1", "HTTP/1.0 400 Bad Request", "nothing to send to: X-Realplexor needs identifier=id[,id…]\n"),
            ("a-b", "1", "HTTP/1.0 400 Bad Request", "a-b is not an id"),
            (Self.id("a"), String(repeating: "1", count: 1001), "HTTP/1.0 413 Content Too Large", "the body is 1001 bytes"),
        ]
        for (identifier, body, status, reason) in refusals {
            let reply = try await Self.send(gateway, identifier: identifier, body: body)
            #expect(reply.hasPrefix(status + "\r\nContent-Type: text/plain\r\nContent-Length: "), "\(reply)")
            #expect(reply.contains("\r\n\r\n" + reason), "\(reply)")
        }
    }

    @Test func statsListsTheGatewaysFigures() async throws {
        let gateway = try Self.realplexorGateway()
        defer { gateway.shutdown() }
        #expect(try await Self.send(gateway, identifier: Self.id("a"), body: "1") == Self.sent)
        let reply = try await Self.send(gateway, identifier: "", body: "stats\n")
        let body = reply.components(separatedBy: "\r\n\r\n").last!
        #expect(reply.hasPrefix("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n"))
        let figures = Dictionary(uniqueKeysWithValues: body.split(separator: "\n").map { line in
            (String(line.split(separator: " ")[0]), Int(line.split(separator: " ")[1]) ?? -1)
        })
        #expect(Set(figures.keys) == ["connections", "parked_polls", "published"])
        #expect(figures["published"] == 1 && figures["connections"]! >= 1)
    }

    @Test func aLargeAnswerReachesASlowReaderWhole() async throws {
        let gateway = try Self.realplexorGateway()
        defer { gateway.shutdown() }
        let a = Self.id("a")
        let big = "\"" + String(repeating: "x", count: 150_000) + "\""
        let publisher = try SQLPublisher()
        for _ in 0..<3 { try publisher.insert([a], big) }
        // A client with a 4 KiB receive buffer that reads only now and then.
        let socket = try RawSocket(port: gateway.localRealplexorWaitPort!, bufferBytes: 4096)
        socket.sendNow(Array("GET /?identifier=0:\(a) HTTP/1.1\r\nHost: rpl\r\n\r\n".utf8))
        var received: [UInt8] = []
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))  // the slow reader's pace, not synchronisation
            let (bytes, closed) = try await socket.receive(within: 100)
            received += bytes
            if closed { break }
        }
        #expect(String(decoding: received, as: UTF8.self) == Self.head + Self.body(
            Self.block([(a, 1)], big), Self.block([(a, 2)], big), Self.block([(a, 3)], big)))
    }

    @Test func onlineAndWatchReadThePresenceOfEveryGateway() async throws {
        let database = try TestDatabase.makeFreshDatabase()
        let presence: (inout GatewayConfiguration) -> Void = {
            $0.presence.enabled = true
            $0.presence.interval = .milliseconds(250)
            $0.presence.graceSeconds = 1
        }
        let first = try Self.realplexorGateway(database, presence)
        defer { first.shutdown() }
        let second = try Self.realplexorGateway(database, presence)
        defer { second.shutdown() }
        let start = try await Self.send(first, identifier: "", body: "watch 0\n")
        let position = try #require(start.split(separator: "\r\n\r\n").last.flatMap { $0.split(separator: " ").last?.split(separator: ":").first })
        #expect(start.hasSuffix("FAKE \(position):FAKE\n"))
        let a = "rpa_" + Self.id("x"), b = "rpb_" + Self.id("y")
        let one = try await Self.wait(first, "GET /?identifier=\(a) HTTP/1.1\r\nHost: rpl\r\n\r\n")
        let two = try await Self.wait(second, "GET /?identifier=\(a),\(b) HTTP/1.1\r\nHost: rpl\r\n\r\n")
        try await waitUntil("both are online, one with two connections") {
            try await Self.send(second, identifier: "", body: "online rpa_ rpb_\n").hasSuffix("\r\n\r\n\(a) 2\n\(b) 1\n")
        }
        #expect(try await Self.send(first, identifier: "", body: "online rpb_\n").hasSuffix("\r\n\r\n\(b) 1\n"))
        // From the position watch 0 gave, the very next event is reported.
        let events = try await Self.send(first, identifier: "", body: "watch \(position) rpa_ rpb_\n")
        let lines = events.components(separatedBy: "\r\n\r\n").last!.split(separator: "\n").map(String.init)
        #expect(Set(lines.compactMap { $0.split(separator: ":").last.map(String.init) }) == [a, b])
        #expect(lines.count == 2 && lines.allSatisfy { $0.hasPrefix("online ") })
        withExtendedLifetime((one, two)) {}
    }

    @Test func usersLogInAndAreConfinedToTheirIds() async throws {
        let users = try RealplexorUsers(contents: "site:\(Self.secretHash)\n")
        let gateway = try Self.realplexorGateway { $0.realplexor.users = users }
        defer { gateway.shutdown() }
        let own = "site_" + Self.id("own")
        let socket = try await Self.wait(gateway, "GET /?identifier=\(own) HTTP/1.1\r\nHost: rpl\r\n\r\n")
        try await waitUntil("the WAIT request is parked") { gateway.parked == 1 }
        let forbidden = "HTTP/1.0 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: "
        #expect(try await Self.send(gateway, identifier: own, body: "1").hasPrefix(forbidden), "anonymous is not let in")
        #expect(try await Self.send(gateway, identifier: "site:wrong@\(own)", body: "1").hasSuffix("\r\n\r\nwrong login or password\n"))
        #expect(try await Self.send(gateway, identifier: "site:secret@\(Self.id("other"))", body: "1").hasPrefix(forbidden))
        #expect(try await Self.send(gateway, identifier: "site:secret@\(own),*\(Self.id("other"))", body: "1").hasPrefix(forbidden))
        #expect(try await Self.send(gateway, identifier: "site:secret@\(own)", body: #""mine""#) == Self.sent)
        #expect(try await Self.rest(socket) == Self.body(Self.block([(own, 1)], #""mine""#)))
    }

    /// REALPLEXOR.md §4's PHP API, in php-cli: send, online, online with counters, watch, and a login.
    @Test func aPHPClientOfTheINLineSendsListsWatchesAndLogsIn() async throws {
        let database = try TestDatabase.makeFreshDatabase()
        let users = try RealplexorUsers(contents: ":\nsite:\(Self.secretHash)\n")
        let gateway = try Self.realplexorGateway(database) {
            $0.realplexor.users = users
            $0.presence.enabled = true
            $0.presence.interval = .milliseconds(250)
        }
        defer { gateway.shutdown() }
        let namespace = Self.id("ns") + "_"
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let arguments = [root.appendingPathComponent("Tests/Realplexor/in_protocol.php").path,
                         String(gateway.localRealplexorInPort!), String(gateway.localRealplexorWaitPort!), namespace]
        let output = try await offTheTestThreads {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["php"] + arguments
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let text = output.readToEnd()
            process.waitUntilExit()
            return text
        }
        let result = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], "\(output)")
        let start = try #require((result["watch0"] as? [[String]])?.first)
        #expect(start[0] == "FAKE" && start[2] == "FAKE")
        #expect(result["online_counters"] as? [String: Int] == ["lobby": 1])
        #expect(result["online"] as? [String] == ["lobby"])
        let events = try #require(result["watch"] as? [[String]])
        #expect(events.map { [$0[0], $0[2]] } == [["online", "lobby"]])
        #expect(Int(events[0][1])! > Int(start[1])!)
        #expect(result["wrong_password"] as? String == "status 403: wrong login or password")
        // What the sends left: each message where it was sent, the limited one only for listeners of vip.
        let everyone = try await Self.wait(gateway, "identifier=0:\(namespace)room\n")
        #expect(try await Self.rest(everyone) == Self.body(Self.block([(namespace + "room", 1)], #"{"text":"hello"}"#)))
        let vips = try await Self.wait(gateway, "identifier=0:\(namespace)room,\(namespace)vip\n")
        #expect(try await Self.rest(vips) == Self.body(Self.block([(namespace + "room", 1)], #"{"text":"hello"}"#),
                                                        Self.block([(namespace + "room", 2)], #""for vips""#)))
        let own = try await Self.wait(gateway, "identifier=0:site_\(namespace)private\n")
        #expect(try await Self.rest(own) == Self.body(Self.block([("site_" + namespace + "private", 1)], "42")))
    }

    /// "secret", hashed with `openssl passwd -6 -salt saltsalt secret`.
    static let secretHash = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1"

    @Test func aWaitClientEchoingItsCursorsLosesNothingAcrossAGatewayRestart() async throws {
        let port = try await offTheTestThreads { try RawSocket.freePort() }
        var gateway = try Self.realplexorGateway { $0.realplexor.waitPort = port }
        let a = Self.id("a")
        let publisher = try SQLPublisher()
        let client = Task { try await Self.follow(a, port: port, until: 60) }
        for index in 1...30 { try publisher.insert([a], String(index)) }
        try await waitUntil("the client caught up and waits") { gateway.parked == 1 && gateway.metrics.messagesDelivered.load(ordering: .relaxed) >= 1 }
        gateway.shutdown()
        for index in 31...45 { try publisher.insert([a], String(index)) }
        gateway = try Self.realplexorGateway { $0.realplexor.waitPort = port }
        defer { gateway.shutdown() }
        for index in 46...60 { try publisher.insert([a], String(index)) }
        #expect(try await client.value == Array(1...60))
    }

    /// A WAIT client as Realplexor's JS is: one request after another, each
    /// with the cursor of the last block received; retries a refused connection.
    static func follow(_ id: String, port: Int, until count: Int) async throws -> [Int] {
        var cursor = 0
        var received: [Int] = []
        let deadline = ContinuousClock.now + .seconds(60)
        while received.count < count {
            guard ContinuousClock.now < deadline else { throw TestFailure("received \(received)") }
            let request = "GET /?identifier=\(cursor):\(id) HTTP/1.1\r\nHost: rpl\r\n\r\n"
            guard let text = try? await offTheTestThreads({ try rawHTTPExchange(port: port, request, timeout: 30) }),
                  let start = text.range(of: "\r\n\r\n \r\n")?.upperBound else {
                try await Task.sleep(for: .milliseconds(20))  // a client's retry delay, not synchronisation
                continue
            }
            let body = text[start...]
            guard !body.isEmpty else { continue }
            let blocks = try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [[String: Any]]
            for block in blocks {
                received.append(block["data"] as! Int)
                cursor = Int((block["ids"] as! [String: String])[id]!)!
            }
        }
        return received
    }

    @Test func theWaitPortServesTheClientTheLoaderAndPlexorsOwnPoll() async throws {
        let gateway = try Self.realplexorGateway()
        defer { gateway.shutdown() }
        let port = gateway.localRealplexorWaitPort!
        let script = try RawResponse(try rawHTTPExchange(port: port, "GET /?identifier=SCRIPT&r=1 HTTP/1.1\r\nHost: rpl\r\n\r\n"))
        #expect(script.status == 200)
        #expect(script.headers["content-type"] == "text/javascript; charset=utf-8")
        #expect(script.body.hasPrefix("(function () {\n\"use strict\";\n"))
        #expect(script.body.contains("globalThis.Dklab_Realplexor = Dklab_Realplexor;"))
        #expect(!script.body.contains("\nexport ") && !script.body.contains("\nimport "))
        let loader = try RawResponse(try rawHTTPExchange(port: port, "GET /?identifier=IFRAME HTTP/1.1\r\nHost: rpl\r\n\r\n"))
        #expect(loader.headers["content-type"] == "text/html; charset=utf-8")
        #expect(loader.body.contains(#"<script src="?identifier=SCRIPT"></script>"#))
        let a = Self.id("a")
        try SQLPublisher().insert([a], "7")
        let exchange = try rawHTTPExchange(port: port, "GET /poll?tags=\(a)@0&timeout=0 HTTP/1.1\r\nHost: rpl\r\nConnection: close\r\n\r\n")
        let poll = try RawResponse(exchange)
        #expect(poll.status == 200, "\(exchange)")
        #expect(poll.headers["access-control-allow-origin"] == "*")
        #expect(poll.body.contains("\"cursors\":{\"\(a)\":1}"), "\(poll.body)")
        let preflight = try RawResponse(try rawHTTPExchange(port: port, "OPTIONS /poll?tags=\(a) HTTP/1.1\r\nHost: rpl\r\n"
            + "Origin: http://site.example\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: authorization\r\n"
            + "Connection: close\r\n\r\n"))
        #expect(preflight.status == 204)
        #expect(preflight.headers["access-control-allow-headers"]?.contains("Authorization") == true)
    }
}
