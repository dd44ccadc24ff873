import Foundation

/// Where a `/chat/...` request goes: `/chat/session`, or `/chat/ROOM/ACTION`
/// (the room may hold one `/`; the action is always the last segment).
public enum ChatRoute: Sendable, Equatable {
    public enum Action: String, Sendable {
        case messages, history, presence, moderation
    }

    case session
    case room(Room, Action)

    /// `path`: what follows `/chat/`.
    public init?(path: some StringProtocol) {
        if path == "session" {
            self = .session
            return
        }
        guard let slash = path.lastIndex(of: "/"), let action = Action(rawValue: String(path[path.index(after: slash)...])),
              let room = Room(path[..<slash]) else { return nil }
        self = .room(room, action)
    }
}

/// Bodies of chat requests: JSON objects, at most `maximumBodyBytes`.
public enum ChatBody {
    public static let maximumBodyBytes = 16 * 1024

    /// `POST /chat/session`: a guest's nickname, the site's token for its
    /// user, or `renew` (with the current session as the bearer token).
    public struct Session: Decodable, Sendable {
        public var site: String
        public var guest: String?
        public var token: String?
        public var renew: Bool?
    }

    /// `POST /chat/ROOM/messages`.
    public struct Post: Decodable, Sendable {
        public var text: String
    }

    /// `POST /chat/ROOM/moderation`.
    public struct Moderation: Decodable, Sendable {
        public var action: String
        /// The message (`delete`).
        public var id: Int64?
        /// The person's key (`ban`, `unban`).
        public var user: String?
        /// `ban`: how long; `slow_mode`: one message per this many seconds.
        public var seconds: Int?
        /// `ban`: a guest's address too.
        public var address: Bool?
        public var reason: String?
        /// `guests`.
        public var allowed: Bool?
    }

    /// Decodes `bytes` as `T`, with an error message a client can act on.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], expecting: String) throws(ChatText.Problem) -> T {
        guard bytes.count <= Self.maximumBodyBytes else {
            throw ChatText.Problem(description: "the body is larger than \(Self.maximumBodyBytes) bytes")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch {
            throw ChatText.Problem(description: "the body must be a JSON object \(expecting)")
        }
    }
}
