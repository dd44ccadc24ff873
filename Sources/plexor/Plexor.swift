import ArgumentParser
import Foundation
import Logging
import NIOCore
import PlexorAccess
import PlexorCore
import PlexorGateway
import PlexorPostgres
import PlexorRealplexor
import PlexorTransport
import ServiceLifecycle

@main
struct Plexor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plexor",
        abstract: "A long-polling message gateway whose message log is PostgreSQL.",
        subcommands: [Serve.self, Migrate.self, SiteCommand.self, Status.self],
        defaultSubcommand: Serve.self
    )
}

/// A failure while running (not a misused flag): printed without the usage text.
struct CommandError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}

func makeLogger(_ level: String?) throws -> Logger {
    let text = Settings.logLevel.value(level, Environment()) ?? Settings.defaultLogLevel
    guard let level = Logger.Level(rawValue: text) else {
        throw ValidationError("log level \(text) is not one of trace, debug, info, notice, warning, error, critical")
    }
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    return Logger(label: "plexor")
}

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create or upgrade the plexor schema (idempotent; safe to run from several hosts at once).")

    @OptionGroup var database: DatabaseOptions

    @Option(name: Settings.maxDataBytes.name, help: Settings.maxDataBytes.argumentHelp)
    var maxDataBytes: Int?

    @Option(name: Settings.logLevel.name, help: Settings.logLevel.argumentHelp)
    var logLevel: String?

    func run() throws {
        let logger = try makeLogger(self.logLevel)
        let environment = Environment()
        try self.database.withConnection(environment, logger: logger) { connection in
            let applied = try Migrator.migrate(connection)
            if let maxDataBytes = try maximumDataBytes(self.maxDataBytes, environment) {
                try connection.setMaximumDataBytes(maxDataBytes)
            }
            print(applied.isEmpty ? "The plexor schema is up to date." : "Applied migrations: \(applied.map(String.init).joined(separator: ", ")).")
        }
    }
}

/// `--max-data-bytes` when given (else the database keeps what it has).
func maximumDataBytes(_ flag: Int?, _ environment: Environment) throws -> Int? {
    let setting = Settings.maxDataBytes
    guard flag != nil || environment.variables[setting.environment] != nil else { return nil }
    return try setting.value(flag, environment)
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve long-polls (and HTTP publishes) from PostgreSQL.")

    @OptionGroup var database: DatabaseOptions

    @Option(name: Settings.host.name, help: Settings.host.argumentHelp)
    var host: String?
    @Option(name: Settings.port.name, help: Settings.port.argumentHelp)
    var port: Int?
    @Flag(name: Settings.reusePort.name, help: Settings.reusePort.argumentHelp)
    var reusePort = false
    @Option(name: Settings.statusPort.name, help: Settings.statusPort.argumentHelp)
    var statusPort: Int?
    @Flag(name: Settings.migrate.name, help: Settings.migrate.argumentHelp)
    var migrate = false
    @Option(name: Settings.maxConnections.name, help: Settings.maxConnections.argumentHelp)
    var maxConnections: Int?
    @Option(name: Settings.headerTimeout.name, help: Settings.headerTimeout.argumentHelp)
    var headerTimeout: Int?
    @Option(name: Settings.idleTimeout.name, help: Settings.idleTimeout.argumentHelp)
    var idleTimeout: Int?
    @Option(name: Settings.maxTagsPerPoll.name, help: Settings.maxTagsPerPoll.argumentHelp)
    var maxTagsPerPoll: Int?
    @Option(name: Settings.defaultTimeout.name, help: Settings.defaultTimeout.argumentHelp)
    var defaultTimeout: Int?
    @Option(name: Settings.maxTimeout.name, help: Settings.maxTimeout.argumentHelp)
    var maxTimeout: Int?
    @Option(name: Settings.corsOrigin.name, help: Settings.corsOrigin.argumentHelp)
    var corsOrigin: String?
    @Option(name: Settings.publicURL.name, help: Settings.publicURL.argumentHelp)
    var publicURL: String?
    @Option(name: Settings.oidcIssuer.name, help: Settings.oidcIssuer.argumentHelp)
    var oidcIssuer: String?
    @Option(name: Settings.oidcClientID.name, help: Settings.oidcClientID.argumentHelp)
    var oidcClientID: String?
    @Option(name: Settings.oidcClientSecret.name, help: Settings.oidcClientSecret.argumentHelp)
    var oidcClientSecret: String?
    @Option(name: Settings.oidcName.name, help: Settings.oidcName.argumentHelp)
    var oidcName: String?
    @Option(name: Settings.apiToken.name, help: Settings.apiToken.argumentHelp)
    var apiToken: String?
    @Option(name: Settings.publishToken.name, help: Settings.publishToken.argumentHelp)
    var publishToken: String?
    @Option(name: Settings.maxBodyBytes.name, help: Settings.maxBodyBytes.argumentHelp)
    var maxBodyBytes: Int?
    @Option(name: Settings.maxDataBytes.name, help: Settings.maxDataBytes.argumentHelp)
    var maxDataBytes: Int?
    @Option(name: Settings.retentionMaxAge.name, help: Settings.retentionMaxAge.argumentHelp)
    var retentionMaxAge: Int?
    @Option(name: Settings.retentionMaxPerTag.name, help: Settings.retentionMaxPerTag.argumentHelp)
    var retentionMaxPerTag: Int?
    @Option(name: Settings.retentionInterval.name, help: Settings.retentionInterval.argumentHelp)
    var retentionInterval: Int?
    @Option(name: Settings.presence.name, help: Settings.presence.argumentHelp)
    var presence: String?
    @Option(name: Settings.presencePrefixes.name, help: Settings.presencePrefixes.argumentHelp)
    var presencePrefixes: String?
    @Option(name: Settings.privatePrefixes.name, help: Settings.privatePrefixes.argumentHelp)
    var privatePrefixes: String?
    @Option(name: Settings.realplexorWaitPort.name, help: Settings.realplexorWaitPort.argumentHelp)
    var realplexorWaitPort: Int?
    @Option(name: Settings.realplexorInPort.name, help: Settings.realplexorInPort.argumentHelp)
    var realplexorInPort: Int?
    @Option(name: Settings.realplexorInHost.name, help: Settings.realplexorInHost.argumentHelp)
    var realplexorInHost: String?
    @Option(name: Settings.realplexorUsers.name, help: Settings.realplexorUsers.argumentHelp)
    var realplexorUsers: String?
    @Option(name: Settings.trustedProxies.name, help: Settings.trustedProxies.argumentHelp)
    var trustedProxies: String?
    @Option(name: Settings.presenceGrace.name, help: Settings.presenceGrace.argumentHelp)
    var presenceGrace: Int?
    @Option(name: Settings.presenceHeartbeatTimeout.name, help: Settings.presenceHeartbeatTimeout.argumentHelp)
    var presenceHeartbeatTimeout: Int?
    @Option(name: Settings.presenceRetention.name, help: Settings.presenceRetention.argumentHelp)
    var presenceRetention: Int?
    @Option(name: Settings.guestSessionsPerMinute.name, help: Settings.guestSessionsPerMinute.argumentHelp)
    var guestSessionsPerMinute: Int?
    @Option(name: Settings.catchUpLimit.name, help: Settings.catchUpLimit.argumentHelp)
    var catchUpLimit: Int?
    @Option(name: Settings.queryConnections.name, help: Settings.queryConnections.argumentHelp)
    var queryConnections: Int?
    @Option(name: Settings.threads.name, help: Settings.threads.argumentHelp)
    var threads: Int?
    @Option(name: Settings.logLevel.name, help: Settings.logLevel.argumentHelp)
    var logLevel: String?

    func run() async throws {
        let logger = try makeLogger(self.logLevel)
        let environment = Environment()
        var configuration = GatewayConfiguration(connectionString: "")
        configuration.host = Settings.host.value(self.host, environment) ?? Settings.defaults.host
        let integers: [(IntegerSetting, Int?)] = [
            (Settings.port, self.port), (Settings.maxConnections, self.maxConnections),
            (Settings.headerTimeout, self.headerTimeout), (Settings.idleTimeout, self.idleTimeout),
            (Settings.maxTagsPerPoll, self.maxTagsPerPoll), (Settings.defaultTimeout, self.defaultTimeout),
            (Settings.maxTimeout, self.maxTimeout), (Settings.maxBodyBytes, self.maxBodyBytes),
            (Settings.retentionMaxAge, self.retentionMaxAge), (Settings.retentionMaxPerTag, self.retentionMaxPerTag),
            (Settings.retentionInterval, self.retentionInterval), (Settings.catchUpLimit, self.catchUpLimit),
            (Settings.queryConnections, self.queryConnections), (Settings.threads, self.threads),
            (Settings.presenceGrace, self.presenceGrace), (Settings.presenceHeartbeatTimeout, self.presenceHeartbeatTimeout),
            (Settings.presenceRetention, self.presenceRetention), (Settings.guestSessionsPerMinute, self.guestSessionsPerMinute),
        ]
        for (setting, flag) in integers {
            try setting.apply(flag, environment, to: &configuration)
        }
        configuration.reusePort = Settings.reusePort.isOn(self.reusePort, environment)
        // Only when given: without it there is no status port at all.
        if self.statusPort != nil || environment.variables[Settings.statusPort.environment] != nil {
            try Settings.statusPort.apply(self.statusPort, environment, to: &configuration)
        }
        let origin = Settings.corsOrigin.value(self.corsOrigin, environment) ?? ""
        configuration.corsOrigin = origin.isEmpty ? nil : origin
        configuration.apiToken = (Settings.apiToken.value(self.apiToken, environment)
            ?? Settings.publishToken.value(self.publishToken, environment)).flatMap { $0.isEmpty ? nil : $0 }
        try Self.applyPresence(self.presence, self.presencePrefixes, environment, to: &configuration)
        if let list = Settings.privatePrefixes.value(self.privatePrefixes, environment), !list.isEmpty {
            configuration.privatePrefixes = try Self.prefixes(list, Settings.privatePrefixes)
        }
        if let list = Settings.trustedProxies.value(self.trustedProxies, environment), !list.isEmpty {
            do {
                configuration.trustedProxies = try TrustedProxies(parsing: list)
            } catch {
                throw ValidationError("--\(Settings.trustedProxies.flag) (or \(Settings.trustedProxies.environment)): \(error)")
            }
        }
        try self.applyRealplexor(environment, to: &configuration)
        try self.applySignIn(environment, to: &configuration)
        let migrateExternal = Settings.migrate.isOn(self.migrate, environment)

        var embedded: EmbeddedPostgres?
        var startedEmbedded = false
        if let external = self.database.externalConnectionString(environment) {
            configuration.connectionString = external
        } else {
            let cluster = try self.database.embeddedCluster(environment, logger: logger)
            startedEmbedded = !(try cluster.isRunning())
            try cluster.start()
            embedded = cluster
            configuration.connectionString = cluster.connectionString
        }
        defer { if startedEmbedded { try? embedded?.stop() } }

        // Migrations and settings as the owner; then, embedded, the gateway
        // runs with no more rights than plexor_gateway gives it.
        let connection = try PostgresConnection(configuration.connectionString)
        if embedded != nil || migrateExternal {
            try Migrator.migrate(connection)
        } else {
            try Self.requireSchema(connection)
        }
        if let maxDataBytes = try maximumDataBytes(self.maxDataBytes, environment) {
            try connection.setMaximumDataBytes(maxDataBytes)
        }
        if let embedded {
            // A newcomer's first run shows the chat working: /demo embeds this site's room.
            if try connection.chatSites(named: "demo").isEmpty {
                _ = try connection.chatSiteAdd(name: "demo", origins: [])
            }
            try embedded.createLoginRoles(using: connection)
            configuration.connectionString = embedded.connectionString(user: EmbeddedPostgres.gatewayRole)
            configuration.frontPagePsql = Self.psqlCommand(embedded)
        }

        let gateway = try Gateway.start(configuration, logger: logger)
        Self.printWelcome(gateway: gateway, configuration: configuration, embedded: embedded)
        // SIGTERM or SIGINT: the parts stop one by one, in reverse order of
        // starting (the HTTP server drains its parked polls first).
        let services = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: gateway.services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await services.run()
        logger.info("gateway stopped")
    }

    /// `--public-url` and the OpenID Connect provider, checked.
    func applySignIn(_ environment: Environment, to configuration: inout GatewayConfiguration) throws {
        if let url = Settings.publicURL.value(self.publicURL, environment), !url.isEmpty {
            guard url.wholeMatch(of: /https?:\/\/[A-Za-z0-9.\-\[\]:]+/) != nil else {
                throw ValidationError("--public-url (or \(Settings.publicURL.environment)) is scheme://host[:port] without a path, such as https://chat.example.net; got \(url.prefix(100))")
            }
            configuration.publicURL = url
        }
        let issuer = Settings.oidcIssuer.value(self.oidcIssuer, environment).flatMap { $0.isEmpty ? nil : $0 }
        let clientID = Settings.oidcClientID.value(self.oidcClientID, environment).flatMap { $0.isEmpty ? nil : $0 }
        let secret = Settings.oidcClientSecret.value(self.oidcClientSecret, environment).flatMap { $0.isEmpty ? nil : $0 }
        guard issuer != nil || clientID != nil || secret != nil else { return }
        guard let issuer, let clientID, let secret else {
            throw ValidationError("an OpenID Connect provider needs all three of --oidc-issuer, --oidc-client-id and --oidc-client-secret")
        }
        guard let host = URL(string: issuer)?.host, issuer.hasPrefix("https://") || issuer.hasPrefix("http://") else {
            throw ValidationError("--oidc-issuer (or \(Settings.oidcIssuer.environment)) must be the provider's http(s) URL; got \(issuer.prefix(100))")
        }
        let base = configuration.publicURL ?? "http://\(configuration.host == "0.0.0.0" || configuration.host == "::" ? "127.0.0.1" : configuration.host):\(configuration.port)"
        configuration.openIDConnect = OpenIDConnect.Provider(
            issuer: issuer, clientID: clientID, clientSecret: secret,
            name: Settings.oidcName.value(self.oidcName, environment).flatMap { $0.isEmpty ? nil : $0 } ?? host,
            redirectURI: base + "/signin/oidc/callback")
    }

    /// `--presence on|off` and `--presence-prefixes a,b`, checked.
    static func applyPresence(_ flag: String?, _ prefixes: String?, _ environment: Environment,
                              to configuration: inout GatewayConfiguration) throws {
        switch Settings.presence.value(flag, environment) {
        case "on": configuration.presence.enabled = true
        case "off": configuration.presence.enabled = false
        case let other: throw ValidationError("--presence (or \(Settings.presence.environment)) must be on or off; got \(other ?? "")")
        }
        guard let list = Settings.presencePrefixes.value(prefixes, environment) else { return }
        configuration.presence.scope = PresenceScope(prefixes: try Self.prefixes(list, Settings.presencePrefixes))
    }

    /// A comma-separated list of tag prefixes, checked: a prefix of a tag is spelled like one.
    /// The Realplexor ports, each only when given, and the users file.
    func applyRealplexor(_ environment: Environment, to configuration: inout GatewayConfiguration) throws {
        for (setting, flag) in [(Settings.realplexorWaitPort, self.realplexorWaitPort), (Settings.realplexorInPort, self.realplexorInPort)]
        where flag != nil || environment.variables[setting.environment] != nil {
            try setting.apply(flag, environment, to: &configuration)
        }
        configuration.realplexor.inHost = Settings.realplexorInHost.value(self.realplexorInHost, environment) ?? configuration.realplexor.inHost
        guard let path = Settings.realplexorUsers.value(self.realplexorUsers, environment), !path.isEmpty else { return }
        guard configuration.realplexor.inPort != nil else {
            throw ValidationError("--\(Settings.realplexorUsers.flag) needs --\(Settings.realplexorInPort.flag)")
        }
        let contents: String
        do {
            contents = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ValidationError("--\(Settings.realplexorUsers.flag): cannot read \(path): \(error.localizedDescription)")
        }
        do {
            configuration.realplexor.users = try RealplexorUsers(contents: contents)
        } catch {
            throw ValidationError("--\(Settings.realplexorUsers.flag) \(path): \(error)")
        }
    }

    static func prefixes(_ list: String, _ setting: TextSetting) throws -> [String] {
        let parsed = list.split(separator: ",", omittingEmptySubsequences: false).map { String($0) }
        guard parsed.count <= 100, parsed.allSatisfy({ (try? Tag(validating: $0)) != nil }) else {
            throw ValidationError("--\(setting.flag) (or \(setting.environment)) must be at most 100 comma-separated prefixes, each spelled like a tag; got \(list.prefix(200))")
        }
        return parsed
    }

    static func requireSchema(_ connection: PostgresConnection) throws {
        let hasSchema = try connection.query("SELECT to_regclass('plexor.schema_migrations') IS NOT NULL") { $0.bool(0, 0) ?? false }
        guard hasSchema else {
            throw CommandError("the database has no plexor schema yet: run `plexor migrate` against it first (or pass --migrate)")
        }
    }

    /// How to publish to the embedded database: as `app`, over its local socket, with no password.
    static func psqlCommand(_ embedded: EmbeddedPostgres) -> String {
        "psql '\(embedded.connectionString(user: EmbeddedPostgres.publisherRole))'"
    }

    static func printWelcome(gateway: Gateway, configuration: GatewayConfiguration, embedded: EmbeddedPostgres?) {
        let host = configuration.host == "0.0.0.0" ? "127.0.0.1" : configuration.host
        let base = "http://\(host):\(gateway.localPort)"
        let psql = embedded.map(Self.psqlCommand) ?? "psql \"$DATABASE_URL\""
        var realplexor = ""
        if let wait = gateway.localRealplexorWaitPort {
            realplexor += "  Realplexor's WAIT: http://\(host):\(wait)/ (its client: http://\(host):\(wait)/?identifier=SCRIPT)\n"
        }
        if let input = gateway.localRealplexorInPort {
            realplexor += "  Realplexor's IN:   \(configuration.realplexor.inHost):\(input)\n"
        }
        print("""
            Plexor is serving on \(base)
              wait for messages:  curl '\(base)/poll?tags=chat'
              publish one:        \(psql) -c "INSERT INTO plexor.messages (tags, data) VALUES ('{chat}', '{\\"text\\":\\"hi\\"}')"
              the chat widget:    \(base)/demo
            \(realplexor)Stop with Ctrl-C (parked polls are answered first).
            """)
        fflush(nil)  // every output stream (stdout itself is a global the compiler cannot check)
    }
}
