import NIOCore
import PlexorBytes

/// The payload the publish trigger sends with each `NOTIFY`, after its
/// signature (see `sql/003_signed_notifications_and_roles.sql`):
///
///     m <tag> <id> <time> <n> <tag1> <seq1> ... <tagN> <seqN> <k> <only1> ... <onlyK>\n<data>
///     r <tag> <seq> <id>
///
/// Fields are separated by single spaces; tags never contain spaces.
///
/// Any database session can send any payload, so parsing trusts nothing:
/// it is bounded by the payload's size (at most `maximumBytes`), counts are
/// capped before anything is reserved, and every field is checked as the
/// trigger would write it (tags, digits, the time's shape, each tag once).
public enum NotificationPayload: Sendable {
    /// The whole message fitted in the payload.
    case message(TaggedMessage)
    /// Too large for a payload: fetch message `id` from the table.
    case reference(tag: Tag, seq: Int64, id: Int64)

    /// PostgreSQL's limit on a payload, in bytes (less than 8000).
    public static let maximumBytes = 7999
    /// Most tags a message carries, and most in its `only_for` (as the database allows).
    public static let maximumTags = 100

    /// Parses a payload (without its signature); `nil` when it is not one the trigger writes.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> NotificationPayload? {
        guard bytes.count <= Self.maximumBytes else { return nil }
        var reader = FieldReader(bytes: bytes)
        guard let kind = reader.field(), kind.count == 1,
              let tagText = reader.field(), let tag = Self.tag(tagText) else { return nil }
        switch kind.first {
        case UInt8(ascii: "r"):
            guard let seq = reader.positive(), let id = reader.positive(), reader.isAtEnd,
                  reader.lastSeparator == 0 else { return nil }
            return .reference(tag: tag, seq: seq, id: id)
        case UInt8(ascii: "m"):
            return Self.parseMessage(tag: tag, tagText: tagText, reader: &reader).map(NotificationPayload.message)
        default:
            return nil
        }
    }

    private static func parseMessage(tag: Tag, tagText: UnsafeRawBufferPointer.SubSequence,
                                     reader: inout FieldReader) -> TaggedMessage? {
        guard let id = reader.positive(), let time = reader.field(), isTimestamp(time),
              let count = reader.positive(), count <= Self.maximumTags else { return nil }
        var seqs: [TagSeq] = []
        seqs.reserveCapacity(Int(count))
        var ownSeq: Int64?
        for _ in 0..<count {
            guard let name = reader.field(), let seq = reader.positive() else { return nil }
            let entryTag: Tag
            if name.elementsEqual(tagText) {
                guard ownSeq == nil else { return nil }
                ownSeq = seq
                entryTag = tag
            } else {
                guard let other = Self.tag(name) else { return nil }
                entryTag = other
            }
            guard !seqs.contains(where: { $0.tag == entryTag }) else { return nil }
            seqs.append(TagSeq(tag: entryTag, seq: seq))
        }
        guard let ownSeq, let onlyForCount = reader.count(), onlyForCount <= Self.maximumTags else { return nil }
        var onlyFor: [Tag]?
        if onlyForCount > 0 {
            var list: [Tag] = []
            list.reserveCapacity(Int(onlyForCount))
            for _ in 0..<onlyForCount {
                guard let name = reader.field(), let onlyTag = Self.tag(name), !list.contains(onlyTag) else { return nil }
                list.append(onlyTag)
            }
            onlyFor = list
        }
        guard reader.lastSeparator == UInt8(ascii: "\n"), let data = reader.rest(), !data.isEmpty else { return nil }
        var buffer = ByteBuffer()
        buffer.writeBytes(data)
        let message = Message(
            id: id,
            time: String(decoding: time, as: UTF8.self),
            seqs: seqs,
            onlyFor: onlyFor,
            data: buffer
        )
        return TaggedMessage(tag: tag, seq: ownSeq, message: message)
    }

    private static func tag(_ bytes: UnsafeRawBufferPointer.SubSequence) -> Tag? {
        try? Tag(validating: UnsafeRawBufferPointer(rebasing: bytes))
    }

    /// Whether `bytes` read `YYYY-MM-DDTHH:MM:SS.ffffffZ`, as the trigger writes a time.
    static func isTimestamp(_ bytes: UnsafeRawBufferPointer.SubSequence) -> Bool {
        let shape = "0000-00-00T00:00:00.000000Z".utf8
        guard bytes.count == shape.count else { return false }
        return zip(bytes, shape).allSatisfy { byte, expected in
            expected == UInt8(ascii: "0") ? (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) : byte == expected
        }
    }
}

/// Reads space-separated fields; the header ends at the first newline.
struct FieldReader {
    let bytes: UnsafeRawBufferPointer
    var position = 0
    /// What ended the last field: a space, the newline, or 0 at the end of the payload.
    private(set) var lastSeparator: UInt8 = 0

    init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    var isAtEnd: Bool { self.position >= self.bytes.count }

    /// The next non-empty header field, ended by a space, the newline or the end.
    /// `nil` once the header has ended.
    mutating func field() -> UnsafeRawBufferPointer.SubSequence? {
        guard self.lastSeparator != UInt8(ascii: "\n") else { return nil }
        let start = self.position
        var index = start
        while index < self.bytes.count, self.bytes[index] != UInt8(ascii: " "), self.bytes[index] != UInt8(ascii: "\n") {
            index += 1
        }
        guard index > start else { return nil }
        self.lastSeparator = index < self.bytes.count ? self.bytes[index] : 0
        self.position = Swift.min(index + 1, self.bytes.count)
        return self.bytes[start..<index]
    }

    /// A count: decimal digits, 0 or more.
    mutating func count() -> Int64? {
        guard let field = self.field(), field.count <= 19 else { return nil }  // bigint has 19 digits at most
        return decimalValue(field)
    }

    /// An id or a seq: decimal digits, 1 or more.
    mutating func positive() -> Int64? {
        guard let value = self.count(), value > 0 else { return nil }
        return value
    }

    /// Everything after the header's newline.
    mutating func rest() -> UnsafeRawBufferPointer.SubSequence? {
        guard self.lastSeparator == UInt8(ascii: "\n") else { return nil }
        defer { self.position = self.bytes.count }
        return self.bytes[self.position...]
    }
}
