import ArgumentParser
import Foundation
import Logging
import PlexorPostgres

/// Where the database is: given (flag, `DATABASE_URL`, libpq's `PG*`
/// variables), or the embedded cluster Plexor runs itself.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("libpq connection string or URI of an existing PostgreSQL. Env: DATABASE_URL. Without it (and without PGHOST, PGHOSTADDR, PGPORT, PGDATABASE or PGSERVICE), Plexor runs its own PostgreSQL.", valueName: "url"))
    var databaseURL: String?

    @Option(name: .long, help: ArgumentHelp("Data directory of the embedded PostgreSQL. Env: PLEXOR_DATA_DIR.", valueName: "path"))
    var dataDir: String?

    /// The connection string for an existing database, or `nil` for the embedded one.
    func externalConnectionString(_ environment: Environment) -> String? {
        if let url = environment.string(self.databaseURL, "DATABASE_URL"), !url.isEmpty { return url }
        let libpqVariables = ["PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGSERVICE"]
        if libpqVariables.contains(where: { environment.variables[$0] != nil }) { return "" }
        return nil
    }

    func embeddedCluster(_ environment: Environment, logger: Logger) throws -> EmbeddedPostgres {
        let directory = environment.string(self.dataDir, "PLEXOR_DATA_DIR") ?? ".plexor/postgres"
        let absolute = URL(fileURLWithPath: directory, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).path
        return try EmbeddedPostgres(dataDirectory: absolute, logger: logger)
    }
}
