import Foundation

/// Applies the versioned files under `sql/` (`NNN_name.sql`) in order, each in
/// its own transaction, recording them in `plexor.schema_migrations`.
///
/// Idempotent, and safe to run from several gateways at once: an advisory
/// lock makes them take turns, and each finds what the others applied.
public enum Migrator {
    public struct Migration: Sendable {
        public var version: Int
        public var name: String
        public var sql: String
    }

    /// The migrations shipped with this build, by version.
    public static func bundledMigrations() throws -> [Migration] {
        guard let directory = Bundle.module.url(forResource: "Migrations", withExtension: nil) else {
            throw PostgresError(kind: .other, message: "the SQL migrations are missing from this build")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        return try names.filter { $0.hasSuffix(".sql") }.sorted().map { name in
            guard let version = Int(name.prefix { $0.isNumber }) else {
                throw PostgresError(kind: .other, message: "migration file \(name) does not start with its version number")
            }
            let sql = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            return Migration(version: version, name: name, sql: sql)
        }
    }

    /// Brings the schema up to date; returns the versions this call applied.
    @discardableResult
    public static func migrate(_ connection: PostgresConnection, migrations: [Migration]? = nil) throws -> [Int] {
        let migrations = try migrations ?? Self.bundledMigrations()
        try connection.execute("SELECT pg_advisory_lock(hashtext('plexor.migrate'))")
        defer { try? connection.execute("SELECT pg_advisory_unlock(hashtext('plexor.migrate'))") }
        try connection.executeScript("""
            SET client_min_messages = warning;
            CREATE SCHEMA IF NOT EXISTS plexor;
            CREATE TABLE IF NOT EXISTS plexor.schema_migrations (
                version    int         PRIMARY KEY,
                name       text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            );
            """)
        let applied = try connection.query("SELECT version FROM plexor.schema_migrations") { rows in
            Set((0..<rows.count).map { Int(rows.int64($0, 0)!) })
        }
        var newlyApplied: [Int] = []
        for migration in migrations where !applied.contains(migration.version) {
            try connection.execute("BEGIN")
            do {
                try connection.executeScript(migration.sql)
                try connection.execute("INSERT INTO plexor.schema_migrations (version, name) VALUES ($1, $2)",
                                       [String(migration.version), migration.name])
                try connection.execute("COMMIT")
            } catch var error as PostgresError {
                try? connection.execute("ROLLBACK")
                error.message = "migration \(migration.name) failed: \(error.message)"
                throw error
            }
            newlyApplied.append(migration.version)
        }
        return newlyApplied
    }
}
