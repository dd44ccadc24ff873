/// A set of ASCII bytes as two 64-bit masks: one shift and one AND per
/// lookup, for the checks the parser makes on every byte of a head.
struct ByteSet: Sendable {
    let low: UInt64
    let high: UInt64

    @inline(__always)
    func contains(_ byte: UInt8) -> Bool {
        byte < 64 ? self.low >> byte & 1 == 1 : byte < 128 && self.high >> (byte - 64) & 1 == 1
    }

    /// `tchar` (RFC 9110 §5.6.2): what methods and field names are made of.
    static let token = ByteSet(low: 0x03FF_6CFA_0000_0000, high: 0x57FF_FFFF_C7FF_FFFE)
    /// What a request target may hold (RFC 3986): unreserved, sub-delims, `:@/?%[]`.
    static let uri = ByteSet(low: 0xAFFF_FFF2_0000_0000, high: 0x47FF_FFFE_AFFF_FFFF)
    /// A host name (reg-name): unreserved, sub-delims and `%`.
    static let hostName = ByteSet(low: 0x2BFF_7FF2_0000_0000, high: 0x47FF_FFFE_87FF_FFFE)
}
