import Foundation
import PlexorGateway
import PlexorTestSupport
import Testing

/// `plexor serve`'s settings as a user meets them: the help, the defaults,
/// a bad value from a flag or the environment.
@Suite struct CommandLineTests {
    /// Runs the built `plexor` with `arguments` and `environment`; its exit status and everything it printed.
    func plexor(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let executable = try #require([directory, directory.deletingLastPathComponent()]
            .map { $0.appendingPathComponent("plexor").path }
            .first { FileManager.default.isExecutableFile(atPath: $0) }, "build plexor (scripts/test.sh does)")
        return try await offTheTestThreads {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, text)
        }
    }

    @Test func theHelpShowsTheDefaultsTheGatewayUses() async throws {
        let (status, help) = try await self.plexor(["serve", "--help"])
        #expect(status == 0)
        let defaults = GatewayConfiguration(connectionString: "")
        let flat = help.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(flat.contains("PLEXOR_MAX_CONNECTIONS. Default \(defaults.maximumConnections)."))
        #expect(flat.contains("PLEXOR_HEADER_TIMEOUT. Default \(defaults.headerTimeoutSeconds)."))
        #expect(flat.contains("PLEXOR_IDLE_TIMEOUT. Default \(defaults.idleTimeoutSeconds)."))
        #expect(flat.contains("PLEXOR_DEFAULT_TIMEOUT. Default \(defaults.pollLimits.defaultTimeout)."))
        #expect(flat.contains("PLEXOR_RETENTION_MAX_PER_TAG. Default \(defaults.retention.maximumPerTag!)."))
        #expect(flat.contains("PLEXOR_PORT. Default \(defaults.port)."))
        #expect(flat.contains("PLEXOR_HOST. Default \(defaults.host)."))
        #expect(flat.contains("PLEXOR_CORS_ORIGIN. Default \(defaults.corsOrigin ?? "none")."))
        #expect(flat.contains("PLEXOR_REUSE_PORT=1."))
    }

    @Test func aValueOutOfRangeIsRefusedByNameFromTheFlagOrTheEnvironment() async throws {
        let fromFlag = try await self.plexor(["serve", "--port", "70000"])
        #expect(fromFlag.status != 0)
        #expect(fromFlag.output.contains("--port (or PLEXOR_PORT) must be from 0 to 65535; got 70000"))
        let fromEnvironment = try await self.plexor(["serve"], environment: ["PLEXOR_IDLE_TIMEOUT": "soon"])
        #expect(fromEnvironment.status != 0)
        #expect(fromEnvironment.output.contains("PLEXOR_IDLE_TIMEOUT=soon is not a whole number"))
        let statusPort = try await self.plexor(["serve"], environment: ["PLEXOR_STATUS_PORT": "-1"])
        #expect(statusPort.status != 0)
        #expect(statusPort.output.contains("--status-port (or PLEXOR_STATUS_PORT) must be from 0 to 65535; got -1"))
    }
}
