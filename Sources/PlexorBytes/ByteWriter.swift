import NIOCore

/// Appends bytes through a raw pointer into space reserved beforehand.
/// `ByteBuffer`'s own writes check capacity and uniqueness on every call;
/// an answer is a few dozen small writes, so it reserves its bound once and
/// writes through this.
@frozen
public struct ByteWriter {
    @usableFromInline let start: UnsafeMutableRawPointer
    @usableFromInline let capacity: Int
    @usableFromInline var written = 0
    /// Bytes written so far.
    @inlinable public var count: Int { self.written }

    @inlinable
    public init(_ space: UnsafeMutableRawBufferPointer) {
        self.start = space.baseAddress!
        self.capacity = space.count
    }

    @inlinable @inline(__always)
    public mutating func write(_ text: StaticString) {
        self.write(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    @inlinable @inline(__always)
    public mutating func write(_ bytes: UnsafeRawBufferPointer) {
        precondition(self.count + bytes.count <= self.capacity, "ByteWriter: the reserved space is too small")
        if bytes.count > 0 { (self.start + self.count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        self.written += bytes.count
    }

    @inlinable @inline(__always)
    public mutating func write(byte: UInt8) {
        precondition(self.count < self.capacity, "ByteWriter: the reserved space is too small")
        self.start.storeBytes(of: byte, toByteOffset: self.count, as: UInt8.self)
        self.written += 1
    }

    @inlinable
    public mutating func write(_ text: String) {
        let written: Void? = text.utf8.withContiguousStorageIfAvailable { self.write(UnsafeRawBufferPointer($0)) }
        if written == nil {
            for byte in text.utf8 { self.write(byte: byte) }
        }
    }

    @inlinable
    public mutating func write(_ bytes: ByteBuffer) {
        bytes.withUnsafeReadableBytes { self.write($0) }
    }

    /// `value` in decimal: at most `maximumDecimalLength` bytes.
    @inlinable
    public mutating func writeDecimal(_ value: Int64) {
        precondition(self.count + Self.maximumDecimalLength <= self.capacity, "ByteWriter: the reserved space is too small")
        if value < 0 { self.write(byte: UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits = 1
        var limit: UInt64 = 10
        while digits < 20, magnitude >= limit {
            digits += 1
            limit &*= 10
        }
        var index = self.count + digits - 1
        repeat {
            self.start.storeBytes(of: UInt8(ascii: "0") + UInt8(magnitude % 10), toByteOffset: index, as: UInt8.self)
            magnitude /= 10
            index -= 1
        } while magnitude > 0
        self.written += digits
    }

    /// The longest decimal `writeDecimal` writes: a sign and 19 digits.
    public static let maximumDecimalLength = 20
}

extension ByteBuffer {
    /// Writes at most `bound` bytes through a `ByteWriter` in one reservation.
    @inlinable
    public mutating func write(bound: Int, _ body: (inout ByteWriter) -> Void) {
        self.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { space in
            var writer = ByteWriter(space)
            body(&writer)
            return writer.count
        }
    }

    /// Writes `value` in decimal without making a `String` of it first;
    /// returns how many bytes that took.
    @inlinable @discardableResult
    public mutating func writeDecimal<Integer: FixedWidthInteger & SignedInteger>(_ value: Integer) -> Int {
        var written = 0
        self.write(bound: ByteWriter.maximumDecimalLength) {
            $0.writeDecimal(Int64(value))
            written = $0.count
        }
        return written
    }
}
