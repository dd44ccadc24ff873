/// A gateway's listeners per tag, summed over its loops, and which counts
/// the database has not heard yet. The loops add their changes; the writer
/// takes a report about once a second, and gives it back if it could not
/// be written.
public struct PresenceLedger: Sendable {
    private var totals: [Tag: Int] = [:]
    private var unreported: Set<Tag> = []

    public init() {}

    /// Tags with listeners on this gateway.
    public var trackedCount: Int { self.totals.count }

    public mutating func add(_ changes: [(tag: Tag, delta: Int)]) {
        for (tag, delta) in changes where delta != 0 {
            let total = (self.totals[tag] ?? 0) + delta
            precondition(total >= 0, "more listeners of \(tag) left than came")
            self.totals[tag] = total == 0 ? nil : total
            self.unreported.insert(tag)
        }
    }

    /// The counts to write: those that changed since the last report, or
    /// all of them (`everything`: the database lost what it had).
    public mutating func takeReport(everything: Bool) -> [(tag: Tag, listeners: Int)] {
        let tags: [Tag] = everything ? Array(Set(self.totals.keys).union(self.unreported)) : Array(self.unreported)
        self.unreported.removeAll(keepingCapacity: true)
        return tags.sorted().map { ($0, self.totals[$0] ?? 0) }
    }

    /// A report that was not written: its tags are reported next time (with their counts then).
    public mutating func restore(_ report: [(tag: Tag, listeners: Int)]) {
        for (tag, _) in report { self.unreported.insert(tag) }
    }
}
