import Foundation
import Logging

/// A PostgreSQL cluster that Plexor runs itself, from the Debian packages:
/// `initdb` on first use, then `pg_ctl start` with a Unix socket in the data
/// directory and no TCP listener. Used by `plexor serve` when no database is
/// configured, and by the test harness.
///
/// PostgreSQL refuses to run as root, so when started by root the cluster is
/// owned and run by the unprivileged `postgres` user (created by Debian's
/// `postgresql` package).
public final class EmbeddedPostgres {
    public let dataDirectory: String
    public let port: Int
    /// Extra `-c name=value` server settings.
    public let settings: [String: String]
    private let logger: Logger
    private let binDirectory: String
    private let runAsUser: String?

    public init(dataDirectory: String, port: Int = 5432, settings: [String: String] = [:], logger: Logger) throws {
        self.dataDirectory = URL(fileURLWithPath: dataDirectory).standardizedFileURL.path
        self.port = port
        self.settings = settings
        self.logger = logger
        self.binDirectory = try Self.findBinDirectory()
        self.runAsUser = geteuid() == 0 ? "postgres" : nil
        let socketPath = "\(self.dataDirectory)/.s.PGSQL.\(port)"
        guard socketPath.utf8.count < 100 else {
            throw PostgresError(kind: .other, message: "data directory \(self.dataDirectory) is too long for a Unix socket path; choose a shorter one")
        }
    }

    /// The libpq connection string of the running cluster, as its superuser `plexor`.
    public var connectionString: String {
        self.connectionString(user: "plexor")
    }

    /// The connection string as another role (trust authentication on the socket).
    public func connectionString(user: String) -> String {
        "host=\(self.dataDirectory) port=\(self.port) user=\(user) dbname=postgres"
    }

    /// The login roles an embedded setup uses instead of the superuser: the
    /// gateway connects as `gateway` (granted `plexor_gateway`) and the
    /// quick start publishes as `app` (granted `plexor_publisher`).
    public static let gatewayRole = "gateway"
    public static let publisherRole = "app"

    /// Makes `gateway` and `app` if they are missing (after `plexor migrate`
    /// has made the roles they are granted).
    public func createLoginRoles(using connection: PostgresConnection) throws {
        try connection.executeScript("""
            SET client_min_messages = warning;
            DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '\(Self.gatewayRole)') THEN
                    CREATE ROLE \(Self.gatewayRole) LOGIN IN ROLE plexor_gateway;
                END IF;
                IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '\(Self.publisherRole)') THEN
                    CREATE ROLE \(Self.publisherRole) LOGIN IN ROLE plexor_publisher;
                END IF;
            END $$;
            """)
    }

    /// Creates the cluster if it does not exist and starts it (or adopts it
    /// when it is already running).
    public func start() throws {
        try self.prepareDirectory()
        if !FileManager.default.fileExists(atPath: "\(self.dataDirectory)/PG_VERSION") {
            self.logger.info("creating a PostgreSQL cluster", metadata: ["directory": "\(self.dataDirectory)"])
            try self.run("initdb", ["-D", self.dataDirectory, "-U", "plexor", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
        }
        if try self.isRunning() {
            self.logger.info("PostgreSQL is already running", metadata: ["directory": "\(self.dataDirectory)"])
            return
        }
        var options = ["-k '\(self.dataDirectory)'", "-p \(self.port)", "-c listen_addresses=''"]
        for (name, value) in self.settings.sorted(by: { $0.key < $1.key }) {
            options.append("-c \(name)=\(value)")
        }
        try self.run("pg_ctl", ["-D", self.dataDirectory, "-l", "\(self.dataDirectory)/postgres.log",
                                "-o", options.joined(separator: " "), "-w", "-t", "120", "start"])
        self.logger.info("PostgreSQL started", metadata: ["socket": "\(self.dataDirectory)/.s.PGSQL.\(self.port)"])
    }

    /// Stops the cluster, waiting for it to finish (fast shutdown: sessions
    /// are disconnected, committed data is safe).
    public func stop() throws {
        guard try self.isRunning() else { return }
        try self.run("pg_ctl", ["-D", self.dataDirectory, "-m", "fast", "-w", "-t", "120", "stop"])
        self.logger.info("PostgreSQL stopped")
    }

    /// Stops the cluster abruptly (for tests of a crashed database).
    public func kill() throws {
        try self.run("pg_ctl", ["-D", self.dataDirectory, "-m", "immediate", "-w", "stop"])
    }

    public func isRunning() throws -> Bool {
        guard FileManager.default.fileExists(atPath: "\(self.dataDirectory)/PG_VERSION") else { return false }
        // pg_ctl status: 0 running, 3 not running, 4 no accessible data directory.
        return try self.run("pg_ctl", ["-D", self.dataDirectory, "status"], allowedStatuses: [0, 3]) == 0
    }

    // MARK: Private

    private func prepareDirectory() throws {
        try FileManager.default.createDirectory(atPath: self.dataDirectory, withIntermediateDirectories: true)
        if let user = self.runAsUser {
            guard let account = getpwnam(user) else {
                throw PostgresError(kind: .other, message: "running as root, but there is no '\(user)' user to run PostgreSQL as; install the postgresql package or run plexor as an unprivileged user")
            }
            let uid = account.pointee.pw_uid
            let gid = account.pointee.pw_gid
            guard chown(self.dataDirectory, uid, gid) == 0 else {
                throw PostgresError(kind: .other, message: "could not give \(self.dataDirectory) to user \(user): \(String(cString: strerror(errno)))")
            }
        }
        chmod(self.dataDirectory, 0o700)
    }

    @discardableResult
    private func run(_ program: String, _ arguments: [String], allowedStatuses: Set<Int32> = [0]) throws -> Int32 {
        let executable = "\(self.binDirectory)/\(program)"
        let argv = self.runAsUser.map { ["/usr/sbin/runuser", "-u", $0, "--", executable] } ?? [executable]
        let (status, output) = try Subprocess.run(argv + arguments)
        guard allowedStatuses.contains(status) else {
            throw PostgresError(kind: .other, message: "\(program) failed (exit \(status)): \(output)")
        }
        return status
    }

    /// The newest `/usr/lib/postgresql/N/bin` (Debian's layout), else the directory of `initdb` on PATH.
    static func findBinDirectory() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap(Int.init).sorted(by: >)
        for version in versions where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/initdb") {
            return "\(root)/\(version)/bin"
        }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        where FileManager.default.isExecutableFile(atPath: "\(directory)/initdb") {
            return String(directory)
        }
        throw PostgresError(kind: .other, message: "PostgreSQL's initdb was not found; install it with: apt-get install postgresql")
    }
}
