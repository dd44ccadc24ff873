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
}
