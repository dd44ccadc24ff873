import PlexorCore

/// One id a WAIT request listens to, with the cursor the client sent.
public struct WaitID: Equatable, Sendable {
    public var tag: Tag
    /// The seq after which the client wants messages; `nil` is "from now":
    /// no cursor was sent, or one Plexor never issues (a fraction, as
    /// Realplexor's time-based cursors have, or too large for a seq).
    public var cursor: Int64?

    public init(tag: Tag, cursor: Int64?) {
        self.tag = tag
        self.cursor = cursor
    }
}

/// What a browser asks on Realplexor's WAIT line.
public enum WaitRequest: Equatable, Sendable {
    /// Wait for messages on these ids (in the order sent, each once).
    case listen([WaitID])
    /// `identifier=SCRIPT`: the JavaScript client.
    case script
    /// `identifier=IFRAME`: the loader page of old integrations.
    case iframe
}

/// Reads a WAIT request the way Realplexor does: any bytes containing
/// `identifier=<list>` followed by a character outside `[*A-Za-z0-9_,.:]`,
/// except on a `Referer:` line. `<list>` is comma-separated `[cursor:]id`;
/// elements that do not match are dropped.
///
/// Fed the bytes read so far after each read; it remembers how far it
/// looked, so a request sent a byte at a time costs no more than one sent whole.
public struct WaitRequestScanner: Sendable {
    public enum Outcome: Equatable, Sendable {
        /// Not yet decided: read more bytes.
        case needMore
        /// Close without a reply: no marker in the first 5,120 bytes, or nothing to listen to.
        case close
        /// Answer `400` with this reason (Realplexor truncated such input; Plexor refuses it).
        case refuse(String)
        case request(WaitRequest)
    }

    /// Realplexor's limit on the bytes before the marker.
    public static let maximumBytesBeforeMarker = 5120
    /// Most bytes read for one request (head and list together).
    public static let maximumRequestBytes = 65_536

    private static let marker = Array("identifier=".utf8)
    private static let headTerminator = Array("\r\n\r\n".utf8)

    /// `--max-tags-per-poll`.
    private let maximumIDs: Int
    /// Where the next search for the marker starts.
    private var markerSearch = 0
    /// The list's first byte, and how far it has been read.
    private var list: (start: Int, scanned: Int)?
    private var headSearch = 0

    public init(maximumIDs: Int) {
        self.maximumIDs = maximumIDs
    }

    /// `bytes`: everything read from the connection so far.
    public mutating func scan(_ bytes: [UInt8]) -> Outcome {
        if self.list == nil {
            guard let start = self.findMarker(bytes) else {
                return bytes.count > Self.maximumBytesBeforeMarker + Self.marker.count ? .close : .needMore
            }
            guard start - Self.marker.count <= Self.maximumBytesBeforeMarker else { return .close }
            self.list = (start, start)
        }
        guard bytes.count <= Self.maximumRequestBytes else { return .refuse("the request is longer than \(Self.maximumRequestBytes) bytes") }
        var (start, end) = self.list!
        while end < bytes.count, Self.isListByte(bytes[end]) { end += 1 }
        self.list = (start, end)
        guard end < bytes.count else { return .needMore }
        // An HTTP request with the list in its request line is answered once
        // its head is in: closing on unread bytes would reset the connection.
        if Self.isRequestLine(bytes, containing: start), !self.hasHeadEnd(bytes) { return .needMore }
        return Self.parse(bytes[start..<end], maximumIDs: self.maximumIDs)
    }

    /// The first byte of the list after the first marker not on a `Referer:` line.
    private mutating func findMarker(_ bytes: [UInt8]) -> Int? {
        while let found = Self.index(of: Self.marker, in: bytes, from: self.markerSearch) {
            self.markerSearch = found + 1
            // A line's name is in before its value: this marker's line is decided.
            if !Self.isOnRefererLine(bytes, found) { return found + Self.marker.count }
        }
        self.markerSearch = max(self.markerSearch, bytes.count - Self.marker.count + 1)
        return nil
    }

    private mutating func hasHeadEnd(_ bytes: [UInt8]) -> Bool {
        if Self.index(of: Self.headTerminator, in: bytes, from: self.headSearch) != nil { return true }
        self.headSearch = max(self.headSearch, bytes.count - Self.headTerminator.count + 1)
        return false
    }

    static func parse(_ list: ArraySlice<UInt8>, maximumIDs: Int) -> Outcome {
        let text = String(decoding: list, as: UTF8.self)
        if text == "SCRIPT" { return .request(.script) }
        if text == "IFRAME" { return .request(.iframe) }
        var ids: [WaitID] = []
        for element in text.split(separator: ",") {
            guard let (name, cursor) = self.element(element) else { continue }
            guard name.utf8.count <= Tag.maximumLength else {
                return .refuse("id \(name.prefix(40))… is longer than \(Tag.maximumLength) bytes")
            }
            let tag = Tag(trusted: String(name))
            if ids.contains(where: { $0.tag == tag }) { continue }
            ids.append(WaitID(tag: tag, cursor: cursor))
            guard ids.count <= maximumIDs else { return .refuse("a request may listen to at most \(maximumIDs) ids") }
        }
        return ids.isEmpty ? .close : .request(.listen(ids))
    }

    /// `[cursor:]id`, cursor digits with an optional `.digits`, id `\w+`; else nil.
    static func element(_ element: Substring) -> (name: Substring, cursor: Int64?)? {
        let parts = element.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let name = parts.last!
        guard !name.isEmpty, name.utf8.allSatisfy(self.isWordByte) else { return nil }
        var cursor: Int64?
        if parts.count == 2 {
            let pieces = parts[0].split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
            guard pieces.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy(self.isDigit) }) else { return nil }
            // A fraction is a Realplexor cursor, never a seq: from now.
            cursor = pieces.count == 1 ? Int64(pieces[0]) : nil
        }
        return (name, cursor)
    }

    private static func isOnRefererLine(_ bytes: [UInt8], _ position: Int) -> Bool {
        var lineStart = position
        while lineStart > 0, bytes[lineStart - 1] != UInt8(ascii: "\n") { lineStart -= 1 }
        let name = Array("referer:".utf8)
        guard position - lineStart >= name.count else { return false }
        return zip(bytes[lineStart..<(lineStart + name.count)], name).allSatisfy { $0 | 0x20 == $1 | 0x20 }
    }

    /// Whether the marker at `position` is in an HTTP request line (`GET /?identifier=… HTTP/1.1`).
    private static func isRequestLine(_ bytes: [UInt8], containing position: Int) -> Bool {
        guard let lineEnd = bytes.firstIndex(of: UInt8(ascii: "\n")) else {
            // The first line is still coming: HTTP if it starts like a request.
            return ["GET ", "POST ", "HEAD "].contains { bytes.starts(with: $0.utf8) }
        }
        guard position < lineEnd else { return false }
        let line = String(decoding: bytes[..<lineEnd], as: UTF8.self)
        return line.hasSuffix(" HTTP/1.1\r") || line.hasSuffix(" HTTP/1.0\r")
    }

    private static func index(of needle: [UInt8], in bytes: [UInt8], from: Int) -> Int? {
        guard bytes.count >= needle.count, from <= bytes.count - needle.count else { return nil }
        for start in from...(bytes.count - needle.count) where bytes[start] == needle[0] {
            if bytes[start..<(start + needle.count)].elementsEqual(needle) { return start }
        }
        return nil
    }

    /// `\w` as Realplexor means it: ASCII letters, digits, `_`.
    public static func isWordByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private static func isListByte(_ byte: UInt8) -> Bool {
        self.isWordByte(byte) || byte == UInt8(ascii: "*") || byte == UInt8(ascii: ",") || byte == UInt8(ascii: ".")
            || byte == UInt8(ascii: ":")
    }
}
