import NIOCore
import Testing
@testable import PlexorCore

/// Transcripts of polls' lives on one loop: each event, and what the
/// lifecycle tells the gateway to do. No database, no clock: both are inputs.
@Suite struct PollLifecycleTests {
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
    /// The listener's epoch in these transcripts unless one says otherwise.
    let epoch: UInt64 = 1

    func lifecycle(linger: TimeAmount = .seconds(30)) -> PollLifecycle {
        PollLifecycle(catchUpLimitPerTag: 100, linger: linger)
    }

    func poll(_ tags: [(Tag, Int64?)], timeout: Int = 25) -> PollRequest {
        PollRequest(tags: tags.map { TagCursor(tag: $0, cursor: $1) }, timeout: timeout)
    }

    /// Starts a poll that must wait; returns its id and the subscribe it asks for.
    func started(_ machine: inout PollLifecycle, _ request: PollRequest, now: NIODeadline,
                 sourceLocation: SourceLocation = #_sourceLocation) -> (PollID, PollLifecycle.Action)? {
        guard case .started(let id, let action) = machine.start(request, now: now) else {
            Issue.record("expected the poll to wait", sourceLocation: sourceLocation)
            return nil
        }
        return (id, action)
    }

    /// Runs one poll of tag `a` through a database read of `windows` that
    /// leaves it parked: the usual way a tag's recent log is established.
    func parked(_ machine: inout PollLifecycle, cursor: Int64?, lastSeq: Int64, now: NIODeadline,
                sourceLocation: SourceLocation = #_sourceLocation) -> PollID? {
        guard let (id, _) = self.started(&machine, self.poll([("a", cursor)]), now: now, sourceLocation: sourceLocation) else { return nil }
        _ = machine.listening(id, epoch: self.epoch, listenerEpoch: self.epoch, now: now)
        let action = machine.databaseRead(id, windows: [TagLogWindow(tag: "a", lastSeq: lastSeq, firstSeq: 1)],
                                          epoch: self.epoch, listenerEpoch: self.epoch, now: now)
        #expect(action == nil, "expected to park", sourceLocation: sourceLocation)
        return id
    }

    // MARK: Starting

    @Test func aFirstPollSubscribesItsNewTagsQueriesTheDatabaseAndAnswersWhatItReads() throws {
        var machine = self.lifecycle()
        let (id, subscribe) = try #require(self.started(&machine, self.poll([("a", 3), ("b", nil)]), now: self.t0))
        #expect(subscribe == .subscribe(id, newTags: ["a", "b"], tags: ["a", "b"]))
        let query = machine.listening(id, epoch: self.epoch, listenerEpoch: self.epoch, now: self.t0)
        #expect(query == .queryDatabase(id, cursors: [TagCursor(tag: "a", cursor: 3), TagCursor(tag: "b", cursor: nil)], epoch: self.epoch))
        let answer = machine.databaseRead(id, windows: [
            TagLogWindow(tag: "a", lastSeq: 4, firstSeq: 1, entries: [entry(4, id: 40)]),
            TagLogWindow(tag: "b", lastSeq: 7, firstSeq: 1),
        ], epoch: self.epoch, listenerEpoch: self.epoch, now: self.t0)
        #expect(answer == .answer(id, PollAnswer(messages: [message(40, [("a", 4)])], tags: ["a", "b"], cursors: [4, 7])))
        #expect(machine.activeCount == 0)
    }

    @Test func aSecondPollOfAWatchedTagSubscribesNothingNew() throws {
        var machine = self.lifecycle()
        _ = try #require(self.parked(&machine, cursor: nil, lastSeq: 0, now: self.t0))
        let (id, subscribe) = try #require(self.started(&machine, self.poll([("a", 0), ("b", 0)]), now: self.t0))
        #expect(subscribe == .subscribe(id, newTags: ["b"], tags: ["a", "b"]))
    }

    @Test func aOneTagPollCoveredByTheRecentLogIsAnsweredStraightFromIt() throws {
        var machine = self.lifecycle()
        let waiting = try #require(self.parked(&machine, cursor: 4, lastSeq: 4, now: self.t0))
        // A notification answers the parked poll and extends the recent log.
        let delivered = machine.deliver([notification("a", message(50, [("a", 5)]))], now: self.t0)
        #expect(delivered == [.answer(waiting, PollAnswer(messages: [message(50, [("a", 5)])], tags: ["a"], cursors: [5]))])
        // The client's next poll from an older cursor the log still covers: no id, no database.
        let start = machine.start(self.poll([("a", 4)]), now: self.t0)
        #expect(start == .answeredFromLog("a", entries: [entry(5, id: 50)][...], head: 5))
        #expect(machine.activeCount == 0)
    }

    @Test func aPollTheRecentLogsAnswerAsNothingNewWaitsWithoutQueryingTheDatabase() throws {
        var machine = self.lifecycle()
        _ = try #require(self.parked(&machine, cursor: nil, lastSeq: 9, now: self.t0))
        let (id, _) = try #require(self.started(&machine, self.poll([("a", 9)]), now: self.t0))
        let action = machine.listening(id, epoch: self.epoch, listenerEpoch: self.epoch, now: self.t0)
        #expect(action == nil)
        #expect(machine.parkedCount == 2)
    }

    @Test func aPollOfSeveralTagsTheRecentLogsCoverIsAnsweredWithoutAnId() throws {
        var machine = self.lifecycle()
        let (id, _) = try #require(self.started(&machine, self.poll([("a", 4), ("b", nil)]), now: self.t0))
        _ = machine.listening(id, epoch: self.epoch, listenerEpoch: self.epoch, now: self.t0)
        _ = machine.databaseRead(id, windows: [TagLogWindow(tag: "a", lastSeq: 4, firstSeq: 1), TagLogWindow(tag: "b", lastSeq: 2, firstSeq: 1)],
                                 epoch: self.epoch, listenerEpoch: self.epoch, now: self.t0)
        let seq5 = message(50, [("a", 5), ("b", 3)])
        _ = machine.deliver([notification("a", seq5), notification("b", seq5)], now: self.t0)
        // Behind both cursors: one message, carried by both tags, answered once.
        let start = machine.start(self.poll([("a", 4), ("b", 2)]), now: self.t0)
        #expect(start == .answered(PollAnswer(messages: [message(50, [("a", 5), ("b", 3)])], tags: ["a", "b"], cursors: [5, 3])))
        // At the head with timeout=0: the cursors, at once.
        #expect(machine.start(self.poll([("a", 5), ("b", 3)], timeout: 0), now: self.t0) == .answered(PollAnswer(tags: ["a", "b"], cursors: [5, 3])))
        #expect(machine.activeCount == 0)
    }

    @Test func aPollWhoseTagsGotARecentLogWhileItWaitedForListenSkipsTheDatabase() throws {
        var machine = self.lifecycle()
        // Two polls of a tag nobody watched: both must wait for LISTEN.
        let (first, _) = try #require(self.started(&machine, self.poll([("a", nil)]), now: self.t0))
        let (second, _) = try #require(self.started(&machine, self.poll([("a", 6)]), now: self.t0))
        // The first one's read establishes the recent log...
        _ = machine.listening(first, epoch: self.epoch, listenerEpoch: self.epoch, now: self.t0)
        _ = machine.databaseRead(first, windows: [TagLogWindow(tag: "a", lastSeq: 6, firstSeq: 1)],
                                 epoch: self.epoch, listenerEpoch: self.epoch, now: self.t0)
        // ...so the second parks from it when its LISTEN is confirmed.
        #expect(machine.listening(second, epoch: self.epoch, listenerEpoch: self.epoch, now: self.t0) == nil)
        #expect(machine.parkedCount == 2)
    }

    @Test func aPollThatMayNotWaitIsAnsweredWithTheCursorsTheRecentLogsGive() throws {
        var machine = self.lifecycle()
        _ = try #require(self.parked(&machine, cursor: nil, lastSeq: 9, now: self.t0))
        #expect(machine.start(self.poll([("a", nil)], timeout: 0), now: self.t0) == .answeredFromLog("a", entries: [], head: 9))
    }

    @Test func aPollThatMayNotWaitIsAnsweredAfterItsDatabaseReadRatherThanParked() throws {
        var machine = self.lifecycle()
        let (id, _) = try #require(self.started(&machine, self.poll([("a", nil)], timeout: 0), now: self.t0))
        _ = machine.listening(id, epoch: self.epoch, listenerEpoch: self.epoch, now: self.t0)
        let answer = machine.databaseRead(id, windows: [TagLogWindow(tag: "a", lastSeq: 6, firstSeq: 1)],
                                          epoch: self.epoch, listenerEpoch: self.epoch, now: self.t0)
        #expect(answer == .answer(id, PollAnswer(tags: ["a"], cursors: [6])))
        #expect(machine.parkedCount == 0)
    }

    // MARK: Stale catch-ups

    @Test func aReadMadeBeforeTheListenerReconnectedIsRunAgainAndNotLearned() throws {
        var machine = self.lifecycle()
        let (id, _) = try #require(self.started(&machine, self.poll([("a", 2)]), now: self.t0))
        _ = machine.listening(id, epoch: 1, listenerEpoch: 1, now: self.t0)
        // The listener reconnected (epoch 2) while the query ran: notifications may be lost.
        let again = machine.databaseRead(id, windows: [TagLogWindow(tag: "a", lastSeq: 2, firstSeq: 1)],
                                         epoch: 1, listenerEpoch: 2, now: self.t0)
        #expect(again == .subscribe(id, newTags: [], tags: ["a"]))
        // Not learned: the new catch-up goes to the database again, from the concrete cursor.
        let query = machine.listening(id, epoch: 2, listenerEpoch: 2, now: self.t0)
        #expect(query == .queryDatabase(id, cursors: [TagCursor(tag: "a", cursor: 2)], epoch: 2))
    }

    @Test func aReadOvertakenByANotificationIsRunAgainFromItsCursors() throws {
        var machine = self.lifecycle()
        let (id, _) = try #require(self.started(&machine, self.poll([("a", nil)]), now: self.t0))
        _ = machine.listening(id, epoch: self.epoch, listenerEpoch: self.epoch, now: self.t0)
        // Seq 8 is notified while the read (made before it committed) is on its way.
        #expect(machine.deliver([notification("a", message(80, [("a", 8)]))], now: self.t0).isEmpty)
        let again = machine.databaseRead(id, windows: [TagLogWindow(tag: "a", lastSeq: 7, firstSeq: 1)],
                                         epoch: self.epoch, listenerEpoch: self.epoch, now: self.t0)
        #expect(again == .subscribe(id, newTags: [], tags: ["a"]))
        let query = machine.listening(id, epoch: self.epoch, listenerEpoch: self.epoch, now: self.t0)
        #expect(query == .queryDatabase(id, cursors: [TagCursor(tag: "a", cursor: 7)], epoch: self.epoch))
    }

    @Test func aPollThatSawAGapCatchesUpAgainFromItsCursors() throws {
        var machine = self.lifecycle()
        let id = try #require(self.parked(&machine, cursor: 3, lastSeq: 3, now: self.t0))
        // Seq 5 without seq 4 (say, the listener's queue dropped it): the poll must not skip 4.
        let actions = machine.deliver([notification("a", message(50, [("a", 5)]))], now: self.t0)
        #expect(actions == [.subscribe(id, newTags: [], tags: ["a"])])
        #expect(machine.parkedCount == 0)
        let query = machine.listening(id, epoch: self.epoch, listenerEpoch: self.epoch, now: self.t0)
        #expect(query == .queryDatabase(id, cursors: [TagCursor(tag: "a", cursor: 3)], epoch: self.epoch))
    }

    // MARK: Clients that leave

    @Test func aClientGoneMidQueryGetsNoAnswerAndItsTagLingersThenIsReleased() throws {
        var machine = self.lifecycle(linger: .seconds(30))
        let (id, _) = try #require(self.started(&machine, self.poll([("a", 1)]), now: self.t0))
        _ = machine.listening(id, epoch: self.epoch, listenerEpoch: self.epoch, now: self.t0)
        machine.cancel(id, now: self.t0 + .seconds(1))
        let late = machine.databaseRead(id, windows: [TagLogWindow(tag: "a", lastSeq: 2, firstSeq: 1, entries: [entry(2, id: 20)])],
                                        epoch: self.epoch, listenerEpoch: self.epoch, now: self.t0 + .seconds(2))
        #expect(late == nil)
        #expect(machine.activeCount == 0)
        #expect(machine.tick(now: self.t0 + .seconds(30)).isEmpty)
        #expect(machine.tick(now: self.t0 + .seconds(31)) == [.release(["a"])])
        #expect(machine.watchedTagCount == 0)
    }

    @Test func aClientGoneWhileWaitingForListenIsForgottenWhenListenArrives() throws {
        var machine = self.lifecycle()
        let (id, _) = try #require(self.started(&machine, self.poll([("a", 1)]), now: self.t0))
        machine.cancel(id, now: self.t0)
        #expect(machine.listening(id, epoch: self.epoch, listenerEpoch: self.epoch, now: self.t0) == nil)
        #expect(machine.failed(id, now: self.t0) == nil)
    }

    @Test func aParkedPollWhoseClientLeftIsNotAnswered() throws {
        var machine = self.lifecycle()
        let id = try #require(self.parked(&machine, cursor: 1, lastSeq: 1, now: self.t0))
        machine.cancel(id, now: self.t0)
        #expect(machine.parkedCount == 0)
        #expect(machine.deliver([notification("a", message(20, [("a", 2)]))], now: self.t0).isEmpty)
    }

    // MARK: Deadlines

    @Test func aTimeoutRacingADeliveryAnswersOnceWhicheverComesFirst() throws {
        let deadline = self.t0 + .seconds(25)
        let seq2 = notification("a", message(20, [("a", 2)]))

        var deliveredFirst = self.lifecycle()
        let first = try #require(self.parked(&deliveredFirst, cursor: 1, lastSeq: 1, now: self.t0))
        #expect(deliveredFirst.deliver([seq2], now: deadline)
            == [.answer(first, PollAnswer(messages: [seq2.message], tags: ["a"], cursors: [2]))])
        #expect(deliveredFirst.tick(now: deadline).isEmpty)

        var expiredFirst = self.lifecycle()
        let second = try #require(self.parked(&expiredFirst, cursor: 1, lastSeq: 1, now: self.t0))
        #expect(expiredFirst.tick(now: deadline) == [.answer(second, PollAnswer(tags: ["a"], cursors: [1]))])
        #expect(expiredFirst.deliver([seq2], now: deadline).isEmpty)
    }

    @Test func aPollWhoseDeadlinePassedDuringItsReadIsAnsweredNotParked() throws {
        var machine = self.lifecycle()
        let (id, _) = try #require(self.started(&machine, self.poll([("a", nil)], timeout: 5), now: self.t0))
        _ = machine.listening(id, epoch: self.epoch, listenerEpoch: self.epoch, now: self.t0)
        let answer = machine.databaseRead(id, windows: [TagLogWindow(tag: "a", lastSeq: 3, firstSeq: 1)],
                                          epoch: self.epoch, listenerEpoch: self.epoch, now: self.t0 + .seconds(5))
        #expect(answer == .answer(id, PollAnswer(tags: ["a"], cursors: [3])))
    }

    // MARK: Linger

    @Test func aPollArrivingAsTheLingerExpiresKeepsItsTagWatched() throws {
        var machine = self.lifecycle(linger: .seconds(30))
        let first = try #require(self.parked(&machine, cursor: nil, lastSeq: 0, now: self.t0))
        machine.cancel(first, now: self.t0)
        // The next poll arrives in the very tick the linger ends: the tag is
        // still known (no new subscribe), so the sweep must not release it.
        let (second, subscribe) = try #require(self.started(&machine, self.poll([("a", 0)]), now: self.t0 + .seconds(30)))
        #expect(subscribe == .subscribe(second, newTags: [], tags: ["a"]))
        #expect(machine.tick(now: self.t0 + .seconds(30)).isEmpty)
        #expect(machine.watchedTagCount == 1)
    }

    @Test func aPollArrivingJustAfterItsTagWasReleasedSubscribesItAgain() throws {
        var machine = self.lifecycle(linger: .seconds(30))
        let first = try #require(self.parked(&machine, cursor: nil, lastSeq: 0, now: self.t0))
        machine.cancel(first, now: self.t0)
        #expect(machine.tick(now: self.t0 + .seconds(30)) == [.release(["a"])])
        let (second, subscribe) = try #require(self.started(&machine, self.poll([("a", 0)]), now: self.t0 + .seconds(30)))
        #expect(subscribe == .subscribe(second, newTags: ["a"], tags: ["a"]))
        // The recent log went with the tag: the database is asked again.
        let query = machine.listening(second, epoch: self.epoch, listenerEpoch: self.epoch, now: self.t0 + .seconds(30))
        #expect(query == .queryDatabase(second, cursors: [TagCursor(tag: "a", cursor: 0)], epoch: self.epoch))
    }

    // MARK: Failures, reconnects, shutdown

    @Test func aPollTheListenerCannotServeFailsAndReleasesItsTags() throws {
        var machine = self.lifecycle(linger: .seconds(30))
        let (id, _) = try #require(self.started(&machine, self.poll([("a", 0)]), now: self.t0))
        #expect(machine.failed(id, now: self.t0) == .fail(id))
        #expect(machine.activeCount == 0)
        #expect(machine.tick(now: self.t0 + .seconds(30)) == [.release(["a"])])
    }

    @Test func aResynchronizeAnswersParkedPollsWithTheirCursorsAndForgetsRecentLogs() throws {
        var machine = self.lifecycle()
        let id = try #require(self.parked(&machine, cursor: 4, lastSeq: 4, now: self.t0))
        #expect(machine.resynchronize(now: self.t0) == [.answer(id, PollAnswer(tags: ["a"], cursors: [4]))])
        // The next poll cannot trust the old recent log: it reads the database.
        let (next, _) = try #require(self.started(&machine, self.poll([("a", 4)]), now: self.t0))
        let query = machine.listening(next, epoch: 2, listenerEpoch: 2, now: self.t0)
        #expect(query == .queryDatabase(next, cursors: [TagCursor(tag: "a", cursor: 4)], epoch: 2))
    }

    @Test func drainingAnswersParkedPollsAndRefusesNewOnes() throws {
        var machine = self.lifecycle()
        let id = try #require(self.parked(&machine, cursor: 4, lastSeq: 4, now: self.t0))
        #expect(machine.drain(now: self.t0) == [.answer(id, PollAnswer(tags: ["a"], cursors: [4]))])
        #expect(machine.start(self.poll([("a", 4)]), now: self.t0) == .refused)
    }
}
