import NIOCore

/// What the WAIT line serves besides messages: `identifier=SCRIPT` (the
/// compatibility client: plexor.js, then realplexor.js, as one classic
/// script defining `Dklab_Realplexor`) and `identifier=IFRAME` (the loader
/// page of old integrations). Whole responses, closed after.
struct RealplexorAssets: Sendable {
    let response: ByteBuffer

    init(_ body: String, contentType: String) {
        self.response = ByteBuffer(string: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: \(contentType)\r\n"
            + "Cache-Control: max-age=300\r\nAccess-Control-Allow-Origin: *\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n" + body)
    }

    static let script = RealplexorAssets(Self.classicScript(), contentType: "text/javascript; charset=utf-8")
    static let iframe = RealplexorAssets(Self.text(StaticAsset.load("realplexor-iframe", "html", contentType: "text/html")),
                                         contentType: "text/html; charset=utf-8")

    /// The two modules as one script: imports dropped, `export` removed, all in a
    /// function so only `Dklab_Realplexor` becomes global.
    static func classicScript() -> String {
        let modules = [StaticAsset.client, StaticAsset.load("realplexor", "js", contentType: "text/javascript")].map(Self.text)
        let body = modules.joined(separator: "\n").split(separator: "\n", omittingEmptySubsequences: false).compactMap { line -> Substring? in
            if line.hasPrefix("import ") { return nil }
            return line.hasPrefix("export ") ? line.dropFirst("export ".count) : line
        }.joined(separator: "\n")
        return "(function () {\n\"use strict\";\n" + body + "\nglobalThis.Dklab_Realplexor = Dklab_Realplexor;\n})();\n"
    }

    private static func text(_ asset: StaticAsset) -> String {
        String(decoding: asset.body.readableBytesView, as: UTF8.self)
    }
}
