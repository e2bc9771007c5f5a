import Synchronization

/// A clock for tests: every reading is one millisecond after the previous one, so event order
/// is deterministic and no test sleeps.
public final class TestClock: Sendable {
    private let current: Mutex<Int64>

    public init(start: Int64 = 1_700_000_000_000) {
        current = Mutex(start)
    }

    public func now() -> Int64 {
        current.withLock { value in
            value += 1
            return value
        }
    }
}
