import Logging
import NIOCore
import NIOHTTP1
import PlexorBytes
import PlexorChat
import PlexorCore
import PlexorPostgres
import PlexorTransport

/// Reads requests from one connection's bytes, routes them and writes the
/// responses. Requests are handled one at a time: bytes of the next request
/// wait in the parser until the current one is answered, so at most one poll
/// per connection is in flight. While a poll waits, the handler holds only
/// how to frame its answer.
final class GatewayHTTPHandler: ConnectionHandler, PollResponder {
    private enum State {
        case idle
        /// A poll, publish or presence request is in flight.
        case waiting(ResponseFraming, poll: PollID?)
        /// Answered with an error and closing, or closed: ignore whatever else arrives.
        case discarding
    }

    private let connection: ResponseSink
    private let shard: HubShard
    private let answerHeads: OKResponseHeads
    private let context: GatewayContext
    private var parser: HTTPRequestParser
    private var state = State.idle
    /// The `/watch` in flight, to cancel if the client goes away.
    private var watching: UInt64?
    /// Inside `handleRequests`. A response can finish synchronously within
    /// it (an answer at once, an error) and then asks to go on with the next
    /// request: the running loop does that, rather than a second, nested one.
    private var processing = false
    /// When the connection is closed unless something happens first.
    private var deadline: Deadline

    /// What `checkTimeouts` does, and from which second on.
    private enum Deadline {
        /// A poll, publish or presence request is in flight: it has its own end.
        case none
        /// Nothing in flight and nothing received: closed quietly.
        case idle(UInt64)
        /// A request has begun to arrive: a 408 unless it is complete by then.
        case request(UInt64)
        /// Answered and closing, but the client does not read the answer.
        case closing(UInt64)
    }

    init(connection: ResponseSink, shard: HubShard, answerHeads: OKResponseHeads, context: GatewayContext) {
        self.connection = connection
        self.shard = shard
        self.answerHeads = answerHeads
        self.context = context
        self.parser = HTTPRequestParser(maximumBodyBytes: context.configuration.maximumBodyBytes)
        self.deadline = .idle(connection.currentSecond + UInt64(context.configuration.idleTimeoutSeconds))
    }

    func connectionClosed() {
        self.context.metrics.openConnections.subtract(1, ordering: .relaxed)
        if case .waiting(_, let poll?) = self.state {
            self.shard.cancelPoll(poll)
        }
        if let watching = self.watching {
            self.context.presenceAPI?.cancel(watching)
        }
        self.state = .discarding
    }

    func received(_ bytes: ByteBuffer) {
        if case .discarding = self.state { return }
        self.parser.append(bytes)
        if self.parser.bufferedBytes > HTTPRequestParser.maximumHeadBytes + self.context.configuration.maximumBodyBytes {
            // A client pipelining without waiting for answers: it gets them no faster by flooding.
            self.context.metrics.shedConnections.add(1, ordering: .relaxed)
            self.state = .discarding
            self.connection.close()
            return
        }
        if case .idle = self.deadline {
            self.deadline = .request(self.connection.currentSecond + UInt64(self.context.configuration.headerTimeoutSeconds))
        }
        self.handleRequests()
    }

    func becameWritable() {
        self.handleRequests()
    }

    func checkTimeouts(now: UInt64) {
        switch self.deadline {
        case .none:
            return
        case .idle(let second) where now >= second:
            self.context.metrics.timedOutIdle.add(1, ordering: .relaxed)
            self.state = .discarding
            self.connection.close()
        case .request(let second) where now >= second:
            guard case .idle = self.state else { return }
            self.context.metrics.timedOutRequests.add(1, ordering: .relaxed)
            self.state = .discarding
            let seconds = self.context.configuration.headerTimeoutSeconds
            self.respondError(.closing, .requestTimeout, "the request did not arrive whole within \(seconds) seconds", close: true)
        case .closing(let second) where now >= second:
            self.connection.close()
        case .idle, .request, .closing:
            return
        }
    }

    /// Handles the requests buffered in the parser while the connection is
    /// idle and the client reads what it is sent.
    private func handleRequests() {
        guard !self.processing else { return }  // the loop below goes on by itself
        self.processing = true
        defer { self.processing = false }
        while case .idle = self.state, self.connection.isWritable, let event = self.parser.next() {
            switch event {
            case .continueExpected:
                self.connection.write(ByteBuffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n"))
            case .request(let request):
                self.route(request)
            case .failure(let failure):
                self.state = .discarding
                self.respondError(.closing, failure.status, failure.message, close: true)
            }
        }
    }

    // MARK: Routing

    private func route(_ request: HTTPRequest) {
        request.target.withUnsafeReadableBytes { self.route(request, target: $0) }
    }

    /// Routes on the target's bytes: a poll's query is parsed in place.
    private func route(_ request: HTTPRequest, target: UnsafeRawBufferPointer) {
        let framing = ResponseFraming(version: request.version, keepAlive: request.keepAlive, headOnly: request.method == .HEAD)
        // HEAD is answered wherever GET is (but on /poll, which waits), without a body.
        let isGet = request.method == .GET || request.method == .HEAD
        let questionMark = target.index(of: UInt8(ascii: "?"), from: 0) ?? target.count
        let path = UnsafeRawBufferPointer(rebasing: target[..<questionMark])
        let query = UnsafeRawBufferPointer(rebasing: target[min(questionMark + 1, target.count)...])

        if request.method == .OPTIONS {
            self.respond(framing, .noContent, contentType: nil, body: nil, extraHeaders: [
                ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
                ("Access-Control-Allow-Headers", "Authorization, Content-Type"),
                ("Access-Control-Max-Age", "86400"),
            ])
            return
        }
        if path.equals("/poll") {
            guard request.method == .GET else { return self.methodNotAllowed(framing, request.method, allowed: "GET") }
            return self.poll(framing, request, query: query)
        }
        let pathText = String(decoding: path, as: UTF8.self)
        if pathText.hasPrefix("/chat/") {
            return self.chat(framing, request, path: pathText.dropFirst(6), query: String(decoding: query, as: UTF8.self))
        }
        if pathText.hasPrefix("/signin/") {
            return self.signIn(framing, request, action: pathText.dropFirst(8), query: String(decoding: query, as: UTF8.self))
        }
        if let asset = Self.widgetAssets[pathText] {
            guard isGet else { return self.methodNotAllowed(framing, request.method, allowed: "GET, HEAD") }
            return self.serve(asset, framing, request, query: query)
        }
        switch pathText {
        case "/publish":
            guard request.method == .POST else { return self.methodNotAllowed(framing, request.method, allowed: "POST") }
            self.publish(framing, request)
        case "/":
            guard isGet else { return self.methodNotAllowed(framing, request.method, allowed: "GET, HEAD") }
            // Its own script and the gateway's endpoints only; never framed by another site.
            self.serve(self.context.frontPage, framing, request, query: query, extraHeaders: [
                ("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
                ("X-Content-Type-Options", "nosniff"),
            ])
        case "/plexor.js":
            guard isGet else { return self.methodNotAllowed(framing, request.method, allowed: "GET, HEAD") }
            self.serve(StaticAsset.client, framing, request, query: query)
        case "/plexor.d.ts":
            guard isGet else { return self.methodNotAllowed(framing, request.method, allowed: "GET, HEAD") }
            self.serve(StaticAsset.clientTypes, framing, request, query: query)
        case "/embed":
            guard isGet else { return self.methodNotAllowed(framing, request.method, allowed: "GET, HEAD") }
            self.page(framing, self.context.widget.embed(query: String(decoding: query, as: UTF8.self), on: self.shard.loop))
        case "/embed.css":
            guard isGet else { return self.methodNotAllowed(framing, request.method, allowed: "GET, HEAD") }
            self.page(framing, self.context.widget.siteStyles(query: String(decoding: query, as: UTF8.self), on: self.shard.loop))
        case "/signin":
            guard isGet else { return self.methodNotAllowed(framing, request.method, allowed: "GET, HEAD") }
            self.page(framing, self.shard.loop.makeSucceededFuture(self.context.widget.signInPage()))
        case "/demo":
            guard isGet else { return self.methodNotAllowed(framing, request.method, allowed: "GET, HEAD") }
            self.serve(WidgetAPI.demoPage, framing, request, query: query, extraHeaders: [
                ("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
                ("X-Content-Type-Options", "nosniff"),
            ])
        case "/online":
            guard request.method == .GET else { return self.methodNotAllowed(framing, request.method, allowed: "GET") }
            self.online(framing, request, query: query)
        case "/watch":
            guard request.method == .GET else { return self.methodNotAllowed(framing, request.method, allowed: "GET") }
            self.watch(framing, request, query: query)
        case "/healthz":
            guard isGet else { return self.methodNotAllowed(framing, request.method, allowed: "GET, HEAD") }
            self.respondJSON(framing, .ok, "{\"status\":\"ok\"}")
        case "/readyz":
            guard isGet else { return self.methodNotAllowed(framing, request.method, allowed: "GET, HEAD") }
            let status = self.context.listener.status
            if status.ready {
                self.respondJSON(framing, .ok, "{\"status\":\"ready\"}")
            } else {
                let reason = status.connected ? "LISTEN is not yet in place for every tag" : "the listener is not connected to PostgreSQL"
                self.respondJSON(framing, .serviceUnavailable, "{\"status\":\"not ready\",\"reason\":\(JSONString.quoted(reason))}")
            }
        case "/metrics":
            guard isGet else { return self.methodNotAllowed(framing, request.method, allowed: "GET, HEAD") }
            self.respond(framing, .ok, contentType: "text/plain; version=0.0.4; charset=utf-8",
                         body: ByteBuffer(string: self.context.renderMetrics()))
        case let other:
            self.respondError(framing, .notFound, "no such path: \(other.prefix(100))")
        }
    }

    private func poll(_ framing: ResponseFraming, _ http: HTTPRequest, query: UnsafeRawBufferPointer) {
        let request: PollRequest
        do {
            request = try PollRequest(query: query, limits: self.context.configuration.pollLimits)
        } catch {
            return self.respondError(framing, .badRequest, error.message)
        }
        switch self.context.access.refusal(for: request.tags, authorization: http.authorization) {
        case nil:
            break
        case .forbidden(let reason):
            self.context.metrics.pollsForbidden.add(1, ordering: .relaxed)
            return self.respondError(framing, .forbidden, reason)
        case .unavailable:
            return self.respondError(framing, .serviceUnavailable, "PostgreSQL is unavailable; retry")
        }
        self.state = .waiting(framing, poll: nil)
        self.deadline = .none
        let id = self.shard.startPoll(request, responder: self)
        // Unless it was answered at once (refused, or the listener is down), remember it to cancel it.
        if let id, case .waiting(let framing, nil) = self.state {
            self.state = .waiting(framing, poll: id)
        }
    }

    private func chat(_ framing: ResponseFraming, _ http: HTTPRequest, path: Substring, query: String) {
        guard let route = ChatRoute(path: path) else {
            return self.respondError(framing, .notFound, "no such chat path: /chat/\(path.prefix(100)); rooms are SITE or SITE/ROOM, actions messages, history, presence, moderation")
        }
        let call = ChatCall(method: http.method, route: route, query: query, authorization: http.authorization,
                            body: http.body.map { Array($0.readableBytesView) } ?? [], address: self.clientAddress(http))
        self.page(framing, self.context.chat.handle(call, on: self.shard.loop).map(PageReply.json))
    }

    /// The widget's files: served as built, with an ETag.
    private static let widgetAssets: [String: StaticAsset] = [
        "/embed.js": WidgetAPI.embedScript, "/widget.js": WidgetAPI.widgetScript, "/widget.css": WidgetAPI.widgetStyles,
        "/signin.js": WidgetAPI.signInScript, "/demo.js": WidgetAPI.demoScript,
    ]

    private func signIn(_ framing: ResponseFraming, _ http: HTTPRequest, action: Substring, query: String) {
        let body = http.body.map { Array($0.readableBytesView) } ?? []
        self.page(framing, self.context.widget.signIn(action, method: http.method, query: query, cookie: http.cookie, body: body,
                                                      address: self.clientAddress(http), on: self.shard.loop))
    }

    /// The peer's address, or behind a trusted proxy the client's it names.
    private func clientAddress(_ http: HTTPRequest) -> String? {
        self.context.configuration.trustedProxies.client(peer: self.connection.peerAddress, forwardedFor: http.forwardedFor)
    }

    /// Answers with a page (or JSON) once it is ready.
    private func page(_ framing: ResponseFraming, _ reply: EventLoopFuture<PageReply>) {
        self.state = .waiting(framing, poll: nil)
        self.deadline = .none
        reply.assumeIsolated().whenSuccess { reply in
            guard case .waiting(let framing, _) = self.state, self.connection.isOpen else { return }
            if reply.status.code >= 400 && reply.status.code < 500 { self.context.metrics.badRequests.add(1, ordering: .relaxed) }
            self.respond(framing, reply.status, contentType: reply.contentType, body: ByteBuffer(string: reply.body), extraHeaders: reply.headers)
        }
    }

    /// The server-side API (`/publish`, `/online`, `/watch`) needs the API
    /// token: answers 404 when none is set, 401 for a wrong one; true when
    /// the request may go on.
    private func authorized(_ framing: ResponseFraming, _ http: HTTPRequest, _ what: String) -> Bool {
        guard let token = self.context.configuration.apiToken else {
            self.respondError(framing, .notFound, "\(what) over HTTP is disabled; set an API token (--api-token) to enable it")
            return false
        }
        guard let given = http.authorization.flatMap(bearerToken), constantTimeEquals(given, token) else {
            self.respondError(framing, .unauthorized, "a valid Authorization: Bearer <token> header is required",
                              extraHeaders: [("WWW-Authenticate", "Bearer")])
            return false
        }
        return true
    }

    /// `/online` and `/watch`: the token, presence on, a valid query.
    private func presenceRequest(_ framing: ResponseFraming, _ http: HTTPRequest, query: UnsafeRawBufferPointer,
                                 watch: Bool) -> (PresenceAPI, PresenceRequest)? {
        guard self.authorized(framing, http, "presence") else { return nil }
        guard let api = self.context.presenceAPI else {
            self.respondError(framing, .notFound, "presence is off on this gateway (--presence off)")
            return nil
        }
        do {
            return (api, try PresenceRequest(query: query, acceptsPosition: watch, limits: self.context.configuration.pollLimits))
        } catch {
            self.respondError(framing, .badRequest, error.message)
            return nil
        }
    }

    private func online(_ framing: ResponseFraming, _ http: HTTPRequest, query: UnsafeRawBufferPointer) {
        guard let (api, request) = self.presenceRequest(framing, http, query: query, watch: false) else { return }
        self.state = .waiting(framing, poll: nil)
        self.deadline = .none
        api.online(request, on: self.shard.loop).assumeIsolated().whenComplete { result in
            self.presenceAnswered(result)
        }
    }

    private func watch(_ framing: ResponseFraming, _ http: HTTPRequest, query: UnsafeRawBufferPointer) {
        guard let (api, request) = self.presenceRequest(framing, http, query: query, watch: true) else { return }
        self.state = .waiting(framing, poll: nil)
        self.deadline = .none
        let handler = NIOLoopBound(self, eventLoop: self.shard.loop)
        self.watching = api.watch(request, on: self.shard.loop) { result in
            handler.value.watching = nil
            handler.value.presenceAnswered(result)
        }
    }

    private func presenceAnswered(_ result: Result<String, any Error>) {
        guard case .waiting(let framing, _) = self.state, self.connection.isOpen else { return }
        switch result {
        case .success(let body):
            self.respondJSON(framing, .ok, body)
        case .failure(let error):
            self.context.logger.warning("presence query failed", metadata: ["error": "\(error)"])
            self.respondError(framing, .serviceUnavailable, "PostgreSQL is unavailable; retry")
        }
    }

    /// A file as built. At its versioned URL (`?v=<version>`) browsers keep
    /// it for a year (an upgrade changes the URL); elsewhere they revalidate
    /// it each time, and an unchanged ETag gets a 304.
    private func serve(_ asset: StaticAsset, _ framing: ResponseFraming, _ http: HTTPRequest, query: UnsafeRawBufferPointer,
                       extraHeaders: [(String, String)] = []) {
        let versioned = String(decoding: query, as: UTF8.self) == "v=" + asset.version
        let cacheControl: StaticString = versioned ? "public, max-age=31536000, immutable" : "no-cache"
        let notModified = asset.isMatched(by: http.ifNoneMatch)
        var head = ByteBuffer()
        self.context.headWriter.write(notModified ? .notModified : .ok, framing: framing, contentType: asset.contentType,
                                      contentLength: asset.body.readableBytes, cacheControl: cacheControl,
                                      extraHeaders: [("ETag", asset.etag)] + extraHeaders, into: &head)
        // A 304 has no body (its length is the one a 200 would carry).
        self.finishResponse(framing, head: head, body: notModified ? ByteBuffer() : asset.body, close: false)
    }

    private func publish(_ framing: ResponseFraming, _ http: HTTPRequest) {
        guard self.authorized(framing, http, "publishing") else { return }
        let request: PublishRequest
        do {
            request = try PublishRequest(json: http.body.map { Array($0.readableBytesView) } ?? [])
        } catch {
            return self.respondError(framing, .badRequest, error.message)
        }
        self.state = .waiting(framing, poll: nil)
        self.deadline = .none
        // Completed on this connection's loop: the handler stays on its thread.
        self.context.publisher.publish(request, on: self.shard.loop).assumeIsolated().whenComplete { result in
            guard case .waiting(let framing, _) = self.state, self.connection.isOpen else { return }
            switch result {
            case .success(let published):
                self.context.metrics.published.add(1, ordering: .relaxed)
                var body = "{\"id\":\(published.id),\"seqs\":{"
                body += published.seqs.map { "\"\($0.tag.name)\":\($0.seq)" }.joined(separator: ",")
                body += "}}"
                self.respondJSON(framing, .created, body)
            case .failure(let error as PostgresError) where error.isInvalidInput:
                self.context.metrics.publishFailed.add(1, ordering: .relaxed)
                self.respondError(framing, error.isTooLarge ? .payloadTooLarge : .badRequest, error.message)
            case .failure(let error):
                self.context.metrics.publishFailed.add(1, ordering: .relaxed)
                self.context.logger.warning("publish failed", metadata: ["error": "\(error)"])
                self.respondError(framing, .serviceUnavailable, "PostgreSQL is unavailable; the message was not published")
            }
        }
    }

    // MARK: PollResponder

    func answerPoll(_ body: ByteBuffer) {
        guard case .waiting(let framing, _) = self.state else { return }
        let head = self.answerHeads.head(forBodyLength: body.readableBytes, framing: framing)
        self.finishResponse(framing, head: head, body: body, close: false)
    }

    func failPoll(status: HTTPResponseStatus, message: String) {
        guard case .waiting(let framing, _) = self.state else { return }
        self.respondError(framing, status, message)
    }

    // MARK: Writing

    private func methodNotAllowed(_ framing: ResponseFraming, _ method: HTTPMethod, allowed: String) {
        self.respondError(framing, .methodNotAllowed, "method \(method) is not allowed here; use \(allowed)",
                          extraHeaders: [("Allow", allowed + ", OPTIONS")])
    }

    private func respondError(_ framing: ResponseFraming, _ status: HTTPResponseStatus, _ message: String,
                              extraHeaders: [(String, String)] = [], close: Bool = false) {
        if status.code < 500 { self.context.metrics.badRequests.add(1, ordering: .relaxed) }
        self.respondJSON(framing, status, "{\"error\":\(JSONString.quoted(message))}", extraHeaders: extraHeaders, close: close)
    }

    private func respondJSON(_ framing: ResponseFraming, _ status: HTTPResponseStatus, _ json: String,
                             extraHeaders: [(String, String)] = [], close: Bool = false) {
        self.respond(framing, status, contentType: "application/json", body: ByteBuffer(string: json),
                     extraHeaders: extraHeaders, close: close)
    }

    /// Writes a whole response, head and body.
    private func respond(_ framing: ResponseFraming, _ status: HTTPResponseStatus, contentType: StaticString?, body: ByteBuffer?,
                         extraHeaders: [(String, String)] = [], close: Bool = false) {
        var framing = framing
        framing.keepAlive = framing.keepAlive && !close
        var head = ByteBuffer()
        head.reserveCapacity(192)
        self.context.headWriter.write(status, framing: framing, contentType: contentType, contentLength: body?.readableBytes ?? 0,
                              extraHeaders: extraHeaders, into: &head)
        self.finishResponse(framing, head: head, body: body ?? ByteBuffer(), close: close)
    }

    /// Writes a whole response; then either closes the connection or goes
    /// on with the next request already received.
    private func finishResponse(_ framing: ResponseFraming, head: ByteBuffer, body: ByteBuffer, close: Bool) {
        guard self.connection.isOpen else { return }
        let body = framing.headOnly ? ByteBuffer() : body
        let now = self.connection.currentSecond
        if !framing.keepAlive || close {
            self.state = .discarding
            self.deadline = .closing(now + UInt64(self.context.configuration.headerTimeoutSeconds))
            self.connection.write(head, body)
            self.connection.closeAfterWriting()
            return
        }
        if case .discarding = self.state {} else { self.state = .idle }
        self.deadline = self.parser.bufferedBytes > 0
            ? .request(now + UInt64(self.context.configuration.headerTimeoutSeconds))
            : .idle(now + UInt64(self.context.configuration.idleTimeoutSeconds))
        self.connection.write(head, body)
        self.handleRequests()
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme's
/// name is case-insensitive (RFC 9110 §11.1).
func bearerToken(_ authorization: String) -> String? {
    let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
    guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
    let token = parts[1].drop { $0 == " " }
    return token.isEmpty ? nil : String(token)
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
