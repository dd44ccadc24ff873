import NIOCore

/// A message's seq in one of its tags.
public struct TagSeq: Equatable, Sendable {
    public var tag: Tag
    public var seq: Int64

    public init(tag: Tag, seq: Int64) {
        self.tag = tag
        self.seq = seq
    }
}

/// A published message as the gateway delivers it.
public struct Message: Equatable, Sendable {
    public var id: Int64
    /// When it was inserted, UTC, as `2026-11-26T10:00:00.123456Z`.
    public var time: String
    /// Every tag the message carries, with its seq there.
    public var seqs: [TagSeq]
    /// Visibility limiter: only polls listing one of these tags see the message.
    public var onlyFor: [Tag]?
    /// The JSON value exactly as published.
    public var data: ByteBuffer

    public init(id: Int64, time: String, seqs: [TagSeq], onlyFor: [Tag]?, data: ByteBuffer) {
        self.id = id
        self.time = time
        self.seqs = seqs
        self.onlyFor = onlyFor
        self.data = data
    }

    public func seq(for tag: Tag) -> Int64? {
        for entry in self.seqs where entry.tag == tag {
            return entry.seq
        }
        return nil
    }

    /// Whether a poll listing `pollTags` may see this message.
    public func isVisible(to pollTags: [Tag]) -> Bool {
        PlexorCore.isVisible(onlyFor: self.onlyFor, to: pollTags)
    }
}

/// The visibility limiter: a message with `onlyFor` reaches only polls that
/// also list one of those tags.
func isVisible(onlyFor: [Tag]?, to pollTags: [Tag]) -> Bool {
    guard let onlyFor else { return true }
    return onlyFor.contains(where: pollTags.contains)
}

/// The same for a poll of one tag.
func isVisible(onlyFor: [Tag]?, to pollTag: Tag) -> Bool {
    guard let onlyFor else { return true }
    return onlyFor.contains(pollTag)
}

/// A complete message, delivered because it was published to `tag`.
public struct TaggedMessage: Sendable {
    public var tag: Tag
    public var seq: Int64
    public var message: Message

    public init(tag: Tag, seq: Int64, message: Message) {
        self.tag = tag
        self.seq = seq
        self.message = message
    }
}
