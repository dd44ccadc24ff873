import Logging
import NIOCore
import NIOHTTP1
import PlexorCore
import PlexorPostgres

/// Where a poll's answer goes: the HTTP handler of its connection.
protocol PollResponder: AnyObject {
    /// True for a responder that encodes answers its own way (Realplexor's
    /// WAIT line): it is given them whole, through `answerPoll(_: PollAnswer)`.
    var encodesAnswers: Bool { get }
    func answerPoll(_ body: ByteBuffer)
    func answerPoll(_ answer: PollAnswer)
    func failPoll(status: HTTPResponseStatus, message: String)
}

extension PollResponder {
    var encodesAnswers: Bool { false }
    func answerPoll(_ answer: PollAnswer) {}
}

/// One event loop's polls: carries out what its `PollLifecycle` decides —
/// asks the listener, queries the database, writes answers — and feeds the
/// replies back in. Every decision is the lifecycle's.
///
/// `@unchecked Sendable`: confined to its loop (futures it waits on complete
/// there); only `receive` and `resynchronize` come from the listener's
/// threads, and they hop.
final class HubShard: NotificationSink, @unchecked Sendable {
    let loop: EventLoop
    let index: Int
    private let listener: Listener
    private let pool: PostgresPool
    private let metrics: GatewayMetrics
    private let logger: Logger
    private var lifecycle: PollLifecycle
    /// Who waits for each poll the lifecycle has begun and not yet ended.
    private var responders: [PollID: PollResponder] = [:]
    /// What the parked-polls gauge last heard from this shard.
    private var reportedParked = 0
    private var sweep: RepeatedTask?
    /// Presence: what this loop last reported, and where it goes.
    private var presence: (tally: PresenceTally, writer: PresenceWriter, task: RepeatedTask?)?

    init(loop: EventLoop, index: Int, listener: Listener, pool: PostgresPool, presence: PresenceWriter?,
         configuration: GatewayConfiguration, metrics: GatewayMetrics, logger: Logger) {
        self.loop = loop
        self.index = index
        self.listener = listener
        self.pool = pool
        self.metrics = metrics
        self.logger = logger
        self.lifecycle = PollLifecycle(catchUpLimitPerTag: configuration.catchUpLimitPerTag, linger: configuration.listenLinger)
        self.presence = presence.map { (PresenceTally(scope: $0.settings.scope), $0, nil) }
    }

    /// Starts the coarse timeout sweep (one timer per loop, not per poll).
    func start() {
        self.sweep = self.loop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { [self] _ in
            self.perform(self.lifecycle.tick(now: .now()))
        }
        self.startPresence()
    }

    func stop() {
        self.sweep?.cancel()
        self.sweep = nil
        self.presence?.task?.cancel()
        self.presence?.task = nil
    }

    /// Hands the writer what changed in this loop's listener counts; once an
    /// interval, so nothing is counted per poll.
    private func startPresence() {
        guard let interval = self.presence?.writer.settings.interval else { return }
        self.presence?.task = self.loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] _ in
            guard let changes = self.presence?.tally.changes(current: self.lifecycle.listenerCounts) else { return }
            self.presence?.writer.add(changes)
        }
    }

    // MARK: Polls (on the loop)

    /// Begins a poll; returns its id unless it was answered (or refused) at once.
    func startPoll(_ request: PollRequest, responder: PollResponder) -> PollID? {
        self.loop.preconditionInEventLoop()
        switch self.lifecycle.start(request, now: .now()) {
        case .refused:
            responder.failPoll(status: .serviceUnavailable, message: "the gateway is shutting down; poll again (any gateway) with the same cursors")
            return nil
        case .answeredFromLog(let tag, let entries, let head):
            if responder.encodesAnswers {
                let answer = PollAnswer(tag, logEntries: entries, head: head)
                self.count(answerWith: answer.messages.count)
                responder.answerPoll(answer)
                return nil
            }
            let (body, messages) = AnswerEncoder.encodeOne(tag, entries: entries, cursor: head)
            self.count(answerWith: messages)
            responder.answerPoll(body)
            return nil
        case .answered(let answer):
            var encoder = AnswerEncoder()
            self.send(answer, to: responder, encoder: &encoder)
            return nil
        case .started(let id, let action):
            self.responders[id] = responder
            self.perform(action)
            return self.responders[id] == nil ? nil : id
        }
    }

    /// The client went away: forget the poll without answering.
    func cancelPoll(_ id: PollID) {
        self.loop.preconditionInEventLoop()
        guard self.responders.removeValue(forKey: id) != nil else { return }
        self.lifecycle.cancel(id, now: .now())
        self.reportParked()
    }

    /// Graceful shutdown: answers every parked poll with its current cursors
    /// and refuses new ones.
    func drain() {
        self.loop.preconditionInEventLoop()
        self.perform(self.lifecycle.drain(now: .now()))
    }

    // MARK: Carrying out actions

    private func perform(_ actions: [PollLifecycle.Action]) {
        var encoder = AnswerEncoder()
        for action in actions { self.perform(action, encoder: &encoder) }
        self.reportParked()
    }

    private func perform(_ action: PollLifecycle.Action?) {
        guard let action else { return self.reportParked() }
        var encoder = AnswerEncoder()
        self.perform(action, encoder: &encoder)
        self.reportParked()
    }

    private func perform(_ action: PollLifecycle.Action, encoder: inout AnswerEncoder) {
        switch action {
        case .subscribe(let id, let newTags, let tags):
            self.subscribe(id, newTags: newTags, tags: tags)
        case .queryDatabase(let id, let cursors, let epoch):
            self.query(id, cursors: cursors, epoch: epoch)
        case .answer(let id, let answer):
            guard let responder = self.responders.removeValue(forKey: id) else { return }
            self.send(answer, to: responder, encoder: &encoder)
        case .fail(let id):
            guard let responder = self.responders.removeValue(forKey: id) else { return }
            self.metrics.pollsFailed.add(1, ordering: .relaxed)
            responder.failPoll(status: .serviceUnavailable, message: "PostgreSQL is unavailable; retry with the same cursors")
        case .release(let tags):
            self.listener.release(tags, sink: self.index)
        }
    }

    private func subscribe(_ id: PollID, newTags: [Tag], tags: [Tag]) {
        switch self.listener.subscribe(newTags: newTags, allTags: tags, sink: self.index, on: self.loop) {
        case .listening(let epoch):
            self.perform(self.lifecycle.listening(id, epoch: epoch, listenerEpoch: self.listener.currentEpoch, now: .now()))
        case .unavailable:
            self.failed(id, ListenerUnavailable())
        case .pending(let listening):
            listening.whenComplete { result in
                switch result {
                case .success(let epoch):
                    self.perform(self.lifecycle.listening(id, epoch: epoch, listenerEpoch: self.listener.currentEpoch, now: .now()))
                case .failure(let error):
                    self.failed(id, error)
                }
            }
        }
    }

    private func query(_ id: PollID, cursors: [TagCursor], epoch: UInt64) {
        self.metrics.catchUps.add(1, ordering: .relaxed)
        let limit = self.lifecycle.catchUpLimitPerTag
        self.pool.withConnection(on: self.loop) { connection in
            try connection.catchUp(cursors, maximumPerTag: limit)
        }.whenComplete { result in
            switch result {
            case .success(let windows):
                self.perform(self.lifecycle.databaseRead(id, windows: windows, epoch: epoch,
                                                         listenerEpoch: self.listener.currentEpoch, now: .now()))
            case .failure(let error):
                self.failed(id, error)
            }
        }
    }

    private func failed(_ id: PollID, _ error: Error) {
        self.logger.warning("catch-up failed", metadata: ["error": "\(error)"])
        self.perform(self.lifecycle.failed(id, now: .now()))
    }

    private func send(_ answer: PollAnswer, to responder: PollResponder, encoder: inout AnswerEncoder) {
        self.count(answerWith: answer.messages.count)
        if responder.encodesAnswers { return responder.answerPoll(answer) }
        responder.answerPoll(encoder.encode(answer))
    }

    private func count(answerWith messages: Int) {
        if messages == 0 {
            self.metrics.pollsAnsweredEmpty.add(1, ordering: .relaxed)
        } else {
            self.metrics.pollsAnsweredWithMessages.add(1, ordering: .relaxed)
            self.metrics.messagesDelivered.add(messages, ordering: .relaxed)
        }
    }

    /// Moves the gateway-wide gauge by this shard's change since it last did.
    private func reportParked() {
        let parked = self.lifecycle.parkedCount
        guard parked != self.reportedParked else { return }
        self.metrics.parkedPolls.add(parked - self.reportedParked, ordering: .relaxed)
        self.reportedParked = parked
    }

    // MARK: NotificationSink (listener threads)

    func receive(_ batch: [TaggedMessage]) {
        self.loop.execute {
            self.perform(self.lifecycle.deliver(batch, now: .now()))
        }
    }

    func resynchronize() {
        self.loop.execute {
            self.perform(self.lifecycle.resynchronize(now: .now()))
        }
    }
}
