import ArgumentParser
import Foundation
import PlexorPostgres

/// `plexor site …`: the chat's sites (a webmaster's account: origins, secret,
/// settings), stored in PostgreSQL so every gateway sees them.
struct SiteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "site",
        abstract: "Manage chat sites: who may embed their rooms, their secret, guests, slow mode, rate limits, history.",
        subcommands: [Add.self, List.self, Show.self, Set.self, Remove.self]
    )

    struct Common: ParsableArguments {
        @OptionGroup var database: DatabaseOptions

        @Option(name: Settings.logLevel.name, help: Settings.logLevel.argumentHelp)
        var logLevel: String?

        func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
            let logger = try makeLogger(self.logLevel)
            return try self.database.withConnection(Environment(), logger: logger) { connection in
                try Serve.requireSchema(connection)
                do {
                    return try body(connection)
                } catch let error as PostgresError where error.kind == .statement {
                    // The database's words, without "plexor: ".
                    throw CommandError(error.message.hasPrefix("plexor: ") ? String(error.message.dropFirst(8)) : error.message)
                }
            }
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a site; prints its secret and the snippet to paste into its pages.")

        @Argument(help: "The site's name: 1-32 characters from a-z 0-9 - (its main room has the same name).")
        var name: String
        @Option(name: .customLong("origin"), help: "An origin allowed to embed the site's rooms (https://example.com); repeat for several.")
        var origins: [String] = []
        @Option(name: .customLong("url"), help: "The gateway's public URL, for the snippet.")
        var url = "http://127.0.0.1:8080"
        @OptionGroup var common: Common

        func run() throws {
            let secret = try self.common.withConnection { try $0.chatSiteAdd(name: self.name, origins: self.origins) }
            let base = self.url.hasSuffix("/") ? String(self.url.dropLast()) : self.url
            print("""
                Site \(self.name) created; its main room is \(self.name) (the tag chat:\(self.name)), named rooms are \(self.name)/NAME.
                Secret (keep it on your server; it signs your users' tokens and authorises your backend's moderation):
                  \(secret)
                Paste into your pages:
                  <iframe src="\(base)/embed?room=\(self.name)" title="Live chat" width="320" height="480" style="border:1px solid #ccc"></iframe>
                and, to size it and hand it your signed-in users' tokens:
                  <script src="\(base)/embed.js" data-room="\(self.name)" async></script>
                """)
            if self.origins.isEmpty {
                print("No origin may embed it yet: add them with `plexor site set \(self.name) --origin https://…`.")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the sites and their settings.")

        @OptionGroup var common: Common

        func run() throws {
            let sites = try self.common.withConnection { try $0.chatSites() }
            if sites.isEmpty { return print("No sites yet: `plexor site add NAME --origin https://…` makes one.") }
            for site in sites { print(Self.summary(site)) }
        }

        static func summary(_ site: ChatSite) -> String {
            let history = "keeps \(site.keepMessages) messages" + (site.keepDays.map { ", \($0) days" } ?? "")
            return "\(site.name)  origins: \(site.origins.isEmpty ? "none" : site.origins.joined(separator: " "))  "
                + "guests: \(site.guestsAllowed ? "on" : "off")  slow mode: \(site.slowModeSeconds) s  "
                + "rates/min: person \(site.personRate), guest \(site.guestRate), address \(site.addressRate)  \(history)"
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one site's settings and secret.")

        @Argument(help: "The site's name.")
        var name: String
        @OptionGroup var common: Common

        func run() throws {
            guard let site = try self.common.withConnection({ try $0.chatSites(named: self.name) }).first else {
                throw CommandError("no site is named \(self.name)")
            }
            print(List.summary(site))
            print("secret: \(site.secret)")
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a site's settings (each change is recorded in its moderation log).")

        @Argument(help: "The site's name.")
        var name: String
        @Option(name: .customLong("origin"), help: "The origins allowed to embed the rooms (replaces the list); repeat for several.")
        var origins: [String] = []
        @Flag(name: .customLong("no-origins"), help: "No origin may embed the rooms.")
        var noOrigins = false
        @Option(name: .customLong("guests"), help: "Whether guests (nickname only) may talk: on or off.")
        var guests: String?
        @Option(name: .customLong("slow-mode"), help: "Default for the site's rooms: one message per this many seconds per person (0: off).")
        var slowMode: Int?
        @Option(name: .customLong("person-rate"), help: "Messages a minute per site-verified person.")
        var personRate: Int?
        @Option(name: .customLong("guest-rate"), help: "Messages a minute per guest.")
        var guestRate: Int?
        @Option(name: .customLong("ip-rate"), help: "Messages a minute per IP address.")
        var ipRate: Int?
        @Option(name: .customLong("keep-messages"), help: "Messages kept per room (history).")
        var keepMessages: Int?
        @Option(name: .customLong("keep-days"), help: "Days a message is kept, or none (no age limit).")
        var keepDays: String?
        @Flag(name: .customLong("new-secret"), help: "Replace the secret (tokens signed with the old one stop working).")
        var newSecret = false
        @Option(name: .customLong("css-file"), help: "The site's own CSS for its widget (at most 20,000 bytes); it comes after the widget's.")
        var cssFile: String?
        @Flag(name: .customLong("no-css"), help: "Remove the site's own CSS.")
        var noCSS = false
        @OptionGroup var common: Common

        func run() throws {
            var settings: [String: Any] = [:]
            if self.noOrigins { settings["origins"] = [String]() } else if !self.origins.isEmpty { settings["origins"] = self.origins }
            if let guests = self.guests {
                guard guests == "on" || guests == "off" else { throw ValidationError("--guests is on or off, not \(guests)") }
                settings["guests"] = guests == "on"
            }
            settings["slow_mode"] = self.slowMode
            settings["person_rate"] = self.personRate
            settings["guest_rate"] = self.guestRate
            settings["ip_rate"] = self.ipRate
            settings["keep_messages"] = self.keepMessages
            if let keepDays = self.keepDays {
                guard keepDays == "none" || Int(keepDays) != nil else { throw ValidationError("--keep-days is a number of days or none") }
                settings["keep_days"] = Int(keepDays).map { $0 as Any } ?? NSNull()
            }
            if self.newSecret { settings["new_secret"] = true }
            let css: String?? = try self.cssFile.map { path in
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("cannot read \(path) as UTF-8 text") }
                return text
            } ?? (self.noCSS ? .some(nil) : nil)
            guard !settings.isEmpty || css != nil else { throw ValidationError("nothing to change: give at least one setting (see --help)") }
            let json = String(decoding: try JSONSerialization.data(withJSONObject: settings, options: [.sortedKeys]), as: UTF8.self)
            let secret = try self.common.withConnection { connection -> String? in
                if let css { try connection.chatSiteCSS(name: self.name, css: css) }
                return settings.isEmpty ? nil : try connection.chatSiteSet(name: self.name, settings: json)
            }
            print("Site \(self.name) updated.")
            if let secret { print("New secret: \(secret)") }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a site, its people, bans and moderation log (its rooms' messages stay until retention).")

        @Argument(help: "The site's name.")
        var name: String
        @OptionGroup var common: Common

        func run() throws {
            guard try self.common.withConnection({ try $0.chatSiteRemove(name: self.name) }) else {
                throw CommandError("no site is named \(self.name)")
            }
            print("Site \(self.name) removed.")
        }
    }
}
