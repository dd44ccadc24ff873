import ArgumentParser
import Foundation
import PlexorCore
import PlexorPostgres

/// What a gateway spends on one notification before delivering it: the
/// signature check and the payload parse, on payloads of a few sizes.
struct NotificationCost: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "notification", abstract: "CPU per notification: verifying the trigger's signature and parsing the payload.")

    @OptionGroup var results: ResultOptions
    @Option(help: "Notifications per size.") var count = 200_000

    func run() throws {
        let signature = NotificationSignature(key: (0..<32).map { UInt8($0) })!
        for dataBytes in [16, 200, 7_800] {
            let body = Array("m chat 981 2026-11-26T10:00:00.123456Z 2 chat 18 news 7 0\n\"".utf8)
                + Array(repeating: UInt8(ascii: "x"), count: dataBytes - 2) + [UInt8(ascii: "\"")]
            let signed = signature.sign(body)
            let verifyOnly = Self.nanoseconds(self.count) {
                signed.withUnsafeBytes { signature.verify($0) != nil }
            }
            let parseOnly = Self.nanoseconds(self.count) {
                body.withUnsafeBytes { NotificationPayload.parse($0) != nil }
            }
            try self.results.record("notification", server: "plexor", [
                "payload_bytes": signed.count, "verify_ns": verifyOnly, "parse_ns": parseOnly,
            ], summary: "\(signed.count)-byte payload: verify \(verifyOnly) ns, parse \(parseOnly) ns")
        }
    }

    /// Mean nanoseconds per call of `body`, which must return true.
    static func nanoseconds(_ count: Int, _ body: () -> Bool) -> Int {
        let start = DispatchTime.now().uptimeNanoseconds
        var ok = true
        for _ in 0..<count { ok = body() && ok }
        precondition(ok, "a payload did not verify or parse")
        return Int((DispatchTime.now().uptimeNanoseconds - start) / UInt64(count))
    }
}
