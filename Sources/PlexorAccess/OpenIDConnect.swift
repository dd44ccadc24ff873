import COpenSSLCrypto
import Foundation

/// Signing in with an OpenID Connect provider: the authorization code flow
/// with PKCE (RFC 7636), for a confidential client. No I/O here: what the
/// gateway sends and what it accepts back.
public enum OpenIDConnect {
    /// What the operator configures.
    public struct Provider: Sendable, Equatable {
        /// Exactly as the provider's ID tokens name it in `iss`.
        public var issuer: String
        public var clientID: String
        public var clientSecret: String
        /// "Sign in with …".
        public var name: String
        /// Where the provider sends people back: the gateway's public URL and `/signin/oidc/callback`.
        public var redirectURI: String

        public init(issuer: String, clientID: String, clientSecret: String, name: String, redirectURI: String) {
            self.issuer = issuer
            self.clientID = clientID
            self.clientSecret = clientSecret
            self.name = name
            self.redirectURI = redirectURI
        }
    }

    /// The provider's endpoints, from `ISSUER/.well-known/openid-configuration`.
    public struct Endpoints: Decodable, Sendable, Equatable {
        public var issuer: String
        public var authorizationEndpoint: String
        public var tokenEndpoint: String

        public init(issuer: String, authorizationEndpoint: String, tokenEndpoint: String) {
            self.issuer = issuer
            self.authorizationEndpoint = authorizationEndpoint
            self.tokenEndpoint = tokenEndpoint
        }

        enum CodingKeys: String, CodingKey {
            case issuer
            case authorizationEndpoint = "authorization_endpoint"
            case tokenEndpoint = "token_endpoint"
        }
    }

    /// A sign-in on its way to the provider and back, kept in a signed
    /// cookie on the gateway's origin for ten minutes.
    public struct Pending: Sendable, Equatable {
        public static let kind = "o1"
        public static let cookieName = "plexor_oidc"
        public static let lifetime: Int64 = 600

        public var expires: Int64
        /// Sent as `state` and checked on the way back (a forged callback has no matching cookie).
        public var state: String
        /// Sent as `nonce`; the ID token must carry it.
        public var nonce: String
        /// PKCE: its hash goes out as the challenge, itself only to the token endpoint.
        public var verifier: String
        public var site: String
        public var language: String

        public init(expires: Int64, state: String, nonce: String, verifier: String, site: String, language: String) {
            self.expires = expires
            self.state = state
            self.nonce = nonce
            self.verifier = verifier
            self.site = site
            self.language = language
        }

        /// A new sign-in, with fresh random values.
        public static func start(site: String, language: String, now: Int64) -> Pending {
            Pending(expires: now + Self.lifetime, state: randomToken(), nonce: randomToken(), verifier: randomToken(bytes: 32),
                    site: site, language: language)
        }

        /// `S256`: base64url(SHA-256(verifier)).
        public var challenge: String { Base64URL.encode(sha256(Array(self.verifier.utf8))) }

        public func token(signer: TokenSigner) -> String {
            signer.sign(kind: Self.kind, payload: [String(self.expires), self.state, self.nonce, self.verifier, self.site, self.language]
                .joined(separator: " "))
        }

        /// The pending sign-in in a `Cookie` header, if valid and unexpired.
        public init?(cookieHeader: String?, signer: TokenSigner, now: Int64) {
            guard let cookieHeader else { return nil }
            for pair in cookieHeader.split(separator: ";") {
                let trimmed = pair.drop { $0 == " " }
                guard trimmed.hasPrefix(Self.cookieName + "="),
                      let payload = signer.verify(trimmed.dropFirst(Self.cookieName.count + 1), kind: Self.kind) else { continue }
                let fields = payload.split(separator: " ").map(String.init)
                guard fields.count == 6, let expires = Int64(fields[0]), expires > now else { continue }
                self.init(expires: expires, state: fields[1], nonce: fields[2], verifier: fields[3], site: fields[4], language: fields[5])
                return
            }
            return nil
        }
    }

    /// Where the browser goes to sign in.
    public static func authorizationURL(_ endpoints: Endpoints, _ provider: Provider, _ pending: Pending) -> String? {
        guard var components = URLComponents(string: endpoints.authorizationEndpoint) else { return nil }
        components.queryItems = (components.queryItems ?? []) + [
            URLQueryItem(name: "response_type", value: "code"),
            URLQueryItem(name: "client_id", value: provider.clientID),
            URLQueryItem(name: "redirect_uri", value: provider.redirectURI),
            URLQueryItem(name: "scope", value: "openid profile"),
            URLQueryItem(name: "state", value: pending.state),
            URLQueryItem(name: "nonce", value: pending.nonce),
            URLQueryItem(name: "code_challenge", value: pending.challenge),
            URLQueryItem(name: "code_challenge_method", value: "S256"),
        ]
        // `+` would read as a space in a query.
        components.percentEncodedQuery = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        return components.string
    }

    /// The token request's form body (the client authenticates with HTTP Basic).
    public static func tokenRequestBody(code: String, _ provider: Provider, _ pending: Pending) -> String {
        formEncoded([("grant_type", "authorization_code"), ("code", code), ("redirect_uri", provider.redirectURI),
                     ("code_verifier", pending.verifier)])
    }

    /// `Authorization: Basic …` for the token request (RFC 6749 §2.3.1: each part form-encoded first).
    public static func clientAuthorization(_ provider: Provider) -> String {
        let credentials = formComponent(provider.clientID) + ":" + formComponent(provider.clientSecret)
        return "Basic " + Data(credentials.utf8).base64EncodedString()
    }

    public struct Claims: Sendable, Equatable {
        public var subject: String
        public var name: String

        public init(subject: String, name: String) {
            self.subject = subject
            self.name = name
        }
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case wrongIssuer
        case wrongAudience
        case expired
        case wrongNonce

        public var description: String {
            switch self {
            case .malformed(let what): "the provider's ID token is malformed: \(what)"
            case .wrongIssuer: "the ID token is from another issuer"
            case .wrongAudience: "the ID token is for another client"
            case .expired: "the ID token has expired"
            case .wrongNonce: "the ID token is not for this sign-in (nonce)"
            }
        }
    }

    /// Checks an ID token received straight from the token endpoint over the
    /// connection the gateway opened (OpenID Connect Core §3.1.3.7: TLS
    /// stands for the signature then): issuer, audience, expiry and nonce.
    public static func claims(idToken: String, _ provider: Provider, nonce: String, now: Int64) throws(Failure) -> Claims {
        let parts = idToken.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, idToken.utf8.count <= 16_384, let payload = Base64URL.decode(parts[1]),
              let object = try? JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any] else {
            throw .malformed("not a JWT with a JSON payload")
        }
        guard object["iss"] as? String == provider.issuer else { throw .wrongIssuer }
        let audiences = (object["aud"] as? [String]) ?? [(object["aud"] as? String)].compactMap { $0 }
        guard audiences.contains(provider.clientID) else { throw .wrongAudience }
        if audiences.count > 1 { guard object["azp"] as? String == provider.clientID else { throw .wrongAudience } }
        guard let expires = (object["exp"] as? NSNumber)?.int64Value, expires > now else { throw .expired }
        guard object["nonce"] as? String == nonce else { throw .wrongNonce }
        guard let subject = object["sub"] as? String, (1...255).contains(subject.count) else { throw .malformed("no sub") }
        let name = [object["name"], object["preferred_username"], object["nickname"]].compactMap { $0 as? String }
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.first { !$0.isEmpty } ?? "User \(subject.prefix(8))"
        return Claims(subject: subject, name: String(name.prefix(64)))
    }
}

/// `bytes` random bytes (the system's secure generator) as base64url.
func randomToken(bytes: Int = 16) -> String {
    var generator = SystemRandomNumberGenerator()
    return Base64URL.encode((0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) })
}

/// SHA-256 of `bytes`.
public func sha256(_ bytes: [UInt8]) -> [UInt8] {
    var digest = [UInt8](repeating: 0, count: 32)
    let done = bytes.withUnsafeBytes { plexor_sha256($0.baseAddress, $0.count, &digest) }
    precondition(done == 1, "SHA-256 failed")
    return digest
}

/// `application/x-www-form-urlencoded`.
func formEncoded(_ fields: [(String, String)]) -> String {
    fields.map { formComponent($0.0) + "=" + formComponent($0.1) }.joined(separator: "&")
}

func formComponent(_ text: String) -> String {
    text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
}

/// RFC 3986's unreserved characters: everything else is percent-encoded.
private let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
