import ArgumentParser
import Foundation
import NIOPosix
import PlexorHTTPClient

/// Memory of parked polls: N idle long-polls on N/10 tags.
struct Parked: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Park N polls; report the server's RSS per parked poll and whether all stayed parked.")

    @OptionGroup var target: TargetOptions
    @OptionGroup var results: ResultOptions
    @Option(help: "Polls to park.") var count = 1000
    @Option(help: "Seconds to hold them before checking that all are still parked.") var hold = 3
    @Option(help: "Client processes holding the connections (a process may hold at most ~19,000 here).")
    var clientProcesses = 1

    func run() async throws {
        let status = try await ServerStatus.open(self.target)
        let before = try self.target.processFigures()
        let prefix = "bench-parked-\(UInt32.random(in: 0...UInt32.max))"
        let tags = max(1, self.count / 10)
        let clients: ParkedPollHolder = self.clientProcesses > 1
            ? try ParkingProcesses.start(self.count, tags: tags, prefix: prefix, processes: self.clientProcesses)
            : try await InProcessParking.start(self.count, tags: tags, prefix: prefix, target: self.target)
        try await status.waitFor(self.count, timeout: .seconds(300))
        try await Task.sleep(for: .seconds(self.hold))
        let waiting = try await status.waiting()
        let after = try self.target.processFigures()
        // Nothing was published: any answer (or error) so far is a poll that did not stay parked.
        let answeredEarly = try await clients.stop()
        let perPoll = Double(after.residentBytes - before.residentBytes) / Double(self.count)
        try self.results.record("parked", server: self.target.server.rawValue, [
            "polls": self.count, "tags": tags, "waiting_after_hold": waiting, "answered_early": answeredEarly,
            "server_processes": self.target.pid.count, "client_processes": self.clientProcesses,
            "rss_before_bytes": before.residentBytes, "rss_after_bytes": after.residentBytes, "bytes_per_poll": perPoll,
        ], summary: "\(waiting) of \(self.count) polls on \(tags) tags still parked after \(self.hold) s (\(answeredEarly) answered early; \(self.target.pid.count) server processes); RSS \(before.residentBytes / 1024) → \(after.residentBytes / 1024) KiB = \(Int(perPoll)) bytes per parked poll")
        await status.close()
    }
}

/// Clients holding parked polls until stopped.
protocol ParkedPollHolder {
    /// Closes every connection; returns how many polls were answered before.
    func stop() async throws -> Int
}

struct InProcessParking: ParkedPollHolder {
    let group: MultiThreadedEventLoopGroup
    let clients: ParkedClients
    let answered: Counter

    static func start(_ count: Int, tags: Int, prefix: String, target: TargetOptions, firstIndex: Int = 0) async throws -> InProcessParking {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let answered = Counter()
        let uris = (firstIndex..<firstIndex + count).map { target.waitURI(tag: "\(prefix)-\($0 % tags)") }
        let clients = try await ParkedClients.open(uris, target: target, group: group, firstIndex: firstIndex) { answered.increment() }
        return InProcessParking(group: group, clients: clients, answered: answered)
    }

    func stop() async throws -> Int {
        let early = self.answered.value
        await self.clients.close()
        try await self.group.shutdownGracefully()
        return early
    }
}

/// Several `plexor-bench park-worker` processes, each holding its share.
struct ParkingProcesses: ParkedPollHolder {
    let workers: [(process: Process, input: Pipe, output: Pipe)]

    static func start(_ count: Int, tags: Int, prefix: String, processes: Int) throws -> ParkingProcesses {
        // The same options as this command, so the workers reach the same target.
        let inherited = Array(CommandLine.arguments.dropFirst(2))
        let share = (count + processes - 1) / processes
        var workers: [(Process, Pipe, Pipe)] = []
        for index in 0..<processes {
            let first = index * share
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            process.arguments = ["park-worker"] + Self.targetOptions(inherited) + [
                "--count", String(min(share, count - first)), "--first", String(first),
                "--tags", String(tags), "--prefix", prefix,
            ]
            let input = Pipe()
            let output = Pipe()
            process.standardInput = input
            process.standardOutput = output
            try process.run()
            workers.append((process, input, output))
        }
        for worker in workers {
            guard Self.readLine(worker.2) == "parked" else { throw ValidationError("a park worker failed") }
        }
        return ParkingProcesses(workers: workers)
    }

    func stop() async throws -> Int {
        for worker in self.workers { try worker.input.fileHandleForWriting.close() }
        var early = 0
        for worker in self.workers {
            guard let line = Self.readLine(worker.output), let count = Int(line.dropFirst("answered_early ".count)) else {
                throw ValidationError("a park worker did not report")
            }
            early += count
            worker.process.waitUntilExit()
        }
        return early
    }

    /// The target options among `arguments` (those of the parked scenario's own are dropped).
    private static func targetOptions(_ arguments: [String]) -> [String] {
        let own: Set<String> = ["--count", "--hold", "--client-processes", "--json-out"]
        var kept: [String] = []
        var skipping = false
        for argument in arguments {
            if argument.hasPrefix("--") { skipping = own.contains(argument) }
            if !skipping { kept.append(argument) }
        }
        return kept
    }

    private static func readLine(_ pipe: Pipe) -> String? {
        var line = Data()
        while true {
            let byte = pipe.fileHandleForReading.readData(ofLength: 1)
            guard let first = byte.first else { return line.isEmpty ? nil : String(decoding: line, as: UTF8.self) }
            if first == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
            line.append(first)
        }
    }
}

/// One process's share of the parked polls: prints `parked` once all are
/// sent, holds them until its standard input closes, then prints how many
/// were answered meanwhile and closes them.
struct ParkWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "park-worker", abstract: "Used by parked --client-processes.",
                                                    shouldDisplay: false)

    @OptionGroup var target: TargetOptions
    @Option var count: Int
    @Option var first: Int
    @Option var tags: Int
    @Option var prefix: String

    func run() async throws {
        let parking = try await InProcessParking.start(self.count, tags: self.tags, prefix: self.prefix,
                                                       target: self.target, firstIndex: self.first)
        print("parked")
        fflush(nil)  // every output stream (stdout itself is a global the compiler cannot check)
        while readLine() != nil {}
        let early = try await parking.stop()
        print("answered_early \(early)")
        fflush(nil)  // every output stream (stdout itself is a global the compiler cannot check)
    }
}
