/// Signs and checks the tokens Plexor hands out: `KIND.PAYLOAD.MAC`, the
/// payload and the MAC in base64url, the MAC (HMAC-SHA-256) taken over
/// `KIND.PAYLOAD`. The key is derived from the database's notification key
/// (`HMAC(key, "plexor token key v1")`), so every gateway, and
/// `plexor.grant_access()` in SQL, signs alike.
public struct TokenSigner: Sendable {
    /// Longest token read; anything longer is refused before any work.
    public static let maximumTokenBytes = 8192

    private let key: HMACKey

    public init?(notificationKey: [UInt8]) {
        guard let root = HMACKey(notificationKey), let key = HMACKey(root.mac(Array("plexor token key v1".utf8))) else { return nil }
        self.key = key
    }

    public func sign(kind: String, payload: String) -> String {
        let body = kind + "." + Base64URL.encode(Array(payload.utf8))
        return body + "." + Base64URL.encode(self.key.mac(Array(body.utf8)))
    }

    /// The payload of a token of this kind signed with this key; nil otherwise.
    public func verify(_ token: some StringProtocol, kind: String) -> String? {
        guard token.utf8.count <= Self.maximumTokenBytes else { return nil }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == kind,
              let payload = Base64URL.decode(parts[1]), let mac = Base64URL.decode(parts[2]) else { return nil }
        let body = token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count)
        guard self.key.verifies(mac, of: body) else { return nil }
        return String(validating: payload, as: UTF8.self)
    }
}
