import NIOCore
import PlexorCore
import PlexorRealplexor
import Testing

/// REALPLEXOR.md §2, the request side: what a WAIT request listens to, read
/// whole or a byte at a time.
struct WaitRequestTests {
    func scan(_ text: String, maximumIDs: Int = 100) -> WaitRequestScanner.Outcome {
        var scanner = WaitRequestScanner(maximumIDs: maximumIDs)
        return scanner.scan(Array(text.utf8))
    }

    /// Feeds `text` a byte at a time: every outcome before the last byte, and the last.
    func scanByteByByte(_ text: String) -> (before: Set<String>, last: WaitRequestScanner.Outcome) {
        var scanner = WaitRequestScanner(maximumIDs: 100)
        var bytes: [UInt8] = []
        var before = Set<String>()
        var last = WaitRequestScanner.Outcome.needMore
        for byte in text.utf8 {
            if bytes.count > 0 { before.insert("\(last)") }
            bytes.append(byte)
            last = scanner.scan(bytes)
        }
        return (before, last)
    }

    func ids(_ pairs: [(String, Int64?)]) -> WaitRequestScanner.Outcome {
        .request(.listen(pairs.map { WaitID(tag: PlexorCore.Tag(trusted: $0.0), cursor: $0.1) }))
    }

    @Test func theJSClientsGetWithCursors() {
        let request = "GET /?identifier=10:abc,20:def,bb&ncrnd=1733130000000 HTTP/1.1\r\nHost: rpl.example.com\r\n\r\n"
        #expect(self.scan(request) == self.ids([("abc", 10), ("def", 20), ("bb", nil)]))
        // Answered only once the head is in, however the bytes come.
        let pieces = self.scanByteByByte(request)
        #expect(pieces.before == ["needMore"])
        #expect(pieces.last == self.ids([("abc", 10), ("def", 20), ("bb", nil)]))
    }

    @Test func thePostFormAndTheRefererRule() {
        let body = "identifier=abc,1:def\n"
        let request = "POST / HTTP/1.1\r\nHost: x\r\nReferer: http://site.example/page?identifier=zzz\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n" + body
        #expect(self.scan(request) == self.ids([("abc", nil), ("def", 1)]))
        #expect(self.scanByteByByte(request).last == self.ids([("abc", nil), ("def", 1)]))
        // Only a Referer line is skipped: any other line's marker counts.
        #expect(self.scan("POST / HTTP/1.1\r\nX-Other: identifier=zzz\r\n\r\nidentifier=abc\n") == self.ids([("zzz", nil)]))
    }

    @Test func anyBytesWithTheMarkerWillDo() {
        #expect(self.scan("identifier=abc\n") == self.ids([("abc", nil)]))
        #expect(self.scan("whatever identifier=0:abc;") == self.ids([("abc", 0)]))
        #expect(self.scan("identifier=abc") == .needMore)  // the list may go on
    }

    @Test func cursorsPlexorNeverIssuedAreFromNow() {
        #expect(self.scan("identifier=1795682590.55441000200000:abc,99999999999999999999:def,7:ghi\n")
                == self.ids([("abc", nil), ("def", nil), ("ghi", 7)]))
    }

    @Test func elementsThatDoNotMatchAreDroppedAndAnIllegalCharacterEndsTheList() {
        #expect(self.scan("identifier=abc,1:,:d,*lim,1.2.3:e,a:b,1.:f,ok\n") == self.ids([("abc", nil), ("ok", nil)]))
        #expect(self.scan("identifier=abc,x-y,z\n") == self.ids([("abc", nil), ("x", nil)]))
        #expect(self.scan("identifier=abc,5:abc,def,abc\n") == self.ids([("abc", nil), ("def", nil)]), "each id once, as first given")
    }

    @Test func nothingToListenToOrTooMuchBeforeTheMarkerClosesWithoutAReply() {
        #expect(self.scan("GET /?identifier=&x=1 HTTP/1.1\r\nHost: x\r\n\r\n") == .close)
        #expect(self.scan("identifier=-,:,\n") == .close)
        let padding = String(repeating: "x", count: WaitRequestScanner.maximumBytesBeforeMarker)
        #expect(self.scan(padding + "identifier=abc\n") == self.ids([("abc", nil)]))
        #expect(self.scan(padding + "xidentifier=abc\n") == .close)
        #expect(self.scan(padding + String(repeating: "y", count: 20)) == .close)
        #expect(self.scan(padding) == .needMore)
    }

    @Test func oversizedInputIsRefusedNotTruncated() {
        let many = (0...100).map { "id\($0)" }.joined(separator: ",")
        guard case .refuse(let reason) = self.scan("identifier=\(many)\n") else { Issue.record("not refused"); return }
        #expect(reason == "a request may listen to at most 100 ids")
        let long = String(repeating: "a", count: PlexorCore.Tag.maximumLength + 1)
        guard case .refuse = self.scan("identifier=\(long)\n") else { Issue.record("a long id not refused"); return }
        let endless = "identifier=" + String(repeating: "a,", count: WaitRequestScanner.maximumRequestBytes / 2)
        guard case .refuse = self.scan(endless) else { Issue.record("an endless list not refused"); return }
    }

    @Test func scriptAndIframe() {
        #expect(self.scan("GET /?identifier=SCRIPT&r=1 HTTP/1.1\r\nHost: x\r\n\r\n") == .request(.script))
        #expect(self.scan("GET /?identifier=IFRAME HTTP/1.0\r\n\r\n") == .request(.iframe))
        #expect(self.scan("identifier=SCRIPT,abc\n") == self.ids([("SCRIPT", nil), ("abc", nil)]))
    }

    @Test func theReplyHeadAndBlocks() {
        #expect(String(buffer: WaitReply.head) == "HTTP/1.1 200 OK\r\nConnection: close\r\nCache-Control: no-store, no-cache, must-revalidate\r\n"
                + "Expires: Mon, 26 Jul 1997 05:00:00 GMT\r\nContent-Type: text/javascript; charset=utf-8\r\n\r\n \r\n")
        let abc = PlexorCore.Tag(trusted: "abc"), def = PlexorCore.Tag(trusted: "def"), other = PlexorCore.Tag(trusted: "other")
        let messages = [
            Message(id: 1, time: "t", seqs: [TagSeq(tag: def, seq: 30), TagSeq(tag: abc, seq: 20), TagSeq(tag: other, seq: 5)],
                    onlyFor: nil, data: ByteBuffer(string: #"{"a": [1, 2]}"#)),
            Message(id: 2, time: "t", seqs: [TagSeq(tag: other, seq: 6)], onlyFor: nil, data: ByteBuffer(string: "1")),
            Message(id: 3, time: "t", seqs: [TagSeq(tag: abc, seq: 21)], onlyFor: nil, data: ByteBuffer(string: #""next""#)),
        ]
        let body = WaitReply.body(messages, listening: [abc, def]).map { String(buffer: $0) }
        #expect(body == """
            [
              {
                "ids": { "abc": "20", "def": "30" },
                "data": {"a": [1, 2]}
              },
              {
                "ids": { "abc": "21" },
                "data": "next"
              }
            ]
            """)
        #expect(WaitReply.body([messages[1]], listening: [abc]) == nil)
    }
}
