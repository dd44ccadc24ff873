import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PlexorHTTPClient
import PlexorPostgres

/// Scenario 3: many clients over many tags, each re-polling with its cursor,
/// while messages are committed at fixed rates. Measures commit → client
/// latency, counts every message a client did not get exactly once, and
/// samples the gateway's CPU and memory.
struct Stream: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Clients re-polling with cursors over many tags at fixed publish rates: latency, losses, gateway CPU.")

    @OptionGroup var target: TargetOptions
    @OptionGroup var results: ResultOptions
    @Option(help: "Client connections, each polling one tag.") var clients = 10_000
    @Option(help: "Tags, spread evenly over the clients.") var tags = 1000
    @Option(parsing: .upToNextOption, help: "Messages per second, one step each.") var rates: [Int] = [1000, 2000, 4000, 8000]
    @Option(help: "Seconds each rate runs.") var seconds = 10
    @Option(help: "Write the latency distributions and the gateway's CPU and memory over time to this SVG.") var svgOut: String?

    func run() async throws {
        guard self.target.server == .plexor, let databaseURL = self.target.databaseURL else {
            throw ValidationError("stream runs against plexor with --database-url (clients resume by Plexor cursors)")
        }
        let prefix = "bench-stream-\(UInt32.random(in: 0...UInt32.max))"
        let tagNames = (0..<self.tags).map { "\(prefix)-\($0)" }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let progress = StreamProgress(clients: self.clients)
        var pollers: [Task<ClientRecord, Error>] = []
        var connections: [HTTPClientConnection] = []
        for index in 0..<self.clients {
            let connection = try await self.target.connect(index: index, group: group)
            connections.append(connection)
            pollers.append(Task { try await pollWithCursor(connection, tag: tagNames[index % self.tags], client: index, progress: progress) })
        }
        let status = try await ServerStatus.open(self.target)
        try await status.waitFor(self.clients, timeout: .seconds(300))

        let sampler = ProcessSampler(pids: self.target.pid)
        sampler.start()
        let publisher = try StreamPublisher(databaseURL, tags: tagNames)
        var steps: [StreamStep] = []
        for rate in self.rates {
            let before = try self.target.processFigures()
            let clientBefore = try ProcessFigures(pids: [getpid()])
            let presenceWritesBefore = try await self.target.plexorMetric("plexor_presence_writes_total")
            let started = NIODeadline.now()
            sampler.mark("\(rate)/s")
            // On a thread of its own: libpq blocks, and the clients need the cooperative threads.
            let sent = await withCheckedContinuation { continuation in
                Thread { continuation.resume(returning: publisher.publish(rate: rate, for: .seconds(Int64(self.seconds)))) }.start()
            }
            let after = try self.target.processFigures()
            let clientAfter = try ProcessFigures(pids: [getpid()])
            let elapsed = Double((NIODeadline.now() - started).nanoseconds) / 1e9
            let presenceWritesAfter = try await self.target.plexorMetric("plexor_presence_writes_total")
            // Let every client catch up to the last message before the next step (bounded).
            let drained = await progress.waitUntil(cursors: publisher.lastSeqs(clientTags: self.clients, tags: self.tags), timeout: .seconds(30))
            steps.append(StreamStep(rate: rate, messages: sent, achievedRate: Double(sent.count) / elapsed,
                                    gatewayCPUPercent: (after.cpuSeconds - before.cpuSeconds) / elapsed * 100,
                                    clientCPUPercent: (clientAfter.cpuSeconds - clientBefore.cpuSeconds) / elapsed * 100,
                                    gatewayRSS: after.residentBytes, drained: drained,
                                    presenceWritesPerSecond: zip2(presenceWritesBefore, presenceWritesAfter).map { Double($1 - $0) / elapsed }))
        }
        sampler.stop()
        for connection in connections { await connection.close() }
        var records: [ClientRecord] = []
        for poller in pollers { records.append((try? await poller.value) ?? ClientRecord(client: -1)) }
        await status.close()
        try await group.shutdownGracefully()

        try self.report(steps, records: records, publisher: publisher, sampler: sampler)
    }

    private func report(_ steps: [StreamStep], records: [ClientRecord], publisher: StreamPublisher, sampler: ProcessSampler) throws {
        // Every delivery, by message: when it reached which client.
        var latencies = [[Double]](repeating: [], count: steps.count)
        let stepOfMessage = Dictionary(uniqueKeysWithValues: steps.enumerated().flatMap { index, step in step.messages.map { ($0.id, (index, $0.committedAt)) } })
        for record in records {
            for delivery in record.deliveries {
                guard let (step, committedAt) = stepOfMessage[delivery.id] else { continue }
                latencies[step].append(Double((delivery.receivedAt - committedAt).nanoseconds) / 1e6)
            }
        }
        let clientsPerTag = self.clients / self.tags
        let gaps = records.reduce(0) { $0 + $1.gaps }
        let duplicates = records.reduce(0) { $0 + $1.duplicates }
        let failures = records.filter { $0.client < 0 }.count
        var plotted: [(String, Statistics)] = []
        for (index, step) in steps.enumerated() {
            let statistics = Statistics(latencies[index])
            let expected = step.messages.count * clientsPerTag
            let lost = expected - latencies[index].count
            plotted.append(("\(step.rate)/s", statistics))
            try self.results.record("stream", server: "plexor", [
                "clients": self.clients, "tags": self.tags, "rate": step.rate, "achieved_rate": step.achievedRate,
                "messages": step.messages.count, "deliveries": latencies[index].count, "lost": lost,
                "median_ms": statistics.median, "p99_ms": statistics.percentile(0.99), "p999_ms": statistics.percentile(0.999),
                "worst_ms": statistics.worst, "gateway_cpu_percent": step.gatewayCPUPercent, "client_cpu_percent": step.clientCPUPercent, "gateway_rss_bytes": step.gatewayRSS,
                "drained": step.drained,
            ], summary: "\(step.rate) msgs/s asked, \(Int(step.achievedRate)) committed; \(latencies[index].count) of \(expected) deliveries (lost \(lost)); commit → client median \(format(statistics.median)) ms, p99 \(format(statistics.percentile(0.99))), p99.9 \(format(statistics.percentile(0.999))), worst \(format(statistics.worst)); gateway CPU \(Int(step.gatewayCPUPercent))% (bench \(Int(step.clientCPUPercent))%), RSS \(step.gatewayRSS / 1_048_576) MiB\(step.presenceWritesPerSecond.map { "; presence writes \(format($0, digits: 2))/s" } ?? "")")
        }
        print("[stream · plexor] cursor checks over all steps: \(gaps) gaps, \(duplicates) duplicates, \(failures) clients failed")
        if let svgOut = self.svgOut {
            try StreamPlot(latencies: plotted, samples: sampler.samples, marks: sampler.marks,
                           title: "Plexor, \(self.clients) clients over \(self.tags) tags").svg()
                .write(toFile: svgOut, atomically: true, encoding: .utf8)
            print("[stream · plexor] plot written to \(svgOut)")
        }
    }
}

struct StreamStep {
    var rate: Int
    var messages: [CommittedMessage]
    var achievedRate: Double
    var gatewayCPUPercent: Double
    /// This benchmark's own CPU (clients and publisher): on a small machine it competes with the gateway.
    var clientCPUPercent: Double
    var gatewayRSS: Int
    var drained: Bool
    /// Presence transactions the gateway wrote per second (`nil`: presence off, or not Plexor).
    var presenceWritesPerSecond: Double?
}

/// Both values, when both are there.
func zip2<A, B>(_ a: A?, _ b: B?) -> (A, B)? {
    guard let a, let b else { return nil }
    return (a, b)
}

struct CommittedMessage {
    var id: Int64
    var committedAt: NIODeadline
}

/// What one client saw: every message with the time its answer was complete,
/// and every break in its tag's seqs (a gap is a lost message).
struct ClientRecord: Sendable {
    struct Delivery: Sendable {
        var id: Int64
        var receivedAt: NIODeadline
    }

    var client: Int
    var deliveries: [Delivery] = []
    var gaps = 0
    var duplicates = 0
}

/// One client: poll, check the answer's seqs continue the cursor, poll on from the new cursor.
func pollWithCursor(_ connection: HTTPClientConnection, tag: String, client: Int, progress: StreamProgress) async throws -> ClientRecord {
    var record = ClientRecord(client: client)
    var cursor: Int64 = 0
    while true {
        guard let response = try? await connection.get("/poll?tags=\(tag)@\(cursor)&timeout=30") else { return record }
        guard response.status == .ok else { throw ValidationError("poll answered \(response.status): \(response.body)") }
        let answer = ScannedAnswer(response.body, tag: tag)
        for (id, seq) in answer.messages {
            if seq <= cursor {
                record.duplicates += 1
                continue
            }
            record.gaps += Int(seq - cursor - 1)
            cursor = seq
            record.deliveries.append(.init(id: id, receivedAt: response.receivedAt))
        }
        if answer.cursor > cursor { record.gaps += Int(answer.cursor - cursor) }
        cursor = max(cursor, answer.cursor)
        progress.set(client, cursor: cursor)
    }
}

/// The ids, seqs and cursor of a one-tag poll answer, scanned without a JSON
/// parser (the bench's data holds no strings that could mislead it).
struct ScannedAnswer {
    var messages: [(id: Int64, seq: Int64)] = []
    var cursor: Int64 = 0

    init(_ body: String, tag: String) {
        let bytes = Array(body.utf8)
        let idKey = Array("{\"id\":".utf8)
        let tagKey = Array("\"\(tag)\":".utf8)
        var index = 0
        var pendingID: Int64?
        while index < bytes.count {
            if bytes[index...].starts(with: idKey) {
                index += idKey.count
                pendingID = Self.number(bytes, &index)
            } else if bytes[index...].starts(with: tagKey) {
                index += tagKey.count
                let value = Self.number(bytes, &index)
                if let id = pendingID {
                    self.messages.append((id, value))
                    pendingID = nil
                } else {
                    self.cursor = value  // in "cursors"
                }
            } else {
                index += 1
            }
        }
    }

    private static func number(_ bytes: [UInt8], _ index: inout Int) -> Int64 {
        var value: Int64 = 0
        while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
            value = value * 10 + Int64(bytes[index] - UInt8(ascii: "0"))
            index += 1
        }
        return value
    }
}

/// Every client's cursor, to tell when all have caught up.
/// `@unchecked Sendable`: the cursors are behind `lock`.
final class StreamProgress: @unchecked Sendable {
    private let lock = NIOLock()
    private var cursors: [Int64]

    init(clients: Int) {
        self.cursors = Array(repeating: 0, count: clients)
    }

    func set(_ client: Int, cursor: Int64) {
        self.lock.withLock { self.cursors[client] = cursor }
    }

    /// Waits (bounded) until every client's cursor reached the given one.
    func waitUntil(cursors wanted: [Int64], timeout: TimeAmount) async -> Bool {
        let deadline = NIODeadline.now() + timeout
        while NIODeadline.now() < deadline {
            if self.lock.withLock({ zip(self.cursors, wanted).allSatisfy { $0 >= $1 } }) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }
}

/// Commits messages at a fixed rate over the tags in turn, from one
/// connection: about every millisecond, one INSERT of what is due (one row
/// at 1,000/s; more rows per statement at higher rates).
/// `@unchecked Sendable`: handed to one thread, which alone uses it.
final class StreamPublisher: @unchecked Sendable {
    private let connection: PostgresConnection
    private let tags: [String]
    private var published = 0

    init(_ databaseURL: String, tags: [String]) throws {
        self.connection = try PostgresConnection(databaseURL)
        self.tags = tags
    }

    /// Publishes for `duration` (blocking this thread); returns the messages with their commit times.
    func publish(rate: Int, for duration: TimeAmount) -> [CommittedMessage] {
        var committed: [CommittedMessage] = []
        let start = NIODeadline.now()
        var sentThisStep = 0
        while NIODeadline.now() - start < duration {
            let due = Int(Double(rate) * Double((NIODeadline.now() - start).nanoseconds) / 1e9) - sentThisStep
            if due > 0 {
                let batch = (0..<due).map { self.tags[(self.published + $0) % self.tags.count] }
                do {
                    let ids = try self.connection.query(
                        "INSERT INTO plexor.messages (tags, data) SELECT ARRAY[tag], '{\"n\":1}' FROM unnest($1::text[]) AS tag RETURNING id",
                        ["{" + batch.joined(separator: ",") + "}"]) { rows in (0..<rows.count).map { rows.int64($0, 0)! } }
                    let now = NIODeadline.now()
                    committed += ids.map { CommittedMessage(id: $0, committedAt: now) }
                    self.published += due
                    sentThisStep += due
                } catch {
                    print("publish failed: \(error)")
                }
            }
            usleep(1000)
        }
        return committed
    }

    /// The last seq of each client's tag so far (client `i` polls tag `i % tags`).
    func lastSeqs(clientTags clients: Int, tags: Int) -> [Int64] {
        (0..<clients).map { client in
            let tag = client % tags
            return Int64(self.published / tags + (tag < self.published % tags ? 1 : 0))
        }
    }
}

/// CPU and memory of the measured processes, sampled from /proc twice a second.
/// `@unchecked Sendable`: what it collects is behind `lock`; the thread is started and joined by the owner.
final class ProcessSampler: @unchecked Sendable {
    struct Sample {
        var seconds: Double
        var cpuPercent: Double
        var residentBytes: Int
    }

    private let pids: [Int32]
    private let lock = NIOLock()
    private var running = false
    private var thread: Thread?
    private var collected: [Sample] = []
    private var collectedMarks: [(seconds: Double, label: String)] = []
    private let origin = NIODeadline.now()

    init(pids: [Int32]) {
        self.pids = pids
    }

    var samples: [Sample] { self.lock.withLock { self.collected } }
    var marks: [(seconds: Double, label: String)] { self.lock.withLock { self.collectedMarks } }

    func start() {
        self.lock.withLock { self.running = true }
        let thread = Thread { [self] in
            var previous = try? ProcessFigures(pids: self.pids)
            var previousTime = NIODeadline.now()
            while self.lock.withLock({ self.running }) {
                usleep(500_000)
                guard let figures = try? ProcessFigures(pids: self.pids) else { continue }
                let now = NIODeadline.now()
                let interval = Double((now - previousTime).nanoseconds) / 1e9
                let cpu = previous.map { (figures.cpuSeconds - $0.cpuSeconds) / interval * 100 } ?? 0
                self.lock.withLock {
                    self.collected.append(Sample(seconds: self.elapsed(now), cpuPercent: cpu, residentBytes: figures.residentBytes))
                }
                previous = figures
                previousTime = now
            }
        }
        self.thread = thread
        thread.start()
    }

    func mark(_ label: String) {
        self.lock.withLock { self.collectedMarks.append((self.elapsed(.now()), label)) }
    }

    func stop() {
        self.lock.withLock { self.running = false }
    }

    private func elapsed(_ time: NIODeadline) -> Double {
        Double((time - self.origin).nanoseconds) / 1e9
    }
}
