/// The end of one tag's log as an event loop knows it: the last seq and up
/// to a few of the newest entries, contiguous. Established by a database
/// read, kept current by notifications; dropped at the first gap.
struct RecentLog {
    /// The tag's last seq.
    private(set) var head: Int64
    /// Entries `head - entries.count + 1 ... head`, oldest first.
    private(set) var entries: [LogEntry]

    init(head: Int64, entries: some Collection<LogEntry>) {
        self.head = head
        self.entries = Array(entries)
    }

    /// Adds the next message of the tag; `false` when it is not the next one (a gap).
    mutating func append(_ tagged: TaggedMessage, limit: Int) -> Bool {
        if tagged.seq <= self.head { return true }  // already known
        guard tagged.seq == self.head + 1 else { return false }
        let message = tagged.message
        self.entries.append(LogEntry(seq: tagged.seq, id: message.id, time: message.time, data: message.data, onlyFor: message.onlyFor))
        if self.entries.count > limit { self.entries.removeFirst(self.entries.count - limit) }
        self.head = tagged.seq
        return true
    }

    /// The window a catch-up after `cursor` would read, or `nil` when this
    /// log does not reach back to it (or the cursor is ahead: the database
    /// must confirm that).
    func window(after cursor: Int64?, tag: Tag) -> TagLogWindow? {
        let oldest = self.head - Int64(self.entries.count) + 1
        guard let cursor else { return TagLogWindow(tag: tag, lastSeq: self.head, firstSeq: oldest) }
        guard cursor <= self.head, cursor >= oldest - 1 else { return nil }
        let skipped = Int(cursor - (oldest - 1))
        return TagLogWindow(tag: tag, lastSeq: self.head, firstSeq: oldest, entries: self.entries.dropFirst(skipped))
    }
}
