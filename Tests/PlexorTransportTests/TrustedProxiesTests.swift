import PlexorTransport
import Testing

struct TrustedProxiesTests {
    let proxies = try! TrustedProxies(parsing: "127.0.0.1, 10.0.0.0/8,fd00::/8")

    @Test func withoutTrustedProxiesTheHeaderIsIgnored() {
        #expect(TrustedProxies.none.client(peer: "127.0.0.1", forwardedFor: "6.6.6.6") == "127.0.0.1")
        #expect(TrustedProxies.none.client(peer: nil, forwardedFor: "6.6.6.6") == nil)
    }

    @Test func anUntrustedPeerIsTheClientWhateverItClaims() {
        #expect(self.proxies.client(peer: "203.0.113.9", forwardedFor: "6.6.6.6") == "203.0.113.9")
    }

    @Test func behindTrustedProxiesTheNearestUntrustedHopIsTheClient() {
        #expect(self.proxies.client(peer: "127.0.0.1", forwardedFor: "203.0.113.9") == "203.0.113.9")
        // What the client wrote itself (left of the first untrusted hop) is not believed.
        #expect(self.proxies.client(peer: "127.0.0.1", forwardedFor: "6.6.6.6, 203.0.113.9, 10.1.2.3") == "203.0.113.9")
        #expect(self.proxies.client(peer: "10.200.0.1", forwardedFor: " 2001:db8::1 ,fd00::5") == "2001:db8::1")
    }

    @Test func addressesAreSpelledOneWay() {
        #expect(self.proxies.client(peer: "::ffff:127.0.0.1", forwardedFor: "2001:DB8:0:0::1") == "2001:db8::1")
        #expect(self.proxies.client(peer: "::ffff:127.0.0.1", forwardedFor: nil) == "127.0.0.1")
    }

    @Test func garbageStopsAtTheLastTrustedHop() {
        #expect(self.proxies.client(peer: "127.0.0.1", forwardedFor: "203.0.113.9, <script>") == "127.0.0.1")
        #expect(self.proxies.client(peer: "127.0.0.1", forwardedFor: "203.0.113.9, 10.0.0.7, unknown") == "127.0.0.1")
        #expect(self.proxies.client(peer: "127.0.0.1", forwardedFor: "unknown, 10.0.0.7") == "10.0.0.7")
        #expect(self.proxies.client(peer: "127.0.0.1", forwardedFor: "") == "127.0.0.1")
    }

    @Test func aLongChainOfTrustedHopsIsWalkedOnlySoFar() {
        let chain = ["203.0.113.9"] + Array(repeating: "10.0.0.1", count: 40)
        #expect(self.proxies.client(peer: "127.0.0.1", forwardedFor: chain.joined(separator: ",")) == "10.0.0.1")
    }

    @Test func networksAreChecked() {
        let narrow = try! TrustedProxies(parsing: "192.168.4.0/22")
        #expect(narrow.client(peer: "192.168.7.255", forwardedFor: "1.1.1.1") == "1.1.1.1")
        #expect(narrow.client(peer: "192.168.8.0", forwardedFor: "1.1.1.1") == "192.168.8.0")
        for bad in ["10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8/8", "example.org", " ", "1.2.3"] {
            #expect(throws: TrustedProxies.ParseError.self, "\(bad)") { try TrustedProxies(parsing: bad) }
        }
        #expect(throws: TrustedProxies.ParseError.self) {
            try TrustedProxies(parsing: Array(repeating: "10.0.0.1", count: 101).joined(separator: ","))
        }
    }
}
