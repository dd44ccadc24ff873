import Dispatch
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PlexorCore
import Synchronization

/// Receives notifications from the listener. Called on the listener's own
/// threads: implementations hop to their event loop.
public protocol NotificationSink: AnyObject, Sendable {
    /// Complete messages, in the order PostgreSQL sent them, for tags this sink wants.
    func receive(_ batch: [TaggedMessage])
    /// Notifications may have been lost (the listener reconnected, or a large
    /// message could not be fetched): parked polls must catch up again.
    func resynchronize()
}

/// The listener is not connected to PostgreSQL right now.
public struct ListenerUnavailable: Error, Sendable {
    public init() {}
}

/// The gateway's one LISTEN connection, on its own thread.
///
/// It never opens a transaction, waits in `poll()` on the libpq socket and a
/// wake pipe, and reads whatever arrives at once, so PostgreSQL's notification
/// queue never waits on it. Payloads too large for a NOTIFY are fetched on a
/// second connection by a serial queue, which keeps the order of delivery.
/// When the connection breaks it reconnects with backoff, LISTENs again on
/// everything wanted, and only then tells the sinks to resynchronize.
///
/// `@unchecked Sendable`: shared state is behind `state`'s lock; each other
/// mutable field is confined to one thread (noted on it) or set before it starts.
public final class Listener: @unchecked Sendable {
    public struct Status: Sendable {
        public var connected: Bool
        /// Connected and LISTENing on every tag currently wanted.
        public var ready: Bool
        public var listenedTags: Int
        public var notifications: UInt64
        /// Notifications dropped, by why (see `DroppedNotification`).
        public var dropped: [DroppedNotification: UInt64]
        public var reconnects: UInt64
    }

    /// Why a notification was not delivered.
    public enum DroppedNotification: String, CaseIterable, Sendable {
        /// Not signed with the trigger's key: sent by some other session.
        case unsigned
        /// Signed, yet not a payload this gateway reads (a newer trigger?).
        case malformed
        /// A reference to a message that does not carry the tag at that seq.
        case mismatchedReference = "mismatched_reference"
    }

    private struct Waiter {
        var tags: [Tag]
        var promise: EventLoopPromise<UInt64>
    }

    private struct State {
        var registry = ListenRegistry()
        var connected = false
        /// Counts connections whose LISTENs are all in place.
        var epoch: UInt64 = 0
        var waiters: [Waiter] = []
        var stopping = false
        var batchesAtFetcher = 0
        var notifications: UInt64 = 0
        var dropped: [DroppedNotification: UInt64] = [:]
        var reconnects: UInt64 = 0
    }

    private let connectionString: String
    private let logger: Logger
    private let linger: TimeAmount
    private let state = NIOLockedValueBox(State())
    /// The epoch while connected, else 0; written under the state's lock,
    /// read without it by every poll that parks.
    private let currentEpochValue = Atomic<UInt64>(0)
    /// Set by `start` before the thread exists; read-only afterwards.
    private var sinks: [NotificationSink] = []
    private let wakeDescriptors: (read: Int32, write: Int32)
    private let fetchQueue = DispatchQueue(label: "plexor.listener.fetch")
    /// Used only on `fetchQueue`.
    private var fetchConnection: ReconnectingConnection
    /// Used only on the listener thread.
    private var channelNames: [Tag: String] = [:]
    /// The trigger's signing key, read on each connection. Listener thread only.
    private var signature: NotificationSignature?
    private let loadedKey = NIOLockedValueBox<[UInt8]?>(nil)

    /// The notification key, once the listener has read it (the access
    /// tokens' key is derived from it).
    public var notificationKey: [UInt8]? { self.loadedKey.withLockedValue { $0 } }
    /// Warnings about dropped notifications, at most one a second (any session can send many).
    private let dropWarnings = NIOLockedValueBox(RateLimit(interval: .seconds(1)))
    private let finished = DispatchSemaphore(value: 0)
    /// Set by `start`, read by `shutdown`: both called by the listener's owner, one after the other.
    private var started = false

    public init(connectionString: String, linger: TimeAmount = .seconds(30), logger: Logger) {
        self.connectionString = connectionString
        self.fetchConnection = ReconnectingConnection(connectionString, applicationName: "plexor-fetch")
        self.linger = linger
        self.logger = logger
        var descriptors: [Int32] = [0, 0]
        precondition(pipe(&descriptors) == 0, "could not create the listener's wake pipe")
        for descriptor in descriptors {
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        }
        self.wakeDescriptors = (descriptors[0], descriptors[1])
    }

    deinit {
        close(self.wakeDescriptors.read)
        close(self.wakeDescriptors.write)
    }

    /// Starts the thread. Sink `i` receives the notifications of the tags it wants as sink `i`.
    public func start(sinks: [NotificationSink]) {
        precondition(!self.started && sinks.count <= ListenRegistry.maximumSinks)
        self.started = true
        self.sinks = sinks
        let thread = Thread { [self] in
            self.run()
            self.finished.signal()
        }
        thread.name = "plexor-listener"
        thread.start()
    }

    /// Stops the thread and closes the connections.
    public func shutdown() {
        guard self.started else { return }
        self.state.withLockedValue { $0.stopping = true }
        self.wake()
        self.finished.wait()
        self.fetchQueue.sync { self.fetchConnection.close() }
    }

    public var status: Status {
        self.state.withLockedValue { state in
            Status(connected: state.connected,
                   ready: state.connected && state.registry.isSettled,
                   listenedTags: state.registry.count,
                   notifications: state.notifications,
                   dropped: state.dropped,
                   reconnects: state.reconnects)
        }
    }

    /// `sink` wants `newTags` (tags it did not want before), and waits for
    /// every tag in `allTags` to be LISTENed: at once when they are (the
    /// usual case, with no future to allocate), else through a future on
    /// `loop`. `newTags` count as wanted either way.
    public func subscribe(newTags: [Tag], allTags: [Tag], sink: Int, on loop: EventLoop) -> Subscription {
        let subscription: Subscription = self.state.withLockedValue { state in
            _ = state.registry.want(newTags, sink: sink)
            guard state.connected else { return .unavailable }
            if state.registry.isListening(allTags) { return .listening(epoch: state.epoch) }
            let promise = loop.makePromise(of: UInt64.self)
            state.waiters.append(Waiter(tags: allTags, promise: promise))
            return .pending(promise.futureResult)
        }
        if case .pending = subscription { self.wake() }
        return subscription
    }

    /// Where a subscription stands when it is made.
    public enum Subscription {
        /// Every tag is LISTENed already, since `epoch`.
        case listening(epoch: UInt64)
        /// The listener is not connected: nothing can be promised.
        case unavailable
        /// Completes with the epoch once every tag is LISTENed (or fails if the listener goes down first).
        case pending(EventLoopFuture<UInt64>)
    }

    /// `sink` no longer wants `tags`; they are UNLISTENed after the linger.
    public func release(_ tags: [Tag], sink: Int) {
        guard !tags.isEmpty else { return }
        self.state.withLockedValue { $0.registry.release(tags, sink: sink, now: .now()) }
    }

    /// The epoch of the connection whose LISTENs are in place, or 0 while
    /// disconnected. Nothing can have been missed since an epoch was handed
    /// out while it is still the current one.
    public var currentEpoch: UInt64 {
        self.currentEpochValue.load(ordering: .acquiring)
    }

    // MARK: The listener thread

    private func run() {
        var backoff = TimeAmount.milliseconds(100)
        while !self.isStopping {
            let connection: PostgresConnection
            do {
                connection = try PostgresConnection(self.connectionString, applicationName: "plexor-listener")
            } catch {
                self.logger.warning("listener cannot connect; retrying", metadata: ["error": "\(error)", "in": "\(backoff)"])
                self.waitForWake(timeoutMilliseconds: Int32(backoff.nanoseconds / 1_000_000))
                backoff = min(backoff * 2, .seconds(5))
                continue
            }
            var established = false
            do {
                try self.serve(connection, established: &established)
            } catch {
                self.logger.warning("listener connection lost; reconnecting", metadata: ["error": "\(error)"])
            }
            // Back off unless this connection got as far as serving, so a
            // failing LISTEN (say, a missing schema) cannot spin.
            if established {
                backoff = .milliseconds(100)
            } else if !self.isStopping {
                self.waitForWake(timeoutMilliseconds: Int32(backoff.nanoseconds / 1_000_000))
                backoff = min(backoff * 2, .seconds(5))
            }
            self.channelNames.removeAll()
            let waiters = self.state.withLockedValue { state -> [Waiter] in
                state.connected = false
                self.currentEpochValue.store(0, ordering: .releasing)
                state.registry.connectionLost()
                defer { state.waiters.removeAll() }
                return state.waiters
            }
            waiters.forEach { $0.promise.fail(ListenerUnavailable()) }
        }
    }

    /// LISTENs on everything wanted, declares the connection current, then
    /// reads notifications until the connection breaks or the gateway stops.
    private func serve(_ connection: PostgresConnection, established: inout Bool) throws {
        // Payloads are signed over their UTF-8 bytes, whatever the connection string asked for.
        try connection.execute("SET client_encoding = 'UTF8'")
        let key = try connection.notificationKey()
        guard let signature = NotificationSignature(key: key) else {
            throw PostgresError(kind: .other, message: "plexor.notification_key holds no usable key; run `plexor migrate`")
        }
        self.signature = signature
        self.loadedKey.withLockedValue { $0 = key }
        try self.runCommands(connection, connected: false)
        established = true
        let (epoch, ready) = self.state.withLockedValue { state -> (UInt64, [Waiter]) in
            state.connected = true
            state.epoch += 1
            if state.epoch > 1 { state.reconnects += 1 }
            self.currentEpochValue.store(state.epoch, ordering: .releasing)
            return (state.epoch, Self.takeReadyWaiters(&state))
        }
        self.logger.info("listener connected", metadata: ["epoch": "\(epoch)"])
        if epoch > 1 { self.sinks.forEach { $0.resynchronize() } }
        ready.forEach { $0.promise.succeed(epoch) }

        let socket = connection.socket
        while true {
            var descriptors = [
                pollfd(fd: socket, events: Int16(POLLIN), revents: 0),
                pollfd(fd: self.wakeDescriptors.read, events: Int16(POLLIN), revents: 0),
            ]
            let polled = poll(&descriptors, 2, 1000)
            if polled < 0 && errno != EINTR {
                throw PostgresError(kind: .other, message: "poll failed: \(String(cString: strerror(errno)))")
            }
            if self.isStopping { return }
            if descriptors[1].revents != 0 { self.drainWakePipe() }
            if descriptors[0].revents != 0 {
                try connection.consumeInput()
                self.dispatchNotifications(from: connection)
            }
            try self.runCommands(connection, connected: true)
        }
    }

    /// Sends LISTEN/UNLISTEN until the registry has nothing more to send.
    private func runCommands(_ connection: PostgresConnection, connected: Bool) throws {
        while let command = self.state.withLockedValue({ $0.registry.nextCommand(now: .now(), linger: self.linger) }) {
            let (verb, tags): (String, [Tag]) = switch command {
            case .listen(let tags): ("LISTEN", tags)
            case .unlisten(let tags): ("UNLISTEN", tags)
            }
            let unknown = tags.filter { self.channelNames[$0] == nil }
            if !unknown.isEmpty {
                for (tag, channel) in zip(unknown, try connection.channels(for: unknown)) {
                    self.channelNames[tag] = channel
                }
            }
            // Identifiers quoted by libpq: the only SQL text built here.
            var sql = ""
            for tag in tags {
                sql += "\(verb) \(try connection.quoteIdentifier(self.channelNames[tag]!));"
            }
            try connection.executeScript(sql)
            if case .unlisten = command { tags.forEach { self.channelNames[$0] = nil } }
            self.dispatchNotifications(from: connection)
            let (epoch, ready) = self.state.withLockedValue { state -> (UInt64, [Waiter]) in
                state.registry.completed(command)
                return (state.epoch, connected ? Self.takeReadyWaiters(&state) : [])
            }
            ready.forEach { $0.promise.succeed(epoch) }
        }
    }

    private static func takeReadyWaiters(_ state: inout State) -> [Waiter] {
        var ready: [Waiter] = []
        state.waiters.removeAll { waiter in
            guard state.registry.isListening(waiter.tags) else { return false }
            ready.append(waiter)
            return true
        }
        return ready
    }

    // MARK: Delivery

    private func dispatchNotifications(from connection: PostgresConnection) {
        var payloads: [NotificationPayload] = []
        connection.drainNotifications { _, bytes in
            guard let body = self.signature?.verify(bytes) else {
                return self.drop(.unsigned, metadata: ["bytes": "\(bytes.count)"])
            }
            guard let payload = NotificationPayload.parse(body) else {
                return self.drop(.malformed, metadata: ["bytes": "\(bytes.count)"])
            }
            payloads.append(payload)
        }
        guard !payloads.isEmpty else { return }
        let hasReference = payloads.contains { if case .reference = $0 { return true } else { return false } }
        // Straight to the sinks unless the fetcher holds earlier batches (order matters).
        let direct = self.state.withLockedValue { state -> Bool in
            state.notifications += UInt64(payloads.count)
            if hasReference || state.batchesAtFetcher > 0 {
                state.batchesAtFetcher += 1
                return false
            }
            return true
        }
        if direct {
            self.send(payloads.map { payload in
                guard case .message(let tagged) = payload else { preconditionFailure("reference in a direct batch") }
                return tagged
            })
            return
        }
        let batch = payloads
        self.fetchQueue.async {
            self.send(self.resolveReferences(batch))
            self.state.withLockedValue { $0.batchesAtFetcher -= 1 }
        }
    }

    /// Runs on `fetchQueue`: replaces references by the messages they name.
    private func resolveReferences(_ payloads: [NotificationPayload]) -> [TaggedMessage] {
        var fetched: [Int64: Message?] = [:]
        var messages: [TaggedMessage] = []
        var failed = false
        for payload in payloads {
            switch payload {
            case .message(let tagged):
                messages.append(tagged)
            case .reference(let tag, let seq, let id):
                if fetched[id] == nil {
                    do {
                        fetched[id] = try self.fetchConnection.use { try $0.fetchMessage(id: id) }
                    } catch {
                        self.logger.warning("could not fetch a large message", metadata: ["id": "\(id)", "error": "\(error)"])
                        self.fetchConnection.close()
                        failed = true
                        fetched[id] = .some(nil)
                    }
                }
                // A message removed by retention meanwhile is skipped: the
                // polls that wanted it see a gap and catch up (with a reset).
                guard let message = fetched[id]! else { continue }
                // Delivered only for a tag the database says it carries, at that seq.
                guard message.seq(for: tag) == seq else {
                    self.drop(.mismatchedReference, metadata: ["id": "\(id)", "tag": "\(tag)", "seq": "\(seq)"])
                    continue
                }
                messages.append(TaggedMessage(tag: tag, seq: seq, message: message))
            }
        }
        if failed { self.sinks.forEach { $0.resynchronize() } }
        return messages
    }

    private func send(_ messages: [TaggedMessage]) {
        guard !messages.isEmpty else { return }
        let masks = self.state.withLockedValue { state in messages.map { state.registry.sinks(for: $0.tag) } }
        if self.sinks.count == 1 {
            let batch = zip(messages, masks).compactMap { $1 & 1 != 0 ? $0 : nil }
            if !batch.isEmpty { self.sinks[0].receive(batch) }
            return
        }
        for (index, sink) in self.sinks.enumerated() {
            let bit = UInt64(1) << UInt64(index)
            let batch = zip(messages, masks).compactMap { $1 & bit != 0 ? $0 : nil }
            if !batch.isEmpty { sink.receive(batch) }
        }
    }

    /// Counts a dropped notification and warns about it, at most once a second.
    private func drop(_ reason: DroppedNotification, metadata: Logger.Metadata) {
        self.state.withLockedValue { $0.dropped[reason, default: 0] += 1 }
        guard let suppressed = self.dropWarnings.withLockedValue({ $0.allow(now: .now()) }) else { return }
        var metadata = metadata
        metadata["reason"] = "\(reason.rawValue)"
        if suppressed > 0 { metadata["dropped_since_last_warning"] = "\(suppressed)" }
        let what = switch reason {
        case .unsigned: "dropped a notification the publish trigger did not sign (sent by another database session)"
        case .malformed: "dropped a signed notification this gateway cannot read (is a newer version migrating?)"
        case .mismatchedReference: "dropped a reference to a message that does not carry its tag at that seq"
        }
        self.logger.warning("\(what)", metadata: metadata)
    }

    // MARK: Waking

    private var isStopping: Bool { self.state.withLockedValue { $0.stopping } }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(self.wakeDescriptors.write, &byte, 1)
    }

    private func drainWakePipe() {
        var buffer = [UInt8](repeating: 0, count: 256)
        while read(self.wakeDescriptors.read, &buffer, buffer.count) > 0 {}
    }

    private func waitForWake(timeoutMilliseconds: Int32) {
        var descriptor = pollfd(fd: self.wakeDescriptors.read, events: Int16(POLLIN), revents: 0)
        _ = poll(&descriptor, 1, timeoutMilliseconds)
        self.drainWakePipe()
    }
}
