import Logging
import NIOCore
import NIOHTTP1
import PlexorCore
import PlexorPostgres

/// Routes requests and writes responses for one HTTP connection. Requests on
/// a connection are handled one at a time (NIO's pipelining handler queues
/// the rest), so at most one poll per connection is in flight.
final class GatewayHTTPHandler: ChannelInboundHandler, PollResponder {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        /// Reading a request's head and body.
        case reading(HTTPRequestHead, body: ByteBuffer?)
        /// Answered with an error and closing: ignore whatever else arrives.
        case discarding
        /// A poll or publish is in flight.
        case waiting(HTTPRequestHead, poll: PollID?)
    }

    private let shard: HubShard
    private let context: GatewayContext
    private var state = State.idle
    private var channelContext: ChannelHandlerContext?

    init(shard: HubShard, context: GatewayContext) {
        self.shard = shard
        self.context = context
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.channelContext = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.channelContext = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .waiting(_, let poll?) = self.state {
            self.shard.cancelPoll(poll)
        }
        // The decoder may still hand over parts it had buffered: ignore them.
        self.state = .discarding
        context.fireChannelInactive()
    }

    /// Unparseable HTTP gets a JSON 400 like every other bad request, then the
    /// connection closes (the parser cannot find the next request's start).
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard error is HTTPParserError else {
            context.close(promise: nil)
            return
        }
        switch self.state {
        case .idle, .reading:
            self.state = .discarding
            let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")
            self.respondError(head, .badRequest, "malformed HTTP request: \(error)", close: true)
        case .waiting, .discarding:
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (self.unwrapInboundIn(data), self.state) {
        case (.head(let head), .idle):
            if head.method == .POST, let length = head.headers.first(name: "content-length").flatMap(Int.init),
               length > self.context.configuration.maximumBodyBytes {
                self.state = .discarding
                self.respondError(head, .payloadTooLarge, "the body is \(length) bytes; the limit is \(self.context.configuration.maximumBodyBytes)", close: true)
                return
            }
            self.state = .reading(head, body: nil)
        case (.body(var chunk), .reading(let head, var body)):
            if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
            if body!.readableBytes > self.context.configuration.maximumBodyBytes {
                self.state = .discarding
                self.respondError(head, .payloadTooLarge, "the body is larger than \(self.context.configuration.maximumBodyBytes) bytes", close: true)
                return
            }
            self.state = .reading(head, body: body)
        case (.end, .reading(let head, let body)):
            self.route(head, body: body)
        case (_, .discarding):
            break
        case (let part, let state):
            // NIO's pipelining handler delivers one request at a time, so this
            // is a bug; it costs this connection, never the whole gateway.
            self.context.logger.error("unexpected request part; closing the connection",
                                      metadata: ["part": "\(part)", "state": "\(state)"])
            context.close(promise: nil)
        }
    }

    // MARK: Routing

    private func route(_ head: HTTPRequestHead, body: ByteBuffer?) {
        let uri = head.uri[...]
        let questionMark = uri.firstIndex(of: "?")
        let path = questionMark.map { uri[..<$0] } ?? uri
        let query = questionMark.map { uri[uri.index(after: $0)...] } ?? ""

        if head.method == .OPTIONS {
            self.respond(head, status: .noContent, contentType: nil, body: nil, extraHeaders: [
                ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
                ("Access-Control-Allow-Headers", "Authorization, Content-Type"),
                ("Access-Control-Max-Age", "86400"),
            ])
            return
        }
        switch path {
        case "/poll":
            guard head.method == .GET else { return self.methodNotAllowed(head, allowed: "GET") }
            self.poll(head, query: query)
        case "/publish":
            guard head.method == .POST else { return self.methodNotAllowed(head, allowed: "POST") }
            self.publish(head, body: body)
        case "/healthz":
            guard head.method == .GET else { return self.methodNotAllowed(head, allowed: "GET") }
            self.respondJSON(head, .ok, "{\"status\":\"ok\"}")
        case "/readyz":
            guard head.method == .GET else { return self.methodNotAllowed(head, allowed: "GET") }
            let status = self.context.listener.status
            if status.ready {
                self.respondJSON(head, .ok, "{\"status\":\"ready\"}")
            } else {
                let reason = status.connected ? "LISTEN is not yet in place for every tag" : "the listener is not connected to PostgreSQL"
                self.respondJSON(head, .serviceUnavailable, "{\"status\":\"not ready\",\"reason\":\(JSONString.quoted(reason))}")
            }
        case "/metrics":
            guard head.method == .GET else { return self.methodNotAllowed(head, allowed: "GET") }
            var buffer = ByteBuffer()
            buffer.writeString(self.context.renderMetrics())
            self.respond(head, status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: buffer)
        default:
            self.respondError(head, .notFound, "no such path: \(path.prefix(100))")
        }
    }

    private func poll(_ head: HTTPRequestHead, query: Substring) {
        let request: PollRequest
        do {
            request = try PollRequest(query: query, limits: self.context.configuration.pollLimits)
        } catch {
            return self.respondError(head, .badRequest, error.message)
        }
        self.state = .waiting(head, poll: nil)
        let id = self.shard.startPoll(request, responder: self)
        // Unless it was answered at once (refused, or the listener is down), remember it to cancel it.
        if let id, case .waiting(let head, nil) = self.state {
            self.state = .waiting(head, poll: id)
        }
    }

    private func publish(_ head: HTTPRequestHead, body: ByteBuffer?) {
        guard let token = self.context.configuration.publishToken else {
            return self.respondError(head, .notFound, "publishing over HTTP is disabled; set a publish token to enable it")
        }
        guard let authorization = head.headers.first(name: "authorization"),
              constantTimeEquals(authorization, "Bearer \(token)") else {
            return self.respondError(head, .unauthorized, "a valid Authorization: Bearer <token> header is required",
                                     extraHeaders: [("WWW-Authenticate", "Bearer")])
        }
        let request: PublishRequest
        do {
            request = try PublishRequest(json: body.map { Array($0.readableBytesView) } ?? [])
        } catch {
            return self.respondError(head, .badRequest, error.message)
        }
        self.state = .waiting(head, poll: nil)
        let loop = self.shard.loop
        self.context.publisher.publish(request, on: loop).whenComplete { result in
            guard case .waiting = self.state, self.channelContext != nil else { return }
            switch result {
            case .success(let published):
                self.context.metrics.published.add(1, ordering: .relaxed)
                var body = "{\"id\":\(published.id),\"seqs\":{"
                body += published.seqs.map { "\"\($0.tag.name)\":\($0.seq)" }.joined(separator: ",")
                body += "}}"
                self.respondJSON(head, .created, body)
            case .failure(let error as PostgresError) where error.isInvalidInput:
                self.context.metrics.publishFailed.add(1, ordering: .relaxed)
                self.respondError(head, error.isTooLarge ? .payloadTooLarge : .badRequest, error.message)
            case .failure(let error):
                self.context.metrics.publishFailed.add(1, ordering: .relaxed)
                self.context.logger.warning("publish failed", metadata: ["error": "\(error)"])
                self.respondError(head, .serviceUnavailable, "PostgreSQL is unavailable; the message was not published")
            }
        }
    }

    // MARK: PollResponder

    func answerPoll(_ body: ByteBuffer) {
        guard case .waiting(let head, _) = self.state else { return }
        self.respond(head, status: .ok, contentType: "application/json", body: body)
    }

    func failPoll(status: HTTPResponseStatus, message: String) {
        guard case .waiting(let head, _) = self.state else { return }
        self.respondError(head, status, message)
    }

    // MARK: Writing

    private func methodNotAllowed(_ head: HTTPRequestHead, allowed: String) {
        self.respondError(head, .methodNotAllowed, "method \(head.method) is not allowed here; use \(allowed)",
                          extraHeaders: [("Allow", allowed + ", OPTIONS")])
    }

    private func respondError(_ head: HTTPRequestHead, _ status: HTTPResponseStatus, _ message: String,
                              extraHeaders: [(String, String)] = [], close: Bool = false) {
        if status.code < 500 { self.context.metrics.badRequests.add(1, ordering: .relaxed) }
        self.respondJSON(head, status, "{\"error\":\(JSONString.quoted(message))}", extraHeaders: extraHeaders, close: close)
    }

    private func respondJSON(_ head: HTTPRequestHead, _ status: HTTPResponseStatus, _ json: String,
                             extraHeaders: [(String, String)] = [], close: Bool = false) {
        var buffer = ByteBuffer()
        buffer.writeString(json)
        self.respond(head, status: status, contentType: "application/json", body: buffer, extraHeaders: extraHeaders, close: close)
    }

    private func respond(_ request: HTTPRequestHead, status: HTTPResponseStatus, contentType: String?, body: ByteBuffer?,
                         extraHeaders: [(String, String)] = [], close: Bool = false) {
        guard let context = self.channelContext else { return }
        if case .discarding = self.state {} else { self.state = .idle }
        let keepAlive = request.isKeepAlive && !close
        var headers = HTTPHeaders()
        headers.reserveCapacity(6 + extraHeaders.count)
        if let contentType { headers.add(name: "Content-Type", value: contentType) }
        headers.add(name: "Content-Length", value: String(body?.readableBytes ?? 0))
        headers.add(name: "Cache-Control", value: "no-store")
        if let origin = self.context.configuration.corsOrigin {
            headers.add(name: "Access-Control-Allow-Origin", value: origin)
        }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        let head = HTTPResponseHead(version: request.version, status: status, headers: headers)
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        if let body, body.readableBytes > 0 {
            context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        if keepAlive {
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
        }
    }
}

/// Compares secrets without leaking where they differ through timing.
func constantTimeEquals(_ lhs: String, _ rhs: String) -> Bool {
    let left = Array(lhs.utf8)
    let right = Array(rhs.utf8)
    var difference = UInt8(left.count == right.count ? 0 : 1)
    for index in 0..<max(left.count, right.count) {
        difference |= (index < left.count ? left[index] : 0) ^ (index < right.count ? right[index] : 0)
    }
    return difference == 0
}
