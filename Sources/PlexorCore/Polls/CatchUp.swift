import NIOCore

/// One log entry read by catch-up.
public struct LogEntry: Equatable, Sendable {
    public var seq: Int64
    public var id: Int64
    public var time: String
    public var data: ByteBuffer
    public var onlyFor: [Tag]?

    public init(seq: Int64, id: Int64, time: String, data: ByteBuffer, onlyFor: [Tag]?) {
        self.seq = seq
        self.id = id
        self.time = time
        self.data = data
        self.onlyFor = onlyFor
    }

    /// Whether a poll listing `pollTags` may see this entry.
    func isVisible(to pollTags: [Tag]) -> Bool {
        PlexorCore.isVisible(onlyFor: self.onlyFor, to: pollTags)
    }

    /// Whether a poll of `pollTag` alone may see this entry.
    public func isVisible(to pollTag: Tag) -> Bool {
        PlexorCore.isVisible(onlyFor: self.onlyFor, to: pollTag)
    }
}

/// What the database holds for one tag of a poll, all read in one snapshot.
public struct TagLogWindow: Sendable {
    public var tag: Tag
    /// The tag's last seq (0 when nothing was ever published to it).
    public var lastSeq: Int64
    /// The oldest seq still kept (`lastSeq + 1` when none is).
    public var firstSeq: Int64
    /// Entries after the effective cursor, seq ascending, at most the per-tag
    /// limit. A slice: a window on a recent log shares the log's entries.
    public var entries: ArraySlice<LogEntry>

    public init(tag: Tag, lastSeq: Int64, firstSeq: Int64, entries: ArraySlice<LogEntry> = []) {
        self.tag = tag
        self.lastSeq = lastSeq
        self.firstSeq = firstSeq
        self.entries = entries
    }

    public init(tag: Tag, lastSeq: Int64, firstSeq: Int64, entries: [LogEntry]) {
        self.init(tag: tag, lastSeq: lastSeq, firstSeq: firstSeq, entries: entries[...])
    }
}

/// Turns what catch-up read into an answer, or into the cursors to park with.
public enum CatchUp {
    public enum Outcome: Sendable {
        /// Answer now: visible messages, a reset, or more entries than one read returns.
        case answer(PollAnswer)
        /// Nothing to say yet: wait for notifications after these cursors.
        case park(cursors: [Int64])
    }

    /// `windows` holds one entry per requested tag, in the request's order.
    public static func resolve(_ request: [TagCursor], windows: [TagLogWindow], maximumPerTag: Int) -> Outcome {
        precondition(request.count == windows.count, "catch-up must read one window per requested tag")
        var cursors: [Int64] = []
        cursors.reserveCapacity(request.count)
        var resets: [CursorReset] = []
        var moreWaiting = false
        let pollTags = request.map(\.tag)
        // One tag (the usual poll) needs no merge: its messages are in order already.
        let isSingleTag = request.count == 1
        var inOrder: [Message] = []
        var visibleByTag: [[Int64]] = []
        var messages: [Int64: Message] = [:]
        if !isSingleTag { visibleByTag.reserveCapacity(request.count) }

        for (item, window) in zip(request, windows) {
            var cursor: Int64
            switch item.cursor {
            case nil:
                cursor = window.lastSeq
            case let requested? where requested > window.lastSeq:
                cursor = window.lastSeq
                resets.append(CursorReset(tag: item.tag, reason: .ahead, cursor: cursor))
            case let requested? where requested > 0 && requested + 1 < window.firstSeq:
                cursor = window.firstSeq - 1
                resets.append(CursorReset(tag: item.tag, reason: .expired, cursor: cursor))
            case let requested?:
                cursor = requested
            }
            var visible: [Int64] = []
            for entry in window.entries where entry.seq > cursor {
                cursor = entry.seq
                guard entry.isVisible(to: pollTags) else { continue }
                let seq = TagSeq(tag: item.tag, seq: entry.seq)
                if isSingleTag {
                    inOrder.append(Message(id: entry.id, time: entry.time, seqs: [seq], onlyFor: entry.onlyFor, data: entry.data))
                    continue
                }
                visible.append(entry.id)
                if messages[entry.id] != nil {
                    messages[entry.id]!.seqs.append(seq)
                } else {
                    messages[entry.id] = Message(id: entry.id, time: entry.time, seqs: [seq], onlyFor: entry.onlyFor, data: entry.data)
                }
            }
            if window.entries.count >= maximumPerTag, cursor < window.lastSeq {
                moreWaiting = true
            }
            if !isSingleTag { visibleByTag.append(visible) }
            cursors.append(cursor)
        }

        guard !messages.isEmpty || !inOrder.isEmpty || !resets.isEmpty || moreWaiting else {
            return .park(cursors: cursors)
        }
        let ordered = isSingleTag ? inOrder : Self.mergeInCommitOrder(visibleByTag).map { messages[$0]! }
        return .answer(PollAnswer(messages: ordered, tags: pollTags, cursors: cursors, resets: resets))
    }

    /// Merges per-tag lists of message ids (each in seq order) into one list in
    /// which every tag's order is kept. Seq order is commit order for every
    /// tag, so one such order always exists: repeatedly take a message that
    /// heads every list it is in.
    static func mergeInCommitOrder(_ lists: [[Int64]]) -> [Int64] {
        let nonEmpty = lists.filter { !$0.isEmpty }
        if nonEmpty.count <= 1 { return nonEmpty.first ?? [] }
        var listsContaining: [Int64: [Int]] = [:]
        for (listIndex, list) in nonEmpty.enumerated() {
            for id in list { listsContaining[id, default: []].append(listIndex) }
        }
        var heads = [Int](repeating: 0, count: nonEmpty.count)
        var merged: [Int64] = []
        merged.reserveCapacity(listsContaining.count)
        while merged.count < listsContaining.count {
            var chosen: Int64?
            for (listIndex, list) in nonEmpty.enumerated() where heads[listIndex] < list.count {
                let id = list[heads[listIndex]]
                let headsAll = listsContaining[id]!.allSatisfy { other in
                    heads[other] < nonEmpty[other].count && nonEmpty[other][heads[other]] == id
                }
                if headsAll {
                    chosen = id
                    break
                }
            }
            // Unreachable when the lists come from one snapshot; never loop forever regardless.
            let id = chosen ?? nonEmpty.indices.compactMap { heads[$0] < nonEmpty[$0].count ? nonEmpty[$0][heads[$0]] : nil }.min()!
            merged.append(id)
            for listIndex in listsContaining[id]! where heads[listIndex] < nonEmpty[listIndex].count
                && nonEmpty[listIndex][heads[listIndex]] == id {
                heads[listIndex] += 1
            }
        }
        return merged
    }
}
