import CairnCore

/// A metric point inside a segment (the key and run live in the segment's row).
public struct MetricPoint: Sendable, Equatable {
    public var step: Int64
    public var timestamp: Int64
    public var value: Double

    public init(step: Int64, timestamp: Int64, value: Double) {
        self.step = step
        self.timestamp = timestamp
        self.value = value
    }

    public static func == (a: MetricPoint, b: MetricPoint) -> Bool {
        a.step == b.step && a.timestamp == b.timestamp && a.value.bitPattern == b.value.bitPattern
    }

    /// MLflow's latest-value order (see `Metric.isNewer(than:)`).
    func isNewer(than other: MetricPoint) -> Bool {
        Metric(key: "", value: value, timestamp: timestamp, step: step)
            .isNewer(than: Metric(key: "", value: other.value, timestamp: other.timestamp, step: other.step))
    }
}

/// Encodes the points of one segment compactly: steps and timestamps as zig-zag varint deltas,
/// values XOR-ed with the previous value's bits with their zero bytes at both ends dropped
/// (a Gorilla-style scheme on byte boundaries). Bit-exact for every double, NaN payloads and
/// ±infinity included.
///
/// Layout: `version(1) crc32c(4, little-endian) count(varint) { stepDelta(zigzag varint)
/// tsDelta(zigzag varint) value }*` where `value` is `0x00` when equal to the previous bits,
/// else a header byte `1 + leadingZeroBytes * 8 + trailingZeroBytes` followed by the remaining
/// bytes, big-endian. The CRC-32C covers every byte after itself and is checked on every
/// decode: a damaged segment is refused, never decoded into wrong numbers.
///
/// Version 1 (before migration 0006) had no checksum: `version(1) count …`; migration 0006
/// rewrites every stored segment as version 2 (`addingChecksum`), and version 1 is refused.
public enum MetricSegmentCodec {
    static let version: UInt8 = 2
    static let headerSize = 5

    public static func encode(_ points: [MetricPoint]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(headerSize + 1 + points.count * 10)
        out.append(version)
        out.append(contentsOf: [0, 0, 0, 0])
        appendVarint(UInt64(points.count), to: &out)
        var previousStep: Int64 = 0
        var previousTimestamp: Int64 = 0
        var previousBits: UInt64 = 0
        for point in points {
            appendVarint(zigzag(point.step &- previousStep), to: &out)
            appendVarint(zigzag(point.timestamp &- previousTimestamp), to: &out)
            let xor = point.value.bitPattern ^ previousBits
            if xor == 0 {
                out.append(0)
            } else {
                let leading = xor.leadingZeroBitCount / 8
                let trailing = xor.trailingZeroBitCount / 8
                out.append(UInt8(1 + leading * 8 + trailing))
                var shift = (7 - leading) * 8
                while shift >= trailing * 8 {
                    out.append(UInt8(truncatingIfNeeded: xor >> UInt64(shift)))
                    shift -= 8
                }
            }
            previousStep = point.step
            previousTimestamp = point.timestamp
            previousBits = point.value.bitPattern
        }
        sealChecksum(&out)
        return out
    }

    /// Writes the CRC-32C of everything after the header into bytes 1…4.
    private static func sealChecksum(_ out: inout [UInt8]) {
        let crc = out.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[headerSize...])) }
        for i in 0..<4 { out[1 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
    }

    /// A version-1 segment (no checksum) rewritten as version 2 with the same points; nil when
    /// `bytes` is not a version-1 segment that decodes cleanly (already version 2, or damaged).
    public static func addingChecksum(toVersion1 bytes: [UInt8]) -> [UInt8]? {
        guard bytes.first == 1 else { return nil }
        var out: [UInt8] = [version, 0, 0, 0, 0]
        out.append(contentsOf: bytes.dropFirst())
        sealChecksum(&out)
        guard (try? decode(out)) != nil else { return nil }
        return out
    }

    public struct CorruptSegment: Error, CustomStringConvertible {
        public let description: String
    }

    public static func decode(_ bytes: [UInt8]) throws(CorruptSegment) -> [MetricPoint] {
        var points: [MetricPoint] = []
        let failure = bytes.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) -> CorruptSegment? in
            do throws(CorruptSegment) {
                try decode(buffer, into: &points)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
        return points
    }

    /// Appends the segment's points to `points`, straight from the stored bytes (no copy).
    /// The points are decoded into scratch memory and appended in one go, so the hot loop does
    /// no per-point array bookkeeping.
    public static func decode(_ bytes: UnsafeRawBufferPointer, into points: inout [MetricPoint]) throws(CorruptSegment) {
        var index = 0
        let count = try pointCount(bytes, &index)
        // Grow geometrically: reserving exactly count more per segment would copy the whole
        // array once per segment (quadratic in a long series).
        if points.capacity < points.count + count {
            points.reserveCapacity(max(points.count + count, points.capacity * 2))
        }
        let failure = withUnsafeTemporaryAllocation(of: MetricPoint.self, capacity: count) { scratch -> CorruptSegment? in
            do throws(CorruptSegment) {
                try decodePoints(bytes, from: &index, count: count, into: scratch.baseAddress!)
            } catch {
                return error
            }
            points.append(contentsOf: UnsafeBufferPointer(scratch))
            return nil
        }
        if let failure { throw failure }
    }

    /// Decodes the segment into `scratch`, reallocating it when too small, and answers the
    /// point count: for reads that go through a series one segment at a time.
    public static func decode(_ bytes: UnsafeRawBufferPointer, into scratch: inout UnsafeMutableBufferPointer<MetricPoint>) throws(CorruptSegment) -> Int {
        var index = 0
        let count = try pointCount(bytes, &index)
        if scratch.count < count {
            scratch.deallocate()
            scratch = .allocate(capacity: max(count, scratch.count * 2))
        }
        try decodePoints(bytes, from: &index, count: count, into: scratch.baseAddress!)
        return count
    }

    /// Checks the version byte and the checksum and reads the point count; `index` is left at
    /// the first point.
    private static func pointCount(_ bytes: UnsafeRawBufferPointer, _ index: inout Int) throws(CorruptSegment) -> Int {
        guard bytes.count > headerSize, bytes[0] == version else {
            throw CorruptSegment(description: bytes.isEmpty ? "empty segment" : "unknown segment version \(bytes[0])")
        }
        let stored = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 1, as: UInt32.self))
        let actual = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[headerSize...]))
        guard stored == actual else {
            throw CorruptSegment(description: "checksum mismatch: stored crc32c \(hex(stored)), computed \(hex(actual))")
        }
        index = headerSize
        return try pointCount(afterHeader: bytes, &index)
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    private static func pointCount(afterHeader bytes: UnsafeRawBufferPointer, _ index: inout Int) throws(CorruptSegment) -> Int {
        let stored = try readVarint(bytes, &index)
        // Each point takes at least three bytes (two varints and a value header).
        guard stored <= UInt64(bytes.count / 3) else { throw CorruptSegment(description: "point count exceeds segment size") }
        return Int(stored)
    }

    @inline(__always)
    private static func decodePoints(_ bytes: UnsafeRawBufferPointer, from start: inout Int, count: Int,
                                     into out: UnsafeMutablePointer<MetricPoint>) throws(CorruptSegment) {
        var index = start
        var step: Int64 = 0
        var timestamp: Int64 = 0
        var bits: UInt64 = 0
        let end = bytes.count
        for n in 0..<count {
            // Most deltas fit in one byte: read those without the general varint loop.
            if index < end, bytes[index] < 0x80 {
                step = step &+ unzigzag(UInt64(bytes[index]))
                index += 1
            } else {
                step = step &+ unzigzag(try readVarint(bytes, &index))
            }
            if index < end, bytes[index] < 0x80 {
                timestamp = timestamp &+ unzigzag(UInt64(bytes[index]))
                index += 1
            } else {
                timestamp = timestamp &+ unzigzag(try readVarint(bytes, &index))
            }
            guard index < end else { throw CorruptSegment(description: "truncated value") }
            let header = Int(bytes[index])
            index += 1
            if header != 0 {
                guard header <= 64 else { throw CorruptSegment(description: "bad value header") }
                let leading = (header - 1) / 8
                let trailing = (header - 1) % 8
                let width = 8 - leading - trailing
                guard width > 0, index + width <= end else { throw CorruptSegment(description: "truncated value") }
                var xor: UInt64
                if index + 8 <= end {
                    // One unaligned 8-byte load; keep the `width` big-endian bytes at its start.
                    xor = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)) >> UInt64((8 - width) * 8)
                } else {
                    xor = 0
                    for offset in index..<(index + width) {
                        xor = (xor << 8) | UInt64(bytes[offset])
                    }
                }
                xor <<= UInt64(trailing * 8)
                index += width
                bits ^= xor
            }
            (out + n).initialize(to: MetricPoint(step: step, timestamp: timestamp, value: Double(bitPattern: bits)))
        }
        guard index == end else { throw CorruptSegment(description: "trailing bytes") }
        start = index
    }

    @inline(__always)
    static func zigzag(_ v: Int64) -> UInt64 {
        UInt64(bitPattern: (v << 1) ^ (v >> 63))
    }

    @inline(__always)
    static func unzigzag(_ v: UInt64) -> Int64 {
        Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1)
    }

    @inline(__always)
    static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    @inline(__always)
    static func readVarint(_ bytes: UnsafeRawBufferPointer, _ index: inout Int) throws(CorruptSegment) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if shift == 63 && byte > 1 { throw CorruptSegment(description: "varint overflow") }
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
            if shift > 63 { throw CorruptSegment(description: "varint overflow") }
        }
        throw CorruptSegment(description: "truncated varint")
    }
}
