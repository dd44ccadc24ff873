import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import PlexorHTTPClient

/// One message to N polls parked on one tag.
struct Fanout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Park N polls on one tag, publish once, time every answer.")

    @OptionGroup var target: TargetOptions
    @OptionGroup var results: ResultOptions
    @Option(help: "Polls parked on the tag.") var count = 10_000

    func run() async throws {
        let status = try await ServerStatus.open(self.target)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let tag = "bench-fanout-\(UInt32.random(in: 0...UInt32.max))"
        let uris = [String](repeating: self.target.waitURI(tag: tag), count: self.count)
        let clients = try await ParkedClients.open(uris, target: self.target, group: group)
        try await status.waitFor(self.count)
        let publisher = try await self.target.makePublisher()
        let before = try self.target.processFigures()
        let clientBefore = try ProcessFigures(pids: [getpid()])
        let start = NIODeadline.now()
        try await publisher.publish(tag: tag, data: "{\"text\":\"to everyone on the tag\"}")
        var times: [Double] = []
        var failed = 0
        for answer in clients.answers {
            let response = try await answer.value
            if response.status == .ok {
                times.append((response.receivedAt - start).milliseconds)
            } else {
                failed += 1
            }
        }
        let after = try self.target.processFigures()
        let clientAfter = try ProcessFigures(pids: [getpid()])
        let statistics = Statistics(times)
        let cpuPerResponse = (after.cpuSeconds - before.cpuSeconds) / Double(max(1, times.count)) * 1e6
        // The clients share the machine's cores with the server: what they spend bounds the last answer too.
        let clientCPUPerResponse = (clientAfter.cpuSeconds - clientBefore.cpuSeconds) / Double(max(1, times.count)) * 1e6
        try self.results.record("fanout", server: self.target.server.rawValue, [
            "polls": self.count, "delivered": times.count, "failed": failed,
            "median_ms": statistics.median, "p99_ms": statistics.percentile(0.99), "last_ms": statistics.worst,
            "server_cpu_us_per_response": cpuPerResponse, "client_cpu_us_per_response": clientCPUPerResponse,
        ], summary: "\(times.count) of \(self.count) answered; publish → answer median \(format(statistics.median)) ms, p99 \(format(statistics.percentile(0.99))) ms, last \(format(statistics.worst)) ms; server CPU \(format(cpuPerResponse, digits: 2)) µs per response, the clients' \(format(clientCPUPerResponse, digits: 2)) µs")
        await clients.close()
        await status.close()
        try await group.shutdownGracefully()
    }
}
