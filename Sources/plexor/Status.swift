import ArgumentParser
import Foundation
import PlexorPostgres

/// `plexor status`: the live gateways of a database, from their presence heartbeats.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The gateways serving from this database (from their heartbeats: presence must be on): connections, parked polls, listened tags.")

    @OptionGroup var database: DatabaseOptions
    @Option(name: Settings.logLevel.name, help: Settings.logLevel.argumentHelp)
    var logLevel: String?

    func run() throws {
        let logger = try makeLogger(self.logLevel)
        let gateways = try self.database.withConnection(Environment(), logger: logger) { connection in
            try Serve.requireSchema(connection)
            return try connection.gatewayStatuses()
        }
        print(Self.table(gateways))
    }

    static func table(_ gateways: [GatewayStatus]) -> String {
        guard !gateways.isEmpty else {
            return "No gateway heartbeats in this database (none running, or they run with --presence off)."
        }
        var rows = [["gateway", "host:port", "pid", "up", "last heartbeat", "connections", "parked polls", "listened tags"]]
        for gateway in gateways {
            let beat = gateway.heartbeat
            rows.append([String(beat.id.uuidString.prefix(8)).lowercased(), "\(beat.host):\(beat.port)", String(beat.pid),
                         duration(gateway.upSeconds), "\(duration(gateway.silentSeconds)) ago", String(beat.connections),
                         String(beat.parked), String(beat.listened)])
        }
        let total = gateways.map(\.heartbeat)
        rows.append(["total", "\(gateways.count) gateways", "", "", "", String(total.map(\.connections).reduce(0, +)),
                     String(total.map(\.parked).reduce(0, +)), ""])
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }

    private static func duration(_ seconds: Int) -> String {
        seconds < 120 ? "\(seconds) s" : seconds < 7200 ? "\(seconds / 60) min" : "\(seconds / 3600) h"
    }
}
