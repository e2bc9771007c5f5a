/// Decimal digits written eight at a time: two divisions split a number below 10^8 into four
/// pairs, each copied from a table of "00" … "99" (a `StaticString`: no lazy global to check).
enum DecimalDigits {
    /// "00" … "99", one pair at each even offset.
    static let pairs: StaticString = """
        00010203040506070809101112131415161718192021222324252627282930313233343536373839\
        40414243444546474849505152535455565758596061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899
        """

    /// The two digits of `value` (below 100), as they lie in memory.
    @inline(__always)
    static func pair(_ value: Int) -> UInt16 {
        UnsafeRawPointer(pairs.utf8Start).loadUnaligned(fromByteOffset: value &* 2, as: UInt16.self)
    }

    /// Writes `value` (below 10^8) as eight digits, leading zeros included, at `destination`.
    @inline(__always)
    static func eight(_ value: UInt32, at destination: UnsafeMutableRawPointer) {
        let high = value / 10_000, low = value % 10_000
        destination.storeBytes(of: pair(Int(high / 100)), as: UInt16.self)
        destination.storeBytes(of: pair(Int(high % 100)), toByteOffset: 2, as: UInt16.self)
        destination.storeBytes(of: pair(Int(low / 100)), toByteOffset: 4, as: UInt16.self)
        destination.storeBytes(of: pair(Int(low % 100)), toByteOffset: 6, as: UInt16.self)
    }

    /// How many digits `value` has, knowing it has at most `most` and that `limit` is 10^(most - 1).
    @inline(__always)
    static func count(_ value: UInt64, most: Int, limit: UInt64) -> Int {
        var count = most
        var threshold = limit
        while count > 1, value < threshold {
            count -= 1
            threshold /= 10
        }
        return count
    }
}
