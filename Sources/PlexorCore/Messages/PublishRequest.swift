/// The body of `POST /publish`: `{"tags":[...],"data":...,"only_for":[...]}`.
public struct PublishRequest: Equatable, Sendable {
    public static let maximumTags = 100

    public var tags: [Tag]
    /// The JSON text of `data`, byte for byte as sent.
    public var data: String
    public var onlyFor: [Tag]?

    public init(tags: [Tag], data: String, onlyFor: [Tag]?) {
        self.tags = tags
        self.data = data
        self.onlyFor = onlyFor
    }

    public init(json body: [UInt8]) throws(RequestError) {
        let members: [(key: String, value: Range<Int>)]
        do {
            members = try JSONScanner.topLevelMembers(of: body)
        } catch {
            throw Self.refusal(error, "the body", "a JSON object")
        }
        var tags: [Tag]?
        var data: String?
        var onlyFor: [Tag]?
        var seen = Set<String>()
        for (key, range) in members {
            guard seen.insert(key).inserted else { throw .badRequest("member \"\(key)\" is given more than once") }
            switch key {
            case "tags":
                tags = try Self.tagList(body, range, name: "tags")
            case "data":
                data = String(decoding: body[range], as: UTF8.self)
            case "only_for":
                if body[range].elementsEqual("null".utf8) { continue }
                onlyFor = try Self.tagList(body, range, name: "only_for")
            default:
                throw .badRequest("unknown member \"\(key.prefix(40))\"; expected tags, data and only_for")
            }
        }
        guard let tags else { throw .badRequest("member \"tags\" is required") }
        guard let data else { throw .badRequest("member \"data\" is required (send null for a JSON null)") }
        self.init(tags: tags, data: data, onlyFor: onlyFor)
    }

    /// Message data given alone (Realplexor's IN line sends the JSON as the body): the value, without the whitespace around it.
    public static func data(json body: [UInt8]) throws(RequestError) -> String {
        do {
            let range = try JSONScanner.singleValue(of: body)
            return String(decoding: body[range], as: UTF8.self)
        } catch {
            throw Self.refusal(error, "the data", "JSON")
        }
    }

    private static func refusal(_ failure: JSONScanner.Failure, _ what: String, _ kind: String) -> RequestError {
        switch failure {
        case .tooDeep:
            return .badRequest("\(what) nests deeper than \(JSONScanner.maximumDepth) levels")
        case .syntax(let offset, let expected):
            return .badRequest("\(what) is not \(kind): expected \(expected) at byte \(offset)")
        }
    }

    private static func tagList(_ body: [UInt8], _ range: Range<Int>, name: String) throws(RequestError) -> [Tag] {
        guard let strings = JSONScanner.stringArray(body, range: range) else {
            throw .badRequest("\(name) must be an array of tag strings")
        }
        guard !strings.isEmpty else { throw .badRequest("\(name) must list at least one tag") }
        guard strings.count <= Self.maximumTags else {
            throw .badRequest("\(name) lists \(strings.count) tags; at most \(Self.maximumTags) are allowed")
        }
        var tags: [Tag] = []
        var seen = Set<Tag>()
        for string in strings {
            let tag: Tag
            do {
                tag = try Tag(validating: string)
            } catch {
                throw .badRequest("\(name): \(error.description)")
            }
            guard seen.insert(tag).inserted else { throw .badRequest("\(name) lists tag \(tag) more than once") }
            tags.append(tag)
        }
        return tags
    }
}
