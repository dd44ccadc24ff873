import NIOCore
import PlexorCore
import PlexorPostgres
import Synchronization

/// `GET /online` and `GET /watch` for application servers: presence read
/// from PostgreSQL. A `/watch` with nothing to say waits until the event
/// stream moves past its position (the presence writer looks once an
/// interval) or its timeout passes.
final class PresenceAPI: Sendable {
    /// Events in one `/watch` answer at most; its cursor says where the rest begin.
    static let pageLimit = 1000

    typealias Respond = @Sendable (Result<String, any Error>) -> Void

    private struct Watcher {
        var request: PresenceRequest
        var after: Int64
        var deadline: NIODeadline
        var loop: any EventLoop
        var respond: Respond
        /// A read is on its way (a wake-up must not start another).
        var looking = true
    }

    private let pool: PostgresPool
    private let waiting = Mutex<(next: UInt64, watchers: [UInt64: Watcher])>((0, [:]))
    /// Shutting down: a watch with nothing to say is answered rather than made to wait.
    private let draining = Atomic<Bool>(false)

    init(pool: PostgresPool) {
        self.pool = pool
    }

    func online(_ request: PresenceRequest, on loop: any EventLoop) -> EventLoopFuture<String> {
        self.pool.withConnection(on: loop) { connection in
            let online = try connection.online(prefixes: request.prefixes)
            var body = "{\"online\":{"
            body.reserveCapacity(24 + online.count * 24)
            for (index, entry) in online.enumerated() {
                if index > 0 { body += "," }
                body += JSONString.quoted(entry.tag)
                body += ":"
                body += String(entry.listeners)
            }
            return body + "}}"
        }
    }

    /// Answers through `respond`, on `loop`: at once when events after the
    /// request's position exist (or it may not wait), else when some come
    /// or at its timeout. Returns an id to cancel it with.
    func watch(_ request: PresenceRequest, on loop: any EventLoop, respond: @escaping Respond) -> UInt64 {
        let deadline = NIODeadline.now() + .seconds(Int64(request.timeout))
        let watcher = Watcher(request: request, after: request.after ?? Int64.max, deadline: deadline, loop: loop, respond: respond)
        let id = self.waiting.withLock { state in
            state.next += 1
            state.watchers[state.next] = watcher
            return state.next
        }
        self.look(id, watcher)
        return id
    }

    /// The client went away.
    func cancel(_ id: UInt64) {
        _ = self.waiting.withLock { $0.watchers.removeValue(forKey: id) }
    }

    /// The stream's last position, as the presence writer last saw it (any
    /// thread, once an interval): watchers behind it look again; those past
    /// their deadline are answered with nothing new.
    func positionMoved(_ position: Int64) {
        let now = NIODeadline.now()
        let due = self.waiting.withLock { state in
            let due = state.watchers.filter { !$0.value.looking && ($0.value.after < position || $0.value.deadline <= now) }
            for (id, watcher) in due {
                if watcher.deadline <= now {
                    state.watchers.removeValue(forKey: id)
                } else {
                    state.watchers[id]!.looking = true
                }
            }
            return due
        }
        for (id, watcher) in due {
            if watcher.deadline <= now {
                watcher.loop.execute { watcher.respond(.success(Self.answer(events: [], cursor: watcher.after, reset: nil))) }
            } else {
                self.look(id, watcher)
            }
        }
    }

    /// Graceful shutdown: every waiting watch is answered with its cursor
    /// (the client watches on at another gateway).
    func drain() {
        self.draining.store(true, ordering: .relaxed)
        let waiting = self.waiting.withLock { state in
            let idle = state.watchers.filter { !$0.value.looking }
            for id in idle.keys { state.watchers.removeValue(forKey: id) }
            return idle.values
        }
        for watcher in waiting {
            watcher.loop.execute { watcher.respond(.success(Self.answer(events: [], cursor: watcher.after, reset: nil))) }
        }
    }

    /// Reads events after the watcher's position; answers, or waits.
    private func look(_ id: UInt64, _ watcher: Watcher) {
        let request = watcher.request
        self.pool.withConnection(on: watcher.loop) { connection in
            try connection.presencePage(after: watcher.after, prefixes: request.prefixes, limit: Self.pageLimit)
        }.whenComplete { result in
            let page: PresencePage
            switch result {
            case .failure(let error):
                guard self.finish(id) else { return }
                return watcher.respond(.failure(error))
            case .success(let read):
                page = read
            }
            var reset: (reason: String, cursor: Int64)?
            var after = watcher.after
            if request.after == nil && after == Int64.max {
                after = page.lastPosition  // from now
            } else if after > page.lastPosition {
                reset = ("ahead", page.lastPosition)
                after = page.lastPosition
            } else if after < page.trimmedUpTo {
                reset = ("expired", page.trimmedUpTo)
            }
            // Every position up to the head was read, unless the page filled up.
            let cursor = page.events.count >= Self.pageLimit ? page.events.last!.position : max(after, page.lastPosition)
            if !page.events.isEmpty || reset != nil || request.timeout == 0 || watcher.deadline <= .now()
                || self.draining.load(ordering: .relaxed) {
                guard self.finish(id) else { return }
                return watcher.respond(.success(Self.answer(events: page.events, cursor: cursor, reset: reset)))
            }
            self.waiting.withLock { state in
                // Unless the client went away meanwhile.
                guard state.watchers[id] != nil else { return }
                state.watchers[id]!.after = cursor
                state.watchers[id]!.looking = false
            }
        }
    }

    /// Forgets a watcher about to be answered; false when its client went away.
    private func finish(_ id: UInt64) -> Bool {
        self.waiting.withLock { $0.watchers.removeValue(forKey: id) != nil }
    }

    static func answer(events: [PresenceEvent], cursor: Int64, reset: (reason: String, cursor: Int64)?) -> String {
        var body = "{\"events\":["
        body.reserveCapacity(32 + events.count * 96)
        for (index, event) in events.enumerated() {
            if index > 0 { body += "," }
            body += "{\"pos\":\(event.position),\"tag\":\(JSONString.quoted(event.tag)),\"event\":\"\(event.kind.rawValue)\",\"time\":\"\(event.time)\"}"
        }
        body += "],\"cursor\":\(cursor)"
        if let reset {
            body += ",\"reset\":{\"reason\":\"\(reset.reason)\",\"cursor\":\(reset.cursor)}"
        }
        return body + "}"
    }
}
