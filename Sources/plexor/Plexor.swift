import ArgumentParser
import Foundation
import Logging
import NIOCore
import PlexorCore
import PlexorHTTP
import PlexorPostgres

@main
struct Plexor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plexor",
        abstract: "A long-polling message gateway whose message log is PostgreSQL.",
        subcommands: [Serve.self, Migrate.self],
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
    let text = level ?? ProcessInfo.processInfo.environment["PLEXOR_LOG_LEVEL"] ?? "info"
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

    @Option(name: .long, help: ArgumentHelp("Largest message data the database accepts, in bytes. Env: PLEXOR_MAX_DATA_BYTES.", valueName: "bytes"))
    var maxDataBytes: Int?

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical. Env: PLEXOR_LOG_LEVEL.")
    var logLevel: String?

    func run() throws {
        let logger = try makeLogger(self.logLevel)
        let environment = Environment()
        var embedded: EmbeddedPostgres?
        let connectionString: String
        if let external = self.database.externalConnectionString(environment) {
            connectionString = external
        } else {
            let cluster = try self.database.embeddedCluster(environment, logger: logger)
            if !(try cluster.isRunning()) {
                try cluster.start()
                embedded = cluster
            }
            connectionString = cluster.connectionString
        }
        defer { try? embedded?.stop() }
        let connection = try PostgresConnection(connectionString)
        let applied = try Migrator.migrate(connection)
        if let maxDataBytes = try maximumDataBytes(self.maxDataBytes, environment) {
            try connection.setMaximumDataBytes(maxDataBytes)
        }
        print(applied.isEmpty ? "The plexor schema is up to date." : "Applied migrations: \(applied.map(String.init).joined(separator: ", ")).")
    }
}

func maximumDataBytes(_ flag: Int?, _ environment: Environment) throws -> Int? {
    guard flag != nil || environment.variables["PLEXOR_MAX_DATA_BYTES"] != nil else { return nil }
    return try environment.integer(flag, "PLEXOR_MAX_DATA_BYTES", default: 262_144, range: 1...(1 << 30), option: "--max-data-bytes")
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve long-polls (and HTTP publishes) from PostgreSQL.")

    @OptionGroup var database: DatabaseOptions

    @Option(help: "Address to listen on. Env: PLEXOR_HOST. Default 127.0.0.1 (use 0.0.0.0 behind a proxy on another host).")
    var host: String?
    @Option(help: "HTTP port. Env: PLEXOR_PORT. Default 8080.")
    var port: Int?
    @Flag(help: "Share --port with other plexor processes on this host (SO_REUSEPORT): the kernel spreads connections over them. Env: PLEXOR_REUSE_PORT=1.")
    var reusePort = false
    @Option(help: ArgumentHelp("A second port with the same routes that only this process listens on, to scrape or check each of several processes sharing --port. Env: PLEXOR_STATUS_PORT.", valueName: "port"))
    var statusPort: Int?
    @Flag(help: "Apply migrations before serving an existing database (the embedded one is always migrated). Env: PLEXOR_MIGRATE=1.")
    var migrate = false
    @Option(help: ArgumentHelp("Open connections beyond this get a 503 at once (lowered to fit the file descriptor limit). Env: PLEXOR_MAX_CONNECTIONS. Default 10000.", valueName: "n"))
    var maxConnections: Int?
    @Option(help: ArgumentHelp("Seconds a request may take to arrive whole (head and body) from its first byte; then a 408 and the connection closes. Env: PLEXOR_HEADER_TIMEOUT. Default 10.", valueName: "seconds"))
    var headerTimeout: Int?
    @Option(help: ArgumentHelp("Seconds a keep-alive connection may wait with no request before it is closed. Env: PLEXOR_IDLE_TIMEOUT. Default 60.", valueName: "seconds"))
    var idleTimeout: Int?
    @Option(help: ArgumentHelp("Most tags one poll may list. Env: PLEXOR_MAX_TAGS_PER_POLL. Default 100.", valueName: "n"))
    var maxTagsPerPoll: Int?
    @Option(help: ArgumentHelp("Poll timeout when a poll names none, in seconds. Env: PLEXOR_DEFAULT_TIMEOUT. Default 25.", valueName: "seconds"))
    var defaultTimeout: Int?
    @Option(help: ArgumentHelp("Longer poll timeouts are lowered to this. Env: PLEXOR_MAX_TIMEOUT. Default 60.", valueName: "seconds"))
    var maxTimeout: Int?
    @Option(help: ArgumentHelp("Access-Control-Allow-Origin; empty sends no CORS headers. Env: PLEXOR_CORS_ORIGIN. Default *.", valueName: "origin"))
    var corsOrigin: String?
    @Option(help: ArgumentHelp("Enables POST /publish for requests with Authorization: Bearer <token>. Env: PLEXOR_PUBLISH_TOKEN.", valueName: "token"))
    var publishToken: String?
    @Option(help: ArgumentHelp("Largest request body, in bytes. Env: PLEXOR_MAX_BODY_BYTES. Default 1048576.", valueName: "bytes"))
    var maxBodyBytes: Int?
    @Option(help: ArgumentHelp("Largest message data the database accepts, in bytes (stored in the database). Env: PLEXOR_MAX_DATA_BYTES. Default 262144.", valueName: "bytes"))
    var maxDataBytes: Int?
    @Option(help: ArgumentHelp("Drop messages older than this many seconds; 0 keeps them. Env: PLEXOR_RETENTION_MAX_AGE. Default 86400.", valueName: "seconds"))
    var retentionMaxAge: Int?
    @Option(help: ArgumentHelp("Keep at most this many messages per tag; 0 keeps all. Env: PLEXOR_RETENTION_MAX_PER_TAG. Default 10000.", valueName: "n"))
    var retentionMaxPerTag: Int?
    @Option(help: ArgumentHelp("Seconds between retention runs. Env: PLEXOR_RETENTION_INTERVAL. Default 60.", valueName: "seconds"))
    var retentionInterval: Int?
    @Option(help: ArgumentHelp("Messages one catch-up reads per tag. Env: PLEXOR_CATCH_UP_LIMIT. Default 100.", valueName: "n"))
    var catchUpLimit: Int?
    @Option(help: ArgumentHelp("Database connections for catch-up queries. Env: PLEXOR_QUERY_CONNECTIONS. Default 4.", valueName: "n"))
    var queryConnections: Int?
    @Option(help: ArgumentHelp("Event loop threads. Env: PLEXOR_THREADS. Default: one per core.", valueName: "n"))
    var threads: Int?
    @Option(help: "trace, debug, info, notice, warning, error or critical. Env: PLEXOR_LOG_LEVEL.")
    var logLevel: String?

    func run() throws {
        let logger = try makeLogger(self.logLevel)
        let environment = Environment()
        var configuration = GatewayConfiguration(connectionString: "")
        configuration.host = environment.string(self.host, "PLEXOR_HOST") ?? "127.0.0.1"
        configuration.port = try environment.integer(self.port, "PLEXOR_PORT", default: 8080, range: 0...65535, option: "--port")
        configuration.reusePort = self.reusePort || environment.variables["PLEXOR_REUSE_PORT"] == "1"
        if self.statusPort != nil || environment.variables["PLEXOR_STATUS_PORT"] != nil {
            configuration.statusPort = try environment.integer(self.statusPort, "PLEXOR_STATUS_PORT", default: 0, range: 0...65535, option: "--status-port")
        }
        configuration.maximumConnections = try environment.integer(self.maxConnections, "PLEXOR_MAX_CONNECTIONS", default: 10_000, range: 1...10_000_000, option: "--max-connections")
        configuration.headerTimeoutSeconds = try environment.integer(self.headerTimeout, "PLEXOR_HEADER_TIMEOUT", default: 10, range: 1...3600, option: "--header-timeout")
        configuration.idleTimeoutSeconds = try environment.integer(self.idleTimeout, "PLEXOR_IDLE_TIMEOUT", default: 60, range: 1...86_400, option: "--idle-timeout")
        configuration.pollLimits = PollLimits(
            maximumTags: try environment.integer(self.maxTagsPerPoll, "PLEXOR_MAX_TAGS_PER_POLL", default: 100, range: 1...10_000, option: "--max-tags-per-poll"),
            defaultTimeout: try environment.integer(self.defaultTimeout, "PLEXOR_DEFAULT_TIMEOUT", default: 25, range: 0...86_400, option: "--default-timeout"),
            maximumTimeout: try environment.integer(self.maxTimeout, "PLEXOR_MAX_TIMEOUT", default: 60, range: 0...86_400, option: "--max-timeout")
        )
        let origin = environment.string(self.corsOrigin, "PLEXOR_CORS_ORIGIN") ?? "*"
        configuration.corsOrigin = origin.isEmpty ? nil : origin
        configuration.publishToken = environment.string(self.publishToken, "PLEXOR_PUBLISH_TOKEN").flatMap { $0.isEmpty ? nil : $0 }
        configuration.maximumBodyBytes = try environment.integer(self.maxBodyBytes, "PLEXOR_MAX_BODY_BYTES", default: 1 << 20, range: 1...(1 << 30), option: "--max-body-bytes")
        let maxAge = try environment.integer(self.retentionMaxAge, "PLEXOR_RETENTION_MAX_AGE", default: 86_400, range: 0...Int(Int32.max), option: "--retention-max-age")
        let maxPerTag = try environment.integer(self.retentionMaxPerTag, "PLEXOR_RETENTION_MAX_PER_TAG", default: 10_000, range: 0...Int(Int32.max), option: "--retention-max-per-tag")
        configuration.retention = RetentionPolicy(maximumAgeSeconds: maxAge == 0 ? nil : maxAge, maximumPerTag: maxPerTag == 0 ? nil : maxPerTag)
        configuration.retentionInterval = .seconds(Int64(try environment.integer(self.retentionInterval, "PLEXOR_RETENTION_INTERVAL", default: 60, range: 1...86_400, option: "--retention-interval")))
        configuration.catchUpLimitPerTag = try environment.integer(self.catchUpLimit, "PLEXOR_CATCH_UP_LIMIT", default: 100, range: 1...100_000, option: "--catch-up-limit")
        configuration.queryConnections = try environment.integer(self.queryConnections, "PLEXOR_QUERY_CONNECTIONS", default: 4, range: 1...1000, option: "--query-connections")
        configuration.eventLoopThreads = try environment.integer(self.threads, "PLEXOR_THREADS", default: System.coreCount, range: 1...ListenRegistry.maximumSinks, option: "--threads")
        let migrateExternal = self.migrate || environment.variables["PLEXOR_MIGRATE"] == "1"

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
            try embedded.createLoginRoles(using: connection)
            configuration.connectionString = embedded.connectionString(user: EmbeddedPostgres.gatewayRole)
        }

        let gateway = try Gateway.start(configuration, logger: logger)
        Self.printWelcome(gateway: gateway, configuration: configuration, embedded: embedded)
        Self.waitForTermination()
        logger.info("draining: answering parked polls, then stopping")
        gateway.shutdown()
    }

    static func requireSchema(_ connection: PostgresConnection) throws {
        let hasSchema = try connection.query("SELECT to_regclass('plexor.schema_migrations') IS NOT NULL") { $0.bool(0, 0) ?? false }
        guard hasSchema else {
            throw CommandError("the database has no plexor schema yet: run `plexor migrate` against it first (or pass --migrate)")
        }
    }

    static func printWelcome(gateway: Gateway, configuration: GatewayConfiguration, embedded: EmbeddedPostgres?) {
        let host = configuration.host == "0.0.0.0" ? "127.0.0.1" : configuration.host
        let base = "http://\(host):\(gateway.localPort)"
        let psql = embedded.map { "psql '\($0.connectionString(user: EmbeddedPostgres.publisherRole))'" } ?? "psql \"$DATABASE_URL\""
        print("""
            Plexor is serving on \(base)
              wait for messages:  curl '\(base)/poll?tags=chat'
              publish one:        \(psql) -c "INSERT INTO plexor.messages (tags, data) VALUES ('{chat}', '{\\"text\\":\\"hi\\"}')"
            Stop with Ctrl-C (parked polls are answered first).
            """)
        fflush(stdout)
    }

    /// Blocks until SIGINT or SIGTERM.
    static func waitForTermination() {
        let done = DispatchSemaphore(value: 0)
        var sources: [DispatchSourceSignal] = []
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { done.signal() }
            source.resume()
            sources.append(source)
        }
        done.wait()
        sources.forEach { $0.cancel() }
    }
}
