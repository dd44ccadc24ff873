import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import PlexorHTTPClient
import PlexorPostgres

/// Benchmarks that print figures. Each talks to a running gateway (and its
/// database) on this machine; `benchmarks/run.sh` starts everything.
@main
struct PlexorBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plexor-bench",
        abstract: "Measure a running Plexor gateway.",
        subcommands: [Latency.self, Parked.self]
    )
}

struct GatewayOptions: ParsableArguments {
    @Option(help: "Gateway host.") var host = "127.0.0.1"
    @Option(help: "Gateway port.") var port = 8080
}

/// Commit → poll response: one client parked on a tag, one SQL publisher.
struct Latency: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time from a SQL commit until the parked poll has its answer.")

    @OptionGroup var gateway: GatewayOptions
    @Option(help: "libpq connection string of the gateway's database.") var databaseURL: String
    @Option(help: "Number of messages to time.") var samples = 300

    func run() async throws {
        let tag = "bench-latency-\(UInt32.random(in: 0...UInt32.max))"
        let client = try await HTTPClientConnection.connect(port: self.gateway.port, host: self.gateway.host)
        let metrics = try await HTTPClientConnection.connect(port: self.gateway.port, host: self.gateway.host)
        let publisher = try PostgresConnection(self.databaseURL)
        var cursor = try Self.cursor(of: tag, in: await client.get("/poll?tags=\(tag)&timeout=0"))
        var afterCommit: [Double] = []
        var fromInsert: [Double] = []
        for index in 0..<self.samples {
            let uri = "/poll?tags=\(tag)@\(cursor)&timeout=30"
            let pending = Task { try await client.get(uri) }
            // Publish only once the poll is parked, as a real waiting client would be.
            while try await Self.parkedPolls(metrics) < 1 {}
            let start = ContinuousClock.now
            try publisher.execute("INSERT INTO plexor.messages (tags, data) VALUES ($1, $2)", ["{\(tag)}", "{\"n\":\(index)}"])
            let committed = ContinuousClock.now
            let response = try await pending.value
            let answered = ContinuousClock.now
            cursor = try Self.cursor(of: tag, in: response)
            afterCommit.append((answered - committed).milliseconds)
            fromInsert.append((answered - start).milliseconds)
        }
        print("commit → poll response over \(self.samples) messages (ms)")
        print(Statistics(afterCommit).row(label: "from COMMIT acknowledged"))
        print(Statistics(fromInsert).row(label: "from INSERT sent"))
        await client.close()
        await metrics.close()
    }

    static func cursor(of tag: String, in response: HTTPClientResponse) throws -> Int64 {
        let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]
        guard let cursors = object?["cursors"] as? [String: NSNumber], let cursor = cursors[tag] else {
            throw ValidationError("unexpected poll answer \(response.status): \(response.body.prefix(200))")
        }
        return cursor.int64Value
    }

    static func parkedPolls(_ connection: HTTPClientConnection) async throws -> Int {
        let body = try await connection.get("/metrics").body
        guard let line = body.split(separator: "\n").first(where: { $0.hasPrefix("plexor_polls_parked ") }),
              let value = Int(line.split(separator: " ")[1]) else {
            throw ValidationError("no plexor_polls_parked in /metrics")
        }
        return value
    }
}

/// Memory of parked polls: N idle long-polls on N/10 tags.
struct Parked: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Park N polls and report the gateway's RSS per parked poll.")

    @OptionGroup var gateway: GatewayOptions
    @Option(help: "Process id of the gateway (its RSS is read from /proc).") var pid: Int32
    @Option(help: "Polls to park.") var count = 1000
    @Option(help: "Loopback source addresses to spread connections over (127.0.0.1 …).") var sourceAddresses = 1

    func run() async throws {
        let metrics = try await HTTPClientConnection.connect(port: self.gateway.port, host: self.gateway.host)
        let before = try residentBytes(pid: self.pid)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let prefix = "bench-parked-\(UInt32.random(in: 0...UInt32.max))"
        var connections: [HTTPClientConnection] = []
        var pending: [Task<HTTPClientResponse, Error>] = []
        for index in 0..<self.count {
            let connection = try await HTTPClientConnection.connect(
                port: self.gateway.port, host: self.gateway.host,
                localAddress: "127.0.0.\(1 + index % self.sourceAddresses)", group: group)
            connections.append(connection)
            let uri = "/poll?tags=\(prefix)-\(index % max(1, self.count / 10))&timeout=60"
            pending.append(Task { try await connection.get(uri) })
        }
        let start = ContinuousClock.now
        while try await Latency.parkedPolls(metrics) < self.count {
            guard ContinuousClock.now - start < .seconds(60) else { throw ValidationError("not all polls parked within 60 s") }
        }
        let after = try residentBytes(pid: self.pid)
        let parked = try await Latency.parkedPolls(metrics)
        print("parked polls: \(parked) of \(self.count) (on \(max(1, self.count / 10)) tags)")
        print("gateway RSS: \(before / 1024) KiB before, \(after / 1024) KiB parked; \((after - before) / self.count) bytes per parked poll")
        for connection in connections { await connection.close() }
        for task in pending { _ = try? await task.value }
        await metrics.close()
        try await group.shutdownGracefully()
    }
}

func residentBytes(pid: Int32) throws -> Int {
    let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) else {
        throw ValidationError("no VmRSS for process \(pid)")
    }
    return kilobytes * 1024
}

struct Statistics {
    let sorted: [Double]

    init(_ values: [Double]) {
        self.sorted = values.sorted()
    }

    func percentile(_ fraction: Double) -> Double {
        self.sorted[min(self.sorted.count - 1, Int((Double(self.sorted.count) * fraction).rounded(.down)))]
    }

    func row(label: String) -> String {
        func format(_ value: Double) -> String { String(format: "%.3f", value) }
        return "  \(label): median \(format(self.percentile(0.5)))  p90 \(format(self.percentile(0.9)))"
            + "  p99 \(format(self.percentile(0.99)))  worst \(format(self.sorted.last ?? 0))"
    }
}

extension Duration {
    var milliseconds: Double {
        let (seconds, attoseconds) = self.components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
