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

    /// Parses the query string of a poll (the part after `?`). Splits on
    /// bytes, not characters: every delimiter is ASCII.
    public init(query: Substring, limits: PollLimits) throws(RequestError) {
        var tagsValue: String?
        var timeoutValue: String?
        for pair in query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let equals = pair.firstIndex(of: UInt8(ascii: "="))
            let key = Substring(equals.map { pair[..<$0] } ?? pair)
            let value = Substring(equals.map { pair[pair.index(after: $0)...] } ?? pair[pair.endIndex...])
            guard let decoded = PercentDecoding.decode(value) else {
                throw .badRequest("parameter \(key) is not valid percent-encoded UTF-8")
            }
            switch key {
            case "tags":
                guard tagsValue == nil else { throw .badRequest("parameter tags is given more than once") }
                tagsValue = decoded
            case "timeout":
                guard timeoutValue == nil else { throw .badRequest("parameter timeout is given more than once") }
                timeoutValue = decoded
            default:
                continue  // Unknown parameters (cache busters such as _=123) are ignored.
            }
        }
        guard let tagsValue else { throw .badRequest("parameter tags is required, e.g. tags=chat@17,news") }
        self.tags = try Self.parseTags(tagsValue, limits: limits)
        self.timeout = try Self.parseTimeout(timeoutValue, limits: limits)
    }

    static func parseTags(_ value: String, limits: PollLimits) throws(RequestError) -> [TagCursor] {
        guard !value.isEmpty else { throw .badRequest("parameter tags is empty") }
        let items = value.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
        guard items.count <= limits.maximumTags else {
            throw .badRequest("a poll may list at most \(limits.maximumTags) tags; this one lists \(items.count)")
        }
        var result: [TagCursor] = []
        result.reserveCapacity(items.count)
        // A few tags are checked for repeats by looking; many, with a set.
        var seen = items.count > 8 ? Set<Tag>(minimumCapacity: items.count) : nil
        for item in items {
            guard !item.isEmpty else { throw .badRequest("parameter tags has an empty item") }
            let at = item.firstIndex(of: UInt8(ascii: "@"))
            let tag: Tag
            do {
                tag = try Tag(validating: Substring(at.map { item[..<$0] } ?? item))
            } catch {
                throw .badRequest(error.description)
            }
            var cursor: Int64?
            if let at {
                let text = Substring(item[item.index(after: at)...])
                guard let parsed = Self.parseCursor(text) else {
                    throw .badRequest("cursor \"\(text.prefix(40))\" of tag \(tag) is not a whole number from 0 to \(Int64.max)")
                }
                cursor = parsed
            }
            let isNew = seen != nil ? seen!.insert(tag).inserted : !result.contains { $0.tag == tag }
            guard isNew else { throw .badRequest("tag \(tag) is listed more than once") }
            result.append(TagCursor(tag: tag, cursor: cursor))
        }
        return result
    }

    /// Digits only: no sign, no spaces, and within `Int64`.
    static func parseCursor(_ text: Substring) -> Int64? {
        guard !text.isEmpty else { return nil }
        return decimalValue(text.utf8)
    }

    static func parseTimeout(_ value: String?, limits: PollLimits) throws(RequestError) -> Int {
        guard let value else { return min(limits.defaultTimeout, limits.maximumTimeout) }
        let isWholeNumber = !value.isEmpty && value.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        guard isWholeNumber else {
            throw .badRequest("timeout \"\(value.prefix(40))\" is not a whole number of seconds")
        }
        // Digits beyond Int64 are simply above the maximum.
        let seconds = Int64(value) ?? Int64.max
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

enum PercentDecoding {
    /// Decodes `%XX` escapes and `+` (as a space); `nil` for a broken escape or invalid UTF-8.
    static func decode(_ text: Substring) -> String? {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else {
            return String(text)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
