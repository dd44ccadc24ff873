import NIOCore
import Testing
@testable import PlexorCore

@Suite struct AnswerEncoderTests {
    @Test func encodesMessagesCursorsAndResetsExactly() {
        var encoder = AnswerEncoder()
        let hi = Message(id: 981, time: "2026-11-26T10:00:00.123456Z",
                         seqs: [TagSeq(tag: "chat", seq: 18), TagSeq(tag: "private", seq: 3)],
                         onlyFor: nil, data: ByteBuffer(string: "{\"text\":\"hi\"}"))
        let answer = PollAnswer(messages: [hi], tags: ["chat", "news"], cursors: [18, 30],
                                resets: [CursorReset(tag: "news", reason: .expired, cursor: 30)])
        #expect(String(buffer: encoder.encode(answer)) == """
            {"messages":[{"id":981,"tags":{"chat":18},"time":"2026-11-26T10:00:00.123456Z","data":{"text":"hi"}}],\
            "cursors":{"chat":18,"news":30},"resets":{"news":{"reason":"expired","cursor":30}}}
            """)
    }

    @Test func encodesAnEmptyAnswer() {
        var encoder = AnswerEncoder()
        #expect(String(buffer: encoder.encode(PollAnswer(tags: ["a"], cursors: [0]))) == "{\"messages\":[],\"cursors\":{\"a\":0}}")
    }

    @Test func aOneTagAnswerFromLogEntriesIsTheAnswerEncodedInFull() {
        let entries = [
            LogEntry(seq: 4, id: 40, time: "2026-11-26T10:00:04.000000Z", data: ByteBuffer(string: "[4]"), onlyFor: nil),
            LogEntry(seq: 5, id: 50, time: "2026-11-26T10:00:05.000000Z", data: ByteBuffer(string: "\"for admins\""), onlyFor: ["admins"]),
            LogEntry(seq: 6, id: 60, time: "2026-11-26T10:00:06.000000Z", data: ByteBuffer(string: "{\"n\":6}"), onlyFor: ["admins", "room"]),
        ]
        let (body, messages) = AnswerEncoder.encodeOne("room", entries: entries[...], cursor: 6)
        // What the general path answers: the entries the poll may see, as messages of its tag.
        let visible = [entries[0], entries[2]].map {
            Message(id: $0.id, time: $0.time, seqs: [TagSeq(tag: "room", seq: $0.seq)], onlyFor: $0.onlyFor, data: $0.data)
        }
        var encoder = AnswerEncoder()
        #expect(body == encoder.encode(PollAnswer(messages: visible, tags: ["room"], cursors: [6])))
        #expect(messages == 2)
        let (empty, none) = AnswerEncoder.encodeOne("room", entries: [], cursor: 6)
        #expect(String(buffer: empty) == "{\"messages\":[],\"cursors\":{\"room\":6}}")
        #expect(none == 0)
    }

    @Test func reusesTheBytesOfAMessageShownTheSameWay() {
        var encoder = AnswerEncoder()
        let shared = message(1, [("a", 1)], data: "\"same\"")
        let first = encoder.encode(PollAnswer(messages: [shared], tags: ["a"], cursors: [1]))
        let second = encoder.encode(PollAnswer(messages: [shared], tags: ["a"], cursors: [1]))
        #expect(first == second)
        let other = encoder.encode(PollAnswer(messages: [shared], tags: ["a", "b"], cursors: [1, 0]))
        #expect(String(buffer: other) == "{\"messages\":[{\"id\":1,\"tags\":{\"a\":1},\"time\":\"2026-11-26T10:00:00.000000Z\",\"data\":\"same\"}],\"cursors\":{\"a\":1,\"b\":0}}")
    }

    @Test func identicalAnswersShareOneBuffer() {
        var encoder = AnswerEncoder()
        let shared = message(7, [("a", 3)])
        let first = encoder.encode(PollAnswer(messages: [shared], tags: ["a"], cursors: [3]))
        let second = encoder.encode(PollAnswer(messages: [shared], tags: ["a"], cursors: [3]))
        let firstAddress = first.withUnsafeReadableBytes { $0.baseAddress }
        let secondAddress = second.withUnsafeReadableBytes { $0.baseAddress }
        #expect(firstAddress == secondAddress)
        // A different cursor is a different answer.
        let other = encoder.encode(PollAnswer(messages: [shared], tags: ["a"], cursors: [4]))
        #expect(other != first)
        // Both are remembered once there are two.
        let firstAgain = encoder.encode(PollAnswer(messages: [shared], tags: ["a"], cursors: [3]))
        let otherAgain = encoder.encode(PollAnswer(messages: [shared], tags: ["a"], cursors: [4]))
        #expect(firstAgain.withUnsafeReadableBytes { $0.baseAddress } == firstAddress)
        #expect(otherAgain.withUnsafeReadableBytes { $0.baseAddress } == other.withUnsafeReadableBytes { $0.baseAddress })
    }

    @Test func writesDecimalsLikeTheirDescription() {
        for value: Int64 in [0, 7, 9, 10, 99, 100, 12_345, -1, -90, Int64.max, Int64.min] {
            var buffer = ByteBuffer(string: "x")
            let written = buffer.writeDecimal(value)
            #expect(String(buffer: buffer) == "x\(value)")
            #expect(written == String(value).utf8.count)
        }
    }

    @Test func quotesErrorText() {
        #expect(JSONString.quoted("tag \"a b\"\n\u{1}") == "\"tag \\\"a b\\\"\\n\\u0001\"")
    }
}
