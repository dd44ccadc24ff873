import COpenSSLCrypto
import PlexorBytes
import PlexorCore

/// The signature the publish trigger puts before every payload it sends
/// (`sql/003_signed_notifications_and_roles.sql`): HMAC-SHA-256 of the rest
/// of the payload, keyed by `plexor.notification_key`, as 64 lowercase hex
/// digits and a space. Any database session may `NOTIFY`, but only the
/// trigger (and whoever may read the key: the schema owner and
/// `plexor_gateway`) can sign.
public struct NotificationSignature: @unchecked Sendable {  // a C struct of plain hash states, copied by value
    /// 64 hex digits and a space.
    public static let prefixLength = 65

    private let key: plexor_hmac_sha256_key

    /// `key`: the raw key (32 bytes as the migration makes it; at most 64).
    public init?(key: [UInt8]) {
        guard !key.isEmpty, key.count <= 64 else { return nil }
        var prepared = plexor_hmac_sha256_key()
        guard plexor_hmac_sha256_key_init(&prepared, key, key.count) == 1 else { return nil }
        self.key = prepared
    }

    /// The payload after its signature, when the signature is right; `nil` otherwise.
    public func verify(_ payload: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        guard payload.count > Self.prefixLength, payload[Self.prefixLength - 1] == UInt8(ascii: " ") else { return nil }
        let body = UnsafeRawBufferPointer(rebasing: payload[Self.prefixLength...])
        // On the stack: this runs for every notification.
        let matches = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { scratch -> Bool in
            let expected = scratch.baseAddress!
            let given = expected + 32
            guard withUnsafePointer(to: self.key, { plexor_hmac_sha256($0, body.baseAddress, body.count, expected) }) == 1 else {
                return false
            }
            // Decode every digit before comparing, so the time taken does not say where they differ.
            var valid = true
            for index in 0..<32 {
                let high = hexDigitValue(payload[2 * index])
                let low = hexDigitValue(payload[2 * index + 1])
                valid = valid && high != nil && low != nil
                given[index] = (high ?? 0) << 4 | (low ?? 0)
            }
            return plexor_equal_secrets(given, expected, 32) == 1 && valid
        }
        guard matches else { return nil }
        return body
    }

    /// Signs `body` as the trigger does (for tests that play the trigger).
    public func sign(_ body: [UInt8]) -> [UInt8] {
        var mac = [UInt8](repeating: 0, count: 32)
        withUnsafePointer(to: self.key) { key in
            _ = body.withUnsafeBytes { plexor_hmac_sha256(key, $0.baseAddress, $0.count, &mac) }
        }
        let digits = Array("0123456789abcdef".utf8)
        return mac.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] } + [UInt8(ascii: " ")] + body
    }
}
