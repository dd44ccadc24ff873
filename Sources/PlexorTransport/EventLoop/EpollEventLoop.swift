import CEpoll
#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// Something registered with an epoll loop under a descriptor: told which
/// events it is ready for. Used only on its loop.
public class EpollRegistration {
    let descriptor: Int32
    /// Tells this registration from an earlier one under the same
    /// descriptor number, whose events may still be in a batch.
    fileprivate(set) var token: UInt32 = 0

    init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    func ready(events: UInt32) {}

    /// The loop shut down: release the descriptor.
    func loopClosed() {}
}

/// A NIO `EventLoop` on its own thread and epoll instance, whose sockets are
/// plain registrations rather than NIO channels: an idle connection costs
/// a registration and its handler, not a channel and a pipeline. Futures,
/// promises and scheduled tasks work as on any event loop, so the hub, the
/// query pool and the listener run on it unchanged.
///
/// `@unchecked Sendable`: registrations, timers and buffers are touched only
/// on the loop's thread; the task queue and the loop's life are behind `lock`.
public final class EpollEventLoop: EventLoop, @unchecked Sendable {
    private let epoll: Int32
    private let wakeup: Int32
    private var threadID = pthread_t()
    private let started = ConditionLock(value: false)

    /// Shared with other threads, under `lock`.
    private let lock = NIOLock()
    private var queued: [() -> Void] = []
    private var state = LifeState.running
    private var stoppedCallbacks: [(DispatchQueue, @Sendable (Error?) -> Void)] = []

    /// Confined to the loop's thread.
    private var timers = TimerQueue()
    /// Whole seconds since the loop started, as of its last turn: a clock
    /// for connection timeouts that costs nothing to read.
    public private(set) var currentSecond: UInt64 = 0
    private let startNanoseconds = NIODeadline.now().uptimeNanoseconds
    private var registrations: [EpollRegistration?] = []
    private var lastToken: UInt32 = 0
    /// Where every read on this loop lands before it is copied out at its size.
    let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)

    private enum LifeState {
        case running
        case stopping
        case stopped
    }

    init(name: String) throws {
        self.epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard self.epoll >= 0 else { throw IOError(errnoCode: errno, reason: "epoll_create1") }
        self.wakeup = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard self.wakeup >= 0 else { throw IOError(errnoCode: errno, reason: "eventfd") }
        var event = epoll_event(events: cepoll_in, data: epoll_data_t(u64: UInt64(UInt32(bitPattern: self.wakeup))))
        guard epoll_ctl(self.epoll, EPOLL_CTL_ADD, self.wakeup, &event) == 0 else {
            throw IOError(errnoCode: errno, reason: "epoll_ctl")
        }
        let retained = Unmanaged.passRetained(LoopStart(loop: self, name: name)).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { argument in
            let start = Unmanaged<LoopStart>.fromOpaque(argument!).takeRetainedValue()
            start.run()
            return nil
        }, retained)
        guard created == 0 else { throw IOError(errnoCode: created, reason: "pthread_create") }
        pthread_detach(thread)
        self.started.lock(whenValue: true)
        self.started.unlock()
    }

    private final class LoopStart {
        let loop: EpollEventLoop
        let name: String
        init(loop: EpollEventLoop, name: String) {
            self.loop = loop
            self.name = name
        }

        func run() {
            cepoll_name_thread(self.name)
            self.loop.threadID = pthread_self()
            self.loop.started.lock()
            self.loop.started.unlock(withValue: true)
            self.loop.run()
        }
    }

    // MARK: EventLoop

    public var inEventLoop: Bool {
        pthread_equal(pthread_self(), self.threadID) != 0
            || (self.hasStopped.load(ordering: .relaxed) && DispatchQueue.getSpecific(key: Self.afterlifeKey) == ObjectIdentifier(self))
    }

    /// Set once the loop's thread has finished: only then can its afterlife run anything.
    private let hasStopped = Atomic<Bool>(false)

    /// Once the loop has stopped, what is still given to it (completing a
    /// promise, a future's callbacks) runs here, one at a time, as the loop.
    private lazy var afterlife: DispatchQueue = {
        let queue = DispatchQueue(label: "plexor.stopped-loop")
        queue.setSpecific(key: Self.afterlifeKey, value: ObjectIdentifier(self))
        return queue
    }()
    private static let afterlifeKey = DispatchSpecificKey<ObjectIdentifier>()

    /// Work given after shutdown never vanishes: `submit` and `scheduleTask`
    /// fail their futures (`EventLoopError.shutdown`), and what `execute` is
    /// given (a promise's completion) runs in the loop's afterlife.
    public func execute(_ task: @escaping @Sendable () -> Void) {
        if !self.enqueue(task) {
            self.afterlife.async(execute: task)
        }
    }

    public func submit<T>(_ task: @escaping @Sendable () throws -> T) -> EventLoopFuture<T> {
        let promise = self.makePromise(of: T.self)
        // Completed on this loop (enqueued work runs there), so a value that is not Sendable may pass.
        if !self.enqueue({ promise.assumeIsolatedUnsafeUnchecked().completeWith(Result { try task() }) }) {
            promise.fail(EventLoopError.shutdown)
        }
        return promise.futureResult
    }

    public func scheduleTask<T>(deadline: NIODeadline, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        let promise = self.makePromise(of: T.self)
        let id = NIOLockedValueBox<UInt64?>(nil)
        let schedule = {
            let timerID = self.timers.schedule(at: deadline) { promise.assumeIsolatedUnsafeUnchecked().completeWith(Result { try task() }) }
            id.withLockedValue { $0 = timerID }
        }
        if self.inEventLoop {
            schedule()
        } else if !self.enqueue(schedule) {
            promise.fail(EventLoopError.shutdown)
        }
        return Scheduled(promise: promise) {
            self.execute {
                if let timerID = id.withLockedValue({ $0 }), self.timers.cancel(timerID) {
                    promise.fail(EventLoopError.cancelled)
                }
            }
        }
    }

    public func scheduleTask<T>(in delay: TimeAmount, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        self.scheduleTask(deadline: .now() + delay, task)
    }

    public func preconditionInEventLoop(file: StaticString, line: UInt) {
        precondition(self.inEventLoop, "not on the event loop", file: file, line: line)
    }

    public func preconditionNotInEventLoop(file: StaticString, line: UInt) {
        precondition(!self.inEventLoop, "on the event loop", file: file, line: line)
    }

    /// Stops after the tasks already queued, closing every registration.
    public func shutdownGracefully(queue: DispatchQueue, _ callback: @escaping @Sendable (Error?) -> Void) {
        let alreadyStopped: Bool = self.lock.withLock {
            switch self.state {
            case .stopped:
                return true
            case .running, .stopping:
                self.state = .stopping
                self.stoppedCallbacks.append((queue, callback))
                return false
            }
        }
        if alreadyStopped {
            queue.async { callback(nil) }
        } else {
            self.signal()
        }
    }

    public func makeIterator() -> EventLoopIterator {
        EventLoopIterator([self])
    }

    // MARK: Registrations (on the loop)

    /// Watches `registration`'s descriptor for `events` (level-triggered).
    func register(_ registration: EpollRegistration, events: UInt32) throws {
        self.preconditionInEventLoop()
        let index = Int(registration.descriptor)
        if index >= self.registrations.count {
            self.registrations.append(contentsOf: repeatElement(nil, count: index + 1 - self.registrations.count))
        }
        self.lastToken &+= 1
        registration.token = self.lastToken
        var event = epoll_event(events: events, data: self.eventData(registration))
        guard epoll_ctl(self.epoll, EPOLL_CTL_ADD, registration.descriptor, &event) == 0 else {
            throw IOError(errnoCode: errno, reason: "epoll_ctl(ADD)")
        }
        self.registrations[index] = registration
    }

    /// Changes the events `registration` is watched for; false if epoll
    /// refused (the descriptor is no longer what it was: close it).
    @discardableResult
    func modify(_ registration: EpollRegistration, events: UInt32) -> Bool {
        var event = epoll_event(events: events, data: self.eventData(registration))
        return epoll_ctl(self.epoll, EPOLL_CTL_MOD, registration.descriptor, &event) == 0
    }

    /// Stops watching; call before closing the descriptor (closing removes it
    /// from epoll, but a shared descriptor must be removed explicitly).
    func deregister(_ registration: EpollRegistration) {
        let index = Int(registration.descriptor)
        guard index < self.registrations.count, self.registrations[index] === registration else { return }
        self.registrations[index] = nil
        var event = epoll_event()
        if epoll_ctl(self.epoll, EPOLL_CTL_DEL, registration.descriptor, &event) != 0 {
            // ENOENT or EBADF: not watched any more; anything else is a bug here.
            precondition(errno == ENOENT || errno == EBADF, "epoll_ctl(DEL) failed: \(String(cString: strerror(errno)))")
        }
    }

    /// Lets every connection on this loop close itself if it waited too
    /// long (the gateway calls this once a second).
    public func checkConnectionTimeouts() {
        self.preconditionInEventLoop()
        let now = self.currentSecond
        for case let connection as SocketConnection in self.registrations {
            connection.handler?.checkTimeouts(now: now)
        }
    }

    /// Forgets a registration whose descriptor is about to be closed by its
    /// owner alone (closing removes it from epoll; no call needed).
    func forget(_ registration: EpollRegistration) {
        let index = Int(registration.descriptor)
        guard index < self.registrations.count, self.registrations[index] === registration else { return }
        self.registrations[index] = nil
    }

    private func eventData(_ registration: EpollRegistration) -> epoll_data_t {
        epoll_data_t(u64: UInt64(registration.token) << 32 | UInt64(UInt32(bitPattern: registration.descriptor)))
    }

    // MARK: The loop

    /// Queues `task`; false once the loop has stopped (it will never run).
    private func enqueue(_ task: @escaping () -> Void) -> Bool {
        // On the loop, the queue is run before the next wait: no wake-up needed.
        let onLoop = self.inEventLoop
        return self.lock.withLock {
            guard self.state != .stopped else { return false }
            self.queued.append(task)
            if self.queued.count == 1, !onLoop { self.writeWakeup() }
            return true
        }
    }

    private func signal() {
        self.lock.withLock {
            guard self.state != .stopped else { return }
            self.writeWakeup()
        }
    }

    /// Under `lock`, so the descriptor cannot be closed meanwhile.
    private func writeWakeup() {
        var one: UInt64 = 1
        _ = Glibc.write(self.wakeup, &one, 8)
    }

    private func run() {
        let capacity = 256
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        var tasks: [() -> Void] = []
        while true {
            let (pending, stopping) = self.lock.withLock { (!self.queued.isEmpty, self.state == .stopping) }
            if stopping, !pending { break }
            let count = epoll_wait(self.epoll, events, Int32(capacity), pending ? 0 : self.waitMilliseconds())
            if count < 0 {
                // EINTR: a signal; anything else means the epoll descriptor is broken.
                precondition(errno == EINTR, "epoll_wait failed: \(String(cString: strerror(errno)))")
            }
            for index in 0..<max(0, Int(count)) {
                let data = events[index].data.u64
                let descriptor = Int32(bitPattern: UInt32(truncatingIfNeeded: data))
                if descriptor == self.wakeup {
                    var value: UInt64 = 0
                    _ = Glibc.read(self.wakeup, &value, 8)
                    continue
                }
                let slot = Int(descriptor)
                guard slot < self.registrations.count, let registration = self.registrations[slot],
                      registration.token == UInt32(truncatingIfNeeded: data >> 32) else { continue }  // closed earlier in this batch
                registration.ready(events: events[index].events)
            }
            let now = NIODeadline.now()
            self.currentSecond = (now.uptimeNanoseconds &- self.startNanoseconds) / 1_000_000_000
            while let timer = self.timers.popDue(now: now) { timer() }
            self.lock.withLock { swap(&tasks, &self.queued) }
            for task in tasks { task() }
            tasks.removeAll(keepingCapacity: true)
        }
        self.finish()
    }

    /// Until the next timer, rounded up to a millisecond; -1 waits for events only.
    private func waitMilliseconds() -> Int32 {
        guard let deadline = self.timers.nextDeadline() else { return -1 }
        let nanoseconds = deadline.uptimeNanoseconds.subtractingReportingOverflow(NIODeadline.now().uptimeNanoseconds)
        guard !nanoseconds.overflow, nanoseconds.partialValue > 0 else { return 0 }
        return Int32(min((nanoseconds.partialValue + 999_999) / 1_000_000, UInt64(Int32.max)))
    }

    private func finish() {
        for registration in self.registrations {
            registration?.loopClosed()
        }
        self.registrations = []
        self.hasStopped.store(true, ordering: .relaxed)
        let (callbacks, late) = self.lock.withLock {
            self.state = .stopped
            Glibc.close(self.wakeup)
            defer { self.queued = [] }
            return (self.stoppedCallbacks, self.queued)
        }
        // Queued after the last turn of the loop: run them now (anything they queue fails).
        for task in late { task() }
        Glibc.close(self.epoll)
        self.readBuffer.deallocate()
        for (queue, callback) in callbacks {
            queue.async { callback(nil) }
        }
    }
}

/// Epoll loops, one per thread; new connections are spread over them by
/// the kernel (every loop waits on the listening sockets, `EPOLLEXCLUSIVE`).
public final class EpollEventLoopGroup: EventLoopGroup, Sendable {
    public let loops: [EpollEventLoop]
    private let nextIndex = NIOLockedValueBox(0)

    public init(numberOfThreads: Int) throws {
        self.loops = try (0..<numberOfThreads).map { try EpollEventLoop(name: "plexor-loop-\($0)") }
    }

    public func next() -> EventLoop {
        self.loops[self.nextIndex.withLockedValue { index in
            defer { index = (index + 1) % self.loops.count }
            return index
        }]
    }

    public func any() -> EventLoop {
        self.loops.first(where: \.inEventLoop) ?? self.next()
    }

    public func makeIterator() -> EventLoopIterator {
        EventLoopIterator(self.loops)
    }

    public func shutdownGracefully(queue: DispatchQueue, _ callback: @escaping @Sendable (Error?) -> Void) {
        let group = DispatchGroup()
        for loop in self.loops {
            group.enter()
            loop.shutdownGracefully(queue: queue) { _ in group.leave() }
        }
        group.notify(queue: queue) { callback(nil) }
    }
}
