/// The rules for what people type: nicknames and messages are text, never
/// markup; control characters are refused (a message keeps its newlines),
/// and so are the direction overrides and line separators that make one
/// text display as another. Lengths count Unicode scalars, as PostgreSQL's
/// `length()` does.
public enum ChatText {
    public struct Problem: Error, Equatable, CustomStringConvertible {
        public var description: String

        public init(description: String) {
            self.description = description
        }
    }

    public static let nicknameLength = 2...32
    public static let messageLength = 1...2000

    /// A guest's nickname, trimmed.
    public static func nickname(_ raw: String) throws(Problem) -> String {
        try self.checked("nickname", raw, length: Self.nicknameLength, newlines: false)
    }

    /// A message's text, trimmed, with CRLF made LF.
    public static func message(_ raw: String) throws(Problem) -> String {
        try self.checked("text", raw.replacingCRLF(), length: Self.messageLength, newlines: true)
    }

    /// A moderator's reason for a ban, trimmed.
    public static func checkedReason(_ raw: String) throws(Problem) -> String {
        try self.checked("reason", raw, length: 1...500, newlines: false)
    }

    private static func checked(_ what: String, _ raw: String, length: ClosedRange<Int>, newlines: Bool) throws(Problem) -> String {
        let text = raw.trimmingWhitespace()
        let count = text.unicodeScalars.count
        guard count >= length.lowerBound else {
            throw Problem(description: text.isEmpty ? "the \(what) is empty" : "the \(what) is shorter than \(length.lowerBound) characters")
        }
        guard count <= length.upperBound else { throw Problem(description: "the \(what) is longer than \(length.upperBound) characters") }
        for scalar in text.unicodeScalars {
            if scalar == "\n" && newlines { continue }
            if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
                throw Problem(description: "the \(what) has a control character")
            }
            if scalar.value == 0x2028 || scalar.value == 0x2029 || (0x202A...0x202E).contains(scalar.value)
                || (0x2066...0x2069).contains(scalar.value) {
                throw Problem(description: "the \(what) has a line separator or a direction override")
            }
        }
        return text
    }
}

extension String {
    /// Without spaces, tabs and newlines at either end (what SQL's `btrim(.., ' \n\r\t')` removes).
    func trimmingWhitespace() -> String {
        let isSpace: (Unicode.Scalar) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\r" || $0 == "\t" }
        let scalars = self.unicodeScalars
        guard let first = scalars.firstIndex(where: { !isSpace($0) }), let last = scalars.lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(scalars[first...last])
    }

    func replacingCRLF() -> String {
        self.contains("\r\n") ? self.split(separator: "\r\n", omittingEmptySubsequences: false).joined(separator: "\n") : self
    }
}
