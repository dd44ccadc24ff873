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
