import Foundation
import NIOHTTP1
import PlexorGateway
import PlexorTestSupport
import Testing

/// The browser client, served by the gateway with caching that lets an upgrade reach browsers.
@Suite struct ClientAssetTests {
    @Test func theClientIsServedWithAnETagAndRevalidated() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let client = try await TestHTTPClient.connect(port: gateway.localPort)
        defer { Task { await client.close() } }
        let response = try await client.get("/plexor.js")
        #expect(response.status == .ok)
        #expect(response.headers.first(name: "Content-Type") == "text/javascript; charset=utf-8")
        #expect(response.headers.first(name: "Cache-Control") == "no-cache")
        #expect(response.headers.first(name: "Access-Control-Allow-Origin") == "*")
        #expect(response.body.contains("export class Plexor"))
        let etag = try #require(response.headers.first(name: "ETag"))
        #expect(etag.count == 18 && etag.hasPrefix("\"") && etag.hasSuffix("\""))

        let unchanged = try await client.request(.GET, "/plexor.js", headers: [("If-None-Match", "\"other\", \(etag)")])
        #expect(unchanged.status == .notModified)
        #expect(unchanged.body.isEmpty)
        let changed = try await client.request(.GET, "/plexor.js", headers: [("If-None-Match", "\"0000000000000000\"")])
        #expect(changed.status == .ok)

        // The versioned URL may be kept for good: an upgrade changes it.
        let version = etag.dropFirst().dropLast()
        let versioned = try await client.get("/plexor.js?v=\(version)")
        #expect(versioned.headers.first(name: "Cache-Control") == "public, max-age=31536000, immutable")
        #expect(versioned.body == response.body)
        let stale = try await client.get("/plexor.js?v=0123456789abcdef")
        #expect(stale.headers.first(name: "Cache-Control") == "no-cache")

        let types = try await client.get("/plexor.d.ts")
        #expect(types.headers.first(name: "Content-Type") == "application/typescript; charset=utf-8")
        #expect(types.body.contains("export class Plexor"))
        let head = try await client.request(.HEAD, "/plexor.js")
        #expect(head.status == .ok && head.body.isEmpty)
        #expect(try await client.request(.POST, "/plexor.js", body: "x").status == .methodNotAllowed)
    }

    @Test func theFrontPageIsServedAndUsesOnlyTheGatewaysOwnAssets() async throws {
        let gateway = try startGateway()
        defer { gateway.shutdown() }
        let page = try await TestHTTPClient.get(port: gateway.localPort, "/")
        #expect(page.status == .ok)
        #expect(page.headers.first(name: "Content-Type") == "text/html; charset=utf-8")
        #expect(page.headers.first(name: "Content-Security-Policy")?.contains("frame-ancestors 'none'") == true)
        #expect(page.body.contains(#"import { Plexor } from "/plexor.js""#))
        // No fonts, CDNs or trackers: nothing is loaded from another origin.
        #expect(!page.body.contains("https://") && !page.body.contains("http://"))
        #expect(page.body.contains("textContent") && !page.body.contains("innerHTML"))
        #expect(page.body.contains(#"<body data-psql="">"#))
    }

    @Test func theFrontPageShowsTheEmbeddedDatabasesPublishCommandEscaped() async throws {
        let gateway = try startGateway { $0.frontPagePsql = #"psql 'host=/tmp/x user=app' <"&>"# }
        defer { gateway.shutdown() }
        let page = try await TestHTTPClient.get(port: gateway.localPort, "/")
        #expect(page.body.contains(#"<body data-psql="psql &#39;host=/tmp/x user=app&#39; &lt;&quot;&amp;&gt;">"#))
    }
}
