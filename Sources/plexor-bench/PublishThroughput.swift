import ArgumentParser
import Foundation
import NIOCore
import PlexorHTTPClient
import PlexorPostgres
import Synchronization

/// Messages per second through each publish path, beside a plain INSERT
/// into a table without the trigger (the cost of sequencing and NOTIFY).
struct PublishThroughput: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "publish", abstract: "Publish throughput: SQL from 1, 8, 64 connections, multi-row, and POST /publish.")

    @OptionGroup var target: TargetOptions
    @OptionGroup var results: ResultOptions
    @Option(help: "Seconds each configuration runs.") var seconds = 5
    @Option(help: "Bearer token of the gateway's POST /publish (skipped without one).") var token: String?
    @Option(help: "Concurrent HTTP publishers.") var httpClients = 64

    func run() async throws {
        guard let databaseURL = self.target.databaseURL else { throw ValidationError("--database-url is required") }
        let setup = try PostgresConnection(databaseURL)
        try setup.executeScript("""
            SET client_min_messages = warning;
            CREATE TABLE IF NOT EXISTS public.bench_plain (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tags text[] NOT NULL,
                data json NOT NULL, time timestamptz NOT NULL DEFAULT clock_timestamp());
            TRUNCATE public.bench_plain;
            """)
        let run = "bench-publish-\(UInt32.random(in: 0...UInt32.max))"
        for connections in [1, 8, 64] {
            let plain = try self.measure(databaseURL, connections: connections) { connection, worker in
                try connection.execute("INSERT INTO public.bench_plain (tags, data) VALUES ($1, '{\"n\":1}')", ["{\(run)-\(worker)}"])
                return 1
            }
            try self.record("plain INSERT, no trigger", connections: connections, rate: plain)
            let triggered = try self.measure(databaseURL, connections: connections) { connection, worker in
                try connection.execute("INSERT INTO plexor.messages (tags, data) VALUES ($1, '{\"n\":1}')", ["{\(run)-\(worker)}"])
                return 1
            }
            try self.record("INSERT INTO plexor.messages", connections: connections, rate: triggered)
        }
        let rows = 100
        let values = (1...rows).map { "('{\(run)-multi}', '{\"n\":\($0)}')" }.joined(separator: ",")
        let multi = try self.measure(databaseURL, connections: 1) { connection, _ in
            try connection.executeScript("INSERT INTO plexor.messages (tags, data) VALUES \(values)")
            return rows
        }
        try self.record("multi-row INSERT (\(rows) rows)", connections: 1, rate: multi)
        if let token = self.token {
            let rate = try await self.measureHTTP(token: token, tag: "\(run)-http")
            try self.record("POST /publish", connections: self.httpClients, rate: rate)
        }
    }

    private func record(_ path: String, connections: Int, rate: Double) throws {
        try self.results.record("publish", server: "plexor", ["path": path, "connections": connections, "messages_per_second": rate],
                                summary: "\(path) from \(connections) connection(s): \(Int(rate)) messages/s")
    }

    /// Runs `body` in a loop on `connections` threads for the configured time; messages per second.
    private func measure(_ databaseURL: String, connections: Int,
                         _ body: @escaping @Sendable (PostgresConnection, Int) throws -> Int) throws -> Double {
        let group = DispatchGroup()
        let total = Counter()
        let failure = FirstError()
        let deadline = DispatchTime.now() + .seconds(self.seconds)
        for worker in 0..<connections {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                do {
                    let connection = try PostgresConnection(databaseURL)
                    while DispatchTime.now() < deadline {
                        total.add(try body(connection, worker))
                    }
                } catch {
                    failure.record(error)
                }
            }
        }
        group.wait()
        if let error = failure.error { throw error }
        return Double(total.value) / Double(self.seconds)
    }

    private func measureHTTP(token: String, tag: String) async throws -> Double {
        let deadline = ContinuousClock.now + .seconds(self.seconds)
        let target = self.target
        let count = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<self.httpClients {
                group.addTask {
                    let client = try await target.connect(index: index)
                    var sent = 0
                    while ContinuousClock.now < deadline {
                        let response = try await client.request(.POST, "/publish", headers: [("Authorization", "Bearer \(token)")],
                                                                body: "{\"tags\":[\"\(tag)\"],\"data\":{\"n\":\(sent)}}")
                        guard response.status == .created else { throw ValidationError("POST /publish answered \(response.status): \(response.body)") }
                        sent += 1
                    }
                    await client.close()
                    return sent
                }
            }
            return try await group.reduce(0, +)
        }
        return Double(count) / Double(self.seconds)
    }
}

/// The first error any client met.
final class FirstError: Sendable {
    private let first = Mutex<(any Error)?>(nil)

    var error: (any Error)? { self.first.withLock { $0 } }

    func record(_ error: any Error) {
        self.first.withLock { first in
            if first == nil { first = error }
        }
    }
}
