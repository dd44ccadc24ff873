import Foundation
import NIOCore
import NIOHTTP1
import PlexorCore
import PlexorGateway
import PlexorPostgres
import PlexorTestSupport
import Testing

/// Starts a gateway on a free loopback port against the test database.
func startGateway(_ connectionString: String? = nil, _ configure: (inout GatewayConfiguration) -> Void = { _ in }) throws -> Gateway {
    var configuration = GatewayConfiguration(connectionString: try connectionString ?? TestDatabase.connectionString)
    configuration.host = "127.0.0.1"
    configuration.port = 0
    configuration.eventLoopThreads = 2
    configuration.queryConnections = 2
    configuration.retention = RetentionPolicy(maximumAgeSeconds: nil, maximumPerTag: nil)
    // Presence writes once a second per gateway into the shared database: only the tests about it turn it on.
    configuration.presence.enabled = false
    configure(&configuration)
    let gateway = try Gateway.start(configuration, logger: TestDatabase.logger)
    guard gateway.waitUntilReady() else {
        gateway.shutdown()
        throw TestFailure("the gateway's listener did not connect")
    }
    return gateway
}

/// Waits, bounded, for a condition that an event elsewhere makes true.
func waitUntil(_ what: String, timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while try await !condition() {
        guard clock.now < deadline else { throw TestFailure("timed out waiting until \(what)") }
        try await Task.sleep(for: .milliseconds(2))
    }
}

/// The value of one sample in a gateway's `/metrics` (`name` or `name{labels}`).
func metric(port: Int, _ sample: String) async throws -> Int {
    let text = try await TestHTTPClient.get(port: port, "/metrics").body
    guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(sample + " ") }),
          let value = Int(line.dropFirst(sample.count + 1)) else {
        throw TestFailure("/metrics has no \(sample)")
    }
    return value
}

extension Gateway {
    var parked: Int { self.metrics.parkedPolls.load(ordering: .relaxed) }
}

/// A poll answer, decoded.
struct Answer {
    struct Message {
        var id: Int64
        var tags: [String: Int64]
        var time: String
        var data: Any
        var dataJSON: String
    }

    var messages: [Message]
    var cursors: [String: Int64]
    var resets: [String: (reason: String, cursor: Int64)]

    init(_ response: TestResponse) throws {
        guard response.status == .ok else { throw TestFailure("poll answered \(response.status): \(response.body)") }
        let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8), options: [.fragmentsAllowed]) as! [String: Any]
        self.messages = (object["messages"] as! [[String: Any]]).map { message in
            let data = message["data"]!
            let json = String(decoding: try! JSONSerialization.data(withJSONObject: data, options: [.fragmentsAllowed, .sortedKeys]), as: UTF8.self)
            return Message(id: (message["id"] as! NSNumber).int64Value,
                           tags: (message["tags"] as! [String: NSNumber]).mapValues(\.int64Value),
                           time: message["time"] as! String, data: data, dataJSON: json)
        }
        self.cursors = (object["cursors"] as! [String: NSNumber]).mapValues(\.int64Value)
        self.resets = ((object["resets"] as? [String: [String: Any]]) ?? [:]).mapValues {
            ($0["reason"] as! String, ($0["cursor"] as! NSNumber).int64Value)
        }
    }
}

/// Publishes with plain SQL, as an application would.
/// `@unchecked Sendable`: each test (or publisher thread) uses its own.
final class SQLPublisher: @unchecked Sendable {
    let connection: PostgresConnection

    init(_ connectionString: String? = nil) throws {
        self.connection = try PostgresConnection(try connectionString ?? TestDatabase.connectionString)
    }

    @discardableResult
    func insert(_ tags: [String], _ data: String, onlyFor: [String]? = nil) throws -> Int64 {
        try self.connection.query("INSERT INTO plexor.messages (tags, data, only_for) VALUES ($1, $2, $3) RETURNING id",
                                  ["{" + tags.joined(separator: ",") + "}", data, onlyFor.map { "{" + $0.joined(separator: ",") + "}" }]) {
            $0.int64(0, 0)!
        }
    }
}
