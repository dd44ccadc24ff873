import Foundation
import NIOCore

/// A file the gateway serves as it was built (the browser client and its
/// types), with an ETag so browsers revalidate it cheaply.
struct StaticAsset: Sendable {
    let body: ByteBuffer
    let contentType: StaticString
    /// `"<16 hex digits>"`, a hash of the content: changes with every upgrade.
    let etag: String
    /// The ETag without quotes, for versioned URLs (`/plexor.js?v=…`).
    let version: String

    init(_ bytes: [UInt8], contentType: StaticString) {
        self.body = ByteBuffer(bytes: bytes)
        self.contentType = contentType
        // FNV-1a, 64 bits: not a secret, only a name for this content.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        self.version = String(hash, radix: 16).leftPadded(to: 16)
        self.etag = "\"\(self.version)\""
    }

    /// Whether an `If-None-Match` value names this content (so a 304 will do).
    func isMatched(by ifNoneMatch: String?) -> Bool {
        guard let ifNoneMatch else { return false }
        return ifNoneMatch.split(separator: ",").contains { candidate in
            let tag = candidate.trimmingCharacters(in: .whitespaces)
            return tag == "*" || tag == self.etag || tag == "W/" + self.etag
        }
    }

    /// The client and its types, read once from the build's resources.
    static let client = StaticAsset.load("plexor", "js", contentType: "text/javascript; charset=utf-8")
    static let clientTypes = StaticAsset.load("plexor.d", "ts", contentType: "application/typescript; charset=utf-8")
    /// What a person opening the gateway in a browser sees, with the command
    /// that publishes to this gateway's database when it is safe to show
    /// (the embedded one's: a local socket, no password), else a generic one.
    static func frontPage(psql: String?) -> StaticAsset {
        let template = String(decoding: Self.frontPageTemplate.body.readableBytesView, as: UTF8.self)
        let page = template.replacingOccurrences(of: "{{psql}}", with: htmlAttributeEscaped(psql ?? ""))
        return StaticAsset(Array(page.utf8), contentType: "text/html; charset=utf-8")
    }

    private static let frontPageTemplate = StaticAsset.load("index", "html", contentType: "text/html; charset=utf-8")

    static func load(_ name: String, _ ext: String, contentType: StaticString) -> StaticAsset {
        guard let url = Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Assets"),
              let data = try? Data(contentsOf: url) else {
            preconditionFailure("\(name).\(ext) is missing from this build's resources")
        }
        return StaticAsset(Array(data), contentType: contentType)
    }
}

/// Text safe inside a double-quoted HTML attribute.
func htmlAttributeEscaped(_ text: String) -> String {
    var escaped = ""
    for character in text {
        switch character {
        case "&": escaped += "&amp;"
        case "<": escaped += "&lt;"
        case ">": escaped += "&gt;"
        case "\"": escaped += "&quot;"
        case "'": escaped += "&#39;"
        default: escaped.append(character)
        }
    }
    return escaped
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String {
        String(repeating: "0", count: max(0, length - self.count)) + self
    }
}
