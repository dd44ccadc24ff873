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

    func run() async throws {
        let status = try await self.target.connect(index: 0)
        let before = try self.target.processFigures()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let prefix = "bench-parked-\(UInt32.random(in: 0...UInt32.max))"
        let tags = max(1, self.count / 10)
        let answered = Counter()
        let uris = (0..<self.count).map { self.target.waitURI(tag: "\(prefix)-\($0 % tags)") }
        let clients = try await ParkedClients.open(uris, target: self.target, group: group) { answered.increment() }
        try await waitForWaiting(self.count, target: self.target, status: status)
        try await Task.sleep(for: .seconds(self.hold))
        let waiting = try await self.target.waitingCount(status)
        // Nothing was published: any answer (or error) so far is a poll that did not stay parked.
        let answeredEarly = answered.value
        let after = try self.target.processFigures()
        let perPoll = Double(after.residentBytes - before.residentBytes) / Double(self.count)
        try self.results.record("parked", server: self.target.server.rawValue, [
            "polls": self.count, "tags": tags, "waiting_after_hold": waiting, "answered_early": answeredEarly,
            "rss_before_bytes": before.residentBytes, "rss_after_bytes": after.residentBytes, "bytes_per_poll": perPoll,
        ], summary: "\(waiting) of \(self.count) polls on \(tags) tags still parked after \(self.hold) s; RSS \(before.residentBytes / 1024) → \(after.residentBytes / 1024) KiB = \(Int(perPoll)) bytes per parked poll")
        await clients.close()
        await status.close()
        try await group.shutdownGracefully()
    }
}
