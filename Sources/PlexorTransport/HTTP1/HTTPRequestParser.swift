import NIOCore
import NIOHTTP1
import PlexorBytes

/// One HTTP/1.x request, reduced to what the gateway uses.
public struct HTTPRequest: Equatable {
    public var method: HTTPMethod
    /// The request target's bytes (a slice of the head as it was read).
    public var target: ByteBuffer
    public var version: HTTPVersion
    public var keepAlive: Bool
    public var authorization: String?
    /// `If-None-Match` (for files the gateway serves: a 304 when the ETag is one of these).
    public var ifNoneMatch: String?
    /// `Cookie` (the sign-in pages on the gateway's own origin); several fields are joined with `; `.
    public var cookie: String?
    /// `X-Forwarded-For`, several fields joined with `, ` (believed only from `--trusted-proxies`).
    public var forwardedFor: String?
    public var body: ByteBuffer?
}

/// Why a request could not be read. The connection closes after the answer:
/// the parser cannot tell where the next request would start.
public struct HTTPRequestFailure: Error, Equatable {
    public var status: HTTPResponseStatus
    public var message: String
}

/// Reads HTTP/1.0 and 1.1 requests from the bytes of one connection
/// (RFC 9112): request line, header fields, and a body by `Content-Length`
/// or chunked transfer coding. It keeps only the fields the gateway needs and
/// holds no bytes between requests, so an idle or parked connection costs
/// nothing here.
///
/// Feed bytes with `append`, then call `next()` until it returns `nil`
/// (more bytes needed). After a `.failure` it returns nothing more.
public struct HTTPRequestParser {
    public enum Event: Equatable {
        /// The head carried `Expect: 100-continue`: the client waits for a
        /// `100 Continue` before it sends the body.
        case continueExpected
        case request(HTTPRequest)
        case failure(HTTPRequestFailure)
    }

    private enum State {
        case head
        case body(HTTPRequest, remaining: Int)
        case chunkSize(HTTPRequest)
        case chunkData(HTTPRequest, remaining: Int)
        case chunkDataEnd(HTTPRequest)
        case trailers(HTTPRequest, seen: Int)
        case failed
    }

    /// Longest request line plus header fields.
    public static let maximumHeadBytes = 8192

    public let maximumBodyBytes: Int
    private var buffer: ByteBuffer?
    private var state = State.head

    public init(maximumBodyBytes: Int) {
        self.maximumBodyBytes = maximumBodyBytes
    }

    /// Bytes received but not yet consumed by a request.
    public var bufferedBytes: Int { self.buffer?.readableBytes ?? 0 }

    public mutating func append(_ bytes: ByteBuffer) {
        if case .failed = self.state { return }
        if self.buffer == nil {
            self.buffer = bytes
        } else {
            var bytes = bytes
            self.buffer!.writeBuffer(&bytes)
        }
    }

    public mutating func next() -> Event? {
        while true {
            guard var buffer = self.buffer else { return nil }
            self.buffer = nil  // unique while it is being read
            let step = self.step(&buffer)
            self.buffer = buffer.readableBytes > 0 ? buffer : nil
            switch step {
            case .needMore: return nil
            case .progress: continue
            case .event(let event): return event
            }
        }
    }

    private enum Step {
        case needMore
        case progress
        case event(Event)
    }

    private mutating func step(_ buffer: inout ByteBuffer) -> Step {
        switch self.state {
        case .failed:
            buffer.clear()
            return .needMore
        case .head:
            return self.readHead(&buffer)
        case .body(var request, let remaining):
            let taken = min(remaining, buffer.readableBytes)
            if taken > 0 {
                var slice = buffer.readSlice(length: taken)!
                if request.body == nil { request.body = slice } else { request.body!.writeBuffer(&slice) }
            }
            guard remaining == taken else {
                self.state = .body(request, remaining: remaining - taken)
                return .needMore
            }
            self.state = .head
            return .event(.request(request))
        case .chunkSize(let request):
            let line: [UInt8]
            switch Self.readLine(&buffer, limit: 1024) {
            case .line(let read): line = read
            case .bareLineFeed: return self.fail(.badRequest, "a line ends without CR")
            case .needMore: return buffer.readableBytes > 1024 ? self.fail(.badRequest, "a chunk size line is too long") : .needMore
            }
            let parts = line.split(separator: UInt8(ascii: ";"), maxSplits: 1, omittingEmptySubsequences: false)
            guard let size = Self.hexadecimal(parts[0]) else {
                return self.fail(.badRequest, "malformed chunk size")
            }
            guard parts.count == 1 || isChunkExtensions(parts[1]) else {
                return self.fail(.badRequest, "malformed chunk extension")
            }
            if size == 0 {
                self.state = .trailers(request, seen: 0)
            } else if (request.body?.readableBytes ?? 0) + size > self.maximumBodyBytes {
                return self.fail(.payloadTooLarge, "the body is larger than \(self.maximumBodyBytes) bytes")
            } else {
                self.state = .chunkData(request, remaining: size)
            }
            return .progress
        case .chunkData(var request, let remaining):
            let taken = min(remaining, buffer.readableBytes)
            var slice = buffer.readSlice(length: taken)!
            if request.body == nil { request.body = slice } else { request.body!.writeBuffer(&slice) }
            self.state = remaining == taken ? .chunkDataEnd(request) : .chunkData(request, remaining: remaining - taken)
            return remaining == taken ? .progress : .needMore
        case .chunkDataEnd(let request):
            // CRLF must follow the chunk's data.
            let view = buffer.readableBytesView
            guard view.count >= 2 else {
                return view.first.map { $0 != UInt8(ascii: "\r") } == true
                    ? self.fail(.badRequest, "a chunk does not end where its size says") : .needMore
            }
            guard view.first == UInt8(ascii: "\r"), view[view.startIndex + 1] == UInt8(ascii: "\n") else {
                return self.fail(.badRequest, "a chunk does not end where its size says")
            }
            buffer.moveReaderIndex(forwardBy: 2)
            self.state = .chunkSize(request)
            return .progress
        case .trailers(let request, let seen):
            let before = buffer.readableBytes
            let line: [UInt8]
            switch Self.readLine(&buffer, limit: Self.maximumHeadBytes - seen) {
            case .line(let read): line = read
            case .bareLineFeed: return self.fail(.badRequest, "a line ends without CR")
            case .needMore:
                return seen + buffer.readableBytes > Self.maximumHeadBytes
                    ? self.fail(.requestHeaderFieldsTooLarge, "the trailer fields are larger than \(Self.maximumHeadBytes) bytes")
                    : .needMore
            }
            if line.isEmpty {
                self.state = .head
                return .event(.request(request))
            }
            guard line.withUnsafeBytes({ Self.isFieldLine($0) }) else {
                return self.fail(.badRequest, "malformed trailer field")
            }
            self.state = .trailers(request, seen: seen + before - buffer.readableBytes)
            return .progress
        }
    }

    private mutating func fail(_ status: HTTPResponseStatus, _ message: String) -> Step {
        self.state = .failed
        return .event(.failure(HTTPRequestFailure(status: status, message: message)))
    }

    // MARK: The head

    private mutating func readHead(_ buffer: inout ByteBuffer) -> Step {
        // Empty lines (CRLF) before a request line are allowed (RFC 9112 §2.2).
        while buffer.readableBytesView.starts(with: [UInt8(ascii: "\r"), UInt8(ascii: "\n")]) {
            buffer.moveReaderIndex(forwardBy: 2)
        }
        if buffer.readableBytes == 1, buffer.readableBytesView.first == UInt8(ascii: "\r") { return .needMore }
        guard let end = buffer.withUnsafeReadableBytes({ Self.endOfHead($0) }) else {
            // Refused at once, not after the header timeout: a TLS handshake
            // or an HTTP/0.9 line never becomes an HTTP/1.x head.
            if let failure = buffer.withUnsafeReadableBytes({ Self.impossibleRequestLine($0) }) {
                self.state = .failed
                return .event(.failure(failure))
            }
            return buffer.readableBytes > Self.maximumHeadBytes
                ? self.fail(.requestHeaderFieldsTooLarge, "the request head is larger than \(Self.maximumHeadBytes) bytes")
                : .needMore
        }
        guard end <= Self.maximumHeadBytes else {
            return self.fail(.requestHeaderFieldsTooLarge, "the request head is larger than \(Self.maximumHeadBytes) bytes")
        }
        let head = buffer.readSlice(length: end)!
        switch head.withUnsafeReadableBytes({ Self.parseHead($0) }) {
        case .failure(let failure):
            self.state = .failed
            return .event(.failure(failure))
        case .success(var parsed):
            parsed.request.target = head.getSlice(at: head.readerIndex + parsed.target.lowerBound, length: parsed.target.count)!
            if parsed.targetNeedsSlash {
                var rooted = ByteBuffer(string: "/")
                rooted.writeImmutableBuffer(parsed.request.target)
                parsed.request.target = rooted
            }
            return self.startBody(parsed)
        }
    }

    private mutating func startBody(_ parsed: ParsedHead) -> Step {
        var request = parsed.request
        if parsed.chunked {
            self.state = .chunkSize(request)
        } else {
            let length = parsed.contentLength ?? 0
            if length > self.maximumBodyBytes {
                return self.fail(.payloadTooLarge, "the body is \(length) bytes; the limit is \(self.maximumBodyBytes)")
            }
            if length == 0 {
                request.body = nil
                self.state = .head
                return .event(.request(request))
            }
            self.state = .body(request, remaining: length)
        }
        return parsed.expectsContinue ? .event(.continueExpected) : .progress
    }

    /// Why the start of a head (not yet complete) can never be a request
    /// line, or `nil` while it still may be.
    private static func impossibleRequestLine(_ bytes: UnsafeRawBufferPointer) -> HTTPRequestFailure? {
        let lineEnd = bytes.index(of: UInt8(ascii: "\n"), from: 0)
        if let lineEnd, lineEnd == 0 || bytes[lineEnd - 1] != UInt8(ascii: "\r") {
            return HTTPRequestFailure(status: .badRequest, message: "malformed request line")
        }
        let line = UnsafeRawBufferPointer(rebasing: bytes[..<(lineEnd ?? bytes.count)])
        let methodEnd = line.index(of: UInt8(ascii: " "), from: 0) ?? line.count
        if let first = line.first, first == 0x16 || first == 0x80 {
            return HTTPRequestFailure(status: .badRequest, message: "this port speaks plain HTTP, not TLS")
        }
        guard line[..<methodEnd].allSatisfy(isTokenCharacter) else {
            return HTTPRequestFailure(status: .badRequest, message: "malformed request line")
        }
        guard let lineEnd else { return nil }
        let fullLine = UnsafeRawBufferPointer(rebasing: bytes[..<(lineEnd > 0 && bytes[lineEnd - 1] == UInt8(ascii: "\r") ? lineEnd - 1 : lineEnd)])
        switch Self.parseRequestLine(fullLine) {
        case .failure(let failure): return failure
        case .success: return nil
        }
    }

    private struct RequestLine {
        var method: UnsafeRawBufferPointer
        var target: UnsafeRawBufferPointer
        var version: HTTPVersion
    }

    /// `method SP request-target SP HTTP-version` (RFC 9112 §3).
    private static func parseRequestLine(_ line: UnsafeRawBufferPointer) -> Result<RequestLine, HTTPRequestFailure> {
        let malformed = HTTPRequestFailure(status: .badRequest, message: "malformed request line")
        guard let firstSpace = line.index(of: UInt8(ascii: " "), from: 0),
              let secondSpace = line.index(of: UInt8(ascii: " "), from: firstSpace + 1) else {
            return .failure(malformed)
        }
        let method = UnsafeRawBufferPointer(rebasing: line[..<firstSpace])
        let target = UnsafeRawBufferPointer(rebasing: line[(firstSpace + 1)..<secondSpace])
        let versionText = UnsafeRawBufferPointer(rebasing: line[(secondSpace + 1)...])
        guard !method.isEmpty, method.allSatisfy(isTokenCharacter), isRequestTarget(target, method: method) else {
            return .failure(malformed)
        }
        if versionText.equals("HTTP/1.1") {
            return .success(RequestLine(method: method, target: target, version: .http1_1))
        } else if versionText.equals("HTTP/1.0") {
            return .success(RequestLine(method: method, target: target, version: .http1_0))
        } else if versionText.starts(with: "HTTP/".utf8), !versionText.contains(UInt8(ascii: " ")) {
            let other = String(decoding: versionText.prefix(16), as: UTF8.self)
            return .failure(HTTPRequestFailure(status: .httpVersionNotSupported, message: "\(other) is not supported; use HTTP/1.1"))
        }
        return .failure(malformed)
    }

    private struct ParsedHead {
        /// Without its target, which is at `target` in the head.
        var request: HTTPRequest
        var target: Range<Int>
        var contentLength: Int?
        var chunked = false
        var expectsContinue = false
        var isAbsoluteForm = false
        /// An absolute-form target with no path (`http://host?x`): the path is `/`.
        var targetNeedsSlash = false
    }

    /// Reads the head's lines in place: no array of lines, no copies but
    /// the strings the request keeps.
    private static func parseHead(_ bytes: UnsafeRawBufferPointer) -> Result<ParsedHead, HTTPRequestFailure> {
        func bad(_ message: String) -> Result<ParsedHead, HTTPRequestFailure> {
            .failure(HTTPRequestFailure(status: .badRequest, message: message))
        }
        var lines = HeadLines(bytes)
        guard let requestLine = lines.next(), !requestLine.isEmpty else { return bad("the request line is missing") }
        guard !lines.sawBareLineFeed else { return bad("malformed request line") }

        let startLine: RequestLine
        switch Self.parseRequestLine(requestLine) {
        case .failure(let failure): return .failure(failure)
        case .success(let parsedLine): startLine = parsedLine
        }
        // An absolute-form target names the host itself (RFC 9112 §3.2.2): route on its path.
        var target = startLine.target
        let authority = absoluteFormAuthority(target)
        if let authority {
            guard isValidHost(UnsafeRawBufferPointer(rebasing: target[authority])) else { return bad("the request target names an invalid host") }
            target = UnsafeRawBufferPointer(rebasing: target[authority.upperBound...])
        }
        let targetStart = target.baseAddress! - bytes.baseAddress!
        var parsed = ParsedHead(request: HTTPRequest(
            method: Self.method(startLine.method),
            target: ByteBuffer(),
            version: startLine.version,
            keepAlive: startLine.version == .http1_1
        ), target: targetStart..<(targetStart + target.count))
        parsed.isAbsoluteForm = authority != nil
        parsed.targetNeedsSlash = authority != nil && target.first != UInt8(ascii: "/")
        var hosts = 0
        var connectionTokens: [String] = []
        while let line = lines.next() {
            guard !lines.sawBareLineFeed else { return bad("a line ends without CR") }
            if line.isEmpty { break }
            guard let first = line.first, first != UInt8(ascii: " "), first != UInt8(ascii: "\t") else {
                return bad(line.isEmpty ? "malformed header section" : "folded header lines are not supported")
            }
            guard let colon = line.index(of: UInt8(ascii: ":"), from: 0), colon > 0,
                  line[..<colon].allSatisfy(isTokenCharacter) else {
                return bad("malformed header line")
            }
            let value = trimmed(line[(colon + 1)...])
            guard value.allSatisfy(isFieldValueCharacter) else {
                return bad("a header value holds a control character")
            }
            let name = UnsafeRawBufferPointer(rebasing: line[..<colon])
            if equalsIgnoringCase(name, "content-length") {
                guard !value.isEmpty, value.allSatisfy(isDigit) else { return bad("Content-Length must be a whole number") }
                // Lengths too long for an Int are over any limit anyway.
                let length = value.count > 18 ? Int.max : Int(String(decoding: value, as: UTF8.self))!
                if let earlier = parsed.contentLength, earlier != length { return bad("conflicting Content-Length fields") }
                parsed.contentLength = length
            } else if equalsIgnoringCase(name, "transfer-encoding") {
                let codings = listTokens(value)
                guard codings == ["chunked"], !parsed.chunked else {
                    return .failure(HTTPRequestFailure(status: .notImplemented,
                        message: "Transfer-Encoding \(codings.joined(separator: ", ").prefix(40)) is not supported; send Content-Length or chunked"))
                }
                parsed.chunked = true
            } else if equalsIgnoringCase(name, "connection") {
                connectionTokens += listTokens(value)
            } else if equalsIgnoringCase(name, "authorization") {
                parsed.request.authorization = String(decoding: value, as: UTF8.self)
            } else if equalsIgnoringCase(name, "if-none-match") {
                parsed.request.ifNoneMatch = String(decoding: value, as: UTF8.self)
            } else if equalsIgnoringCase(name, "cookie") {
                let text = String(decoding: value, as: UTF8.self)
                parsed.request.cookie = parsed.request.cookie.map { $0 + "; " + text } ?? text
            } else if equalsIgnoringCase(name, "x-forwarded-for") {
                let text = String(decoding: value, as: UTF8.self)
                parsed.request.forwardedFor = parsed.request.forwardedFor.map { $0 + ", " + text } ?? text
            } else if equalsIgnoringCase(name, "host") {
                hosts += 1
                guard hosts == 1 else { return bad("a request may carry only one Host field") }
                guard parsed.isAbsoluteForm || isValidHost(UnsafeRawBufferPointer(rebasing: value)) else {
                    return bad("the Host field is not a valid host")
                }
            } else if equalsIgnoringCase(name, "expect") {
                guard equalsIgnoringCase(value, "100-continue") else {
                    return .failure(HTTPRequestFailure(status: .expectationFailed, message: "only Expect: 100-continue is supported"))
                }
                parsed.expectsContinue = startLine.version == .http1_1
            }
        }
        if parsed.chunked && parsed.contentLength != nil {
            return bad("a request may not carry both Content-Length and Transfer-Encoding")
        }
        if startLine.version == .http1_1 && hosts == 0 {
            return bad("an HTTP/1.1 request must carry a Host field")
        }
        if connectionTokens.contains("close") {
            parsed.request.keepAlive = false
        } else if connectionTokens.contains("keep-alive") {
            parsed.request.keepAlive = true
        }
        // HTTP/1.0 has no transfer codings: its framing cannot be trusted
        // after this message, so it is answered and the connection closed (RFC 9112 §6.1).
        if parsed.chunked && startLine.version == .http1_0 {
            parsed.request.keepAlive = false
        }
        return .success(parsed)
    }

    /// `name: value` with a token for a name and no control characters in the value.
    private static func isFieldLine(_ line: UnsafeRawBufferPointer) -> Bool {
        guard let colon = line.index(of: UInt8(ascii: ":"), from: 0), colon > 0,
              line[..<colon].allSatisfy(isTokenCharacter) else { return false }
        return line[(colon + 1)...].allSatisfy(isFieldValueCharacter)
    }

    // MARK: Bytes

    /// The length of the head including its final empty line (CRLF CRLF), if it is all here.
    private static func endOfHead(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var index = 0
        while let newline = bytes.index(of: UInt8(ascii: "\n"), from: index) {
            let next = newline + 1
            if newline >= 1, bytes[newline - 1] == UInt8(ascii: "\r"), next + 1 < bytes.count,
               bytes[next] == UInt8(ascii: "\r"), bytes[next + 1] == UInt8(ascii: "\n") {
                return next + 2
            }
            index = next
        }
        return nil
    }

    /// The common methods without building a string to look them up.
    private static func method(_ bytes: UnsafeRawBufferPointer) -> HTTPMethod {
        if bytes.equals("GET") { return .GET }
        if bytes.equals("POST") { return .POST }
        if bytes.equals("OPTIONS") { return .OPTIONS }
        return HTTPMethod(rawValue: String(decoding: bytes, as: UTF8.self))
    }

    private enum LineRead {
        case line([UInt8])
        /// Not all here yet (or longer than the limit).
        case needMore
        /// A line ended by LF alone: HTTP/1.1 lines end with CRLF.
        case bareLineFeed
    }

    /// Reads one line (without its CRLF) if it is complete and no longer than `limit`.
    private static func readLine(_ buffer: inout ByteBuffer, limit: Int) -> LineRead {
        let view = buffer.readableBytesView
        guard let newline = view.prefix(limit + 2).firstIndex(of: UInt8(ascii: "\n")) else { return .needMore }
        let length = newline - view.startIndex
        guard length > 0, view[newline - 1] == UInt8(ascii: "\r") else { return .bareLineFeed }
        let line = buffer.readBytes(length: length + 1)!
        return .line(Array(line.prefix(length - 1)))
    }

    /// A chunk size: hexadecimal digits only (no sign, no blanks).
    private static func hexadecimal<Bytes: Collection>(_ digits: Bytes) -> Int? where Bytes.Element == UInt8 {
        guard !digits.isEmpty, digits.count <= 15 else { return nil }
        var value = 0
        for digit in digits {
            guard let digitValue = hexDigitValue(digit) else { return nil }
            value = value * 16 + Int(digitValue)
        }
        return value
    }

    static func trimmed<Bytes: BidirectionalCollection>(_ bytes: Bytes) -> Bytes.SubSequence where Bytes.Element == UInt8 {
        let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let start = bytes.firstIndex(where: { !isBlank($0) }) else { return bytes[bytes.endIndex...] }
        let end = bytes.lastIndex(where: { !isBlank($0) })!
        return bytes[start...end]
    }
}

/// The lines of a request head, each without its CRLF.
private struct HeadLines {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0
    /// The last line ended with LF alone (not CRLF).
    private(set) var sawBareLineFeed = false

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    mutating func next() -> UnsafeRawBufferPointer? {
        guard self.position < self.bytes.count else { return nil }
        let end = self.bytes.index(of: UInt8(ascii: "\n"), from: self.position) ?? self.bytes.count
        let hasReturn = end > self.position && self.bytes[end - 1] == UInt8(ascii: "\r")
        self.sawBareLineFeed = end < self.bytes.count && !hasReturn
        let lineEnd = hasReturn ? end - 1 : end
        let line = UnsafeRawBufferPointer(rebasing: self.bytes[self.position..<lineEnd])
        self.position = end + 1
        return line
    }
}

/// The lowercased elements of a comma-separated field value.
private func listTokens<Bytes: BidirectionalCollection>(_ value: Bytes) -> [String] where Bytes.Element == UInt8, Bytes.SubSequence: BidirectionalCollection {
    value.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).map { element in
        String(decoding: HTTPRequestParser.trimmed(element), as: UTF8.self).lowercased()
    }
}

/// The authority's range in an absolute-form target (`http://host:port/...`),
/// or `nil` when the target is not in absolute form.
private func absoluteFormAuthority(_ target: UnsafeRawBufferPointer) -> Range<Int>? {
    let schemeLength: Int
    if equalsIgnoringCase(target.prefix(7), "http://") {
        schemeLength = 7
    } else if equalsIgnoringCase(target.prefix(8), "https://") {
        schemeLength = 8
    } else {
        return nil
    }
    var end = schemeLength
    while end < target.count, target[end] != UInt8(ascii: "/"), target[end] != UInt8(ascii: "?") { end += 1 }
    return schemeLength..<end
}

/// An origin-form (`/path?query`), absolute-form (`http://host/path`) or,
/// for OPTIONS, asterisk-form (`*`) target, of the characters a URI may hold
/// (RFC 9112 §3.2, RFC 3986). Authority-form (CONNECT's) is not served here.
private func isRequestTarget(_ target: UnsafeRawBufferPointer, method: UnsafeRawBufferPointer) -> Bool {
    guard let first = target.first else { return false }
    if target.count == 1 && first == UInt8(ascii: "*") { return method.equals("OPTIONS") }
    guard first == UInt8(ascii: "/") || absoluteFormAuthority(target) != nil else { return false }
    return target.allSatisfy(ByteSet.uri.contains)
}

/// What follows a chunk size's first `;` (RFC 9112 §7.1.1):
/// `name [ "=" ( token / quoted-string ) ]`, further ones after `;`, blanks around `;` and `=`.
private func isChunkExtensions(_ text: ArraySlice<UInt8>) -> Bool {
    var index = text.startIndex
    func skipBlanks() { while index < text.endIndex, text[index] == UInt8(ascii: " ") || text[index] == UInt8(ascii: "\t") { index += 1 } }
    func token() -> Bool {
        let start = index
        while index < text.endIndex, isTokenCharacter(text[index]) { index += 1 }
        return index > start
    }
    while true {
        skipBlanks()
        guard token() else { return false }
        skipBlanks()
        if index < text.endIndex, text[index] == UInt8(ascii: "=") {
            index += 1
            skipBlanks()
            if index < text.endIndex, text[index] == UInt8(ascii: "\"") {
                index += 1
                while index < text.endIndex, text[index] != UInt8(ascii: "\"") {
                    if text[index] == UInt8(ascii: "\\") { index += 1 }  // a quoted pair
                    guard index < text.endIndex, isFieldValueCharacter(text[index]) else { return false }
                    index += 1
                }
                guard index < text.endIndex else { return false }
                index += 1
            } else {
                guard token() else { return false }
            }
            skipBlanks()
        }
        if index == text.endIndex { return true }
        guard text[index] == UInt8(ascii: ";") else { return false }
        index += 1
    }
}

/// What a field value may hold: visible characters, spaces, tabs and obs-text.
private func isFieldValueCharacter(_ byte: UInt8) -> Bool {
    byte >= 0x20 && byte != 0x7F || byte == UInt8(ascii: "\t")
}

/// `uri-host [ ":" port ]` (RFC 9110 §7.2): a name, an IPv4 address or a
/// bracketed IPv6 literal, and digits for the port. Empty is allowed (RFC
/// 9112 §3.2: a target with no authority).
private func isValidHost(_ value: UnsafeRawBufferPointer) -> Bool {
    var host = value[...]
    if host.first == UInt8(ascii: "[") {
        guard let close = host.firstIndex(of: UInt8(ascii: "]")) else { return false }
        let literal = host[(host.startIndex + 1)..<close]
        guard !literal.isEmpty, literal.allSatisfy({ hexDigitValue($0) != nil || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }) else {
            return false
        }
        host = host[(close + 1)...]
        guard host.isEmpty || host.first == UInt8(ascii: ":") else { return false }
    } else {
        let colon = host.firstIndex(of: UInt8(ascii: ":")) ?? host.endIndex
        let name = host[..<colon]
        guard name.allSatisfy(ByteSet.hostName.contains) else { return false }
        host = host[colon...]
    }
    guard let colon = host.first else { return true }
    precondition(colon == UInt8(ascii: ":"))
    let port = host.dropFirst()
    return port.count <= 5 && port.allSatisfy(isDigit)
}

private func isDigit(_ byte: UInt8) -> Bool {
    byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
}

/// `tchar` of RFC 9110 §5.6.2: what methods and field names are made of.
@inline(__always)
private func isTokenCharacter(_ byte: UInt8) -> Bool {
    ByteSet.token.contains(byte)
}

private func equalsIgnoringCase<Bytes: Collection>(_ bytes: Bytes, _ lowercase: StaticString) -> Bool where Bytes.Element == UInt8 {
    guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
    return lowercase.withUTF8Buffer { expected in
        zip(bytes, expected).allSatisfy { byte, wanted in
            (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte) == wanted
        }
    }
}
