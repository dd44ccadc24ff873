import CLibPQ
import NIOCore
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// One libpq connection, owned by one thread at a time.
///
/// Statements take their parameters separately (`PQexecParams`); only
/// identifiers quoted by `quoteIdentifier` are ever put into SQL text.
public final class PostgresConnection {
    private let handle: OpaquePointer

    /// Connects with a libpq connection string or URI; `""` means libpq's
    /// defaults and `PG*` environment variables. TCP keepalives are on unless
    /// the string says otherwise.
    public init(_ connectionString: String, applicationName: String = "plexor") throws(PostgresError) {
        // Later keywords win and an expanded dbname overrides what precedes it,
        // so our defaults come first and the user's string last.
        // UTF-8 always: notification payloads are signed over their UTF-8 bytes.
        let keywords = ["application_name", "keepalives", "keepalives_idle", "keepalives_interval",
                        "keepalives_count", "connect_timeout", "client_encoding", "dbname"]
        let values = [applicationName, "1", "30", "10", "3", "10", "UTF8", connectionString]
        // Both lists end with a NULL entry, as PQconnectdbParams expects.
        let connection: OpaquePointer? = withCStringArray(keywords + [nil]) { keywordPointers in
            withCStringArray(values + [nil]) { valuePointers in
                PQconnectdbParams(keywordPointers, valuePointers, 1)
            }
        }
        guard let connection else {
            throw PostgresError(kind: .connection, message: "libpq could not allocate a connection")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = Self.trimmed(PQerrorMessage(connection))
            PQfinish(connection)
            throw PostgresError(kind: .connection, message: "could not connect to PostgreSQL: \(message)")
        }
        self.handle = connection
    }

    deinit {
        PQfinish(self.handle)
    }

    /// Whether the connection is still usable.
    public var isHealthy: Bool { PQstatus(self.handle) == CONNECTION_OK }

    /// Runs one statement with text parameters and reads its result.
    @discardableResult
    public func query<T>(_ sql: String, _ parameters: [String?] = [], _ read: (ResultRows) throws -> T) throws -> T {
        let result: OpaquePointer? = withCStringArray(parameters) { pointers in
            PQexecParams(self.handle, sql, Int32(parameters.count), nil, pointers, nil, nil, 0)
        }
        defer { PQclear(result) }
        try self.check(result)
        return try read(ResultRows(result!))
    }

    /// Runs one statement with text parameters, ignoring any rows.
    public func execute(_ sql: String, _ parameters: [String?] = []) throws {
        try self.query(sql, parameters) { _ in () }
    }

    /// Runs SQL text that may hold several statements (migration files and
    /// LISTEN/UNLISTEN commands built with `quoteIdentifier`). Never user input.
    public func executeScript(_ sql: String) throws {
        // PQexec returns only the last result; an error stops the script.
        let result = PQexec(self.handle, sql)
        defer { PQclear(result) }
        try self.check(result)
    }

    /// Quotes an identifier (a channel name) for SQL text.
    public func quoteIdentifier(_ identifier: String) throws -> String {
        guard let quoted = PQescapeIdentifier(self.handle, identifier, identifier.utf8.count) else {
            throw PostgresError(kind: .other, message: Self.trimmed(PQerrorMessage(self.handle)))
        }
        defer { PQfreemem(quoted) }
        return String(cString: quoted)
    }

    // MARK: Notifications (used by the listener thread)

    /// The socket to wait on for notifications.
    var socket: Int32 { PQsocket(self.handle) }

    /// Reads whatever the server has sent, without blocking.
    func consumeInput() throws {
        guard PQconsumeInput(self.handle) == 1 else {
            throw PostgresError(kind: .connection, message: Self.trimmed(PQerrorMessage(self.handle)))
        }
    }

    /// Calls `body` for each notification libpq has read, copying nothing it
    /// does not need and freeing each one.
    func drainNotifications(_ body: (_ channel: UnsafePointer<CChar>, _ payload: UnsafeRawBufferPointer) -> Void) {
        while let notification = PQnotifies(self.handle) {
            defer { PQfreemem(notification) }
            let extra = notification.pointee.extra!
            let payload = UnsafeRawBufferPointer(start: extra, count: strlen(extra))
            body(notification.pointee.relname, payload)
        }
    }

    // MARK: Private

    private func check(_ result: OpaquePointer?) throws(PostgresError) {
        guard let result else {
            throw PostgresError(kind: .connection, message: Self.trimmed(PQerrorMessage(self.handle)))
        }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return
        default:
            let sqlState = Self.field(result, Int32(PLEXOR_DIAG_SQLSTATE))
            let message = Self.field(result, Int32(PLEXOR_DIAG_MESSAGE_PRIMARY)) ?? Self.trimmed(PQresultErrorMessage(result))
            let kind: PostgresError.Kind = self.isHealthy ? .statement : .connection
            throw PostgresError(kind: kind, sqlState: sqlState, message: message, hint: Self.field(result, Int32(PLEXOR_DIAG_MESSAGE_HINT)),
                                  detail: Self.field(result, Int32(PLEXOR_DIAG_MESSAGE_DETAIL)))
        }
    }

    private static func field(_ result: OpaquePointer, _ code: Int32) -> String? {
        PQresultErrorField(result, code).map { String(cString: $0) }
    }

    static func trimmed(_ message: UnsafePointer<CChar>?) -> String {
        guard let message else { return "unknown error" }
        return String(cString: message).trimmingTrailingWhitespace()
    }
}

/// The rows of one result, valid only inside the `query` call that read it.
public struct ResultRows {
    fileprivate let result: OpaquePointer

    fileprivate init(_ result: OpaquePointer) {
        self.result = result
    }

    public var count: Int { Int(PQntuples(self.result)) }

    public func isNull(_ row: Int, _ column: Int) -> Bool {
        PQgetisnull(self.result, Int32(row), Int32(column)) == 1
    }

    public func string(_ row: Int, _ column: Int) -> String? {
        guard !self.isNull(row, column) else { return nil }
        return String(cString: PQgetvalue(self.result, Int32(row), Int32(column)))
    }

    public func int64(_ row: Int, _ column: Int) -> Int64? {
        guard !self.isNull(row, column) else { return nil }
        return strtoll(PQgetvalue(self.result, Int32(row), Int32(column)), nil, 10)
    }

    public func bool(_ row: Int, _ column: Int) -> Bool? {
        guard !self.isNull(row, column) else { return nil }
        return PQgetvalue(self.result, Int32(row), Int32(column)).pointee == CChar(UInt8(ascii: "t"))
    }

    /// The value's bytes, copied once into a buffer.
    public func bytes(_ row: Int, _ column: Int) -> ByteBuffer? {
        guard !self.isNull(row, column) else { return nil }
        let length = Int(PQgetlength(self.result, Int32(row), Int32(column)))
        let value = UnsafeRawBufferPointer(start: PQgetvalue(self.result, Int32(row), Int32(column)), count: length)
        var buffer = ByteBuffer()
        buffer.reserveCapacity(length)
        buffer.writeBytes(value)
        return buffer
    }

    /// A text[] value, for arrays whose elements need no quoting (tags).
    public func tagArray(_ row: Int, _ column: Int) -> [String]? {
        guard let text = self.string(row, column) else { return nil }
        return ArrayLiteral.parseSimple(text)
    }
}

extension String {
    func trimmingTrailingWhitespace() -> String {
        var text = self[...]
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        return String(text)
    }
}

/// C strings for `strings` (`nil` stays a null pointer), valid during `body`.
private func withCStringArray<R>(_ strings: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let duplicates = strings.map { $0.map { strdup($0) } ?? nil }
    defer { duplicates.forEach { free($0) } }
    return body(duplicates.map { UnsafePointer($0) })
}
