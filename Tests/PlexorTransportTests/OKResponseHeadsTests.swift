import NIOCore
import Testing
@testable import PlexorTransport

@Suite struct OKResponseHeadsTests {
    func address(_ buffer: ByteBuffer) -> UnsafeRawPointer? {
        buffer.withUnsafeReadableBytes { $0.baseAddress }
    }

    @Test func everyWaiterOfOneLengthAndFramingSharesOneHead() throws {
        let framing = OKResponseHeads(corsOrigin: nil)
        let keepAlive = ResponseFraming(version: .http1_1, keepAlive: true)
        let first = framing.head(forBodyLength: 33, framing: keepAlive)
        let second = framing.head(forBodyLength: 33, framing: keepAlive)
        #expect(self.address(first) == self.address(second))
        #expect(String(buffer: first) == "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 33\r\nCache-Control: no-store\r\n\r\n")
        // Another framing or another length gets a head of its own.
        let closing = framing.head(forBodyLength: 33, framing: .closing)
        #expect(String(buffer: closing).contains("Connection: close\r\n"))
        let longer = framing.head(forBodyLength: 1234, framing: keepAlive)
        #expect(String(buffer: longer).contains("Content-Length: 1234\r\n"))
        #expect(self.address(longer) != self.address(first))
    }
}
