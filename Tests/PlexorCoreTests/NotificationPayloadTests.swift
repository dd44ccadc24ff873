import NIOCore
import Testing
@testable import PlexorCore

@Suite struct NotificationPayloadTests {
    func parse(_ text: String) -> NotificationPayload? {
        Array(text.utf8).withUnsafeBytes { NotificationPayload.parse($0) }
    }

    @Test func parsesACompleteMessage() throws {
        let payload = self.parse("m chat 981 2026-11-26T10:00:00.123456Z 2 chat 18 news 7 0\n{\"text\":\"hi there\"}")
        guard case .message(let tagged)? = payload else {
            Issue.record("expected a message, got \(String(describing: payload))")
            return
        }
        #expect(tagged.tag.name == "chat")
        #expect(tagged.seq == 18)
        #expect(tagged.message.id == 981)
        #expect(tagged.message.time == "2026-11-26T10:00:00.123456Z")
        #expect(tagged.message.seqs == [TagSeq(tag: Tag(trusted: "chat"), seq: 18), TagSeq(tag: Tag(trusted: "news"), seq: 7)])
        #expect(tagged.message.onlyFor == nil)
        #expect(String(buffer: tagged.message.data) == "{\"text\":\"hi there\"}")
    }

    @Test func parsesOnlyForAndDataWithNewlines() throws {
        guard case .message(let tagged)? = self.parse("m room 5 2026-01-01T00:00:00.000000Z 1 room 3 2 admins mods\n[1,\n2]") else {
            Issue.record("expected a message")
            return
        }
        #expect(tagged.message.onlyFor == [Tag(trusted: "admins"), Tag(trusted: "mods")])
        #expect(String(buffer: tagged.message.data) == "[1,\n2]")
    }

    @Test func parsesAReference() {
        guard case .reference(let tag, let seq, let id)? = self.parse("r big 12 345") else {
            Issue.record("expected a reference")
            return
        }
        #expect(tag.name == "big")
        #expect(seq == 12)
        #expect(id == 345)
    }

    @Test(arguments: [
        "",
        "x chat 1",
        "r big 12",
        "r big 12 345 extra",
        "r big 12 345 ",
        "r big twelve 345",
        "r big 0 345",                         // seqs start at 1
        "r b@d 12 345",                        // not a tag
        "m chat 981 2026-11-26T10:00:00.123456Z 1 news 7 0\n1",      // its own tag is missing from the list
        "m chat 981 2026-11-26T10:00:00.123456Z 1 chat 18 0",         // no newline before the data
        "m chat 981 2026-11-26T10:00:00.123456Z 1 chat 18 0\n",       // no data
        "m chat 981 2026-11-26T10:00:00.123456Z 2 chat 18 0\n1",      // fewer tags than announced
        "m chat 981 2026-11-26T10:00:00.123456Z 1 chat 18 2 a\n1",    // fewer only_for tags than announced
        "m chat 981 2026-11-26T10:00:00.123456Z 1 chat 99999999999999999999 0\n1",
        "m chat 981 2026-11-26T10:00:00.123456Z 2 chat 18 chat 19 0\n1",   // a tag twice
        "m chat 981 2026-11-26T10:00:00.123456Z 2 chat 18 news 1 2 a a\n1", // an only_for tag twice
        "m chat 981 2026-11-26T10:00:00.123456Z 2 chat 18 n\"ws 1 0\n1",   // not a tag
        "m chat 981 2026 1 chat 18 0\n1",                                    // not a time
        "m chat 981 2026-11-26T10:00:00.123456Z\" 1 chat 18 0\n1",
        "m chat 981 2026-11-26 10:00:00.123456Z 1 chat 18 0\n1",
        "m chat 981 2026-11-26T10:00:00.123456Z 101 chat 18 0\n1",          // more tags than a message has
        "m chat 981 2026-11-26T10:00:00.123456Z 1 chat 18 101\n1",
        "m chat 981 2026-11-26T10:00:00.123456Z 4611686018427387904 chat 18 0\n1",
        "m chat 0 2026-11-26T10:00:00.123456Z 1 chat 18 0\n1",              // ids start at 1
    ])
    func rejectsForeignPayloads(_ text: String) {
        #expect(self.parse(text) == nil)
    }

    @Test func acceptsTheLargestSeqAndRefusesAnythingLongerThanAPayload() {
        let largest = "m chat 1 2026-11-26T10:00:00.123456Z 1 chat 9223372036854775807 0\n1"
        guard case .message(let tagged)? = self.parse(largest) else {
            Issue.record("expected a message")
            return
        }
        #expect(tagged.seq == Int64.max)
        let head = "m chat 1 2026-11-26T10:00:00.123456Z 1 chat 1 0\n"
        let fits = head + String(repeating: "1", count: NotificationPayload.maximumBytes - head.utf8.count)
        #expect(self.parse(fits) != nil)
        #expect(self.parse(fits + "1") == nil)
    }

    @Test func aHugeAnnouncedCountCostsNothing() {
        // Reserving space for this many tags would need terabytes.
        #expect(self.parse("m chat 1 2026-11-26T10:00:00.123456Z 9223372036854775807 chat 1 0\n1") == nil)
        #expect(self.parse("m chat 1 2026-11-26T10:00:00.123456Z 1 chat 1 9223372036854775807 a\n1") == nil)
    }
}

extension NotificationPayload: CustomStringConvertible {
    public var description: String {
        switch self {
        case .message(let tagged): return "message \(tagged.message.id) for \(tagged.tag)@\(tagged.seq)"
        case .reference(let tag, let seq, let id): return "reference \(id) for \(tag)@\(seq)"
        }
    }
}
