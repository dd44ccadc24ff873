import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import PlexorCore
import PlexorPostgres
import PlexorTestSupport
import Testing
@testable import PlexorHTTP

/// The handler alone on an EmbeddedChannel: routing and errors, no database.
@Suite struct GatewayHTTPHandlerTests {
    let channel: EmbeddedChannel
    let shard: HubShard
    let metrics = GatewayMetrics()

    init() throws {
        var configuration = GatewayConfiguration(connectionString: "host=/nonexistent")
        configuration.maximumBodyBytes = 100
        configuration.publishToken = "t"
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        // A listener that never started: it is not connected, so polls get a 503.
        let listener = Listener(connectionString: configuration.connectionString, logger: logger)
        let loop = EmbeddedEventLoop()
        self.shard = HubShard(loop: loop, index: 0, listener: listener,
                             pool: PostgresPool(connectionString: configuration.connectionString, size: 1),
                             configuration: configuration, metrics: self.metrics, logger: logger)
        let context = GatewayContext(configuration: configuration, listener: listener,
                                     publisher: BatchingPublisher(connectionString: configuration.connectionString, logger: logger),
                                     metrics: self.metrics, logger: logger)
        self.channel = EmbeddedChannel(handler: GatewayHTTPHandler(shard: self.shard, context: context), loop: loop)
        try self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
    }

    func send(_ method: HTTPMethod, _ uri: String, version: HTTPVersion = .http1_1,
              headers: [(String, String)] = [], body: String? = nil) throws -> (HTTPResponseHead, String) {
        var head = HTTPRequestHead(version: version, method: method, uri: uri)
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        try self.channel.writeInbound(HTTPServerRequestPart.head(head))
        if let body { try self.channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: body))) }
        try self.channel.writeInbound(HTTPServerRequestPart.end(nil))
        return try self.readResponse()
    }

    func readResponse() throws -> (HTTPResponseHead, String) {
        guard case .head(let head)? = try self.channel.readOutbound(as: HTTPServerResponsePart.self) else {
            throw TestFailure("no response head")
        }
        var body = ""
        while let part = try self.channel.readOutbound(as: HTTPServerResponsePart.self) {
            switch part {
            case .body(.byteBuffer(let buffer)): body += String(buffer: buffer)
            case .end: return (head, body)
            default: throw TestFailure("unexpected \(part)")
            }
        }
        throw TestFailure("no response end")
    }

    @Test func aMalformedPollIsA400WithTheReason() throws {
        let (head, body) = try self.send(.GET, "/poll?tags=a@1x")
        #expect(head.status == .badRequest)
        #expect(head.headers.first(name: "content-type") == "application/json")
        #expect(head.headers.first(name: "access-control-allow-origin") == "*")
        #expect(body == #"{"error":"cursor \"1x\" of tag a is not a whole number from 0 to 9223372036854775807"}"#)
        #expect(self.channel.isActive)
    }

    @Test func unknownPathsAndMethods() throws {
        #expect(try self.send(.GET, "/").0.status == .notFound)
        let (head, body) = try self.send(.PUT, "/poll?tags=a")
        #expect(head.status == .methodNotAllowed)
        #expect(head.headers.first(name: "allow") == "GET, OPTIONS")
        #expect(body == #"{"error":"method PUT is not allowed here; use GET"}"#)
    }

    @Test func aPollWhileTheListenerIsDownIsA503() throws {
        let (head, body) = try self.send(.GET, "/poll?tags=a")
        #expect(head.status == .serviceUnavailable)
        #expect(body.contains("PostgreSQL is unavailable"))
        #expect(self.metrics.pollsFailed.load(ordering: .relaxed) == 1)
    }

    @Test func aDrainingGatewayRefusesNewPolls() throws {
        self.shard.drain()
        let (head, body) = try self.send(.GET, "/poll?tags=a")
        #expect(head.status == .serviceUnavailable)
        #expect(body.contains("shutting down"))
    }

    @Test func aDeclaredBodyOverTheLimitIsA413AndCloses() throws {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/publish")
        head.headers.add(name: "Content-Length", value: "101")
        try self.channel.writeInbound(HTTPServerRequestPart.head(head))
        let (response, _) = try self.readResponse()
        #expect(response.status == .payloadTooLarge)
        #expect(response.headers.first(name: "connection") == "close")
        try self.channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: String(repeating: "x", count: 101))))
        try self.channel.writeInbound(HTTPServerRequestPart.end(nil))
        #expect(try self.channel.readOutbound(as: HTTPServerResponsePart.self) == nil)
        #expect(!self.channel.isActive)
    }

    @Test func aStreamedBodyOverTheLimitIsA413() throws {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/publish")
        head.headers.add(name: "Transfer-Encoding", value: "chunked")
        try self.channel.writeInbound(HTTPServerRequestPart.head(head))
        try self.channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: String(repeating: "x", count: 60))))
        try self.channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: String(repeating: "x", count: 60))))
        #expect(try self.readResponse().0.status == .payloadTooLarge)
    }

    @Test func publishChecksTheTokenBeforeTheBody() throws {
        let (head, _) = try self.send(.POST, "/publish", headers: [("Authorization", "Bearer nope")], body: "{")
        #expect(head.status == .unauthorized)
        #expect(head.headers.first(name: "www-authenticate") == "Bearer")
        let (bad, body) = try self.send(.POST, "/publish", headers: [("Authorization", "Bearer t")], body: "{")
        #expect(bad.status == .badRequest)
        #expect(body.contains("not a JSON object"))
    }

    @Test func preflightAndHTTP10Close() throws {
        let (preflight, _) = try self.send(.OPTIONS, "/poll")
        #expect(preflight.status == .noContent)
        let (head, _) = try self.send(.GET, "/healthz", version: .http1_0)
        #expect(head.status == .ok)
        #expect(head.headers.first(name: "connection") == "close")
    }
}
