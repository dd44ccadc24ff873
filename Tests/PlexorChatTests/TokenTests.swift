import PlexorAccess
import Testing

@Suite struct TokenTests {
    let signer = TokenSigner(notificationKey: Array(repeating: 9, count: 32))!

    @Test func hmacMatchesRFC4231() {
        let short = HMACKey(Array("Jefe".utf8))!.mac(Array("what do ya want for nothing?".utf8))
        #expect(hex(short) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // A key longer than a block is hashed first.
        let long = HMACKey(Array(repeating: 0xaa, count: 131))!.mac(Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8))
        #expect(hex(long) == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    @Test func base64URLRoundTripsAndRefusesOtherSpellings() {
        for length in 0..<10 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 77 + 250) }
            #expect(Base64URL.decode(Base64URL.encode(bytes)) == bytes)
        }
        #expect(Base64URL.encode(Array("??>".utf8)) == "Pz8-")
        #expect(Base64URL.decode("Pz8+") == nil)  // the standard alphabet
        #expect(Base64URL.decode("Pz8=") == nil)  // padding
        #expect(Base64URL.decode("Pz8") == Array("??".utf8))
        #expect(Base64URL.decode("Pz9") == nil)  // stray bits
        #expect(Base64URL.decode("Pz9B") != nil)
        #expect(Base64URL.decode("QQ") == [0x41])
        #expect(Base64URL.decode("QR") == nil)  // stray bits
        #expect(Base64URL.decode("Q") == nil)
    }

    @Test func aTokenVerifiesOnlyWithItsKindKeyAndBytes() {
        let token = self.signer.sign(kind: "g1", payload: "100 a b")
        #expect(self.signer.verify(token, kind: "g1") == "100 a b")
        #expect(self.signer.verify(token, kind: "s1") == nil)
        #expect(TokenSigner(notificationKey: Array(repeating: 8, count: 32))!.verify(token, kind: "g1") == nil)
        let parts = token.split(separator: ".")
        let otherPayload = "g1." + Base64URL.encode(Array("999 a b".utf8)) + "." + parts[2]
        #expect(self.signer.verify(otherPayload, kind: "g1") == nil)
        #expect(self.signer.verify(token + ".x", kind: "g1") == nil)
        #expect(self.signer.verify(String(token.dropLast()), kind: "g1") == nil)
        #expect(self.signer.verify(String(repeating: "a", count: 9000), kind: "g1") == nil)
    }

    @Test func aGrantCoversItsTagsAndPrefixesUntilItExpires() {
        let grant = AccessGrant(expires: 1000, entries: ["room:a", "team:*"])
        let token = grant.token(signer: self.signer)
        #expect(AccessGrant(token: token, signer: self.signer, now: 999) == grant)
        #expect(AccessGrant(token: token, signer: self.signer, now: 1000) == nil)
        #expect(grant.allows("room:a"))
        #expect(!grant.allows("room:ab"))
        #expect(grant.allows("team:x/y"))
        #expect(!grant.allows("team"))
    }

    @Test func aSessionIsNotAGrantAndCoversOnlyItsPersonAndSite() {
        let session = SessionToken(expires: 1000, site: "example", person: 5, guest: false)
        let token = session.token(signer: self.signer)
        #expect(AccessGrant(token: token, signer: self.signer, now: 0) == nil)
        #expect(Credential(token: token, signer: self.signer, now: 0) == .session(session))
        let tags = PrivateTags(configured: ["chat:example/staff"])
        #expect(tags.isPrivate("chat-presence:x:1"))
        #expect(tags.isPrivate("chat:example/staff"))
        #expect(!tags.isPrivate("chat:example"))
        #expect(tags.allows("chat-presence:example:5", to: .session(session)))
        #expect(tags.allows("chat-presence:example/staff:5", to: .session(session)))
        #expect(!tags.allows("chat-presence:example:6", to: .session(session)))
        #expect(!tags.allows("chat-presence:examples:5", to: .session(session)))
        #expect(!tags.allows("chat-presence:example:5:5", to: .session(session)))
        #expect(tags.allows("chat:example/staff", to: .session(session)))
        #expect(!tags.allows("chat:other/staff", to: .session(session)))
        #expect(!tags.allows("chat-presence:example:5", to: nil))
    }
}

@Suite struct SiteTokenTests {
    let secret = Array("0123456789abcdef0123456789abcdef".utf8)
    let now: Int64 = 1_800_000_000

    func claims(exp: Int64? = nil, extra: String = "") -> String {
        #"{"sub":"42","name":"Ann","exp":\#(exp ?? self.now + 300)\#(extra)}"#
    }

    @Test func aValidTokenGivesItsClaims() throws {
        let token = SiteToken.sign(claims: self.claims(extra: #","avatar":"https://example.com/a.png","mod":true"#), secret: self.secret)
        let read = try SiteToken.verify(token, secret: self.secret, now: self.now)
        #expect(read == SiteToken(subject: "42", name: "Ann", avatar: "https://example.com/a.png", moderator: true, expires: self.now + 300))
    }

    @Test func badTokensAreRefusedWithTheReason() {
        let claims = self.claims()
        let cases: [(String, SiteToken.Failure)] = [
            (SiteToken.sign(claims: claims, secret: Array("another site's secret".utf8)), .signature),
            (SiteToken.sign(claims: self.claims(exp: self.now - 1), secret: self.secret), .expired),
            (SiteToken.sign(claims: self.claims(exp: self.now + 3600), secret: self.secret), .tooLongLived),
            (SiteToken.sign(header: #"{"alg":"none"}"#, claims: claims, secret: self.secret), .algorithm("none")),
            (SiteToken.sign(header: #"{"alg":"RS256"}"#, claims: claims, secret: self.secret), .algorithm("RS256")),
            (SiteToken.sign(header: #"{"alg":"hs256"}"#, claims: claims, secret: self.secret), .algorithm("hs256")),
        ]
        for (token, failure) in cases {
            #expect(throws: failure) { try SiteToken.verify(token, secret: self.secret, now: self.now) }
        }
        // `alg: none` with the signature left off.
        let unsigned = Base64URL.encode(Array(#"{"alg":"none"}"#.utf8)) + "." + Base64URL.encode(Array(claims.utf8)) + "."
        #expect(throws: SiteToken.Failure.algorithm("none")) { try SiteToken.verify(unsigned, secret: self.secret, now: self.now) }
        for malformed in ["", "a.b", "a.b.c.d", SiteToken.sign(claims: #"{"sub":"42","exp":1800000300}"#, secret: self.secret),
                          SiteToken.sign(claims: #"{"sub":"42","name":"Ann","exp":"1800000300"}"#, secret: self.secret),
                          SiteToken.sign(claims: #"{"sub":"","name":"Ann","exp":1800000300}"#, secret: self.secret),
                          SiteToken.sign(claims: self.claims(extra: #","mod":1"#), secret: self.secret)] {
            #expect(throws: SiteToken.Failure.self) { try SiteToken.verify(malformed, secret: self.secret, now: self.now) }
        }
    }
}

func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}
