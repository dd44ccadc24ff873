import NIOCore

extension ByteBuffer {
    /// Writes `value` in decimal without making a `String` of it first:
    /// responses carry several numbers each, on the hottest path.
    @discardableResult
    public mutating func writeDecimal<Integer: BinaryInteger>(_ value: Integer) -> Int {
        var magnitude = UInt64(value.magnitude)
        var digits = 1
        var limit: UInt64 = 10
        while magnitude >= limit, digits < 20 {
            digits += 1
            limit = limit &* 10
        }
        let negative = value < 0
        if negative { self.writeInteger(UInt8(ascii: "-")) }
        let start = self.writerIndex
        self.writeRepeatingByte(UInt8(ascii: "0"), count: digits)
        var index = start + digits - 1
        while magnitude > 0 {
            self.setInteger(UInt8(ascii: "0") + UInt8(magnitude % 10), at: index)
            magnitude /= 10
            index -= 1
        }
        return digits + (negative ? 1 : 0)
    }
}

/// The value of ASCII decimal digits (no sign, no spaces); `nil` for any
/// other byte or a value beyond `Int64`. No digits at all is 0.
func decimalValue<Bytes: Sequence>(_ digits: Bytes) -> Int64? where Bytes.Element == UInt8 {
    var value: Int64 = 0
    for byte in digits {
        guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
        let (times10, overflowed) = value.multipliedReportingOverflow(by: 10)
        let (sum, overflowedAgain) = times10.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
        guard !overflowed, !overflowedAgain else { return nil }
        value = sum
    }
    return value
}
