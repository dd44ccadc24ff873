import NIOCore
import PlexorBytes
import PlexorCore

/// The outcome of publishing one message.
public struct PublishedMessage: Sendable, Equatable {
    public var id: Int64
    public var seqs: [TagSeq]

    public init(id: Int64, seqs: [TagSeq]) {
        self.id = id
        self.seqs = seqs
    }
}

/// Retention: how much of each tag's log to keep. `nil` keeps everything.
public struct RetentionPolicy: Sendable, Equatable {
    public var maximumAgeSeconds: Int?
    public var maximumPerTag: Int?

    public init(maximumAgeSeconds: Int?, maximumPerTag: Int?) {
        self.maximumAgeSeconds = maximumAgeSeconds
        self.maximumPerTag = maximumPerTag
    }

    public var keepsEverything: Bool { self.maximumAgeSeconds == nil && self.maximumPerTag == nil }
}

extension PostgresConnection {
    /// Reads, in one snapshot, each tag's head and the entries after its cursor.
    public func catchUp(_ request: [TagCursor], maximumPerTag: Int) throws -> [TagLogWindow] {
        let tags = ArrayLiteral.make(request.map { Optional($0.tag.name) })
        let cursors = ArrayLiteral.make(request.map(\.cursor))
        return try self.query(
            "SELECT tag, last_seq, first_seq, seq, id, at, data, only_for FROM plexor.catch_up($1, $2, $3)",
            [tags, cursors, String(maximumPerTag)]
        ) { rows in
            var windows: [TagLogWindow] = []
            windows.reserveCapacity(request.count)
            for row in 0..<rows.count {
                if rows.isNull(row, 3) {
                    let index = windows.count
                    precondition(index < request.count && rows.string(row, 0) == request[index].tag.name,
                                 "catch_up returned its tags out of order")
                    windows.append(TagLogWindow(tag: request[index].tag, lastSeq: rows.int64(row, 1)!, firstSeq: rows.int64(row, 2)!))
                } else {
                    let entry = LogEntry(
                        seq: rows.int64(row, 3)!,
                        id: rows.int64(row, 4)!,
                        time: rows.string(row, 5)!,
                        data: rows.bytes(row, 6)!,
                        onlyFor: rows.tagArray(row, 7)?.map(Tag.init(trusted:))
                    )
                    windows[windows.count - 1].entries.append(entry)
                }
            }
            return windows
        }
    }

    /// One message by id, complete, or `nil` when retention removed it.
    public func fetchMessage(id: Int64) throws -> Message? {
        try self.query("SELECT at, tags, seqs, only_for, data FROM plexor.message($1)", [String(id)]) { rows in
            guard rows.count == 1 else { return nil }
            let tags = rows.tagArray(0, 1) ?? []
            let seqs = (rows.tagArray(0, 2) ?? []).compactMap { Int64($0) }
            return Message(
                id: id,
                time: rows.string(0, 0)!,
                seqs: zip(tags, seqs).map { TagSeq(tag: Tag(trusted: $0), seq: $1) },
                onlyFor: rows.tagArray(0, 3)?.map(Tag.init(trusted:)),
                data: rows.bytes(0, 4)!
            )
        }
    }

    /// Publishes messages in one statement (one transaction, one commit).
    public func publish(_ requests: [PublishRequest]) throws -> [PublishedMessage] {
        let tags = ArrayLiteral.make(requests.map { Optional(ArrayLiteral.make($0.tags.map { Optional($0.name) })) })
        let data = ArrayLiteral.make(requests.map { Optional($0.data) })
        let onlyFor = ArrayLiteral.make(requests.map { request in
            request.onlyFor.map { ArrayLiteral.make($0.map { Optional($0.name) }) }
        })
        return try self.query("SELECT ord, id, tag, seq FROM plexor.publish_batch($1, $2, $3)", [tags, data, onlyFor]) { rows in
            var published = [PublishedMessage](repeating: PublishedMessage(id: 0, seqs: []), count: requests.count)
            for row in 0..<rows.count {
                let index = Int(rows.int64(row, 0)!) - 1
                published[index].id = rows.int64(row, 1)!
                published[index].seqs.append(TagSeq(tag: Tag(trusted: rows.string(row, 2)!), seq: rows.int64(row, 3)!))
            }
            return published
        }
    }

    /// The key the publish trigger signs its payloads with (readable by the
    /// schema owner and `plexor_gateway` only); the access tokens' key is derived from it.
    public func notificationKey() throws -> [UInt8] {
        let key = try self.query("SELECT encode(key, 'hex') FROM plexor.notification_key") { rows in
            rows.count == 1 ? rows.string(0, 0).flatMap { hexDecoded(Array($0.utf8)) } : nil
        }
        guard let key, !key.isEmpty else {
            throw PostgresError(kind: .other, message: "plexor.notification_key holds no usable key; run `plexor migrate`")
        }
        return key
    }

    /// The NOTIFY channel of each tag, as the database computes it.
    public func channels(for tags: [Tag]) throws -> [String] {
        try self.query("SELECT plexor.channel(t) FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n",
                       [ArrayLiteral.make(tags.map { Optional($0.name) })]) { rows in
            (0..<rows.count).map { rows.string($0, 0)! }
        }
    }

    /// Applies the retention policy; `nil` when another gateway is trimming.
    public func trim(_ policy: RetentionPolicy) throws -> Int64? {
        try self.query("SELECT plexor.trim($1::interval, $2)", [
            policy.maximumAgeSeconds.map { "\($0) seconds" },
            policy.maximumPerTag.map(String.init),
        ]) { rows in rows.int64(0, 0) }
    }

    /// Sets the largest `data` the database accepts, in bytes.
    public func setMaximumDataBytes(_ bytes: Int) throws {
        try self.execute("UPDATE plexor.settings SET value = $1 WHERE name = 'max_data_bytes'", [String(bytes)])
    }
}
