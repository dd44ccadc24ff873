import CEpoll
#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// What reads a connection's bytes (the HTTP handler).
public protocol ConnectionHandler: AnyObject {
    /// The handler is in place: it may write (and close) from here on.
    func started()
    func received(_ bytes: ByteBuffer)
    /// What waited beyond `SocketConnection.writeBound` has been sent:
    /// reading has resumed and the handler may write more.
    func becameWritable()
    /// Called about once a second, to close connections that waited too long.
    func checkTimeouts(now second: UInt64)
    /// The peer half-closed: it sends nothing more but may still read. True
    /// keeps the connection open for the answer; false (the default, as
    /// HTTP/1.1 cannot answer such a client on its terms) closes it.
    func peerFinishedSending() -> Bool
    /// The peer went away or the connection was closed: nothing more comes.
    func connectionClosed()
}

extension ConnectionHandler {
    public func started() {}
    public func becameWritable() {}
    public func checkTimeouts(now second: UInt64) {}
    public func peerFinishedSending() -> Bool { false }
}

/// Where a handler writes its responses.
public protocol ResponseSink: AnyObject {
    var isOpen: Bool { get }
    /// False while more than a small bound of written bytes waits for the
    /// peer to read: the connection then reads nothing more until it has.
    var isWritable: Bool { get }
    /// The loop's second counter (for timeouts; see `checkTimeouts`).
    var currentSecond: UInt64 { get }
    /// Sends `bytes` after whatever was written before.
    func write(_ bytes: ByteBuffer)
    /// Sends `head` then `body` after whatever was written before, without
    /// joining them first.
    func write(_ head: ByteBuffer, _ body: ByteBuffer)
    /// Closes once everything written has been sent.
    func closeAfterWriting()
    /// Closes now, dropping what was not yet sent.
    func close()
    /// The client's IP address as text, when known (asked only by what needs it: no cost per poll).
    var peerAddress: String? { get }
}

extension ResponseSink {
    public var peerAddress: String? { nil }
}

/// One accepted TCP connection on an epoll loop. Reads go to its handler as
/// they come; writes go straight to the socket, and only what the socket
/// would not take at once is kept (then it waits to be writable).
///
/// Backpressure: while more than `writeBound` bytes wait to be sent, the
/// connection stops reading, so a client that sends requests and never
/// reads the answers cannot make the gateway buffer them.
public final class SocketConnection: EpollRegistration, ResponseSink {
    /// Unsent bytes beyond which reading stops.
    public static let writeBound = 64 * 1024

    private unowned(unsafe) let loop: EpollEventLoop
    var handler: ConnectionHandler?
    private var unsent: ByteBuffer?
    private var closeWhenSent = false
    /// The peer half-closed and the handler answers anyway: nothing more is read.
    private var readEnded = false
    public private(set) var isOpen = true
    public private(set) var isWritable = true

    public var currentSecond: UInt64 { self.loop.currentSecond }

    public var peerAddress: String? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let got = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(self.descriptor, $0, &length) }
        }
        guard got == 0 else { return nil }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = Int32(storage.ss_family)
        let converted: UnsafePointer<CChar>? = withUnsafePointer(to: &storage) { pointer in
            switch family {
            case AF_INET:
                pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                    withUnsafePointer(to: address.pointee.sin_addr) { inet_ntop(AF_INET, $0, &text, socklen_t(text.count)) }
                }
            case AF_INET6:
                pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                    withUnsafePointer(to: address.pointee.sin6_addr) { inet_ntop(AF_INET6, $0, &text, socklen_t(text.count)) }
                }
            default:
                nil
            }
        }
        guard converted != nil else { return nil }
        return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Most reads per readiness before other connections get their turn.
    private static let readsPerWakeup = 4

    init(descriptor: Int32, loop: EpollEventLoop) {
        self.loop = loop
        super.init(descriptor: descriptor)
    }

    override func ready(events: UInt32) {
        if events & cepoll_out != 0 { self.sendUnsent() }
        if events & (cepoll_hup | cepoll_err) != 0 {
            // Reported even while reading is paused: the read finds the end or the error.
            self.readAvailable(evenIfPaused: true)
        } else if events & cepoll_in != 0 {
            self.readAvailable(evenIfPaused: false)
        }
    }

    override func loopClosed() {
        self.close()
    }

    private func readAvailable(evenIfPaused: Bool) {
        // Past a half-close only a hang-up or an error is reported: the peer is gone.
        if self.readEnded { return self.close() }
        let buffer = self.loop.readBuffer
        for _ in 0..<Self.readsPerWakeup {
            guard self.isOpen, self.isWritable || evenIfPaused else { return }
            let count = Glibc.read(self.descriptor, buffer.baseAddress, buffer.count)
            if count > 0 {
                self.handler?.received(ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: buffer[..<count])))
                if count < buffer.count { return }
            } else if count == 0 {
                // The peer closed, or half-closed: answered only if the handler says so.
                guard self.handler?.peerFinishedSending() == true, self.isOpen else { return self.close() }
                self.readEnded = true
                return self.setEvents(self.unsent == nil ? 0 : cepoll_out)
            } else {
                switch errno {
                case EINTR: continue
                case EAGAIN, EWOULDBLOCK: return
                default: return self.close()
                }
            }
        }
    }

    public func write(_ bytes: ByteBuffer) {
        guard self.isOpen else { return }
        if self.unsent != nil {
            self.unsent!.writeImmutableBuffer(bytes)
            if self.isWritable, self.unsent!.readableBytes > Self.writeBound { self.watch(reading: false) }
            return
        }
        var remaining = bytes
        guard self.send(&remaining) else { return }
        self.keep(remaining)
    }

    public func write(_ head: ByteBuffer, _ body: ByteBuffer) {
        guard self.isOpen else { return }
        if self.unsent != nil {
            self.unsent!.writeImmutableBuffer(head)
            self.unsent!.writeImmutableBuffer(body)
            if self.isWritable, self.unsent!.readableBytes > Self.writeBound { self.watch(reading: false) }
            return
        }
        var sent: Int
        repeat {
            sent = head.withUnsafeReadableBytes { head in
                body.withUnsafeReadableBytes { body in
                    cepoll_send_two(self.descriptor, head.baseAddress, head.count, body.baseAddress, body.count)
                }
            }
        } while sent < 0 && errno == EINTR
        if sent < 0 {
            guard errno == EAGAIN || errno == EWOULDBLOCK else { return self.close() }
            sent = 0
        }
        if sent == head.readableBytes + body.readableBytes { return }
        // The socket took only part: the rest waits, in one buffer, until it is writable.
        var remaining: ByteBuffer
        if sent < head.readableBytes {
            remaining = head.getSlice(at: head.readerIndex + sent, length: head.readableBytes - sent)!
            remaining.writeImmutableBuffer(body)
        } else {
            remaining = body
            remaining.moveReaderIndex(forwardBy: sent - head.readableBytes)
        }
        guard self.send(&remaining) else { return }
        self.keep(remaining)
    }

    /// Keeps what the socket did not take and waits until it is writable.
    private func keep(_ remaining: ByteBuffer) {
        guard remaining.readableBytes > 0 else { return }
        self.unsent = remaining
        self.watch(reading: remaining.readableBytes <= Self.writeBound)
    }

    /// Waits for the socket to take more; reads too unless over the bound.
    private func watch(reading: Bool) {
        self.isWritable = reading
        self.setEvents(reading && !self.readEnded ? cepoll_in | cepoll_out : cepoll_out)
    }

    private func setEvents(_ events: UInt32) {
        if !self.loop.modify(self, events: events) { self.close() }
    }

    public func closeAfterWriting() {
        if self.unsent == nil {
            self.close()
        } else {
            self.closeWhenSent = true
        }
    }

    public func close() {
        guard self.isOpen else { return }
        self.isOpen = false
        self.unsent = nil
        self.loop.forget(self)
        Glibc.close(self.descriptor)
        let handler = self.handler
        self.handler = nil  // the handler holds this connection: break the cycle
        handler?.connectionClosed()
    }

    private func sendUnsent() {
        guard var remaining = self.unsent else { return }
        self.unsent = nil
        guard self.send(&remaining) else { return }
        let wasWritable = self.isWritable
        if remaining.readableBytes > 0 {
            self.unsent = remaining
            if !wasWritable, remaining.readableBytes <= Self.writeBound { self.watch(reading: true) }
        } else if self.closeWhenSent {
            return self.close()
        } else {
            self.isWritable = true
            self.setEvents(self.readEnded ? 0 : cepoll_in)
        }
        if !wasWritable, self.isWritable, self.isOpen { self.handler?.becameWritable() }
    }

    /// Sends as much of `bytes` as the socket takes, consuming it. False if
    /// the connection broke (and is now closed).
    private func send(_ bytes: inout ByteBuffer) -> Bool {
        while bytes.readableBytes > 0 {
            let sent = bytes.withUnsafeReadableBytes { Glibc.send(self.descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent >= 0 {
                bytes.moveReaderIndex(forwardBy: sent)
                continue
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return true
            default:
                self.close()
                return false
            }
        }
        return true
    }
}
