import Testing
@testable import PlexorCore

@Suite struct PresenceTallyTests {
    @Test func reportsOnlyWhatChangedAsDifferences() {
        var tally = PresenceTally(scope: PresenceScope())
        let first = tally.changes(current: [(tag: "a", listeners: 2), (tag: "b", listeners: 0), (tag: "c", listeners: 1)])
        #expect(Dictionary(uniqueKeysWithValues: first.map { ($0.tag, $0.delta) }) == ["a": 2, "c": 1])
        // Unchanged: nothing. A tag gone from the loop, or lingering at 0: back to zero.
        #expect(tally.changes(current: [(tag: "a", listeners: 2), (tag: "c", listeners: 1)]).isEmpty)
        let second = tally.changes(current: [(tag: "a", listeners: 3), (tag: "c", listeners: 0)])
        #expect(Dictionary(uniqueKeysWithValues: second.map { ($0.tag, $0.delta) }) == ["a": 1, "c": -1])
        #expect(tally.trackedCount == 1)
    }

    @Test func tracksOnlyTheTagsOfItsPrefixes() {
        var tally = PresenceTally(scope: PresenceScope(prefixes: ["room5/", "user_"]))
        let changes = tally.changes(current: [(tag: "room5/u/ann", listeners: 1), (tag: "room6/u/bob", listeners: 1), (tag: "user_9", listeners: 2)])
        #expect(changes.map(\.tag).sorted() == ["room5/u/ann", "user_9"])
    }
}

@Suite struct PresenceLedgerTests {
    @Test func sumsTheLoopsAndReportsEachChangedTagOnce() {
        var ledger = PresenceLedger()
        ledger.add([(tag: "a", delta: 1), (tag: "b", delta: 2)])
        ledger.add([(tag: "a", delta: 1), (tag: "b", delta: -2)])
        let report = ledger.takeReport(everything: false)
        #expect(report.map(\.tag) == ["a", "b"])
        #expect(report.map(\.listeners) == [2, 0])
        #expect(ledger.takeReport(everything: false).isEmpty)
        #expect(ledger.trackedCount == 1)
        // The database lost its copy: everything this gateway holds.
        #expect(ledger.takeReport(everything: true).map(\.tag) == ["a"])
    }

    @Test func aReportThatWasNotWrittenIsReportedAgainWithTheCountThen() {
        var ledger = PresenceLedger()
        ledger.add([(tag: "a", delta: 1)])
        let failed = ledger.takeReport(everything: false)
        ledger.add([(tag: "a", delta: 1)])
        ledger.restore(failed)
        #expect(ledger.takeReport(everything: false).map(\.listeners) == [2])
    }
}

@Suite struct PresenceRequestTests {
    func parse(_ query: String, watch: Bool = true) throws(RequestError) -> PresenceRequest {
        var query = query
        return try query.withUTF8 { bytes in
            Result { () throws(RequestError) in
                try PresenceRequest(query: UnsafeRawBufferPointer(bytes), acceptsPosition: watch, limits: PollLimits())
            }
        }.get()
    }

    @Test func readsPrefixesPositionAndTimeout() throws {
        #expect(try self.parse("prefix=room5%2F&prefix=user_&after=15&timeout=5")
            == PresenceRequest(prefixes: ["room5/", "user_"], after: 15, timeout: 5))
        #expect(try self.parse("") == PresenceRequest(timeout: 25))
        #expect(try self.parse("timeout=9999") == PresenceRequest(timeout: 60))
        // /online has no position: an after there is just an unknown parameter.
        #expect(try self.parse("after=x", watch: false) == PresenceRequest(timeout: 25))
    }

    @Test func refusesWhatIsNotAPositionOrAPrefix() {
        for (query, message) in [
            ("after=-1", "after \"-1\" is not a whole number from 0 to 9223372036854775807"),
            ("after=", "after \"\" is not a whole number from 0 to 9223372036854775807"),
            ("after=99999999999999999999", "after \"99999999999999999999\" is not a whole number from 0 to 9223372036854775807"),
            ("after=1&after=2", "parameter after is given more than once"),
            ("prefix=", "prefix: a tag must not be empty"),
            ("prefix=a%20b", "prefix: tag \"a b\" has a character outside A-Z a-z 0-9 _ - . : /"),
            ("prefix=%zz", "parameter prefix is not valid percent-encoded UTF-8"),
            (Array(repeating: "prefix=a", count: 101).joined(separator: "&"), "at most 100 prefix parameters are allowed"),
        ] {
            #expect(throws: RequestError.badRequest(message)) { try self.parse(query) }
        }
    }
}
