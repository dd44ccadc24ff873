/// The value of ASCII decimal digits (no sign, no spaces); `nil` for any
/// other byte or a value beyond `Int64`. No digits at all is 0.
@inlinable
public func decimalValue<Bytes: Sequence>(_ digits: Bytes) -> Int64? where Bytes.Element == UInt8 {
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

/// The value of one hexadecimal digit (either case); `nil` for any other byte.
@inlinable @inline(__always)
public func hexDigitValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
    default: return nil
    }
}

/// The bytes spelled by pairs of hexadecimal digits; `nil` for an odd count or another byte.
@inlinable
public func hexDecoded<Digits: Collection>(_ digits: Digits) -> [UInt8]? where Digits.Element == UInt8 {
    guard digits.count % 2 == 0 else { return nil }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(digits.count / 2)
    var iterator = digits.makeIterator()
    while let high = iterator.next() {
        guard let high = hexDigitValue(high), let low = iterator.next().flatMap(hexDigitValue) else { return nil }
        bytes.append(high << 4 | low)
    }
    return bytes
}
