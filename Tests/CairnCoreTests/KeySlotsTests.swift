import CairnCore
import CairnTestSupport
import Testing

@Suite("Key slots")
struct KeySlotsTests {
    /// What `KeySlots` must answer for `sequence`: each key's index among the distinct keys in
    /// first-come order, and whether it came for the first time.
    static func expected(_ sequence: [String]) -> [(Int, Bool)] {
        var order: [String] = []
        return sequence.map { key in
            if let slot = order.firstIndex(of: key) { return (slot, false) }
            order.append(key)
            return (order.count - 1, true)
        }
    }

    static func check(_ sequence: [String]) {
        var slots = KeySlots()
        let answers = sequence.map { slots.slot($0) }
        let wanted = expected(sequence)
        #expect(answers.map(\.slot) == wanted.map(\.0))
        #expect(answers.map(\.isNew) == wanted.map(\.1))
        #expect(slots.keys == Self.distinct(sequence))
    }

    /// The distinct keys of `sequence` in first-come order.
    static func distinct(_ sequence: [String]) -> [String] {
        var seen: Set<String> = []
        return sequence.filter { seen.insert($0).inserted }
    }

    @Test("Runs of one key, keys in turns, and any other order give every key its first-come slot")
    func shapes() {
        let few = ["loss", "acc", "validation/accuracy_top5_long_name", "lr"]
        // One key after the other.
        Self.check(few.flatMap { Array(repeating: $0, count: 5) })
        // In turns, as a training loop logs them at every step.
        Self.check((0..<6).flatMap { _ in few })
        // In turns with a key missing at some steps, and back to an earlier key.
        Self.check(["a", "b", "c", "a", "c", "b", "a", "a", "d", "b", "d", "c"])
        // Empty and single sequences.
        Self.check([])
        Self.check(["only"])
    }

    @Test("Past the keys it scans, a dictionary finds them, in every order")
    func manyKeys() {
        var generator = SeededGenerator(seed: 42)
        for count in [15, 16, 17, 18, 40] {
            let keys = (0..<count).map { "metric_\($0)" }
            Self.check((0..<5).flatMap { _ in keys })
            Self.check((0..<300).map { _ in keys[Int(generator.next() % UInt64(count))] })
        }
    }
}
