import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import PlexorHTTPClient

/// Presence at scale: N polls parked on N distinct tags, then `GET /online`
/// timed once every tag counts.
struct Online: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Park one poll on each of N tags; time GET /online over them.")

    @OptionGroup var target: TargetOptions
    @OptionGroup var results: ResultOptions
    @Option(help: "Tags, each with one parked poll.") var count = 10_000
    @Option(help: "The gateway's API token.") var token: String
    @Option(help: "Timed requests.") var samples = 20

    func run() async throws {
        guard self.target.server == .plexor else { throw ValidationError("online measures Plexor's presence") }
        let prefix = "bench-online-\(UInt32.random(in: 0...UInt32.max))-"
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let uris = (0..<self.count).map { self.target.waitURI(tag: "\(prefix)\($0)") }
        let clients = try await ParkedClients.open(uris, target: self.target, group: group)
        let status = try await ServerStatus.open(self.target)
        try await status.waitFor(self.count)
        let connection = try await HTTPClientConnection.connect(port: self.target.port, host: self.target.host)
        let request = { () async throws -> HTTPClientResponse in
            try await connection.request(.GET, "/online?prefix=\(prefix)", headers: [("Authorization", "Bearer \(self.token)")])
        }
        // Every tag online (the loops hand in their counts once a second), bounded.
        let start = ContinuousClock.now
        var body = ""
        while true {
            let response = try await request()
            guard response.status == .ok else { throw ValidationError("GET /online: \(response.status) \(response.body.prefix(200))") }
            body = response.body
            if body.components(separatedBy: "\":1").count - 1 >= self.count { break }
            guard ContinuousClock.now - start < .seconds(120) else { throw ValidationError("not every tag came online in 120 s") }
            try await Task.sleep(for: .milliseconds(200))
        }
        var times: [Double] = []
        for _ in 0..<self.samples {
            let sent = NIODeadline.now()
            let response = try await request()
            guard response.status == .ok else { throw ValidationError("GET /online: \(response.status)") }
            times.append((NIODeadline.now() - sent).milliseconds)
        }
        let statistics = Statistics(times)
        try self.results.record("online", server: "plexor", [
            "tags": self.count, "body_bytes": body.utf8.count, "median_ms": statistics.median, "worst_ms": statistics.worst,
        ], summary: "GET /online over \(self.count) online tags (\(body.utf8.count / 1024) KiB): median \(format(statistics.median)) ms, worst \(format(statistics.worst)) ms over \(self.samples)")
        await connection.close()
        await clients.close()
        await status.close()
        try await group.shutdownGracefully()
    }
}
