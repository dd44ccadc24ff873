/// A token bucket: holds up to `capacity` posts, refilled at `perMinute`.
/// A post takes one; an empty bucket says how long until the next.
public struct TokenBucket: Sendable, Equatable {
    public private(set) var tokens: Double
    public private(set) var updated: Double
    public var perMinute: Int

    /// Posts that may come at once: a third of a minute's worth, at least 3.
    public static func capacity(perMinute: Int) -> Double { Double(max(3, perMinute / 3)) }

    public init(perMinute: Int, now: Double) {
        self.perMinute = perMinute
        self.tokens = Self.capacity(perMinute: perMinute)
        self.updated = now
    }

    public var capacity: Double { Self.capacity(perMinute: self.perMinute) }

    /// Refills up to `now`.
    public mutating func refill(now: Double) {
        if now > self.updated {
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * Double(self.perMinute) / 60)
        }
        self.updated = max(self.updated, now)
    }

    /// Seconds until a post may be taken (0: now).
    public func wait(now: Double) -> Double {
        var copy = self
        copy.refill(now: now)
        return copy.tokens >= 1 ? 0 : (1 - copy.tokens) * 60 / Double(self.perMinute)
    }

    /// Takes one post.
    public mutating func take(now: Double) {
        self.refill(now: now)
        self.tokens -= 1
    }

    /// Full again: nothing to remember.
    public func isFull(now: Double) -> Bool {
        var copy = self
        copy.refill(now: now)
        return copy.tokens >= copy.capacity
    }
}

/// Rate limits for one post: the person's bucket and the address's; a post
/// is taken from both only when both have room, so a refused flood does not
/// drain the other's bucket.
public struct RateLimits: Sendable {
    public private(set) var buckets: [String: TokenBucket] = [:]
    /// Buckets kept at most; full buckets are forgotten first.
    public let capacity: Int

    public init(capacity: Int = 100_000) {
        self.capacity = capacity
    }

    /// Seconds to wait (nil: taken). `limits`: the bucket keys and their rates per minute.
    public mutating func take(_ limits: [(key: String, perMinute: Int)], now: Double) -> Double? {
        var wait = 0.0
        for limit in limits {
            var bucket = self.buckets[limit.key] ?? TokenBucket(perMinute: limit.perMinute, now: now)
            bucket.perMinute = limit.perMinute  // the site may have changed it
            wait = max(wait, bucket.wait(now: now))
        }
        guard wait == 0 else { return wait }
        if self.buckets.count + limits.count > self.capacity { self.forgetFull(now: now) }
        for limit in limits {
            var bucket = self.buckets[limit.key] ?? TokenBucket(perMinute: limit.perMinute, now: now)
            bucket.perMinute = limit.perMinute
            bucket.take(now: now)
            self.buckets[limit.key] = bucket
        }
        return nil
    }

    private mutating func forgetFull(now: Double) {
        self.buckets = self.buckets.filter { !$0.value.isFull(now: now) }
        // Still too many (a flood of addresses): forget all; each starts full again.
        if self.buckets.count >= self.capacity { self.buckets.removeAll(keepingCapacity: true) }
    }
}
