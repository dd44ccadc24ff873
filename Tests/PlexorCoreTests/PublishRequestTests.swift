import Testing
@testable import PlexorCore

@Suite struct PublishRequestTests {
    func parse(_ json: String) throws(RequestError) -> PublishRequest {
        try PublishRequest(json: Array(json.utf8))
    }

    @Test func keepsDataByteForByte() throws {
        let request = try self.parse(#"{"tags":["chat","room\/1"], "data": {"text" : "h\u00e9", "n":[1.5e3,-0,true,null]} , "only_for":["admins"]}"#)
        #expect(request.tags == ["chat", "room/1"])
        #expect(request.data == #"{"text" : "h\u00e9", "n":[1.5e3,-0,true,null]}"#)
        #expect(request.onlyFor == ["admins"])
    }

    @Test func acceptsANullOnlyForAndAJSONNullData() throws {
        let request = try self.parse(#"{"data":null,"tags":["a"],"only_for":null}"#)
        #expect(request.data == "null")
        #expect(request.onlyFor == nil)
    }

    @Test(arguments: [
        ("", "not a JSON object"),
        ("[]", "not a JSON object"),
        (#"{"tags":["a"],"data":1"#, "not a JSON object"),
        (#"{"tags":["a"],"data":01}"#, "not a JSON object"),
        (#"{"tags":["a"],"data":"\x"}"#, "not a JSON object"),
        (#"{"tags":["a"],"data":tru}"#, "not a JSON object"),
        (#"{"tags":["a"],"data":1} x"#, "not a JSON object"),
        (#"{"tags":["a"],"data":[1,]}"#, "not a JSON object"),
        (#"{"data":1}"#, "\"tags\" is required"),
        (#"{"tags":["a"]}"#, "\"data\" is required"),
        (#"{"tags":[],"data":1}"#, "at least one tag"),
        (#"{"tags":"a","data":1}"#, "array of tag strings"),
        (#"{"tags":[1],"data":1}"#, "array of tag strings"),
        (#"{"tags":["a b"],"data":1}"#, "has a character outside"),
        (#"{"tags":["a","a"],"data":1}"#, "more than once"),
        (#"{"tags":["a"],"data":1,"only_for":[]}"#, "at least one tag"),
        (#"{"tags":["a"],"data":1,"extra":2}"#, "unknown member"),
        (#"{"tags":["a"],"tags":["b"],"data":1}"#, "more than once"),
    ])
    func rejectsBadBodies(json: String, expected: String) {
        #expect {
            try self.parse(json)
        } throws: { error in
            (error as? RequestError)?.message.contains(expected) == true
        }
    }

    @Test func rejectsTooManyTagsAndDeepNesting() {
        let many = (0...100).map { "\"t\($0)\"" }.joined(separator: ",")
        #expect(throws: RequestError.self) { try self.parse("{\"tags\":[\(many)],\"data\":1}") }
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: RequestError.self) { try self.parse("{\"tags\":[\"a\"],\"data\":\(deep)}") }
    }
}
