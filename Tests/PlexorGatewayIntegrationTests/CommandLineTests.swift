import Foundation
import PlexorGateway
import PlexorPostgres
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
            let text = output.readToEnd()
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
        let halfAProvider = try await self.plexor(["serve", "--oidc-issuer", "https://id.example"])
        #expect(halfAProvider.status != 0)
        #expect(halfAProvider.output.contains("needs all three of --oidc-issuer, --oidc-client-id and --oidc-client-secret"))
        let publicURL = try await self.plexor(["serve", "--public-url", "https://chat.example.net/chat"])
        #expect(publicURL.status != 0)
        #expect(publicURL.output.contains("--public-url (or PLEXOR_PUBLIC_URL) is scheme://host[:port] without a path"))
        let proxies = try await self.plexor(["serve", "--trusted-proxies", "10.0.0.0/33"])
        #expect(proxies.status != 0)
        #expect(proxies.output.contains("--trusted-proxies (or PLEXOR_TRUSTED_PROXIES): not a prefix length from 0 to 32: 10.0.0.0/33"))
    }

    @Test func aRealplexorUsersFileIsCheckedAtStart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(uniqueTag("users"))
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let apr1 = directory.appendingPathComponent("users")
        try "site:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/\n".write(to: apr1, atomically: true, encoding: .utf8)
        let withoutPort = try await self.plexor(["serve", "--realplexor-users", apr1.path])
        #expect(withoutPort.status != 0)
        #expect(withoutPort.output.contains("--realplexor-users needs --realplexor-in-port"))
        let unsupported = try await self.plexor(["serve", "--realplexor-in-port", "0", "--realplexor-users", apr1.path])
        #expect(unsupported.status != 0)
        #expect(unsupported.output.contains("line 1: site's hash is not one crypt(3) knows"))
        let missing = try await self.plexor(["serve", "--realplexor-in-port", "0", "--realplexor-users", directory.appendingPathComponent("none").path])
        #expect(missing.status != 0)
        #expect(missing.output.contains("--realplexor-users: cannot read"))
    }

    @Test func sitesAreAddedShownChangedAndRemovedFromTheCommandLine() async throws {
        let database = ["DATABASE_URL": try TestDatabase.connectionString]
        let name = uniqueTag("cli")
        let added = try await self.plexor(["site", "add", name, "--origin", "https://example.com", "--url", "https://chat.example.net/"],
                                          environment: database)
        #expect(added.status == 0, "\(added.output)")
        #expect(added.output.contains(#"<iframe src="https://chat.example.net/embed?room=\#(name)" title="Live chat""#))
        let secret = try #require(added.output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .first { $0.count == 64 && $0.allSatisfy(\.isHexDigit) })
        let again = try await self.plexor(["site", "add", name], environment: database)
        #expect(again.status != 0)
        #expect(again.output.contains("a site named '\(name)' exists already"))

        let set = try await self.plexor(["site", "set", name, "--guests", "off", "--slow-mode", "5", "--keep-days", "30", "--new-secret"],
                                        environment: database)
        #expect(set.status == 0, "\(set.output)")
        #expect(set.output.contains("New secret: "))
        #expect(!set.output.contains(secret))
        let shown = try await self.plexor(["site", "show", name], environment: database)
        #expect(shown.output.contains("origins: https://example.com  guests: off  slow mode: 5 s"))
        #expect(shown.output.contains("keeps 10000 messages, 30 days"))
        #expect(try await self.plexor(["site", "list"], environment: database).output.contains("\(name)  origins: https://example.com"))

        let badOrigin = try await self.plexor(["site", "set", name, "--origin", "example.com"], environment: database)
        #expect(badOrigin.status != 0)
        #expect(badOrigin.output.contains("'example.com' is not an origin"))
        let badRate = try await self.plexor(["site", "set", name, "--guest-rate", "0"], environment: database)
        #expect(badRate.status != 0)
        #expect(badRate.output.contains("0 is not a valid value for guest_rate"))

        #expect(try await self.plexor(["site", "remove", name], environment: database).status == 0)
        let gone = try await self.plexor(["site", "show", name], environment: database)
        #expect(gone.status != 0)
        #expect(gone.output.contains("no site is named \(name)"))
    }

    @Test func statusListsTheGatewaysOfADatabaseFromTheirHeartbeats() async throws {
        let database = try TestDatabase.makeFreshDatabase()
        let empty = try await self.plexor(["status", "--database-url", database])
        #expect(empty.status == 0 && empty.output.contains("No gateway heartbeats"))
        let gateways = try (0..<2).map { _ in
            try startGateway(database) {
                $0.presence.enabled = true
                $0.presence.interval = .milliseconds(250)
            }
        }
        defer { gateways.forEach { $0.shutdown() } }
        let parked = try RawSocket(port: gateways[1].localPort)
        parked.sendNow(Array("GET /poll?tags=status-a,status-b&timeout=60 HTTP/1.1\r\nHost: t\r\n\r\n".utf8))
        try await waitUntil("the second gateway's heartbeat counts its poll") {
            try await self.plexor(["status", "--database-url", database]).output.contains(":\(gateways[1].localPort)  ")
                && (try PostgresConnection(database).gatewayStatuses().first { $0.heartbeat.port == gateways[1].localPort }?.heartbeat.parked == 1)
        }
        let status = try await self.plexor(["status", "--database-url", database]).output
        let lines = status.split(separator: "\n").map(String.init)
        #expect(lines.first?.split(separator: " ").prefix(2) == ["gateway", "host:port"], "\(status)")
        for gateway in gateways { #expect(status.contains("127.0.0.1:\(gateway.localPort)")) }
        let second = try #require(lines.first { $0.contains(":\(gateways[1].localPort) ") })
        #expect(second.split(separator: " ", omittingEmptySubsequences: true).suffix(3) == ["1", "1", "2"])
        #expect(lines.last?.split(separator: " ").prefix(3) == ["total", "2", "gateways"])
        _ = parked
    }
}
