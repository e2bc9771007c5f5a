/// The shortest decimal that reads back as the same `Double`, written in the text Swift's
/// `description` gives (`1.0`, `0.0001`, `1e-05`, `1.7976931348623157e+308`, `-0.0`), without
/// making a `String`, in about half the standard library's instructions (callgrind, a float32
/// training loss: 271 against 573 a value); the value is most of a `get-history` point's cost.
///
/// The digits are Raffaello Giulietti's Schubfach (as in Java's `Double.toString` since JDK 19):
/// the value's rounding interval is scaled by a 126-bit power of ten (`powersOfTen`, made by
/// exact integer arithmetic) rounded to odd, and the one decimal one digit shorter than 17, or
/// else the closer of the two 17-digit ones, is taken from the interval. Subnormal values (whose
/// shortest form may have a single digit, where Java's rule of at least two digits differs from
/// Swift's), NaN and infinities are left to the caller (`write` answers nil).
public enum ShortestDecimal {
    /// The most bytes `write` may write (its text is at most 24 bytes, `-1.2345678901234567e-308`,
    /// but it copies digits in blocks of fixed size).
    public static let maxBytes = 48

    /// Writes `value`'s text at `destination` and answers its byte count, or answers nil
    /// (writing nothing) for a subnormal, NaN or infinite value.
    @inline(__always)
    public static func write(_ value: Double, into destination: UnsafeMutableRawPointer) -> Int? {
        let bits = value.bitPattern
        let biasedExponent = Int(truncatingIfNeeded: (bits >> 52) & 0x7FF)
        let fraction = bits & ((1 << 52) - 1)
        let negative = bits >> 63 != 0
        if biasedExponent == 0 {
            guard fraction == 0 else { return nil }
            return copy(negative ? "-0.0" : "0.0", to: destination)
        }
        guard biasedExponent != 0x7FF else { return nil }
        let c = (1 << 52) | fraction
        let q = biasedExponent - 1075
        var significand: UInt64
        var exponent: Int
        if q < 0, q > -53, (c >> UInt64(-q)) << UInt64(-q) == c {
            significand = c >> UInt64(-q)  // an integer below 2^52: its own digits
            exponent = 0
        } else {
            (significand, exponent) = shortest(q: q, c: c)
        }
        // Trailing zeros go into the exponent.
        while true {
            let tenth = significand / 10
            guard tenth * 10 == significand else { break }
            significand = tenth
            exponent += 1
        }
        return format(negative: negative, significand: significand, exponent: exponent,
                      aboveTwoTo53: bits & ~(1 << 63) > (1076 << 52), into: destination)
    }

    /// Schubfach's decimal of `c · 2^q` (a normal value): `significand · 10^exponent`.
    @inline(__always)
    static func shortest(q: Int, c: UInt64) -> (UInt64, Int) {
        let out: UInt64 = c & 1  // an even significand's interval includes its ends
        let cb = c << 2
        let cbr = cb + 2
        let cbl: UInt64
        let k: Int
        if c != 1 << 52 || q == -1074 {
            cbl = cb - 2
            k = (q &* 661_971_961_083) >> 41  // floor(log10(2^q))
        } else {
            cbl = cb - 1  // a power of two: the interval below is half as wide
            k = (q &* 661_971_961_083 &- 274_743_187_321) >> 41  // floor(log10(3/4 · 2^q))
        }
        let h = UInt64(q + ((-k &* 217_706) >> 16) + 2)  // q + floor(log2(10^-k)) + 2: 1…4
        let (g1, g0) = powersOfTen.withUnsafeBufferPointer { table in
            (table[(k + 324) &* 2], table[(k + 324) &* 2 + 1])
        }
        let vb = roundOdd(g1, g0, cb << h)
        let vbl = roundOdd(g1, g0, cbl << h)
        let vbr = roundOdd(g1, g0, cbr << h)
        let s = vb >> 2
        if s >= 100 {
            // One digit fewer: s' = floor(s / 10), exact for s < 2^63.
            let sp10 = 10 &* s.multipliedFullWidth(by: 115_292_150_460_684_698 << 4).high
            let tp10 = sp10 &+ 10
            let upin = vbl &+ out <= sp10 << 2
            let wpin = (tp10 << 2) &+ out <= vbr
            if upin != wpin { return (upin ? sp10 : tp10, k) }
        }
        let t = s &+ 1
        let uin = vbl &+ out <= s << 2
        let win = (t << 2) &+ out <= vbr
        if uin != win { return (uin ? s : t, k) }
        // Both lie in the interval: the closer one, the even one on a tie.
        let cmp = Int64(bitPattern: vb &- ((s &+ t) << 1))
        return (cmp < 0 || (cmp == 0 && s & 1 == 0) ? s : t, k)
    }

    /// `(g · cp) >> 127` rounded to odd (g = g1 · 2^63 + g0).
    @inline(__always)
    static func roundOdd(_ g1: UInt64, _ g0: UInt64, _ cp: UInt64) -> UInt64 {
        let x1 = g0.multipliedFullWidth(by: cp).high
        let y = g1.multipliedFullWidth(by: cp)
        let z = (y.low >> 1) &+ x1
        let vbp = y.high &+ (z >> 63)
        let mask63: UInt64 = (1 << 63) - 1
        return vbp | (((z & mask63) &+ mask63) >> 63)
    }

    /// Lays out `significand · 10^exponent` (`significand` below 10^17, no trailing zeros) as
    /// `description` does: exponential below 0.0001 and above 2^53, decimal between. Copies
    /// are of fixed sizes (moves, not calls), so up to `maxBytes` bytes may be written.
    @inline(__always)
    static func format(negative: Bool, significand: UInt64, exponent: Int, aboveTwoTo53: Bool,
                       into destination: UnsafeMutableRawPointer) -> Int {
        // The 17 digits (leading zeros included) at offset 8 of 48 bytes of scratch.
        var scratch: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &scratch) { scratch in
            let base = scratch.baseAddress!
            let upper = significand / 100_000_000
            DecimalDigits.eight(UInt32(truncatingIfNeeded: significand &- upper &* 100_000_000), at: base + 17)
            DecimalDigits.eight(UInt32(truncatingIfNeeded: upper % 100_000_000), at: base + 9)
            base.storeBytes(of: UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: upper / 100_000_000), toByteOffset: 8, as: UInt8.self)
            let count = DecimalDigits.count(significand, most: 17, limit: 10_000_000_000_000_000)
            let digits = base + 25 - count
            // value = 0.DIGITS · 10^point
            let point = exponent + count
            var out = destination
            if negative {
                out.storeBytes(of: UInt8(ascii: "-"), as: UInt8.self)
                out += 1
            }
            if point < -3 || aboveTwoTo53 {
                out.storeBytes(of: digits.load(as: UInt8.self), as: UInt8.self)
                out.storeBytes(of: UInt8(ascii: "."), toByteOffset: 1, as: UInt8.self)
                (out + 2).copyMemory(from: digits + 1, byteCount: 16)
                out += count > 1 ? count + 1 : 1
                var power = point - 1
                out.storeBytes(of: UInt8(ascii: "e"), as: UInt8.self)
                out.storeBytes(of: power < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"), toByteOffset: 1, as: UInt8.self)
                out += 2
                power = abs(power)
                if power >= 100 {
                    out.storeBytes(of: UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: power / 100), as: UInt8.self)
                    out += 1
                    power %= 100
                }
                out.storeBytes(of: DecimalDigits.pair(power), as: UInt16.self)
                out += 2
            } else if point <= 0 {
                // "0." and up to three zeros, then the digits.
                out.storeBytes(of: 0x3030_3030_302E_30, as: UInt64.self)  // "0.00000" (little-endian)
                out += 2 - point
                out.copyMemory(from: digits, byteCount: 24)
                out += count
            } else if point < count {
                out.copyMemory(from: digits, byteCount: 16)
                out.storeBytes(of: UInt8(ascii: "."), toByteOffset: point, as: UInt8.self)
                (out + point + 1).copyMemory(from: digits + point, byteCount: 16)
                out += count + 1
            } else {
                // An integer: its digits, the zeros of its exponent, ".0".
                out.copyMemory(from: digits, byteCount: 24)
                out += count
                for _ in 0 ..< point - count {
                    out.storeBytes(of: UInt8(ascii: "0"), as: UInt8.self)
                    out += 1
                }
                out.storeBytes(of: UInt8(ascii: "."), as: UInt8.self)
                out.storeBytes(of: UInt8(ascii: "0"), toByteOffset: 1, as: UInt8.self)
                out += 2
            }
            return out - destination
        }
    }

    private static func copy(_ text: StaticString, to destination: UnsafeMutableRawPointer) -> Int {
        destination.copyMemory(from: text.utf8Start, byteCount: text.utf8CodeUnitCount)
        return text.utf8CodeUnitCount
    }
}
