import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A response, read whole.
public struct HTTPClientResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: String
    /// When the last byte arrived (read on the event loop, before any task resumes).
    public var receivedAt: NIODeadline
}

/// A minimal HTTP/1.1 client over one keep-alive connection, for the tests
/// and the benchmarks: one request at a time, each response read whole.
public final class HTTPClientConnection: Sendable {
    public static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    private let channel: Channel
    private let handler: ResponseCollector

    /// Connects to `host:port`, from `localAddress` when given (to spread
    /// many connections over several loopback source addresses).
    public static func connect(port: Int, host: String = "127.0.0.1", localAddress: String? = nil,
                               group: EventLoopGroup = HTTPClientConnection.group) async throws -> HTTPClientConnection {
        let handler = ResponseCollector()
        var bootstrap = ClientBootstrap(group: group)
        if let localAddress {
            bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: localAddress, port: 0))
        }
        let channel = try await bootstrap
            .channelInitializer { channel in
                channel.pipeline.addHTTPClientHandlers().flatMap { channel.pipeline.addHandler(handler) }
            }
            .connect(host: host, port: port).get()
        return HTTPClientConnection(channel: channel, handler: handler)
    }

    private init(channel: Channel, handler: ResponseCollector) {
        self.channel = channel
        self.handler = handler
    }

    /// Resolves when the server closes the connection.
    public var closed: EventLoopFuture<Void> { self.channel.closeFuture }

    public func request(_ method: HTTPMethod, _ uri: String, headers: [(String, String)] = [], body: String? = nil) async throws -> HTTPClientResponse {
        let promise = self.channel.eventLoop.makePromise(of: HTTPClientResponse.self)
        self.handler.expect(promise)
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri)
        head.headers.add(name: "Host", value: "localhost")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body { head.headers.add(name: "Content-Length", value: String(body.utf8.count)) }
        self.channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { self.channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil) }
        do {
            try await self.channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
        } catch {
            promise.fail(error)  // no answer will come: the promise must not be left unfulfilled
            throw error
        }
        return try await promise.futureResult.get()
    }

    public func get(_ uri: String) async throws -> HTTPClientResponse {
        try await self.request(.GET, uri)
    }

    public func close() async {
        try? await self.channel.close()
    }

    /// One request on a fresh connection.
    public static func get(port: Int, _ uri: String) async throws -> HTTPClientResponse {
        let client = try await HTTPClientConnection.connect(port: port)
        defer { Task { await client.close() } }
        return try await client.get(uri)
    }
}

/// `@unchecked Sendable`: its fields are behind `lock` (set by the caller, read on the channel's loop).
private final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    private let lock = NIOLock()
    private var promise: EventLoopPromise<HTTPClientResponse>?
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()

    func expect(_ promise: EventLoopPromise<HTTPClientResponse>) {
        self.lock.withLock { self.promise = promise }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.body.clear()
        case .body(var chunk):
            self.body.writeBuffer(&chunk)
        case .end:
            let response = HTTPClientResponse(status: self.head!.status, headers: self.head!.headers,
                                              body: String(buffer: self.body), receivedAt: .now())
            let promise = self.lock.withLock { () -> EventLoopPromise<HTTPClientResponse>? in
                defer { self.promise = nil }
                return self.promise
            }
            promise?.succeed(response)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let promise = self.lock.withLock { () -> EventLoopPromise<HTTPClientResponse>? in
            defer { self.promise = nil }
            return self.promise
        }
        promise?.fail(ChannelError.eof)
        context.fireChannelInactive()
    }
}
