import CairnCore
import Testing

@Suite("JSON number text")
struct JSONNumberTextTests {
    @Test("Integers are written as Swift writes them, at every length and both signs")
    func integers() {
        var values: [Int64] = [0, 1, -1, 9, 10, 11, 99, 100, 101, 999, 1_000, -1_000, Int64.max, Int64.min, Int64.min + 1, 1_700_000_000_123]
        var power: Int64 = 1
        for _ in 0..<18 {
            power *= 10
            values += [power - 1, power, power + 1, -(power - 1), -power]
        }
        var generator = SystemRandomNumberGenerator()
        values += (0..<2_000).map { _ in Int64.random(in: Int64.min...Int64.max, using: &generator) >> Int64.random(in: 0...63, using: &generator) }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: JSONNumberText.maxIntBytes, alignment: 1)
        defer { buffer.deallocate() }
        for value in values {
            let count = JSONNumberText.int(value, into: buffer)
            #expect(String(decoding: UnsafeRawBufferPointer(start: buffer, count: count), as: UTF8.self) == String(value))
        }
    }
}
