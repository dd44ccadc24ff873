import PlexorPostgres
import Synchronization

/// Counters and gauges for `GET /metrics`, shared by all event loops.
public final class GatewayMetrics: Sendable {
    public let openConnections = Atomic<Int>(0)
    /// Open connections beyond this are refused (`--max-connections`, lowered to fit the descriptor limit).
    public let connectionLimit = Atomic<Int>(0)
    public let rejectedConnections = Atomic<Int>(0)
    /// Closed with a 408: a request did not arrive whole in time.
    public let timedOutRequests = Atomic<Int>(0)
    /// Closed after sitting idle.
    public let timedOutIdle = Atomic<Int>(0)
    /// Closed for sending far more than it waited for.
    public let shedConnections = Atomic<Int>(0)
    public let parkedPolls = Atomic<Int>(0)
    public let pollsAnsweredWithMessages = Atomic<Int>(0)
    public let pollsAnsweredEmpty = Atomic<Int>(0)
    public let pollsFailed = Atomic<Int>(0)
    public let messagesDelivered = Atomic<Int>(0)
    public let published = Atomic<Int>(0)
    public let publishFailed = Atomic<Int>(0)
    public let badRequests = Atomic<Int>(0)
    public let catchUps = Atomic<Int>(0)
    /// Polls refused for naming a private tag without a token that covers it.
    public let pollsForbidden = Atomic<Int>(0)
    public let chatPosts = Atomic<Int>(0)
    public let chatRateLimited = Atomic<Int>(0)

    public init() {}

    /// Prometheus text exposition format, with the listener's figures.
    func render(listener: ListenerFigures, presence: PresenceWriter.Status?) -> String {
        var text = ""
        func add(_ name: String, _ type: String, _ help: String, _ value: Int) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        add("plexor_connections_open", "gauge", "Open HTTP connections.", self.openConnections.load(ordering: .relaxed))
        add("plexor_connections_limit", "gauge", "Open connections beyond this are refused with a 503 (--max-connections, lowered to fit the descriptor limit).", self.connectionLimit.load(ordering: .relaxed))
        add("plexor_connections_rejected_total", "counter", "Connections refused at the connection limit.", self.rejectedConnections.load(ordering: .relaxed))
        text += "# HELP plexor_connections_timed_out_total Connections closed for taking too long: a request not whole in time (408), or idle.\n"
        text += "# TYPE plexor_connections_timed_out_total counter\n"
        text += "plexor_connections_timed_out_total{reason=\"request\"} \(self.timedOutRequests.load(ordering: .relaxed))\n"
        text += "plexor_connections_timed_out_total{reason=\"idle\"} \(self.timedOutIdle.load(ordering: .relaxed))\n"
        add("plexor_connections_shed_total", "counter", "Connections closed for sending requests far ahead of reading the answers.", self.shedConnections.load(ordering: .relaxed))
        add("plexor_polls_parked", "gauge", "Polls waiting for a message.", self.parkedPolls.load(ordering: .relaxed))
        text += "# HELP plexor_polls_answered_total Polls answered, by outcome.\n# TYPE plexor_polls_answered_total counter\n"
        text += "plexor_polls_answered_total{outcome=\"messages\"} \(self.pollsAnsweredWithMessages.load(ordering: .relaxed))\n"
        text += "plexor_polls_answered_total{outcome=\"empty\"} \(self.pollsAnsweredEmpty.load(ordering: .relaxed))\n"
        text += "plexor_polls_answered_total{outcome=\"error\"} \(self.pollsFailed.load(ordering: .relaxed))\n"
        add("plexor_polls_forbidden_total", "counter", "Polls refused (403) for a private tag without a token covering it.", self.pollsForbidden.load(ordering: .relaxed))
        add("plexor_chat_posts_total", "counter", "Chat messages posted through this gateway.", self.chatPosts.load(ordering: .relaxed))
        add("plexor_chat_rate_limited_total", "counter", "Chat requests refused by a rate limit (429).", self.chatRateLimited.load(ordering: .relaxed))
        add("plexor_catch_ups_total", "counter", "Catch-up queries run.", self.catchUps.load(ordering: .relaxed))
        add("plexor_messages_delivered_total", "counter", "Messages written to polls.", self.messagesDelivered.load(ordering: .relaxed))
        add("plexor_published_total", "counter", "Messages published over HTTP.", self.published.load(ordering: .relaxed))
        add("plexor_publish_failed_total", "counter", "HTTP publishes that failed.", self.publishFailed.load(ordering: .relaxed))
        add("plexor_bad_requests_total", "counter", "Requests answered with a 4xx.", self.badRequests.load(ordering: .relaxed))
        add("plexor_listener_connected", "gauge", "1 while the LISTEN connection is up.", listener.connected ? 1 : 0)
        add("plexor_listener_ready", "gauge", "1 while every wanted tag is LISTENed.", listener.ready ? 1 : 0)
        add("plexor_listener_tags", "gauge", "Tags known to the listener (LISTENed or about to be).", listener.tags)
        add("plexor_listener_notifications_total", "counter", "Notifications received.", listener.notifications)
        text += "# HELP plexor_listener_notifications_dropped_total Notifications dropped: not signed by the publish trigger, unreadable, or a reference to a message without that tag.\n"
        text += "# TYPE plexor_listener_notifications_dropped_total counter\n"
        for reason in Listener.DroppedNotification.allCases {
            text += "plexor_listener_notifications_dropped_total{reason=\"\(reason.rawValue)\"} \(listener.dropped[reason] ?? 0)\n"
        }
        add("plexor_listener_reconnects_total", "counter", "Times the LISTEN connection was re-established.", listener.reconnects)
        if let presence {
            add("plexor_presence_tracked_tags", "gauge", "Tags with listeners on this gateway (presence).", presence.trackedTags)
            add("plexor_presence_online_tags", "gauge", "Tags online on any gateway, as of the last heartbeat.", Int(presence.onlineTags))
            add("plexor_presence_writes_total", "counter", "Transactions that wrote this gateway's changed listener counts.", presence.writes)
            add("plexor_presence_events_total", "counter", "Online and offline events this gateway's writes and sweeps emitted.", Int(presence.events))
        }
        return text
    }
}

struct ListenerFigures {
    var connected: Bool
    var ready: Bool
    var tags: Int
    var notifications: Int
    var dropped: [Listener.DroppedNotification: UInt64]
    var reconnects: Int
}
