import ArgumentParser
import Foundation
import NIOPosix
import PlexorHTTPClient

/// Scenario 6: latency while the gateway LISTENs on many tags. PostgreSQL up
/// to 18 checks each notification against every channel a session listens
/// on, one by one; this shows where that bends.
struct Listened: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Park polls over many distinct tags, then time publish → answer on one more.")

    @OptionGroup var target: TargetOptions
    @OptionGroup var results: ResultOptions
    @Option(help: "Distinct tags kept listened.") var tags = 10_000
    @Option(help: "Tags per parked poll (at most the gateway's limit, 100 by default).") var perPoll = 100
    @Option(help: "Messages to time.") var samples = 200

    func run() async throws {
        guard self.target.server == .plexor else { throw ValidationError("this scenario measures Plexor's LISTEN set") }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let prefix = "bench-listened-\(UInt32.random(in: 0...UInt32.max))"
        let pollCount = (self.tags + self.perPoll - 1) / self.perPoll
        let uris = (0..<pollCount).map { poll in
            let names = (poll * self.perPoll..<min(self.tags, (poll + 1) * self.perPoll)).map { "\(prefix)-\($0)" }
            return "/poll?tags=\(names.joined(separator: ","))&timeout=60"
        }
        let clients = try await ParkedClients.open(uris, target: self.target, group: group)
        let status = try await ServerStatus.open(self.target)
        try await status.waitFor(pollCount)
        let statistics = try await measureLatency(self.target, samples: self.samples, alreadyWaiting: pollCount)
        try self.results.record("listened", server: "plexor", [
            "tags": self.tags, "polls": pollCount, "samples": self.samples,
            "median_ms": statistics.median, "p99_ms": statistics.percentile(0.99), "worst_ms": statistics.worst,
        ], summary: statistics.row(label: "\(self.tags) tags listened: publish → response (ms)"))
        await clients.close()
        await status.close()
        try await group.shutdownGracefully()
    }
}
