import PlexorChat
import Testing

@Suite struct ChatRulesTests {
    @Test func roomsAreASiteAndAtMostOneNamedRoom() {
        #expect(Room("example")?.tag == "chat:example")
        #expect(Room("example/support_1")?.site == "example")
        #expect(Room("example/support")?.presenceTag(person: 7) == "chat-presence:example/support:7")
        for bad in ["", "Example", "-x", "x/", "x/-y", "x/y/z", "x_y", "a b", String(repeating: "a", count: 33), "x/" + String(repeating: "b", count: 33), "é"] {
            #expect(Room(bad) == nil, "\(bad)")
        }
    }

    @Test func chatPathsNameARoomAndAnAction() {
        #expect(ChatRoute(path: "session") == .session)
        #expect(ChatRoute(path: "example/messages") == .room(Room("example")!, .messages))
        #expect(ChatRoute(path: "example/messages/history") == .room(Room("example/messages")!, .history))
        #expect(ChatRoute(path: "example") == nil)
        #expect(ChatRoute(path: "example/delete") == nil)
        #expect(ChatRoute(path: "a/b/c/history") == nil)
    }

    @Test func nicknamesAreTrimmedTextOfTwoToThirtyTwoCharacters() throws {
        #expect(try ChatText.nickname("  Ann  ") == "Ann")
        #expect(try ChatText.nickname("Анна 👩‍💻") == "Анна 👩‍💻")
        for bad in ["A", "   ", String(repeating: "x", count: 33), "A\nB", "Ann\u{7}", "Ann\u{202E}nna", "a\u{2028}b", "x\u{85}y"] {
            #expect(throws: ChatText.Problem.self, "\(bad.debugDescription)") { try ChatText.nickname(bad) }
        }
    }

    @Test func messagesKeepNewlinesButNoOtherControlCharacters() throws {
        #expect(try ChatText.message(" one\r\ntwo \n") == "one\ntwo")
        #expect(try ChatText.message("<b>bold</b>") == "<b>bold</b>")  // text, shown as text
        #expect(try ChatText.message(String(repeating: "я", count: 2000)).count == 2000)
        for bad in ["", " \n ", String(repeating: "я", count: 2001), "tab\there", "nul\u{0}", "esc\u{1B}[31m"] {
            #expect(throws: ChatText.Problem.self, "\(bad.debugDescription)") { try ChatText.message(bad) }
        }
    }

    @Test func aBucketAllowsABurstThenOnePostAtTheRate() {
        var limits = RateLimits()
        let key = [(key: "person:1", perMinute: 30)]  // burst 10, then one every 2 s
        for _ in 0..<10 { #expect(limits.take(key, now: 100) == nil) }
        let wait = limits.take(key, now: 100)
        #expect(wait.map { abs($0 - 2) < 0.001 } == true)
        #expect(limits.take(key, now: 101) != nil)
        #expect(limits.take(key, now: 102) == nil)
        #expect(limits.take(key, now: 102) != nil)
        // Someone else is untouched.
        #expect(limits.take([(key: "person:2", perMinute: 30)], now: 102) == nil)
    }

    @Test func aRefusedPostTakesFromNoBucket() {
        var limits = RateLimits()
        let person = (key: "person:1", perMinute: 3)  // burst 3
        let address = (key: "address:x", perMinute: 60)  // burst 20
        for _ in 0..<3 { #expect(limits.take([person, address], now: 0) == nil) }
        for _ in 0..<50 { #expect(limits.take([person, address], now: 0) != nil) }
        // The flood was refused by the person's bucket; the address's still has 17 posts for others.
        for index in 0..<17 { #expect(limits.take([(key: "person:\(index + 10)", perMinute: 3), address], now: 0) == nil) }
        #expect(limits.take([(key: "person:99", perMinute: 3), address], now: 0) != nil)
    }

    @Test func bucketsAreBoundedAndFullOnesForgottenFirst() {
        var limits = RateLimits(capacity: 100)
        for index in 0..<1000 { #expect(limits.take([(key: "a\(index)", perMinute: 60)], now: Double(index)) == nil) }
        #expect(limits.buckets.count <= 100)
    }
}
