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

    /// The text `JSONNumberText.double` writes for `value`.
    private static func text(_ value: Double, _ buffer: UnsafeMutableRawPointer) -> String {
        let count = JSONNumberText.double(value, into: buffer)
        return String(decoding: UnsafeRawBufferPointer(start: buffer, count: count), as: UTF8.self)
    }

    /// What MLflow's JSON holds for `value`: `description`, non-finite values quoted.
    private static func expected(_ value: Double) -> String {
        if value.isNaN { return "\"NaN\"" }
        if value.isInfinite { return value > 0 ? "\"Infinity\"" : "\"-Infinity\"" }
        return value.description
    }

    @Test("Doubles are written byte for byte as description writes them: edges, every power of two and ten, random values")
    func doubles() {
        var values: [Double] = [
            0, -0.0, 1, -1, 0.1, 0.2, 0.3, 2.5, 0.5, 100, 123456.789, 4.35, 0.0003, 1e-7,
            1e-5, 1e-4, 0.001, 1e15, 1e16, 1e20, 1e21, 1e22, 1e23, 1e100, 1e-100, 1.23e302,
            9_007_199_254_740_991, 9_007_199_254_740_992, 18_014_398_509_481_984, 36_028_797_018_963_968,
            .greatestFiniteMagnitude, .leastNormalMagnitude, .leastNonzeroMagnitude,
            Double.leastNormalMagnitude.nextDown, Double.leastNormalMagnitude.nextUp,
            .nan, -.nan, Double(bitPattern: 0x7FF0_0000_0000_0001), .signalingNaN, .infinity, -.infinity,
            Double(Float(0.1)), Double(Float.pi), Double(Float.greatestFiniteMagnitude), Double(Float.leastNonzeroMagnitude),
        ]
        for exponent in -1_080...1_030 {
            let power = Double(sign: .plus, exponent: exponent, significand: 1)
            values += [power, power.nextUp, power.nextDown]
        }
        for exponent in -330...310 {
            if let power = Double("1e\(exponent)") { values += [power, power.nextUp, power.nextDown] }
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200_000 {
            values.append(Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &generator)))
            values.append(Double(Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &generator))))
        }
        for _ in 0..<50_000 {
            values.append(Double(Int64.random(in: Int64.min...Int64.max, using: &generator) >> Int64.random(in: 0...63, using: &generator)))
            values.append(Double.random(in: 0..<10, using: &generator))
            // Short decimals (a learning rate, an accuracy) and their neighbours.
            let digits = Int64.random(in: 1...999_999, using: &generator)
            if let short = Double("\(digits)e\(Int.random(in: -30...30, using: &generator))") {
                values += [short, short.nextUp, short.nextDown]
            }
        }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: JSONNumberText.maxDoubleBytes, alignment: 8)
        defer { buffer.deallocate() }
        var mismatches: [String] = []
        for value in values + values.map({ -$0 }) where Self.text(value, buffer) != Self.expected(value) {
            mismatches.append("\(Self.expected(value)) written as \(Self.text(value, buffer))")
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(2 * values.count): \(mismatches.prefix(10))")
    }

    @Test("The shortest-decimal writer leaves subnormals and non-finite values to the standard library")
    func shortestDecimalDeclines() {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: ShortestDecimal.maxBytes, alignment: 8)
        defer { buffer.deallocate() }
        for value in [Double.leastNonzeroMagnitude, Double.leastNormalMagnitude.nextDown, -Double.leastNonzeroMagnitude, .nan, .infinity, -.infinity] {
            #expect(ShortestDecimal.write(value, into: buffer) == nil)
        }
        #expect(ShortestDecimal.write(Double.leastNormalMagnitude, into: buffer) == 23)
    }
}
