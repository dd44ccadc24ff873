import Foundation
import NIOCore
import PlexorCore
import PlexorGateway
import PlexorPostgres
import PlexorTestSupport
import Testing

/// Delivery end to end: SQL INSERT → trigger → NOTIFY → listener → hub → HTTP.
@Suite struct DeliveryTests {
    @Test func aParkedPollReturnsAsSoonAsTheCommitLands() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let tag = uniqueTag("chat")
        let publisher = try SQLPublisher()
        async let response = TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(tag)&timeout=30")
        try await waitUntil("the poll is parked") { gateway.parked == 1 }
        let committed = ContinuousClock.now
        let id = try publisher.insert([tag], #"{"text":"hi"}"#)
        let answer = try Answer(await response)
        let latency = ContinuousClock.now - committed
        #expect(answer.messages.map(\.id) == [id])
        #expect(answer.messages.first?.tags == [tag: 1])
        #expect(answer.messages.first?.dataJSON == #"{"text":"hi"}"#)
        #expect(answer.cursors == [tag: 1])
        // Far below the 30 s timeout: it was the commit, not the timeout, that answered.
        #expect(latency < .seconds(5), "answered \(latency) after the commit")
    }

    @Test func aFromNowPollIsPinnedToTheTagsLastSeq() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let tag = uniqueTag()
        let publisher = try SQLPublisher()
        for index in 1...3 { try publisher.insert([tag], String(index)) }
        let answer = try Answer(await TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(tag),\(uniqueTag("never"))&timeout=0"))
        #expect(answer.messages.isEmpty)
        #expect(answer.cursors[tag] == 3)
        #expect(answer.cursors.count == 2)
    }

    @Test func aCursorResumesWithWhatWasPublishedMeanwhile() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let tag = uniqueTag()
        let publisher = try SQLPublisher()
        try publisher.insert([tag], "\"before\"")
        let first = try Answer(await TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(tag)@0"))
        #expect(first.messages.map(\.dataJSON) == ["\"before\""])
        // No poll is open while these are published.
        for index in 1...3 { try publisher.insert([tag], "\(index)") }
        let second = try Answer(await TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(tag)@\(first.cursors[tag]!)"))
        #expect(second.messages.map(\.dataJSON) == ["1", "2", "3"])
        #expect(second.messages.map { $0.tags[tag]! } == [2, 3, 4])
        #expect(second.cursors == [tag: 4])
    }

    @Test func aMessageOnSeveralListedTagsArrivesOnceWithEachSeq() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let a = uniqueTag(), b = uniqueTag(), unlisted = uniqueTag()
        let publisher = try SQLPublisher()
        try publisher.insert([b], "\"b only\"")
        async let parked = TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(a)@0,\(b)@1")
        try await waitUntil("the poll is parked") { gateway.parked == 1 }
        let id = try publisher.insert([a, b, unlisted], "\"all\"")
        let live = try Answer(await parked)
        #expect(live.messages.map(\.id) == [id])
        #expect(live.messages[0].tags == [a: 1, b: 2])
        #expect(live.cursors == [a: 1, b: 2])
        // The same through catch-up.
        let caughtUp = try Answer(await TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(a)@0,\(b)@0"))
        #expect(caughtUp.messages.map(\.dataJSON) == ["\"b only\"", "\"all\""])
        #expect(caughtUp.messages[1].tags == [a: 1, b: 2])
    }

    @Test func onlyForHidesMessagesFromOtherPollsWithoutEndingTheirWait() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let room = uniqueTag("room"), admins = uniqueTag("admins")
        let publisher = try SQLPublisher()
        async let visitor = TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(room)@0&timeout=30")
        async let admin = TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(room)@0,\(admins)&timeout=30")
        try await waitUntil("both polls are parked") { gateway.parked == 2 }
        try publisher.insert([room], "\"for admins\"", onlyFor: [admins])
        let adminAnswer = try Answer(await admin)
        #expect(adminAnswer.messages.map(\.dataJSON) == ["\"for admins\""])
        // The visitor is still waiting; the next visible message answers it, and its cursor moved past the hidden one.
        try await waitUntil("only the visitor is parked") { gateway.parked == 1 }
        try publisher.insert([room], "\"for all\"")
        let visitorAnswer = try Answer(await visitor)
        #expect(visitorAnswer.messages.map(\.dataJSON) == ["\"for all\""])
        #expect(visitorAnswer.messages[0].tags == [room: 2])
        #expect(visitorAnswer.cursors == [room: 2])
        // Catch-up hides it too.
        let later = try Answer(await TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(room)@0"))
        #expect(later.messages.map(\.dataJSON) == ["\"for all\""])
        #expect(later.cursors == [room: 2])
    }

    @Test func messagesTooLargeForANotifyArriveIntact() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let tag = uniqueTag()
        let publisher = try SQLPublisher()
        let text = String((0..<200_000).map { _ in "abcdefghij\u{e9}\u{263a}".randomElement()! })
        let json = String(decoding: try JSONSerialization.data(withJSONObject: ["text": text]), as: UTF8.self)
        async let parked = TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(tag)&timeout=30")
        try await waitUntil("the poll is parked") { gateway.parked == 1 }
        try publisher.insert([tag], json)
        try publisher.insert([tag], "\"small after large\"")
        let answer = try Answer(await parked)
        #expect((answer.messages.first?.data as? [String: String])?["text"] == text)
        // Order is kept although the large one was fetched separately.
        let all = try Answer(await TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(tag)@0"))
        #expect(all.messages.map { $0.tags[tag]! } == [1, 2])
    }

    @Test func aRolledBackInsertDeliversNothing() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let tag = uniqueTag()
        let publisher = try SQLPublisher()
        async let parked = TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(tag)&timeout=30")
        try await waitUntil("the poll is parked") { gateway.parked == 1 }
        try publisher.connection.execute("BEGIN")
        try publisher.insert([tag], "\"rolled back\"")
        try publisher.connection.execute("ROLLBACK")
        try publisher.insert([tag], "\"committed\"")
        let answer = try Answer(await parked)
        #expect(answer.messages.map(\.dataJSON) == ["\"committed\""])
        #expect(answer.messages[0].tags == [tag: 1])
    }

    @Test func eightConcurrentPublishersReachALoopingClientGaplessAndOnce() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let tag = uniqueTag("stream")
        let client = try await TestHTTPClient.connect(port: gateway.localPort)
        defer { Task { await client.close() } }
        // The client is parked before anything is published.
        let first = try Answer(await client.get("/poll?tags=\(tag)&timeout=0"))
        let base = try TestDatabase.connectionString
        let publishers = Thread.detachedPublishers(count: 8, messages: 200) { worker in
            let connection = try PostgresConnection(base)
            return { index in
                try connection.execute("INSERT INTO plexor.messages (tags, data) VALUES ($1, $2)", ["{\(tag)}", "[\(worker),\(index)]"])
            }
        }
        var received: [Int64] = []
        var cursor = first.cursors[tag]!
        while received.count < 1600 {
            let answer = try Answer(await client.get("/poll?tags=\(tag)@\(cursor)&timeout=20"))
            #expect(!answer.messages.isEmpty, "a poll timed out with \(received.count) of 1600 received")
            if answer.messages.isEmpty { break }
            received += answer.messages.map { $0.tags[tag]! }
            cursor = answer.cursors[tag]!
        }
        try publishers.wait()
        #expect(received == Array(1...1600))
    }

    @Test func twoGatewaysOnOneDatabaseBothDeliver() async throws {
        let one = try startGateway()
        defer { one.shutdown() }
        let two = try startGateway()
        defer { two.shutdown() }
        let tag = uniqueTag()
        async let first = TestHTTPClient.get(port: one.localPort, "/poll?tags=\(tag)&timeout=30")
        async let second = TestHTTPClient.get(port: two.localPort, "/poll?tags=\(tag)&timeout=30")
        try await waitUntil("both polls are parked") { one.parked == 1 && two.parked == 1 }
        let id = try SQLPublisher().insert([tag], "\"to everyone\"")
        #expect(try Answer(await first).messages.map(\.id) == [id])
        #expect(try Answer(await second).messages.map(\.id) == [id])
    }

    @Test func retentionProducesResetsAndDeliveryGoesOn() async throws {
        let database = try TestDatabase.makeFreshDatabase()
        let gateway = try startGateway(database) {
            $0.retention = RetentionPolicy(maximumAgeSeconds: nil, maximumPerTag: 2)
            $0.retentionInterval = .milliseconds(50)
        }
        defer { gateway.shutdown() }
        let tag = uniqueTag()
        let publisher = try SQLPublisher(database)
        for index in 1...5 { try publisher.insert([tag], String(index)) }
        try await waitUntil("retention trimmed the tag") {
            try publisher.connection.query("SELECT count(*) FROM plexor.log WHERE tag = $1", [tag]) { $0.int64(0, 0) } == 2
        }
        let expired = try Answer(await TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(tag)@1"))
        #expect(expired.resets[tag]?.reason == "expired")
        #expect(expired.resets[tag]?.cursor == 3)
        #expect(expired.messages.map { $0.tags[tag]! } == [4, 5])
        #expect(expired.cursors == [tag: 5])
        let ahead = try Answer(await TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(tag)@99"))
        #expect(ahead.resets[tag]?.reason == "ahead")
        #expect(ahead.resets[tag]?.cursor == 5)
        #expect(ahead.cursors == [tag: 5])
        // Cursor 0 means "from the oldest kept" and never resets.
        let fromOldest = try Answer(await TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(tag)@0"))
        #expect(fromOldest.resets.isEmpty)
        #expect(fromOldest.messages.map { $0.tags[tag]! } == [4, 5])
    }

    @Test func aPollWhoseClientLeftIsDropped() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let client = try await TestHTTPClient.connect(port: gateway.localPort)
        let pending = Task { try await client.get("/poll?tags=\(uniqueTag())&timeout=30") }
        try await waitUntil("the poll is parked") { gateway.parked == 1 }
        await client.close()
        try await waitUntil("the poll is dropped") { gateway.parked == 0 }
        _ = try? await pending.value
    }

    @Test func aPollTimesOutWithItsCursors() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let tag = uniqueTag()
        let answer = try Answer(await TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(tag)@0&timeout=1"))
        #expect(answer.messages.isEmpty)
        #expect(answer.cursors == [tag: 0])
    }

    @Test func shutdownAnswersParkedPollsWithTheirCursors() async throws {
        let gateway = try startGateway()
        let tag = uniqueTag()
        try SQLPublisher().insert([tag], "1")
        async let parked = TestHTTPClient.get(port: gateway.localPort, "/poll?tags=\(tag)&timeout=30")
        try await waitUntil("the poll is parked") { gateway.parked == 1 }
        gateway.shutdown()
        let answer = try Answer(await parked)
        #expect(answer.messages.isEmpty)
        #expect(answer.cursors == [tag: 1])
    }
}

extension Thread {
    /// Runs `count` publisher threads; each makes its `publish` closure, then calls it `messages` times.
    static func detachedPublishers(count: Int, messages: Int,
                                   _ make: @escaping @Sendable (Int) throws -> (Int) throws -> Void) -> PublisherGroup {
        let group = PublisherGroup()
        for worker in 0..<count {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                do {
                    let publish = try make(worker)
                    for index in 0..<messages { try publish(index) }
                } catch {
                    group.record(error)
                }
            }
        }
        return group
    }
}

/// `@unchecked Sendable`: the errors are behind `lock`.
final class PublisherGroup: @unchecked Sendable {
    private let group = DispatchGroup()
    private let lock = NSLock()
    private var errors: [Error] = []

    func enter() { self.group.enter() }
    func leave() { self.group.leave() }

    func record(_ error: Error) {
        self.lock.lock()
        self.errors.append(error)
        self.lock.unlock()
    }

    func wait() throws {
        self.group.wait()
        if let error = self.lock.withLock({ self.errors.first }) { throw error }
    }
}

/// The recent log: polls whose cursors it covers skip the database.
@Suite struct RecentLogTests {
    @Test func aClientPollingAgainAtTheHeadIsParkedWithoutADatabaseRead() async throws {
        let gateway = try startGateway { $0.eventLoopThreads = 1 }
        defer { gateway.shutdown() }
        let tag = uniqueTag()
        let publisher = try SQLPublisher()
        let client = try await TestHTTPClient.connect(port: gateway.localPort)
        defer { Task { await client.close() } }
        let first = try Answer(await client.get("/poll?tags=\(tag)&timeout=0"))
        let readsBefore = gateway.metrics.catchUps.load(ordering: .relaxed)
        var cursor = first.cursors[tag]!
        for index in 1...20 {
            let uri = "/poll?tags=\(tag)@\(cursor)&timeout=30"
            async let next = client.get(uri)
            try await waitUntil("the poll is parked") { gateway.parked == 1 }
            try publisher.insert([tag], String(index))
            let answer = try Answer(await next)
            #expect(answer.messages.map { $0.tags[tag]! } == [cursor + 1])
            cursor = answer.cursors[tag]!
        }
        #expect(gateway.metrics.catchUps.load(ordering: .relaxed) == readsBefore)
        // A poll slightly behind is answered from the recent log too, with the right messages.
        let behind = try Answer(await client.get("/poll?tags=\(tag)@\(cursor - 3)"))
        #expect(behind.messages.map(\.dataJSON) == ["18", "19", "20"])
        #expect(gateway.metrics.catchUps.load(ordering: .relaxed) == readsBefore)
    }
}
