/// Which tags presence is tracked for: all, or those starting with one of
/// a few prefixes (`--presence-prefixes`).
public struct PresenceScope: Sendable, Equatable {
    public var prefixes: [String]?

    public init(prefixes: [String]? = nil) {
        self.prefixes = prefixes
    }

    public func tracks(_ tag: Tag) -> Bool {
        guard let prefixes else { return true }
        return prefixes.contains { tag.name.hasPrefix($0) }
    }
}

/// What one event loop last reported of its listeners per tag. Once a
/// second the loop hands it its current counts; it returns only what
/// changed, as differences, so nothing on the poll path counts anything:
/// a client that re-polls between two reports is never seen leaving.
public struct PresenceTally {
    private var reported: [Tag: Int] = [:]
    public let scope: PresenceScope

    public init(scope: PresenceScope) {
        self.scope = scope
    }

    /// Tags this loop reported with listeners.
    public var trackedCount: Int { self.reported.count }

    /// `current`: every tag the loop holds, with its listeners (0 while lingering).
    /// Returns each tracked tag whose count moved, with how much.
    public mutating func changes<Counts: Sequence>(current: Counts) -> [(tag: Tag, delta: Int)]
    where Counts.Element == (tag: Tag, listeners: Int) {
        var changes: [(tag: Tag, delta: Int)] = []
        var next: [Tag: Int] = [:]
        next.reserveCapacity(self.reported.count)
        for (tag, listeners) in current where listeners > 0 && self.scope.tracks(tag) {
            next[tag] = listeners
            let before = self.reported.removeValue(forKey: tag) ?? 0
            if listeners != before { changes.append((tag, listeners - before)) }
        }
        // What is left was reported and has no listener now.
        for (tag, before) in self.reported { changes.append((tag, -before)) }
        self.reported = next
        return changes
    }
}
