import COpenSSLCrypto

/// An HMAC-SHA-256 key, its two padded blocks hashed once (RFC 2104).
public struct HMACKey: @unchecked Sendable {  // a C struct of plain hash states, copied by value
    private let prepared: plexor_hmac_sha256_key

    /// Any key; one longer than a block (64 bytes) is hashed first, as RFC 2104 says.
    public init?(_ key: [UInt8]) {
        guard !key.isEmpty else { return nil }
        var block = key
        if block.count > 64 {
            block = [UInt8](repeating: 0, count: 32)
            guard key.withUnsafeBytes({ plexor_sha256($0.baseAddress, $0.count, &block) }) == 1 else { return nil }
        }
        var prepared = plexor_hmac_sha256_key()
        guard plexor_hmac_sha256_key_init(&prepared, block, block.count) == 1 else { return nil }
        self.prepared = prepared
    }

    /// The 32-byte MAC of `message`.
    public func mac(_ message: some Sequence<UInt8>) -> [UInt8] {
        let bytes = Array(message)
        var mac = [UInt8](repeating: 0, count: 32)
        let done = withUnsafePointer(to: self.prepared) { key in
            bytes.withUnsafeBytes { plexor_hmac_sha256(key, $0.baseAddress, $0.count, &mac) }
        }
        precondition(done == 1, "HMAC-SHA-256 failed")
        return mac
    }

    /// Whether `mac` is the MAC of `message`, compared in constant time.
    public func verifies(_ mac: [UInt8], of message: some Sequence<UInt8>) -> Bool {
        let expected = self.mac(message)
        return mac.count == expected.count && plexor_equal_secrets(mac, expected, expected.count) == 1
    }
}
