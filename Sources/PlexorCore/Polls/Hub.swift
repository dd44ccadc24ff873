import HeapModule
import NIOCore

/// Identifies one poll within one hub.
public struct PollID: Hashable, Sendable, CustomStringConvertible {
    public let value: UInt64

    public init(_ value: UInt64) {
        self.value = value
    }

    public var description: String { "poll#\(self.value)" }
}

/// Who waits for what, on one event loop. A value type with no I/O: every
/// event returns what the caller must do.
///
/// A poll's life: its tags are `watch`ed (the first watcher of a tag on this
/// loop makes the listener LISTEN), catch-up runs — from the tag's recent log
/// when it covers the cursors, else from the database — then the poll is
/// `park`ed with its cursors until a notification, its deadline, or a
/// release answers it; finally its tags are `unwatch`ed. A tag stays watched
/// for a linger after its last poll leaves, so the client's next poll finds
/// its recent log.
public struct Hub {
    struct ParkedPoll {
        var tags: [Tag]
        var cursors: [Int64]
        var deadline: NIODeadline
        var pending: [Message] = []
        /// Saw a gap in this batch: takes nothing more until it has caught up.
        var isBehind = false
    }

    struct TagState {
        var watchers = 0
        /// The highest seq notified for this tag while it was watched.
        var lastNotifiedSeq: Int64 = 0
        var parked: Set<PollID> = []
        /// What this loop knows of the tag's log without asking the database.
        var recent: RecentLog?
        /// Since when nobody watches the tag (it lingers until `releaseIdle`).
        var idleSince: NIODeadline?
    }

    public enum ParkResult: Equatable, Sendable {
        case parked
        /// A notification newer than the cursors already passed: catch up again.
        case stale
    }

    public enum Action: Sendable {
        /// Answer the poll and forget it (it is no longer parked).
        case answer(PollID, PollAnswer)
        /// The poll missed something (a gap in what it was sent): run catch-up
        /// again from these cursors. It is no longer parked.
        case catchUp(PollID, cursors: [Int64])
    }

    private var tagStates: [Tag: TagState] = [:]
    private var polls: [PollID: ParkedPoll] = [:]
    private var deadlines = DeadlineHeap()
    /// Tags that became idle, oldest first (entries may be stale: checked when popped).
    private var idleQueue: [(Tag, NIODeadline)] = []
    private var idleQueueStart = 0
    private let recentLimit: Int
    private let linger: TimeAmount

    /// `recentLimit`: messages kept per tag for polls that are slightly behind.
    /// `linger`: how long an unwatched tag keeps its state (and stays LISTENed).
    public init(recentLimit: Int = 32, linger: TimeAmount = .seconds(30)) {
        self.recentLimit = recentLimit
        self.linger = linger
    }

    public var parkedCount: Int { self.polls.count }
    public var watchedTagCount: Int { self.tagStates.count }

    /// Every tag this loop holds, with the polls watching it (0 while it lingers).
    public var watcherCounts: [(tag: Tag, listeners: Int)] {
        self.tagStates.map { (tag: $0.key, listeners: $0.value.watchers) }
    }

    // MARK: Interest

    /// Counts one more watcher for each tag; returns the tags this loop did
    /// not know (the listener must be asked for them).
    public mutating func watch(_ tags: [Tag]) -> [Tag] {
        var added: [Tag] = []
        for tag in tags {
            if self.tagStates[tag] == nil {
                self.tagStates[tag] = TagState()
                added.append(tag)
            }
            self.tagStates[tag]!.watchers += 1
            self.tagStates[tag]!.idleSince = nil
        }
        return added
    }

    /// Counts one watcher less for each tag. A tag left with none lingers
    /// (see `releaseIdle`).
    public mutating func unwatch(_ tags: [Tag], now: NIODeadline) {
        for tag in tags {
            guard var state = self.tagStates[tag] else {
                preconditionFailure("unwatch of \(tag), which is not watched")
            }
            state.watchers -= 1
            if state.watchers == 0 {
                precondition(state.parked.isEmpty, "a tag with parked polls lost its last watcher")
                state.idleSince = now
                self.idleQueue.append((tag, now))
            }
            self.tagStates[tag] = state
        }
    }

    /// Forgets tags idle for longer than the linger; returns them (the
    /// listener may stop sending them to this loop).
    public mutating func releaseIdle(now: NIODeadline) -> [Tag] {
        var released: [Tag] = []
        while self.idleQueueStart < self.idleQueue.count {
            let (tag, since) = self.idleQueue[self.idleQueueStart]
            guard now - since >= self.linger else { break }
            self.idleQueueStart += 1
            if let state = self.tagStates[tag], state.watchers == 0, state.idleSince == since {
                self.tagStates[tag] = nil
                released.append(tag)
            }
        }
        if self.idleQueueStart > 1024 && self.idleQueueStart * 2 > self.idleQueue.count {
            self.idleQueue.removeFirst(self.idleQueueStart)
            self.idleQueueStart = 0
        }
        return released
    }

    // MARK: Recent logs

    /// Answers a catch-up from the tags' recent logs, or `nil` when one of
    /// them does not cover its cursor (then the database must be asked).
    public func catchUpFromRecent(_ request: [TagCursor], maximumPerTag: Int) -> CatchUp.Outcome? {
        var windows: [TagLogWindow] = []
        windows.reserveCapacity(request.count)
        for item in request {
            guard let recent = self.tagStates[item.tag]?.recent else { return nil }
            guard var window = recent.window(after: item.cursor, tag: item.tag) else { return nil }
            // As a database read would: at most the limit, the rest in the next answer.
            window.entries = window.entries.prefix(maximumPerTag)
            windows.append(window)
        }
        return CatchUp.resolve(request, windows: windows, maximumPerTag: maximumPerTag)
    }

    /// A one-tag poll's catch-up from the tag's recent log, as the entries
    /// after its cursor (a slice of the log) and the tag's last seq; `nil`
    /// when the log does not cover the cursor. For answers written straight
    /// from the log (`AnswerEncoder.encodeOne`), without the general merge.
    public func recentEntries(after cursor: Int64?, tag: Tag) -> (entries: ArraySlice<LogEntry>, head: Int64)? {
        guard let window = self.tagStates[tag]?.recent?.window(after: cursor, tag: tag) else { return nil }
        return (window.entries, window.lastSeq)
    }

    /// Learns each tag's log from a database catch-up read in one snapshot,
    /// where nothing newer was notified meanwhile and the read reached the
    /// tag's last seq. Only call with reads made while the listener's
    /// connection stayed the same.
    public mutating func learn(_ request: [TagCursor], windows: [TagLogWindow], maximumPerTag: Int) {
        for (item, window) in zip(request, windows) {
            guard var state = self.tagStates[item.tag], state.recent == nil,
                  state.lastNotifiedSeq <= window.lastSeq else { continue }
            let reachedHead = window.entries.last.map { $0.seq == window.lastSeq }
                ?? (item.cursor.map { $0 >= window.lastSeq } ?? true)
            guard reachedHead else { continue }
            state.recent = RecentLog(head: window.lastSeq, entries: window.entries.suffix(self.recentLimit))
            self.tagStates[item.tag] = state
        }
    }

    // MARK: Parking

    /// Parks a poll whose tags are watched and whose catch-up found nothing.
    public mutating func park(_ id: PollID, tags: [Tag], cursors: [Int64], deadline: NIODeadline) -> ParkResult {
        precondition(self.polls[id] == nil, "\(id) is parked already")
        for (tag, cursor) in zip(tags, cursors) {
            guard let state = self.tagStates[tag] else { preconditionFailure("park of \(id) on unwatched \(tag)") }
            if state.lastNotifiedSeq > cursor { return .stale }
        }
        for tag in tags { self.tagStates[tag]!.parked.insert(id) }
        self.polls[id] = ParkedPoll(tags: tags, cursors: cursors, deadline: deadline)
        self.deadlines.push(deadline, id)
        return .parked
    }

    /// Forgets a parked poll (its client went away). Returns whether it was parked.
    @discardableResult
    public mutating func unpark(_ id: PollID) -> Bool {
        guard let poll = self.polls.removeValue(forKey: id) else { return false }
        for tag in poll.tags { self.tagStates[tag]?.parked.remove(id) }
        return true
    }

    // MARK: Events

    /// Hands a batch of notifications (in the order PostgreSQL sent them) to
    /// the parked polls. Each poll woken gets one answer with all it may see.
    public mutating func deliver(_ batch: [TaggedMessage]) -> [Action] {
        var woken: [PollID] = []
        for tagged in batch {
            guard self.tagStates[tagged.tag] != nil else { continue }
            // In place (no copy of the tag's state or its recent log).
            Self.record(tagged, in: &self.tagStates[tagged.tag]!, recentLimit: self.recentLimit)
            for id in self.tagStates[tagged.tag]!.parked where self.polls[id] != nil {
                switch Self.offer(tagged, to: &self.polls[id]!) {
                case .ignored, .advanced:
                    continue
                case .accepted:
                    if self.polls[id]!.pending.count == 1 { woken.append(id) }
                case .gap:
                    if self.polls[id]!.pending.isEmpty { woken.append(id) }
                }
            }
        }
        // A poll that fell behind but already accepted messages is answered with
        // them; its next poll catches up from the cursors it is given.
        return woken.compactMap { id in
            guard let poll = self.removePoll(id) else { return nil }
            if poll.pending.isEmpty {
                return .catchUp(id, cursors: poll.cursors)
            }
            return .answer(id, PollAnswer(messages: poll.pending, tags: poll.tags, cursors: poll.cursors))
        }
    }

    /// Answers every poll whose deadline is at or before `now`.
    public mutating func expire(now: NIODeadline) -> [Action] {
        var actions: [Action] = []
        while let (deadline, id) = self.deadlines.popFirst(notAfter: now) {
            guard let poll = self.polls[id], poll.deadline == deadline else { continue }
            self.removePoll(id)
            actions.append(.answer(id, PollAnswer(tags: poll.tags, cursors: poll.cursors)))
        }
        return actions
    }

    /// Answers every parked poll with its current cursors and forgets every
    /// recent log: on shutdown, or when notifications may have been lost (the
    /// listener reconnected). Clients poll again at once and catch up from
    /// their cursors.
    public mutating func releaseAll() -> [Action] {
        let actions = self.polls.map { id, poll in
            Action.answer(id, PollAnswer(messages: poll.pending, tags: poll.tags, cursors: poll.cursors))
        }
        self.polls.removeAll()
        self.deadlines = DeadlineHeap()
        for tag in Array(self.tagStates.keys) {
            self.tagStates[tag]!.parked.removeAll()
            self.tagStates[tag]!.recent = nil
        }
        return actions
    }

    // MARK: Private

    private enum Offer {
        case ignored, advanced, accepted, gap
    }

    /// Notes a notification in its tag's state: the highest seq seen, and
    /// the recent log (dropped at a gap: this loop no longer knows the log).
    private static func record(_ tagged: TaggedMessage, in state: inout TagState, recentLimit: Int) {
        state.lastNotifiedSeq = max(state.lastNotifiedSeq, tagged.seq)
        if state.recent != nil, !state.recent!.append(tagged, limit: recentLimit) {
            state.recent = nil
        }
    }

    /// Applies one notification to one poll. The message is new to the poll
    /// only when it is the very next seq of the notified tag; it is accepted
    /// only when every other tag of the poll it carries is also exactly next.
    /// A gap marks the poll as behind.
    private static func offer(_ tagged: TaggedMessage, to poll: inout ParkedPoll) -> Offer {
        guard !poll.isBehind, let index = poll.tags.firstIndex(of: tagged.tag) else { return .ignored }
        let cursor = poll.cursors[index]
        if tagged.seq <= cursor { return .ignored }
        if tagged.seq != cursor + 1 {
            poll.isBehind = true
            return .gap
        }
        let message = tagged.message
        guard message.isVisible(to: poll.tags) else {
            poll.cursors[index] = tagged.seq
            return .advanced
        }
        var moves: [(Int, Int64)] = []
        for entry in message.seqs {
            guard let other = poll.tags.firstIndex(of: entry.tag) else { continue }
            if entry.seq == poll.cursors[other] + 1 {
                moves.append((other, entry.seq))
            } else if entry.seq > poll.cursors[other] {
                poll.isBehind = true
                return .gap
            }
        }
        for (other, seq) in moves { poll.cursors[other] = seq }
        poll.pending.append(message)
        return .accepted
    }

    @discardableResult
    private mutating func removePoll(_ id: PollID) -> ParkedPoll? {
        guard let poll = self.polls.removeValue(forKey: id) else { return nil }
        for tag in poll.tags { self.tagStates[tag]?.parked.remove(id) }
        return poll
    }
}

/// The parked polls' deadlines, soonest first. Entries of polls that left
/// early stay until they surface (checked against the poll), so leaving
/// costs nothing.
struct DeadlineHeap {
    private struct Entry: Comparable {
        var deadline: NIODeadline
        var id: PollID

        static func < (lhs: Entry, rhs: Entry) -> Bool {
            lhs.deadline < rhs.deadline || (lhs.deadline == rhs.deadline && lhs.id.value < rhs.id.value)
        }
    }

    private var heap = Heap<Entry>()

    mutating func push(_ deadline: NIODeadline, _ id: PollID) {
        self.heap.insert(Entry(deadline: deadline, id: id))
    }

    mutating func popFirst(notAfter limit: NIODeadline) -> (NIODeadline, PollID)? {
        guard let first = self.heap.min, first.deadline <= limit else { return nil }
        self.heap.removeMin()
        return (first.deadline, first.id)
    }
}
