import NIOCore

/// Why a cursor could not be honoured.
public enum ResetReason: String, Sendable {
    /// The messages after the cursor were removed by retention.
    case expired
    /// The cursor is beyond the tag's last seq (for example, a replaced database).
    case ahead
}

/// A cursor the gateway could not honour, and the position delivery continues from.
public struct CursorReset: Equatable, Sendable {
    public var tag: Tag
    public var reason: ResetReason
    public var cursor: Int64

    public init(tag: Tag, reason: ResetReason, cursor: Int64) {
        self.tag = tag
        self.reason = reason
        self.cursor = cursor
    }
}

/// What a poll is answered with: the messages it may see, in an order in which
/// every tag's seqs ascend, and the cursor of every requested tag.
public struct PollAnswer: Sendable {
    public var messages: [Message]
    public var tags: [Tag]
    public var cursors: [Int64]
    public var resets: [CursorReset]

    public init(messages: [Message] = [], tags: [Tag], cursors: [Int64], resets: [CursorReset] = []) {
        self.messages = messages
        self.tags = tags
        self.cursors = cursors
        self.resets = resets
    }
}

/// Encodes answers as the JSON body of `GET /poll`:
///
///     {"messages":[{"id":981,"tags":{"chat":18},"time":"...","data":{...}}],
///      "cursors":{"chat":18},"resets":{"news":{"reason":"expired","cursor":30}}}
///
/// Tags and times need no escaping and data is JSON already, so encoding is
/// byte copying. Use one encoder for one batch of answers: within it a
/// message is encoded once per set of tags it is shown with, and an answer
/// identical to an earlier one (a fan-out: same tags, cursors and messages)
/// gets the very same bytes, which every waiter's write then shares.
public struct AnswerEncoder {
    private struct FragmentKey: Hashable {
        var id: Int64
        var tags: [Tag]
    }

    private struct AnswerKey: Hashable {
        var tags: [Tag]
        var cursors: [Int64]
        var ids: [Int64]
    }

    private var fragments: [FragmentKey: ByteBuffer] = [:]
    private var first: (key: AnswerKey, body: ByteBuffer)?
    private var answers: [AnswerKey: ByteBuffer] = [:]
    private let allocator: ByteBufferAllocator

    public init(allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        self.allocator = allocator
    }

    public mutating func encode(_ answer: PollAnswer) -> ByteBuffer {
        // Answers with resets come from single catch-ups: not worth a key.
        guard answer.resets.isEmpty else { return self.encodeAnew(answer) }
        let key = AnswerKey(tags: answer.tags, cursors: answer.cursors, ids: answer.messages.map(\.id))
        // Most encoders answer one poll: the table is only built for a second answer.
        guard let first = self.first else {
            let body = self.encodeAnew(answer)
            self.first = (key, body)
            return body
        }
        if first.key == key { return first.body }
        if self.answers.isEmpty { self.answers[first.key] = first.body }
        if let body = self.answers[key] { return body }
        let body = self.encodeAnew(answer)
        self.answers[key] = body
        return body
    }

    private mutating func encodeAnew(_ answer: PollAnswer) -> ByteBuffer {
        var body = self.allocator.buffer(capacity: 64 + answer.tags.count * 24)
        body.writeStaticString("{\"messages\":[")
        for (index, message) in answer.messages.enumerated() {
            if index > 0 { body.writeStaticString(",") }
            if self.first == nil {
                // The first answer: nothing to share its fragments with yet.
                Self.writeFragment(message, shownWith: answer.tags, into: &body)
            } else {
                var fragment = self.fragment(for: message, shownWith: answer.tags)
                body.writeBuffer(&fragment)
            }
        }
        body.writeStaticString("],\"cursors\":{")
        for index in answer.tags.indices {
            if index > 0 { body.writeStaticString(",") }
            body.writeStaticString("\"")
            body.writeString(answer.tags[index].name)
            body.writeStaticString("\":")
            body.writeDecimal(answer.cursors[index])
        }
        body.writeStaticString("}")
        if !answer.resets.isEmpty {
            body.writeStaticString(",\"resets\":{")
            for (index, reset) in answer.resets.enumerated() {
                if index > 0 { body.writeStaticString(",") }
                body.writeStaticString("\"")
                body.writeString(reset.tag.name)
                body.writeStaticString("\":{\"reason\":\"")
                body.writeString(reset.reason.rawValue)
                body.writeStaticString("\",\"cursor\":")
                body.writeDecimal(reset.cursor)
                body.writeStaticString("}")
            }
            body.writeStaticString("}")
        }
        body.writeStaticString("}")
        return body
    }

    private mutating func fragment(for message: Message, shownWith pollTags: [Tag]) -> ByteBuffer {
        let key = FragmentKey(id: message.id, tags: message.seqs.compactMap { pollTags.contains($0.tag) ? $0.tag : nil })
        if let cached = self.fragments[key] { return cached }
        var fragment = self.allocator.buffer(capacity: 64 + message.data.readableBytes)
        Self.writeFragment(message, shownWith: pollTags, into: &fragment)
        self.fragments[key] = fragment
        return fragment
    }

    /// A message as an answer shows it: the tags shown are those of the
    /// poll the message carries, in the message's order.
    private static func writeFragment(_ message: Message, shownWith pollTags: [Tag], into buffer: inout ByteBuffer) {
        buffer.writeStaticString("{\"id\":")
        buffer.writeDecimal(message.id)
        buffer.writeStaticString(",\"tags\":{")
        var separator = false
        for entry in message.seqs where pollTags.contains(entry.tag) {
            if separator { buffer.writeStaticString(",") }
            separator = true
            buffer.writeStaticString("\"")
            buffer.writeString(entry.tag.name)
            buffer.writeStaticString("\":")
            buffer.writeDecimal(entry.seq)
        }
        buffer.writeStaticString("},\"time\":\"")
        buffer.writeString(message.time)
        buffer.writeStaticString("\",\"data\":")
        buffer.writeImmutableBuffer(message.data)
        buffer.writeStaticString("}")
    }
}
