#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import PlexorCore
import PlexorPostgres

/// What every connection's handler shares.
final class GatewayContext: Sendable {
    let configuration: GatewayConfiguration
    let listener: Listener
    let publisher: BatchingPublisher
    let metrics: GatewayMetrics
    let logger: Logger

    init(configuration: GatewayConfiguration, listener: Listener, publisher: BatchingPublisher, metrics: GatewayMetrics, logger: Logger) {
        self.configuration = configuration
        self.listener = listener
        self.publisher = publisher
        self.metrics = metrics
        self.logger = logger
    }

    func renderMetrics() -> String {
        let status = self.listener.status
        return self.metrics.render(listener: ListenerFigures(
            connected: status.connected, ready: status.ready, tags: status.listenedTags,
            notifications: Int(status.notifications), reconnects: Int(status.reconnects)))
    }
}

/// A running gateway: event loops with their hub shards, the listener, the
/// query pool, the batching publisher, retention, and the HTTP server.
/// `plexor serve` and the tests both start it this way.
public final class Gateway: @unchecked Sendable {
    public let configuration: GatewayConfiguration
    public let metrics = GatewayMetrics()
    /// The port the server listens on (useful with port 0).
    public let localPort: Int
    /// The port of `configuration.statusPort`, if set.
    public let localStatusPort: Int?

    private let group: MultiThreadedEventLoopGroup
    private let listener: Listener
    private let pool: PostgresPool
    private let publisher: BatchingPublisher
    private let shards: [HubShard]
    private let serverChannels: [Channel]
    private let logger: Logger
    private var retentionTask: RepeatedTask?

    /// Starts everything and begins accepting connections. The schema must be migrated.
    public static func start(_ configuration: GatewayConfiguration, logger: Logger) throws -> Gateway {
        try Gateway(configuration, logger: logger)
    }

    private init(_ configuration: GatewayConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads)
        // The hub shards hold a tag for the linger; the listener only bridges moves between loops.
        let listener = Listener(connectionString: configuration.connectionString, linger: .seconds(1), logger: logger)
        let pool = PostgresPool(connectionString: configuration.connectionString, size: configuration.queryConnections)
        let metrics = self.metrics
        self.group = group
        self.listener = listener
        self.pool = pool
        self.publisher = BatchingPublisher(connectionString: configuration.connectionString, logger: logger)
        self.shards = group.makeIterator().enumerated().map { index, loop in
            HubShard(loop: loop, index: index, listener: listener, pool: pool,
                     configuration: configuration, metrics: metrics, logger: logger)
        }
        self.listener.start(sinks: self.shards)
        self.publisher.start()
        for shard in self.shards {
            try shard.loop.submit { shard.start() }.wait()
        }

        let context = GatewayContext(configuration: configuration, listener: self.listener, publisher: self.publisher,
                                     metrics: self.metrics, logger: logger)
        var servicesByLoop: [ObjectIdentifier: (HubShard, PollAnswerFraming)] = [:]
        for shard in self.shards {
            servicesByLoop[ObjectIdentifier(shard.loop)] = (shard, PollAnswerFraming(corsOrigin: configuration.corsOrigin))
        }
        let maximumConnections = configuration.maximumConnections
        let bootstrap = { (reusePort: Bool) in ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.socket(SocketOptionLevel(SOL_SOCKET), SO_REUSEPORT), value: reusePort ? 1 : 0)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            // A poll request is a few hundred bytes; every connection keeps
            // its receive buffer, so start small (it grows for big bodies).
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 256, maximum: 65536))
            .childChannelInitializer { channel in
                let open = metrics.openConnections.add(1, ordering: .relaxed).newValue
                channel.closeFuture.whenComplete { _ in metrics.openConnections.subtract(1, ordering: .relaxed) }
                let (shard, answerFraming) = servicesByLoop[ObjectIdentifier(channel.eventLoop)]!
                let handler: ChannelHandler
                if open > maximumConnections {
                    metrics.rejectedConnections.add(1, ordering: .relaxed)
                    handler = ConnectionLimitHandler(limit: maximumConnections, corsOrigin: configuration.corsOrigin)
                } else {
                    handler = GatewayHTTPHandler(shard: shard, answerFraming: answerFraming, context: context)
                }
                return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
            }
        }
        var channels: [Channel] = []
        do {
            channels.append(try bootstrap(configuration.reusePort).bind(host: configuration.host, port: configuration.port).wait())
            if let statusPort = configuration.statusPort {
                channels.append(try bootstrap(false).bind(host: configuration.host, port: statusPort).wait())
            }
        } catch {
            for channel in channels { try? channel.close().wait() }
            self.listener.shutdown()
            self.publisher.shutdown()
            self.pool.shutdown()
            try? self.group.syncShutdownGracefully()
            throw error
        }
        self.serverChannels = channels
        self.localPort = channels[0].localAddress?.port ?? configuration.port
        self.localStatusPort = configuration.statusPort == nil ? nil : channels[1].localAddress?.port
        if !configuration.retention.keepsEverything {
            let loop = self.group.next()
            self.retentionTask = loop.scheduleRepeatedAsyncTask(
                initialDelay: configuration.retentionInterval, delay: configuration.retentionInterval
            ) { [pool = self.pool, logger] _ in
                let policy = configuration.retention
                return pool.withConnection(on: loop) { try $0.trim(policy) }
                    .map { removed in
                        if let removed, removed > 0 { logger.info("retention removed messages", metadata: ["count": "\(removed)"]) }
                    }
                    .recover { error in logger.warning("retention failed", metadata: ["error": "\(error)"]) }
            }
        }
        logger.info("gateway listening", metadata: ["host": "\(configuration.host)", "port": "\(self.localPort)"])
    }

    /// Waits until the listener is connected and LISTENing (or the timeout passes).
    public func waitUntilReady(timeout: TimeAmount = .seconds(30)) -> Bool {
        let deadline = NIODeadline.now() + timeout
        while NIODeadline.now() < deadline {
            if self.listener.status.ready { return true }
            usleep(10_000)
        }
        return false
    }

    /// Graceful shutdown: stop accepting, answer every parked poll with its
    /// current cursors (clients go on elsewhere), finish publishes, then stop.
    public func shutdown() {
        for channel in self.serverChannels { try? channel.close().wait() }
        self.retentionTask?.cancel()
        for shard in self.shards {
            try? shard.loop.submit {
                shard.stop()
                shard.drain()
            }.wait()
        }
        self.publisher.shutdown()
        self.listener.shutdown()
        self.pool.shutdown()
        // Give the answers just written a moment to leave before the loops close.
        try? self.group.next().scheduleTask(in: .milliseconds(100)) {}.futureResult.wait()
        try? self.group.syncShutdownGracefully()
        self.logger.info("gateway stopped")
    }
}

/// Answers 503 to a connection over the limit as soon as it sends anything, then closes it.
final class ConnectionLimitHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let limit: Int
    private let headWriter: HTTPResponseHeadWriter
    private var answered = false

    init(limit: Int, corsOrigin: String?) {
        self.limit = limit
        self.headWriter = HTTPResponseHeadWriter(corsOrigin: corsOrigin)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.answered else { return }
        self.answered = true
        let body = "{\"error\":\"the server is at its limit of \(self.limit) connections; retry shortly\"}"
        var response = ByteBuffer()
        self.headWriter.write(.serviceUnavailable, framing: .closing, contentType: "application/json",
                              contentLength: body.utf8.count, extraHeaders: [("Retry-After", "1")], into: &response)
        response.writeString(body)
        context.writeAndFlush(self.wrapOutboundOut(response)).whenComplete { _ in context.close(promise: nil) }
    }
}
