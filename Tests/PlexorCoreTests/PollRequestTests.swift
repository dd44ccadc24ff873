import Testing
@testable import PlexorCore

@Suite struct PollRequestTests {
    let limits = PollLimits(maximumTags: 3, defaultTimeout: 25, maximumTimeout: 60)

    func parse(_ query: String) throws(RequestError) -> PollRequest {
        try PollRequest(query: query[...], limits: self.limits)
    }

    @Test func parsesTagsCursorsAndTimeout() throws {
        let request = try self.parse("tags=chat@17,news,a:b/c.d-e_f@0&timeout=5")
        #expect(request.tags == [
            TagCursor(tag: Tag(trusted: "chat"), cursor: 17),
            TagCursor(tag: Tag(trusted: "news"), cursor: nil),
            TagCursor(tag: Tag(trusted: "a:b/c.d-e_f"), cursor: 0),
        ])
        #expect(request.timeout == 5)
    }

    @Test func defaultsAndCapsTheTimeout() throws {
        #expect(try self.parse("tags=a").timeout == 25)
        #expect(try self.parse("tags=a&timeout=0").timeout == 0)
        #expect(try self.parse("tags=a&timeout=3600").timeout == 60)
        #expect(try self.parse("tags=a&timeout=99999999999999999999999").timeout == 60)
    }

    @Test func decodesPercentEscapesAndIgnoresUnknownParameters() throws {
        let request = try self.parse("_=123&tags=a%3Ab%2Cc%4042")
        #expect(request.tags == [TagCursor(tag: Tag(trusted: "a:b"), cursor: nil), TagCursor(tag: Tag(trusted: "c"), cursor: 42)])
    }

    @Test func acceptsTheLargestCursor() throws {
        #expect(try self.parse("tags=a@9223372036854775807").tags[0].cursor == Int64.max)
    }

    @Test(arguments: [
        ("", "parameter tags is required"),
        ("timeout=5", "parameter tags is required"),
        ("tags=", "parameter tags is empty"),
        ("tags=a,,b", "parameter tags has an empty item"),
        ("tags=a,", "parameter tags has an empty item"),
        ("tags=a@", "cursor"),
        ("tags=a@-1", "cursor"),
        ("tags=a@+1", "cursor"),
        ("tags=a@1.5", "cursor"),
        ("tags=a@1@2", "cursor"),
        ("tags=a@9223372036854775808", "cursor"),
        ("tags=@5", "a tag must not be empty"),
        ("tags=a%20b", "has a character outside"),
        ("tags=caf%C3%A9", "has a character outside"),
        ("tags=a,a@3", "tag a is listed more than once"),
        ("tags=a,b,c,d", "at most 3 tags"),
        ("tags=a&tags=b", "more than once"),
        ("tags=a&timeout=-1", "timeout"),
        ("tags=a&timeout=", "timeout"),
        ("tags=a&timeout=1.5", "timeout"),
        ("tags=a&timeout=soon", "timeout"),
        ("tags=a&timeout=1&timeout=2", "more than once"),
        ("tags=%zz", "percent-encoded"),
        ("tags=%ff", "percent-encoded"),
    ])
    func rejectsMalformedPolls(query: String, expected: String) {
        #expect {
            try self.parse(query)
        } throws: { error in
            guard let error = error as? RequestError else { return false }
            return error.message.contains(expected)
        }
    }

    @Test func rejectsATagLongerThan128Characters() throws {
        let tag128 = String(repeating: "x", count: 128)
        #expect(try self.parse("tags=\(tag128)").tags[0].tag.name == tag128)
        #expect(throws: RequestError.self) { try self.parse("tags=\(tag128)x") }
    }
}

@Suite struct TagTests {
    @Test(arguments: ["a", "Z9", "chat/room-1.users:online_", String(repeating: "q", count: 128)])
    func acceptsValidTags(_ text: String) throws {
        #expect(try Tag(validating: text).name == text)
    }

    @Test(arguments: ["", " ", "a b", "a,b", "a@b", "é", "a\nb", "a\"b", "{a}", String(repeating: "q", count: 129)])
    func rejectsInvalidTags(_ text: String) {
        #expect(throws: TagError.self) { try Tag(validating: text) }
    }

    @Test func isCaseSensitive() throws {
        #expect(try Tag(validating: "Chat") != Tag(validating: "chat"))
    }
}
