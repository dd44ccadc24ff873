import ArgumentParser
import NIOCore
import PlexorGateway
import PlexorPostgres

/// A whole-number setting of `plexor serve`, defined once: its flag, its
/// environment variable, its range, its help, and where it lives in the
/// gateway's configuration, whose own default is the setting's default.
struct IntegerSetting: Sendable {
    /// The long flag, without `--`.
    let flag: String
    let environment: String
    let range: ClosedRange<Int>
    let help: String
    let valueName: String
    /// How `--help` states the default, when not as the number (it depends on the machine).
    let defaultDescription: String?
    /// Reads the setting from a configuration and writes it back.
    let get: @Sendable (GatewayConfiguration) -> Int
    let set: @Sendable (inout GatewayConfiguration, Int) -> Void

    init(_ flag: String, _ environment: String, range: ClosedRange<Int>, valueName: String, help: String,
         defaultDescription: String? = nil,
         get: @escaping @Sendable (GatewayConfiguration) -> Int, set: @escaping @Sendable (inout GatewayConfiguration, Int) -> Void) {
        self.flag = flag
        self.environment = environment
        self.range = range
        self.help = help
        self.valueName = valueName
        self.defaultDescription = defaultDescription
        self.get = get
        self.set = set
    }

    /// Most settings are a plain property of the configuration.
    init(_ flag: String, _ environment: String, _ keyPath: WritableKeyPath<GatewayConfiguration, Int> & Sendable,
         range: ClosedRange<Int>, valueName: String, help: String, defaultDescription: String? = nil) {
        self.init(flag, environment, range: range, valueName: valueName, help: help, defaultDescription: defaultDescription,
                  get: { $0[keyPath: keyPath] }, set: { $0[keyPath: keyPath] = $1 })
    }

    /// A limit that may be off: 0 on the command line, `nil` in the configuration.
    init(_ flag: String, _ environment: String, zeroMeaningNone keyPath: WritableKeyPath<GatewayConfiguration, Int?> & Sendable,
         range: ClosedRange<Int>, valueName: String, help: String) {
        self.init(flag, environment, range: range, valueName: valueName, help: help,
                  get: { $0[keyPath: keyPath] ?? 0 }, set: { $0[keyPath: keyPath] = $1 == 0 ? nil : $1 })
    }

    var defaultValue: Int { self.get(Settings.defaults) }

    var name: NameSpecification { .customLong(self.flag) }

    var argumentHelp: ArgumentHelp {
        settingHelp(self.help, environment: self.environment, default: self.defaultDescription ?? String(self.defaultValue),
                    valueName: self.valueName)
    }

    /// The flag's value, else the environment's, else the default; checked against the range.
    func value(_ flag: Int?, _ environment: Environment) throws -> Int {
        try environment.integer(flag, self.environment, default: self.defaultValue, range: self.range, option: "--\(self.flag)")
    }

    func apply(_ flag: Int?, _ environment: Environment, to configuration: inout GatewayConfiguration) throws {
        self.set(&configuration, try self.value(flag, environment))
    }
}

/// A text setting, defined once: its flag, environment variable, default and help.
struct TextSetting: Sendable {
    let flag: String
    let environment: String
    let help: String
    let valueName: String
    /// Used when neither the flag nor the variable gives a value.
    let defaultValue: String?
    /// How `--help` states the default, when not as the value itself.
    let defaultDescription: String?

    init(_ flag: String, _ environment: String, valueName: String, help: String, default defaultValue: String? = nil,
         defaultDescription: String? = nil) {
        self.flag = flag
        self.environment = environment
        self.help = help
        self.valueName = valueName
        self.defaultValue = defaultValue
        self.defaultDescription = defaultDescription
    }

    var name: NameSpecification { .customLong(self.flag) }

    var argumentHelp: ArgumentHelp {
        settingHelp(self.help, environment: self.environment, default: self.defaultDescription ?? self.defaultValue,
                    valueName: self.valueName)
    }

    /// The flag's value, else the environment's, else the default.
    func value(_ flag: String?, _ environment: Environment) -> String? {
        flag ?? environment.variables[self.environment] ?? self.defaultValue
    }
}

/// An on/off flag, defined once; also on when its environment variable is `1`.
struct SwitchSetting: Sendable {
    let flag: String
    let environment: String
    let help: String

    init(_ flag: String, _ environment: String, help: String) {
        self.flag = flag
        self.environment = environment
        self.help = help
    }

    var name: NameSpecification { .customLong(self.flag) }

    var argumentHelp: ArgumentHelp { ArgumentHelp("\(self.help) Env: \(self.environment)=1.") }

    func isOn(_ flag: Bool, _ environment: Environment) -> Bool {
        flag || environment.variables[self.environment] == "1"
    }
}

/// `--help`'s text for a setting: what it does, its variable, its default.
func settingHelp(_ help: String, environment: String, default shown: String?, valueName: String) -> ArgumentHelp {
    ArgumentHelp("\(help) Env: \(environment).\(shown.map { " Default \($0)." } ?? "")", valueName: valueName)
}

/// Every setting of `plexor serve` (and `migrate`), in the order `--help` lists them.
enum Settings {
    /// A configuration with nothing changed: where every default comes from.
    static let defaults = GatewayConfiguration(connectionString: "")

    static let databaseURL = TextSetting("database-url", "DATABASE_URL", valueName: "url",
        help: "libpq connection string or URI of an existing PostgreSQL. Without it (and without PGHOST, PGHOSTADDR, PGPORT, PGDATABASE or PGSERVICE), Plexor runs its own PostgreSQL.")
    static let dataDir = TextSetting("data-dir", "PLEXOR_DATA_DIR", valueName: "path",
        help: "Data directory of the embedded PostgreSQL.", default: defaultDataDirectory)
    static let defaultDataDirectory = ".plexor/postgres"
    static let host = TextSetting("host", "PLEXOR_HOST", valueName: "host",
        help: "Address to listen on (use 0.0.0.0 behind a proxy on another host).", default: defaults.host)
    static let port = IntegerSetting("port", "PLEXOR_PORT", \.port, range: 0...65535, valueName: "port",
        help: "HTTP port.")
    static let reusePort = SwitchSetting("reuse-port", "PLEXOR_REUSE_PORT",
        help: "Share --port with other plexor processes on this host (SO_REUSEPORT): the kernel spreads connections over them.")
    static let statusPort = IntegerSetting("status-port", "PLEXOR_STATUS_PORT", range: 0...65535, valueName: "port",
        help: "A second port with the same routes that only this process listens on, to scrape or check each of several processes sharing --port.",
        defaultDescription: "none", get: { $0.statusPort ?? 0 }, set: { $0.statusPort = $1 })
    static let realplexorWaitPort = IntegerSetting("realplexor-wait-port", "PLEXOR_REALPLEXOR_WAIT_PORT", range: 0...65535,
        valueName: "port", help: "Speak Realplexor's WAIT protocol to browsers on this port (on --host), as Realplexor's port 8088 did.",
        defaultDescription: "off", get: { $0.realplexor.waitPort ?? 0 }, set: { $0.realplexor.waitPort = $1 })
    static let realplexorInPort = IntegerSetting("realplexor-in-port", "PLEXOR_REALPLEXOR_IN_PORT", range: 0...65535,
        valueName: "port", help: "Speak Realplexor's IN protocol to application servers (its PHP API) on this port, as Realplexor's port 10010 did.",
        defaultDescription: "off", get: { $0.realplexor.inPort ?? 0 }, set: { $0.realplexor.inPort = $1 })
    static let realplexorInHost = TextSetting("realplexor-in-host", "PLEXOR_REALPLEXOR_IN_HOST", valueName: "host",
        help: "Address of the IN port: only application servers should reach it.", default: RealplexorSettings().inHost)
    static let realplexorUsers = TextSetting("realplexor-users", "PLEXOR_REALPLEXOR_USERS", valueName: "file",
        help: "Who may use the IN port: Realplexor's users file (login:crypt-hash lines; a lone ':' lets anonymous requests in).",
        defaultDescription: "anyone, anonymously")
    static let migrate = SwitchSetting("migrate", "PLEXOR_MIGRATE",
        help: "Apply migrations before serving an existing database (the embedded one is always migrated).")
    static let maxConnections = IntegerSetting("max-connections", "PLEXOR_MAX_CONNECTIONS", \.maximumConnections,
        range: 1...10_000_000, valueName: "n",
        help: "Open connections beyond this get a 503 at once (lowered to fit the file descriptor limit).")
    static let headerTimeout = IntegerSetting("header-timeout", "PLEXOR_HEADER_TIMEOUT", \.headerTimeoutSeconds,
        range: 1...3600, valueName: "seconds",
        help: "Seconds a request may take to arrive whole (head and body) from its first byte; then a 408 and the connection closes.")
    static let idleTimeout = IntegerSetting("idle-timeout", "PLEXOR_IDLE_TIMEOUT", \.idleTimeoutSeconds,
        range: 1...86_400, valueName: "seconds",
        help: "Seconds a keep-alive connection may wait with no request before it is closed.")
    static let maxTagsPerPoll = IntegerSetting("max-tags-per-poll", "PLEXOR_MAX_TAGS_PER_POLL", \.pollLimits.maximumTags,
        range: 1...10_000, valueName: "n",
        help: "Most tags one poll may list.")
    static let defaultTimeout = IntegerSetting("default-timeout", "PLEXOR_DEFAULT_TIMEOUT", \.pollLimits.defaultTimeout,
        range: 0...86_400, valueName: "seconds",
        help: "Poll timeout when a poll names none, in seconds.")
    static let maxTimeout = IntegerSetting("max-timeout", "PLEXOR_MAX_TIMEOUT", \.pollLimits.maximumTimeout,
        range: 0...86_400, valueName: "seconds",
        help: "Longer poll timeouts are lowered to this.")
    static let corsOrigin = TextSetting("cors-origin", "PLEXOR_CORS_ORIGIN", valueName: "origin",
        help: "Access-Control-Allow-Origin; empty sends no CORS headers.", default: defaults.corsOrigin, defaultDescription: defaults.corsOrigin ?? "none")
    static let publicURL = TextSetting("public-url", "PLEXOR_PUBLIC_URL", valueName: "url",
        help: "How browsers reach this gateway (https://chat.example.net), when a proxy is in front: sign-in cookies are Secure under https, and the OpenID Connect provider sends people back here.",
        defaultDescription: "http://HOST:PORT")
    static let oidcIssuer = TextSetting("oidc-issuer", "PLEXOR_OIDC_ISSUER", valueName: "url",
        help: "An OpenID Connect provider for the chat's sign-in window (its issuer URL); with --oidc-client-id and --oidc-client-secret.")
    static let oidcClientID = TextSetting("oidc-client-id", "PLEXOR_OIDC_CLIENT_ID", valueName: "id",
        help: "This gateway's client id at the OpenID Connect provider.")
    static let oidcClientSecret = TextSetting("oidc-client-secret", "PLEXOR_OIDC_CLIENT_SECRET", valueName: "secret",
        help: "Its client secret (better given in the environment than on the command line).")
    static let oidcName = TextSetting("oidc-name", "PLEXOR_OIDC_NAME", valueName: "name",
        help: "What the sign-in button says: \"Sign in with NAME\".", defaultDescription: "the issuer's host")
    static let apiToken = TextSetting("api-token", "PLEXOR_API_TOKEN", valueName: "token",
        help: "Enables the server-side API (POST /publish, GET /online, GET /watch) for requests with Authorization: Bearer <token>.")
    /// The name `--api-token` had before the API grew beyond publishing; still accepted.
    static let publishToken = TextSetting("publish-token", "PLEXOR_PUBLISH_TOKEN", valueName: "token",
        help: "The same as --api-token (its earlier name).")
    static let maxBodyBytes = IntegerSetting("max-body-bytes", "PLEXOR_MAX_BODY_BYTES", \.maximumBodyBytes,
        range: 1...(1 << 30), valueName: "bytes",
        help: "Largest request body, in bytes.")
    static let retentionMaxAge = IntegerSetting("retention-max-age", "PLEXOR_RETENTION_MAX_AGE",
        zeroMeaningNone: \.retention.maximumAgeSeconds, range: 0...Int(Int32.max), valueName: "seconds",
        help: "Drop messages older than this many seconds; 0 keeps them.")
    static let retentionMaxPerTag = IntegerSetting("retention-max-per-tag", "PLEXOR_RETENTION_MAX_PER_TAG",
        zeroMeaningNone: \.retention.maximumPerTag, range: 0...Int(Int32.max), valueName: "n",
        help: "Keep at most this many messages per tag; 0 keeps all.")
    static let retentionInterval = IntegerSetting("retention-interval", "PLEXOR_RETENTION_INTERVAL",
        range: 1...86_400, valueName: "seconds",
        help: "Seconds between retention runs.",
        get: { Int($0.retentionInterval.nanoseconds / 1_000_000_000) },
        set: { $0.retentionInterval = .seconds(Int64($1)) })
    static let presence = TextSetting("presence", "PLEXOR_PRESENCE", valueName: "on|off",
        help: "Track who is online (listeners per tag, on every gateway, through PostgreSQL).", default: "on")
    static let presencePrefixes = TextSetting("presence-prefixes", "PLEXOR_PRESENCE_PREFIXES", valueName: "a,b",
        help: "Track presence only for tags starting with one of these comma-separated prefixes.", defaultDescription: "every tag")
    static let privatePrefixes = TextSetting("private-prefix", "PLEXOR_PRIVATE_PREFIX", valueName: "a,b",
        help: "Tags starting with one of these comma-separated prefixes may be polled only with a token Plexor signed for them (chat presence tags always need one).",
        defaultDescription: "none")
    static let trustedProxies = TextSetting("trusted-proxies", "PLEXOR_TRUSTED_PROXIES", valueName: "a,b",
        help: "Proxies (addresses or networks, like 127.0.0.1,10.0.0.0/8) whose X-Forwarded-For names the client, for the chat's per-address limits and bans.",
        defaultDescription: "none")
    static let presenceGrace = IntegerSetting("presence-grace", "PLEXOR_PRESENCE_GRACE", \.presence.graceSeconds,
        range: 0...86_400, valueName: "seconds",
        help: "A tag stays online this long after its last listener on any gateway went away.")
    static let presenceHeartbeatTimeout = IntegerSetting("presence-heartbeat-timeout", "PLEXOR_PRESENCE_HEARTBEAT_TIMEOUT",
        \.presence.heartbeatTimeoutSeconds, range: 2...3600, valueName: "seconds",
        help: "A gateway silent this long is taken for dead by the others, and its listeners removed (gateways heartbeat every second).")
    static let presenceRetention = IntegerSetting("presence-retention", "PLEXOR_PRESENCE_RETENTION", \.presence.retentionSeconds,
        range: 60...Int(Int32.max), valueName: "seconds",
        help: "Online/offline events older than this are removed.")
    static let guestSessionsPerMinute = IntegerSetting("guest-sessions-per-minute", "PLEXOR_GUEST_SESSIONS_PER_MINUTE",
        \.guestSessionsPerMinute, range: 1...100_000, valueName: "n",
        help: "Chat guest sessions one IP address may start a minute (bursts of a third of that); behind a proxy, see --trusted-proxies.")
    static let catchUpLimit = IntegerSetting("catch-up-limit", "PLEXOR_CATCH_UP_LIMIT", \.catchUpLimitPerTag,
        range: 1...100_000, valueName: "n",
        help: "Messages one catch-up reads per tag.")
    static let queryConnections = IntegerSetting("query-connections", "PLEXOR_QUERY_CONNECTIONS", \.queryConnections,
        range: 1...1000, valueName: "n",
        help: "Database connections for catch-up queries.")
    static let threads = IntegerSetting("threads", "PLEXOR_THREADS", \.eventLoopThreads,
        range: 1...ListenRegistry.maximumSinks, valueName: "n",
        help: "Event loop threads.", defaultDescription: "one per core")

    /// Not part of a gateway's configuration: stored in the database, and
    /// set only when given (on `serve` and on `migrate`).
    static let maxDataBytes = IntegerSetting("max-data-bytes", "PLEXOR_MAX_DATA_BYTES",
        range: 1...(1 << 30), valueName: "bytes",
        help: "Largest message data the database accepts, in bytes (stored in the database).",
        get: { _ in 262_144 }, set: { _, _ in })

    static let logLevel = TextSetting("log-level", "PLEXOR_LOG_LEVEL", valueName: "level",
        help: "trace, debug, info, notice, warning, error or critical.", default: defaultLogLevel)
    static let defaultLogLevel = "info"
}
