import Foundation
import NIOCore
import PlexorAccess
import PlexorChat
import PlexorCore
import PlexorRealplexor
import PlexorTransport

/// Fuzz targets for every parser of untrusted bytes. Built with libFuzzer by
/// `scripts/fuzz.sh` (coverage and AddressSanitizer, `-D FUZZING`), the target is
/// chosen by `PLEXOR_FUZZ_TARGET`; built plainly, `plexor-fuzz TARGET FILE...`
/// replays inputs (the regression tests do, with every crash ever found).
enum FuzzTarget: String, CaseIterable {
    case http
    case poll
    case publish
    case notification
    case presence
    case token
    case chat
    case realplexor

    func run(_ input: UnsafeRawBufferPointer) {
        switch self {
        case .http:
            HTTPRequestParserFuzzing.run(input)
        case .poll:
            let limits = PollLimits(maximumTags: 100, defaultTimeout: 25, maximumTimeout: 60)
            guard let request = try? PollRequest(query: input, limits: limits) else { return }
            precondition(!request.tags.isEmpty && request.tags.count <= limits.maximumTags, "tag count out of bounds")
            precondition(Set(request.tags.map(\.tag)).count == request.tags.count, "a tag listed twice")
            precondition(request.tags.allSatisfy { ($0.cursor ?? 0) >= 0 }, "a negative cursor")
            precondition((0...limits.maximumTimeout).contains(request.timeout), "timeout out of bounds")
            for item in request.tags { Self.checkTag(item.tag) }
        case .publish:
            guard let request = try? PublishRequest(json: Array(input)) else { return }
            precondition(!request.tags.isEmpty && request.tags.count <= PublishRequest.maximumTags, "tag count out of bounds")
            request.tags.forEach(Self.checkTag)
            request.onlyFor?.forEach(Self.checkTag)
            precondition(!request.data.isEmpty, "empty data")
        case .presence:
            let limits = PollLimits(maximumTags: 100, defaultTimeout: 25, maximumTimeout: 60)
            guard let request = try? PresenceRequest(query: input, acceptsPosition: true, limits: limits) else { return }
            precondition(request.prefixes.map { !$0.isEmpty && $0.count <= PresenceRequest.maximumPrefixes } ?? true, "prefix count out of bounds")
            request.prefixes?.forEach { Self.checkTag(Tag(trusted: $0)) }
            precondition((request.after ?? 0) >= 0, "a negative position")
            precondition((0...limits.maximumTimeout).contains(request.timeout), "timeout out of bounds")
        case .token:
            let text = String(decoding: input, as: UTF8.self)
            if let bytes = Base64URL.decode(text) {
                precondition(Base64URL.encode(bytes) == text, "two spellings of one value")
            }
            if let token = try? SiteToken.verify(text, secret: Self.secret, now: 1_800_000_000) {
                precondition(token.expires > 1_800_000_000 && !token.subject.isEmpty, "a token that should have been refused")
            }
            let signer = TokenSigner(notificationKey: Self.secret)!
            if case .grant(let grant)? = Credential(token: text, signer: signer, now: 0) {
                precondition(!grant.entries.isEmpty && grant.entries.count <= 100, "a grant of no or too many tags")
            }
        case .chat:
            let text = String(decoding: input, as: UTF8.self)
            if case .room(let room, _)? = ChatRoute(path: text) {
                precondition(Room(room.name) == room && room.tag.utf8.count <= 128, "a room that is not one")
            }
            for (check, length) in [(ChatText.message, ChatText.messageLength), (ChatText.nickname, ChatText.nicknameLength)] {
                guard let accepted = try? check(text) else { continue }
                precondition(length.contains(accepted.unicodeScalars.count), "a text of the wrong length")
                precondition(accepted.unicodeScalars.allSatisfy { $0 == "\n" || $0.value >= 0x20 && !(0x7F...0x9F).contains($0.value) },
                             "a control character got through")
                precondition(accepted.trimmingCharacters(in: .whitespacesAndNewlines).unicodeScalars.count <= accepted.unicodeScalars.count,
                             "untrimmed")
            }
            _ = try? ChatBody.decode(ChatBody.Moderation.self, from: Array(input), expecting: "")
        case .realplexor:
            // The WAIT scanner decides alike on the bytes whole and on them in two pieces (when the first
            // left it undecided); the IN reader never lets a bad id through.
            let bytes = Array(input)
            var whole = WaitRequestScanner(maximumIDs: 100)
            let outcome = whole.scan(bytes)
            var pieces = WaitRequestScanner(maximumIDs: 100)
            if pieces.scan(Array(bytes.prefix(bytes.count / 2))) == .needMore {
                precondition(pieces.scan(bytes) == outcome, "the scanner decided otherwise when fed in two pieces")
            }
            if case .request(.listen(let ids)) = outcome {
                precondition(!ids.isEmpty && ids.count <= 100, "id count out of bounds")
                ids.forEach { Self.checkTag($0.tag) }
                precondition(ids.allSatisfy { ($0.cursor ?? 0) >= 0 }, "a negative cursor")
            }
            var reader = InRequestReader(maximumBodyBytes: 4096)
            if case .request(let request) = reader.read(bytes, ended: true) {
                (request.targets + request.limiters).forEach(Self.checkTag)
                if case .send(let data) = request.action { precondition(!data.isEmpty, "empty data") }
            }
        case .notification:
            guard let payload = NotificationPayload.parse(input) else { return }
            switch payload {
            case .reference(let tag, let seq, let id):
                Self.checkTag(tag)
                precondition(seq > 0 && id > 0, "a reference to nothing")
            case .message(let tagged):
                Self.checkTag(tagged.tag)
                precondition(tagged.message.seq(for: tagged.tag) == tagged.seq, "its own seq is not among its tags")
                precondition(tagged.message.seqs.count <= NotificationPayload.maximumTags, "too many tags")
                tagged.message.seqs.forEach { Self.checkTag($0.tag) }
                tagged.message.onlyFor?.forEach(Self.checkTag)
                precondition(tagged.message.time.utf8.count == 27, "a time of another shape")
            }
        }
    }

    /// The site secret and notification key the token target signs with.
    static let secret = Array("fuzzing secret, thirty-two bytes".utf8)

    static func checkTag(_ tag: Tag) {
        precondition((try? Tag(validating: tag.name)) != nil, "an invalid tag got through: \(tag.name.debugDescription)")
    }
}

/// libFuzzer's driver (`-sanitize=fuzzer`), called from our own `main`:
/// SwiftPM gives an executable's entry point a name of its own, so
/// libFuzzer's `main` is never linked in.
@_silgen_name("LLVMFuzzerRunDriver")
private func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

nonisolated(unsafe) private var selectedTarget: FuzzTarget?

@main
struct PlexorFuzz {
    static func main() throws {
        #if FUZZING
        let name = ProcessInfo.processInfo.environment["PLEXOR_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            print("set PLEXOR_FUZZ_TARGET to one of \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))")
            exit(2)
        }
        selectedTarget = target
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runFuzzerDriver(&argc, &argv) { data, size in
            selectedTarget!.run(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        })
        #else
        try Self.replay()
        #endif
    }

    /// `plexor-fuzz TARGET FILE...`: runs each file through the target's checks.
    static func replay() throws {
        let arguments = CommandLine.arguments.dropFirst()
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name) else {
            print("usage: plexor-fuzz \(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")) FILE...")
            exit(2)
        }
        for path in arguments.dropFirst() {
            let input = try Data(contentsOf: URL(fileURLWithPath: path))
            input.withUnsafeBytes { target.run($0) }
        }
        print("replayed \(arguments.count - 1) inputs for \(name)")
    }
}
