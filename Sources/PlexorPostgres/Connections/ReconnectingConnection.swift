/// One connection that is made when first needed and made again when it
/// has broken: for the threads that each own a connection of their own
/// (the publisher, the listener's fetcher). Owned by one thread.
struct ReconnectingConnection {
    let connectionString: String
    let applicationName: String
    private var connection: PostgresConnection?

    init(_ connectionString: String, applicationName: String) {
        self.connectionString = connectionString
        self.applicationName = applicationName
    }

    /// Runs `body` on the connection, connecting first if there is none or
    /// it broke; a connection that fails in `body` is dropped.
    mutating func use<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        if self.connection?.isHealthy != true {
            self.connection = nil
            self.connection = try PostgresConnection(self.connectionString, applicationName: self.applicationName)
        }
        do {
            return try body(self.connection!)
        } catch {
            if self.connection?.isHealthy != true { self.connection = nil }
            throw error
        }
    }

    /// Closes the connection (it is made again when next used).
    mutating func close() {
        self.connection = nil
    }
}
