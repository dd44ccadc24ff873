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

    public init(kind: Kind, sqlState: String? = nil, message: String, hint: String? = nil) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.hint = hint
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

    /// The data is over the configured size limit.
    public var isTooLarge: Bool { self.sqlState == "54000" }
}
