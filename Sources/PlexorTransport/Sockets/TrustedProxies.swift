import Glibc

/// The proxies whose `X-Forwarded-For` is believed (`--trusted-proxies`):
/// behind them, a client's address is the one the nearest trusted proxy saw,
/// so per-address limits and bans apply to people rather than to the proxy.
public struct TrustedProxies: Sendable, Equatable {
    /// An address as bytes: 4 for IPv4 (IPv4-mapped IPv6 included), 16 for IPv6.
    struct Address: Equatable {
        var bytes: [UInt8]

        init?(_ text: Substring) {
            let text = String(text)
            var v4 = in_addr()
            if inet_pton(AF_INET, text, &v4) == 1 {
                self.bytes = withUnsafeBytes(of: &v4) { Array($0) }
                return
            }
            var v6 = in6_addr()
            guard text.count <= 45, inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
            let bytes = withUnsafeBytes(of: &v6) { Array($0) }
            let mapped = bytes[..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
            self.bytes = mapped ? Array(bytes[12...]) : bytes
        }

        /// The usual spelling (so one address is one key however it was written).
        var text: String {
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            let family = self.bytes.count == 4 ? AF_INET : AF_INET6
            _ = self.bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    struct Network: Equatable {
        var address: Address
        var prefixLength: Int

        func contains(_ other: Address) -> Bool {
            guard other.bytes.count == self.address.bytes.count else { return false }
            var remaining = self.prefixLength
            for (mine, theirs) in zip(self.address.bytes, other.bytes) where remaining > 0 {
                let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
                if mine & mask != theirs & mask { return false }
                remaining -= 8
            }
            return true
        }
    }

    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    private var networks: [Network]

    /// Most networks a list may name, and most `X-Forwarded-For` entries looked at.
    public static let maximumNetworks = 100
    static let maximumHops = 32

    public static let none = TrustedProxies(networks: [])

    private init(networks: [Network]) {
        self.networks = networks
    }

    /// `list`: comma-separated addresses or networks (`10.0.0.0/8`, `::1`, `fd00::/8`).
    public init(parsing list: String) throws {
        let entries = list.split(separator: ",").map { $0.trimmingSpaces }
        guard entries.count <= Self.maximumNetworks else {
            throw ParseError(description: "at most \(Self.maximumNetworks) trusted proxies; got \(entries.count)")
        }
        self.networks = try entries.map { entry in
            let parts = entry.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard let address = Address(parts[0]) else {
                throw ParseError(description: "not an IP address or network: \(entry.prefix(60))")
            }
            let bits = address.bytes.count * 8
            guard parts.count == 1 || (parts[1].count <= 3 && parts[1].allSatisfy(\.isASCIIDigit)),
                  let length = parts.count == 1 ? bits : Int(parts[1]), length <= bits else {
                throw ParseError(description: "not a prefix length from 0 to \(bits): \(entry.prefix(60))")
            }
            return Network(address: address, prefixLength: length)
        }
    }

    public var isEmpty: Bool { self.networks.isEmpty }

    private func trusts(_ address: Address) -> Bool {
        self.networks.contains { $0.contains(address) }
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy;
    /// then the rightmost `X-Forwarded-For` entry that is not itself a
    /// trusted proxy. An entry that is not an address (no trusted proxy
    /// writes one) stops the walk at the last trusted hop.
    public func client(peer: String?, forwardedFor: String?) -> String? {
        guard !self.networks.isEmpty, let peer, var hop = Address(Substring(peer)) else { return peer }
        guard self.trusts(hop), let forwardedFor else { return hop.text }
        for entry in forwardedFor.split(separator: ",").reversed().prefix(Self.maximumHops) {
            guard let address = Address(entry.trimmingSpaces) else { break }
            hop = address
            if !self.trusts(address) { break }
        }
        return hop.text
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = self.firstIndex(where: { !isSpace($0) }), let last = self.lastIndex(where: { !isSpace($0) }) else { return "" }
        return self[first...last]
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { self.isASCII && self.isNumber }
}
