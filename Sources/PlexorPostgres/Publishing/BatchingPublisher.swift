import Foundation
import Logging
import NIOCore
import PlexorCore

/// Publishes over one connection on its own thread, putting every request
/// that arrives while a transaction runs into the next one: concurrent
/// publishers share one commit and one pass through PostgreSQL's NOTIFY lock.
///
/// When a batch fails because of one request's content (bad JSON, too large),
/// its requests are retried one by one, so each gets its own answer.
///
/// `@unchecked Sendable`: the queue is behind `condition`; the connection is
/// used only on the publisher's thread.
public final class BatchingPublisher: @unchecked Sendable {
    private struct Pending {
        var request: PublishRequest
        var promise: EventLoopPromise<PublishedMessage>
    }

    private let maximumBatch: Int
    private let logger: Logger
    /// Guards `queue` and `stopping`, and wakes the thread.
    private let condition = NSCondition()
    private var queue: [Pending] = []
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)
    /// Used only on the publisher's thread.
    private var connection: ReconnectingConnection
    private var started = false

    public init(connectionString: String, maximumBatch: Int = 500, logger: Logger) {
        self.connection = ReconnectingConnection(connectionString, applicationName: "plexor-publisher")
        self.maximumBatch = maximumBatch
        self.logger = logger
    }

    public func start() {
        precondition(!self.started)
        self.started = true
        let thread = Thread { [self] in
            self.run()
            self.finished.signal()
        }
        thread.name = "plexor-publisher"
        thread.start()
    }

    /// Stops after answering everything queued.
    public func shutdown() {
        guard self.started else { return }
        self.condition.lock()
        self.stopping = true
        self.condition.signal()
        self.condition.unlock()
        self.finished.wait()
    }

    public func publish(_ request: PublishRequest, on loop: EventLoop) -> EventLoopFuture<PublishedMessage> {
        let promise = loop.makePromise(of: PublishedMessage.self)
        self.condition.lock()
        let accepted = !self.stopping
        if accepted {
            self.queue.append(Pending(request: request, promise: promise))
        }
        self.condition.signal()
        self.condition.unlock()
        if !accepted {
            promise.fail(PostgresError(kind: .connection, message: "the gateway is shutting down"))
        }
        return promise.futureResult
    }

    private func run() {
        while true {
            self.condition.lock()
            while self.queue.isEmpty && !self.stopping { self.condition.wait() }
            let count = min(self.queue.count, self.maximumBatch)
            let batch = Array(self.queue.prefix(count))
            self.queue.removeFirst(count)
            self.condition.unlock()
            if batch.isEmpty { return }  // stopping, and everything queued was answered
            self.publish(batch)
        }
    }

    private func publish(_ batch: [Pending]) {
        do {
            let published = try self.connection.use { try $0.publish(batch.map(\.request)) }
            for (pending, message) in zip(batch, published) { pending.promise.succeed(message) }
        } catch let error as PostgresError where error.isInvalidInput && batch.count > 1 {
            for pending in batch { self.publish([pending]) }
        } catch {
            batch.forEach { $0.promise.fail(error) }
        }
    }

}
