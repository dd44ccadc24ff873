import PlexorCore

/// `login:password` from `identifier=login:password@…`.
public struct Credentials: Equatable, Sendable {
    public var login: String
    public var password: String

    public init(login: String, password: String) {
        self.login = login
        self.password = password
    }
}

/// One request on Realplexor's IN line, as the PHP API sends it:
///
///     POST / HTTP/1.1
///     Host: 127.0.0.1
///     Content-Length: 4
///     X-Realplexor: identifier=user:password@10:user_ns_abc,*user_ns_u1
///
///     "hi"
public struct InRequest: Equatable, Sendable {
    public enum Action: Equatable, Sendable {
        /// Publish the body (JSON, without the whitespace around it).
        case send(data: String)
        /// `online [prefix ...]`
        case online(prefixes: [String])
        /// `watch <pos> [prefix ...]`
        case watch(after: Int64, prefixes: [String])
        /// `stats`
        case stats
    }

    public var credentials: Credentials?
    /// `[cursor:]id`: where a send goes (the cursors are read and not used:
    /// Plexor gives each message its seq when it commits).
    public var targets: [Tag]
    /// `*id`: who may see it (Plexor's `only_for`).
    public var limiters: [Tag]
    public var action: Action

    public init(credentials: Credentials?, targets: [Tag], limiters: [Tag], action: Action) {
        self.credentials = credentials
        self.targets = targets
        self.limiters = limiters
        self.action = action
    }
}

/// Reads one IN request from the bytes of a connection: the head, then a
/// body of `Content-Length` bytes, or without one everything up to the
/// client's half-close.
public struct InRequestReader: Sendable {
    public enum Outcome: Equatable, Sendable {
        case needMore
        case request(InRequest)
        case refuse(InReply)
    }

    public static let maximumHeadBytes = 16_384
    /// Most ids (targets and limiters) and prefixes one request may name.
    public static let maximumIDs = 1000

    /// The gateway's `--max-body-bytes`.
    private let maximumBodyBytes: Int
    /// Where the search for the head's end goes on (a head sent a byte at a time is searched once).
    private var headSearch = 0

    public init(maximumBodyBytes: Int) {
        self.maximumBodyBytes = maximumBodyBytes
    }

    /// `bytes`: everything read so far; `ended`: the client has half-closed.
    public mutating func read(_ bytes: [UInt8], ended: Bool) -> Outcome {
        guard let (headLength, separator) = Self.headEnd(bytes, from: self.headSearch) else {
            self.headSearch = max(0, bytes.count - 3)
            if bytes.count > Self.maximumHeadBytes { return .refuse(.init(400, "the request head is longer than \(Self.maximumHeadBytes) bytes")) }
            return ended ? .refuse(.init(400, "the request ended before its head did")) : .needMore
        }
        guard headLength <= Self.maximumHeadBytes else {
            return .refuse(.init(400, "the request head is longer than \(Self.maximumHeadBytes) bytes"))
        }
        let head: Head
        switch Head.parse(bytes[..<headLength]) {
        case .success(let parsed): head = parsed
        case .failure(let refusal): return .refuse(refusal)
        }
        let bodyStart = headLength + separator
        let body: ArraySlice<UInt8>
        if let length = head.contentLength {
            guard length <= self.maximumBodyBytes else {
                return .refuse(.init(413, "the body is \(length) bytes; at most \(self.maximumBodyBytes) are accepted"))
            }
            guard bytes.count - bodyStart >= length else {
                return ended ? .refuse(.init(400, "the request ended before its Content-Length of \(length) bytes")) : .needMore
            }
            body = bytes[bodyStart..<(bodyStart + length)]
        } else {
            guard bytes.count - bodyStart <= self.maximumBodyBytes else {
                return .refuse(.init(413, "the body is longer than the \(self.maximumBodyBytes) bytes accepted"))
            }
            guard ended else { return .needMore }
            body = bytes[bodyStart...]
        }
        switch Self.request(identifier: head.identifier, body: Array(body)) {
        case .success(let request): return .request(request)
        case .failure(let refusal): return .refuse(refusal)
        }
    }

    /// Where the head ends, and the length of the blank line after it (`\r\n\r\n` or `\n\n`).
    static func headEnd(_ bytes: [UInt8], from start: Int) -> (Int, Int)? {
        let newline = UInt8(ascii: "\n"), carriageReturn = UInt8(ascii: "\r")
        var index = start
        while index + 1 < bytes.count {
            if bytes[index] == newline, bytes[index + 1] == newline { return (index, 2) }
            if index + 3 < bytes.count, bytes[index] == carriageReturn, bytes[index + 1] == newline,
               bytes[index + 2] == carriageReturn, bytes[index + 3] == newline {
                return (index, 4)
            }
            index += 1
        }
        return nil
    }

    struct Head {
        /// After `identifier=`, from `X-Realplexor` or else the request target.
        var identifier: String?
        var contentLength: Int?

        static func parse(_ bytes: ArraySlice<UInt8>) -> Result<Head, InReply> {
            // Split as bytes: a String would take "\r\n" for one character.
            let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line in
                Substring(String(decoding: line.last == UInt8(ascii: "\r") ? line.dropLast() : line, as: UTF8.self))
            }
            var head = Head()
            var fromTarget: String?
            if let target = lines.first?.split(separator: " ").dropFirst().first, let marker = target.firstRange(of: "identifier=") {
                fromTarget = String(target[marker.upperBound...].prefix { $0 != "&" })
            }
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { return .failure(.init(400, "malformed header line")) }
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
                switch name {
                case "x-realplexor":
                    guard value.hasPrefix("identifier=") else { return .failure(.init(400, "X-Realplexor must be identifier=…")) }
                    head.identifier = String(value.dropFirst("identifier=".count))
                case "content-length":
                    guard !value.isEmpty, value.count <= 12, value.allSatisfy(\.isASCIIDigit), let length = Int(value) else {
                        return .failure(.init(400, "Content-Length must be a whole number"))
                    }
                    if let earlier = head.contentLength, earlier != length { return .failure(.init(400, "conflicting Content-Length fields")) }
                    head.contentLength = length
                case "transfer-encoding":
                    return .failure(.init(501, "Transfer-Encoding is not supported; send Content-Length"))
                default:
                    continue
                }
            }
            if head.identifier == nil { head.identifier = fromTarget }
            return .success(head)
        }
    }

    static func request(identifier: String?, body: [UInt8]) -> Result<InRequest, InReply> {
        var credentials: Credentials?
        var targets: [Tag] = []
        var limiters: [Tag] = []
        if let identifier {
            var list = Substring(identifier)
            // The list never holds "@": the last one ends the password.
            if let at = identifier.lastIndex(of: "@") {
                let login = identifier[..<at]
                guard let colon = login.firstIndex(of: ":") else { return .failure(.init(400, "credentials must be login:password@")) }
                credentials = Credentials(login: String(login[..<colon]), password: String(login[login.index(after: colon)...]))
                list = identifier[identifier.index(after: at)...]
            }
            for element in list.split(separator: ",") {
                if element.hasPrefix("*") {
                    guard let tag = Self.id(element.dropFirst()) else { return .failure(Self.badID(element)) }
                    if !limiters.contains(tag) { limiters.append(tag) }
                } else {
                    guard let (name, _) = WaitRequestScanner.element(element), let tag = Self.id(name) else { return .failure(Self.badID(element)) }
                    if !targets.contains(tag) { targets.append(tag) }
                }
                guard targets.count + limiters.count <= Self.maximumIDs else {
                    return .failure(.init(400, "a request may name at most \(Self.maximumIDs) ids"))
                }
            }
        }
        let action: InRequest.Action
        switch Self.action(body) {
        case .success(let parsed): action = parsed
        case .failure(let refusal): return .failure(refusal)
        }
        if case .send = action, targets.isEmpty {
            return .failure(.init(400, "nothing to send to: X-Realplexor needs identifier=id[,id…]"))
        }
        return .success(InRequest(credentials: credentials, targets: targets, limiters: limiters, action: action))
    }

    /// A command (`online`, `watch`, `stats`: no JSON value starts with their letters) or data to send.
    static func action(_ body: [UInt8]) -> Result<InRequest.Action, InReply> {
        let first = body.first { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") && $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }
        guard let first, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first), first != UInt8(ascii: "t"),
              first != UInt8(ascii: "f"), first != UInt8(ascii: "n") else {
            do {
                return .success(.send(data: try PublishRequest.data(json: body)))
            } catch {
                return .failure(.init(400, error.message))
            }
        }
        let words = String(decoding: body, as: UTF8.self).split(whereSeparator: \.isWhitespace)
        let command = words.first!
        var arguments = Array(words.dropFirst())
        switch command {
        case "online":
            return Self.prefixes(arguments).map { .online(prefixes: $0) }
        case "watch":
            guard let position = arguments.first, position.count <= 18, position.allSatisfy(\.isASCIIDigit), let after = Int64(position) else {
                return .failure(.init(400, "watch needs a position: watch <pos> [prefix ...]"))
            }
            arguments.removeFirst()
            return Self.prefixes(arguments).map { .watch(after: after, prefixes: $0) }
        case "stats":
            guard arguments.isEmpty else { return .failure(.init(400, "stats takes no arguments")) }
            return .success(.stats)
        default:
            return .failure(.init(400, "unknown command \(command.prefix(40)); expected online, watch or stats, or JSON data to send"))
        }
    }

    private static func prefixes(_ words: [Substring]) -> Result<[String], InReply> {
        guard words.count <= Self.maximumIDs else { return .failure(.init(400, "at most \(Self.maximumIDs) prefixes")) }
        for word in words where word.utf8.count > Tag.maximumLength || !word.utf8.allSatisfy(WaitRequestScanner.isWordByte) {
            return .failure(.init(400, "prefix \(word.prefix(40)) is not made of A-Z a-z 0-9 _"))
        }
        return .success(words.map(String.init))
    }

    private static func id(_ name: Substring) -> Tag? {
        guard !name.isEmpty, name.utf8.count <= Tag.maximumLength, name.utf8.allSatisfy(WaitRequestScanner.isWordByte) else { return nil }
        return Tag(trusted: String(name))
    }

    private static func badID(_ element: Substring) -> InReply {
        .init(400, "\(element.prefix(60)) is not an id ([cursor:]id or *id, ids made of A-Z a-z 0-9 _, at most \(Tag.maximumLength) bytes)")
    }
}

/// An IN reply: `HTTP/1.0`, plain text, with its length (a send's is empty).
public struct InReply: Error, Equatable, Sendable {
    public var status: Int
    public var body: String

    public init(_ status: Int, _ body: String) {
        self.status = status
        self.body = status == 200 || body.isEmpty ? body : body + "\n"
    }

    public static let sent = InReply(200, "")

    public var bytes: [UInt8] {
        let reasons = [200: "OK", 400: "Bad Request", 403: "Forbidden", 413: "Content Too Large", 501: "Not Implemented",
                       503: "Service Unavailable"]
        return Array(("HTTP/1.0 \(self.status) \(reasons[self.status] ?? "Error")\r\nContent-Type: text/plain\r\n"
            + "Content-Length: \(self.body.utf8.count)\r\n\r\n" + self.body).utf8)
    }
}

extension Character {
    var isASCIIDigit: Bool { self.isASCII && self.isNumber }
}

extension Substring {
    func trimmingCharacters(in set: String) -> Substring {
        var slice = self
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return slice
    }
}
