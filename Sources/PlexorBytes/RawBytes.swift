#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Byte searches for parsing requests in place: the poll query in PlexorCore, the
/// request head in PlexorTransport. `memchr` and `memcmp` rather than the generic collection
/// algorithms, which are not specialised across modules.
extension UnsafeRawBufferPointer {
    /// Whether these are the bytes of `text`.
    @inlinable @inline(__always)
    public func equals(_ text: StaticString) -> Bool {
        self.count == text.utf8CodeUnitCount && (self.isEmpty || memcmp(self.baseAddress!, text.utf8Start, self.count) == 0)
    }

    /// The first `byte` at or after `start` and before `end` (the end of the buffer by default).
    @inlinable @inline(__always)
    public func index(of byte: UInt8, from start: Int, before end: Int? = nil) -> Int? {
        let end = end ?? self.count
        guard start < end, let found = memchr(self.baseAddress! + start, Int32(byte), end - start) else { return nil }
        return UnsafeRawPointer(found) - self.baseAddress!
    }
}
