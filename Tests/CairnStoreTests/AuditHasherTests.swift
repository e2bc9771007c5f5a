import Crypto
import Foundation
import Testing
@testable import CairnStore

@Suite("Audit digests")
struct AuditHasherTests {
    enum Field {
        case text(String), number(Int64), double(Double)

        /// The field as the audit log defines it: `<UTF-8 length>:<text>`, numbers in decimal,
        /// doubles as the lower-case hexadecimal of their bit pattern.
        var bytes: [UInt8] {
            let text: String
            switch self {
            case .text(let t): text = t
            case .number(let n): text = String(n)
            case .double(let d): text = String(d.bitPattern, radix: 16)
            }
            return Array("\(text.utf8.count):\(text)".utf8)
        }
    }

    static func digest(_ fields: [Field]) -> [UInt8] {
        var hasher = AuditHasher()
        for field in fields {
            switch field {
            case .text(let t): hasher.add(t)
            case .number(let n): hasher.add(n)
            case .double(let d): hasher.add(d)
            }
        }
        return hasher.finalize()
    }

    static func reference(_ fields: [Field]) -> [UInt8] {
        Array(SHA256.hash(data: fields.flatMap(\.bytes)))
    }

    @Test("A digest is the SHA-256 of the length-prefixed fields, whatever their kind, size or number")
    func digestMatchesTheFieldFormula() {
        let edge: [Field] = [
            .text(""), .text("loss"), .text("ünïcödé ✓ 𝔘"), .text(String(repeating: "x", count: 20_000)),
            .text(String(repeating: "y", count: 64)), .text(String(repeating: "z", count: 65)), .text("é" + String(repeating: "w", count: 63)),
            .number(0), .number(7), .number(-1), .number(10), .number(Int64.max), .number(Int64.min),
            .double(0), .double(-0.0), .double(1.5), .double(.nan), .double(-.infinity), .double(.leastNonzeroMagnitude),
            .double(Double(bitPattern: 0x7FF8_0000_0000_0ABC)),
        ]
        #expect(Self.digest(edge) == Self.reference(edge))
        #expect(Self.digest([]) == Self.reference([]))
        // A 1,000-point batch as the store hashes it: well past the 16 KiB the hasher gathers at once.
        var generator = SystemRandomNumberGenerator()
        let batch: [Field] = (0..<1000).flatMap { step -> [Field] in
            [.text("metric-\(step % 10)"), .double(Double(bitPattern: generator.next())),
             .number(Int64.random(in: Int64.min...Int64.max, using: &generator)), .number(Int64(step))]
        }
        #expect(Self.digest(batch) == Self.reference(batch))
        #expect(Self.digest(batch) != Self.digest(Array(batch.dropLast())))
    }
}
