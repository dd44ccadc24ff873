/// Lets its holder poll private tags: the tags it names, and those starting
/// with an entry that ends in `*`. Made by `plexor.grant_access(tags,
/// seconds)` (for any application's server) and sent with the poll as
/// `Authorization: Bearer <token>`.
public struct AccessGrant: Sendable, Equatable {
    public static let kind = "g1"

    /// Unix seconds.
    public var expires: Int64
    public var entries: [String]

    public init(expires: Int64, entries: [String]) {
        self.expires = expires
        self.entries = entries
    }

    /// A valid, unexpired grant; nil otherwise.
    public init?(token: some StringProtocol, signer: TokenSigner, now: Int64) {
        guard let payload = signer.verify(token, kind: Self.kind) else { return nil }
        let fields = payload.split(separator: " ")
        guard fields.count >= 2, fields.count <= 101, let expires = Int64(fields[0]), expires > now else { return nil }
        self.init(expires: expires, entries: fields.dropFirst().map(String.init))
    }

    public func token(signer: TokenSigner) -> String {
        signer.sign(kind: Self.kind, payload: ([String(self.expires)] + self.entries).joined(separator: " "))
    }

    public func allows(_ tag: String) -> Bool {
        self.entries.contains { entry in
            entry.utf8.last == UInt8(ascii: "*") ? tag.hasPrefix(entry.dropLast()) : tag == entry
        }
    }
}

/// A person's chat session on a site, signed by a gateway. Also lets its
/// holder poll the person's own presence tags in the site's rooms, and the
/// site's rooms when they are private.
public struct SessionToken: Sendable, Equatable {
    public static let kind = "s1"

    /// Unix seconds.
    public var expires: Int64
    public var site: String
    public var person: Int64
    /// A guest (stricter rate limits), not a person the site vouched for.
    public var guest: Bool

    public init(expires: Int64, site: String, person: Int64, guest: Bool) {
        self.expires = expires
        self.site = site
        self.person = person
        self.guest = guest
    }

    public init?(token: some StringProtocol, signer: TokenSigner, now: Int64) {
        guard let payload = signer.verify(token, kind: Self.kind) else { return nil }
        let fields = payload.split(separator: " ")
        guard fields.count == 4, let expires = Int64(fields[0]), expires > now, let person = Int64(fields[2]),
              fields[3] == "guest" || fields[3] == "member" else { return nil }
        self.init(expires: expires, site: String(fields[1]), person: person, guest: fields[3] == "guest")
    }

    public func token(signer: TokenSigner) -> String {
        signer.sign(kind: Self.kind, payload: "\(self.expires) \(self.site) \(self.person) \(self.guest ? "guest" : "member")")
    }
}

/// What a request's `Authorization: Bearer` token turned out to be.
public enum Credential: Sendable, Equatable {
    case grant(AccessGrant)
    case session(SessionToken)

    /// The credential in `token`, if it is a valid one of either kind.
    public init?(token: some StringProtocol, signer: TokenSigner, now: Int64) {
        if token.hasPrefix(AccessGrant.kind + "."), let grant = AccessGrant(token: token, signer: signer, now: now) {
            self = .grant(grant)
        } else if token.hasPrefix(SessionToken.kind + "."), let session = SessionToken(token: token, signer: signer, now: now) {
            self = .session(session)
        } else {
            return nil
        }
    }
}
