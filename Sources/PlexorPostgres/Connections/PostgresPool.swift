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

    /// Runs `body` with a connection on a pool thread; the future completes
    /// on `loop`. An idle connection that turns out to have broken while it
    /// waited (the server restarted) is replaced and `body` run once more on
    /// a new one: the pool's queries only read, or may be repeated.
    public func withConnection<T: Sendable>(on loop: EventLoop, _ body: @escaping @Sendable (PostgresConnection) throws -> T) -> EventLoopFuture<T> {
        self.threadPool.runIfActive(eventLoop: loop) {
            if let idle = self.idle.withLockedValue({ $0.popLast() }) {
                do {
                    return try self.run(body, on: idle)
                } catch where !idle.isHealthy {
                    // Broken before this query could use it: try a new connection.
                }
            }
            return try self.run(body, on: PostgresConnection(self.connectionString, applicationName: "plexor"))
        }
    }

    private func run<T>(_ body: (PostgresConnection) throws -> T, on connection: PostgresConnection) throws -> T {
        defer { self.checkIn(connection) }
        return try body(connection)
    }

    private func checkIn(_ connection: PostgresConnection) {
        guard connection.isHealthy else { return }
        self.idle.withLockedValue { $0.append(connection) }
    }
}
