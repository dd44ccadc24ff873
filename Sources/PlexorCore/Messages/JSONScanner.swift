import PlexorBytes

/// A strict JSON (RFC 8259) scanner that validates a document and reports
/// where each value lies, so a value can be passed on byte for byte.
struct JSONScanner {
    enum Failure: Error, Equatable {
        case syntax(offset: Int, expected: String)
        case tooDeep
    }

    static let maximumDepth = 512

    private let bytes: [UInt8]
    private var position = 0
    private var depth = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The members of a top-level object: key → byte range of the value.
    static func topLevelMembers(of bytes: [UInt8]) throws(Failure) -> [(key: String, value: Range<Int>)] {
        var scanner = JSONScanner(bytes)
        scanner.skipWhitespace()
        guard scanner.peek() == UInt8(ascii: "{") else { throw scanner.failure("an object") }
        var members: [(key: String, value: Range<Int>)] = []
        try scanner.scanObject { key, range in members.append((key, range)) }
        scanner.skipWhitespace()
        guard scanner.position == bytes.count else { throw scanner.failure("the end of the document") }
        return members
    }

    /// The range of the one value `bytes` holds (whitespace around it allowed).
    static func singleValue(of bytes: [UInt8]) throws(Failure) -> Range<Int> {
        var scanner = JSONScanner(bytes)
        let range = try scanner.scanValue()
        scanner.skipWhitespace()
        guard scanner.position == bytes.count else { throw scanner.failure("the end of the document") }
        return range
    }

    /// The strings of an array of strings (`nil` when the value is not one).
    static func stringArray(_ bytes: [UInt8], range: Range<Int>) -> [String]? {
        var scanner = JSONScanner(Array(bytes[range]))
        scanner.skipWhitespace()
        guard scanner.peek() == UInt8(ascii: "[") else { return nil }
        scanner.position += 1
        var strings: [String] = []
        scanner.skipWhitespace()
        if scanner.peek() == UInt8(ascii: "]") { return strings }
        while true {
            scanner.skipWhitespace()
            guard scanner.peek() == UInt8(ascii: "\""), let string = try? scanner.scanString() else { return nil }
            strings.append(string)
            scanner.skipWhitespace()
            switch scanner.next() {
            case UInt8(ascii: ","): continue
            case UInt8(ascii: "]"): return strings
            default: return nil
            }
        }
    }

    private func peek() -> UInt8? {
        self.position < self.bytes.count ? self.bytes[self.position] : nil
    }

    private mutating func next() -> UInt8? {
        guard self.position < self.bytes.count else { return nil }
        defer { self.position += 1 }
        return self.bytes[self.position]
    }

    private func failure(_ expected: String) -> Failure {
        .syntax(offset: self.position, expected: expected)
    }

    private mutating func skipWhitespace() {
        while let byte = self.peek(),
              byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\t") {
            self.position += 1
        }
    }

    /// Scans one value (after whitespace); returns its range.
    private mutating func scanValue() throws(Failure) -> Range<Int> {
        self.skipWhitespace()
        let start = self.position
        switch self.peek() {
        case UInt8(ascii: "{"):
            try self.scanObject { _, _ in }
        case UInt8(ascii: "["):
            try self.scanArray()
        case UInt8(ascii: "\""):
            _ = try self.scanString()
        case UInt8(ascii: "t"):
            try self.scanLiteral("true")
        case UInt8(ascii: "f"):
            try self.scanLiteral("false")
        case UInt8(ascii: "n"):
            try self.scanLiteral("null")
        case let byte? where byte == UInt8(ascii: "-") || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")):
            try self.scanNumber()
        default:
            throw self.failure("a JSON value")
        }
        return start..<self.position
    }

    private mutating func enter() throws(Failure) {
        self.depth += 1
        guard self.depth <= Self.maximumDepth else { throw .tooDeep }
    }

    private mutating func scanObject(_ member: (String, Range<Int>) -> Void) throws(Failure) {
        try self.enter()
        defer { self.depth -= 1 }
        self.position += 1
        self.skipWhitespace()
        if self.peek() == UInt8(ascii: "}") {
            self.position += 1
            return
        }
        while true {
            self.skipWhitespace()
            guard self.peek() == UInt8(ascii: "\"") else { throw self.failure("a member name") }
            let key = try self.scanString()
            self.skipWhitespace()
            guard self.next() == UInt8(ascii: ":") else { throw self.failure("':'") }
            let range = try self.scanValue()
            member(key, range)
            self.skipWhitespace()
            switch self.next() {
            case UInt8(ascii: ","): continue
            case UInt8(ascii: "}"): return
            default:
                self.position -= 1
                throw self.failure("',' or '}'")
            }
        }
    }

    private mutating func scanArray() throws(Failure) {
        try self.enter()
        defer { self.depth -= 1 }
        self.position += 1
        self.skipWhitespace()
        if self.peek() == UInt8(ascii: "]") {
            self.position += 1
            return
        }
        while true {
            _ = try self.scanValue()
            self.skipWhitespace()
            switch self.next() {
            case UInt8(ascii: ","): continue
            case UInt8(ascii: "]"): return
            default:
                self.position -= 1
                throw self.failure("',' or ']'")
            }
        }
    }

    private mutating func scanLiteral(_ literal: StaticString) throws(Failure) {
        let count = literal.utf8CodeUnitCount
        guard self.position + count <= self.bytes.count else { throw self.failure("\(literal)") }
        for index in 0..<count where self.bytes[self.position + index] != literal.utf8Start[index] {
            throw self.failure("\(literal)")
        }
        self.position += count
    }

    private mutating func scanDigits() -> Int {
        let start = self.position
        while let byte = self.peek(), byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { self.position += 1 }
        return self.position - start
    }

    private mutating func scanNumber() throws(Failure) {
        if self.peek() == UInt8(ascii: "-") { self.position += 1 }
        if self.peek() == UInt8(ascii: "0") {
            self.position += 1
        } else if self.scanDigits() == 0 {
            throw self.failure("a digit")
        }
        if self.peek() == UInt8(ascii: ".") {
            self.position += 1
            guard self.scanDigits() > 0 else { throw self.failure("a digit") }
        }
        if self.peek() == UInt8(ascii: "e") || self.peek() == UInt8(ascii: "E") {
            self.position += 1
            if self.peek() == UInt8(ascii: "+") || self.peek() == UInt8(ascii: "-") { self.position += 1 }
            guard self.scanDigits() > 0 else { throw self.failure("a digit") }
        }
    }

    /// Scans a string and returns it decoded.
    private mutating func scanString() throws(Failure) -> String {
        self.position += 1
        var decoded: [UInt8] = []
        while true {
            guard let byte = self.next() else { throw self.failure("the end of a string") }
            switch byte {
            case UInt8(ascii: "\""):
                guard let string = String(validating: decoded, as: UTF8.self) else {
                    throw self.failure("valid UTF-8")
                }
                return string
            case UInt8(ascii: "\\"):
                guard let escape = self.next() else { throw self.failure("an escape") }
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
                case UInt8(ascii: "b"): decoded.append(0x08)
                case UInt8(ascii: "f"): decoded.append(0x0C)
                case UInt8(ascii: "n"): decoded.append(0x0A)
                case UInt8(ascii: "r"): decoded.append(0x0D)
                case UInt8(ascii: "t"): decoded.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try self.scanHex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard self.next() == UInt8(ascii: "\\"), self.next() == UInt8(ascii: "u") else {
                            throw self.failure("a low surrogate")
                        }
                        let low = try self.scanHex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw self.failure("a low surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw self.failure("a Unicode scalar") }
                    decoded.append(contentsOf: Array(String(Character(unicode)).utf8))
                default:
                    throw self.failure("a valid escape")
                }
            case 0x00..<0x20:
                throw self.failure("no control characters in a string")
            default:
                decoded.append(byte)
            }
        }
    }

    private mutating func scanHex4() throws(Failure) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = self.next(), let digit = hexDigitValue(byte) else { throw self.failure("four hex digits") }
            value = value << 4 | UInt32(digit)
        }
        return value
    }
}
