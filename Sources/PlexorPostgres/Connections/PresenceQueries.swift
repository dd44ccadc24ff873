import Foundation
import PlexorCore

/// One online/offline transition, at its position in the event stream.
public struct PresenceEvent: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case online, offline
    }

    public var position: Int64
    public var tag: String
    public var kind: Kind
    /// UTC, as `2026-12-02T10:00:00.123456Z`.
    public var time: String

    public init(position: Int64, tag: String, kind: Kind, time: String) {
        self.position = position
        self.tag = tag
        self.kind = kind
        self.time = time
    }
}

/// Events after a position, read in one snapshot.
public struct PresencePage: Sendable, Equatable {
    public var events: [PresenceEvent]
    /// The last position given so far.
    public var lastPosition: Int64
    /// Events up to this position were removed by retention.
    public var trimmedUpTo: Int64
}

/// What a gateway tells the others it is, with its figures for `plexor status`.
public struct GatewayHeartbeat: Sendable, Equatable {
    public var id: UUID
    public var host: String
    public var pid: Int32
    public var port: Int
    public var connections: Int
    public var parked: Int
    public var listened: Int

    public init(id: UUID, host: String, pid: Int32, port: Int, connections: Int, parked: Int, listened: Int) {
        self.id = id
        self.host = host
        self.pid = pid
        self.port = port
        self.connections = connections
        self.parked = parked
        self.listened = listened
    }
}

extension PostgresConnection {
    /// What a heartbeat learns.
    public struct HeartbeatReply: Sendable, Equatable {
        /// The gateway's row was missing: it must report all its counts again.
        public var mustReportAll: Bool
        public var lastPosition: Int64
        public var onlineTags: Int64
    }

    /// Heartbeats, and learns where presence stands.
    public func presenceHeartbeat(_ heartbeat: GatewayHeartbeat) throws -> HeartbeatReply {
        try self.query("SELECT must_report, last_pos, online_tags FROM plexor.presence_heartbeat($1, $2, $3, $4, $5, $6, $7)", [
            heartbeat.id.uuidString, heartbeat.host, String(heartbeat.pid), String(heartbeat.port),
            String(heartbeat.connections), String(heartbeat.parked), String(heartbeat.listened),
        ]) { rows in
            HeartbeatReply(mustReportAll: rows.bool(0, 0) ?? true, lastPosition: rows.int64(0, 1) ?? 0, onlineTags: rows.int64(0, 2) ?? 0)
        }
    }

    /// This gateway's listener counts for tags whose count changed (0: none left); returns the events it caused.
    @discardableResult
    public func presenceReport(gateway: UUID, _ counts: [(tag: Tag, listeners: Int)]) throws -> Int64 {
        guard !counts.isEmpty else { return 0 }
        return try self.query("SELECT plexor.presence_report($1, $2, $3)", [
            gateway.uuidString,
            ArrayLiteral.make(counts.map { Optional($0.tag.name) }),
            ArrayLiteral.make(counts.map { Optional(Int64($0.listeners)) }),
        ]) { rows in rows.int64(0, 0) ?? 0 }
    }

    /// This gateway leaves: its listeners are gone, its tags start their grace period.
    @discardableResult
    public func presenceLeave(gateway: UUID) throws -> Int64 {
        try self.query("SELECT plexor.presence_leave($1)", [gateway.uuidString]) { rows in rows.int64(0, 0) ?? 0 }
    }

    /// Ends grace periods and removes silent gateways; `nil` when another gateway is sweeping.
    public func presenceSweep(grace: Int, heartbeatTimeout: Int) throws -> Int64? {
        try self.query("SELECT plexor.presence_sweep($1::interval, $2::interval)",
                       ["\(grace) seconds", "\(heartbeatTimeout) seconds"]) { rows in rows.int64(0, 0) }
    }

    /// Removes events older than `maximumAgeSeconds`; `nil` when another gateway is trimming.
    public func presenceTrim(maximumAgeSeconds: Int) throws -> Int64? {
        try self.query("SELECT plexor.presence_trim($1::interval)", ["\(maximumAgeSeconds) seconds"]) { rows in rows.int64(0, 0) }
    }

    /// The online tags (optionally with one of `prefixes`) and their listeners on every gateway.
    public func online(prefixes: [String]?) throws -> [(tag: String, listeners: Int64)] {
        try self.query("SELECT tag, listeners FROM plexor.online($1)", [prefixes.map { ArrayLiteral.make($0.map(Optional.some)) }]) { rows in
            (0..<rows.count).map { (rows.string($0, 0)!, rows.int64($0, 1)!) }
        }
    }

    /// At most `limit` events after `position` (with one of `prefixes`), and where the stream stands.
    public func presencePage(after position: Int64, prefixes: [String]?, limit: Int) throws -> PresencePage {
        try self.query("SELECT pos, tag, event, time, last_pos, trimmed_upto FROM plexor.presence_page($1, $2, $3)", [
            String(position), prefixes.map { ArrayLiteral.make($0.map(Optional.some)) }, String(limit),
        ]) { rows in
            var page = PresencePage(events: [], lastPosition: 0, trimmedUpTo: 0)
            for row in 0..<rows.count {
                page.lastPosition = rows.int64(row, 4)!
                page.trimmedUpTo = rows.int64(row, 5)!
                guard let position = rows.int64(row, 0) else { continue }
                page.events.append(PresenceEvent(position: position, tag: rows.string(row, 1)!,
                                                 kind: PresenceEvent.Kind(rawValue: rows.string(row, 2)!)!,
                                                 time: rows.string(row, 3)!))
            }
            return page
        }
    }
}

/// A gateway as its last heartbeat described it (`plexor status`).
public struct GatewayStatus: Sendable, Equatable {
    public var heartbeat: GatewayHeartbeat
    /// Seconds since it started, and since its last heartbeat.
    public var upSeconds: Int
    public var silentSeconds: Int
}

extension PostgresConnection {
    /// The gateways that heartbeat into this database (presence on), by host and port.
    public func gatewayStatuses() throws -> [GatewayStatus] {
        try self.query("""
            SELECT id::text, host, pid, port, connections, parked, listened,
                   extract(epoch FROM clock_timestamp() - started_at)::int, extract(epoch FROM clock_timestamp() - heartbeat_at)::int
            FROM plexor.gateways ORDER BY host, port, pid
            """) { rows in
            (0..<rows.count).map { row in
                GatewayStatus(heartbeat: GatewayHeartbeat(id: UUID(uuidString: rows.string(row, 0)!)!, host: rows.string(row, 1)!,
                                                          pid: Int32(rows.int64(row, 2)!), port: Int(rows.int64(row, 3)!),
                                                          connections: Int(rows.int64(row, 4)!), parked: Int(rows.int64(row, 5)!),
                                                          listened: Int(rows.int64(row, 6)!)),
                              upSeconds: Int(rows.int64(row, 7)!), silentSeconds: Int(rows.int64(row, 8)!))
            }
        }
    }
}
