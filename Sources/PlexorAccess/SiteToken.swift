import Foundation

/// What a site vouches for about one of its users, read from the token its
/// backend signs: a JWT with HS256 under the site's secret, claims `sub`,
/// `name`, `exp` (at most ten minutes ahead) and optionally `avatar` (a
/// URL) and `mod` (true for a moderator).
public struct SiteToken: Sendable, Equatable {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case algorithm(String)
        case signature
        case expired
        case tooLongLived

        public var description: String {
            switch self {
            case .malformed(let what): "the site token is malformed: \(what)"
            case .algorithm(let algorithm): "the site token must be signed with HS256, not \(algorithm)"
            case .signature: "the site token's signature does not match the site's secret"
            case .expired: "the site token has expired"
            case .tooLongLived: "the site token expires more than \(SiteToken.maximumLifetime / 60) minutes ahead; sign short-lived tokens"
            }
        }
    }

    /// Seconds ahead a token may expire.
    public static let maximumLifetime: Int64 = 600
    /// Clocks differ: a token may expire this much later than the limit allows.
    public static let clockSkew: Int64 = 60
    public static let maximumBytes = 4096

    public var subject: String
    public var name: String
    public var avatar: String?
    public var moderator: Bool
    public var expires: Int64

    public init(subject: String, name: String, avatar: String?, moderator: Bool, expires: Int64) {
        self.subject = subject
        self.name = name
        self.avatar = avatar
        self.moderator = moderator
        self.expires = expires
    }

    private struct Header: Decodable {
        var alg: String
    }

    private struct Claims: Decodable {
        var sub: String
        var name: String
        var avatar: String?
        var mod: Bool?
        var exp: Int64
    }

    /// Checks the signature first and reads the claims only then; the
    /// algorithm must be HS256 (so `none`, or a public-key algorithm used
    /// with the secret, is refused).
    public static func verify(_ token: String, secret: [UInt8], now: Int64) throws(Failure) -> SiteToken {
        guard token.utf8.count <= Self.maximumBytes else { throw .malformed("longer than \(Self.maximumBytes) bytes") }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("a JWT has three parts separated by dots") }
        guard let headerBytes = Base64URL.decode(parts[0]), let claimBytes = Base64URL.decode(parts[1]),
              let mac = Base64URL.decode(parts[2]) else { throw .malformed("a part is not base64url") }
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: Data(headerBytes))
        } catch {
            throw .malformed("the header is not a JSON object with alg")
        }
        guard header.alg == "HS256" else { throw .algorithm(String(header.alg.prefix(20))) }
        guard let key = HMACKey(secret), key.verifies(mac, of: token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count)) else {
            throw .signature
        }
        let claims: Claims
        do {
            claims = try JSONDecoder().decode(Claims.self, from: Data(claimBytes))
        } catch {
            throw .malformed("the claims need sub and name (strings), exp (whole seconds), and optionally avatar (a string) and mod (true or false)")
        }
        guard claims.exp > now else { throw .expired }
        guard claims.exp <= now + Self.maximumLifetime + Self.clockSkew else { throw .tooLongLived }
        guard !claims.sub.isEmpty, claims.sub.count <= 255 else { throw .malformed("sub must be 1 to 255 characters") }
        return SiteToken(subject: claims.sub, name: claims.name, avatar: claims.avatar, moderator: claims.mod ?? false,
                         expires: claims.exp)
    }

    /// Signs a token as a site's backend would (for tests and examples).
    public static func sign(header: String = #"{"alg":"HS256","typ":"JWT"}"#, claims: String, secret: [UInt8]) -> String {
        let body = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(claims.utf8))
        return body + "." + Base64URL.encode(HMACKey(secret)!.mac(Array(body.utf8)))
    }
}
