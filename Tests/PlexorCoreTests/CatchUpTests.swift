import NIOCore
import Testing
@testable import PlexorCore

@Suite struct CatchUpTests {
    func request(_ items: [(Tag, Int64?)]) -> [TagCursor] {
        items.map { TagCursor(tag: $0, cursor: $1) }
    }

    func answer(_ outcome: CatchUp.Outcome) throws -> PollAnswer {
        guard case .answer(let answer) = outcome else { throw ExpectedAnswer(outcome: outcome) }
        return answer
    }

    func parked(_ outcome: CatchUp.Outcome) throws -> [Int64] {
        guard case .park(let cursors) = outcome else { throw ExpectedAnswer(outcome: outcome) }
        return cursors
    }

    struct ExpectedAnswer: Error {
        var outcome: CatchUp.Outcome
    }

    @Test func pinsFromNowCursorsToTheLastSeqAndParks() throws {
        let outcome = CatchUp.resolve(self.request([("chat", nil), ("news", nil)]),
                                      windows: [TagLogWindow(tag: "chat", lastSeq: 17, firstSeq: 1),
                                                TagLogWindow(tag: "news", lastSeq: 0, firstSeq: 1)],
                                      maximumPerTag: 100)
        let cursors = try self.parked(outcome)
        #expect(cursors == [17, 0])
    }

    @Test func answersWithTheMessagesAfterTheCursor() throws {
        let outcome = CatchUp.resolve(self.request([("chat", 1)]),
                                      windows: [TagLogWindow(tag: "chat", lastSeq: 3, firstSeq: 1,
                                                             entries: [entry(2, id: 20), entry(3, id: 30)])],
                                      maximumPerTag: 100)
        let answer = try self.answer(outcome)
        #expect(answer.messages.map(\.id) == [20, 30])
        #expect(answer.messages.map { $0.seq(for: "chat") } == [2, 3])
        #expect(answer.cursors == [3])
        #expect(answer.resets.isEmpty)
    }

    @Test func movesPastHiddenMessagesWithoutAnswering() throws {
        let outcome = CatchUp.resolve(self.request([("chat", 1)]),
                                      windows: [TagLogWindow(tag: "chat", lastSeq: 3, firstSeq: 1,
                                                             entries: [hiddenEntry(2, id: 20), hiddenEntry(3, id: 30)])],
                                      maximumPerTag: 100)
        let cursors = try self.parked(outcome)
        #expect(cursors == [3])
    }

    @Test func answersAtOnceWhenMoreIsWaitingThanOneReadReturns() throws {
        let outcome = CatchUp.resolve(self.request([("chat", 0)]),
                                      windows: [TagLogWindow(tag: "chat", lastSeq: 50, firstSeq: 1,
                                                             entries: [hiddenEntry(1, id: 1), hiddenEntry(2, id: 2)])],
                                      maximumPerTag: 2)
        let answer = try self.answer(outcome)
        #expect(answer.messages.isEmpty)
        #expect(answer.cursors == [2])
    }

    @Test func reportsACursorAheadOfTheTag() throws {
        let outcome = CatchUp.resolve(self.request([("news", 40)]),
                                      windows: [TagLogWindow(tag: "news", lastSeq: 7, firstSeq: 1)], maximumPerTag: 100)
        let answer = try self.answer(outcome)
        #expect(answer.resets == [CursorReset(tag: "news", reason: .ahead, cursor: 7)])
        #expect(answer.cursors == [7])
    }

    @Test func reportsExpiredMessagesAndContinuesFromTheOldestKept() throws {
        let outcome = CatchUp.resolve(self.request([("news", 10)]),
                                      windows: [TagLogWindow(tag: "news", lastSeq: 40, firstSeq: 31,
                                                             entries: [entry(31, id: 310), entry(32, id: 320)])],
                                      maximumPerTag: 2)
        let answer = try self.answer(outcome)
        #expect(answer.resets == [CursorReset(tag: "news", reason: .expired, cursor: 30)])
        #expect(answer.messages.map(\.id) == [310, 320])
        #expect(answer.cursors == [32])
    }

    @Test func cursorZeroStartsAtTheOldestKeptWithoutAReset() throws {
        let outcome = CatchUp.resolve(self.request([("news", 0)]),
                                      windows: [TagLogWindow(tag: "news", lastSeq: 40, firstSeq: 40, entries: [entry(40, id: 400)])],
                                      maximumPerTag: 100)
        let answer = try self.answer(outcome)
        #expect(answer.resets.isEmpty)
        #expect(answer.messages.map(\.id) == [400])
    }

    @Test func showsAMessageOnSeveralTagsOnceWithEachSeq() throws {
        let outcome = CatchUp.resolve(self.request([("a", 0), ("b", 4)]),
                                      windows: [TagLogWindow(tag: "a", lastSeq: 1, firstSeq: 1, entries: [entry(1, id: 9)]),
                                                TagLogWindow(tag: "b", lastSeq: 5, firstSeq: 1, entries: [entry(5, id: 9)])],
                                      maximumPerTag: 100)
        let answer = try self.answer(outcome)
        #expect(answer.messages.count == 1)
        #expect(answer.messages[0].seqs == [TagSeq(tag: "a", seq: 1), TagSeq(tag: "b", seq: 5)])
        #expect(answer.cursors == [1, 5])
    }

    @Test func mergesTagsSoThatEveryTagsSeqsAscend() throws {
        // Commit order 7, 5, 8 (ids are not commit order): a = [7, 5], b = [5, 8].
        #expect(CatchUp.mergeInCommitOrder([[7, 5], [5, 8]]) == [7, 5, 8])
        #expect(CatchUp.mergeInCommitOrder([[5, 8], [7, 5]]) == [7, 5, 8])
        #expect(CatchUp.mergeInCommitOrder([[1, 2, 3]]) == [1, 2, 3])
        #expect(CatchUp.mergeInCommitOrder([[], [4]]) == [4])
    }
}
