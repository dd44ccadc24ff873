import Testing
@testable import PlexorPostgres

/// The signature check on its own: no database.
@Suite struct NotificationSignatureTests {
    @Test func matchesRFC4231() throws {
        // RFC 4231, test case 2.
        let signature = try #require(NotificationSignature(key: Array("Jefe".utf8)))
        let signed = signature.sign(Array("what do ya want for nothing?".utf8))
        #expect(String(decoding: signed.prefix(64), as: UTF8.self) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func refusesAnythingButItsOwnSignature() throws {
        let signature = try #require(NotificationSignature(key: Array(repeating: 7, count: 32)))
        let other = try #require(NotificationSignature(key: Array(repeating: 8, count: 32)))
        let body = Array("r chat 1 2".utf8)
        let signed = signature.sign(body)
        func verify(_ bytes: [UInt8]) -> [UInt8]? { bytes.withUnsafeBytes { signature.verify($0).map(Array.init) } }
        #expect(verify(signed) == body)
        #expect(verify(other.sign(body)) == nil)
        #expect(verify(body) == nil)
        #expect(verify(Array(signed.dropLast()) + [UInt8(ascii: "3")]) == nil)
        #expect(verify(Array(signed.prefix(64))) == nil)
        #expect(verify([]) == nil)
    }
}
