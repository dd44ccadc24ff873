/// A message tag: 1–128 characters from `A-Z a-z 0-9 _ - . : /`, case-sensitive.
///
/// The same rule is enforced by the database (`plexor.tag_problem`), so a tag
/// the gateway accepts is one PostgreSQL accepts too.
public struct Tag: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let maximumLength = 128

    public let name: String

    /// Validates bytes (from a request) as a tag.
    public init(validating bytes: UnsafeRawBufferPointer) throws(TagError) {
        guard !bytes.isEmpty else { throw .empty }
        let shown = { (limit: Int) in String(decoding: bytes.prefix(limit), as: UTF8.self) }
        guard bytes.count <= Self.maximumLength else { throw .tooLong(shown(40)) }
        for byte in bytes where !Self.isAllowed(byte) {
            throw .invalidCharacter(shown(Self.maximumLength))
        }
        self.name = String(decoding: bytes, as: UTF8.self)
    }

    /// Validates `text` as a tag.
    public init(validating text: String) throws(TagError) {
        var text = text
        self = try text.withUTF8 { bytes in
            Result { () throws(TagError) in try Tag(validating: UnsafeRawBufferPointer(bytes)) }
        }.get()
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
