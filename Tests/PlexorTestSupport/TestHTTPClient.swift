import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A response as the tests see it.
public struct TestResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: String
}

/// A minimal HTTP/1.1 client over one keep-alive connection, for tests.
public final class TestHTTPClient: @unchecked Sendable {
    public static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    private let channel: Channel
    private let handler: ResponseCollector

    public static func connect(port: Int, host: String = "127.0.0.1") async throws -> TestHTTPClient {
        let handler = ResponseCollector()
        let channel = try await ClientBootstrap(group: Self.group)
            .channelInitializer { channel in
                channel.pipeline.addHTTPClientHandlers().flatMap { channel.pipeline.addHandler(handler) }
            }
            .connect(host: host, port: port).get()
        return TestHTTPClient(channel: channel, handler: handler)
    }

    private init(channel: Channel, handler: ResponseCollector) {
        self.channel = channel
        self.handler = handler
    }

    /// Resolves when the server closes the connection.
    public var closed: EventLoopFuture<Void> { self.channel.closeFuture }

    public func request(_ method: HTTPMethod, _ uri: String, headers: [(String, String)] = [], body: String? = nil) async throws -> TestResponse {
        let promise = self.channel.eventLoop.makePromise(of: TestResponse.self)
        self.handler.expect(promise)
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri)
        head.headers.add(name: "Host", value: "localhost")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body { head.headers.add(name: "Content-Length", value: String(body.utf8.count)) }
        self.channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { self.channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil) }
        try await self.channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
        return try await promise.futureResult.get()
    }

    public func get(_ uri: String) async throws -> TestResponse {
        try await self.request(.GET, uri)
    }

    public func close() async {
        try? await self.channel.close()
    }

    /// One request on a fresh connection.
    public static func get(port: Int, _ uri: String) async throws -> TestResponse {
        let client = try await TestHTTPClient.connect(port: port)
        defer { Task { await client.close() } }
        return try await client.get(uri)
    }
}

private final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    private let lock = NIOLock()
    private var promise: EventLoopPromise<TestResponse>?
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()

    func expect(_ promise: EventLoopPromise<TestResponse>) {
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
            let response = TestResponse(status: self.head!.status, headers: self.head!.headers, body: String(buffer: self.body))
            let promise = self.lock.withLock { () -> EventLoopPromise<TestResponse>? in
                defer { self.promise = nil }
                return self.promise
            }
            promise?.succeed(response)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let promise = self.lock.withLock { () -> EventLoopPromise<TestResponse>? in
            defer { self.promise = nil }
            return self.promise
        }
        promise?.fail(ChannelError.eof)
        context.fireChannelInactive()
    }
}
