import NIOCore

/// The payload the publish trigger sends with each `NOTIFY` (see `sql/001_schema.sql`):
///
///     m <tag> <id> <time> <n> <tag1> <seq1> ... <tagN> <seqN> <k> <only1> ... <onlyK>\n<data>
///     r <tag> <seq> <id>
///
/// Fields are separated by single spaces; tags never contain spaces.
public enum NotificationPayload: Sendable {
    /// The whole message fitted in the payload.
    case message(TaggedMessage)
    /// Too large for a payload: fetch message `id` from the table.
    case reference(tag: Tag, seq: Int64, id: Int64)

    /// Parses a payload; `nil` when it is not one the trigger writes.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> NotificationPayload? {
        var reader = FieldReader(bytes: bytes)
        guard let kind = reader.field(), kind.count == 1, let tagText = reader.field() else { return nil }
        let tag = Tag(trusted: String(decoding: tagText, as: UTF8.self))
        switch kind.first {
        case UInt8(ascii: "r"):
            guard let seq = reader.integer(), let id = reader.integer(), reader.isAtEnd else { return nil }
            return .reference(tag: tag, seq: seq, id: id)
        case UInt8(ascii: "m"):
            guard let id = reader.integer(), let time = reader.field(), let count = reader.integer(), count > 0 else {
                return nil
            }
            var seqs: [TagSeq] = []
            seqs.reserveCapacity(Int(count))
            var ownSeq: Int64?
            for _ in 0..<count {
                guard let name = reader.field(), let seq = reader.integer() else { return nil }
                let entry = TagSeq(tag: name.elementsEqual(tagText) ? tag : Tag(trusted: String(decoding: name, as: UTF8.self)), seq: seq)
                if entry.tag == tag { ownSeq = seq }
                seqs.append(entry)
            }
            guard let ownSeq, let onlyForCount = reader.integer(), onlyForCount <= 100 else { return nil }
            var onlyFor: [Tag]?
            if onlyForCount > 0 {
                var list: [Tag] = []
                list.reserveCapacity(Int(onlyForCount))
                for _ in 0..<onlyForCount {
                    guard let name = reader.field() else { return nil }
                    list.append(Tag(trusted: String(decoding: name, as: UTF8.self)))
                }
                onlyFor = list
            }
            guard reader.lastSeparator == UInt8(ascii: "\n") else { return nil }
            guard let data = reader.rest() else { return nil }
            var buffer = ByteBuffer()
            buffer.writeBytes(data)
            let message = Message(
                id: id,
                time: String(decoding: time, as: UTF8.self),
                seqs: seqs,
                onlyFor: onlyFor,
                data: buffer
            )
            return .message(TaggedMessage(tag: tag, seq: ownSeq, message: message))
        default:
            return nil
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

    mutating func integer() -> Int64? {
        guard let field = self.field() else { return nil }
        return decimalValue(field)
    }

    /// Everything after the header's newline.
    mutating func rest() -> UnsafeRawBufferPointer.SubSequence? {
        guard self.lastSeparator == UInt8(ascii: "\n") else { return nil }
        defer { self.position = self.bytes.count }
        return self.bytes[self.position...]
    }
}
