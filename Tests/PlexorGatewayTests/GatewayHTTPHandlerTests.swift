import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import PlexorAccess
import PlexorCore
import PlexorPostgres
import PlexorTestSupport
import PlexorTransport
import Testing
@testable import PlexorGateway

/// The socket side of one connection, kept in memory: what the handler
/// wrote, response by response, and whether it closed.
final class RecordedConnection: ResponseSink {
    private(set) var isOpen = true
    private var written: [ByteBuffer] = []
    var handler: ConnectionHandler?
    private(set) var currentSecond: UInt64 = 0
    /// Whether the client reads: set false, the handler should write nothing more.
    var isWritable = true {
        didSet { if self.isWritable && !oldValue { self.handler?.becameWritable() } }
    }

    /// Time passes, as the loop's once-a-second check sees it.
    func advance(toSecond second: UInt64) {
        self.currentSecond = second
        self.handler?.checkTimeouts(now: second)
    }

    func write(_ bytes: ByteBuffer) {
        if self.isOpen { self.written.append(bytes) }
    }

    /// A head and its body are one write, as the client reads them.
    func write(_ head: ByteBuffer, _ body: ByteBuffer) {
        var joined = head
        joined.writeImmutableBuffer(body)
        self.write(joined)
    }

    func closeAfterWriting() {
        self.close()
    }

    func close() {
        guard self.isOpen else { return }
        self.isOpen = false
        self.handler?.connectionClosed()
        self.handler = nil
    }

    /// Bytes as the client sends them.
    func writeInbound(_ text: String) {
        self.handler?.received(ByteBuffer(string: text))
    }

    /// The oldest write not yet read.
    func readOutbound() -> ByteBuffer? {
        self.written.isEmpty ? nil : self.written.removeFirst()
    }
}

/// The handler alone on an in-memory connection: routing and errors, no database.
@Suite struct GatewayHTTPHandlerTests {
    let connection = RecordedConnection()
    let shard: HubShard
    let metrics = GatewayMetrics()
    let signer = TokenSigner(notificationKey: Array(repeating: 7, count: 32))!

    init() throws {
        var configuration = GatewayConfiguration(connectionString: "host=/nonexistent")
        configuration.maximumBodyBytes = 100
        configuration.apiToken = "t"
        configuration.headerTimeoutSeconds = 10
        configuration.idleTimeoutSeconds = 60
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        // A listener that never started: it is not connected, so polls get a 503.
        let listener = Listener(connectionString: configuration.connectionString, logger: logger)
        let loop = EmbeddedEventLoop()
        self.shard = HubShard(loop: loop, index: 0, listener: listener,
                             pool: PostgresPool(connectionString: configuration.connectionString, size: 1), presence: nil,
                             configuration: configuration, metrics: self.metrics, logger: logger)
        let pool = PostgresPool(connectionString: configuration.connectionString, size: 1)
        let access = AccessControl(privateTags: PrivateTags(configured: ["secret:"]), key: { Array(repeating: 7, count: 32) })
        let chat = ChatAPI(pool: pool, access: access, metrics: self.metrics)
        let context = GatewayContext(configuration: configuration, listener: listener,
                                     publisher: BatchingPublisher(connectionString: configuration.connectionString, logger: logger),
                                     presence: nil, presenceAPI: nil, access: access, chat: chat,
                                     widget: WidgetAPI(pool: pool, access: access, chat: chat, secureCookies: false, oidc: nil),
                                     metrics: self.metrics, logger: logger)
        self.connection.handler = GatewayHTTPHandler(connection: self.connection, shard: self.shard,
                                                  answerHeads: OKResponseHeads(corsOrigin: "*"), context: context)
    }

    /// Sends one request and reads the response it got.
    func send(_ method: String, _ target: String, version: String = "HTTP/1.1",
              headers: [(String, String)] = [], body: String? = nil) throws -> RawResponse {
        var request = "\(method) \(target) \(version)\r\nHost: x\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        if let body { request += "Content-Length: \(body.utf8.count)\r\n" }
        request += "\r\n" + (body ?? "")
        self.connection.writeInbound(request)
        return try self.readResponse()
    }

    func readResponse() throws -> RawResponse {
        var bytes = ""
        while let buffer = self.connection.readOutbound() { bytes += String(buffer: buffer) }
        return try RawResponse(bytes)
    }

    @Test func aMalformedPollIsA400WithTheReason() throws {
        let response = try self.send("GET", "/poll?tags=a@1x")
        #expect(response.status == 400)
        #expect(response.headers["content-type"] == "application/json")
        #expect(response.headers["access-control-allow-origin"] == "*")
        #expect(response.body == #"{"error":"cursor \"1x\" of tag a is not a whole number from 0 to 9223372036854775807"}"#)
        #expect(self.connection.isOpen)
    }

    @Test func unknownPathsAndMethods() throws {
        #expect(try self.send("GET", "/nothing-here").status == 404)
        let response = try self.send("PUT", "/poll?tags=a")
        #expect(response.status == 405)
        #expect(response.headers["allow"] == "GET, OPTIONS")
        #expect(response.body == #"{"error":"method PUT is not allowed here; use GET"}"#)
    }

    @Test func aPollWhileTheListenerIsDownIsA503() throws {
        let response = try self.send("GET", "/poll?tags=a")
        #expect(response.status == 503)
        #expect(response.body.contains("PostgreSQL is unavailable"))
        #expect(self.metrics.pollsFailed.load(ordering: .relaxed) == 1)
    }

    @Test func aPrivateTagIsRefusedWithoutATokenThatCoversIt() throws {
        let far = Int64(Date().timeIntervalSince1970) + 600
        let covering = AccessGrant(expires: far, entries: ["secret:a"]).token(signer: self.signer)
        let otherTag = AccessGrant(expires: far, entries: ["secret:b"]).token(signer: self.signer)
        let expired = AccessGrant(expires: far - 1200, entries: ["secret:a"]).token(signer: self.signer)
        let foreign = AccessGrant(expires: far, entries: ["secret:a"]).token(signer: TokenSigner(notificationKey: [1, 2, 3])!)
        for authorization in [nil, "Bearer " + otherTag, "Bearer " + expired, "Bearer " + foreign, "Bearer junk"] {
            let response = try self.send("GET", "/poll?tags=public,secret:a", headers: authorization.map { [("Authorization", $0)] } ?? [])
            #expect(response.status == 403, "\(authorization ?? "no token")")
            #expect(response.body.contains("secret:a is a private tag"))
        }
        // Past the check, the poll goes on (to a listener that is down here).
        let response = try self.send("GET", "/poll?tags=public,secret:a", headers: [("Authorization", "Bearer " + covering)])
        #expect(response.status == 503)
        #expect(self.metrics.pollsForbidden.load(ordering: .relaxed) == 5)
    }

    @Test func aPersonsPresenceTagNeedsTheirOwnSession() throws {
        let far = Int64(Date().timeIntervalSince1970) + 600
        let session = SessionToken(expires: far, site: "example", person: 17, guest: true).token(signer: self.signer)
        for tag in ["chat-presence:example:18", "chat-presence:other:17", "chat-presence:example-2:17"] {
            #expect(try self.send("GET", "/poll?tags=\(tag)", headers: [("Authorization", "Bearer " + session)]).status == 403, "\(tag)")
        }
        #expect(try self.send("GET", "/poll?tags=chat-presence:example:17").status == 403)
        for tag in ["chat-presence:example:17", "chat-presence:example/help:17"] {
            #expect(try self.send("GET", "/poll?tags=\(tag)", headers: [("Authorization", "Bearer " + session)]).status == 503, "\(tag)")
        }
    }

    @Test func aDrainingGatewayRefusesNewPolls() throws {
        self.shard.drain()
        let response = try self.send("GET", "/poll?tags=a")
        #expect(response.status == 503)
        #expect(response.body.contains("shutting down"))
    }

    @Test func aDeclaredBodyOverTheLimitIsA413AndCloses() throws {
        self.connection.writeInbound("POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n")
        let response = try self.readResponse()
        #expect(response.status == 413)
        #expect(response.headers["connection"] == "close")
        self.connection.writeInbound(String(repeating: "x", count: 101))
        #expect(self.connection.readOutbound() == nil)
        #expect(!self.connection.isOpen)
    }

    @Test func aChunkedBodyOverTheLimitIsA413() throws {
        self.connection.writeInbound("POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        self.connection.writeInbound("3c\r\n" + String(repeating: "x", count: 60) + "\r\n")
        #expect(self.connection.readOutbound() == nil)
        self.connection.writeInbound("3c\r\n")
        #expect(try self.readResponse().status == 413)
    }

    @Test func publishChecksTheTokenBeforeTheBody() throws {
        let refused = try self.send("POST", "/publish", headers: [("Authorization", "Bearer nope")], body: "{")
        #expect(refused.status == 401)
        #expect(refused.headers["www-authenticate"] == "Bearer")
        let bad = try self.send("POST", "/publish", headers: [("Authorization", "Bearer t")], body: "{")
        #expect(bad.status == 400)
        #expect(bad.body.contains("not a JSON object"))
    }

    @Test func preflightAndHTTP10Close() throws {
        let preflight = try self.send("OPTIONS", "/poll")
        #expect(preflight.status == 204)
        #expect(preflight.headers["content-length"] == nil)
        #expect(preflight.headers["access-control-allow-methods"] == "GET, POST, OPTIONS")
        let response = try self.send("GET", "/healthz", version: "HTTP/1.0")
        #expect(response.status == 200)
        #expect(response.headers["connection"] == "close")
        #expect(!self.connection.isOpen)
    }

    @Test func http10KeepAliveIsHonoured() throws {
        let response = try self.send("GET", "/healthz", version: "HTTP/1.0", headers: [("Connection", "keep-alive")])
        #expect(response.headers["connection"] == "keep-alive")
        #expect(self.connection.isOpen)
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        self.connection.writeInbound("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        var statuses: [Int] = []
        while let buffer = self.connection.readOutbound() {
            statuses.append(try RawResponse(String(buffer: buffer)).status)
        }
        #expect(statuses == [200, 404, 200])
    }

    @Test func aHeadResponseHasNoBodySoThePipelineStaysInFrame() throws {
        self.connection.writeInbound("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nHEAD /poll HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        let head = try #require(self.connection.readOutbound()).readableBytesView
        #expect(String(decoding: head, as: UTF8.self).hasSuffix("Content-Length: 15\r\nCache-Control: no-store\r\nAccess-Control-Allow-Origin: *\r\n\r\n"))
        let refused = try #require(self.connection.readOutbound())
        #expect(String(buffer: refused).hasPrefix("HTTP/1.1 405 "))
        #expect(String(buffer: refused).hasSuffix("\r\n\r\n"))
        let get = try RawResponse(String(buffer: try #require(self.connection.readOutbound())))
        #expect(get.status == 200)
        #expect(get.body == #"{"status":"ok"}"#)
    }

    @Test(arguments: ["Bearer s3cret", "bearer s3cret", "BEARER  s3cret"])
    func theBearerSchemeIsCaseInsensitive(_ authorization: String) {
        #expect(bearerToken(authorization) == "s3cret")
    }

    @Test(arguments: ["Bearer", "Bearer ", "Basic s3cret", "Bearers3cret", ""])
    func otherAuthorizationsCarryNoBearerToken(_ authorization: String) {
        #expect(bearerToken(authorization) == nil)
    }

    @Test func aRequestNotWholeWithinTheHeaderTimeoutIsA408AndCloses() throws {
        self.connection.advance(toSecond: 30)
        self.connection.writeInbound("GET /healthz HTTP/1.1\r\nHo")
        self.connection.advance(toSecond: 39)
        self.connection.writeInbound("st: x\r\n")  // a byte now and then does not extend it
        self.connection.advance(toSecond: 39)
        #expect(self.connection.readOutbound() == nil)
        self.connection.advance(toSecond: 40)
        let response = try self.readResponse()
        #expect(response.status == 408)
        #expect(response.body == #"{"error":"the request did not arrive whole within 10 seconds"}"#)
        #expect(!self.connection.isOpen)
        #expect(self.metrics.timedOutRequests.load(ordering: .relaxed) == 1)
    }

    @Test func anIdleKeepAliveConnectionIsClosedAfterTheIdleTimeout() throws {
        self.connection.advance(toSecond: 5)
        #expect(try self.send("GET", "/healthz").status == 200)
        self.connection.advance(toSecond: 64)
        #expect(self.connection.isOpen)
        self.connection.advance(toSecond: 65)
        #expect(!self.connection.isOpen)
        #expect(self.connection.readOutbound() == nil)
        #expect(self.metrics.timedOutIdle.load(ordering: .relaxed) == 1)
    }

    @Test func aConnectionThatNeverSendsIsClosedAfterTheIdleTimeout() {
        // Accepted at second 0.
        self.connection.advance(toSecond: 59)
        #expect(self.connection.isOpen)
        self.connection.advance(toSecond: 60)
        #expect(!self.connection.isOpen)
    }

    @Test func nothingMoreIsAnsweredWhileTheClientDoesNotRead() throws {
        self.connection.isWritable = false
        self.connection.writeInbound("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(self.connection.readOutbound() == nil)
        self.connection.isWritable = true
        var statuses: [Int] = []
        while let buffer = self.connection.readOutbound() {
            statuses.append(try RawResponse(String(buffer: buffer)).status)
        }
        #expect(statuses == [200, 404])
    }

    @Test func unparseableHTTPIsAJSON400AndCloses() throws {
        self.connection.writeInbound("GET /poll HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n")
        let response = try self.readResponse()
        #expect(response.status == 400)
        #expect(response.body == #"{"error":"malformed header line"}"#)
        #expect(!self.connection.isOpen)
    }

    @Test func expectContinueGetsA100BeforeTheBody() throws {
        self.connection.writeInbound("POST /publish HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\nAuthorization: Bearer nope\r\n\r\n")
        #expect(self.connection.readOutbound().map { String(buffer: $0) } == "HTTP/1.1 100 Continue\r\n\r\n")
        self.connection.writeInbound("{")
        #expect(try self.readResponse().status == 401)
    }
}
