import NIOCore
import PlexorAccess
import PlexorCore
import PlexorPostgres
import PlexorRealplexor
import PlexorTransport

/// Everything a gateway needs to run; `plexor serve` fills it from flags and
/// environment variables, tests build it directly.
public struct GatewayConfiguration: Sendable {
    /// libpq connection string or URI (`""`: libpq's defaults and `PG*` variables).
    public var connectionString: String
    public var host = "127.0.0.1"
    /// 0 picks a free port (tests).
    public var port = 8080
    /// Lets several gateway processes share `port` (`SO_REUSEPORT`); the
    /// kernel spreads new connections over them.
    public var reusePort = false
    /// A second port with the same routes that only this process listens on,
    /// so each of several processes sharing `port` can be scraped and checked.
    public var statusPort: Int?
    public var pollLimits = PollLimits()
    /// Open connections beyond this get a 503.
    public var maximumConnections = 10_000
    /// `Access-Control-Allow-Origin`; `nil` sends no CORS headers.
    public var corsOrigin: String? = "*"
    /// Enables the server-side API (`POST /publish`, `GET /online`, `GET /watch`)
    /// with `Authorization: Bearer <token>`.
    public var apiToken: String?
    /// Seconds a request may take to arrive whole, head and body, from its first byte (then a 408).
    public var headerTimeoutSeconds = 10
    /// Seconds a keep-alive connection may sit with no request before it is closed.
    public var idleTimeoutSeconds = 60
    /// Largest request body accepted (`POST /publish`).
    public var maximumBodyBytes = 1 << 20
    /// Messages read per tag by one catch-up; more makes the answer come at once.
    public var catchUpLimitPerTag = 100
    /// Connections (and threads) for catch-up and retention queries.
    public var queryConnections = 4
    public var retention = RetentionPolicy(maximumAgeSeconds: 86_400, maximumPerTag: 10_000)
    public var retentionInterval: TimeAmount = .seconds(60)
    /// How long a tag nobody waits for stays LISTENed (with its recent log kept).
    public var listenLinger: TimeAmount = .seconds(30)
    /// Event loops (each with its hub shard); defaults to one per core.
    public var eventLoopThreads = System.coreCount
    /// The `psql` command the front page shows for publishing: set only when
    /// it is safe for anyone to see (the embedded database's local socket,
    /// no password); `nil` shows a generic `psql "$DATABASE_URL"`.
    public var frontPagePsql: String?
    /// Tags under these prefixes (and every chat presence tag) may be polled
    /// only with a token Plexor signed for them.
    public var privatePrefixes: [String] = []
    /// Chat guest sessions one address may start a minute.
    public var guestSessionsPerMinute = 30
    /// Proxies whose `X-Forwarded-For` names the client (for the chat's
    /// per-address limits and bans); nobody's by default.
    public var trustedProxies = TrustedProxies.none
    /// How browsers reach this gateway (`https://chat.example.net`), when it
    /// is behind a proxy: sign-in cookies are `Secure` under https, and the
    /// OpenID Connect provider sends people back here.
    public var publicURL: String?
    /// "Sign in with …" in the chat's sign-in window.
    public var openIDConnect: OpenIDConnect.Provider?
    /// Who is online, shared with every gateway through PostgreSQL.
    public var presence = PresenceSettings()
    /// Realplexor's protocols on ports of their own (off unless a port is set).
    public var realplexor = RealplexorSettings()

    public init(connectionString: String) {
        self.connectionString = connectionString
    }
}

/// Realplexor's WAIT line (browsers) and IN line (application servers).
public struct RealplexorSettings: Sendable {
    /// `--realplexor-wait-port`, on `host`; 0 picks a free port (tests).
    public var waitPort: Int?
    /// `--realplexor-in-port`, on `inHost`.
    public var inPort: Int?
    public var inHost = "127.0.0.1"
    /// `--realplexor-users`: who may use the IN line.
    public var users = RealplexorUsers.open
    /// How long a WAIT request waits for messages (Realplexor's WAIT_TIMEOUT).
    public var waitTimeoutSeconds = 300

    public init() {}
}
