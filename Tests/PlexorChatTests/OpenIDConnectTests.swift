import Foundation
import PlexorAccess
import Testing

@Suite struct OpenIDConnectTests {
    let provider = OpenIDConnect.Provider(issuer: "https://id.example", clientID: "plexor", clientSecret: "s3cr:et",
                                          name: "Example ID", redirectURI: "https://chat.example.net/signin/oidc/callback")
    let signer = TokenSigner(notificationKey: Array(repeating: 3, count: 32))!

    func idToken(_ claims: [String: Any]) -> String {
        let header = Base64URL.encode(Array(#"{"alg":"RS256"}"#.utf8))
        let payload = Base64URL.encode(Array(try! JSONSerialization.data(withJSONObject: claims)))
        return header + "." + payload + ".c2lnbmF0dXJl"
    }

    var claims: [String: Any] { ["iss": "https://id.example", "aud": "plexor", "sub": "u-1", "name": "Olga", "nonce": "n-1", "exp": 2_000] }

    @Test func thePKCEChallengeIsRFC7636s() {
        // RFC 7636, appendix B.
        let pending = OpenIDConnect.Pending(expires: 0, state: "s", nonce: "n", verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
                                            site: "example", language: "en")
        #expect(pending.challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    }

    @Test func theAuthorizationURLCarriesPKCEStateAndNonce() throws {
        let pending = OpenIDConnect.Pending.start(site: "example", language: "en", now: 0)
        let endpoints = OpenIDConnect.Endpoints(issuer: "https://id.example", authorizationEndpoint: "https://id.example/auth?x=1",
                                                tokenEndpoint: "https://id.example/token")
        let text = try #require(OpenIDConnect.authorizationURL(endpoints, self.provider, pending))
        let url = try #require(URLComponents(string: text))
        let query: [String: String] = Dictionary(uniqueKeysWithValues: (url.queryItems ?? []).map { item in (item.name, item.value ?? "") })
        #expect(query["x"] == "1" && query["response_type"] == "code" && query["client_id"] == "plexor")
        #expect(query["redirect_uri"] == self.provider.redirectURI && query["scope"] == "openid profile")
        #expect(query["state"] == pending.state && query["nonce"] == pending.nonce)
        #expect(query["code_challenge"] == pending.challenge && query["code_challenge_method"] == "S256")
        #expect(pending.verifier.count == 43 && pending.state != pending.nonce)
        #expect(OpenIDConnect.Pending.start(site: "example", language: "en", now: 0).state != pending.state)
    }

    @Test func thePendingSignInLivesInASignedCookieForTenMinutes() {
        let pending = OpenIDConnect.Pending.start(site: "example", language: "ru", now: 100)
        let cookie = "other=1; \(OpenIDConnect.Pending.cookieName)=\(pending.token(signer: self.signer))"
        #expect(OpenIDConnect.Pending(cookieHeader: cookie, signer: self.signer, now: 699) == pending)
        #expect(OpenIDConnect.Pending(cookieHeader: cookie, signer: self.signer, now: 700) == nil)
        #expect(OpenIDConnect.Pending(cookieHeader: cookie, signer: TokenSigner(notificationKey: [9])!, now: 100) == nil)
    }

    @Test func theTokenRequestIsFormEncodedAndTheClientUsesBasicAuthentication() {
        let pending = OpenIDConnect.Pending(expires: 0, state: "s", nonce: "n", verifier: "v~1", site: "example", language: "en")
        #expect(OpenIDConnect.tokenRequestBody(code: "a b&c", self.provider, pending)
                == "grant_type=authorization_code&code=a%20b%26c&redirect_uri=https%3A%2F%2Fchat.example.net%2Fsignin%2Foidc%2Fcallback&code_verifier=v~1")
        #expect(OpenIDConnect.clientAuthorization(self.provider) == "Basic " + Data("plexor:s3cr%3Aet".utf8).base64EncodedString())
    }

    @Test func anIDTokenIsCheckedForIssuerAudienceExpiryAndNonce() throws {
        let read = try OpenIDConnect.claims(idToken: self.idToken(self.claims), self.provider, nonce: "n-1", now: 1_000)
        #expect(read == OpenIDConnect.Claims(subject: "u-1", name: "Olga"))
        var named = self.claims
        named["name"] = nil
        named["preferred_username"] = "olga"
        #expect(try OpenIDConnect.claims(idToken: self.idToken(named), self.provider, nonce: "n-1", now: 1_000).name == "olga")
        let refused: [(String, Any?, OpenIDConnect.Failure)] = [
            ("iss", "https://evil.example", .wrongIssuer), ("aud", "another-client", .wrongAudience),
            ("aud", ["plexor", "another"], .wrongAudience),  // several audiences need azp naming this client
            ("exp", 999, .expired), ("nonce", "n-2", .wrongNonce), ("nonce", nil, .wrongNonce),
        ]
        for (claim, value, failure) in refused {
            var changed = self.claims
            changed[claim] = value
            #expect(throws: failure) { try OpenIDConnect.claims(idToken: self.idToken(changed), self.provider, nonce: "n-1", now: 1_000) }
        }
        #expect(throws: OpenIDConnect.Failure.self) { try OpenIDConnect.claims(idToken: "a.b", self.provider, nonce: "n-1", now: 1_000) }
    }
}
