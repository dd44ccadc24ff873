import NIOCore
import PlexorCore
import Testing
@testable import PlexorPostgres

typealias Tag = PlexorCore.Tag

@Suite struct ListenRegistryTests {
    let a = PlexorCore.Tag(trusted: "a")
    let b = PlexorCore.Tag(trusted: "b")
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    let linger = TimeAmount.seconds(30)

    @Test func listensOnceForATagWantedBySeveralSinks() {
        var registry = ListenRegistry()
        let value1 = registry.want([self.a], sink: 0)
        #expect(value1 == false)
        let value2 = registry.want([self.a], sink: 1)
        #expect(value2 == false)
        let value3 = registry.nextCommand(now: self.start, linger: self.linger)
        #expect(value3 == .listen([self.a]))
        let value4 = registry.nextCommand(now: self.start, linger: self.linger)
        #expect(value4 == nil)
        registry.completed(.listen([self.a]))
        #expect(registry.isListening([self.a]))
        #expect(registry.sinks(for: self.a) == 0b11)
        let value5 = registry.want([self.a], sink: 2)
        #expect(value5 == true)
    }

    @Test func unlistensOnlyAfterTheLastSinkLeftAndTheLingerPassed() {
        var registry = ListenRegistry()
        _ = registry.want([self.a], sink: 0)
        _ = registry.want([self.a], sink: 1)
        _ = registry.nextCommand(now: self.start, linger: self.linger)
        registry.completed(.listen([self.a]))
        registry.release([self.a], sink: 0, now: self.start)
        let value6 = registry.nextCommand(now: self.start + .seconds(60), linger: self.linger)
        #expect(value6 == nil)
        registry.release([self.a], sink: 1, now: self.start)
        #expect(registry.sinks(for: self.a) == 0)
        let value7 = registry.nextCommand(now: self.start + .seconds(29), linger: self.linger)
        #expect(value7 == nil)
        let value8 = registry.nextCommand(now: self.start + .seconds(30), linger: self.linger)
        #expect(value8 == .unlisten([self.a]))
        registry.completed(.unlisten([self.a]))
        #expect(registry.count == 0)
    }

    @Test func aTagWantedAgainDuringTheLingerStaysListened() {
        var registry = ListenRegistry()
        _ = registry.want([self.a], sink: 0)
        _ = registry.nextCommand(now: self.start, linger: self.linger)
        registry.completed(.listen([self.a]))
        registry.release([self.a], sink: 0, now: self.start)
        let value9 = registry.want([self.a], sink: 0)
        #expect(value9 == true)
        let value10 = registry.nextCommand(now: self.start + .seconds(100), linger: self.linger)
        #expect(value10 == nil)
    }

    @Test func aTagWantedWhileItsUnlistenIsInFlightIsListenedAgain() {
        var registry = ListenRegistry()
        _ = registry.want([self.a], sink: 0)
        _ = registry.nextCommand(now: self.start, linger: self.linger)
        registry.completed(.listen([self.a]))
        registry.release([self.a], sink: 0, now: self.start)
        let value11 = registry.nextCommand(now: self.start + .seconds(31), linger: self.linger)
        #expect(value11 == .unlisten([self.a]))
        let value12 = registry.want([self.a], sink: 0)
        #expect(value12 == false)
        registry.completed(.unlisten([self.a]))
        #expect(registry.phase(of: self.a) == .needsListen)
        let value13 = registry.nextCommand(now: self.start + .seconds(31), linger: self.linger)
        #expect(value13 == .listen([self.a]))
    }

    @Test func aTagReleasedBeforeItsListenWasSentIsForgotten() {
        var registry = ListenRegistry()
        _ = registry.want([self.a], sink: 0)
        registry.release([self.a], sink: 0, now: self.start)
        #expect(registry.count == 0)
        let value14 = registry.nextCommand(now: self.start, linger: self.linger)
        #expect(value14 == nil)
    }

    @Test func listensAgainOnWhatIsWantedAfterTheConnectionIsLost() {
        var registry = ListenRegistry()
        _ = registry.want([self.a, self.b], sink: 0)
        _ = registry.nextCommand(now: self.start, linger: self.linger)
        registry.completed(.listen([self.a, self.b]))
        registry.release([self.b], sink: 0, now: self.start)
        registry.connectionLost()
        #expect(registry.isSettled == false)
        #expect(registry.phase(of: self.b) == nil)
        let value15 = registry.nextCommand(now: self.start, linger: self.linger)
        #expect(value15 == .listen([self.a]))
        registry.completed(.listen([self.a]))
        #expect(registry.isSettled)
    }

    @Test func batchesCommands() {
        var registry = ListenRegistry()
        let tags = (0..<5).map { PlexorCore.Tag(trusted: "t\($0)") }
        _ = registry.want(tags, sink: 0)
        guard case .listen(let first)? = registry.nextCommand(now: self.start, linger: self.linger, maximumBatch: 3) else {
            Issue.record("expected a LISTEN")
            return
        }
        guard case .listen(let second)? = registry.nextCommand(now: self.start, linger: self.linger, maximumBatch: 3) else {
            Issue.record("expected a second LISTEN")
            return
        }
        #expect(first.count == 3)
        #expect(Set(first + second) == Set(tags))
    }
}
