import Foundation
import PlexorAccess
import PlexorCore
import Synchronization

/// Who may poll private tags: the `Authorization: Bearer` token of a poll
/// that names one must be a grant or a session that covers it.
final class AccessControl: Sendable {
    enum Refusal: Equatable {
        /// 403.
        case forbidden(String)
        /// 503: the key is not read yet (the database has not been reached).
        case unavailable
    }

    let privateTags: PrivateTags
    private let key: @Sendable () -> [UInt8]?
    private let derived = Mutex<TokenSigner?>(nil)

    /// `key`: the notification key once known (the listener reads it when it connects).
    init(privateTags: PrivateTags, key: @escaping @Sendable () -> [UInt8]?) {
        self.privateTags = privateTags
        self.key = key
    }

    /// Signs and checks tokens; nil until the key is known.
    var signer: TokenSigner? {
        if let signer = self.derived.withLock({ $0 }) { return signer }
        guard let key = self.key(), let signer = TokenSigner(notificationKey: key) else { return nil }
        self.derived.withLock { $0 = signer }
        return signer
    }

    /// The valid credential in an `Authorization` header, if any.
    func credential(_ authorization: String?) -> Credential? {
        guard let token = authorization.flatMap(bearerToken), let signer = self.signer else { return nil }
        return Credential(token: token, signer: signer, now: Int64(Date().timeIntervalSince1970))
    }

    /// Why the poll may not go on, or nil. The token is read only when a
    /// private tag is asked for.
    func refusal(for tags: [TagCursor], authorization: String?) -> Refusal? {
        var credential: Credential??
        for tag in tags where self.privateTags.isPrivate(tag.tag.name) {
            if self.signer == nil { return .unavailable }
            if credential == nil { credential = .some(self.credential(authorization)) }
            if !self.privateTags.allows(tag.tag.name, to: credential!) {
                return .forbidden("\(tag.tag.name) is a private tag: poll it with a token Plexor signed for it (Authorization: Bearer <token>)")
            }
        }
        return nil
    }
}
