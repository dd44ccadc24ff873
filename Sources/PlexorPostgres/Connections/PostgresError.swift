/// An error from PostgreSQL or libpq, with what a user needs to fix it.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Could not connect, or the connection broke.
        case connection
        /// The server rejected a statement.
        case statement
        /// Something else went wrong (a local failure).
        case other
    }

    public var kind: Kind
    /// The SQLSTATE, when the server sent one (for example `23514`).
    public var sqlState: String?
    /// The primary message, as libpq or the server gave it.
    public var message: String
    public var hint: String?
    /// The server's DETAIL field (the chat's refusals put machine-readable facts there).
    public var detail: String?

    public init(kind: Kind, sqlState: String? = nil, message: String, hint: String? = nil, detail: String? = nil) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.hint = hint
        self.detail = detail
    }

    public var description: String {
        var text = self.message
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        if let hint { text += "; hint: \(hint)" }
        return text
    }

    /// A statement error caused by the published content (bad tags, data too
    /// large, invalid JSON): the publisher must fix the input.
    public var isInvalidInput: Bool {
        guard let sqlState else { return false }
        return sqlState.hasPrefix("22") || sqlState.hasPrefix("23") || sqlState == "54000"
    }

    /// A chat refusal's HTTP status (SQLSTATE `PXnnn`), if it is one.
    public var chatStatus: Int? {
        guard let sqlState, sqlState.hasPrefix("PX"), let status = Int(sqlState.dropFirst(2)), (400...499).contains(status) else {
            return nil
        }
        return status
    }

    /// The data is over the configured size limit.
    public var isTooLarge: Bool { self.sqlState == "54000" }
}
