import NIOCore
import PlexorCore
import PlexorPostgres
import PlexorRealplexor
import PlexorTransport

/// What Realplexor's IN line does with a request (REALPLEXOR.md §3), on
/// Plexor's parts: a send is a publish that has committed before the
/// reply; `online` and `watch` read the presence all gateways share.
final class RealplexorInAPI: Sendable {
    private let pool: PostgresPool
    private let publisher: BatchingPublisher
    private let users: RealplexorUsers
    private let presenceOn: Bool
    private let metrics: GatewayMetrics

    /// Most events one `watch` reply lists: the client asks again from the last.
    static let watchPageSize = 10_000

    init(pool: PostgresPool, publisher: BatchingPublisher, users: RealplexorUsers, presenceOn: Bool, metrics: GatewayMetrics) {
        self.pool = pool
        self.publisher = publisher
        self.users = users
        self.presenceOn = presenceOn
        self.metrics = metrics
    }

    func handle(_ request: InRequest, on loop: EventLoop) -> EventLoopFuture<InReply> {
        let confinement: String?
        switch self.users.authenticate(request.credentials) {
        case .refused(let reason): return loop.makeSucceededFuture(InReply(403, reason))
        case .user(let login): confinement = login + "_"
        case .anonymous: confinement = nil
        }
        if let confinement, let outside = (request.targets + request.limiters).first(where: { !$0.name.hasPrefix(confinement) }) {
            return loop.makeSucceededFuture(InReply(403, "\(outside.name) is not yours: a login may use only ids starting with \(confinement)"))
        }
        switch request.action {
        case .send(let data):
            return self.send(PublishRequest(tags: request.targets, data: data, onlyFor: request.limiters.isEmpty ? nil : request.limiters), on: loop)
        case .online(let prefixes):
            return self.presence(on: loop) { connection in
                let online = try connection.online(prefixes: prefixes.isEmpty ? nil : prefixes)
                let lines = online.filter { Self.isRealplexorID($0.tag, confinement) }.sorted { $0.tag < $1.tag }
                return lines.map { "\($0.tag) \($0.listeners)\n" }.joined()
            }
        case .watch(let after, let prefixes):
            // Realplexor's positions are Plexor's plus one: Plexor's start at 1, so a stream with
            // no events yet would otherwise have 0, which `watch 0` takes for "where do I start".
            return self.presence(on: loop) { connection in
                let page = try connection.presencePage(after: max(0, after - 1), prefixes: prefixes.isEmpty ? nil : prefixes,
                                                       limit: Self.watchPageSize)
                // Where to start from: the last position given, so the next event is the first one after it.
                guard after > 0 else { return "FAKE \(page.lastPosition + 1):FAKE\n" }
                return page.events.filter { Self.isRealplexorID($0.tag, confinement) }
                    .map { "\($0.kind.rawValue) \($0.position + 1):\($0.tag)\n" }.joined()
            }
        case .stats:
            let figures = [
                ("connections", self.metrics.openConnections.load(ordering: .relaxed)),
                ("parked_polls", self.metrics.parkedPolls.load(ordering: .relaxed)),
                ("published", self.metrics.published.load(ordering: .relaxed)),
            ]
            return loop.makeSucceededFuture(InReply(200, figures.map { "\($0.0) \($0.1)\n" }.joined()))
        }
    }

    private func send(_ request: PublishRequest, on loop: EventLoop) -> EventLoopFuture<InReply> {
        self.publisher.publish(request, on: loop).map { _ in
            self.metrics.published.add(1, ordering: .relaxed)
            return InReply.sent
        }.recover { error in
            self.metrics.publishFailed.add(1, ordering: .relaxed)
            if let error = error as? PostgresError, error.isInvalidInput {
                return InReply(error.isTooLarge ? 413 : 400, error.message)
            }
            return InReply(503, "PostgreSQL is unavailable; the message was not sent")
        }
    }

    private func presence(on loop: EventLoop, _ body: @escaping @Sendable (PostgresConnection) throws -> String) -> EventLoopFuture<InReply> {
        guard self.presenceOn else {
            return loop.makeSucceededFuture(InReply(503, "presence is off on this gateway (--presence on tracks who is online)"))
        }
        return self.pool.withConnection(on: loop, body).map { InReply(200, $0) }
            .recover { _ in InReply(503, "PostgreSQL is unavailable; ask again") }
    }

    /// Realplexor's ids are `\w+`: Plexor's other tags (chat rooms, presence keys) stay out of its lists,
    /// and a login sees only its own.
    private static func isRealplexorID(_ tag: String, _ confinement: String?) -> Bool {
        (confinement.map { tag.hasPrefix($0) } ?? true) && !tag.isEmpty && tag.utf8.allSatisfy(WaitRequestScanner.isWordByte)
    }
}

/// One connection of the IN line: reads a request (to its `Content-Length`,
/// or to the client's half-close as the PHP API sends it), answers, closes.
final class RealplexorInHandler: ConnectionHandler {
    private enum State {
        case reading(deadline: UInt64)
        case answering
        case done
    }

    private let connection: ResponseSink
    private let api: RealplexorInAPI
    private let loop: EventLoop
    private let context: GatewayContext
    private var reader: InRequestReader
    private var bytes: [UInt8] = []
    private var state: State

    init(connection: ResponseSink, api: RealplexorInAPI, loop: EventLoop, context: GatewayContext) {
        self.connection = connection
        self.api = api
        self.loop = loop
        self.context = context
        self.reader = InRequestReader(maximumBodyBytes: context.configuration.maximumBodyBytes)
        self.state = .reading(deadline: connection.currentSecond + UInt64(context.configuration.headerTimeoutSeconds))
    }

    func received(_ bytes: ByteBuffer) {
        guard case .reading = self.state else { return }
        self.bytes.append(contentsOf: bytes.readableBytesView)
        self.read(ended: false)
    }

    /// The PHP API half-closes once its request is sent, and reads the answer after.
    func peerFinishedSending() -> Bool {
        switch self.state {
        case .reading:
            self.read(ended: true)
            return true
        case .answering:
            return true
        case .done:
            return false
        }
    }

    private func read(ended: Bool) {
        switch self.reader.read(self.bytes, ended: ended) {
        case .needMore:
            return
        case .refuse(let reply):
            self.context.metrics.badRequests.add(1, ordering: .relaxed)
            self.reply(reply)
        case .request(let request):
            self.state = .answering
            self.bytes = []
            self.api.handle(request, on: self.loop).assumeIsolated().whenSuccess { self.reply($0) }
        }
    }

    private func reply(_ reply: InReply) {
        guard self.connection.isOpen else { return }
        self.state = .done
        self.connection.write(ByteBuffer(bytes: reply.bytes))
        self.connection.closeAfterWriting()
    }

    func checkTimeouts(now second: UInt64) {
        if case .reading(let deadline) = self.state, second >= deadline {
            self.context.metrics.timedOutRequests.add(1, ordering: .relaxed)
            self.reply(InReply(400, "the request did not arrive whole within \(self.context.configuration.headerTimeoutSeconds) seconds"))
        }
    }

    func connectionClosed() {
        self.context.metrics.openConnections.subtract(1, ordering: .relaxed)
        self.state = .done
    }
}
