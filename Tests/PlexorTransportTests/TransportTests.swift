#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PlexorTestSupport
import Testing
@testable import PlexorTransport

@Suite struct TimerQueueTests {
    @Test func tasksRunByDeadlineThenInTheOrderScheduled() {
        var queue = TimerQueue()
        var ran: [String] = []
        let base = NIODeadline.uptimeNanoseconds(1_000)
        _ = queue.schedule(at: base + .nanoseconds(30)) { ran.append("c") }
        _ = queue.schedule(at: base + .nanoseconds(10)) { ran.append("a") }
        _ = queue.schedule(at: base + .nanoseconds(10)) { ran.append("b") }
        _ = queue.schedule(at: base + .nanoseconds(50)) { ran.append("late") }
        let first = queue.nextDeadline()
        #expect(first == base + .nanoseconds(10))
        while let task = queue.popDue(now: base + .nanoseconds(40)) { task() }
        #expect(ran == ["a", "b", "c"])
        let last = queue.nextDeadline()
        #expect(last == base + .nanoseconds(50))
    }

    @Test func aCancelledTaskNeverRunsAndNoLongerSetsTheWait() {
        var queue = TimerQueue()
        let base = NIODeadline.uptimeNanoseconds(1_000)
        let first = queue.schedule(at: base) {}
        _ = queue.schedule(at: base + .nanoseconds(5)) {}
        let cancelled = queue.cancel(first)
        let cancelledAgain = queue.cancel(first)
        #expect(cancelled && !cancelledAgain)
        let next = queue.nextDeadline()
        #expect(next == base + .nanoseconds(5))
        let dueAtBase = queue.popDue(now: base)
        #expect(dueAtBase == nil)
        let dueLater = queue.popDue(now: base + .nanoseconds(5))
        #expect(dueLater != nil)
        #expect(queue.isEmpty)
    }
}

@Suite struct EpollEventLoopTests {
    @Test func tasksFromOtherThreadsRunOnTheLoopInOrder() throws {
        let loop = try EpollEventLoop(name: "test-loop")
        defer { try? loop.syncShutdownGracefully() }
        #expect(!loop.inEventLoop)
        let seen = NIOLockedValueBox<[Int]>([])
        let futures = (0..<100).map { index in
            loop.submit {
                precondition(loop.inEventLoop)
                seen.withLockedValue { $0.append(index) }
            }
        }
        try EventLoopFuture.andAllSucceed(futures, on: loop).wait()
        #expect(seen.withLockedValue { $0 } == Array(0..<100))
    }

    @Test func scheduledTasksRunAfterTheirDelayAndCancelledOnesFail() throws {
        let loop = try EpollEventLoop(name: "test-loop")
        defer { try? loop.syncShutdownGracefully() }
        let scheduledAt = NIODeadline.now()
        let ranAt = try loop.scheduleTask(in: .milliseconds(20)) { NIODeadline.now() }.futureResult.wait()
        #expect(ranAt - scheduledAt >= .milliseconds(20))

        let cancelled = loop.scheduleTask(in: .seconds(60)) { 1 }
        cancelled.cancel()
        #expect(throws: EventLoopError.cancelled) { try cancelled.futureResult.wait() }
    }

    @Test func workGivenToAStoppedLoopFailsOrCompletesButNeverVanishes() throws {
        let loop = try EpollEventLoop(name: "test-loop")
        let promise = loop.makePromise(of: Int.self)
        try loop.syncShutdownGracefully()
        #expect(throws: EventLoopError.shutdown) { try loop.submit { 1 }.wait() }
        #expect(throws: EventLoopError.shutdown) { try loop.scheduleTask(in: .milliseconds(1)) { 1 }.futureResult.wait() }
        // A promise made before still completes, its callbacks run as on the loop.
        let callbackRanAsTheLoop = promise.futureResult.map { _ in loop.inEventLoop }
        promise.succeed(1)
        #expect(try callbackRanAsTheLoop.wait())
    }
}

/// Connections on a real listening socket, driven by a plain blocking client.
@Suite struct SocketConnectionTests {
    /// Answers every read with `response`, then closes after writing it.
    /// With `headLength`, the response goes out as a head and a body, then
    /// its last quarter as a write of its own.
    final class Replier: ConnectionHandler {
        let connection: SocketConnection
        let response: ByteBuffer
        let headLength: Int?
        let closed: EventLoopPromise<Void>

        init(connection: SocketConnection, response: ByteBuffer, headLength: Int?, closed: EventLoopPromise<Void>) {
            self.connection = connection
            self.response = response
            self.headLength = headLength
            self.closed = closed
        }

        func received(_ bytes: ByteBuffer) {
            if let headLength {
                let lastQuarter = self.response.readableBytes * 3 / 4
                self.connection.write(self.response.getSlice(at: 0, length: headLength)!,
                                      self.response.getSlice(at: headLength, length: lastQuarter - headLength)!)
                self.connection.write(self.response.getSlice(at: lastQuarter, length: self.response.readableBytes - lastQuarter)!)
            } else {
                self.connection.write(self.response)
            }
            self.connection.closeAfterWriting()
        }

        func connectionClosed() {
            self.closed.succeed()
        }
    }

    /// A loop accepting on a free loopback port, every connection a `Replier`.
    func serve(_ response: ByteBuffer, headLength: Int? = nil, closed: EventLoopPromise<Void>,
               on loop: EpollEventLoop) throws -> (ListeningSocket, Acceptor) {
        let socket = try ListeningSocket.bind(host: "127.0.0.1", port: 0, reusePort: false)
        let acceptor = Acceptor(socket: socket, loop: loop, logger: Logger(label: "test")) { connection in
            Replier(connection: connection, response: response, headLength: headLength, closed: closed)
        }
        try acceptor.start().wait()
        return (socket, acceptor)
    }

    func connect(_ port: Int, receiveBuffer: Int32? = nil) throws -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var receiveBuffer {
            setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &receiveBuffer, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw TestFailure("connect failed: errno \(errno)") }
        return descriptor
    }

    /// Whole, as one buffer; as a short head and a body (the socket stops
    /// within the body); as a head the socket stops within.
    @Test(arguments: [nil, 100, 6 << 20])
    func aResponseBiggerThanTheSocketTakesArrivesWholeBeforeTheClose(headLength: Int?) throws {
        let loop = try EpollEventLoop(name: "test-loop")
        defer { try? loop.syncShutdownGracefully() }
        // Twice the most a socket's send buffer grows to (tcp_wmem's 4 MiB),
        // to a client with a small receive window: most of it must wait in
        // the connection until the socket is writable again.
        let size = 8 << 20
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let response = ByteBuffer(bytes: bytes)
        let closed = loop.makePromise(of: Void.self)
        let (socket, acceptor) = try self.serve(response, headLength: headLength, closed: closed, on: loop)
        defer {
            try? acceptor.stop().wait()
            socket.close()
        }
        let client = try self.connect(socket.port, receiveBuffer: 4096)
        defer { Glibc.close(client) }
        _ = Glibc.write(client, "x", 1)

        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = Glibc.read(client, &chunk, chunk.count)
            guard count > 0 else { break }  // the server's close after the last byte
            received.append(contentsOf: chunk[..<count])
        }
        #expect(received.count == size)
        #expect(received == bytes)
        try closed.futureResult.wait()
    }

    @Test func aClientThatLeavesIsReportedToTheHandler() throws {
        let loop = try EpollEventLoop(name: "test-loop")
        defer { try? loop.syncShutdownGracefully() }
        let closed = loop.makePromise(of: Void.self)
        let (socket, acceptor) = try self.serve(ByteBuffer(string: "never asked for"), closed: closed, on: loop)
        defer {
            try? acceptor.stop().wait()
            socket.close()
        }
        Glibc.close(try self.connect(socket.port))
        try closed.futureResult.wait()
    }

    /// Handles nothing: the test only counts where connections went.
    final class Idle: ConnectionHandler {
        func received(_ bytes: ByteBuffer) {}
        func connectionClosed() {}
    }

    @Test func acceptedConnectionsAreDealtToTheLoopsInTurn() throws {
        let loops = try [EpollEventLoop(name: "test-loop-0"), EpollEventLoop(name: "test-loop-1")]
        defer { for loop in loops { try? loop.syncShutdownGracefully() } }
        // Per loop, how many connections it was handed (each counted on its own loop).
        let handed = NIOLockedValueBox([0, 0])
        let adopted = DispatchSemaphore(value: 0)
        let targets = loops.indices.map { index in
            ConnectionDispatcher.Target(loop: loops[index]) { _ in
                loops[index].preconditionInEventLoop()
                handed.withLockedValue { $0[index] += 1 }
                adopted.signal()
                return Idle()
            }
        }
        let dispatcher = ConnectionDispatcher(targets)
        let socket = try ListeningSocket.bind(host: "127.0.0.1", port: 0, reusePort: false)
        // Only the first loop accepts: the second gets its share all the same.
        let acceptor = Acceptor(socket: socket, loop: loops[0], logger: Logger(label: "test"), dispatcher: dispatcher)
        try acceptor.start().wait()
        defer {
            try? acceptor.stop().wait()
            socket.close()
        }
        let clients = try (0..<6).map { _ in try self.connect(socket.port) }
        defer { for client in clients { Glibc.close(client) } }
        for _ in clients {
            #expect(adopted.wait(timeout: .now() + 10) == .success)
        }
        #expect(handed.withLockedValue { $0 } == [3, 3])
    }
}
