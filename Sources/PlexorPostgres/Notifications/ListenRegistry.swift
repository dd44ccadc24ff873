import NIOCore
import PlexorCore

/// Which tags the listener connection LISTENs on, reference-counted by the
/// event loops ("sinks", at most 64) that want them. A value type: the
/// listener thread asks it what to send and tells it what happened.
///
/// A tag nobody wants any more stays LISTENed for a linger period, so a
/// client that polls again right after its answer finds it ready.
public struct ListenRegistry {
    public static let maximumSinks = 64

    public enum Phase: Equatable, Sendable {
        case needsListen
        case listenSent
        case listening
        case unlistenSent
    }

    public enum Command: Equatable, Sendable {
        case listen([Tag])
        case unlisten([Tag])
    }

    struct Entry {
        var sinks: UInt64 = 0
        var phase: Phase = .needsListen
        /// When the last sink released the tag (while nobody wants it).
        var idleSince: NIODeadline?
    }

    private var entries: [Tag: Entry] = [:]

    public init() {}

    public var count: Int { self.entries.count }

    public func phase(of tag: Tag) -> Phase? { self.entries[tag]?.phase }

    /// The sinks (bit `i` for sink `i`) that want notifications for `tag`.
    public func sinks(for tag: Tag) -> UInt64 { self.entries[tag]?.sinks ?? 0 }

    /// Whether every tag is LISTENed on the current connection.
    public func isListening(_ tags: [Tag]) -> Bool {
        tags.allSatisfy { self.entries[$0]?.phase == .listening }
    }

    /// Whether every wanted tag is LISTENed (nothing is waiting for a LISTEN).
    public var isSettled: Bool {
        self.entries.values.allSatisfy { $0.sinks == 0 || $0.phase == .listening }
    }

    /// `sink` wants `tags`. Returns whether all of them are LISTENed already.
    public mutating func want(_ tags: [Tag], sink: Int) -> Bool {
        precondition(sink >= 0 && sink < Self.maximumSinks, "sink \(sink) out of range")
        var ready = true
        for tag in tags {
            var entry = self.entries[tag] ?? Entry()
            entry.sinks |= 1 << UInt64(sink)
            entry.idleSince = nil
            if entry.phase != .listening { ready = false }
            self.entries[tag] = entry
        }
        return ready
    }

    /// `sink` no longer wants `tags`.
    public mutating func release(_ tags: [Tag], sink: Int, now: NIODeadline) {
        for tag in tags {
            guard var entry = self.entries[tag] else { continue }
            entry.sinks &= ~(1 << UInt64(sink))
            if entry.sinks == 0 {
                if entry.phase == .needsListen {
                    self.entries[tag] = nil
                    continue
                }
                entry.idleSince = now
            }
            self.entries[tag] = entry
        }
    }

    /// The next command to send: LISTEN for wanted tags first, then UNLISTEN
    /// for tags idle for longer than `linger`. Marks them as sent.
    public mutating func nextCommand(now: NIODeadline, linger: TimeAmount, maximumBatch: Int = 1000) -> Command? {
        var listen: [Tag] = []
        for (tag, entry) in self.entries where entry.phase == .needsListen && entry.sinks != 0 {
            listen.append(tag)
            if listen.count == maximumBatch { break }
        }
        if !listen.isEmpty {
            for tag in listen { self.entries[tag]!.phase = .listenSent }
            return .listen(listen)
        }
        var unlisten: [Tag] = []
        for (tag, entry) in self.entries
        where entry.phase == .listening && entry.sinks == 0 && entry.idleSince.map({ now - $0 >= linger }) == true {
            unlisten.append(tag)
            if unlisten.count == maximumBatch { break }
        }
        guard !unlisten.isEmpty else { return nil }
        for tag in unlisten { self.entries[tag]!.phase = .unlistenSent }
        return .unlisten(unlisten)
    }

    /// The server confirmed a command.
    public mutating func completed(_ command: Command) {
        switch command {
        case .listen(let tags):
            for tag in tags where self.entries[tag]?.phase == .listenSent {
                self.entries[tag]!.phase = .listening
            }
        case .unlisten(let tags):
            for tag in tags {
                guard let entry = self.entries[tag], entry.phase == .unlistenSent else { continue }
                if entry.sinks == 0 {
                    self.entries[tag] = nil
                } else {
                    self.entries[tag]!.phase = .needsListen  // wanted again meanwhile
                }
            }
        }
    }

    /// The connection is gone, and with it every LISTEN: what is still wanted
    /// must be LISTENed again on the next connection.
    public mutating func connectionLost() {
        for (tag, entry) in self.entries {
            if entry.sinks == 0 {
                self.entries[tag] = nil
            } else {
                self.entries[tag]!.phase = .needsListen
            }
        }
    }
}
