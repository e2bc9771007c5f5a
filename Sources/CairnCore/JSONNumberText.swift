/// JSON text of numbers written straight into memory: the hot paths (long metric histories)
/// write millions of them, so no `String` is made per number.
public enum JSONNumberText {
    /// The most bytes `int` may write: its text is at most 20 bytes (`Int64.min`), but it
    /// copies its digits in one block of fixed size.
    public static let maxIntBytes = 24

    /// The most bytes `double` may write: its text is at most 24 bytes (a negative subnormal with
    /// exponent; "-Infinity" quoted: 11), but `ShortestDecimal` copies digits in fixed blocks.
    public static let maxDoubleBytes = ShortestDecimal.maxBytes

    /// Writes `value` in decimal at `destination` (up to `maxIntBytes` bytes may be
    /// overwritten); answers the byte count. Digits go eight at a time (`DecimalDigits`): a
    /// millisecond timestamp is two blocks, a step below 10^8 one.
    @inline(__always)
    public static func int(_ value: Int64, into destination: UnsafeMutableRawPointer) -> Int {
        let magnitude = value.magnitude
        // The digits right-aligned to offset 24 of 48 bytes of scratch.
        var scratch: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &scratch) { scratch in
            let base = scratch.baseAddress!
            let upper = magnitude / 100_000_000
            DecimalDigits.eight(UInt32(truncatingIfNeeded: magnitude &- upper &* 100_000_000), at: base + 16)
            let count: Int
            if upper == 0 {
                count = DecimalDigits.count(magnitude, most: 8, limit: 10_000_000)
            } else {
                let top = upper / 100_000_000
                DecimalDigits.eight(UInt32(truncatingIfNeeded: upper &- top &* 100_000_000), at: base + 8)
                if top == 0 {
                    count = DecimalDigits.count(magnitude, most: 16, limit: 1_000_000_000_000_000)
                } else {
                    DecimalDigits.eight(UInt32(truncatingIfNeeded: top), at: base)
                    count = DecimalDigits.count(magnitude, most: 20, limit: 10_000_000_000_000_000_000)
                }
            }
            var out = destination
            if value < 0 {
                out.storeBytes(of: UInt8(ascii: "-"), as: UInt8.self)
                out += 1
            }
            out.copyMemory(from: base + 24 - count, byteCount: 20)
            return out + count - destination
        }
    }

    /// Writes `value` as MLflow does: Swift's shortest round-trip form for finite values
    /// (the same text as `description`; `ShortestDecimal`, the standard library's own code for
    /// subnormals), `"NaN"`, `"Infinity"` and `"-Infinity"` quoted. Answers the byte count;
    /// up to `maxDoubleBytes` bytes at `destination` may be overwritten.
    @inline(__always)
    public static func double(_ value: Double, into destination: UnsafeMutableRawPointer) -> Int {
        if let count = ShortestDecimal.write(value, into: destination) { return count }
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
