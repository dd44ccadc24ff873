import NIOCore
import PlexorBytes

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
public struct PollAnswer: Equatable, Sendable {
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

extension PollAnswer {
    /// A one-tag poll answered from its tag's recent log, as an answer (for
    /// whoever encodes answers its own way): the entries it may see, and the head.
    public init(_ tag: Tag, logEntries entries: ArraySlice<LogEntry>, head: Int64) {
        let messages = entries.filter { $0.isVisible(to: tag) }.map { entry in
            Message(id: entry.id, time: entry.time, seqs: [TagSeq(tag: tag, seq: entry.seq)], onlyFor: entry.onlyFor, data: entry.data)
        }
        self.init(messages: messages, tags: [tag], cursors: [head])
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

        init(_ answer: PollAnswer) {
            self.tags = answer.tags
            self.cursors = answer.cursors
            self.ids = answer.messages.map(\.id)
        }
    }

    private var fragments: [FragmentKey: ByteBuffer] = [:]
    private var first: (answer: PollAnswer, body: ByteBuffer)?
    private var answers: [AnswerKey: ByteBuffer] = [:]
    private let allocator: ByteBufferAllocator

    public init(allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        self.allocator = allocator
    }

    public mutating func encode(_ answer: PollAnswer) -> ByteBuffer {
        // Answers with resets come from single catch-ups: not worth a key.
        guard answer.resets.isEmpty else { return self.encodeAnew(answer) }
        // Most encoders answer one poll: keys and the table are only built for a second answer.
        guard let first = self.first else {
            let body = self.encodeAnew(answer)
            self.first = (answer, body)
            return body
        }
        if Self.isSame(first.answer, answer) { return first.body }
        let key = AnswerKey(answer)
        if self.answers.isEmpty { self.answers[AnswerKey(first.answer)] = first.body }
        if let body = self.answers[key] { return body }
        let body = self.encodeAnew(answer)
        self.answers[key] = body
        return body
    }

    private mutating func encodeAnew(_ answer: PollAnswer) -> ByteBuffer {
        // The first answer has nothing to share its fragments with yet.
        let fragments = self.first == nil ? nil : answer.messages.map { self.fragment(for: $0, shownWith: answer.tags) }
        let bound = Self.bound(of: answer)
        var body = self.allocator.buffer(capacity: bound)
        body.write(bound: bound) { writer in
            writer.write("{\"messages\":[")
            for (index, message) in answer.messages.enumerated() {
                if index > 0 { writer.write(byte: UInt8(ascii: ",")) }
                if let fragments {
                    writer.write(fragments[index])
                } else {
                    Self.writeFragment(message, shownWith: answer.tags, into: &writer)
                }
            }
            writer.write("],")
            Self.writeCursors(zip(answer.tags, answer.cursors), into: &writer)
            if !answer.resets.isEmpty {
                writer.write(",\"resets\":{")
                for (index, reset) in answer.resets.enumerated() {
                    if index > 0 { writer.write(byte: UInt8(ascii: ",")) }
                    writer.write(byte: UInt8(ascii: "\""))
                    writer.write(reset.tag.name)
                    writer.write("\":{\"reason\":\"")
                    writer.write(reset.reason.rawValue)
                    writer.write("\",\"cursor\":")
                    writer.writeDecimal(reset.cursor)
                    writer.write(byte: UInt8(ascii: "}"))
                }
                writer.write(byte: UInt8(ascii: "}"))
            }
            writer.write(byte: UInt8(ascii: "}"))
        }
        return body
    }

    /// The answer of a poll of `tag` alone, straight from the log `entries`
    /// after its cursor (those it may see) and the cursor it moves to: the
    /// bytes `encode` writes for the same answer, without building one.
    /// Returns them and how many messages they hold.
    public static func encodeOne(_ tag: Tag, entries: ArraySlice<LogEntry>, cursor: Int64,
                                 allocator: ByteBufferAllocator = ByteBufferAllocator()) -> (body: ByteBuffer, messages: Int) {
        var bound = 64 + Self.bound(ofEntry: tag)
        for entry in entries {
            bound += 1 + Self.bound(ofFragment: entry.time, entry.data, tags: CollectionOfOne(tag))
        }
        var body = allocator.buffer(capacity: bound)
        var messages = 0
        body.write(bound: bound) { writer in
            writer.write("{\"messages\":[")
            for entry in entries where entry.isVisible(to: tag) {
                if messages > 0 { writer.write(byte: UInt8(ascii: ",")) }
                messages += 1
                Self.writeFragment(id: entry.id, tags: CollectionOfOne((tag, entry.seq)), time: entry.time, data: entry.data, into: &writer)
            }
            writer.write("],")
            Self.writeCursors(CollectionOfOne((tag, cursor)), into: &writer)
            writer.write(byte: UInt8(ascii: "}"))
        }
        return (body, messages)
    }

    /// The same tags, cursors and messages (what `AnswerKey` compares, without building one).
    private static func isSame(_ lhs: PollAnswer, _ rhs: PollAnswer) -> Bool {
        lhs.tags == rhs.tags && lhs.cursors == rhs.cursors && lhs.messages.count == rhs.messages.count
            && zip(lhs.messages, rhs.messages).allSatisfy { $0.id == $1.id }
    }

    private mutating func fragment(for message: Message, shownWith pollTags: [Tag]) -> ByteBuffer {
        let key = FragmentKey(id: message.id, tags: message.seqs.compactMap { pollTags.contains($0.tag) ? $0.tag : nil })
        if let cached = self.fragments[key] { return cached }
        let bound = Self.bound(of: message)
        var fragment = self.allocator.buffer(capacity: bound)
        fragment.write(bound: bound) { Self.writeFragment(message, shownWith: pollTags, into: &$0) }
        self.fragments[key] = fragment
        return fragment
    }

    /// A message as an answer shows it: the tags shown are those of the
    /// poll the message carries, in the message's order.
    private static func writeFragment(_ message: Message, shownWith pollTags: [Tag], into writer: inout ByteWriter) {
        let shown = message.seqs.lazy.filter { pollTags.contains($0.tag) }.map { ($0.tag, $0.seq) }
        Self.writeFragment(id: message.id, tags: shown, time: message.time, data: message.data, into: &writer)
    }

    private static func writeFragment(id: Int64, tags: some Sequence<(Tag, Int64)>, time: String, data: ByteBuffer,
                                      into writer: inout ByteWriter) {
        writer.write("{\"id\":")
        writer.writeDecimal(id)
        writer.write(",\"tags\":{")
        Self.writePairs(tags, into: &writer)
        writer.write("},\"time\":\"")
        writer.write(time)
        writer.write("\",\"data\":")
        writer.write(data)
        writer.write(byte: UInt8(ascii: "}"))
    }

    private static func writeCursors(_ cursors: some Sequence<(Tag, Int64)>, into writer: inout ByteWriter) {
        writer.write("\"cursors\":{")
        Self.writePairs(cursors, into: &writer)
        writer.write(byte: UInt8(ascii: "}"))
    }

    /// `"tag":number` pairs, comma-separated.
    private static func writePairs(_ pairs: some Sequence<(Tag, Int64)>, into writer: inout ByteWriter) {
        var separator = false
        for (tag, number) in pairs {
            if separator { writer.write(byte: UInt8(ascii: ",")) }
            separator = true
            writer.write(byte: UInt8(ascii: "\""))
            writer.write(tag.name)
            writer.write("\":")
            writer.writeDecimal(number)
        }
    }

    // MARK: Bounds (the space an encoding reserves before it writes)

    /// `"name":` and a decimal, with a separator.
    private static func bound(ofEntry tag: Tag) -> Int {
        tag.name.utf8.count + 4 + ByteWriter.maximumDecimalLength
    }

    private static func bound(of message: Message) -> Int {
        Self.bound(ofFragment: message.time, message.data, tags: message.seqs.lazy.map(\.tag))
    }

    private static func bound(ofFragment time: String, _ data: ByteBuffer, tags: some Sequence<Tag>) -> Int {
        64 + 2 * ByteWriter.maximumDecimalLength + time.utf8.count + data.readableBytes
            + tags.reduce(0) { $0 + Self.bound(ofEntry: $1) }
    }

    private static func bound(of answer: PollAnswer) -> Int {
        var bound = 64
        for message in answer.messages { bound += 1 + Self.bound(of: message) }
        for tag in answer.tags { bound += Self.bound(ofEntry: tag) }
        for reset in answer.resets { bound += 32 + Self.bound(ofEntry: reset.tag) }
        return bound
    }
}
