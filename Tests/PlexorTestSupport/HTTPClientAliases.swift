import Foundation
import NIOCore
import NIOHTTP1
@_exported import PlexorHTTPClient

public typealias TestResponse = HTTPClientResponse

/// The tests' HTTP client: `HTTPClientConnection`, except that every JSON
/// response it receives is parsed, so no test can pass on an answer a
/// browser could not read.
public final class TestHTTPClient: Sendable {
    private let connection: HTTPClientConnection

    private init(_ connection: HTTPClientConnection) {
        self.connection = connection
    }

    /// `localAddress`: the loopback address to connect from (a client "from elsewhere").
    public static func connect(port: Int, host: String = "127.0.0.1", localAddress: String? = nil) async throws -> TestHTTPClient {
        TestHTTPClient(try await HTTPClientConnection.connect(port: port, host: host, localAddress: localAddress))
    }

    /// One request on a fresh connection.
    public static func get(port: Int, _ uri: String) async throws -> TestResponse {
        let client = try await TestHTTPClient.connect(port: port)
        defer { Task { await client.close() } }
        return try await client.get(uri)
    }

    public var closed: EventLoopFuture<Void> { self.connection.closed }

    public func request(_ method: HTTPMethod, _ uri: String, headers: [(String, String)] = [], body: String? = nil) async throws -> TestResponse {
        try Self.checked(try await self.connection.request(method, uri, headers: headers, body: body))
    }

    public func get(_ uri: String) async throws -> TestResponse {
        try await self.request(.GET, uri)
    }

    public func close() async {
        await self.connection.close()
    }

    /// The response, if its body is valid JSON whenever it says it is JSON.
    public static func checked(_ response: TestResponse) throws -> TestResponse {
        guard response.headers.first(name: "Content-Type")?.hasPrefix("application/json") == true else { return response }
        do {
            _ = try JSONSerialization.jsonObject(with: Data(response.body.utf8), options: [.fragmentsAllowed])
        } catch {
            throw InvalidJSONResponse(status: response.status, body: response.body)
        }
        return response
    }
}

/// A response labelled JSON whose body is not.
public struct InvalidJSONResponse: Error, CustomStringConvertible {
    public var status: HTTPResponseStatus
    public var body: String
    public var description: String { "a \(self.status.code) response is not valid JSON: \(self.body.prefix(500))" }
}
