import Foundation
import PlexorTestSupport

/// A `plexor serve` of its own, for tests that measure the process (its
/// memory) or change its limits (file descriptors). Built by
/// `scripts/test.sh` beside the test bundle; serves the test database.
final class GatewayProcess: @unchecked Sendable {  // used by one test at a time
    let process = Process()
    let port: Int
    private let output: Pipe

    /// The welcome `plexor serve` printed.
    let welcome: String

    /// `descriptorLimit`: `ulimit -n` for the process. `embedded`: a data
    /// directory, to serve an embedded PostgreSQL there instead of the test
    /// database; `databaseURL`: another database than the test database.
    init(arguments: [String] = [], descriptorLimit: Int? = nil, embedded: String? = nil, databaseURL: String? = nil) throws {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let executable = [directory, directory.deletingLastPathComponent()]
            .map { $0.appendingPathComponent("plexor").path }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let executable else {
            throw TestFailure("no plexor executable beside \(directory.path): build it with swift build --product plexor (scripts/test.sh does)")
        }
        let limit = descriptorLimit.map { "ulimit -n \($0) && " } ?? ""
        self.process.executableURL = URL(fileURLWithPath: "/bin/sh")
        let database = try embedded.map { ["--data-dir", $0] } ?? ["--database-url", try databaseURL ?? TestDatabase.connectionString]
        self.process.arguments = ["-c", limit + "exec \"$0\" serve --port 0 --log-level warning \"$@\"", executable]
            + database + arguments
        self.output = Pipe()
        self.process.standardOutput = self.output
        self.process.standardError = FileHandle.nullDevice
        try self.process.run()
        // The welcome names the port: "Plexor is serving on http://127.0.0.1:PORT", then three more lines.
        let lines = { (chunks: [[UInt8]]) in chunks.joined().filter { $0 == UInt8(ascii: "\n") }.count }
        let chunks = self.output.readChunks { lines($0) < 4 }
        let text = String(decoding: chunks.joined(), as: UTF8.self)
        guard lines(chunks) >= 4 else {
            self.process.terminate()
            throw TestFailure("plexor serve exited before serving: \(text)")
        }
        let welcome = text.components(separatedBy: "serving on http://").dropFirst().first
        guard let port = welcome.flatMap({ Int($0.split(separator: ":").dropFirst().first?.prefix { $0.isNumber } ?? "") }) else {
            self.process.terminate()
            throw TestFailure("no port in plexor's welcome: \(text)")
        }
        self.port = port
        self.welcome = text
    }

    /// Resident memory, in bytes (from /proc).
    var residentBytes: Int {
        get throws {
            let status = try String(contentsOfFile: "/proc/\(self.process.processIdentifier)/status", encoding: .utf8)
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
                  let kilobytes = Int(line.split(separator: " ")[1]) else {
                throw TestFailure("no VmRSS for plexor")
            }
            return kilobytes * 1024
        }
    }

    /// SIGTERM, then waits (bounded) for the process to drain and exit.
    func stop() {
        guard self.process.isRunning else { return }
        self.process.terminate()
        let deadline = Date().addingTimeInterval(20)
        while self.process.isRunning && Date() < deadline { usleep(10_000) }
        if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
    }

    deinit {
        self.stop()
    }
}
