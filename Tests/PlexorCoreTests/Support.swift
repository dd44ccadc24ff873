import NIOCore
@testable import PlexorCore

/// Swift Testing has a `Tag` too; in these tests it is always the message tag.
typealias Tag = PlexorCore.Tag

extension Tag: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) {
        self.init(trusted: value)
    }
}

func message(_ id: Int64, _ seqs: [(Tag, Int64)], onlyFor: [Tag]? = nil, data: String = "1") -> Message {
    Message(id: id, time: "2026-11-26T10:00:00.000000Z", seqs: seqs.map { TagSeq(tag: $0, seq: $1) },
            onlyFor: onlyFor, data: ByteBuffer(string: data))
}

func notification(_ tag: Tag, _ message: Message) -> TaggedMessage {
    TaggedMessage(tag: tag, seq: message.seq(for: tag)!, message: message)
}

func entry(_ seq: Int64, id: Int64, data: String = "1", onlyFor: [Tag]? = nil) -> LogEntry {
    LogEntry(seq: seq, id: id, time: "2026-11-26T10:00:00.000000Z", data: ByteBuffer(string: data), onlyFor: onlyFor)
}

/// An entry that `only_for` hides from every poll in these tests.
func hiddenEntry(_ seq: Int64, id: Int64) -> LogEntry {
    entry(seq, id: id, onlyFor: ["nobody-listens-here"])
}
