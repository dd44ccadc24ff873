import ArgumentParser
import Foundation
import NIOCore
import PlexorHTTPClient
import PlexorPostgres
import Synchronization

enum ServerKind: String, ExpressibleByArgument, CaseIterable {
    case plexor, nchan
}

/// The server under test and how to talk to it, so every scenario runs the
/// same client against Plexor and Nchan.
struct TargetOptions: ParsableArguments {
    @Option(help: "plexor or nchan.") var server: ServerKind = .plexor
    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server port.") var port = 8080
    @Option(help: "libpq connection string of the gateway's database (plexor).") var databaseURL: String?
    @Option(parsing: .upToNextOption, help: "Process ids whose CPU and memory are measured (the gateway, or nginx's workers).")
    var pid: [Int32] = []
    @Option(help: "Loopback source addresses to spread client connections over (127.0.0.1, 127.0.0.2, …).")
    var sourceAddresses = 1
    @Option(help: "Seconds a waiting poll asks to wait (Plexor caps it at its --max-timeout).")
    var pollTimeout = 60
    @Option(parsing: .upToNextOption, help: "Ports whose /metrics count the waiting polls, summed (each gateway's --status-port when several share --port). Default: --port.")
    var statusPort: [Int] = []

    /// The request that waits for the next message on `tag`.
    func waitURI(tag: String, timeout: Int? = nil) -> String {
        switch self.server {
        case .plexor: return "/poll?tags=\(tag)&timeout=\(timeout ?? self.pollTimeout)"
        case .nchan: return "/sub/\(tag)"
        }
    }

    func connect(index: Int, group: EventLoopGroup = HTTPClientConnection.group) async throws -> HTTPClientConnection {
        try await HTTPClientConnection.connect(port: self.port, host: self.host,
                                               localAddress: "127.0.0.\(1 + index % max(1, self.sourceAddresses))",
                                               group: group)
    }

    /// A publisher for this server: SQL INSERT for Plexor, HTTP POST for Nchan.
    func makePublisher() async throws -> Publisher {
        switch self.server {
        case .plexor:
            guard let databaseURL else { throw ValidationError("--database-url is required for plexor") }
            return .sql(try PostgresConnection(databaseURL))
        case .nchan:
            return .http(try await self.connect(index: 0))
        }
    }

    /// Polls waiting right now, as the server behind `connection` counts them.
    func waitingCount(_ connection: HTTPClientConnection) async throws -> Int {
        switch self.server {
        case .plexor:
            return try Self.figure("plexor_polls_parked", in: await connection.get("/metrics").body, separator: " ")
        case .nchan:
            return try Self.figure("subscribers", in: await connection.get("/status").body, separator: ": ")
        }
    }

    /// A sample of the gateway's `/metrics` on `--port`; `nil` when it has none (Nchan, or presence off).
    func plexorMetric(_ name: String) async throws -> Int? {
        guard self.server == .plexor else { return nil }
        let connection = try await HTTPClientConnection.connect(port: self.port, host: self.host)
        defer { Task { await connection.close() } }
        return try? Self.figure(name, in: await connection.get("/metrics").body, separator: " ")
    }

    private static func figure(_ name: String, in text: String, separator: String) throws -> Int {
        for line in text.split(separator: "\n") where line.hasPrefix(name + separator) {
            if let value = Int(line.dropFirst(name.count + separator.count).trimmingCharacters(in: .whitespaces)) {
                return value
            }
        }
        throw ValidationError("no \(name) in the server's status")
    }

    func processFigures() throws -> ProcessFigures {
        try ProcessFigures(pids: self.pid)
    }
}

enum Publisher {
    case sql(PostgresConnection)
    case http(HTTPClientConnection)

    func publish(tag: String, data: String) async throws {
        switch self {
        case .sql(let connection):
            try connection.execute("INSERT INTO plexor.messages (tags, data) VALUES ($1, $2)", ["{\(tag)}", data])
        case .http(let connection):
            let response = try await connection.request(.POST, "/pub/\(tag)", body: data)
            guard response.status.code < 300 else { throw ValidationError("publish answered \(response.status)") }
        }
    }
}

/// CPU time and resident memory of a set of processes, from /proc.
struct ProcessFigures {
    /// User + system CPU, in seconds.
    var cpuSeconds: Double
    var residentBytes: Int

    init(pids: [Int32]) throws {
        var ticks = 0
        var resident = 0
        for pid in pids {
            let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
            // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
            let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
            ticks += Int(fields[11])! + Int(fields[12])!
            let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
            if let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) {
                resident += Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])! * 1024
            }
        }
        self.cpuSeconds = Double(ticks) / Double(sysconf(Int32(_SC_CLK_TCK)))
        self.residentBytes = resident
    }
}

struct Statistics {
    let sorted: [Double]

    init(_ values: [Double]) {
        self.sorted = values.sorted()
    }

    func percentile(_ fraction: Double) -> Double {
        guard !self.sorted.isEmpty else { return .nan }
        return self.sorted[min(self.sorted.count - 1, Int((Double(self.sorted.count) * fraction).rounded(.down)))]
    }

    var median: Double { self.percentile(0.5) }
    var worst: Double { self.sorted.last ?? .nan }

    func row(label: String) -> String {
        "\(label): median \(format(self.median))  p90 \(format(self.percentile(0.9)))  p99 \(format(self.percentile(0.99)))  worst \(format(self.worst))"
    }
}

func format(_ value: Double, digits: Int = 3) -> String {
    String(format: "%.\(digits)f", value)
}

extension TimeAmount {
    var milliseconds: Double { Double(self.nanoseconds) / 1e6 }
}

/// How many polls the server side holds: summed over the status port of
/// every gateway process (or the one port under test).
struct ServerStatus {
    let target: TargetOptions
    let connections: [HTTPClientConnection]

    static func open(_ target: TargetOptions) async throws -> ServerStatus {
        var connections: [HTTPClientConnection] = []
        for port in target.statusPort.isEmpty ? [target.port] : target.statusPort {
            connections.append(try await HTTPClientConnection.connect(port: port, host: target.host))
        }
        return ServerStatus(target: target, connections: connections)
    }

    func waiting() async throws -> Int {
        var total = 0
        for connection in self.connections { total += try await self.target.waitingCount(connection) }
        return total
    }

    /// Waits, bounded, until the server counts `count` waiting polls.
    func waitFor(_ count: Int, timeout: Duration = .seconds(120)) async throws {
        let start = ContinuousClock.now
        while try await self.waiting() < count {
            guard ContinuousClock.now - start < timeout else {
                throw ValidationError("only \(try await self.waiting()) of \(count) polls are waiting after \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func close() async {
        for connection in self.connections { await connection.close() }
    }
}

/// A thread-safe count.
final class Counter: Sendable {
    private let count = Atomic<Int>(0)

    func increment() {
        self.add(1)
    }

    func add(_ amount: Int) {
        self.count.add(amount, ordering: .relaxed)
    }

    var value: Int {
        self.count.load(ordering: .relaxed)
    }
}

/// Client connections, each with one poll sent on it and awaiting its answer.
struct ParkedClients {
    private(set) var connections: [HTTPClientConnection] = []
    /// One per connection, in the order of the URIs.
    private(set) var answers: [Task<HTTPClientResponse, Error>] = []

    /// Opens one connection per URI and sends its poll; `answered` runs as each answer (or error) arrives.
    /// Connection `i` comes from source address number `firstIndex + i`.
    static func open(_ uris: [String], target: TargetOptions, group: EventLoopGroup, firstIndex: Int = 0,
                     answered: @escaping @Sendable () -> Void = {}) async throws -> ParkedClients {
        var clients = ParkedClients()
        for (index, uri) in uris.enumerated() {
            let connection = try await target.connect(index: firstIndex + index, group: group)
            clients.connections.append(connection)
            clients.answers.append(Task {
                defer { answered() }
                return try await connection.get(uri)
            })
        }
        return clients
    }

    /// Closes every connection and waits for its poll to end.
    func close() async {
        for connection in self.connections { await connection.close() }
        for answer in self.answers { _ = try? await answer.value }
    }
}
