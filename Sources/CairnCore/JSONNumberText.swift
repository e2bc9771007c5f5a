/// JSON text of numbers written straight into memory: the hot paths (long metric histories)
/// write millions of them, so no `String` is made per number.
public enum JSONNumberText {
    /// The most bytes `int` writes.
    public static let maxIntBytes = 20
    /// The most bytes `double` writes (a negative subnormal with exponent: 24, "-Infinity" quoted: 11).
    public static let maxDoubleBytes = 32

    /// "00" … "99": `int` writes two digits per division (a millisecond timestamp: 7, not 13).
    private static let digitPairs: [UInt8] = (0..<100).flatMap { [UInt8(ascii: "0") + UInt8($0 / 10), UInt8(ascii: "0") + UInt8($0 % 10)] }

    /// Writes `value` in decimal at `destination`; answers the byte count.
    @inline(__always)
    public static func int(_ value: Int64, into destination: UnsafeMutableRawPointer) -> Int {
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch, filled from the end
        return withUnsafeMutableBytes(of: &digits) { scratch in
            var start = scratch.count
            digitPairs.withUnsafeBufferPointer { pairs in
                while magnitude >= 100 {
                    let pair = Int(truncatingIfNeeded: magnitude % 100) &* 2
                    magnitude /= 100
                    start -= 2
                    scratch[start] = pairs[pair]
                    scratch[start + 1] = pairs[pair + 1]
                }
                if magnitude >= 10 {
                    let pair = Int(truncatingIfNeeded: magnitude) &* 2
                    start -= 2
                    scratch[start] = pairs[pair]
                    scratch[start + 1] = pairs[pair + 1]
                } else {
                    start -= 1
                    scratch[start] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude)
                }
            }
            if value < 0 {
                start -= 1
                scratch[start] = UInt8(ascii: "-")
            }
            let count = scratch.count - start
            destination.copyMemory(from: scratch.baseAddress! + start, byteCount: count)
            return count
        }
    }

    /// Writes `value` as MLflow does: Swift's shortest round-trip form for finite values
    /// (the same text as `description`), `"NaN"`, `"Infinity"` and `"-Infinity"` quoted.
    /// Answers the byte count.
    @inline(__always)
    public static func double(_ value: Double, into destination: UnsafeMutableRawPointer) -> Int {
        if value.isNaN { return copy("\"NaN\"", to: destination) }
        if value.isInfinite { return copy(value > 0 ? "\"Infinity\"" : "\"-Infinity\"", to: destination) }
        var sink = RawSink(start: destination)
        value.write(to: &sink)
        return sink.count
    }

    private static func copy(_ text: StaticString, to destination: UnsafeMutableRawPointer) -> Int {
        destination.copyMemory(from: text.utf8Start, byteCount: text.utf8CodeUnitCount)
        return text.utf8CodeUnitCount
    }

    /// Receives the digits of `Double.write(to:)`. The standard library hands them over as ASCII
    /// bytes through `_writeASCII` (no `String` made); `write(_:)` covers any other path.
    private struct RawSink: TextOutputStream {
        let start: UnsafeMutableRawPointer
        var count = 0

        mutating func write(_ string: String) {
            for byte in string.utf8 where count < JSONNumberText.maxDoubleBytes {
                start.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
                count += 1
            }
        }

        mutating func _writeASCII(_ buffer: UnsafeBufferPointer<UInt8>) {
            let n = min(buffer.count, JSONNumberText.maxDoubleBytes - count)
            (start + count).copyMemory(from: buffer.baseAddress!, byteCount: n)
            count += n
        }
    }
}
