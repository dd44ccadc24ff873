import CEpoll
#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// A bound, listening, non-blocking TCP socket.
public struct ListeningSocket: Sendable {
    let descriptor: Int32
    public let port: Int

    /// Binds `host:port` (port 0 picks a free one) and listens.
    public static func bind(host: String, port: Int, reusePort: Bool, backlog: Int32 = 4096) throws -> ListeningSocket {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &found)
        guard resolved == 0, let address = found else {
            throw ListenError(message: "cannot resolve \(host): \(String(cString: gai_strerror(resolved)))")
        }
        defer { freeaddrinfo(found) }
        let descriptor = socket(address.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        do {
            try setOption(descriptor, SO_REUSEADDR, 1)
            try setOption(descriptor, SO_REUSEPORT, reusePort ? 1 : 0)
            guard Glibc.bind(descriptor, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 else {
                throw IOError(errnoCode: errno, reason: "bind(\(host):\(port))")
            }
            guard listen(descriptor, backlog) == 0 else { throw IOError(errnoCode: errno, reason: "listen") }
            return ListeningSocket(descriptor: descriptor, port: try boundPort(descriptor))
        } catch {
            Glibc.close(descriptor)
            throw error
        }
    }

    public func close() {
        Glibc.close(self.descriptor)
    }

    private static func setOption(_ descriptor: Int32, _ option: Int32, _ value: Int32) throws {
        var value = value
        guard setsockopt(descriptor, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw IOError(errnoCode: errno, reason: "setsockopt")
        }
    }

    private static func boundPort(_ descriptor: Int32) throws -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard result == 0 else { throw IOError(errnoCode: errno, reason: "getsockname") }
        let family = storage.ss_family
        return withUnsafePointer(to: &storage) { pointer in
            if family == sa_family_t(AF_INET6) {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }
}

public struct ListenError: Error, CustomStringConvertible {
    var message: String
    public var description: String { self.message }
}

/// Hands accepted connections to the loops in turn. The kernel wakes
/// whichever loop it likes to accept (a burst of connections often all on
/// one); dealing them out keeps every loop's share equal.
public final class ConnectionDispatcher: Sendable {
    public struct Target: Sendable {
        let loop: EpollEventLoop
        /// Called on `loop`.
        let makeHandler: @Sendable (SocketConnection) -> ConnectionHandler

        public init(loop: EpollEventLoop, makeHandler: @escaping @Sendable (SocketConnection) -> ConnectionHandler) {
            self.loop = loop
            self.makeHandler = makeHandler
        }
    }

    private let targets: [Target]
    private let turn = NIOLockedValueBox(0)

    public init(_ targets: [Target]) {
        precondition(!targets.isEmpty, "a dispatcher needs a loop to hand connections to")
        self.targets = targets
    }

    /// Gives the accepted `descriptor` to the next loop in turn (called on the accepting loop).
    func dispatch(_ descriptor: Int32, acceptedOn loop: EpollEventLoop) {
        let target = self.targets[self.turn.withLockedValue { turn in
            defer { turn = (turn + 1) % self.targets.count }
            return turn
        }]
        if target.loop === loop {
            Self.adopt(descriptor, by: target)
        } else {
            target.loop.execute { Self.adopt(descriptor, by: target) }
        }
    }

    private static func adopt(_ descriptor: Int32, by target: Target) {
        let connection = SocketConnection(descriptor: descriptor, loop: target.loop)
        do {
            try target.loop.register(connection, events: cepoll_in)
        } catch {
            Glibc.close(descriptor)
            return
        }
        let handler = target.makeHandler(connection)
        connection.handler = handler
        handler.started()
    }
}

/// One loop's watch on a listening socket shared by every loop: accepts
/// what the kernel hands this loop and passes it to the dispatcher.
///
/// `@unchecked Sendable`: its state (`stopped`, its registration) is only
/// touched on `loop`; `start` and `stop` hop there themselves.
public final class Acceptor: EpollRegistration, @unchecked Sendable {
    public unowned(unsafe) let loop: EpollEventLoop
    private let dispatcher: ConnectionDispatcher
    private let logger: Logger
    private var stopped = false

    /// Most connections accepted per readiness before other events get their turn.
    private static let acceptsPerWakeup = 64

    public init(socket: ListeningSocket, loop: EpollEventLoop, logger: Logger, dispatcher: ConnectionDispatcher) {
        self.loop = loop
        self.logger = logger
        self.dispatcher = dispatcher
        super.init(descriptor: socket.descriptor)
    }

    /// Every connection stays on `loop`.
    convenience init(socket: ListeningSocket, loop: EpollEventLoop, logger: Logger,
                     makeHandler: @escaping @Sendable (SocketConnection) -> ConnectionHandler) {
        self.init(socket: socket, loop: loop, logger: logger,
                  dispatcher: ConnectionDispatcher([.init(loop: loop, makeHandler: makeHandler)]))
    }

    /// Starts accepting on `loop`. Every loop waits on the socket;
    /// `EPOLLEXCLUSIVE` wakes one of them per connection.
    public func start() -> EventLoopFuture<Void> {
        self.loop.submit { try self.watch() }
    }

    /// Stops accepting; the socket itself stays open (its owner closes it).
    public func stop() -> EventLoopFuture<Void> {
        self.loop.submit { self.unwatch() }
    }

    private func watch() throws {
        self.loop.preconditionInEventLoop()
        try self.loop.register(self, events: cepoll_in | cepoll_exclusive)
    }

    private func unwatch() {
        self.loop.preconditionInEventLoop()
        self.stopped = true
        self.loop.deregister(self)
    }

    override func loopClosed() {
        self.unwatch()
    }

    override func ready(events: UInt32) {
        for _ in 0..<Self.acceptsPerWakeup {
            let descriptor = cepoll_accept(self.descriptor)
            if descriptor >= 0 {
                self.dispatcher.dispatch(descriptor, acceptedOn: self.loop)
                continue
            }
            let error = errno
            switch error {
            case EINTR, ECONNABORTED, EPROTO: continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM: return self.pause(error)
            default: return  // EAGAIN: nothing more waiting
            }
        }
    }

    /// Out of descriptors (or memory): the pending connection would wake the loop again
    /// at once, so stop watching for a moment.
    private func pause(_ error: Int32) {
        self.logger.warning("cannot accept: out of file descriptors or kernel memory; pausing accepts for 100 ms", metadata: ["errno": "\(error)"])
        self.loop.deregister(self)
        _ = self.loop.scheduleTask(in: .milliseconds(100)) {
            if !self.stopped { try? self.watch() }
        }
    }
}
