import NIOCore
import NIOHTTP1
import PlexorBytes

/// How a response is framed for the request it answers.
public struct ResponseFraming: Equatable, Sendable {
    public var version: HTTPVersion
    public var keepAlive: Bool
    /// The answer to a `HEAD`: the head a `GET` would get, and no body (RFC 9110 §9.3.2).
    public var headOnly = false

    public init(version: HTTPVersion, keepAlive: Bool, headOnly: Bool = false) {
        self.version = version
        self.keepAlive = keepAlive
        self.headOnly = headOnly
    }

    /// For answers to requests that could not be read: the connection closes.
    public static let closing = ResponseFraming(version: .http1_1, keepAlive: false)
}

/// Writes response heads: status line and header fields. Every response
/// carries `Content-Length` (but a 204), `Cache-Control: no-store` and, if configured,
/// `Access-Control-Allow-Origin`.
public struct HTTPResponseHeadWriter: Sendable {
    let corsOrigin: String?

    public init(corsOrigin: String?) {
        self.corsOrigin = corsOrigin
    }

    /// `cacheControl`: what caches may do; answers that change (polls, errors) are never stored.
    public func write(_ status: HTTPResponseStatus, framing: ResponseFraming, contentType: StaticString?, contentLength: Int,
                      cacheControl: StaticString = "no-store", extraHeaders: [(String, String)] = [], into buffer: inout ByteBuffer) {
        self.writeBeforeLength(status, framing: framing, contentType: contentType, into: &buffer)
        if status != .noContent {
            buffer.writeDecimal(contentLength)
        }
        self.writeAfterLength(status, framing: framing, cacheControl: cacheControl, extraHeaders: extraHeaders, into: &buffer)
    }

    /// The status line and fields up to the digits of `Content-Length`.
    func writeBeforeLength(_ status: HTTPResponseStatus, framing: ResponseFraming, contentType: StaticString?,
                           into buffer: inout ByteBuffer) {
        buffer.writeStaticString(framing.version == .http1_0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        buffer.writeDecimal(Int(status.code))
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
    func writeAfterLength(_ status: HTTPResponseStatus, framing: ResponseFraming, cacheControl: StaticString = "no-store",
                          extraHeaders: [(String, String)] = [], into buffer: inout ByteBuffer) {
        if status != .noContent {
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("Cache-Control: ")
        buffer.writeStaticString(cacheControl)
        buffer.writeStaticString("\r\n")
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

/// The heads of `200` JSON answers on one event loop (the gateway's poll
/// answers). A response goes out as its head and its body side by side, so
/// a body shared by many answers (a fan-out) is never copied; the head of the
/// last length and framing is kept, so those answers share it too.
public final class OKResponseHeads {
    private let writer: HTTPResponseHeadWriter
    private var last: (length: Int, framing: ResponseFraming, head: ByteBuffer)?
    /// The head's bytes before and after the length, by framing (HTTP/1.0 or 1.1, keep-alive or not).
    private var heads: [(before: ByteBuffer, after: ByteBuffer)?] = [nil, nil, nil, nil]

    public init(corsOrigin: String?) {
        self.writer = HTTPResponseHeadWriter(corsOrigin: corsOrigin)
    }

    public func head(forBodyLength length: Int, framing: ResponseFraming) -> ByteBuffer {
        if let last = self.last, last.length == length, last.framing == framing {
            return last.head
        }
        let parts = self.parts(framing)
        var head = ByteBuffer()
        head.write(bound: parts.before.readableBytes + ByteWriter.maximumDecimalLength + parts.after.readableBytes) { writer in
            writer.write(parts.before)
            writer.writeDecimal(Int64(length))
            writer.write(parts.after)
        }
        self.last = (length, framing, head)
        return head
    }

    private func parts(_ framing: ResponseFraming) -> (before: ByteBuffer, after: ByteBuffer) {
        let index = (framing.version == .http1_0 ? 2 : 0) + (framing.keepAlive ? 1 : 0)
        if let head = self.heads[index] { return head }
        var before = ByteBuffer(), after = ByteBuffer()
        self.writer.writeBeforeLength(.ok, framing: framing, contentType: "application/json", into: &before)
        self.writer.writeAfterLength(.ok, framing: framing, into: &after)
        self.heads[index] = (before, after)
        return (before, after)
    }
}
