import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import PlexorAccess
import PlexorHTTPClient
import PlexorPostgres
import Synchronization

/// Chat rooms under load: chatters in rooms, each following its room (and
/// present in it, as the widget will be) with one poll, while posts arrive at
/// a fixed total rate. Measures post → every other member of the room has it,
/// checks that every member got every post of its room once and in order,
/// then repeats with one chatter flooding, who must be limited without
/// raising the others' latency.
struct Chat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chatters in rooms posting at a fixed rate: post → room latency, losses, and a flood that must not hurt the others.")

    @OptionGroup var target: TargetOptions
    @OptionGroup var results: ResultOptions
    @Option(help: "Chatters (each with a connection following its room).") var chatters = 1000
    @Option(help: "Rooms, the chatters spread evenly over them.") var rooms = 100
    @Option(help: "Posts per second, in total.") var rate = 50
    @Option(help: "Seconds each phase (calm, then one flooder) runs.") var seconds = 10
    @Option(help: "Connections that carry the posts.") var postingConnections = 20

    struct Member: Sendable {
        var index: Int
        var room: String
        var key: String
        var session: String
    }

    func run() async throws {
        guard self.target.server == .plexor, let databaseURL = self.target.databaseURL else {
            throw ValidationError("chat runs against plexor with --database-url (to make the site)")
        }
        // A site whose address limit suits a benchmark whose chatters all come from loopback; the person limit stays the default.
        let site = "bench-\(UInt32.random(in: 0...UInt32.max))"
        let owner = try PostgresConnection(databaseURL)
        let secret = try owner.chatSiteAdd(name: site, origins: [])
        _ = try owner.chatSiteSet(name: site, settings: #"{"ip_rate":60000}"#)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

        // Site-verified members, each with a session.
        var members: [Member] = []
        let signer = try await self.target.connect(index: 0, group: group)
        for index in 0..<self.chatters {
            let claims = #"{"sub":"member-\#(index)","name":"Member \#(index)","exp":\#(Int(Date().timeIntervalSince1970) + 300)}"#
            let token = SiteToken.sign(claims: claims, secret: Array(secret.utf8))
            let answer = try await signer.request(.POST, "/chat/session", body: #"{"site":"\#(site)","token":"\#(token)"}"#)
            guard answer.status == .created, let object = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any],
                  let session = object["session"] as? String, let user = object["user"] as? [String: Any], let key = user["key"] as? String else {
                throw ValidationError("a session was refused: \(answer.status) \(answer.body)")
            }
            members.append(Member(index: index, room: "\(site)/room-\(index % self.rooms)", key: key, session: session))
        }
        await signer.close()

        // Every member follows its room and is present in it, one poll each.
        let receipts = ReceiptLog()
        let stop = Counter()  // above 0: stop
        var followers: [Task<Void, Error>] = []
        var connections: [HTTPClientConnection] = []
        for member in members {
            let connection = try await self.target.connect(index: member.index, group: group)
            connections.append(connection)
            followers.append(Task { try await follow(member, connection, receipts: receipts, stop: stop) })
        }
        let status = try await ServerStatus.open(self.target)
        try await status.waitFor(self.chatters, timeout: .seconds(300))
        // Everyone present: each member has seen the join of everyone in its room (itself too) before anything is timed.
        let joins = members.count * (members.count / self.rooms)
        let settleStart = ContinuousClock.now
        while receipts.joins < joins {
            guard ContinuousClock.now - settleStart < .seconds(120) else { throw ValidationError("only \(receipts.joins) of \(joins) joins arrived") }
            try await Task.sleep(for: .milliseconds(50))
        }

        var posters: [HTTPClientConnection] = []
        for index in 0..<self.postingConnections { posters.append(try await self.target.connect(index: index, group: group)) }
        let calm = try await self.phase(members, posters, flooder: nil, group: group)
        let flooded = try await self.phase(members, posters, flooder: members[0], group: group)
        // Every post reaches every member within a few seconds, or is lost.
        try await Task.sleep(for: .seconds(3))
        stop.increment()
        for connection in connections + posters { await connection.close() }
        for follower in followers { _ = try? await follower.value }
        await status.close()
        try await group.shutdownGracefully()
        try self.report(members, calm: calm, flooded: flooded, receipts: receipts)
    }

    struct Phase {
        var name: String
        /// Message id → when its POST was sent, and its room.
        var posts: [Int64: (sent: NIODeadline, room: String, author: String)] = [:]
        var postRoundTrips: [Double] = []
        var refusedPosts = 0
        var flood = (accepted: 0, refused: 0)
    }

    /// `rate` posts a second for `seconds`, spread over the posting
    /// connections; with a flooder posting back to back meanwhile.
    private func phase(_ members: [Member], _ posters: [HTTPClientConnection], flooder: Member?, group: EventLoopGroup) async throws -> Phase {
        let total = self.rate * self.seconds
        let interval = 1.0 / Double(self.rate)
        let start = NIODeadline.now()
        var floodTask: Task<(accepted: Int, refused: Int), Error>?
        if let flooder {
            let connection = try await self.target.connect(index: 0, group: group)
            let end = start + .seconds(Int64(self.seconds))
            floodTask = Task {
                var counts = (accepted: 0, refused: 0)
                var index = 0
                while NIODeadline.now() < end {
                    let answer = try await connection.request(.POST, "/chat/\(flooder.room)/messages", headers: [("Authorization", "Bearer \(flooder.session)")],
                                                              body: #"{"text":"flood \#(index)"}"#)
                    if answer.status == .created { counts.accepted += 1 } else if answer.status == .tooManyRequests { counts.refused += 1 }
                    index += 1
                }
                await connection.close()
                return counts
            }
        }
        let workers = posters.enumerated().map { worker, connection in
            Task { () -> Phase in
                var phase = Phase(name: "")
                for number in stride(from: worker, to: total, by: posters.count) {
                    let due = start + .nanoseconds(Int64(Double(number) * interval * 1e9))
                    let now = NIODeadline.now()
                    if due > now { try await Task.sleep(nanoseconds: UInt64((due - now).nanoseconds)) }
                    // Anyone but the flooder, spread over the rooms.
                    let author = members[1 + (number * 7919) % (members.count - 1)]
                    let sent = NIODeadline.now()
                    let answer = try await connection.request(.POST, "/chat/\(author.room)/messages",
                                                              headers: [("Authorization", "Bearer \(author.session)")],
                                                              body: #"{"text":"post \#(number)"}"#)
                    phase.postRoundTrips.append((answer.receivedAt - sent).milliseconds)
                    guard answer.status == .created, let id = messageID(answer.body) else {
                        phase.refusedPosts += 1
                        continue
                    }
                    phase.posts[id] = (sent, author.room, author.key)
                }
                return phase
            }
        }
        var phase = Phase(name: flooder == nil ? "calm" : "one flooding")
        for worker in workers {
            let part = try await worker.value
            phase.posts.merge(part.posts) { first, _ in first }
            phase.postRoundTrips += part.postRoundTrips
            phase.refusedPosts += part.refusedPosts
        }
        if let floodTask { phase.flood = try await floodTask.value }
        return phase
    }

    private func report(_ members: [Member], calm: Phase, flooded: Phase, receipts: ReceiptLog) throws {
        let received = receipts.all()
        var figures: [String: Any] = ["chatters": self.chatters, "rooms": self.rooms, "rate": self.rate, "seconds": self.seconds]
        var lines: [String] = []
        var lostTotal = 0, duplicatesTotal = 0, disorderedTotal = 0
        for phase in [calm, flooded] {
            var latencies: [Double] = []
            var lost = 0, duplicates = 0
            let byRoom = Dictionary(grouping: members, by: \.room)
            for (id, post) in phase.posts {
                for member in byRoom[post.room] ?? [] where member.key != post.author {
                    let times = received[member.index]?[id] ?? []
                    if times.isEmpty { lost += 1 }
                    if times.count > 1 { duplicates += times.count - 1 }
                    if let first = times.first { latencies.append((first - post.sent).milliseconds) }
                }
            }
            lostTotal += lost
            duplicatesTotal += duplicates
            let statistics = Statistics(latencies)
            let trips = Statistics(phase.postRoundTrips)
            let key = phase.name == "calm" ? "calm" : "flood"
            figures["\(key)_posts"] = phase.posts.count
            figures["\(key)_deliveries"] = latencies.count
            figures["\(key)_median_ms"] = statistics.median
            figures["\(key)_p99_ms"] = statistics.percentile(0.99)
            figures["\(key)_post_median_ms"] = trips.median
            figures["\(key)_post_p99_ms"] = trips.percentile(0.99)
            figures["\(key)_lost"] = lost
            figures["\(key)_refused_posts"] = phase.refusedPosts
            lines.append("\(phase.name): \(phase.posts.count) posts, \(latencies.count) deliveries, lost \(lost), duplicates \(duplicates), refused \(phase.refusedPosts); "
                         + statistics.row(label: "post → room member (ms)") + "; " + trips.row(label: "POST → 201 (ms)"))
            if phase.name != "calm" {
                figures["flood_accepted"] = phase.flood.accepted
                figures["flood_refused"] = phase.flood.refused
                lines.append("the flooder: \(phase.flood.accepted) posts accepted, \(phase.flood.refused) refused with 429 in \(self.seconds) s")
            }
        }
        // Each member's messages of its room arrived in the order of their seqs.
        for (_, order) in receipts.orders() where order != order.sorted() { disorderedTotal += 1 }
        figures["lost"] = lostTotal
        figures["duplicates"] = duplicatesTotal
        figures["out_of_order_members"] = disorderedTotal
        lines.append("lost \(lostTotal), duplicates \(duplicatesTotal), members with messages out of order \(disorderedTotal)")
        try self.results.record("chat", server: "plexor", figures, summary: lines.joined(separator: "\n  "))
    }
}

/// The `id` of a posted message's answer (`{"seq":…,"time":…,"data":{"type":"message","id":N,…}}`).
private func messageID(_ body: String) -> Int64? {
    guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
          let data = object["data"] as? [String: Any] else { return nil }
    return (data["id"] as? NSNumber)?.int64Value
}

/// Follows the member's room with its cursor, present in the room (its presence tag in the same poll), until `stop`.
private func follow(_ member: Chat.Member, _ connection: HTTPClientConnection, receipts: ReceiptLog, stop: Counter) async throws {
    let room = "chat:" + member.room
    let presence = "chat-presence:\(member.room):\(member.key)"
    var cursor: Int64?
    while stop.value == 0 {
        let tags = cursor.map { "\(room)@\($0),\(presence)@0" } ?? "\(room),\(presence)@0"
        let answer = try await connection.request(.GET, "/poll?tags=\(tags)&timeout=30", headers: [("Authorization", "Bearer \(member.session)")])
        guard answer.status == .ok, let object = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any] else {
            throw ValidationError("poll answered \(answer.status): \(answer.body.prefix(200))")
        }
        for message in object["messages"] as? [[String: Any]] ?? [] {
            if (message["data"] as? [String: Any])?["type"] as? String == "join" { receipts.joined() }
            guard let data = message["data"] as? [String: Any], data["type"] as? String == "message",
                  let id = (data["id"] as? NSNumber)?.int64Value,
                  let seq = ((message["tags"] as? [String: Any])?[room] as? NSNumber)?.int64Value else { continue }
            receipts.add(member: member.index, id: id, seq: seq, at: answer.receivedAt)
        }
        cursor = ((object["cursors"] as? [String: Any])?[room] as? NSNumber)?.int64Value ?? cursor
    }
}

/// Every message each member received: when, and in which order of seqs.
final class ReceiptLog: Sendable {
    private let state = Mutex<(times: [Int: [Int64: [NIODeadline]]], seqs: [Int: [Int64]])>(([:], [:]))
    private let joinCount = Atomic<Int>(0)

    /// Join messages received, by all members together.
    var joins: Int { self.joinCount.load(ordering: .relaxed) }

    func joined() {
        self.joinCount.add(1, ordering: .relaxed)
    }

    func add(member: Int, id: Int64, seq: Int64, at time: NIODeadline) {
        self.state.withLock { state in
            state.times[member, default: [:]][id, default: []].append(time)
            state.seqs[member, default: []].append(seq)
        }
    }

    func all() -> [Int: [Int64: [NIODeadline]]] { self.state.withLock { $0.times } }

    func orders() -> [Int: [Int64]] { self.state.withLock { $0.seqs } }
}
