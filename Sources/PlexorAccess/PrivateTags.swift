/// Which tags only a holder of a signed token may poll: every chat
/// presence tag (polling one makes its person present), and the tags under
/// the configured private prefixes.
public struct PrivateTags: Sendable, Equatable {
    /// `chat-presence:ROOM:PERSON`: a person in a room.
    public static let chatPresencePrefix = "chat-presence:"
    /// `chat:ROOM`: a room's messages.
    public static let chatRoomPrefix = "chat:"

    public var prefixes: [String]

    /// `configured`: the operator's private prefixes (`--private-prefix`).
    public init(configured: [String] = []) {
        self.prefixes = [Self.chatPresencePrefix] + configured.filter { $0 != Self.chatPresencePrefix }
    }

    /// On the poll path for every tag: compared as bytes (tags are ASCII),
    /// without `hasPrefix`'s Unicode rules.
    public func isPrivate(_ tag: String) -> Bool {
        self.prefixes.contains { tag.utf8.starts(with: $0.utf8) }
    }

    /// Whether `credential` lets its holder poll the private `tag`.
    public func allows(_ tag: String, to credential: Credential?) -> Bool {
        switch credential {
        case nil:
            return false
        case .grant(let grant):
            return grant.allows(tag)
        case .session(let session):
            if tag.hasPrefix(Self.chatPresencePrefix) {
                // chat-presence:SITE[/SUB]:PERSON, the session's own site and person.
                let rest = tag.dropFirst(Self.chatPresencePrefix.count)
                guard let colon = rest.lastIndex(of: ":") else { return false }
                return Self.isRoom(rest[..<colon], of: session.site) && rest[rest.index(after: colon)...] == String(session.person)
            }
            if tag.hasPrefix(Self.chatRoomPrefix) {
                return Self.isRoom(tag.dropFirst(Self.chatRoomPrefix.count), of: session.site)
            }
            return false
        }
    }

    private static func isRoom(_ room: Substring, of site: String) -> Bool {
        room == site || room.hasPrefix(site + "/")
    }
}
