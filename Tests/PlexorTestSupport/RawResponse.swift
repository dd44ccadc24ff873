import Foundation

/// A test failed for a reason the test names.
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A response read from raw bytes (exactly one, with Content-Length or none).
public struct RawResponse {
    public var status: Int
    public var headers: [String: String] = [:]
    public var body: String

    public init(_ text: String) throws {
        guard let split = text.range(of: "\r\n\r\n") else { throw TestFailure("no end of head in \(text)") }
        var lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw TestFailure("bad status line in \(text)") }
        self.status = status
        for line in lines {
            let parts = line.split(separator: ":", maxSplits: 1)
            self.headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces)
        }
        self.body = String(text[split.upperBound...])
        if let length = self.headers["content-length"].flatMap(Int.init) {
            guard self.body.utf8.count == length else { throw TestFailure("body of \(self.body.utf8.count) bytes, not \(length)") }
        }
    }
}
