import ArgumentParser
import Foundation
import Logging
import PlexorPostgres

/// Where the database is: given (flag, `DATABASE_URL`, libpq's `PG*`
/// variables), or the embedded cluster Plexor runs itself.
struct DatabaseOptions: ParsableArguments {
    @Option(name: Settings.databaseURL.name, help: Settings.databaseURL.argumentHelp)
    var databaseURL: String?

    @Option(name: Settings.dataDir.name, help: Settings.dataDir.argumentHelp)
    var dataDir: String?

    /// The connection string for an existing database, or `nil` for the embedded one.
    func externalConnectionString(_ environment: Environment) -> String? {
        if let url = Settings.databaseURL.value(self.databaseURL, environment), !url.isEmpty { return url }
        let libpqVariables = ["PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGSERVICE"]
        if libpqVariables.contains(where: { environment.variables[$0] != nil }) { return "" }
        return nil
    }

    func embeddedCluster(_ environment: Environment, logger: Logger) throws -> EmbeddedPostgres {
        let directory = Settings.dataDir.value(self.dataDir, environment) ?? Settings.defaultDataDirectory
        let absolute = URL(fileURLWithPath: directory, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).path
        return try EmbeddedPostgres(dataDirectory: absolute, logger: logger)
    }

    /// Runs `body` with a connection to the database: the given one, or the
    /// embedded cluster (started for the call if it is not running, and
    /// stopped again after).
    func withConnection<T>(_ environment: Environment, logger: Logger, _ body: (PostgresConnection) throws -> T) throws -> T {
        var started: EmbeddedPostgres?
        let connectionString: String
        if let external = self.externalConnectionString(environment) {
            connectionString = external
        } else {
            let cluster = try self.embeddedCluster(environment, logger: logger)
            if !(try cluster.isRunning()) {
                try cluster.start()
                started = cluster
            }
            connectionString = cluster.connectionString
        }
        defer { try? started?.stop() }
        return try body(try PostgresConnection(connectionString))
    }
}
