import HeapModule
import NIOCore

/// An event loop's scheduled tasks, soonest first: a heap of deadlines
/// with the tasks beside it by id. Cancelling drops the task; its
/// heap entry is skipped when it comes up.
struct TimerQueue {
    /// Deadline first, then the order of scheduling: equal deadlines run in order.
    private struct Entry: Comparable {
        var deadline: NIODeadline
        var id: UInt64

        static func < (lhs: Entry, rhs: Entry) -> Bool {
            lhs.deadline < rhs.deadline || (lhs.deadline == rhs.deadline && lhs.id < rhs.id)
        }
    }

    private var heap = Heap<Entry>()
    private var tasks: [UInt64: () -> Void] = [:]
    private var lastID: UInt64 = 0

    var isEmpty: Bool { self.tasks.isEmpty }

    /// Adds `task` to run at `deadline`; the id cancels it.
    mutating func schedule(at deadline: NIODeadline, _ task: @escaping () -> Void) -> UInt64 {
        self.lastID += 1
        self.tasks[self.lastID] = task
        self.heap.insert(Entry(deadline: deadline, id: self.lastID))
        return self.lastID
    }

    /// Whether the task was still waiting (and now never runs).
    mutating func cancel(_ id: UInt64) -> Bool {
        self.tasks.removeValue(forKey: id) != nil
    }

    /// The deadline of the soonest task still waiting.
    mutating func nextDeadline() -> NIODeadline? {
        self.dropCancelled()
        return self.heap.min?.deadline
    }

    /// Removes and returns the soonest task due at `now`.
    mutating func popDue(now: NIODeadline) -> (() -> Void)? {
        self.dropCancelled()
        guard let first = self.heap.min, first.deadline <= now else { return nil }
        self.heap.removeMin()
        return self.tasks.removeValue(forKey: first.id)
    }

    private mutating func dropCancelled() {
        while let first = self.heap.min, self.tasks[first.id] == nil {
            self.heap.removeMin()
        }
    }
}
