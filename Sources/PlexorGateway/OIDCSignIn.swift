import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import NIOCore
import PlexorAccess
import PlexorChat
import PlexorPostgres
import Synchronization

/// "Sign in with …" in the sign-in window: the authorization code flow with
/// PKCE against the operator's OpenID Connect provider. The gateway talks to
/// the provider itself (discovery, the token request) with URLSession.
final class OIDCSignIn: Sendable {
    let provider: OpenIDConnect.Provider
    var providerName: String { self.provider.name }
    /// The provider's endpoints, read once.
    private let endpoints = Mutex<OpenIDConnect.Endpoints?>(nil)
    private let session: URLSession

    init(_ provider: OpenIDConnect.Provider) {
        self.provider = provider
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 10
        self.session = URLSession(configuration: configuration)
    }

    /// `GET /signin/oidc/start?site=…&lang=…`: off to the provider, with the pending sign-in in a cookie.
    func start(query: String, signer: TokenSigner, secureCookies: Bool, on loop: any EventLoop) -> EventLoopFuture<PageReply> {
        let parameters = queryParameters(query)
        guard let site = parameters["site"], Room.isSite(site) else {
            return loop.makeSucceededFuture(.error(.badRequest, "site must name a chat site"))
        }
        let pending = OpenIDConnect.Pending.start(site: site, language: parameters["lang"] == "ru" ? "ru" : "en",
                                                  now: Int64(Date().timeIntervalSince1970))
        return self.future(on: loop) {
            guard let url = OpenIDConnect.authorizationURL(try await self.discover(), self.provider, pending) else {
                return .error(.badGateway, "The sign-in provider's authorization endpoint is not a URL.")
            }
            let cookie = "\(OpenIDConnect.Pending.cookieName)=\(pending.token(signer: signer)); Path=/signin/oidc; "
                + "Max-Age=\(OpenIDConnect.Pending.lifetime); HttpOnly; SameSite=Lax" + (secureCookies ? "; Secure" : "")
            return PageReply(status: .seeOther, contentType: "text/plain; charset=utf-8", body: "",
                             headers: [("Location", url), ("Set-Cookie", cookie)])
        }
    }

    /// `GET /signin/oidc/callback?code=…&state=…`: the code for an ID token, the token's claims for an identity.
    func callback(query: String, cookie: String?, signer: TokenSigner, pool: PostgresPool,
                  on loop: any EventLoop) -> EventLoopFuture<(identity: Int64, pending: OpenIDConnect.Pending)?> {
        let parameters = queryParameters(query)
        let now = Int64(Date().timeIntervalSince1970)
        guard let pending = OpenIDConnect.Pending(cookieHeader: cookie, signer: signer, now: now),
              parameters["state"] == pending.state, let code = parameters["code"], !code.isEmpty, code.utf8.count <= 4096 else {
            return loop.makeSucceededFuture(nil)
        }
        return self.future(on: loop) {
            let endpoints = try await self.discover()
            guard let url = URL(string: endpoints.tokenEndpoint) else { return nil }
            var request = URLRequest(url: url)
            request.httpMethod = "POST"
            request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
            request.setValue("application/json", forHTTPHeaderField: "Accept")
            request.setValue(OpenIDConnect.clientAuthorization(self.provider), forHTTPHeaderField: "Authorization")
            request.httpBody = Data(OpenIDConnect.tokenRequestBody(code: code, self.provider, pending).utf8)
            let (data, response) = try await self.session.data(for: request)
            guard (response as? HTTPURLResponse)?.statusCode == 200, data.count <= 65_536,
                  let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let idToken = object["id_token"] as? String else { return nil }
            let claims = try OpenIDConnect.claims(idToken: idToken, self.provider, nonce: pending.nonce, now: now)
            let identity = try await pool.withConnection(on: loop) { connection in
                try connection.chatIdentityOIDC(issuer: self.provider.issuer, subject: claims.subject, name: claims.name,
                                                provider: self.provider.name)
            }.get()
            return (identity, pending)
        }
    }

    /// The provider's endpoints, from its discovery document (once).
    private func discover() async throws -> OpenIDConnect.Endpoints {
        if let known = self.endpoints.withLock({ $0 }) { return known }
        let base = self.provider.issuer.hasSuffix("/") ? String(self.provider.issuer.dropLast()) : self.provider.issuer
        guard let url = URL(string: base + "/.well-known/openid-configuration") else { throw OIDCUnavailable() }
        let (data, response) = try await self.session.data(from: url)
        guard (response as? HTTPURLResponse)?.statusCode == 200, data.count <= 262_144 else { throw OIDCUnavailable() }
        let endpoints = try JSONDecoder().decode(OpenIDConnect.Endpoints.self, from: data)
        // A discovery document for another issuer is not this provider's.
        guard endpoints.issuer == self.provider.issuer else { throw OIDCUnavailable() }
        self.endpoints.withLock { $0 = endpoints }
        return endpoints
    }

    /// Runs `body` as a task; its result (or nil on failure) completes a future on `loop`.
    private func future<T: Sendable>(on loop: any EventLoop, _ body: @escaping @Sendable () async throws -> T) -> EventLoopFuture<T> {
        let promise = loop.makePromise(of: T.self)
        Task {
            do {
                promise.succeed(try await body())
            } catch {
                promise.fail(error)
            }
        }
        return promise.futureResult
    }
}

struct OIDCUnavailable: Error {}
