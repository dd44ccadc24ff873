import ArgumentParser
import Foundation

/// Benchmarks that print figures. Each talks to a running server on this
/// machine (a Plexor gateway and its database, or nginx with Nchan);
/// `benchmarks/run.sh` starts everything and collects the results.
@main
struct PlexorBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plexor-bench",
        abstract: "Measure a running Plexor gateway (or Nchan, for comparison).",
        subcommands: [Latency.self, Parked.self, ParkWorker.self, Fanout.self, Stream.self, PublishThroughput.self, Listened.self, NotificationCost.self, Online.self, Chat.self]
    )
}

/// Appends one result as a JSON line to `--json-out`, and prints it for people.
struct ResultOptions: ParsableArguments {
    @Option(help: "Append results as JSON lines to this file.") var jsonOut: String?

    func record(_ scenario: String, server: String, _ figures: [String: Any], summary: String) throws {
        print("[\(scenario) · \(server)] \(summary)")
        guard let jsonOut else { return }
        var object = figures
        object["scenario"] = scenario
        object["server"] = server
        var line = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        line.append(UInt8(ascii: "\n"))
        if !FileManager.default.fileExists(atPath: jsonOut) {
            _ = FileManager.default.createFile(atPath: jsonOut, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: jsonOut))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: line)
    }
}
