import NIOCore
import NIOHTTP1
import PlexorCore
import PlexorRealplexor
import PlexorTransport

/// One connection of Realplexor's WAIT line (REALPLEXOR.md §2): reads the
/// ids and cursors, sends the head at once, waits on the ids as a Plexor
/// poll and writes the messages in Realplexor's blocks, then closes.
///
/// A request for `/poll` (or its CORS preflight) is Plexor's own: the
/// compatibility client polls that way (every id's cursor comes back, CORS,
/// keep-alive), so the connection is handed to the gateway's HTTP handler.
final class RealplexorWaitHandler: ConnectionHandler, PollResponder {
    private enum State {
        case reading([UInt8], WaitRequestScanner, deadline: UInt64)
        case plexor(GatewayHTTPHandler)
        /// The head is sent; the poll (if one is parked) waits until `deadline`.
        case waiting(tags: [Tag], poll: PollID?, deadline: NIODeadline)
        case done
    }

    private let connection: ResponseSink
    private let shard: HubShard
    private let context: GatewayContext
    private let makePlexorHandler: () -> GatewayHTTPHandler
    private var state: State

    /// How long past its deadline a WAIT request is ended here if its poll has not been answered.
    private static let grace = TimeAmount.seconds(2)

    /// Plexor's own poll (and its CORS preflight): what the compatibility client sends.
    private static let plexorRequests = [Array("GET /poll?".utf8), Array("OPTIONS /poll".utf8)]

    init(connection: ResponseSink, shard: HubShard, context: GatewayContext, makePlexorHandler: @escaping () -> GatewayHTTPHandler) {
        self.connection = connection
        self.shard = shard
        self.context = context
        self.makePlexorHandler = makePlexorHandler
        let scanner = WaitRequestScanner(maximumIDs: context.configuration.pollLimits.maximumTags)
        self.state = .reading([], scanner, deadline: connection.currentSecond + UInt64(context.configuration.headerTimeoutSeconds))
    }

    var encodesAnswers: Bool { true }

    func received(_ bytes: ByteBuffer) {
        switch self.state {
        case .plexor(let handler):
            handler.received(bytes)
        case .reading(var read, var scanner, let deadline):
            self.state = .done  // drops the state's reference: `read` grows in place, not copied per read
            read.append(contentsOf: bytes.readableBytesView)
            let plexor = Self.plexorRequests.filter { read.starts(with: $0.prefix(read.count)) }
            if !plexor.isEmpty {
                guard plexor.contains(where: { read.count >= $0.count }) else {
                    self.state = .reading(read, scanner, deadline: deadline)
                    return
                }
                let handler = self.makePlexorHandler()
                self.state = .plexor(handler)
                handler.started()
                return handler.received(ByteBuffer(bytes: read))
            }
            let outcome = scanner.scan(read)
            self.state = .reading(read, scanner, deadline: deadline)
            self.act(on: outcome)
        case .waiting, .done:
            return  // what follows the request is not read
        }
    }

    private func act(on outcome: WaitRequestScanner.Outcome) {
        switch outcome {
        case .needMore:
            return
        case .close:
            self.context.metrics.badRequests.add(1, ordering: .relaxed)
            self.finish(nil)
        case .refuse(let reason):
            self.context.metrics.badRequests.add(1, ordering: .relaxed)
            self.finish(WaitReply.refusal(reason))
        case .request(.script):
            self.finish(RealplexorAssets.script.response)
        case .request(.iframe):
            self.finish(RealplexorAssets.iframe.response)
        case .request(.listen(let ids)):
            self.connection.write(WaitReply.head)
            let deadline = NIODeadline.now() + .seconds(Int64(self.context.configuration.realplexor.waitTimeoutSeconds))
            self.poll(ids.map { TagCursor(tag: $0.tag, cursor: $0.cursor) }, deadline: deadline)
        }
    }

    /// Waits on `cursors` until `deadline` (whole seconds, at least one).
    private func poll(_ cursors: [TagCursor], deadline: NIODeadline) {
        let seconds = max(1, Int((deadline - .now()).nanoseconds / 1_000_000_000))
        self.state = .waiting(tags: cursors.map(\.tag), poll: nil, deadline: deadline)
        let id = self.shard.startPoll(PollRequest(tags: cursors, timeout: seconds), responder: self)
        if let id, case .waiting(let tags, nil, let deadline) = self.state {
            self.state = .waiting(tags: tags, poll: id, deadline: deadline)
        }
    }

    private func finish(_ reply: ByteBuffer?) {
        self.state = .done
        if let reply { self.connection.write(reply) }
        self.connection.closeAfterWriting()
    }

    // MARK: PollResponder

    func answerPoll(_ answer: PollAnswer) {
        guard case .waiting(let tags, _, let deadline) = self.state else { return }
        if let body = WaitReply.body(answer.messages, listening: tags) {
            return self.finish(body)
        }
        // Nothing to show yet (a cursor Plexor never issued, now at the head;
        // messages hidden by their limiters): wait on from where the answer stands.
        if deadline > .now() + .seconds(1), answer.tags.count == tags.count {
            return self.poll(zip(answer.tags, answer.cursors).map { TagCursor(tag: $0, cursor: $1) }, deadline: deadline)
        }
        self.finish(nil)  // the timeout: the body is the " \r\n" already sent
    }

    func answerPoll(_ body: ByteBuffer) {
        preconditionFailure("a WAIT poll is given its answers whole (encodesAnswers)")
    }

    /// The head went out already: closing is the failure (the client connects again with its cursors).
    func failPoll(status: HTTPResponseStatus, message: String) {
        guard case .waiting = self.state else { return }
        self.finish(nil)
    }

    // MARK: ConnectionHandler

    func becameWritable() {
        if case .plexor(let handler) = self.state { handler.becameWritable() }
    }

    func checkTimeouts(now second: UInt64) {
        switch self.state {
        case .plexor(let handler):
            handler.checkTimeouts(now: second)
        case .reading(_, _, let deadline) where second >= deadline:
            self.context.metrics.timedOutRequests.add(1, ordering: .relaxed)
            self.finish(nil)
        case .waiting(_, let poll, let deadline) where NIODeadline.now() > deadline + Self.grace:
            // The poll's own timeout answers it; should its subscription still be pending
            // (a listener slow to LISTEN), the client still gets the timeout reply.
            if let poll { self.shard.cancelPoll(poll) }
            self.finish(nil)
        case .reading, .waiting, .done:
            return
        }
    }

    func connectionClosed() {
        switch self.state {
        case .plexor(let handler):
            return handler.connectionClosed()  // it uncounts the connection
        case .waiting(_, let poll?, _):
            self.shard.cancelPoll(poll)
        case .reading, .waiting, .done:
            break
        }
        self.state = .done
        self.context.metrics.openConnections.subtract(1, ordering: .relaxed)
    }
}
