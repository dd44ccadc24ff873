import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import PlexorTransport

/// Our HTTP/1.1 parser against SwiftNIO's decoder (llhttp) on the same
/// bytes: requests and thousands of mutations of them must be accepted or
/// refused alike, with the same method, target, version, keep-alive,
/// authorization and body — except where RFC 9112 lets a server be stricter
/// and we are, each such rule named in `IntendedDifference`.
@Suite struct HTTPParserDifferentialTests {
    /// What a parser made of the first request in the bytes.
    enum Outcome: Equatable, CustomStringConvertible {
        case request(method: String, target: String, version: String, keepAlive: Bool, authorization: String?, body: [UInt8])
        case refused
        /// The bytes end before the first request does.
        case incomplete

        var description: String {
            switch self {
            case .request(let method, let target, let version, let keepAlive, let authorization, let body):
                return "\(method) \(target) \(version) keepAlive=\(keepAlive) authorization=\(authorization ?? "-") body=\(String(decoding: body, as: UTF8.self).debugDescription)"
            case .refused: return "refused"
            case .incomplete: return "incomplete"
            }
        }
    }

    static func ours(_ bytes: [UInt8]) -> Outcome {
        var parser = HTTPRequestParser(maximumBodyBytes: 1 << 20)
        parser.append(ByteBuffer(bytes: bytes))
        while let event = parser.next() {
            switch event {
            case .continueExpected:
                continue
            case .failure:
                return .refused
            case .request(let request):
                return .request(method: request.method.rawValue, target: String(buffer: request.target),
                                version: "\(request.version)", keepAlive: request.keepAlive,
                                authorization: request.authorization, body: request.body.map { Array($0.readableBytesView) } ?? [])
            }
        }
        return .incomplete
    }

    static func nio(_ bytes: [UInt8]) -> Outcome {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)))
        defer { _ = try? channel.finish() }
        // An error in a later request is thrown after the first was decoded: read what came first.
        let failed = (try? channel.writeInbound(ByteBuffer(bytes: bytes))) == nil
        var head: HTTPRequestHead?
        var body: [UInt8] = []
        while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
            switch part {
            case .head(let received):
                head = received
            case .body(let chunk):
                body += chunk.readableBytesView
            case .end:
                guard let head else { return .refused }
                // Without the blanks after a field value, which are not part of it (RFC 9110 §5.5) but NIO keeps.
                let authorization = head.headers.first(name: "Authorization").map { String($0.reversed().drop { $0 == " " || $0 == "\t" }.reversed()) }
                return .request(method: head.method.rawValue, target: head.uri, version: "\(head.version)",
                                keepAlive: head.isKeepAlive, authorization: authorization, body: body)
            }
        }
        return failed ? .refused : .incomplete
    }

    /// Where RFC 9112 lets a server refuse (or read) a request that NIO's
    /// decoder reads otherwise, and this gateway does so on purpose.
    enum IntendedDifference: CaseIterable {
        /// An HTTP/1.1 request without exactly one valid Host field is a 400 (RFC 9112 §3.2).
        case host
        /// Only `Expect: 100-continue` (else 417) and `Transfer-Encoding: chunked` (else 501).
        case unsupportedFeature
        /// Any token is a method here (answered 405 by the router); llhttp knows a fixed list.
        case unknownMethod
        /// Only HTTP/1.0 and HTTP/1.1; llhttp reads other 1.x and 0.9 lines.
        case version
        /// An absolute-form target is routed on its path.
        case absoluteForm
        /// A chunked HTTP/1.0 request is read and the connection closed (RFC 9112 §6.1).
        case chunkedHTTP10
        /// Blanks after a field value are not part of it (RFC 9110 §5.5); llhttp refuses
        /// a `Content-Length` and misreads a `Connection` that has them.
        case trailingBlankInFieldValue
        /// Blanks around a chunk extension's `;` and `=` (BWS, RFC 9112 §7.1.1); llhttp refuses them.
        case blanksInChunkExtension

        func explains(_ text: String, ours: Outcome, nio: Outcome) -> Bool {
            let lower = text.lowercased()
            let head = lower.components(separatedBy: "\r\n\r\n").first ?? lower
            let fields = head.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" })
                .map { $0.trimmingCharacters(in: .whitespaces) }
            switch self {
            case .host:
                let hosts = fields.dropFirst().filter { $0.hasPrefix("host:") }
                return ours == .refused && lower.contains("http/1.1") && (hosts.count != 1 || hosts[0].dropFirst(5).contains { " /@[]".contains($0) || $0.asciiValue.map { $0 < 0x20 || $0 >= 0x7f } ?? true })
            case .unsupportedFeature:
                let odd = fields.contains { ($0.hasPrefix("expect:") && $0 != "expect: 100-continue") || ($0.hasPrefix("transfer-encoding:") && $0 != "transfer-encoding: chunked") }
                return ours == .refused && odd
            case .unknownMethod:
                guard case .request(let method, _, _, _, _, _) = ours else { return false }
                return nio == .refused && !HTTPMethod(rawValue: method).isKnown
            case .version:
                let line = fields.first ?? ""
                return ours == .refused && !(line.hasSuffix(" http/1.1") || line.hasSuffix(" http/1.0"))
            case .absoluteForm:
                guard case .request(let m1, let t1, let v1, let k1, let a1, let b1) = ours,
                      case .request(let m2, let t2, let v2, let k2, let a2, let b2) = nio,
                      t2.lowercased().hasPrefix("http") else { return false }
                return m1 == m2 && v1 == v2 && k1 == k2 && a1 == a2 && b1 == b2 && t2.hasSuffix(t1.drop { $0 == "/" })
            case .chunkedHTTP10:
                guard case .request(_, _, let version, let keepAlive, _, _) = ours else { return false }
                return version == "HTTP/1.0" && !keepAlive && lower.contains("chunked")
            case .trailingBlankInFieldValue:
                guard case .request = ours else { return false }
                let lines = head + "\r\n"
                return lines.contains(" \r\n") || lines.contains("\t\r\n")
            case .blanksInChunkExtension:
                guard case .request = ours, lower.contains("chunked") else { return false }
                let body = lower.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
                return body.components(separatedBy: "\r\n").contains { line in
                    line.contains(";") && (line.contains(" ") || line.contains("\t"))
                }
            }
        }
    }

    static let seeds: [String] = [
        "GET /poll?tags=chat@17,news&timeout=25 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: keep-alive\r\n\r\n",
        "POST /publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nContent-Length: 11\r\n\r\nhello world",
        "POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n",
        "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "POST /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
        "OPTIONS /poll HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n",
        "GET http://example.com/poll?tags=a HTTP/1.1\r\nHost: example.com\r\n\r\n",
    ]

    static let mutationsPerSeed = 6000

    /// Bytes a mutation inserts: the ones HTTP framing turns on.
    static let interesting: [UInt8] = Array("\r\n :\t\0\u{7f}0aZ;,/?%\"".utf8) + [0x80, 0xff]

    @Test func ourParserAndNIOsAgreeOnSeedsAndTheirMutations() {
        var generator = SeededGenerator(seed: 0x5eed)
        var compared = 0
        var unexplained: [String] = []
        for seed in Self.seeds {
            let original = Array(seed.utf8)
            let (ours, nio) = (Self.ours(original), Self.nio(original))
            #expect(ours == nio || IntendedDifference.absoluteForm.explains(seed, ours: ours, nio: nio), "\(seed.debugDescription)")
            for _ in 0..<Self.mutationsPerSeed {
                var bytes = original
                for _ in 0..<Int.random(in: 1...3, using: &generator) {
                    Self.mutate(&bytes, using: &generator)
                }
                let ours = Self.ours(bytes), nio = Self.nio(bytes)
                compared += 1
                guard ours != nio else { continue }
                // Bytes that end mid-request say nothing yet; NIO decides some of those early.
                if ours == .incomplete || nio == .incomplete { continue }
                let text = String(decoding: bytes, as: UTF8.self)
                if IntendedDifference.allCases.contains(where: { $0.explains(text, ours: ours, nio: nio) }) { continue }
                unexplained.append("\(text.debugDescription)\n  ours: \(ours)\n  NIO:  \(nio)")
            }
        }
        #expect(compared == Self.seeds.count * Self.mutationsPerSeed)
        #expect(unexplained.isEmpty, "\(unexplained.count) differences, e.g.:\n\(unexplained.prefix(8).joined(separator: "\n"))")
        if let dump = ProcessInfo.processInfo.environment["PLEXOR_DIFFERENTIAL_DUMP"] {
            try? unexplained.joined(separator: "\n").write(toFile: dump, atomically: true, encoding: .utf8)
        }
    }

    static func mutate(_ bytes: inout [UInt8], using generator: inout SeededGenerator) {
        guard !bytes.isEmpty else { return }
        let index = Int.random(in: 0..<bytes.count, using: &generator)
        switch Int.random(in: 0..<4, using: &generator) {
        case 0: bytes[index] = Self.interesting.randomElement(using: &generator)!
        case 1: bytes.insert(Self.interesting.randomElement(using: &generator)!, at: index)
        case 2: bytes.remove(at: index)
        default: bytes[index] = UInt8.random(in: 0...255, using: &generator)
        }
    }
}

/// A deterministic random source, so a failure names inputs that recur.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        self.state = seed
    }

    mutating func next() -> UInt64 {
        // SplitMix64.
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = self.state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}

extension HTTPMethod {
    /// One of the methods llhttp knows (what NIO's decoder accepts).
    var isKnown: Bool {
        if case .RAW = self { return false }
        return true
    }
}
