import NIOCore

/// The request parser under a fuzzer (`Sources/plexor-fuzz`): any bytes, fed
/// in pieces whose sizes the input also chooses. Traps when an invariant
/// breaks, so the fuzzer records the input as a crash.
public enum HTTPRequestParserFuzzing {
    /// Largest body the parser is given; small, so bodies are explored too.
    static let maximumBodyBytes = 1024

    public static func run(_ input: UnsafeRawBufferPointer) {
        guard let first = input.first else { return }
        let pieceSize = Int(first % 64) + 1
        let bytes = UnsafeRawBufferPointer(rebasing: input.dropFirst())
        var parser = HTTPRequestParser(maximumBodyBytes: Self.maximumBodyBytes)
        var failed = false
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + pieceSize)
            parser.append(ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: bytes[start..<end])))
            start = end
            while let event = parser.next() {
                precondition(!failed, "an event after a failure")
                switch event {
                case .continueExpected:
                    break
                case .request(let request):
                    precondition(request.target.readableBytes > 0, "a request without a target")
                    precondition((request.body?.readableBytes ?? 0) <= Self.maximumBodyBytes, "a body over the limit")
                case .failure(let failure):
                    precondition(failure.status.code >= 400 && failure.status.code < 600, "a failure that is not an error status")
                    failed = true
                }
            }
        }
        // A head larger than the limit is refused, never buffered without end.
        precondition(failed || parser.bufferedBytes <= HTTPRequestParser.maximumHeadBytes + Self.maximumBodyBytes + 1024,
                     "\(parser.bufferedBytes) bytes buffered")
    }
}
