import NIOCore

/// An event loop's scheduled tasks, soonest first: a binary min-heap of
/// deadlines with the tasks beside it by id. Cancelling drops the task; its
/// heap entry is skipped when it comes up.
struct TimerQueue {
    private struct Entry {
        var deadline: NIODeadline
        var id: UInt64
    }

    private var heap: [Entry] = []
    private var tasks: [UInt64: () -> Void] = [:]
    private var lastID: UInt64 = 0

    var isEmpty: Bool { self.tasks.isEmpty }

    /// Adds `task` to run at `deadline`; the id cancels it.
    mutating func schedule(at deadline: NIODeadline, _ task: @escaping () -> Void) -> UInt64 {
        self.lastID += 1
        self.tasks[self.lastID] = task
        self.heap.append(Entry(deadline: deadline, id: self.lastID))
        self.siftUp(self.heap.count - 1)
        return self.lastID
    }

    /// Whether the task was still waiting (and now never runs).
    mutating func cancel(_ id: UInt64) -> Bool {
        self.tasks.removeValue(forKey: id) != nil
    }

    /// The deadline of the soonest task still waiting.
    mutating func nextDeadline() -> NIODeadline? {
        self.dropCancelled()
        return self.heap.first?.deadline
    }

    /// Removes and returns the soonest task due at `now`.
    mutating func popDue(now: NIODeadline) -> (() -> Void)? {
        self.dropCancelled()
        guard let first = self.heap.first, first.deadline <= now else { return nil }
        self.removeFirst()
        return self.tasks.removeValue(forKey: first.id)
    }

    private mutating func dropCancelled() {
        while let first = self.heap.first, self.tasks[first.id] == nil {
            self.removeFirst()
        }
    }

    private mutating func removeFirst() {
        let last = self.heap.removeLast()
        guard !self.heap.isEmpty else { return }
        self.heap[0] = last
        self.siftDown(0)
    }

    /// Deadline first, then the order of scheduling: equal deadlines run in order.
    private func precedes(_ lhs: Int, _ rhs: Int) -> Bool {
        let left = self.heap[lhs], right = self.heap[rhs]
        return left.deadline < right.deadline || (left.deadline == right.deadline && left.id < right.id)
    }

    private mutating func siftUp(_ index: Int) {
        var child = index
        while child > 0 {
            let parent = (child - 1) / 2
            guard self.precedes(child, parent) else { return }
            self.heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ index: Int) {
        var parent = index
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < self.heap.count, self.precedes(left, smallest) { smallest = left }
            if right < self.heap.count, self.precedes(right, smallest) { smallest = right }
            guard smallest != parent else { return }
            self.heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
