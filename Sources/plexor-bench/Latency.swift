import ArgumentParser
import Foundation
import NIOCore
import PlexorHTTPClient

/// Publish → poll response, one message at a time to one parked client.
struct Latency: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time from publishing until the parked poll has its answer.")

    @OptionGroup var target: TargetOptions
    @OptionGroup var results: ResultOptions
    @Option(help: "Number of messages to time.") var samples = 300

    func run() async throws {
        let statistics = try await measureLatency(self.target, samples: self.samples)
        try self.results.record("latency", server: self.target.server.rawValue, [
            "samples": self.samples, "median_ms": statistics.median, "p99_ms": statistics.percentile(0.99), "worst_ms": statistics.worst,
        ], summary: statistics.row(label: "publish → response (ms) over \(self.samples) messages"))
    }
}

/// Times `samples` publishes to a tag of its own, each once its poll waits,
/// with `alreadyWaiting` other polls parked meanwhile. Milliseconds.
func measureLatency(_ target: TargetOptions, samples: Int, alreadyWaiting: Int = 0) async throws -> Statistics {
    let tag = "bench-latency-\(UInt32.random(in: 0...UInt32.max))"
    let client = try await target.connect(index: 0)
    let status = try await ServerStatus.open(target)
    let publisher = try await target.makePublisher()
    var latencies: [Double] = []
    for index in 0..<samples {
        let uri = target.waitURI(tag: tag, timeout: 30)
        let pending = Task { try await client.get(uri) }
        // Publish only once the poll waits, as a parked client's would be.
        try await status.waitFor(alreadyWaiting + 1)
        let start = NIODeadline.now()
        try await publisher.publish(tag: tag, data: "{\"n\":\(index)}")
        let response = try await pending.value
        guard response.status == .ok else { throw ValidationError("poll answered \(response.status)") }
        latencies.append((response.receivedAt - start).milliseconds)
    }
    await client.close()
    await status.close()
    return Statistics(latencies)
}
