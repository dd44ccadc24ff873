import Foundation
import PlexorTestSupport
import Testing

/// Every input in `Tests/FuzzCorpus` (the seeds, and each crash the fuzzer
/// ever found, as `crash-*`) replayed through the fuzz targets' checks.
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FuzzCorpus")

    @Test(arguments: ["http", "poll", "publish", "notification", "presence", "token", "chat"])
    func everyCorpusInputPassesItsTargetsChecks(_ target: String) async throws {
        let directory = Self.corpus.appendingPathComponent(target)
        let inputs = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(!inputs.isEmpty)
        let tool = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let executable = [tool, tool.deletingLastPathComponent()].map { $0.appendingPathComponent("plexor-fuzz").path }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        let replay = Process()
        replay.executableURL = URL(fileURLWithPath: try #require(executable, "build plexor-fuzz (scripts/test.sh does)"))
        replay.arguments = [target] + inputs.map { directory.appendingPathComponent($0).path }
        let output = Pipe()
        replay.standardOutput = output
        let printed = try await offTheTestThreads {
            try replay.run()
            defer { replay.waitUntilExit() }
            return output.readToEnd()
        }
        #expect(replay.terminationStatus == 0, "\(printed)")
        #expect(printed.contains("replayed \(inputs.count) inputs"))
    }
}
