import Foundation
import Logging
import NIOCore
import PlexorCore
import Synchronization

/// How presence is kept (`--presence*`).
public struct PresenceSettings: Sendable, Equatable {
    public var enabled = true
    public var scope = PresenceScope()
    /// A tag stays online this long after its last listener anywhere went away.
    public var graceSeconds = 30
    /// A gateway silent this long is taken for dead, and its listeners removed.
    public var heartbeatTimeoutSeconds = 10
    /// Events older than this are removed.
    public var retentionSeconds = 7 * 86_400
    /// How often the loops hand in their counts and the writer writes, heartbeats and sweeps.
    public var interval: TimeAmount = .seconds(1)

    public init() {}
}

/// Writes a gateway's presence on its own thread and connection, once per
/// interval: a heartbeat (with the gateway's figures), the counts that
/// changed (all of them when the database lost its copy), a sweep of grace
/// periods and silent gateways, and now and then retention of old events.
/// What could not be written is written at the next turn.
///
/// `@unchecked Sendable`: the ledger and figures are behind their mutexes;
/// the connection is used only on the writer's thread.
public final class PresenceWriter: @unchecked Sendable {
    public struct Status: Sendable {
        /// Tags with listeners on this gateway.
        public var trackedTags = 0
        /// Tags online on any gateway, as of the last heartbeat.
        public var onlineTags: Int64 = 0
        /// Transactions that wrote counts.
        public var writes = 0
        /// Events this gateway's writes and sweeps caused.
        public var events: Int64 = 0
    }

    public let gateway = UUID()
    public let settings: PresenceSettings
    private let ledger = Mutex(PresenceLedger())
    private let state = Mutex(Status())
    private let logger: Logger
    private let figures: @Sendable (UUID) -> GatewayHeartbeat
    /// Told each new last position (on the writer's thread).
    private let positionMoved: @Sendable (Int64) -> Void
    private let stopping = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let started = Atomic<Bool>(false)
    private let isStopped = Atomic<Bool>(false)
    /// Writer thread only.
    private var connection: ReconnectingConnection
    private var mustReportAll = true
    private var lastTrim: NIODeadline?
    private var failures = RateLimit(interval: .seconds(10))

    /// `figures`: the heartbeat of the gateway whose id it is given (`gateway`).
    public init(connectionString: String, settings: PresenceSettings, logger: Logger,
                figures: @escaping @Sendable (UUID) -> GatewayHeartbeat, positionMoved: @escaping @Sendable (Int64) -> Void) {
        self.connection = ReconnectingConnection(connectionString, applicationName: "plexor-presence")
        self.settings = settings
        self.logger = logger
        self.figures = figures
        self.positionMoved = positionMoved
    }

    public var status: Status {
        var status = self.state.withLock { $0 }
        status.trackedTags = self.ledger.withLock { $0.trackedCount }
        return status
    }

    /// A loop's changed listener counts (any thread).
    public func add(_ changes: [(tag: Tag, delta: Int)]) {
        guard !changes.isEmpty else { return }
        self.ledger.withLock { $0.add(changes) }
    }

    public func start() {
        precondition(!self.started.exchange(true, ordering: .relaxed), "the presence writer started twice")
        let thread = Thread { [self] in
            self.run()
            self.finished.signal()
        }
        thread.name = "plexor-presence"
        thread.start()
    }

    /// Stops writing and leaves: this gateway's listeners are removed, so
    /// its tags start their grace period (their clients may reconnect to
    /// another gateway in time).
    public func shutdown() {
        guard self.started.load(ordering: .relaxed), !self.isStopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        self.stopping.signal()
        self.finished.wait()
    }

    private func run() {
        let interval = DispatchTimeInterval.nanoseconds(Int(self.settings.interval.nanoseconds))
        repeat {
            self.turn()
        } while self.stopping.wait(timeout: .now() + interval) == .timedOut
        do {
            _ = try self.connection.use { try $0.presenceLeave(gateway: self.gateway) }
        } catch {
            self.logger.warning("presence: could not remove this gateway's listeners; others remove them after the heartbeat timeout",
                                metadata: ["error": "\(error)"])
        }
        self.connection.close()
    }

    /// One heartbeat, report, sweep (and now and then a trim).
    private func turn() {
        var report: [(tag: Tag, listeners: Int)] = []
        do {
            let heartbeat = self.figures(self.gateway)
            let reply = try self.connection.use { try $0.presenceHeartbeat(heartbeat) }
            self.state.withLock { $0.onlineTags = reply.onlineTags }
            self.positionMoved(reply.lastPosition)
            let everything = reply.mustReportAll || self.mustReportAll
            report = self.ledger.withLock { $0.takeReport(everything: everything) }
            let events = try self.connection.use { try $0.presenceReport(gateway: self.gateway, report) }
            let wrote = !report.isEmpty
            report = []
            self.mustReportAll = false
            let swept = try self.connection.use {
                try $0.presenceSweep(grace: self.settings.graceSeconds, heartbeatTimeout: self.settings.heartbeatTimeoutSeconds)
            }
            self.state.withLock {
                if wrote { $0.writes += 1 }
                $0.events += events + (swept ?? 0)
            }
            let now = NIODeadline.now()
            if self.lastTrim.map({ now - $0 >= .hours(1) }) ?? true {
                _ = try self.connection.use { try $0.presenceTrim(maximumAgeSeconds: self.settings.retentionSeconds) }
                self.lastTrim = now
            }
        } catch {
            if !report.isEmpty { self.ledger.withLock { $0.restore(report) } }
            if let suppressed = self.failures.allow(now: .now()) {
                self.logger.warning("presence: could not write to PostgreSQL; retrying every interval", metadata: [
                    "error": "\(error)", "similar_failures_not_logged": "\(suppressed)",
                ])
            }
        }
    }
}
