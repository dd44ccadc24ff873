#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOHTTP1
import PlexorCore
import PlexorPostgres
import PlexorTransport

/// What every connection's handler shares.
final class GatewayContext: Sendable {
    let configuration: GatewayConfiguration
    let listener: Listener
    let publisher: BatchingPublisher
    let metrics: GatewayMetrics
    let logger: Logger
    let headWriter: HTTPResponseHeadWriter

    init(configuration: GatewayConfiguration, listener: Listener, publisher: BatchingPublisher, metrics: GatewayMetrics, logger: Logger) {
        self.configuration = configuration
        self.headWriter = HTTPResponseHeadWriter(corsOrigin: configuration.corsOrigin)
        self.listener = listener
        self.publisher = publisher
        self.metrics = metrics
        self.logger = logger
    }

    func renderMetrics() -> String {
        let status = self.listener.status
        return self.metrics.render(listener: ListenerFigures(
            connected: status.connected, ready: status.ready, tags: status.listenedTags,
            notifications: Int(status.notifications), dropped: status.dropped, reconnects: Int(status.reconnects)))
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

    private let group: EpollEventLoopGroup
    private let listener: Listener
    private let pool: PostgresPool
    private let publisher: BatchingPublisher
    private let shards: [HubShard]
    private let sockets: [ListeningSocket]
    private let acceptors: [Acceptor]
    private let logger: Logger
    private var retentionTask: RepeatedTask?
    private var timeoutChecks: [RepeatedTask] = []

    /// Starts everything and begins accepting connections. The schema must be migrated.
    public static func start(_ configuration: GatewayConfiguration, logger: Logger) throws -> Gateway {
        try Gateway(configuration, logger: logger)
    }

    private init(_ configuration: GatewayConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        let group = try EpollEventLoopGroup(numberOfThreads: configuration.eventLoopThreads)
        // The hub shards hold a tag for the linger; the listener only bridges moves between loops.
        let listener = Listener(connectionString: configuration.connectionString, linger: .seconds(1), logger: logger)
        let pool = PostgresPool(connectionString: configuration.connectionString, size: configuration.queryConnections)
        let metrics = self.metrics
        self.group = group
        self.listener = listener
        self.pool = pool
        self.publisher = BatchingPublisher(connectionString: configuration.connectionString, logger: logger)
        self.shards = group.loops.enumerated().map { index, loop in
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
        let maximumConnections = Self.connectionLimit(configuration, logger: logger)
        var sockets: [ListeningSocket] = []
        var acceptors: [Acceptor] = []
        do {
            sockets.append(try ListeningSocket.bind(host: configuration.host, port: configuration.port, reusePort: configuration.reusePort))
            if let statusPort = configuration.statusPort {
                sockets.append(try ListeningSocket.bind(host: configuration.host, port: statusPort, reusePort: false))
            }
            let targets = self.shards.map { shard in
                let answerFraming = OKResponseHeads(corsOrigin: configuration.corsOrigin)
                return ConnectionDispatcher.Target(loop: group.loops[shard.index]) { connection in
                    // Counted here, uncounted by the handler when the connection closes.
                    let open = metrics.openConnections.add(1, ordering: .relaxed).newValue
                    if open > maximumConnections {
                        metrics.rejectedConnections.add(1, ordering: .relaxed)
                        return ConnectionLimitHandler(connection: connection, limit: maximumConnections, context: context)
                    }
                    return GatewayHTTPHandler(connection: connection, shard: shard, answerFraming: answerFraming, context: context)
                }
            }
            let dispatcher = ConnectionDispatcher(targets)
            for loop in group.loops {
                for socket in sockets {
                    let acceptor = Acceptor(socket: socket, loop: loop, logger: logger, dispatcher: dispatcher)
                    try loop.submit { try acceptor.start() }.wait()
                    acceptors.append(acceptor)
                }
            }
        } catch {
            Self.stopAccepting(acceptors, sockets)
            self.listener.shutdown()
            self.publisher.shutdown()
            self.pool.shutdown()
            try? self.group.syncShutdownGracefully()
            throw error
        }
        self.sockets = sockets
        self.acceptors = acceptors
        self.timeoutChecks = group.loops.map { loop in
            loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in loop.checkConnectionTimeouts() }
        }
        self.localPort = sockets[0].port
        self.localStatusPort = configuration.statusPort == nil ? nil : sockets[1].port
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

    /// Descriptors kept for what is not a client connection: the database
    /// connections, listening sockets, epoll and wake-up descriptors, and
    /// the connections accepted beyond the limit only to be told so.
    static let reservedDescriptors = 64

    /// `--max-connections`, lowered to fit the process's descriptor limit
    /// (raised first to its hard limit), so that a client beyond the limit
    /// gets its 503 rather than waiting in the accept queue.
    private static func connectionLimit(_ configuration: GatewayConfiguration, logger: Logger) -> Int {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return configuration.maximumConnections }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        let reserved = Self.reservedDescriptors + configuration.queryConnections + 2 * configuration.eventLoopThreads
        let fitting = max(1, min(configuration.maximumConnections, Int(clamping: limit.rlim_cur) - reserved))
        if fitting < configuration.maximumConnections {
            logger.warning("lowering --max-connections to fit the file descriptor limit", metadata: [
                "requested": "\(configuration.maximumConnections)", "using": "\(fitting)",
                "descriptor_limit": "\(limit.rlim_cur)", "hint": "raise it with ulimit -n (or LimitNOFILE= in systemd)",
            ])
        }
        return fitting
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

    /// Each loop stops watching the listening sockets, then they close.
    private static func stopAccepting(_ acceptors: [Acceptor], _ sockets: [ListeningSocket]) {
        for acceptor in acceptors {
            try? acceptor.loop.submit { acceptor.stop() }.wait()
        }
        for socket in sockets { socket.close() }
    }

    /// Graceful shutdown: stop accepting, answer every parked poll with its
    /// current cursors (clients go on elsewhere), finish publishes, then stop.
    public func shutdown() {
        Self.stopAccepting(self.acceptors, self.sockets)
        self.retentionTask?.cancel()
        self.timeoutChecks.forEach { $0.cancel() }
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

/// Answers 503 to a connection over the limit as soon as it is accepted, then closes it.
final class ConnectionLimitHandler: ConnectionHandler {
    private let connection: ResponseSink
    private let limit: Int
    private let context: GatewayContext
    private var answered = false

    init(connection: ResponseSink, limit: Int, context: GatewayContext) {
        self.connection = connection
        self.limit = limit
        self.context = context
    }

    /// Answers at once: the client may be waiting for the server to speak first.
    func started() {
        self.answer()
    }

    func received(_ bytes: ByteBuffer) {
        self.answer()
    }

    private func answer() {
        guard !self.answered else { return }
        self.answered = true
        let body = "{\"error\":\"the server is at its limit of \(self.limit) connections; retry shortly\"}"
        var response = ByteBuffer()
        self.context.headWriter.write(.serviceUnavailable, framing: .closing, contentType: "application/json",
                              contentLength: body.utf8.count, extraHeaders: [("Retry-After", "1")], into: &response)
        response.writeString(body)
        self.connection.write(response)
        self.connection.closeAfterWriting()
    }

    func connectionClosed() {
        self.context.metrics.openConnections.subtract(1, ordering: .relaxed)
    }
}
