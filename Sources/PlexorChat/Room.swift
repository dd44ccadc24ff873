/// A chat room: a site's main room (`SITE`) or a named room under it
/// (`SITE/SUB`). Site names are 1–32 characters from `a-z 0-9 -`, room
/// names 1–32 from `a-z 0-9 - _`, neither starting with `-` or `_`.
public struct Room: Sendable, Hashable, CustomStringConvertible {
    public let name: String

    public init?(_ name: some StringProtocol) {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, Self.isSite(parts[0]) else { return nil }
        if parts.count == 2 {
            guard Self.isPart(parts[1], extra: [UInt8(ascii: "-"), UInt8(ascii: "_")]) else { return nil }
        }
        self.name = String(name)
    }

    public static func isSite(_ name: some StringProtocol) -> Bool {
        Self.isPart(name, extra: [UInt8(ascii: "-")])
    }

    private static func isPart(_ part: some StringProtocol, extra: [UInt8]) -> Bool {
        let bytes = Array(part.utf8)
        guard (1...32).contains(bytes.count) else { return false }
        for (index, byte) in bytes.enumerated() {
            let plain = (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            guard plain || (index > 0 && extra.contains(byte)) else { return false }
        }
        return true
    }

    public var site: String { String(self.name.prefix { $0 != "/" }) }

    /// The tag carrying the room's messages.
    public var tag: String { "chat:" + self.name }

    /// The tag a person polls while in the room.
    public func presenceTag(person: Int64) -> String { "chat-presence:\(self.name):\(person)" }

    public var description: String { self.name }
}
