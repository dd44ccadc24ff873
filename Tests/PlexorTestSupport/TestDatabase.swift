import Foundation
import Logging
import PlexorPostgres

/// The PostgreSQL the integration tests run against: `DATABASE_URL` when
/// set, otherwise one embedded cluster per test process (the code `plexor
/// serve` uses), created in a temporary directory, migrated once, and
/// stopped when the process exits.
public enum TestDatabase {
    public static let logger: Logger = {
        var logger = Logger(label: "plexor-test")
        logger.logLevel = ProcessInfo.processInfo.environment["PLEXOR_TEST_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .critical
        return logger
    }()

    /// The connection string of the shared, migrated test database.
    public static var connectionString: String {
        get throws { try shared.get() }
    }

    private static let shared: Result<String, Error> = Result {
        let connectionString: String
        if let url = ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty {
            connectionString = url
        } else {
            let cluster = try TestCluster.make(name: "shared")
            try cluster.start()
            sharedCluster = cluster
            atexit {
                // Stopped and removed: every test process makes a new one.
                try? sharedCluster?.stop()
                if let directory = sharedCluster?.dataDirectory { try? FileManager.default.removeItem(atPath: directory) }
            }
            connectionString = cluster.connectionString
        }
        try Migrator.migrate(PostgresConnection(connectionString))
        return connectionString
    }

    nonisolated(unsafe) private static var sharedCluster: EmbeddedPostgres?

    /// A new, migrated database of its own in the same server, for tests
    /// whose effects reach every tag (retention).
    public static func makeFreshDatabase() throws -> String {
        let base = try self.connectionString
        let name = "plexor_test_\(UInt32.random(in: 0...UInt32.max))"
        try PostgresConnection(base).execute("CREATE DATABASE \(name)")
        let connectionString = Self.connectionString(base, database: name)
        try Migrator.migrate(PostgresConnection(connectionString))
        return connectionString
    }

    /// `base` with another database name.
    public static func connectionString(_ base: String, database: String) -> String {
        base.contains("://")
            ? base.replacingOccurrences(of: #"/[^/?]*(\?|$)"#, with: "/\(database)$1", options: .regularExpression)
            : "\(base) dbname=\(database)"
    }

    /// The test database as login role `name` (made if missing, with a
    /// password), which is granted `roles` and nothing else.
    public static func connectionString(asRole name: String, granted roles: [String]) throws -> String {
        let base = try self.connectionString
        let password = "plexor-test"
        let connection = try PostgresConnection(base)
        // Roles belong to the whole cluster; tests in parallel may race to make one.
        try connection.executeScript("""
            DO $$ BEGIN
                CREATE ROLE \(name) LOGIN PASSWORD '\(password)';
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END $$;
            """)
        for role in roles {
            try connection.executeScript("GRANT \(role) TO \(name)")
        }
        if base.contains("://") {
            let withoutUser = base.replacingOccurrences(of: #"://[^@/]*@"#, with: "://", options: .regularExpression)
            return withoutUser.replacingOccurrences(of: "://", with: "://\(name):\(password)@")
        }
        return "\(base) user=\(name) password=\(password)"
    }
}

public enum TestCluster {
    /// A new embedded cluster in its own temporary directory (not started).
    /// Unless `durable`, durability is traded for speed: these clusters are thrown away.
    public static func make(name: String, durable: Bool = false) throws -> EmbeddedPostgres {
        let directory = "/tmp/plexor-test-\(getpid())-\(name)"
        try? FileManager.default.removeItem(atPath: directory)
        let fast = ["fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"]
        return try EmbeddedPostgres(
            dataDirectory: directory,
            settings: ["max_connections": "300"].merging(durable ? [:] : fast) { $1 },
            logger: TestDatabase.logger
        )
    }
}

/// A tag no other test uses.
public func uniqueTag(_ prefix: String = "t") -> String {
    "\(prefix)-\(UInt64.random(in: 0...UInt64.max) % 1_000_000_000_000)"
}
