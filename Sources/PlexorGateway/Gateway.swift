#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PlexorAccess
import PlexorCore
import PlexorPostgres
import PlexorTransport
import Synchronization

/// What every connection's handler shares.
final class GatewayContext: Sendable {
    let configuration: GatewayConfiguration
    let listener: Listener
    let publisher: BatchingPublisher
    let presence: PresenceWriter?
    let presenceAPI: PresenceAPI?
    let access: AccessControl
    let chat: ChatAPI
    let widget: WidgetAPI
    /// Realplexor's IN line, when it has a port.
    let realplexorIn: RealplexorInAPI?
    let metrics: GatewayMetrics
    let logger: Logger
    let headWriter: HTTPResponseHeadWriter
    let frontPage: StaticAsset

    init(configuration: GatewayConfiguration, listener: Listener, publisher: BatchingPublisher, presence: PresenceWriter?,
         presenceAPI: PresenceAPI?, access: AccessControl, chat: ChatAPI, widget: WidgetAPI, realplexorIn: RealplexorInAPI? = nil,
         metrics: GatewayMetrics, logger: Logger) {
        self.presenceAPI = presenceAPI
        self.realplexorIn = realplexorIn
        self.access = access
        self.chat = chat
        self.widget = widget
        self.configuration = configuration
        self.headWriter = HTTPResponseHeadWriter(corsOrigin: configuration.corsOrigin)
        self.frontPage = StaticAsset.frontPage(psql: configuration.frontPagePsql)
        self.listener = listener
        self.publisher = publisher
        self.presence = presence
        self.metrics = metrics
        self.logger = logger
    }

    func renderMetrics() -> String {
        let status = self.listener.status
        return self.metrics.render(listener: ListenerFigures(
            connected: status.connected, ready: status.ready, tags: status.listenedTags,
            notifications: Int(status.notifications), dropped: status.dropped, reconnects: Int(status.reconnects)),
            presence: self.presence?.status)
    }
}

/// A running gateway: event loops with their hub shards, the listener, the
/// query pool, the batching publisher, retention, and the HTTP server.
/// `plexor serve` (through a `ServiceGroup`, see `services`) and the tests
/// both start it this way.
public final class Gateway: Sendable {
    public let configuration: GatewayConfiguration
    public let metrics = GatewayMetrics()
    /// The port the server listens on (useful with port 0).
    public let localPort: Int
    /// The port of `configuration.statusPort`, if set.
    public let localStatusPort: Int?
    /// Realplexor's WAIT and IN ports, if set.
    public let localRealplexorWaitPort: Int?
    public let localRealplexorInPort: Int?
    /// The long-lived parts in the order they start; they stop in reverse:
    /// the HTTP server first (nothing new accepted, parked polls answered
    /// with their cursors), then retention, the publisher (what it accepted
    /// is committed), the listener, and last the event loops and the query
    /// pool that the others complete their work on.
    public let parts: [GatewayPart]

    private let listener: Listener
    let logger: Logger

    /// Starts everything and begins accepting connections. The schema must be migrated.
    public static func start(_ configuration: GatewayConfiguration, logger: Logger) throws -> Gateway {
        try Gateway(configuration, logger: logger)
    }

    private init(_ configuration: GatewayConfiguration, logger: Logger) throws {
        var configuration = configuration
        // Room presence is presence of the chat's presence tags, whatever else is tracked.
        if let prefixes = configuration.presence.scope.prefixes, !prefixes.contains(PrivateTags.chatPresencePrefix) {
            configuration.presence.scope.prefixes = prefixes + [PrivateTags.chatPresencePrefix]
        }
        self.configuration = configuration
        self.logger = logger
        let metrics = self.metrics
        var parts: [GatewayPart] = []
        // Whatever started before a failure stops again, in reverse.
        var started = false
        defer { if !started { parts.reversed().forEach { $0.stop() } } }

        let group = try EpollEventLoopGroup(numberOfThreads: configuration.eventLoopThreads)
        let pool = PostgresPool(connectionString: configuration.connectionString, size: configuration.queryConnections)
        parts.append(GatewayPart("event loops and query pool") {
            pool.shutdown()
            // Give the answers just written a moment to leave before the loops close.
            try? group.next().scheduleTask(in: .milliseconds(100)) {}.futureResult.wait()
            try? group.syncShutdownGracefully()
        })

        // The hub shards hold a tag for the linger; the listener only bridges moves between loops.
        let listener = Listener(connectionString: configuration.connectionString, linger: .seconds(1), logger: logger)
        let boundPort = BoundPort(configuration.port)
        let presenceAPI = configuration.presence.enabled ? PresenceAPI(pool: pool) : nil
        let presence = presenceAPI.map { api in
            PresenceWriter(connectionString: configuration.connectionString, settings: configuration.presence, logger: logger,
                           figures: Self.heartbeatFigures(host: configuration.host, port: boundPort, metrics: metrics, listener: listener),
                           positionMoved: { api.positionMoved($0) })
        }
        let shards = group.loops.enumerated().map { index, loop in
            HubShard(loop: loop, index: index, listener: listener, pool: pool, presence: presence,
                     configuration: configuration, metrics: metrics, logger: logger)
        }
        self.listener = listener
        listener.start(sinks: shards)
        parts.append(GatewayPart("listener") { listener.shutdown() })

        let publisher = BatchingPublisher(connectionString: configuration.connectionString, logger: logger)
        publisher.start()
        parts.append(GatewayPart("publisher") { publisher.shutdown() })

        if let retention = Self.startRetention(configuration, pool: pool, loop: group.next(), logger: logger) {
            parts.append(GatewayPart("retention") { retention.cancel() })
        }

        if let presence {
            presence.start()
            parts.append(GatewayPart("presence") { presence.shutdown() })
        }

        let access = AccessControl(privateTags: PrivateTags(configured: configuration.privatePrefixes),
                                   key: { listener.notificationKey })
        let chat = ChatAPI(pool: pool, access: access, metrics: metrics, guestSessionsPerMinute: configuration.guestSessionsPerMinute)
        let widget = WidgetAPI(pool: pool, access: access, chat: chat, secureCookies: configuration.publicURL?.hasPrefix("https:") ?? false,
                               oidc: configuration.openIDConnect.map(OIDCSignIn.init))
        let realplexorIn = configuration.realplexor.inPort == nil ? nil : RealplexorInAPI(
            pool: pool, publisher: publisher, users: configuration.realplexor.users, presenceOn: presenceAPI != nil, metrics: metrics)
        let context = GatewayContext(configuration: configuration, listener: listener, publisher: publisher,
                                     presence: presence, presenceAPI: presenceAPI, access: access,
                                     chat: chat, widget: widget, realplexorIn: realplexorIn, metrics: metrics, logger: logger)
        let http = try Self.startHTTP(configuration, group: group, shards: shards, context: context, logger: logger)
        parts.append(http.part)
        boundPort.set(http.ports[.main]!)
        self.localPort = http.ports[.main]!
        self.localStatusPort = http.ports[.status]
        self.localRealplexorWaitPort = http.ports[.realplexorWait]
        self.localRealplexorInPort = http.ports[.realplexorIn]
        self.parts = parts
        started = true
        logger.info("gateway listening", metadata: ["host": "\(configuration.host)", "port": "\(self.localPort)"])
    }

    /// What this gateway's presence heartbeat tells the others (and `plexor status`).
    private static func heartbeatFigures(host: String, port: BoundPort, metrics: GatewayMetrics,
                                         listener: Listener) -> @Sendable (UUID) -> GatewayHeartbeat {
        let hostName = host == "0.0.0.0" || host == "::" ? ProcessInfo.processInfo.hostName : host
        return { id in
            GatewayHeartbeat(id: id, host: hostName, pid: getpid(), port: port.value,
                             connections: metrics.openConnections.load(ordering: .relaxed),
                             parked: metrics.parkedPolls.load(ordering: .relaxed),
                             listened: listener.status.listenedTags)
        }
    }

    /// Retention on `loop` every interval, unless the policy keeps everything.
    private static func startRetention(_ configuration: GatewayConfiguration, pool: PostgresPool, loop: EventLoop,
                                       logger: Logger) -> RepeatedTask? {
        guard !configuration.retention.keepsEverything else { return nil }
        let policy = configuration.retention
        return loop.scheduleRepeatedAsyncTask(initialDelay: configuration.retentionInterval, delay: configuration.retentionInterval) { _ in
            pool.withConnection(on: loop) { try $0.trim(policy) }
                .map { removed in
                    if let removed, removed > 0 { logger.info("retention removed messages", metadata: ["count": "\(removed)"]) }
                }
                .recover { error in logger.warning("retention failed", metadata: ["error": "\(error)"]) }
        }
    }

    /// Starts the shards' sweeps, binds the ports and accepts on every loop;
    /// returns the bound ports and the part that stops it all: no more
    /// accepting, then every shard drains (parked polls answered with their
    /// cursors, new ones refused).
    private static func startHTTP(_ configuration: GatewayConfiguration, group: EpollEventLoopGroup, shards: [HubShard],
                                  context: GatewayContext, logger: Logger) throws -> (ports: [ListenerKind: Int], part: GatewayPart) {
        for shard in shards {
            try shard.loop.submit { shard.start() }.wait()
        }
        let maximumConnections = Self.connectionLimit(configuration, logger: logger)
        context.metrics.connectionLimit.store(maximumConnections, ordering: .relaxed)
        var sockets: [ListeningSocket] = []
        var acceptors: [Acceptor] = []
        let timeoutChecks = group.loops.map { loop in
            loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in loop.checkConnectionTimeouts() }
        }
        let stop: @Sendable ([Acceptor], [ListeningSocket]) -> Void = { acceptors, sockets in
            // Each loop stops watching the listening sockets, then they close.
            for acceptor in acceptors { try? acceptor.stop().wait() }
            for socket in sockets { socket.close() }
            timeoutChecks.forEach { $0.cancel() }
            context.presenceAPI?.drain()
            for shard in shards {
                try? shard.loop.submit {
                    shard.stop()
                    shard.drain()
                }.wait()
            }
        }
        let listeners = Self.listeners(configuration, group: group, shards: shards, context: context, maximumConnections: maximumConnections)
        var ports: [ListenerKind: Int] = [:]
        do {
            for listener in listeners {
                let socket = try ListeningSocket.bind(host: listener.host, port: listener.port, reusePort: listener.reusePort)
                sockets.append(socket)
                ports[listener.kind] = socket.port
                for loop in group.loops {
                    let acceptor = Acceptor(socket: socket, loop: loop, logger: logger, dispatcher: listener.dispatcher)
                    try acceptor.start().wait()
                    acceptors.append(acceptor)
                }
            }
        } catch {
            stop(acceptors, sockets)
            throw error
        }
        return (ports, GatewayPart("HTTP server") { [acceptors, sockets] in stop(acceptors, sockets) })
    }

    /// What each listening socket serves.
    enum ListenerKind: Hashable {
        case main, status, realplexorWait, realplexorIn
    }

    /// A socket to bind, and who handles its connections.
    struct Listening {
        var kind: ListenerKind
        var host: String
        var port: Int
        var reusePort: Bool
        var dispatcher: ConnectionDispatcher
    }

    /// The configured sockets. Each connection gets its handler on its loop,
    /// once counted; the status port may go a little past the limit, so a
    /// full gateway can still be scraped and checked.
    private static func listeners(_ configuration: GatewayConfiguration, group: EpollEventLoopGroup, shards: [HubShard],
                                  context: GatewayContext, maximumConnections: Int) -> [Listening] {
        let metrics = context.metrics
        let answerHeads = shards.map { shard in
            // One per loop, used only there: its handlers share the heads it keeps.
            NIOLoopBoundBox.makeBoxSendingValue(OKResponseHeads(corsOrigin: configuration.corsOrigin), eventLoop: group.loops[shard.index])
        }
        typealias MakeHandler = @Sendable (SocketConnection, HubShard, OKResponseHeads) -> ConnectionHandler
        func dispatcher(limit: Int, _ make: @escaping MakeHandler) -> ConnectionDispatcher {
            ConnectionDispatcher(shards.map { shard in
                let heads = answerHeads[shard.index]
                return ConnectionDispatcher.Target(loop: group.loops[shard.index]) { connection in
                    // Counted here, uncounted by the handler when the connection closes.
                    let open = metrics.openConnections.add(1, ordering: .relaxed).newValue
                    if open > limit {
                        metrics.rejectedConnections.add(1, ordering: .relaxed)
                        return ConnectionLimitHandler(connection: connection, limit: maximumConnections, context: context)
                    }
                    return make(connection, shard, heads.value)
                }
            })
        }
        let http: MakeHandler = { connection, shard, heads in
            GatewayHTTPHandler(connection: connection, shard: shard, answerHeads: heads, context: context)
        }
        var listeners = [Listening(kind: .main, host: configuration.host, port: configuration.port, reusePort: configuration.reusePort,
                                   dispatcher: dispatcher(limit: maximumConnections, http))]
        if let port = configuration.statusPort {
            listeners.append(Listening(kind: .status, host: configuration.host, port: port, reusePort: false,
                                       dispatcher: dispatcher(limit: maximumConnections + Self.statusConnections, http)))
        }
        if let port = configuration.realplexor.waitPort {
            listeners.append(Listening(kind: .realplexorWait, host: configuration.host, port: port, reusePort: configuration.reusePort,
                                       dispatcher: dispatcher(limit: maximumConnections) { connection, shard, heads in
                RealplexorWaitHandler(connection: connection, shard: shard, context: context) {
                    GatewayHTTPHandler(connection: connection, shard: shard, answerHeads: heads, context: context)
                }
            }))
        }
        if let port = configuration.realplexor.inPort, let api = context.realplexorIn {
            listeners.append(Listening(kind: .realplexorIn, host: configuration.realplexor.inHost, port: port, reusePort: configuration.reusePort,
                                       dispatcher: dispatcher(limit: maximumConnections) { connection, shard, _ in
                RealplexorInHandler(connection: connection, api: api, loop: shard.loop, context: context)
            }))
        }
        return listeners
    }

    /// Descriptors kept for what is not a client connection: the database
    /// connections, listening sockets, epoll and wake-up descriptors, the
    /// status port's connections beyond the limit, and the connections
    /// accepted beyond the limit only to be told so.
    static let reservedDescriptors = 64

    /// Connections the status port takes beyond `--max-connections` (from the reserve).
    public static let statusConnections = 16

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

    /// Graceful shutdown: every part stops, in reverse order of starting
    /// (see `parts`). Parts already stopped (by a `ServiceGroup`) are skipped.
    public func shutdown() {
        self.parts.reversed().forEach { $0.stop() }
        self.logger.info("gateway stopped")
    }
}

/// The port the HTTP server bound (known once it has), for the heartbeat.
final class BoundPort: Sendable {
    private let port: Atomic<Int>

    init(_ port: Int) {
        self.port = Atomic(port)
    }

    var value: Int { self.port.load(ordering: .relaxed) }

    func set(_ port: Int) {
        self.port.store(port, ordering: .relaxed)
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
