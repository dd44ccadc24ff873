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
