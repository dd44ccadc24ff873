import PlexorCore
import PlexorRealplexor
import Testing

/// REALPLEXOR.md §3: the IN line's requests as the PHP API sends them, and its replies.
struct InRequestTests {
    func read(_ text: String, ended: Bool = true) -> InRequestReader.Outcome {
        var reader = InRequestReader(maximumBodyBytes: 1000)
        return reader.read(Array(text.utf8), ended: ended)
    }

    func tags(_ names: String...) -> [PlexorCore.Tag] { names.map { PlexorCore.Tag(trusted: $0) } }

    func refusal(_ outcome: InRequestReader.Outcome) -> InReply? {
        if case .refuse(let reply) = outcome { return reply }
        return nil
    }

    @Test func thePHPAPIsSend() {
        let text = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n"
            + "X-Realplexor: identifier=user:pass@word@10:user_ns_abc,user_ns_def,*user_ns_u1\r\n\r\n\"hi\""
        let expected = InRequest(credentials: Credentials(login: "user", password: "pass@word"), targets: self.tags("user_ns_abc", "user_ns_def"),
                                 limiters: self.tags("user_ns_u1"), action: .send(data: "\"hi\""))
        #expect(self.read(text) == .request(expected))
        // With Content-Length, the request is whole before the half-close.
        #expect(self.read(text, ended: false) == .request(expected))
        #expect(self.read(String(text.dropLast()), ended: false) == .needMore)
        #expect(self.refusal(self.read(String(text.dropLast())))?.status == 400)
    }

    @Test func aRequestSentAByteAtATimeReadsAsOneSentWhole() {
        let text = "POST / HTTP/1.1\r\nContent-Length: 2\r\nX-Realplexor: identifier=abc\r\n\r\n[]"
        var reader = InRequestReader(maximumBodyBytes: 1000)
        var bytes: [UInt8] = []
        var outcomes: [InRequestReader.Outcome] = []
        for byte in text.utf8 {
            bytes.append(byte)
            outcomes.append(reader.read(bytes, ended: false))
        }
        #expect(outcomes.dropLast().allSatisfy { $0 == .needMore })
        #expect(outcomes.last == .request(InRequest(credentials: nil, targets: self.tags("abc"), limiters: [], action: .send(data: "[]"))))
    }

    @Test func withoutContentLengthTheBodyRunsToTheHalfClose() {
        let text = "POST / HTTP/1.1\r\nX-Realplexor: identifier=abc\r\n\r\n {\"a\": 1} \n"
        #expect(self.read(text, ended: false) == .needMore)
        #expect(self.read(text) == .request(InRequest(credentials: nil, targets: self.tags("abc"), limiters: [],
                                                        action: .send(data: "{\"a\": 1}"))))
    }

    @Test func commands() {
        func command(_ body: String) -> InRequest.Action? {
            if case .request(let request) = self.read("POST / HTTP/1.1\r\nX-Realplexor: identifier=\r\n\r\n" + body) { return request.action }
            return nil
        }
        #expect(command("online\n") == .online(prefixes: []))
        #expect(command("online ns_a ns_b\n") == .online(prefixes: ["ns_a", "ns_b"]))
        #expect(command("watch 0\n") == .watch(after: 0, prefixes: []))
        #expect(command("watch 15 ns_\r\n") == .watch(after: 15, prefixes: ["ns_"]))
        #expect(command("stats\n") == .stats)
        #expect(self.refusal(self.read("POST / HTTP/1.1\r\n\r\nwatch x\n"))?.body == "watch needs a position: watch <pos> [prefix ...]\n")
        #expect(self.refusal(self.read("POST / HTTP/1.1\r\n\r\nonline a-b\n"))?.status == 400)
        #expect(self.refusal(self.read("POST / HTTP/1.1\r\n\r\nstats now\n"))?.status == 400)
        #expect(self.refusal(self.read("POST / HTTP/1.1\r\n\r\nreboot\n"))?.status == 400)
    }

    @Test func badInputIsRefusedWithAReason() {
        let refused = [
            ("POST / HTTP/1.1\r\nX-Realplexor: identifier=abc\r\nContent-Length: 1001\r\n\r\n", 413),
            ("POST / HTTP/1.1\r\nX-Realplexor: identifier=abc\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
            ("POST / HTTP/1.1\r\nX-Realplexor: identifier=abc\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", 400),
            ("POST / HTTP/1.1\r\nX-Realplexor: identifier=abc\r\n\r\n{", 400),
            ("POST / HTTP/1.1\r\nX-Realplexor: identifier=abc\r\n\r\n1 2", 400),
            ("POST / HTTP/1.1\r\nX-Realplexor: identifier=\r\n\r\n\"no ids\"", 400),
            ("POST / HTTP/1.1\r\nX-Realplexor: identifier=ab-c\r\n\r\n1", 400),
            ("POST / HTTP/1.1\r\nX-Realplexor: identifier=*\r\n\r\n1", 400),
            ("POST / HTTP/1.1\r\nX-Realplexor: identifier=nocolon@abc\r\n\r\n1", 400),
            ("POST / HTTP/1.1\r\nX-Realplexor: something\r\n\r\n1", 400),
            ("POST / HTTP/1.1\r\nbroken\r\n\r\n1", 400),
        ]
        for (text, status) in refused {
            #expect(self.refusal(self.read(text))?.status == status, "\(text)")
        }
        let body = String(repeating: " ", count: 1001)
        #expect(self.refusal(self.read("POST / HTTP/1.1\r\nX-Realplexor: identifier=abc\r\n\r\n" + body, ended: false))?.status == 413)
        let head = "POST / HTTP/1.1\r\nX-Pad: " + String(repeating: "p", count: InRequestReader.maximumHeadBytes)
        #expect(self.refusal(self.read(head, ended: false))?.status == 400)
    }

    @Test func theIdentifierMayComeInTheTarget() {
        #expect(self.read("POST /?identifier=abc&x=1 HTTP/1.1\r\nContent-Length: 1\r\n\r\n5")
                == .request(InRequest(credentials: nil, targets: self.tags("abc"), limiters: [], action: .send(data: "5"))))
    }

    @Test func replies() {
        #expect(String(decoding: InReply.sent.bytes, as: UTF8.self) == "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n")
        #expect(String(decoding: InReply(403, "wrong login or password").bytes, as: UTF8.self)
                == "HTTP/1.0 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 24\r\n\r\nwrong login or password\n")
    }
}

struct RealplexorUsersTests {
    // Made with `openssl passwd` (-1, -5, -6) and Python's crypt (DES), all for the password "secret".
    let file = """
        # Realplexor users
        md5:$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1
        sha256:$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA
        sha512:$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1
        des:abNANd1rDfiNc

        """

    @Test func everyKindOfHashChecksItsPassword() throws {
        let users = try RealplexorUsers(contents: self.file)
        for login in ["md5", "sha256", "sha512", "des"] {
            #expect(users.authenticate(Credentials(login: login, password: "secret")) == .user(login))
            #expect(users.authenticate(Credentials(login: login, password: "Secret")) == .refused("wrong login or password"))
        }
        #expect(users.authenticate(Credentials(login: "nobody", password: "secret")) == .refused("wrong login or password"))
        #expect(users.authenticate(nil) == .refused("this server needs a login: identifier=login:password@…"))
    }

    @Test func aLoneColonLetsAnonymousIn() throws {
        let users = try RealplexorUsers(contents: self.file + ":\n")
        #expect(users.authenticate(nil) == .anonymous)
        #expect(users.authenticate(Credentials(login: "md5", password: "nope")) == .refused("wrong login or password"))
        #expect(RealplexorUsers.open.authenticate(nil) == .anonymous)
    }

    @Test func aFileWithMistakesIsRefusedAtStart() {
        for bad in ["justaname", ":hash", "a-b:abNANd1rDfiNc", "apr:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/", "x:abNANd1rDfiNc\nx:abNANd1rDfiNc"] {
            #expect(throws: RealplexorUsers.ParseError.self, "\(bad)") { try RealplexorUsers(contents: bad) }
        }
    }
}
