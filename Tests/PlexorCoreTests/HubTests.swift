import NIOCore
import Testing
@testable import PlexorCore

@Suite struct HubTests {
    let later = NIODeadline.uptimeNanoseconds(60_000_000_000)

    func answers(_ actions: [Hub.Action]) -> [PollID: PollAnswer] {
        var result: [PollID: PollAnswer] = [:]
        for case .answer(let id, let answer) in actions { result[id] = answer }
        return result
    }

    @Test func keepsAnUnwatchedTagForTheLingerThenReleasesIt() {
        var hub = Hub(linger: .seconds(30))
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        let first = hub.watch(["a", "b"])
        #expect(first == ["a", "b"])
        let second = hub.watch(["b", "c"])
        #expect(second == ["c"])
        hub.unwatch(["a", "b"], now: start)
        hub.unwatch(["b", "c"], now: start + .seconds(10))
        // Watched again while lingering: not new, and no longer idle.
        let again = hub.watch(["c"])
        #expect(again.isEmpty)
        let early = hub.releaseIdle(now: start + .seconds(29))
        #expect(early.isEmpty)
        let firstRelease = hub.releaseIdle(now: start + .seconds(30))
        #expect(firstRelease == ["a"])
        let secondRelease = hub.releaseIdle(now: start + .seconds(60))
        #expect(secondRelease == ["b"])
        #expect(hub.watchedTagCount == 1)
    }

    @Test func catchesUpFromTheRecentLogOnceADatabaseReadEstablishedIt() throws {
        var hub = Hub()
        _ = hub.watch(["a"])
        let request = [TagCursor(tag: "a", cursor: 3)]
        #expect(hub.catchUpFromRecent(request, maximumPerTag: 100) == nil)
        hub.learn(request, windows: [TagLogWindow(tag: "a", lastSeq: 5, firstSeq: 1, entries: [entry(4, id: 40), entry(5, id: 50)])],
                  maximumPerTag: 100)
        // A notification extends it.
        _ = hub.deliver([notification("a", message(60, [("a", 6)]))])
        guard case .answer(let answer)? = hub.catchUpFromRecent([TagCursor(tag: "a", cursor: 4)], maximumPerTag: 100) else {
            Issue.record("expected an answer from the recent log")
            return
        }
        #expect(answer.messages.map(\.id) == [50, 60])
        #expect(answer.cursors == [6])
        guard case .park(let cursors)? = hub.catchUpFromRecent([TagCursor(tag: "a", cursor: nil)], maximumPerTag: 100) else {
            Issue.record("expected to park at the head")
            return
        }
        #expect(cursors == [6])
        // Older than what it holds, or ahead of the head: the database must answer.
        #expect(hub.catchUpFromRecent([TagCursor(tag: "a", cursor: 2)], maximumPerTag: 100) == nil)
        #expect(hub.catchUpFromRecent([TagCursor(tag: "a", cursor: 7)], maximumPerTag: 100) == nil)
        // At most the limit per answer, as from the database; the cursor says where the rest begins.
        guard case .answer(let limited)? = hub.catchUpFromRecent([TagCursor(tag: "a", cursor: 3)], maximumPerTag: 2) else {
            Issue.record("expected an answer from the recent log")
            return
        }
        #expect(limited.messages.map(\.id) == [40, 50])
        #expect(limited.cursors == [5])
        // The log's entries after a cursor, for answers written straight from it.
        let recent = hub.recentEntries(after: 4, tag: "a")
        #expect(recent?.entries.map(\.id) == [50, 60])
        #expect(recent?.head == 6)
        #expect(hub.recentEntries(after: 2, tag: "a") == nil)
    }

    @Test func appliesOnlyForToEntriesFromTheRecentLog() {
        var hub = Hub()
        _ = hub.watch(["room", "admins"])
        hub.learn([TagCursor(tag: "room", cursor: nil), TagCursor(tag: "admins", cursor: nil)],
                  windows: [TagLogWindow(tag: "room", lastSeq: 0, firstSeq: 1), TagLogWindow(tag: "admins", lastSeq: 0, firstSeq: 1)],
                  maximumPerTag: 100)
        _ = hub.deliver([notification("room", message(1, [("room", 1)], onlyFor: ["admins"]))])
        guard case .park(let cursors)? = hub.catchUpFromRecent([TagCursor(tag: "room", cursor: 0)], maximumPerTag: 100) else {
            Issue.record("a visitor must not see it, only move past it")
            return
        }
        #expect(cursors == [1])
        guard case .answer(let answer)? = hub.catchUpFromRecent([TagCursor(tag: "room", cursor: 0), TagCursor(tag: "admins", cursor: 0)],
                                                                maximumPerTag: 100) else {
            Issue.record("an admin must see it")
            return
        }
        #expect(answer.messages.map(\.id) == [1])
    }

    @Test func forgetsTheRecentLogAtAGapOrARelease() {
        var hub = Hub()
        _ = hub.watch(["a"])
        let atHead = [TagCursor(tag: "a", cursor: 5)]
        hub.learn(atHead, windows: [TagLogWindow(tag: "a", lastSeq: 5, firstSeq: 1)], maximumPerTag: 100)
        #expect(hub.catchUpFromRecent(atHead, maximumPerTag: 100) != nil)
        _ = hub.deliver([notification("a", message(7, [("a", 7)]))])
        #expect(hub.catchUpFromRecent(atHead, maximumPerTag: 100) == nil)
        hub.learn(atHead, windows: [TagLogWindow(tag: "a", lastSeq: 7, firstSeq: 1, entries: [entry(6, id: 6), entry(7, id: 7)])],
                  maximumPerTag: 100)
        #expect(hub.catchUpFromRecent(atHead, maximumPerTag: 100) != nil)
        _ = hub.releaseAll()
        #expect(hub.catchUpFromRecent(atHead, maximumPerTag: 100) == nil)
    }

    @Test func doesNotLearnFromAReadOlderThanANotificationOrShortOfTheHead() {
        var hub = Hub()
        _ = hub.watch(["a"])
        _ = hub.deliver([notification("a", message(9, [("a", 9)]))])
        hub.learn([TagCursor(tag: "a", cursor: 8)], windows: [TagLogWindow(tag: "a", lastSeq: 8, firstSeq: 1)], maximumPerTag: 100)
        #expect(hub.catchUpFromRecent([TagCursor(tag: "a", cursor: 8)], maximumPerTag: 100) == nil)
        // A read cut short by the per-tag limit does not reach the head either.
        hub.learn([TagCursor(tag: "a", cursor: 0)], windows: [TagLogWindow(tag: "a", lastSeq: 20, firstSeq: 1, entries: [entry(1, id: 1)])],
                  maximumPerTag: 1)
        #expect(hub.catchUpFromRecent([TagCursor(tag: "a", cursor: 1)], maximumPerTag: 100) == nil)
    }

    @Test func wakesOnlyThePollsWaitingOnTheTag() {
        var hub = Hub()
        _ = hub.watch(["a", "b"])
        let result5 = hub.park(PollID(1), tags: ["a"], cursors: [4], deadline: self.later)
        #expect(result5 == .parked)
        let result6 = hub.park(PollID(2), tags: ["b"], cursors: [0], deadline: self.later)
        #expect(result6 == .parked)
        let answers = self.answers(hub.deliver([notification("a", message(50, [("a", 5)]))]))
        #expect(Array(answers.keys) == [PollID(1)])
        #expect(answers[PollID(1)]?.messages.map(\.id) == [50])
        #expect(answers[PollID(1)]?.cursors == [5])
        #expect(hub.parkedCount == 1)
    }

    @Test func answersEveryWaiterOfATagWithTheSameMessage() {
        var hub = Hub()
        _ = hub.watch(["a"])
        for id in 1...100 { _ = hub.park(PollID(UInt64(id)), tags: ["a"], cursors: [0], deadline: self.later) }
        let answers = self.answers(hub.deliver([notification("a", message(1, [("a", 1)]))]))
        #expect(answers.count == 100)
        #expect(hub.parkedCount == 0)
    }

    @Test func ignoresWhatThePollHasAlready() {
        var hub = Hub()
        _ = hub.watch(["a"])
        _ = hub.park(PollID(1), tags: ["a"], cursors: [5], deadline: self.later)
        let result7 = hub.deliver([notification("a", message(5, [("a", 5)]))])
        #expect(result7.isEmpty)
        #expect(hub.parkedCount == 1)
    }

    @Test func sendsAPollBackToCatchUpWhenItSeesAGap() {
        var hub = Hub()
        _ = hub.watch(["a"])
        _ = hub.park(PollID(1), tags: ["a"], cursors: [5], deadline: self.later)
        let actions = hub.deliver([notification("a", message(7, [("a", 7)]))])
        guard case .catchUp(let id, let cursors)? = actions.first, actions.count == 1 else {
            Issue.record("expected one catch-up, got \(actions)")
            return
        }
        #expect(id == PollID(1))
        #expect(cursors == [5])
    }

    @Test func answersWhatWasAcceptedBeforeAGapInTheSameBatch() {
        var hub = Hub()
        _ = hub.watch(["a"])
        _ = hub.park(PollID(1), tags: ["a"], cursors: [5], deadline: self.later)
        let answers = self.answers(hub.deliver([notification("a", message(6, [("a", 6)])),
                                                notification("a", message(9, [("a", 9)]))]))
        #expect(answers[PollID(1)]?.messages.map(\.id) == [6])
        #expect(answers[PollID(1)]?.cursors == [6])
    }

    @Test func deliversAMultiTagMessageOnceWithEachSeq() {
        var hub = Hub()
        _ = hub.watch(["a", "b"])
        _ = hub.park(PollID(1), tags: ["a", "b"], cursors: [1, 4], deadline: self.later)
        let both = message(8, [("a", 2), ("b", 5)])
        let answers = self.answers(hub.deliver([notification("a", both), notification("b", both)]))
        #expect(answers[PollID(1)]?.messages.map(\.id) == [8])
        #expect(answers[PollID(1)]?.cursors == [2, 5])
    }

    @Test func collectsEveryMessageOfABatchIntoOneAnswer() {
        var hub = Hub()
        _ = hub.watch(["a"])
        _ = hub.park(PollID(1), tags: ["a"], cursors: [0], deadline: self.later)
        let answers = self.answers(hub.deliver((1...3).map { notification("a", message($0, [("a", $0)])) }))
        #expect(answers[PollID(1)]?.messages.map(\.id) == [1, 2, 3])
        #expect(answers[PollID(1)]?.cursors == [3])
    }

    @Test func keepsHiddenMessagesFromPollsOutsideOnlyForButMovesTheirCursor() {
        var hub = Hub()
        _ = hub.watch(["room", "admins"])
        _ = hub.park(PollID(1), tags: ["room"], cursors: [0], deadline: self.later)
        _ = hub.park(PollID(2), tags: ["room", "admins"], cursors: [0, 0], deadline: self.later)
        let secret = message(1, [("room", 1)], onlyFor: ["admins"])
        let answers = self.answers(hub.deliver([notification("room", secret)]))
        #expect(Array(answers.keys) == [PollID(2)])
        #expect(answers[PollID(2)]?.cursors == [1, 0])
        // The first poll is still parked, and its cursor moved past the hidden message.
        let next = self.answers(hub.deliver([notification("room", message(2, [("room", 2)]))]))
        #expect(next[PollID(1)]?.messages.map(\.id) == [2])
        #expect(next[PollID(1)]?.cursors == [2])
    }

    @Test func refusesToParkBehindANotificationAlreadySeen() {
        var hub = Hub()
        _ = hub.watch(["a"])
        _ = hub.deliver([notification("a", message(3, [("a", 3)]))])
        let result8 = hub.park(PollID(1), tags: ["a"], cursors: [2], deadline: self.later)
        #expect(result8 == .stale)
        let result9 = hub.park(PollID(1), tags: ["a"], cursors: [3], deadline: self.later)
        #expect(result9 == .parked)
    }

    @Test func answersPollsWhoseDeadlinePassedWithTheirCursors() {
        var hub = Hub()
        _ = hub.watch(["a"])
        _ = hub.park(PollID(1), tags: ["a"], cursors: [4], deadline: .uptimeNanoseconds(1_000))
        _ = hub.park(PollID(2), tags: ["a"], cursors: [4], deadline: .uptimeNanoseconds(3_000))
        let answers = self.answers(hub.expire(now: .uptimeNanoseconds(2_000)))
        #expect(Array(answers.keys) == [PollID(1)])
        #expect(answers[PollID(1)]?.messages.isEmpty == true)
        #expect(answers[PollID(1)]?.cursors == [4])
    }

    @Test func forgetsAPollWhoseClientLeft() {
        var hub = Hub()
        _ = hub.watch(["a"])
        _ = hub.park(PollID(1), tags: ["a"], cursors: [0], deadline: .uptimeNanoseconds(1_000))
        let result12 = hub.unpark(PollID(1))
        #expect(result12)
        let result13 = hub.unpark(PollID(1))
        #expect(!result13)
        let result14 = hub.deliver([notification("a", message(1, [("a", 1)]))])
        #expect(result14.isEmpty)
        let result15 = hub.expire(now: .uptimeNanoseconds(5_000))
        #expect(result15.isEmpty)
    }

    @Test func releasesEveryParkedPoll() {
        var hub = Hub()
        _ = hub.watch(["a", "b"])
        _ = hub.park(PollID(1), tags: ["a"], cursors: [3], deadline: self.later)
        _ = hub.park(PollID(2), tags: ["b"], cursors: [9], deadline: self.later)
        let answers = self.answers(hub.releaseAll())
        #expect(answers[PollID(1)]?.cursors == [3])
        #expect(answers[PollID(2)]?.cursors == [9])
        #expect(hub.parkedCount == 0)
    }
}
