import Dispatch
import Logging
import ServiceLifecycle
import Synchronization

/// One long-lived part of a running gateway, and how it stops. `Gateway`
/// starts its parts in the order of `Gateway.parts`; they stop in reverse.
/// Stopping is idempotent, so `Gateway.shutdown()` and a `ServiceGroup`'s
/// graceful shutdown may both ask.
public final class GatewayPart: Sendable, CustomStringConvertible {
    public let name: String
    private let action: @Sendable () -> Void
    private let stopped = Atomic<Bool>(false)

    init(_ name: String, stop: @escaping @Sendable () -> Void) {
        self.name = name
        self.action = stop
    }

    public var description: String { self.name }

    /// Stops the part (blocking until it has); later calls do nothing.
    public func stop() {
        guard !self.stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        self.action()
    }
}

/// A part as a `Service`: started already by `Gateway.start`, it runs until
/// the group shuts down (gracefully, or by cancellation), then stops. A
/// `ServiceGroup` shuts its services down gracefully in reverse order, one
/// after another, which is the order the parts must stop in.
struct GatewayPartService: Service, CustomStringConvertible {
    let part: GatewayPart
    let logger: Logger

    var description: String { self.part.name }

    func run() async throws {
        // Throws when the group is cancelled rather than shut down gracefully: stop either way.
        try? await gracefulShutdown()
        self.logger.info("stopping", metadata: ["part": "\(self.part)"])
        let part = self.part
        // Stopping blocks (joins threads, waits for loops): not on the cooperative pool.
        await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                part.stop()
                finished.resume()
            }
        }
    }
}

extension Gateway {
    /// The gateway's parts as services for a `ServiceGroup`, in start order.
    public var services: [any Service] {
        self.parts.map { GatewayPartService(part: $0, logger: self.logger) }
    }
}
