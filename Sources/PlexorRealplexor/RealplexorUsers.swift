import CCrypt

/// Who may use the IN line (`--realplexor-users FILE`): an htpasswd-style
/// file of `login:hash` lines, hashes as crypt(3) makes them (DES, `$1$`,
/// `$5$`, `$6$`, `$2b$`, `$y$`), and a line `:` to let anonymous requests in.
/// Without a file, every request is anonymous.
public struct RealplexorUsers: Sendable {
    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    public enum Verdict: Equatable, Sendable {
        case anonymous
        /// Confined to ids starting with `login_`.
        case user(String)
        case refused(String)
    }

    private let hashes: [String: String]
    private let allowsAnonymous: Bool

    /// No users file: anyone, anonymously.
    public static let open = RealplexorUsers(hashes: [:], allowsAnonymous: true)

    private init(hashes: [String: String], allowsAnonymous: Bool) {
        self.hashes = hashes
        self.allowsAnonymous = allowsAnonymous
    }

    public init(contents: String) throws {
        var hashes: [String: String] = [:]
        var anonymous = false
        for (number, raw) in contents.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) || line.hasPrefix("#") { continue }
            if line == ":" {
                anonymous = true
                continue
            }
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                throw ParseError(description: "line \(number + 1): expected login:hash or a lone ':'")
            }
            let login = String(line[..<colon]), hash = String(line[line.index(after: colon)...])
            guard login.utf8.count <= 64, login.utf8.allSatisfy(WaitRequestScanner.isWordByte) else {
                throw ParseError(description: "line \(number + 1): a login is 1-64 of A-Z a-z 0-9 _ (it prefixes the ids it may use)")
            }
            guard Self.crypt("", setting: hash) != nil else {
                throw ParseError(description: "line \(number + 1): \(login)'s hash is not one crypt(3) knows (DES, $1$, $5$, $6$, $2b$, $y$)")
            }
            guard hashes.updateValue(hash, forKey: login) == nil else {
                throw ParseError(description: "line \(number + 1): \(login) is listed twice")
            }
        }
        self.init(hashes: hashes, allowsAnonymous: anonymous)
    }

    public var count: Int { self.hashes.count }

    public func authenticate(_ credentials: Credentials?) -> Verdict {
        guard let credentials else {
            return self.allowsAnonymous ? .anonymous : .refused("this server needs a login: identifier=login:password@…")
        }
        guard let hash = self.hashes[credentials.login], let computed = Self.crypt(credentials.password, setting: hash),
              Self.equalInConstantTime(computed, hash) else {
            return .refused("wrong login or password")
        }
        return .user(credentials.login)
    }

    /// crypt_r(3); `nil` when the setting is not a hash it knows.
    static func crypt(_ password: String, setting: String) -> String? {
        guard password.utf8.count <= 1024, !password.utf8.contains(0), !setting.utf8.contains(0) else { return nil }
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        defer { data.deallocate() }
        // crypt_r reads `initialized` to know the scratch area is fresh.
        data.pointee.initialized = 0
        guard let result = crypt_r(password, setting, data) else { return nil }
        let text = String(cString: result)
        // Failures are "*0" or "*1" (never a valid hash).
        return text.hasPrefix("*") ? nil : text
    }

    private static func equalInConstantTime(_ a: String, _ b: String) -> Bool {
        let a = Array(a.utf8), b = Array(b.utf8)
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
