import NIOCore
import NIOHTTP1
import Testing
@testable import PlexorTransport

@Suite struct HTTPRequestParserTests {
    /// Feeds `text` in pieces of `pieceSize` bytes and collects every event.
    func events(_ text: String, pieceSize: Int = .max, maximumBodyBytes: Int = 100) -> [HTTPRequestParser.Event] {
        var parser = HTTPRequestParser(maximumBodyBytes: maximumBodyBytes)
        var events: [HTTPRequestParser.Event] = []
        let bytes = Array(text.utf8)
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + min(pieceSize, bytes.count))
            parser.append(ByteBuffer(bytes: bytes[start..<end]))
            while let event = parser.next() { events.append(event) }
            start = end
        }
        return events
    }

    func request(_ target: String, method: HTTPMethod = .GET, version: HTTPVersion = .http1_1, keepAlive: Bool = true,
                 authorization: String? = nil, cookie: String? = nil, forwardedFor: String? = nil,
                 body: String? = nil) -> HTTPRequestParser.Event {
        .request(HTTPRequest(method: method, target: ByteBuffer(string: target), version: version, keepAlive: keepAlive,
                             authorization: authorization, ifNoneMatch: nil, cookie: cookie, forwardedFor: forwardedFor,
                             body: body.map { ByteBuffer(string: $0) }))
    }

    func failure(_ status: HTTPResponseStatus, _ message: String) -> HTTPRequestParser.Event {
        .failure(HTTPRequestFailure(status: status, message: message))
    }

    @Test func aGetInOnePieceOrByteByByte() {
        let text = "GET /poll?tags=a@3 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n"
        let expected = [self.request("/poll?tags=a@3", authorization: "Bearer t")]
        #expect(self.events(text) == expected)
        #expect(self.events(text, pieceSize: 1) == expected)
    }

    @Test func forwardedForFieldsAreKeptAndJoinedInOrder() {
        #expect(self.events("GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\nx-forwarded-for: 5.6.7.8, 10.0.0.1\r\n\r\n")
                == [self.request("/", forwardedFor: "1.2.3.4, 5.6.7.8, 10.0.0.1")])
    }

    @Test func cookieFieldsAreKeptAndJoined() {
        #expect(self.events("GET / HTTP/1.1\r\nHost: x\r\nCookie: a=1\r\ncookie: b=2; c=3\r\n\r\n")
                == [self.request("/", cookie: "a=1; b=2; c=3")])
    }

    @Test func leadingEmptyLinesAreSkippedAndBareLineFeedsRefused() {
        #expect(self.events("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n") == [self.request("/")])
        // LF alone ends no line: a proxy that reads it otherwise would see other requests (smuggling).
        #expect(self.events("GET / HTTP/1.1\nHost: x\r\n\r\n") == [self.failure(.badRequest, "malformed request line")])
        #expect(self.events("GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n") == [self.failure(.badRequest, "a line ends without CR")])
        #expect(self.events("GET / HTTP/1.1\r\nHost: x\r\n\nX: y\r\n\r\n") == [self.failure(.badRequest, "a line ends without CR")])
        #expect(self.events("\nGET / HTTP/1.1\r\nHost: x\r\n\r\n") == [self.failure(.badRequest, "the request line is missing")])
        let chunked = "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        #expect(self.events(chunked + "2\nhi\r\n0\r\n\r\n") == [self.failure(.badRequest, "a line ends without CR")])
        #expect(self.events(chunked + "2\r\nhi\n0\r\n\r\n") == [self.failure(.badRequest, "a chunk does not end where its size says")])
        #expect(self.events(chunked + "0\r\n\n") == [self.failure(.badRequest, "a line ends without CR")])
    }

    @Test func targetsAreOriginAbsoluteOrAsteriskFormOfURICharacters() {
        #expect(self.events("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n") == [self.request("*", method: .OPTIONS)])
        for target in ["*", "poll", "\"/poll\"", "/a\\b", "/a{b}", "/a|b", "/a^b", "/a`b", "/a<b>", "/a#b", "example.com:443"] {
            #expect(self.events("GET \(target) HTTP/1.1\r\nHost: x\r\n\r\n") == [self.failure(.badRequest, "malformed request line")], "\(target)")
        }
    }

    @Test func chunkExtensionsFollowTheirGrammar() {
        let chunked = "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        for good in ["2;a", "2;a=b", "2; a = b ; c", "2;a=\"q \\\" d\""] {
            #expect(self.events(chunked + good + "\r\nhi\r\n0\r\n\r\n") == [self.request("/p", method: .POST, body: "hi")], "\(good)")
        }
        for bad in ["2;", "2;a=", "2;a b", "2;=b", "2;a=\"open", "2;a\u{1}"] {
            #expect(self.events(chunked + bad + "\r\nhi\r\n0\r\n\r\n") == [self.failure(.badRequest, "malformed chunk extension")], "\(bad)")
        }
        #expect(self.events(chunked + "2 ;a\r\nhi\r\n0\r\n\r\n") == [self.failure(.badRequest, "malformed chunk size")])
    }

    @Test func aBodyByContentLength() {
        let text = "POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world"
        #expect(self.events(text, pieceSize: 7) == [self.request("/publish", method: .POST, body: "hello world")])
    }

    @Test func aChunkedBodyWithExtensionsAndTrailers() {
        let text = "POST /publish HTTP/1.1\r\nHost: x\r\ntransfer-encoding: Chunked\r\n\r\n5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
        let expected = [self.request("/publish", method: .POST, body: "hello world")]
        #expect(self.events(text) == expected)
        #expect(self.events(text, pieceSize: 1) == expected)
    }

    @Test func pipelinedRequestsComeOneByOneAndLeaveNothingBuffered() {
        var parser = HTTPRequestParser(maximumBodyBytes: 100)
        parser.append(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"))
        #expect(parser.next() == self.request("/a"))
        #expect(parser.bufferedBytes > 0)
        #expect(parser.next() == self.request("/b", method: .POST, body: "hi"))
        #expect(parser.next() == nil)
        #expect(parser.bufferedBytes == 0)
    }

    @Test func keepAliveFollowsTheVersionAndConnectionField() {
        #expect(self.events("GET / HTTP/1.0\r\n\r\n") == [self.request("/", version: .http1_0, keepAlive: false)])
        #expect(self.events("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n") == [self.request("/", version: .http1_0)])
        #expect(self.events("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n") == [self.request("/", keepAlive: false)])
    }

    @Test func expectContinueIsAnnouncedBeforeTheBody() {
        let events = self.events("POST /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi")
        #expect(events == [.continueExpected, self.request("/p", method: .POST, body: "hi")])
        #expect(self.events("POST /p HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n")
                == [self.failure(.expectationFailed, "only Expect: 100-continue is supported")])
    }

    @Test func bodiesOverTheLimit() {
        #expect(self.events("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n")
                == [self.failure(.payloadTooLarge, "the body is 101 bytes; the limit is 100")])
        #expect(self.events("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n")
                == [self.failure(.payloadTooLarge, "the body is \(Int.max) bytes; the limit is 100")])
        #expect(self.events("POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n50\r\n" + String(repeating: "x", count: 80) + "\r\n40\r\n")
                == [self.failure(.payloadTooLarge, "the body is larger than 100 bytes")])
    }

    @Test func aHeadOverTheLimitIs431() {
        let text = "GET / HTTP/1.1\r\nHost: x\r\nX: " + String(repeating: "a", count: HTTPRequestParser.maximumHeadBytes)
        #expect(self.events(text) == [self.failure(.requestHeaderFieldsTooLarge, "the request head is larger than 8192 bytes")])
    }

    @Test func malformedHeadsAreRefusedWithTheReason() {
        let cases: [(String, HTTPRequestParser.Event)] = [
            ("GET /\r\n\r\n", self.failure(.badRequest, "malformed request line")),
            ("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", self.failure(.badRequest, "malformed request line")),
            ("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", self.failure(.badRequest, "malformed request line")),
            ("GET / FTP/1.1\r\n\r\n", self.failure(.badRequest, "malformed request line")),
            ("GET / HTTP/2.0\r\n\r\n", self.failure(.httpVersionNotSupported, "HTTP/2.0 is not supported; use HTTP/1.1")),
            ("GET / HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n", self.failure(.badRequest, "malformed header line")),
            ("GET / HTTP/1.1\r\nHost: x\r\nName : v\r\n\r\n", self.failure(.badRequest, "malformed header line")),
            ("GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n  folded\r\n\r\n", self.failure(.badRequest, "folded header lines are not supported")),
            ("GET / HTTP/1.1\r\nHost: x\r\nA: b\u{1}c\r\n\r\n", self.failure(.badRequest, "a header value holds a control character")),
            ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: zebra\r\n\r\n", self.failure(.badRequest, "Content-Length must be a whole number")),
            ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", self.failure(.badRequest, "conflicting Content-Length fields")),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
             self.failure(.badRequest, "a request may not carry both Content-Length and Transfer-Encoding")),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
             self.failure(.notImplemented, "Transfer-Encoding gzip, chunked is not supported; send Content-Length or chunked")),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", self.failure(.badRequest, "malformed chunk size")),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", self.failure(.badRequest, "a chunk does not end where its size says")),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nab\r\n0\r\n\r\n", self.failure(.badRequest, "malformed chunk size")),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n 2\r\nab\r\n0\r\n\r\n", self.failure(.badRequest, "malformed chunk size")),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\nab\r\n0\r\n\r\n", self.failure(.badRequest, "malformed chunk size")),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno colon\r\n\r\n", self.failure(.badRequest, "malformed trailer field")),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: \u{1}\r\n\r\n", self.failure(.badRequest, "malformed trailer field")),
            ("GET / HTTP/1.1\r\n\r\n", self.failure(.badRequest, "an HTTP/1.1 request must carry a Host field")),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", self.failure(.badRequest, "a request may carry only one Host field")),
            ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", self.failure(.badRequest, "the Host field is not a valid host")),
            ("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", self.failure(.badRequest, "the Host field is not a valid host")),
            ("GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", self.failure(.badRequest, "the Host field is not a valid host")),
            ("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", self.failure(.badRequest, "the Host field is not a valid host")),
            ("GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", self.failure(.badRequest, "the Host field is not a valid host")),
            ("GET http://a b/ HTTP/1.1\r\nHost: x\r\n\r\n", self.failure(.badRequest, "malformed request line")),
            ("GET http://a@b/ HTTP/1.1\r\nHost: x\r\n\r\n", self.failure(.badRequest, "the request target names an invalid host")),
        ]
        for (text, expected) in cases {
            #expect(self.events(text) == [expected], "\(text.debugDescription)")
        }
    }

    @Test func whatCanNeverBeAnHTTP1RequestIsRefusedBeforeItsHeadEnds() {
        // A TLS ClientHello's first bytes, and an HTTP/0.9 request line (which
        // waits for its answer without sending an empty line).
        #expect(self.events("\u{16}\u{3}\u{1}\u{2}\u{0}") == [self.failure(.badRequest, "this port speaks plain HTTP, not TLS")])
        #expect(self.events("GET /poll?tags=a\r\n") == [self.failure(.badRequest, "malformed request line")])
        #expect(self.events("GET /poll?tags=a HTTP/2.0\r\n") == [self.failure(.httpVersionNotSupported, "HTTP/2.0 is not supported; use HTTP/1.1")])
        #expect(self.events("G\u{0}T") == [self.failure(.badRequest, "malformed request line")])
        // A request line still arriving, or complete with its head to come, waits.
        #expect(self.events("GET /poll?tags=a HTTP/1.1\r\nHost: x\r\n").isEmpty)
        #expect(self.events("GET /poll?tags=a HTT").isEmpty)
    }

    @Test func hostIsRequiredInHTTP11AndMayNameAnyValidAuthority() {
        #expect(self.events("GET / HTTP/1.0\r\n\r\n") == [self.request("/", version: .http1_0, keepAlive: false)])
        for host in ["example.com", "example.com:8080", "127.0.0.1:1", "[::1]:8080", "[2001:db8::1]", "", "xn--bcher-kva.example"] {
            #expect(self.events("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n") == [self.request("/")], "\(host)")
        }
    }

    @Test func anAbsoluteFormTargetIsRoutedOnItsPath() {
        #expect(self.events("GET http://example.com:8080/poll?tags=a HTTP/1.1\r\nHost: x\r\n\r\n") == [self.request("/poll?tags=a")])
        #expect(self.events("GET HTTPS://example.com/ HTTP/1.1\r\nHost: x\r\n\r\n") == [self.request("/")])
        #expect(self.events("GET http://example.com?x=1 HTTP/1.1\r\nHost: x\r\n\r\n") == [self.request("/?x=1")])
        #expect(self.events("GET http://example.com HTTP/1.0\r\n\r\n") == [self.request("/", version: .http1_0, keepAlive: false)])
    }

    @Test func aChunkedHTTP10RequestIsReadThenTheConnectionCloses() {
        let text = "POST /p HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
        #expect(self.events(text) == [self.request("/p", method: .POST, version: .http1_0, keepAlive: false, body: "hi")])
    }

    @Test func nothingFollowsAFailure() {
        var parser = HTTPRequestParser(maximumBodyBytes: 100)
        parser.append(ByteBuffer(string: "BAD\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(parser.next() == self.failure(.badRequest, "malformed request line"))
        parser.append(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(parser.next() == nil)
    }
}

@Suite struct ByteSetTests {
    func members(_ set: ByteSet) -> String {
        String(decoding: (0...255).map(UInt8.init).filter(set.contains), as: UTF8.self)
    }

    @Test func eachSetHoldsExactlyItsCharacters() {
        let alphanumerics = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        func sorted(_ text: String) -> String { String(decoding: Array(text.utf8).sorted(), as: UTF8.self) }
        #expect(self.members(.token) == sorted(alphanumerics + "!#$%&'*+-.^_`|~"))
        #expect(self.members(.uri) == sorted(alphanumerics + "-._~!$&'()*+,;=:@/?%[]"))
        #expect(self.members(.hostName) == sorted(alphanumerics + "-._~!$&'()*+,;=%"))
    }
}
