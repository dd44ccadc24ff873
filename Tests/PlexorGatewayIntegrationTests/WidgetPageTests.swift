import Foundation
import NIOHTTP1
import PlexorGateway
import PlexorPostgres
import PlexorTestSupport
import Testing

/// The widget's page and the sign-in window's endpoints, through HTTP (the
/// browser tests drive them in Chromium).
@Suite struct WidgetPageTests {
    func get(_ port: Int, _ uri: String, headers: [(String, String)] = []) async throws -> TestResponse {
        let client = try await TestHTTPClient.connect(port: port)
        defer { Task { await client.close() } }
        return try await client.request(.GET, uri, headers: headers)
    }

    func post(_ port: Int, _ uri: String, _ body: String, headers: [(String, String)] = []) async throws -> TestResponse {
        let client = try await TestHTTPClient.connect(port: port)
        defer { Task { await client.close() } }
        return try await client.request(.POST, uri, headers: headers + [("Content-Type", "application/json")], body: body)
    }

    @Test func theWidgetPageMayBeFramedOnlyByTheSitesOriginsAndTakesOnlyCheckedOptions() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let site = try ChatTests.Site()
        let page = try await self.get(gateway.localPort, "/embed?room=\(site.name)/help&theme=dark&accent=%23ff6600&lang=ru")
        #expect(page.status == .ok)
        let policy = page.headers.first(name: "Content-Security-Policy") ?? ""
        #expect(policy.contains("frame-ancestors 'self' https://example.com"))
        #expect(policy.contains("script-src 'self'") && !policy.contains("unsafe"))
        #expect(page.body.contains(##""accent":"#ff6600""##) && page.body.contains(#""mode":"dark""#) && page.body.contains(#""lang":"ru""#))
        for bad in ["room=\(site.name)&accent=red", "room=\(site.name)&accent=%23ff6600;x", "room=\(site.name)&theme=blue",
                    "room=\(site.name)&lang=de", "room=\(site.name)&css=x", "room=Bad", ""] {
            let refused = try await self.get(gateway.localPort, "/embed?\(bad)")
            #expect(refused.status == .badRequest, "\(bad)")
        }
        #expect(try await self.get(gateway.localPort, "/embed?room=no-such-site").status == .notFound)
        // A room name cannot break out of the page's config.
        let hostile = try await self.get(gateway.localPort, "/embed?room=%3C/script%3E")
        #expect(hostile.status == .badRequest && !hostile.body.contains("</script>"))
    }

    @Test func aSitesOwnCSSComesFromItsSettingsOnly() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let site = try ChatTests.Site()
        #expect(try await !self.get(gateway.localPort, "/embed?room=\(site.name)").body.contains("/embed.css"))
        try site.owner.execute("SELECT plexor.chat_site_css($1, $2)", [site.name, ".msg { color: rebeccapurple }"])
        let page = try await self.get(gateway.localPort, "/embed?room=\(site.name)")
        #expect(page.body.contains("/embed.css?site=\(site.name)&amp;v="))
        let css = try await self.get(gateway.localPort, "/embed.css?site=\(site.name)")
        #expect(css.status == .ok && css.body == ".msg { color: rebeccapurple }")
        #expect(css.headers.first(name: "Content-Type") == "text/css; charset=utf-8")
        #expect(throws: PostgresError.self) {
            try site.owner.execute("SELECT plexor.chat_site_css($1, $2)", [site.name, "</style><script>alert(1)</script>"])
        }
    }

    @Test func aRememberedSignInMakesAPersonOnAnySiteAndAForgedCookieDoesNot() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let port = gateway.localPort
        let first = try ChatTests.Site(), second = try ChatTests.Site()
        #expect(try await self.get(port, "/signin/me").status == .notFound)
        let signedIn = try await self.post(port, "/signin/guest", #"{"site":"\#(first.name)","name":"Frank"}"#)
        #expect(signedIn.status == .created)
        let setCookie = try #require(signedIn.headers.first(name: "Set-Cookie"))
        #expect(setCookie.contains("; Path=/signin; ") && setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Lax"))
        let cookie = String(setCookie.prefix { $0 != ";" })
        let me = try await self.get(port, "/signin/me", headers: [("Cookie", cookie)])
        #expect(me.body == #"{"name":"Frank"}"#)
        // On the second site: the same name, a session of that site.
        let again = try await self.post(port, "/signin/continue", #"{"site":"\#(second.name)"}"#, headers: [("Cookie", cookie)])
        #expect(again.status == .created)
        let session = try JSONSerialization.jsonObject(with: Data(again.body.utf8)) as! [String: Any]
        #expect((session["user"] as! [String: Any])["name"] as? String == "Frank")
        let chatter = ChatTests.Chatter(port: port, session: session["session"] as? String)
        #expect(try await chatter.post(second.name, "hello from a remembered name").status == 201)
        // A renewed session is the same person.
        let renewed = try await chatter.request(.POST, "/chat/session", body: #"{"site":"\#(second.name)","renew":true}"#)
        #expect(renewed.status == 201)
        #expect((renewed.json["user"] as? [String: Any])?["key"] as? String == (session["user"] as! [String: Any])["key"] as? String)
        // A cookie the gateway did not sign, or none: not signed in.
        let forged = cookie.dropLast(2) + "AA"
        #expect(try await self.post(port, "/signin/continue", #"{"site":"\#(second.name)"}"#, headers: [("Cookie", String(forged))]).status == .unauthorized)
        #expect(try await self.post(port, "/signin/continue", #"{"site":"\#(second.name)"}"#).status == .unauthorized)
        // A name the site's verified members hold is refused, and leaves no identity behind.
        _ = try await ChatTests.member(port, first, sub: "m-1", name: "Grace")
        let taken = try await self.post(port, "/signin/guest", #"{"site":"\#(first.name)","name":"grace"}"#)
        #expect(taken.status == .conflict && taken.headers.first(name: "Set-Cookie") == nil)
        let out = try await self.post(port, "/signin/out", "")
        #expect(out.headers.first(name: "Set-Cookie")?.contains("Max-Age=0") == true)
        #expect(try await self.get(port, "/signin").headers.first(name: "Content-Security-Policy")?.contains("frame-ancestors 'none'") == true)
    }
}
