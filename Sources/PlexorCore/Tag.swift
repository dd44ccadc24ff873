/// A message tag: 1–128 characters from `A-Z a-z 0-9 _ - . : /`, case-sensitive.
///
/// The same rule is enforced by the database (`plexor.tag_problem`), so a tag
/// the gateway accepts is one PostgreSQL accepts too.
public struct Tag: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let maximumLength = 128

    public let name: String

    /// Validates `text` as a tag.
    public init(validating text: Substring) throws(TagError) {
        guard !text.isEmpty else { throw .empty }
        guard text.utf8.count <= Self.maximumLength else { throw .tooLong(String(text.prefix(40))) }
        for byte in text.utf8 where !Self.isAllowed(byte) {
            throw .invalidCharacter(String(text.prefix(Self.maximumLength)))
        }
        self.name = String(text)
    }

    public init(validating text: String) throws(TagError) {
        try self.init(validating: text[...])
    }

    /// For text already validated (by the database, or by this type earlier).
    public init(trusted name: String) {
        self.name = name
    }

    public var description: String { self.name }

    public static func < (lhs: Tag, rhs: Tag) -> Bool { lhs.name < rhs.name }

    @inline(__always)
    static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "/"):
            return true
        default:
            return false
        }
    }
}

public enum TagError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty
    case tooLong(String)
    case invalidCharacter(String)

    public var description: String {
        switch self {
        case .empty:
            return "a tag must not be empty"
        case .tooLong(let start):
            return "tag \(start)... is longer than \(Tag.maximumLength) characters"
        case .invalidCharacter(let tag):
            return "tag \"\(tag)\" has a character outside A-Z a-z 0-9 _ - . : /"
        }
    }
}
