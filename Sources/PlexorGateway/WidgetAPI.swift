import Foundation
import NIOCore
import NIOHTTP1
import PlexorAccess
import PlexorChat
import PlexorCore
import PlexorPostgres

/// A page or file answer (the widget's, the sign-in popup's).
struct PageReply: Sendable {
    var status: HTTPResponseStatus
    var contentType: StaticString
    var body: String
    var headers: [(String, String)] = []

    /// A short HTML page saying what is wrong: shown inside the iframe, where the webmaster looks.
    static func error(_ status: HTTPResponseStatus, _ message: String) -> PageReply {
        PageReply(status: status, contentType: "text/html; charset=utf-8", body: """
            <!doctype html><html lang="en"><meta charset="utf-8"><title>Plexor chat</title>\
            <p style="font:14px system-ui,sans-serif;padding:12px">\(htmlAttributeEscaped(message))</p></html>
            """, headers: [("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"),
                           ("X-Content-Type-Options", "nosniff")])
    }

    static func json(_ reply: ChatReply) -> PageReply {
        PageReply(status: reply.status, contentType: "application/json", body: reply.body, headers: reply.headers)
    }
}

/// The embeddable widget (`/embed`, the site's CSS) and the sign-in popup's
/// endpoints (`/signin/...`), on the gateway's own origin.
final class WidgetAPI: Sendable {
    static let widgetPage = StaticAsset.load("widget", "html", contentType: "text/html; charset=utf-8")
    static let widgetScript = StaticAsset.load("widget", "js", contentType: "text/javascript; charset=utf-8")
    static let widgetStyles = StaticAsset.load("widget", "css", contentType: "text/css; charset=utf-8")
    static let embedScript = StaticAsset.load("embed", "js", contentType: "text/javascript; charset=utf-8")
    static let signInPage = StaticAsset.load("signin", "html", contentType: "text/html; charset=utf-8")
    static let signInScript = StaticAsset.load("signin", "js", contentType: "text/javascript; charset=utf-8")
    static let demoPage = StaticAsset.load("demo", "html", contentType: "text/html; charset=utf-8")
    static let demoScript = StaticAsset.load("demo", "js", contentType: "text/javascript; charset=utf-8")

    private let pool: PostgresPool
    private let access: AccessControl
    private let chat: ChatAPI
    /// Cookies get `Secure` when the gateway is reached over HTTPS.
    private let secureCookies: Bool
    private let oidc: OIDCSignIn?

    init(pool: PostgresPool, access: AccessControl, chat: ChatAPI, secureCookies: Bool, oidc: OIDCSignIn?) {
        self.pool = pool
        self.access = access
        self.chat = chat
        self.secureCookies = secureCookies
        self.oidc = oidc
    }

    // MARK: The widget

    /// `GET /embed?room=…[&theme=dark][&accent=%23ff6600][&background=…][&text=…][&lang=ru]`.
    func embed(query: String, on loop: any EventLoop) -> EventLoopFuture<PageReply> {
        let options: EmbedOptions
        do {
            options = try EmbedOptions(query: query)
        } catch {
            return loop.makeSucceededFuture(.error(.badRequest, error.description))
        }
        return self.pool.withConnection(on: loop) { connection -> PageReply in
            guard let site = try connection.chatEmbed(site: options.room.site) else {
                return .error(.notFound, "There is no chat site named \(options.room.site).")
            }
            return Self.widget(options, site)
        }.flatMapErrorThrowing { _ in .error(.serviceUnavailable, "The chat is unavailable; reload in a moment.") }
    }

    private static func widget(_ options: EmbedOptions, _ site: ChatEmbedSettings) -> PageReply {
        var config: [String: Any] = ["room": options.room.name, "site": options.room.site, "guests": site.guestsAllowed,
                                     "origins": site.origins]
        config["lang"] = options.language
        var theme: [String: String] = ["mode": options.dark ? "dark" : "light"]
        theme["accent"] = options.accent
        theme["background"] = options.background
        theme["text"] = options.text
        config["theme"] = theme
        let json = String(decoding: (try? JSONSerialization.data(withJSONObject: config, options: [.sortedKeys])) ?? Data("{}".utf8), as: UTF8.self)
        var stylesheet = ""
        if let css = site.customCSS, !css.isEmpty {
            let version = StaticAsset(Array(css.utf8), contentType: "text/css; charset=utf-8").version
            stylesheet = "<link rel=\"stylesheet\" href=\"/embed.css?site=\(options.room.site)&amp;v=\(version)\">"
        }
        let page = String(decoding: Self.widgetPage.body.readableBytesView, as: UTF8.self)
            .replacingOccurrences(of: "{{lang}}", with: options.language ?? "en")
            .replacingOccurrences(of: "{{title}}", with: htmlAttributeEscaped(options.room.name))
            .replacingOccurrences(of: "{{cssVersion}}", with: Self.widgetStyles.version)
            .replacingOccurrences(of: "{{jsVersion}}", with: Self.widgetScript.version)
            .replacingOccurrences(of: "{{siteStylesheet}}", with: stylesheet)
            .replacingOccurrences(of: "{{config}}", with: scriptDataEscaped(json))
        // Only the site's own pages (and this gateway's) may frame its rooms.
        let ancestors = (["'self'"] + site.origins).joined(separator: " ")
        return PageReply(status: .ok, contentType: "text/html; charset=utf-8", body: page, headers: [
            ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https: http:; "
                + "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors \(ancestors)"),
            ("X-Content-Type-Options", "nosniff"),
        ])
    }

    /// `GET /embed.css?site=NAME`: the site's own CSS for its widget.
    func siteStyles(query: String, on loop: any EventLoop) -> EventLoopFuture<PageReply> {
        let parameters = queryParameters(query)
        guard let site = parameters["site"], Room.isSite(site) else {
            return loop.makeSucceededFuture(.error(.badRequest, "site must name a chat site"))
        }
        return self.pool.withConnection(on: loop) { connection -> PageReply in
            guard let settings = try connection.chatEmbed(site: site) else { return .error(.notFound, "There is no chat site named \(site).") }
            return PageReply(status: .ok, contentType: "text/css; charset=utf-8", body: settings.customCSS ?? "",
                             headers: [("X-Content-Type-Options", "nosniff")])
        }.flatMapErrorThrowing { _ in .error(.serviceUnavailable, "The chat is unavailable; reload in a moment.") }
    }

    // MARK: Sign-in

    /// `GET /signin?site=…`: the popup's page.
    func signInPage() -> PageReply {
        var config: [String: Any] = [:]
        config["provider"] = self.oidc?.providerName
        let json = String(decoding: (try? JSONSerialization.data(withJSONObject: config)) ?? Data("{}".utf8), as: UTF8.self)
        let page = String(decoding: Self.signInPage.body.readableBytesView, as: UTF8.self)
            .replacingOccurrences(of: "{{cssVersion}}", with: Self.widgetStyles.version)
            .replacingOccurrences(of: "{{jsVersion}}", with: Self.signInScript.version)
            .replacingOccurrences(of: "{{config}}", with: scriptDataEscaped(json))
        return PageReply(status: .ok, contentType: "text/html; charset=utf-8", body: page, headers: [
            ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                + "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
            ("X-Content-Type-Options", "nosniff"),
        ])
    }

    struct SignInBody: Decodable {
        var site: String
        var name: String?
    }

    /// `/signin/me`, `/signin/guest`, `/signin/continue`, `/signin/out`.
    func signIn(_ action: Substring, method: HTTPMethod, query: String, cookie: String?, body: [UInt8], address: String?,
                on loop: any EventLoop) -> EventLoopFuture<PageReply> {
        guard let signer = self.access.signer else {
            return loop.makeSucceededFuture(.json(.error(.serviceUnavailable, "PostgreSQL is unavailable; retry")))
        }
        let now = Int64(Date().timeIntervalSince1970)
        let identity = IdentityToken(cookieHeader: cookie, signer: signer, now: now)
        switch (action, method) {
        case ("oidc/start", .GET):
            guard let oidc = self.oidc else { return loop.makeSucceededFuture(.error(.notFound, "No sign-in provider is configured.")) }
            return oidc.start(query: query, signer: signer, secureCookies: self.secureCookies, on: loop).flatMapErrorThrowing { _ in
                .error(.badGateway, "\(oidc.providerName) cannot be reached; try again later.")
            }
        case ("oidc/callback", .GET):
            guard let oidc = self.oidc else { return loop.makeSucceededFuture(.error(.notFound, "No sign-in provider is configured.")) }
            if let refusal = queryParameters(query)["error"] {
                return loop.makeSucceededFuture(.error(.forbidden, "\(oidc.providerName) did not sign you in (\(refusal.prefix(80)))."))
            }
            return oidc.callback(query: query, cookie: cookie, signer: signer, pool: self.pool, on: loop).map { result in
                guard let (identity, pending) = result else {
                    return .error(.badRequest, "This sign-in has expired or was not started here; start again from the chat.")
                }
                return self.signedInWithProvider(identity: identity, site: pending.site, language: pending.language)
            }.flatMapErrorThrowing { error in
                .error(.badGateway, "Signing in with \(oidc.providerName) failed: \(String(describing: error).prefix(200))")
            }
        case ("me", .GET):
            guard let identity else { return loop.makeSucceededFuture(.json(.error(.notFound, "not signed in on this gateway"))) }
            return self.run(on: loop) { connection in
                guard let known = try connection.chatIdentityName(identity.identity) else {
                    return PageReply.json(.error(.notFound, "not signed in on this gateway")).withCookie(self.clearedCookie)
                }
                let via = known.provider.map { ",\"via\":\(JSONString.quoted($0))" } ?? ""
                return .json(ChatReply(status: .ok, body: "{\"name\":\(JSONString.quoted(known.name))\(via)}"))
            }
        case ("out", .POST):
            return loop.makeSucceededFuture(PageReply.json(ChatReply(status: .ok, body: "{\"signed_out\":true}")).withCookie(self.clearedCookie))
        case ("guest", .POST), ("continue", .POST):
            let request: SignInBody
            do {
                request = try ChatBody.decode(SignInBody.self, from: body, expecting: #"{"site":"…"} (and "name" for a guest)"#)
            } catch {
                return loop.makeSucceededFuture(.json(.error(.badRequest, error.description)))
            }
            guard Room.isSite(request.site) else { return loop.makeSucceededFuture(.json(.error(.notFound, "no such site"))) }
            if action == "continue" {
                guard let identity else { return loop.makeSucceededFuture(.json(.error(.unauthorized, "not signed in on this gateway"))) }
                return self.run(on: loop) { connection in
                    let person = try connection.chatIdentityPerson(site: request.site, identity: identity.identity, address: address)
                    return .json(self.chat.sessionReply(site: request.site, person: person, guest: true))
                }
            }
            let name: String
            do {
                name = try ChatText.nickname(request.name ?? "")
            } catch {
                return loop.makeSucceededFuture(.json(.error(.badRequest, error.description)))
            }
            if let refusal = self.chat.takeGuestSession(address: address) { return loop.makeSucceededFuture(.json(refusal)) }
            return self.run(on: loop) { connection in
                // One transaction: no identity is left behind when the site refuses the person.
                try connection.execute("BEGIN")
                do {
                    let made = try connection.chatIdentityGuest(name: name)
                    let person = try connection.chatIdentityPerson(site: request.site, identity: made, address: address)
                    try connection.execute("COMMIT")
                    let cookie = self.identityCookie(IdentityToken(expires: now + IdentityToken.lifetime, identity: made), signer)
                    return PageReply.json(self.chat.sessionReply(site: request.site, person: person, guest: true)).withCookie(cookie)
                } catch {
                    try? connection.execute("ROLLBACK")
                    throw error
                }
            }
        default:
            return loop.makeSucceededFuture(.json(.error(.notFound, "no such sign-in path: /signin/\(action.prefix(40))")))
        }
    }

    /// Back from the provider: remembered, and on to the sign-in page, which finishes for the site.
    private func signedInWithProvider(identity: Int64, site: String, language: String) -> PageReply {
        guard let signer = self.access.signer else { return .error(.serviceUnavailable, "The chat is unavailable; try again.") }
        let cookie = self.identityCookie(IdentityToken(expires: Int64(Date().timeIntervalSince1970) + IdentityToken.lifetime, identity: identity), signer)
        let done = "\(OpenIDConnect.Pending.cookieName)=; Path=/signin/oidc; Max-Age=0; HttpOnly; SameSite=Lax" + (self.secureCookies ? "; Secure" : "")
        return PageReply(status: .seeOther, contentType: "text/plain; charset=utf-8", body: "",
                         headers: [("Location", "/signin?site=\(site)&lang=\(language)&auto=1"), ("Set-Cookie", cookie), ("Set-Cookie", done)])
    }

    /// First-party, only for the sign-in paths, never readable by scripts, not sent on other sites' requests.
    private func identityCookie(_ token: IdentityToken, _ signer: TokenSigner) -> String {
        "\(IdentityToken.cookieName)=\(token.token(signer: signer)); Path=/signin; Max-Age=\(IdentityToken.lifetime); HttpOnly; SameSite=Lax"
            + (self.secureCookies ? "; Secure" : "")
    }

    private var clearedCookie: String {
        "\(IdentityToken.cookieName)=; Path=/signin; Max-Age=0; HttpOnly; SameSite=Lax" + (self.secureCookies ? "; Secure" : "")
    }

    private func run(on loop: any EventLoop, _ body: @escaping @Sendable (PostgresConnection) throws -> PageReply) -> EventLoopFuture<PageReply> {
        self.pool.withConnection(on: loop) { connection in
            do {
                return try body(connection)
            } catch let error as PostgresError where error.kind == .statement {
                return .json(ChatAPI.reply(for: error))
            }
        }.flatMapErrorThrowing { _ in .json(.error(.serviceUnavailable, "PostgreSQL is unavailable; retry")) }
    }
}

extension PageReply {
    func withCookie(_ cookie: String) -> PageReply {
        var reply = self
        reply.headers.append(("Set-Cookie", cookie))
        return reply
    }
}

/// What an `/embed` URL may say: the room and how it looks.
struct EmbedOptions {
    var room: Room
    var dark = false
    var accent: String?
    var background: String?
    var text: String?
    /// `en` or `ru`; nil: the browser's language.
    var language: String?

    init(query: String) throws(ChatText.Problem) {
        let parameters = queryParameters(query)
        guard let name = parameters["room"] else { throw ChatText.Problem(description: "The embed URL needs room=SITE or room=SITE/ROOM.") }
        guard let room = Room(name) else { throw ChatText.Problem(description: "\(name.prefix(80)) is not a room name.") }
        self.room = room
        for (key, value) in parameters {
            switch key {
            case "room":
                continue
            case "theme":
                guard value == "light" || value == "dark" else { throw ChatText.Problem(description: "theme is light or dark.") }
                self.dark = value == "dark"
            case "accent", "background", "text":
                guard value.wholeMatch(of: /#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?/) != nil else {
                    throw ChatText.Problem(description: "\(key) must be a colour such as %23ff6600 (#ff6600).")
                }
                if key == "accent" { self.accent = value } else if key == "background" { self.background = value } else { self.text = value }
            case "lang":
                guard value == "en" || value == "ru" else { throw ChatText.Problem(description: "lang is en or ru.") }
                self.language = value
            default:
                throw ChatText.Problem(description: "Unknown embed parameter \(key.prefix(40)); use room, theme, accent, background, text, lang.")
            }
        }
    }
}

/// A query's parameters, percent-decoded (the last of repeated names wins).
func queryParameters(_ query: String) -> [String: String] {
    var parameters: [String: String] = [:]
    for item in query.split(separator: "&") {
        let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        let decode = { (text: Substring) in text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text) }
        parameters[decode(pair[0])] = pair.count == 2 ? decode(pair[1]) : ""
    }
    return parameters
}

/// JSON made safe inside `<script type="application/json">`: no `</script>`, no comment openers.
func scriptDataEscaped(_ json: String) -> String {
    json.replacingOccurrences(of: "<", with: "\\u003c").replacingOccurrences(of: ">", with: "\\u003e")
        .replacingOccurrences(of: "&", with: "\\u0026")
}
