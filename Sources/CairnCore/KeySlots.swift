/// The distinct keys of a sequence in the order they first come, each with its slot (its index
/// among them).
///
/// A log-batch names a few metric keys many times, one after the other (`loss` × 100) or in
/// turns (`loss`, `acc`, `loss`, `acc` …, the order of a training loop that logs every metric at
/// each step). So a key is first compared with the key before it and with the one that followed
/// that key the first time, and found without hashing in both shapes; short keys compare as
/// two machine words. Other orders fall back to a scan of the few known keys, and to a
/// dictionary once there are more than `scanLimit`.
public struct KeySlots {
    /// The distinct keys, in the order they first came.
    public private(set) var keys: [String] = []
    private var slots: [String: Int] = [:]
    private var last = -1
    static let scanLimit = 16

    public init() {}

    /// The slot of `key`, and whether it came for the first time (it has the next slot).
    public mutating func slot(_ key: String) -> (slot: Int, isNew: Bool) {
        if last >= 0 {
            if keys[last] == key { return (last, false) }
            let next = last + 1 == keys.count ? 0 : last + 1
            if keys[next] == key {
                last = next
                return (next, false)
            }
        }
        if keys.count <= Self.scanLimit {
            if let found = keys.firstIndex(of: key) {
                last = found
                return (found, false)
            }
        } else if let found = slots[key] {
            last = found
            return (found, false)
        }
        last = keys.count
        keys.append(key)
        if keys.count > Self.scanLimit {
            if slots.isEmpty {
                for (slot, known) in keys.enumerated() { slots[known] = slot }
            } else {
                slots[key] = last
            }
        }
        return (last, true)
    }
}
