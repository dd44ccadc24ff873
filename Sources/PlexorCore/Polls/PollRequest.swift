import PlexorBytes

/// One tag of a poll and the cursor the client holds for it.
public struct TagCursor: Equatable, Sendable {
    public var tag: Tag
    /// The seq of the last message the client has; `nil` means "from now".
    public var cursor: Int64?

    public init(tag: Tag, cursor: Int64?) {
        self.tag = tag
        self.cursor = cursor
    }
}

/// Limits a gateway applies to every poll.
public struct PollLimits: Sendable {
    public var maximumTags: Int
    public var defaultTimeout: Int
    public var maximumTimeout: Int

    public init(maximumTags: Int = 100, defaultTimeout: Int = 25, maximumTimeout: Int = 60) {
        self.maximumTags = maximumTags
        self.defaultTimeout = defaultTimeout
        self.maximumTimeout = maximumTimeout
    }
}

/// `GET /poll?tags=chat@17,news&timeout=25`, parsed and validated.
public struct PollRequest: Equatable, Sendable {
    public var tags: [TagCursor]
    /// Seconds to wait for a message, already capped at the server's maximum.
    public var timeout: Int

    public init(tags: [TagCursor], timeout: Int) {
        self.tags = tags
        self.timeout = timeout
    }

    /// Parses the query string of a poll (the part after `?`).
    public init(query: Substring, limits: PollLimits) throws(RequestError) {
        var query = String(query)
        self = try query.withUTF8 { bytes in
            Result { () throws(RequestError) in try PollRequest(query: UnsafeRawBufferPointer(bytes), limits: limits) }
        }.get()
    }

    /// Parses the query string's bytes in place: every delimiter is ASCII,
    /// and only a value with escapes is copied to be decoded.
    public init(query: UnsafeRawBufferPointer, limits: PollLimits) throws(RequestError) {
        var tags: [TagCursor]?
        var timeout: Int?
        try QueryString.forEachParameter(query) { (key, value) throws(RequestError) in
            if key.equals("tags") {
                guard tags == nil else { throw .badRequest("parameter tags is given more than once") }
                tags = try PercentDecoding.withDecoded(value, parameter: key) { (value) throws(RequestError) in
                    try Self.parseTags(value, limits: limits)
                }
            } else if key.equals("timeout") {
                guard timeout == nil else { throw .badRequest("parameter timeout is given more than once") }
                timeout = try PercentDecoding.withDecoded(value, parameter: key) { (value) throws(RequestError) in
                    try Self.parseTimeout(value, limits: limits)
                }
            } else {
                // Unknown parameters (cache busters such as _=123) are ignored, if well-formed.
                try PercentDecoding.withDecoded(value, parameter: key) { (_) throws(RequestError) in }
            }
        }
        guard let tags else { throw .badRequest("parameter tags is required, e.g. tags=chat@17,news") }
        self.tags = tags
        self.timeout = timeout ?? min(limits.defaultTimeout, limits.maximumTimeout)
    }

    static func parseTags(_ value: UnsafeRawBufferPointer, limits: PollLimits) throws(RequestError) -> [TagCursor] {
        guard !value.isEmpty else { throw .badRequest("parameter tags is empty") }
        var itemCount = 1
        for byte in value where byte == UInt8(ascii: ",") { itemCount += 1 }
        guard itemCount <= limits.maximumTags else {
            throw .badRequest("a poll may list at most \(limits.maximumTags) tags; this one lists \(itemCount)")
        }
        var result: [TagCursor] = []
        result.reserveCapacity(itemCount)
        // A few tags are checked for repeats by looking; many, with a set.
        var seen = itemCount > 8 ? Set<Tag>(minimumCapacity: itemCount) : nil
        var position = 0
        while position <= value.count {
            let end = value.index(of: UInt8(ascii: ","), from: position) ?? value.count
            defer { position = end + 1 }
            guard end > position else { throw .badRequest("parameter tags has an empty item") }
            let at = value.index(of: UInt8(ascii: "@"), from: position, before: end)
            let tag: Tag
            do {
                tag = try Tag(validating: UnsafeRawBufferPointer(rebasing: value[position..<(at ?? end)]))
            } catch {
                throw .badRequest(error.description)
            }
            var cursor: Int64?
            if let at {
                let digits = UnsafeRawBufferPointer(rebasing: value[(at + 1)..<end])
                guard !digits.isEmpty, let parsed = decimalValue(digits) else {
                    let text = String(decoding: digits.prefix(40), as: UTF8.self)
                    throw .badRequest("cursor \"\(text)\" of tag \(tag) is not a whole number from 0 to \(Int64.max)")
                }
                cursor = parsed
            }
            let isNew = seen != nil ? seen!.insert(tag).inserted : !result.contains { $0.tag == tag }
            guard isNew else { throw .badRequest("tag \(tag) is listed more than once") }
            result.append(TagCursor(tag: tag, cursor: cursor))
        }
        return result
    }

    static func parseTimeout(_ value: UnsafeRawBufferPointer, limits: PollLimits) throws(RequestError) -> Int {
        guard !value.isEmpty, value.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw .badRequest("timeout \"\(String(decoding: value.prefix(40), as: UTF8.self))\" is not a whole number of seconds")
        }
        // Digits beyond Int64 are simply above the maximum.
        let seconds = decimalValue(value) ?? Int64.max
        return Int(min(seconds, Int64(limits.maximumTimeout)))
    }
}

/// A request the gateway refuses, with the message its JSON error body carries.
public enum RequestError: Error, Equatable, Sendable {
    case badRequest(String)

    public var message: String {
        switch self {
        case .badRequest(let message): return message
        }
    }
}

enum QueryString {
    /// Calls `body` with the key and value bytes of each `key=value` pair
    /// (either may be empty; empty pairs are skipped), in order.
    @inline(__always)
    static func forEachParameter(_ query: UnsafeRawBufferPointer,
                                 _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws(RequestError) -> Void) throws(RequestError) {
        var position = 0
        while position < query.count {
            let end = query.index(of: UInt8(ascii: "&"), from: position) ?? query.count
            defer { position = end + 1 }
            guard end > position else { continue }
            let equals = query.index(of: UInt8(ascii: "="), from: position, before: end)
            try body(UnsafeRawBufferPointer(rebasing: query[position..<(equals ?? end)]),
                     UnsafeRawBufferPointer(rebasing: query[(equals.map { $0 + 1 } ?? end)..<end]))
        }
    }
}

enum PercentDecoding {
    /// Calls `body` with `value` decoded from `%XX` escapes and `+` (a
    /// space), in place when it has none; a broken escape or invalid UTF-8
    /// is an error naming `parameter`.
    static func withDecoded<Value>(_ value: UnsafeRawBufferPointer, parameter: UnsafeRawBufferPointer,
                                    _ body: (UnsafeRawBufferPointer) throws(RequestError) -> Value) throws(RequestError) -> Value {
        guard value.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else {
            return try body(value)
        }
        guard let decoded = Self.decode(value) else {
            throw .badRequest("parameter \(String(decoding: parameter, as: UTF8.self)) is not valid percent-encoded UTF-8")
        }
        return try decoded.withUnsafeBytes { bytes in Result { () throws(RequestError) in try body(bytes) } }.get()
    }

    /// The decoded bytes; `nil` for a broken escape or invalid UTF-8.
    static func decode(_ value: UnsafeRawBufferPointer) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(value.count)
        var iterator = value.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexDigitValue), let low = iterator.next().flatMap(hexDigitValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self) == nil ? nil : bytes
    }
}
