import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A few blocking libpq connections, each used by one thread of a thread pool
/// at a time, for the gateway's short queries (catch-up, retention).
/// Connections are opened on first use and replaced when they break.
///
/// `@unchecked Sendable`: a connection (not Sendable) is used by one pool
/// thread at a time, handed between them through the idle list's lock.
public final class PostgresPool: @unchecked Sendable {
    private let connectionString: String
    private let threadPool: NIOThreadPool
    private let idle = NIOLockedValueBox<[PostgresConnection]>([])

    /// `size` threads, so at most `size` connections.
    public init(connectionString: String, size: Int) {
        self.connectionString = connectionString
        self.threadPool = NIOThreadPool(numberOfThreads: size)
        self.threadPool.start()
    }

    public func shutdown() {
        try? self.threadPool.syncShutdownGracefully()
        self.idle.withLockedValue { $0.removeAll() }
    }

    /// Runs `body` with a connection on a pool thread; the future completes on `loop`.
    public func withConnection<T: Sendable>(on loop: EventLoop, _ body: @escaping @Sendable (PostgresConnection) throws -> T) -> EventLoopFuture<T> {
        self.threadPool.runIfActive(eventLoop: loop) {
            let connection = try self.idle.withLockedValue { $0.popLast() }
                ?? PostgresConnection(self.connectionString, applicationName: "plexor")
            do {
                let value = try body(connection)
                self.checkIn(connection)
                return value
            } catch {
                self.checkIn(connection)
                throw error
            }
        }
    }

    private func checkIn(_ connection: PostgresConnection) {
        guard connection.isHealthy else { return }
        self.idle.withLockedValue { $0.append(connection) }
    }
}
