import Logging
import NIOHTTP1
import NIOCore
import PlexorCore
import PlexorPostgres

/// Where a poll's answer goes: the HTTP handler of its connection.
protocol PollResponder: AnyObject {
    func answerPoll(_ body: ByteBuffer)
    func failPoll(status: HTTPResponseStatus, message: String)
}

/// One event loop's hub, and the life of each poll on it: watch its tags,
/// wait for the listener to LISTEN, catch up from the database, park, answer.
///
/// Confined to its loop; only `receive` and `resynchronize` are called from
/// the listener's threads, and they hop.
final class HubShard: NotificationSink, @unchecked Sendable {
    private struct ActivePoll {
        var request: PollRequest
        var tags: [Tag]
        var deadline: NIODeadline
        /// Tags this poll made the shard watch for the first time (to subscribe).
        var newTags: [Tag]
        var responder: PollResponder
    }

    let loop: EventLoop
    let index: Int
    private let listener: Listener
    private let pool: PostgresPool
    private let configuration: GatewayConfiguration
    private let metrics: GatewayMetrics
    private let logger: Logger
    private var hub: Hub
    private var active: [PollID: ActivePoll] = [:]
    private var nextID: UInt64 = 0
    private var sweep: RepeatedTask?
    /// Set by graceful shutdown: new polls are refused so clients go elsewhere.
    private var draining = false

    init(loop: EventLoop, index: Int, listener: Listener, pool: PostgresPool,
         configuration: GatewayConfiguration, metrics: GatewayMetrics, logger: Logger) {
        self.loop = loop
        self.index = index
        self.listener = listener
        self.pool = pool
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.hub = Hub(linger: configuration.listenLinger)
    }

    /// Starts the coarse timeout sweep (one timer per loop, not per poll).
    func start() {
        self.sweep = self.loop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { [self] _ in
            let now = NIODeadline.now()
            self.perform(self.hub.expire(now: now))
            self.listener.release(self.hub.releaseIdle(now: now), sink: self.index)
        }
    }

    // MARK: Polls (on the loop)

    func startPoll(_ request: PollRequest, responder: PollResponder) -> PollID? {
        self.loop.preconditionInEventLoop()
        guard !self.draining else {
            responder.failPoll(status: .serviceUnavailable, message: "the gateway is shutting down; poll again (any gateway) with the same cursors")
            return nil
        }
        // What this loop knows already may answer the poll: then it never
        // needs an id, its tags watched or the listener asked. A recent log is
        // a contiguous stretch of the tag's log, so answering from it is
        // consistent even if it is a moment old; only parking needs LISTEN.
        let known: CatchUp.Outcome?
        if request.tags.count == 1 {
            // The usual poll: written straight from the tag's log.
            switch self.answerOneAtOnce(request, responder: responder) {
            case .answered: return nil
            case .wait(let cursor): known = .park(cursors: [cursor])
            case .unknown: known = nil
            }
        } else {
            known = self.hub.catchUpFromRecent(request.tags, maximumPerTag: self.configuration.catchUpLimitPerTag)
            if let known, let answer = Self.answerAtOnce(known, request: request) {
                var encoder = AnswerEncoder()
                self.send(answer, to: responder, encoder: &encoder)
                return nil
            }
        }
        self.nextID += 1
        let id = PollID(self.nextID)
        let tags = request.tags.map(\.tag)
        let newTags = self.hub.watch(tags)
        self.active[id] = ActivePoll(
            request: request,
            tags: tags,
            deadline: .now() + .seconds(Int64(request.timeout)),
            newTags: newTags,
            responder: responder
        )
        self.catchUp(id, cursors: request.tags, known: known)
        return id
    }

    private enum OneAtOnce {
        case answered
        /// Nothing it may see after its cursor: it would wait from `cursor`.
        case wait(cursor: Int64)
        /// The recent log does not cover the cursor (or holds more than one answer).
        case unknown
    }

    /// A one-tag poll answered from its tag's recent log, as `answerAtOnce`
    /// would answer it, with no answer or message values built.
    private func answerOneAtOnce(_ request: PollRequest, responder: PollResponder) -> OneAtOnce {
        let item = request.tags[0]
        guard let (entries, head) = self.hub.recentEntries(after: item.cursor, tag: item.tag),
              entries.count <= self.configuration.catchUpLimitPerTag else { return .unknown }
        guard request.timeout == 0 || entries.contains(where: { $0.isVisible(to: item.tag) }) else {
            return .wait(cursor: head)
        }
        let (body, messages) = AnswerEncoder.encodeOne(item.tag, entries: entries, cursor: head)
        self.count(answerWith: messages)
        responder.answerPoll(body)
        return .answered
    }

    /// The answer for a poll whose catch-up came out as `outcome`, unless it is to wait.
    private static func answerAtOnce(_ outcome: CatchUp.Outcome, request: PollRequest) -> PollAnswer? {
        switch outcome {
        case .answer(let answer):
            return answer
        case .park(let cursors):
            return request.timeout == 0 ? PollAnswer(tags: request.tags.map(\.tag), cursors: cursors) : nil
        }
    }

    /// The client went away: forget the poll without answering.
    func cancelPoll(_ id: PollID) {
        self.loop.preconditionInEventLoop()
        guard self.active[id] != nil else { return }
        if self.hub.unpark(id) { self.metrics.parkedPolls.subtract(1, ordering: .relaxed) }
        self.finish(id)
    }

    /// Graceful shutdown: answers every parked poll with its current cursors
    /// and refuses new ones.
    func drain() {
        self.loop.preconditionInEventLoop()
        self.draining = true
        self.perform(self.hub.releaseAll())
    }

    func stop() {
        self.sweep?.cancel()
        self.sweep = nil
    }

    /// Brings a poll up to date: from the tags' recent logs when they cover
    /// its cursors, else from the database; then answers or parks it.
    /// `known`: the recent logs' outcome, read on this loop just before (still
    /// true if the tags turn out to be LISTENed already).
    private func catchUp(_ id: PollID, cursors: [TagCursor], known: CatchUp.Outcome? = nil) {
        guard var poll = self.active[id] else { return }
        let newTags = poll.newTags
        poll.newTags = []
        self.active[id] = poll
        switch self.listener.subscribe(newTags: newTags, allTags: poll.tags, sink: self.index, on: self.loop) {
        case .listening(let epoch):
            if let known {
                self.caughtUp(id, cursors: cursors, result: .success((epoch, .recentLogs(known))))
            } else {
                self.catchUp(id, cursors: cursors, listeningSince: epoch)
            }
        case .unavailable:
            self.caughtUp(id, cursors: cursors, result: .failure(ListenerUnavailable()))
        case .pending(let listening):
            listening.whenComplete { result in
                switch result {
                case .success(let epoch): self.catchUp(id, cursors: cursors, listeningSince: epoch)
                case .failure(let error): self.caughtUp(id, cursors: cursors, result: .failure(error))
                }
            }
        }
    }

    /// With LISTEN in place: from the recent logs at once if they cover the
    /// cursors, else from the database.
    private func catchUp(_ id: PollID, cursors: [TagCursor], listeningSince epoch: UInt64) {
        let limit = self.configuration.catchUpLimitPerTag
        if let outcome = self.hub.catchUpFromRecent(cursors, maximumPerTag: limit) {
            return self.caughtUp(id, cursors: cursors, result: .success((epoch, .recentLogs(outcome))))
        }
        self.metrics.catchUps.add(1, ordering: .relaxed)
        self.pool.withConnection(on: self.loop) { connection in
            (epoch, CatchUpSource.database(try connection.catchUp(cursors, maximumPerTag: limit)))
        }.whenComplete { result in
            self.caughtUp(id, cursors: cursors, result: result)
        }
    }

    private enum CatchUpSource {
        case recentLogs(CatchUp.Outcome)
        case database([TagLogWindow])
    }

    private func caughtUp(_ id: PollID, cursors: [TagCursor], result: Result<(UInt64, CatchUpSource), Error>) {
        guard let poll = self.active[id] else { return }  // the client went away meanwhile
        let limit = self.configuration.catchUpLimitPerTag
        let epoch: UInt64
        let outcome: CatchUp.Outcome
        switch result {
        case .success((let readEpoch, .database(let windows))):
            epoch = readEpoch
            if self.listener.isCurrent(epoch) {
                self.hub.learn(cursors, windows: windows, maximumPerTag: limit)
            }
            outcome = CatchUp.resolve(cursors, windows: windows, maximumPerTag: limit)
        case .success((let readEpoch, .recentLogs(let recent))):
            epoch = readEpoch
            outcome = recent
        case .failure(let error):
            self.logger.warning("catch-up failed", metadata: ["error": "\(error)"])
            self.metrics.pollsFailed.add(1, ordering: .relaxed)
            poll.responder.failPoll(status: .serviceUnavailable, message: "PostgreSQL is unavailable; retry with the same cursors")
            self.finish(id)
            return
        }
        var encoder = AnswerEncoder()
        switch outcome {
        case .answer(let answer):
            self.answer(id, answer, encoder: &encoder)
        case .park(let parkCursors):
            if poll.request.timeout == 0 || poll.deadline <= .now() {
                self.answer(id, PollAnswer(tags: poll.tags, cursors: parkCursors), encoder: &encoder)
                return
            }
            let concrete = zip(poll.tags, parkCursors).map { TagCursor(tag: $0, cursor: $1) }
            // Notifications may have been lost since the LISTEN: catch up again.
            guard self.listener.isCurrent(epoch) else {
                self.catchUp(id, cursors: concrete)
                return
            }
            switch self.hub.park(id, tags: poll.tags, cursors: parkCursors, deadline: poll.deadline) {
            case .parked:
                self.metrics.parkedPolls.add(1, ordering: .relaxed)
            case .stale:
                self.catchUp(id, cursors: concrete)
            }
        }
    }

    private func perform(_ actions: [Hub.Action]) {
        guard !actions.isEmpty else { return }
        self.metrics.parkedPolls.subtract(actions.count, ordering: .relaxed)
        var encoder = AnswerEncoder()
        for action in actions {
            switch action {
            case .answer(let id, let answer):
                self.answer(id, answer, encoder: &encoder)
            case .catchUp(let id, let cursors):
                guard let poll = self.active[id] else { continue }
                self.catchUp(id, cursors: zip(poll.tags, cursors).map { TagCursor(tag: $0, cursor: $1) })
            }
        }
    }

    private func answer(_ id: PollID, _ answer: PollAnswer, encoder: inout AnswerEncoder) {
        guard let poll = self.active[id] else { return }
        self.send(answer, to: poll.responder, encoder: &encoder)
        self.finish(id)
    }

    private func send(_ answer: PollAnswer, to responder: PollResponder, encoder: inout AnswerEncoder) {
        let body = encoder.encode(answer)
        self.count(answerWith: answer.messages.count)
        responder.answerPoll(body)
    }

    private func count(answerWith messages: Int) {
        if messages == 0 {
            self.metrics.pollsAnsweredEmpty.add(1, ordering: .relaxed)
        } else {
            self.metrics.pollsAnsweredWithMessages.add(1, ordering: .relaxed)
            self.metrics.messagesDelivered.add(messages, ordering: .relaxed)
        }
    }

    private func finish(_ id: PollID) {
        guard let poll = self.active.removeValue(forKey: id) else { return }
        // The tags linger on this loop; the sweep releases them to the listener.
        self.hub.unwatch(poll.tags, now: .now())
    }

    // MARK: NotificationSink (listener threads)

    func receive(_ batch: [TaggedMessage]) {
        self.loop.execute {
            self.perform(self.hub.deliver(batch))
        }
    }

    func resynchronize() {
        self.loop.execute {
            self.perform(self.hub.releaseAll())
        }
    }
}
