import NIOCore
import NIOHTTP1

/// How a response is framed for the request it answers.
struct ResponseFraming: Equatable {
    var version: HTTPVersion
    var keepAlive: Bool

    /// For answers to requests that could not be read: the connection closes.
    static let closing = ResponseFraming(version: .http1_1, keepAlive: false)
}

/// Writes response heads: status line and header fields. Every response
/// carries `Content-Length` (but a 204), `Cache-Control: no-store` and, if configured,
/// `Access-Control-Allow-Origin`.
struct HTTPResponseHeadWriter {
    let corsOrigin: String?

    func write(_ status: HTTPResponseStatus, framing: ResponseFraming, contentType: StaticString?, contentLength: Int,
               extraHeaders: [(String, String)] = [], into buffer: inout ByteBuffer) {
        self.writeBeforeLength(status, framing: framing, contentType: contentType, into: &buffer)
        if status != .noContent {
            buffer.writeDecimal(contentLength)
        }
        self.writeAfterLength(status, framing: framing, extraHeaders: extraHeaders, into: &buffer)
    }

    /// The status line and fields up to the digits of `Content-Length`.
    func writeBeforeLength(_ status: HTTPResponseStatus, framing: ResponseFraming, contentType: StaticString?,
                           into buffer: inout ByteBuffer) {
        buffer.writeStaticString(framing.version == .http1_0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        buffer.writeDecimal(status.code)
        buffer.writeStaticString(" ")
        buffer.writeString(status.reasonPhrase)
        buffer.writeStaticString("\r\n")
        if let contentType {
            buffer.writeStaticString("Content-Type: ")
            buffer.writeStaticString(contentType)
            buffer.writeStaticString("\r\n")
        }
        // A 204 has no body and must not say how long it is (RFC 9110 §8.6).
        if status != .noContent {
            buffer.writeStaticString("Content-Length: ")
        }
    }

    /// The rest of the head after the digits of `Content-Length`.
    func writeAfterLength(_ status: HTTPResponseStatus, framing: ResponseFraming, extraHeaders: [(String, String)] = [],
                          into buffer: inout ByteBuffer) {
        if status != .noContent {
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("Cache-Control: no-store\r\n")
        if let corsOrigin = self.corsOrigin {
            buffer.writeStaticString("Access-Control-Allow-Origin: ")
            buffer.writeString(corsOrigin)
            buffer.writeStaticString("\r\n")
        }
        switch (framing.version == .http1_0, framing.keepAlive) {
        case (true, true): buffer.writeStaticString("Connection: keep-alive\r\n")
        case (_, false): buffer.writeStaticString("Connection: close\r\n")
        case (false, true): break
        }
        for (name, value) in extraHeaders {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
    }
}

/// Frames `200` poll answers on one event loop as whole responses, head and
/// body in one buffer. The hub hands every waiter of a fan-out the very same
/// body, so the framed response of the last body is kept: each further waiter
/// costs a reference and one write, not an allocation.
final class PollAnswerFraming {
    private let writer: HTTPResponseHeadWriter
    private var last: (body: ByteBuffer, framing: ResponseFraming, response: ByteBuffer)?
    /// The head's bytes before and after the length, by framing (HTTP/1.0 or 1.1, keep-alive or not).
    private var heads: [(before: ByteBuffer, after: ByteBuffer)?] = [nil, nil, nil, nil]

    init(corsOrigin: String?) {
        self.writer = HTTPResponseHeadWriter(corsOrigin: corsOrigin)
    }

    func response(body: ByteBuffer, framing: ResponseFraming) -> ByteBuffer {
        if let last = self.last, last.framing == framing, Self.sameBytes(last.body, body) {
            return last.response
        }
        let head = self.head(framing)
        var response = ByteBuffer()
        response.reserveCapacity(head.before.readableBytes + 20 + head.after.readableBytes + body.readableBytes)
        response.writeImmutableBuffer(head.before)
        response.writeDecimal(body.readableBytes)
        response.writeImmutableBuffer(head.after)
        response.writeImmutableBuffer(body)
        self.last = (body, framing, response)
        return response
    }

    private func head(_ framing: ResponseFraming) -> (before: ByteBuffer, after: ByteBuffer) {
        let index = (framing.version == .http1_0 ? 2 : 0) + (framing.keepAlive ? 1 : 0)
        if let head = self.heads[index] { return head }
        var before = ByteBuffer(), after = ByteBuffer()
        self.writer.writeBeforeLength(.ok, framing: framing, contentType: "application/json", into: &before)
        self.writer.writeAfterLength(.ok, framing: framing, into: &after)
        self.heads[index] = (before, after)
        return (before, after)
    }

    /// The same storage and range. The kept body keeps its storage alive, so
    /// an address cannot be reused by another buffer meanwhile.
    private static func sameBytes(_ lhs: ByteBuffer, _ rhs: ByteBuffer) -> Bool {
        lhs.readableBytes == rhs.readableBytes
            && lhs.withUnsafeReadableBytes { left in rhs.withUnsafeReadableBytes { right in left.baseAddress == right.baseAddress } }
    }
}
