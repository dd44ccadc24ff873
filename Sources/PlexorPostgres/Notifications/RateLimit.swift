import NIOCore

/// Lets an event through at most once per `interval` (a log line about
/// something any client can cause as often as it likes).
struct RateLimit: Sendable {
    let interval: TimeAmount
    private var last: NIODeadline?
    private var suppressed = 0

    init(interval: TimeAmount) {
        self.interval = interval
    }

    /// Whether this event may go through; if so, how many were held back
    /// since the last one that did, else `nil`.
    mutating func allow(now: NIODeadline) -> Int? {
        if let last = self.last, now - last < self.interval {
            self.suppressed += 1
            return nil
        }
        self.last = now
        defer { self.suppressed = 0 }
        return self.suppressed
    }
}
