/// Who signed in on the gateway's own origin (the sign-in popup): kept in a
/// first-party cookie there, so a person who signed in once is one click
/// from being themselves in any site's widget.
public struct IdentityToken: Sendable, Equatable {
    public static let kind = "i1"
    public static let cookieName = "plexor_identity"
    /// Seconds a sign-in is remembered.
    public static let lifetime: Int64 = 30 * 86_400

    /// Unix seconds.
    public var expires: Int64
    public var identity: Int64

    public init(expires: Int64, identity: Int64) {
        self.expires = expires
        self.identity = identity
    }

    public init?(token: some StringProtocol, signer: TokenSigner, now: Int64) {
        guard let payload = signer.verify(token, kind: Self.kind) else { return nil }
        let fields = payload.split(separator: " ")
        guard fields.count == 2, let expires = Int64(fields[0]), expires > now, let identity = Int64(fields[1]) else { return nil }
        self.init(expires: expires, identity: identity)
    }

    /// The token in a `Cookie` header, if it is a valid one.
    public init?(cookieHeader: String?, signer: TokenSigner, now: Int64) {
        guard let cookieHeader else { return nil }
        for pair in cookieHeader.split(separator: ";") {
            let trimmed = pair.drop { $0 == " " }
            guard trimmed.hasPrefix(Self.cookieName + "=") else { continue }
            if let token = IdentityToken(token: trimmed.dropFirst(Self.cookieName.count + 1), signer: signer, now: now) {
                self = token
                return
            }
        }
        return nil
    }

    public func token(signer: TokenSigner) -> String {
        signer.sign(kind: Self.kind, payload: "\(self.expires) \(self.identity)")
    }
}
