import NIOCore

/// The life of every poll on one event loop, from its request to its answer.
/// A value type with no I/O: the clock and the listener's epoch come in with
/// each event, and every event returns what the caller must do.
///
///     start ──▶ answered at once from the recent logs (no id, nothing watched)
///       │
///       ▼
///     subscribing ──listening──▶ recent logs cover the cursors? ──▶ resolve
///       │   ▲                          │ no
///       │   │                          ▼
///       │   │                      querying ──databaseRead──▶ resolve
///       │   │                                                   │
///       │   └──── stale (a notification passed, or the ◀────────┤
///       │         listener reconnected meanwhile)               │
///       ▼                                                       ▼
///     failed (503)                             answer, or parked until a
///                                              notification, its deadline,
///                                              a drain or a resynchronize
///
/// A poll whose client leaves is cancelled in any phase; a reply that comes
/// back for it later finds nothing and does nothing.
public struct PollLifecycle {
    public enum Start: Equatable, Sendable {
        /// Draining for shutdown: answer 503 so the client goes to another gateway.
        case refused
        /// Answered from the recent logs: no id, nothing watched or asked.
        case answered(PollAnswer)
        /// A one-tag poll answered straight from its tag's recent log: the
        /// entries after its cursor and the tag's last seq (for
        /// `AnswerEncoder.encodeOne`, without building an answer).
        case answeredFromLog(Tag, entries: ArraySlice<LogEntry>, head: Int64)
        /// The poll waits under `id`; perform `action` (a subscribe) next.
        case started(PollID, Action)
    }

    public enum Action: Equatable, Sendable {
        /// Ask the listener to LISTEN on `newTags` and say when every one of
        /// `tags` is LISTENed: then call `listening`, or `failed`.
        case subscribe(PollID, newTags: [Tag], tags: [Tag])
        /// Read the tags' logs after `cursors` (at most the per-tag limit each,
        /// in one snapshot), then call `databaseRead` with `epoch`, or `failed`.
        case queryDatabase(PollID, cursors: [TagCursor], epoch: UInt64)
        /// Write the answer; the poll is over.
        case answer(PollID, PollAnswer)
        /// Answer 503 (PostgreSQL unavailable; retry with the same cursors); the poll is over.
        case fail(PollID)
        /// Tags nobody on this loop watched for the linger: the listener may stop sending them.
        case release([Tag])
    }

    private enum Phase: Equatable {
        case subscribing
        case querying
        case parked
    }

    /// Kept small: a gateway holds one per parked poll.
    private struct ActivePoll {
        var tags: [Tag]
        /// Where the next catch-up starts (concrete after the first one).
        var cursors: [TagCursor]
        var deadline: NIODeadline
        /// False for `timeout=0`: answered once caught up, never parked.
        var mayWait: Bool
        var phase: Phase
    }

    private var hub: Hub
    private var active: [PollID: ActivePoll] = [:]
    /// For polls waiting for LISTEN: what the recent logs said when they
    /// started, which holds once LISTEN is in place.
    private var knownAtStart: [PollID: CatchUp.Outcome] = [:]
    private var lastID: UInt64 = 0
    private var draining = false
    public let catchUpLimitPerTag: Int

    public init(catchUpLimitPerTag: Int, linger: TimeAmount, recentLimit: Int = 32) {
        self.hub = Hub(recentLimit: recentLimit, linger: linger)
        self.catchUpLimitPerTag = catchUpLimitPerTag
    }

    /// Polls parked right now (waiting for a notification or their deadline).
    public var parkedCount: Int { self.hub.parkedCount }
    /// Polls begun and not yet answered, in any phase.
    public var activeCount: Int { self.active.count }
    public var watchedTagCount: Int { self.hub.watchedTagCount }

    /// Every tag this loop holds, with its listeners: the polls on it, in any phase.
    public var listenerCounts: [(tag: Tag, listeners: Int)] {
        self.hub.watcherCounts
    }

    // MARK: Events from the client

    public mutating func start(_ request: PollRequest, now: NIODeadline) -> Start {
        guard !self.draining else { return .refused }
        // What this loop knows already may answer the poll: then it never
        // needs an id, its tags watched or the listener asked. A recent log is
        // a contiguous stretch of the tag's log, so answering from it is
        // consistent even if it is a moment old; only parking needs LISTEN.
        let known: CatchUp.Outcome?
        if request.tags.count == 1 {
            // The usual poll: written straight from the tag's log.
            let item = request.tags[0]
            if let (entries, head) = self.hub.recentEntries(after: item.cursor, tag: item.tag),
               entries.count <= self.catchUpLimitPerTag {
                if request.timeout == 0 || entries.contains(where: { $0.isVisible(to: item.tag) }) {
                    return .answeredFromLog(item.tag, entries: entries, head: head)
                }
                known = .park(cursors: [head])
            } else {
                known = nil
            }
        } else {
            known = self.hub.catchUpFromRecent(request.tags, maximumPerTag: self.catchUpLimitPerTag)
            switch known {
            case .answer(let answer)?:
                return .answered(answer)
            case .park(let cursors)? where request.timeout == 0:
                return .answered(PollAnswer(tags: request.tags.map(\.tag), cursors: cursors))
            case .park?, nil:
                break
            }
        }
        self.lastID += 1
        let id = PollID(self.lastID)
        let tags = request.tags.map(\.tag)
        let newTags = self.hub.watch(tags)
        self.active[id] = ActivePoll(tags: tags, cursors: request.tags, deadline: now + .seconds(Int64(request.timeout)),
                                     mayWait: request.timeout > 0, phase: .subscribing)
        if let known { self.knownAtStart[id] = known }
        return .started(id, .subscribe(id, newTags: newTags, tags: tags))
    }

    /// The client went away: forget the poll without answering, whatever its phase.
    public mutating func cancel(_ id: PollID, now: NIODeadline) {
        guard self.active[id] != nil else { return }
        self.hub.unpark(id)
        self.finish(id, now: now)
    }

    // MARK: Replies to actions

    /// Every tag of the poll is LISTENed since `epoch`; `listenerEpoch` is the
    /// listener's epoch now (0 while it is disconnected).
    public mutating func listening(_ id: PollID, epoch: UInt64, listenerEpoch: UInt64, now: NIODeadline) -> Action? {
        guard var poll = self.active[id] else { return nil }
        precondition(poll.phase == .subscribing, "\(id) was not waiting for LISTEN")
        if let known = self.knownAtStart.removeValue(forKey: id) {
            return self.resolve(id, known, epoch: epoch, listenerEpoch: listenerEpoch, now: now)
        }
        if let outcome = self.hub.catchUpFromRecent(poll.cursors, maximumPerTag: self.catchUpLimitPerTag) {
            return self.resolve(id, outcome, epoch: epoch, listenerEpoch: listenerEpoch, now: now)
        }
        poll.phase = .querying
        self.active[id] = poll
        return .queryDatabase(id, cursors: poll.cursors, epoch: epoch)
    }

    /// The database read of `queryDatabase(id, …, epoch)`: one window per tag, in the poll's order.
    public mutating func databaseRead(_ id: PollID, windows: [TagLogWindow], epoch: UInt64,
                                      listenerEpoch: UInt64, now: NIODeadline) -> Action? {
        guard let poll = self.active[id] else { return nil }  // the client went away meanwhile
        precondition(poll.phase == .querying, "\(id) was not waiting for the database")
        // Only a read made while nothing can have been missed may become the recent log.
        if epoch == listenerEpoch {
            self.hub.learn(poll.cursors, windows: windows, maximumPerTag: self.catchUpLimitPerTag)
        }
        let outcome = CatchUp.resolve(poll.cursors, windows: windows, maximumPerTag: self.catchUpLimitPerTag)
        return self.resolve(id, outcome, epoch: epoch, listenerEpoch: listenerEpoch, now: now)
    }

    /// The subscribe or the database read failed (PostgreSQL is unavailable).
    public mutating func failed(_ id: PollID, now: NIODeadline) -> Action? {
        guard let poll = self.active[id] else { return nil }
        precondition(poll.phase != .parked, "\(id) is parked, with nothing in flight to fail")
        self.finish(id, now: now)
        return .fail(id)
    }

    // MARK: Events of the loop and the listener

    /// Notifications, in the order PostgreSQL sent them.
    public mutating func deliver(_ batch: [TaggedMessage], now: NIODeadline) -> [Action] {
        self.perform(self.hub.deliver(batch), now: now)
    }

    /// The loop's periodic sweep: answers polls past their deadline and
    /// releases tags idle for the linger.
    public mutating func tick(now: NIODeadline) -> [Action] {
        var actions = self.perform(self.hub.expire(now: now), now: now)
        let released = self.hub.releaseIdle(now: now)
        if !released.isEmpty { actions.append(.release(released)) }
        return actions
    }

    /// The listener reconnected and notifications may have been lost: every
    /// parked poll is answered with its cursors and polls again at once.
    public mutating func resynchronize(now: NIODeadline) -> [Action] {
        self.perform(self.hub.releaseAll(), now: now)
    }

    /// Graceful shutdown: parked polls are answered with their cursors and
    /// new ones refused, so clients go on at another gateway.
    public mutating func drain(now: NIODeadline) -> [Action] {
        self.draining = true
        return self.perform(self.hub.releaseAll(), now: now)
    }

    // MARK: Private

    /// A catch-up's outcome, read while LISTENing since `epoch`: answer, or
    /// park unless something may have been missed since the read.
    private mutating func resolve(_ id: PollID, _ outcome: CatchUp.Outcome, epoch: UInt64,
                                  listenerEpoch: UInt64, now: NIODeadline) -> Action? {
        guard var poll = self.active[id] else { return nil }
        switch outcome {
        case .answer(let answer):
            self.finish(id, now: now)
            return .answer(id, answer)
        case .park(let cursors):
            if !poll.mayWait || poll.deadline <= now {
                self.finish(id, now: now)
                return .answer(id, PollAnswer(tags: poll.tags, cursors: cursors))
            }
            poll.cursors = zip(poll.tags, cursors).map { TagCursor(tag: $0, cursor: $1) }
            // The listener reconnected since the read (notifications may be
            // lost), or one passed the cursors: catch up again.
            guard epoch == listenerEpoch,
                  self.hub.park(id, tags: poll.tags, cursors: cursors, deadline: poll.deadline) == .parked else {
                poll.phase = .subscribing
                self.active[id] = poll
                return .subscribe(id, newTags: [], tags: poll.tags)
            }
            poll.phase = .parked
            self.active[id] = poll
            return nil
        }
    }

    /// The hub's decisions about parked polls, as actions.
    private mutating func perform(_ decisions: [Hub.Action], now: NIODeadline) -> [Action] {
        decisions.map { decision in
            switch decision {
            case .answer(let id, let answer):
                self.finish(id, now: now)
                return .answer(id, answer)
            case .catchUp(let id, let cursors):
                // It missed something: catch up again from its cursors.
                let tags = self.active[id]!.tags
                self.active[id]!.cursors = zip(tags, cursors).map { TagCursor(tag: $0, cursor: $1) }
                self.active[id]!.phase = .subscribing
                return .subscribe(id, newTags: [], tags: tags)
            }
        }
    }

    private mutating func finish(_ id: PollID, now: NIODeadline) {
        guard let poll = self.active.removeValue(forKey: id) else { return }
        // Left (or failed) before LISTEN was in place.
        if !self.knownAtStart.isEmpty { self.knownAtStart.removeValue(forKey: id) }
        // The tags linger on this loop; `tick` releases them.
        self.hub.unwatch(poll.tags, now: now)
    }
}
