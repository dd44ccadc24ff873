import PlexorBytes

/// `GET /online?prefix=room5/&prefix=user_` and
/// `GET /watch?after=15&prefix=user_&timeout=25`, parsed and validated.
public struct PresenceRequest: Equatable, Sendable {
    /// Only tags starting with one of these (`nil`: every tag).
    public var prefixes: [String]?
    /// `/watch`: events after this position (`nil`: from now).
    public var after: Int64?
    /// `/watch`: seconds to wait for an event, capped at the server's maximum.
    public var timeout: Int

    public static let maximumPrefixes = 100

    public init(prefixes: [String]? = nil, after: Int64? = nil, timeout: Int) {
        self.prefixes = prefixes
        self.after = after
        self.timeout = timeout
    }

    /// `acceptsPosition`: whether `after` and `timeout` may appear (`/watch`) or not (`/online`).
    public init(query: UnsafeRawBufferPointer, acceptsPosition: Bool, limits: PollLimits) throws(RequestError) {
        var prefixes: [String] = []
        var after: Int64?
        var timeout: Int?
        try QueryString.forEachParameter(query) { (key, value) throws(RequestError) in
            if key.equals("prefix") {
                guard prefixes.count < Self.maximumPrefixes else {
                    throw .badRequest("at most \(Self.maximumPrefixes) prefix parameters are allowed")
                }
                prefixes.append(try PercentDecoding.withDecoded(value, parameter: key) { (value) throws(RequestError) in
                    // A prefix of a tag is spelled like one.
                    do throws(TagError) {
                        return try Tag(validating: value).name
                    } catch {
                        throw .badRequest("prefix: \(error.description)")
                    }
                })
            } else if acceptsPosition && key.equals("after") {
                guard after == nil else { throw .badRequest("parameter after is given more than once") }
                after = try PercentDecoding.withDecoded(value, parameter: key) { (value) throws(RequestError) in
                    guard !value.isEmpty, let parsed = decimalValue(value) else {
                        throw .badRequest("after \"\(String(decoding: value.prefix(40), as: UTF8.self))\" is not a whole number from 0 to \(Int64.max)")
                    }
                    return parsed
                }
            } else if acceptsPosition && key.equals("timeout") {
                guard timeout == nil else { throw .badRequest("parameter timeout is given more than once") }
                timeout = try PercentDecoding.withDecoded(value, parameter: key) { (value) throws(RequestError) in
                    try PollRequest.parseTimeout(value, limits: limits)
                }
            } else {
                // Unknown parameters (cache busters such as _=123) are ignored, if well-formed.
                try PercentDecoding.withDecoded(value, parameter: key) { (_) throws(RequestError) in }
            }
        }
        self.prefixes = prefixes.isEmpty ? nil : prefixes
        self.after = after
        self.timeout = timeout ?? min(limits.defaultTimeout, limits.maximumTimeout)
    }
}
