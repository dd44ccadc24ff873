import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Sends `request` as raw bytes on a new connection and returns everything
/// the server sends until it closes the connection (or `timeout` seconds pass).
public func rawHTTPExchange(port: Int, _ request: String, timeout: Int = 5) throws -> String {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw POSIXError(.EIO) }
    defer { close(descriptor) }
    var seconds = timeval(tv_sec: timeout, tv_usec: 0)
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
    let bytes = Array(request.utf8)
    _ = bytes.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = recv(descriptor, &buffer, buffer.count, 0)
        if count <= 0 { break }
        received.append(contentsOf: buffer[0..<count])
    }
    return String(decoding: received, as: UTF8.self)
}

/// A plain TCP connection to a loopback port, for clients that misbehave
/// (send a byte at a time, never read, speak TLS).
public final class RawSocket {
    public let descriptor: Int32

    /// `bufferBytes`: the socket's send and receive buffers (small: the
    /// kernel then holds little of what this client sends or leaves unread).
    public init(port: Int, bufferBytes: Int32? = nil) throws {
        self.descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard self.descriptor >= 0 else { throw POSIXError(.EIO) }
        if var size = bufferBytes {
            setsockopt(self.descriptor, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            setsockopt(self.descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(self.descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(self.descriptor)
            throw POSIXError(.ECONNREFUSED)
        }
    }

    deinit {
        close(self.descriptor)
    }

    /// A loopback port nothing uses right now, below the ephemeral range (so
    /// no outgoing connection of a test running alongside takes it meanwhile).
    public static func freePort() throws -> Int {
        for _ in 0..<100 {
            let port = Int.random(in: 20_000..<32_000)
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard descriptor >= 0 else { throw POSIXError(.EIO) }
            defer { close(descriptor) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            if bound { return port }
        }
        throw POSIXError(.EADDRINUSE)
    }

    /// Sends what the socket takes without waiting; the count sent, or -1 once the peer is gone.
    @discardableResult
    public func sendNow(_ bytes: [UInt8]) -> Int {
        let sent = bytes.withUnsafeBytes { send(self.descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        if sent < 0 { return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1 }
        return sent
    }

    /// What arrives within `milliseconds`, and whether the peer closed.
    public func receive(waitingUpTo milliseconds: Int32) -> (bytes: [UInt8], closed: Bool) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var descriptor = pollfd(fd: self.descriptor, events: Int16(POLLIN), revents: 0)
        var wait = milliseconds
        while poll(&descriptor, 1, wait) > 0 {
            let count = recv(self.descriptor, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if count == 0 { return (received, true) }
            if count < 0 { return (received, errno != EAGAIN && errno != EWOULDBLOCK) }
            received.append(contentsOf: buffer[0..<count])
            wait = 0  // take what is there, then stop
        }
        return (received, false)
    }
}

/// Runs blocking work (a socket wait, a child process) on a thread of its
/// own, so it never holds one of the few threads async tests share.
public func offTheTestThreads<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try body() })
        }
    }
}

extension RawSocket: @unchecked Sendable {}  // one test uses each, one call at a time

extension RawSocket {
    /// `receive(waitingUpTo:)` without blocking the async tests' threads.
    public func receive(within milliseconds: Int32) async throws -> (bytes: [UInt8], closed: Bool) {
        try await offTheTestThreads { self.receive(waitingUpTo: milliseconds) }
    }
}

extension Pipe {
    /// What the pipe holds up to its end: Foundation's `readDataToEndOfFile` and
    /// `availableData` trap on a read interrupted by a signal (EINTR, which
    /// child processes ending cause); this retries instead.
    public func readToEnd() -> String {
        String(decoding: self.readChunks { _ in true }.joined(), as: UTF8.self)
    }

    /// Reads chunks until the end, or until `more` says enough; returns them.
    public func readChunks(while more: ([[UInt8]]) -> Bool) -> [[UInt8]] {
        let descriptor = self.fileHandleForReading.fileDescriptor
        var chunks: [[UInt8]] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while more(chunks) {
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            chunks.append(Array(buffer[0..<count]))
        }
        return chunks
    }
}
