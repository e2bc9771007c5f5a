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
        Metric.isNewer((step, timestamp, value), than: (other.step, other.timestamp, other.value))
    }
}

/// What a segment's row and a series' summary keep of some points, found in one pass: the
/// latest point (MLflow's order), the step range, and the value range (NaN left out; nil when
/// every value is NaN). Nil for no points.
struct PointFigures {
    var latest: MetricPoint
    var minStep: Int64
    var maxStep: Int64
    var minValue: Double?
    var maxValue: Double?

    init?<Points: Collection<MetricPoint>>(_ points: Points) {
        guard let first = points.first else { return nil }
        latest = first
        minStep = first.step
        maxStep = first.step
        for point in points {
            if point.isNewer(than: latest) { latest = point }
            minStep = min(minStep, point.step)
            maxStep = max(maxStep, point.step)
            if !point.value.isNaN {
                minValue = min(minValue ?? point.value, point.value)
                maxValue = max(maxValue ?? point.value, point.value)
            }
        }
    }
}

/// Encodes the points of one segment compactly and bit-exactly for every double (NaN payloads,
/// ±infinity, -0.0 and subnormals included). Every version starts
/// `version(1) crc32c(4, little-endian)`; the CRC-32C covers every byte after itself and is
/// checked on every read: a damaged segment is refused, never decoded into wrong numbers.
///
/// **Version 3** (every segment written since; older segments stay as they are and are read
/// as before) is a bit-level, Gorilla-style layout with the segment's summary up front:
///
///     count(varint) flags(1)
///     first point: step(zigzag varint) timestamp(zigzag varint) value(8, little-endian)
///     when count > 1:
///       stepReference(zigzag varint) stepWidth(1)  timestampReference(zigzag varint) timestampWidth(1)
///       valueFloor(1) [when flags & 4: valueReference(zigzag varint) valueWidth(1)]
///       when flags & 1 (the summary; the points are in step order):
///         last point: step - first step (varint) timestamp - first timestamp (zigzag varint) value(trimmed)
///         when flags & 2 (some value is not NaN): minimum, then maximum:
///           position(varint), and unless it is the first or the last point:
///           step - first step (varint) timestamp - first timestamp (zigzag varint) value(trimmed)
///       bits, most significant first, for the points after the first:
///         step delta - stepReference, zigzag, in `width & 0x7F` bits, or when `width & 0x80`:
///           a 0 bit and those bits, or a 1 bit and all 64;
///         timestamp delta the same way;
///         value, when flags & 4: (bits - previous bits) >> valueFloor, as a delta the same
///           way; else its XOR with the previous value: `0` when equal; `10` + the bits
///           between the current leading-zero window and `valueFloor` (the lowest bit any
///           value changes in); `11` + 6 bits of new leading zeros + the bits from there
///           down to the floor. The encoder picks whichever is smaller for the segment;
///       zero bits up to the byte boundary.
///
/// A delta's reference is the segment's median delta and its width the one that makes the
/// segment smallest. A "trimmed" value is the XOR with the first value as version 2 stores
/// values. The minimum and maximum are the first point, in order, holding the smallest and largest non-NaN value
/// (what the samplers keep), so a read whose bucket holds a whole segment needs only this
/// header. Steps and timestamps wrap around as 64-bit integers, so any values round-trip.
///
/// **Version 2**: `count(varint) { stepDelta(zigzag varint) tsDelta(zigzag varint) value }*`
/// where `value` is `0x00` when equal to the previous bits, else a header byte
/// `1 + leadingZeroBytes * 8 + trailingZeroBytes` followed by the remaining bytes, big-endian.
/// Still read; no longer written.
///
/// Version 1 (before migration 0006) had no checksum: `version(1) count …`; migration 0006
/// rewrites every stored segment as version 2 (`addingChecksum`), and version 1 is refused.
public enum MetricSegmentCodec {
    static let version: UInt8 = 3
    /// The most points the store puts in one segment. When steps, timestamps and values all
    /// follow their segment's reference exactly (a step counter logged every millisecond with a
    /// linear value), a version-3 point costs no bits at all, so a segment's size alone would
    /// never end it: the store ends it at this count (`SQLStore.segmentChunks`,
    /// `appendedToLastSegment`), and the decoder takes up to this many points from any segment.
    public static let maxSegmentPoints = 1024
    static let version2: UInt8 = 2
    static let headerSize = 5

    /// The segment's points in the current version (3).
    public static func encode(_ points: [MetricPoint]) -> [UInt8] {
        guard !points.isEmpty else { return encodeVersion2(points) }
        var out: [UInt8] = []
        out.reserveCapacity(headerSize + 48 + points.count * 5)
        out.append(version)
        out.append(contentsOf: [0, 0, 0, 0])
        appendVarint(UInt64(points.count), to: &out)
        let first = points[0]
        let inOrder = !zip(points, points.dropFirst()).contains { MetricSampler.ordered($1, $0) }
        var minPosition: Int?
        var maxPosition: Int?
        for (position, point) in points.enumerated() where !point.value.isNaN {
            if minPosition == nil || point.value < points[minPosition!].value { minPosition = position }
            if maxPosition == nil || point.value > points[maxPosition!].value { maxPosition = position }
        }
        let bits = points.map(\.value.bitPattern)
        // The lowest bit any value changes in (the same for XOR and difference).
        var floor = 64
        for (a, b) in zip(bits, bits.dropFirst()) where a != b {
            floor = min(floor, (a ^ b).trailingZeroBitCount)
        }
        if floor == 64 { floor = 0 }
        // Values as differences in a fixed width when that is smaller than XOR windows
        // (noisy values whose bits all change: their differences stay small).
        let differences = points.count > 1
            ? DeltaWidth.fitting(zip(bits, bits.dropFirst()).map { Int64(bitPattern: $1 &- $0) >> Int64(floor) }) : nil
        let useDifferences = differences.map { $0.cost < xorCost(bits, floor: floor) } ?? false
        out.append((inOrder ? 1 : 0) | (minPosition != nil ? 2 : 0) | (useDifferences ? 4 : 0))
        appendVarint(zigzag(first.step), to: &out)
        appendVarint(zigzag(first.timestamp), to: &out)
        appendLittleEndian(first.value.bitPattern, to: &out)
        if points.count > 1 {
            let steps = DeltaWidth.fitting(zip(points, points.dropFirst()).map { $1.step &- $0.step })
            let timestamps = DeltaWidth.fitting(zip(points, points.dropFirst()).map { $1.timestamp &- $0.timestamp })
            steps.appendHeader(to: &out)
            timestamps.appendHeader(to: &out)
            out.append(UInt8(floor))
            if useDifferences { differences!.appendHeader(to: &out) }
            if inOrder {
                let last = points.count - 1
                appendOffset(points[last], from: first, to: &out)
                if let minPosition, let maxPosition {
                    for position in [minPosition, maxPosition] {
                        appendVarint(UInt64(position), to: &out)
                        if position != 0 && position != last { appendOffset(points[position], from: first, to: &out) }
                    }
                }
            }
            var writer = BitWriter(out)
            var window = XORWindow()
            for (a, b) in zip(points, points.dropFirst()) {
                steps.write(b.step &- a.step, to: &writer)
                timestamps.write(b.timestamp &- a.timestamp, to: &writer)
                if useDifferences {
                    differences!.write(Int64(bitPattern: b.value.bitPattern &- a.value.bitPattern) >> Int64(floor), to: &writer)
                } else {
                    window.write(a.value.bitPattern ^ b.value.bitPattern, floor: floor, to: &writer)
                }
            }
            out = writer.finish()
        }
        sealChecksum(&out)
        return out
    }

    /// The bits XOR windows take for `bits` after the first.
    static func xorCost(_ bits: [UInt64], floor: Int) -> Int {
        var window = XORWindow()
        var counter = BitCounter()
        for (a, b) in zip(bits, bits.dropFirst()) { window.write(a ^ b, floor: floor, to: &counter) }
        return counter.count
    }

    /// A value's XOR with the previous one: `0` when zero; `10` and the bits of the current
    /// leading-zero window down to the floor; `11`, 6 bits of new leading zeros and the bits
    /// from there.
    struct XORWindow {
        var leadingZeros = 0

        @inline(__always)
        mutating func write(_ xor: UInt64, floor: Int, to writer: inout some BitSink) {
            if xor == 0 {
                writer.write(0, 1)
                return
            }
            let leading = xor.leadingZeroBitCount
            // A window that fits is kept unless starting a tighter one (8 bits of control)
            // saves more than that.
            if leading >= leadingZeros && leading - leadingZeros <= 8 {
                writer.write(0b10, 2)
            } else {
                writer.write(0b11, 2)
                writer.write(UInt64(leading), 6)
                leadingZeros = leading
            }
            writer.write(xor >> UInt64(floor), 64 - leadingZeros - floor)
        }
    }

    protocol BitSink {
        mutating func write(_ value: UInt64, _ count: Int)
    }

    /// Counts the bits an encoding would take.
    struct BitCounter: BitSink {
        var count = 0

        mutating func write(_ value: UInt64, _ count: Int) { self.count += count }
    }

    /// A step, timestamp or value delta stored as its difference from a reference (the segment's
    /// median delta), zigzagged, in a fixed number of bits chosen for the segment; with
    /// `escapes`, each value first takes a bit saying whether it needed all 64.
    struct DeltaWidth {
        var reference: Int64
        var width: Int
        var escapes: Bool
        /// The bits the deltas take in this width (0 when read from a header).
        var cost = 0

        /// The reference and width that store `deltas` in the fewest bits.
        static func fitting(_ deltas: [Int64]) -> DeltaWidth {
            let reference = deltas.sorted()[deltas.count / 2]
            var widths = [Int](repeating: 0, count: 65)
            for delta in deltas {
                let z = zigzag(delta &- reference)
                widths[64 - z.leadingZeroBitCount] += 1
            }
            let widest = widths.lastIndex { $0 > 0 } ?? 0
            var best = (cost: deltas.count * widest, width: widest, escapes: false)
            var fitting = 0
            for width in 0..<widest {
                fitting += widths[width]
                let cost = deltas.count * (1 + width) + (deltas.count - fitting) * 64
                if cost < best.cost { best = (cost, width, true) }
            }
            return DeltaWidth(reference: reference, width: best.width, escapes: best.escapes, cost: best.cost)
        }

        func appendHeader(to out: inout [UInt8]) {
            appendVarint(zigzag(reference), to: &out)
            out.append(UInt8(width) | (escapes ? 0x80 : 0))
        }

        @inline(__always)
        func write(_ delta: Int64, to writer: inout some BitSink) {
            let z = zigzag(delta &- reference)
            if escapes {
                if 64 - z.leadingZeroBitCount > width {
                    writer.write(1, 1)
                    writer.write(z, 64)
                    return
                }
                writer.write(0, 1)
            }
            writer.write(z, width)
        }

        @inline(__always)
        func read(_ reader: inout BitReader) -> Int64 {
            let z = escapes && reader.read(1) == 1 ? reader.read(64) : reader.read(width)
            return unzigzag(z) &+ reference
        }
    }

    /// Bits written most significant first into bytes.
    struct BitWriter: BitSink {
        var bytes: [UInt8]
        var pending: UInt64 = 0
        var pendingBits = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        /// Writes the low `count` bits of `value` (0…64).
        @inline(__always)
        mutating func write(_ value: UInt64, _ count: Int) {
            if count > 32 {
                write(value >> 32, count - 32)
                write(value & 0xFFFF_FFFF, 32)
                return
            }
            guard count > 0 else { return }
            pending = (pending << UInt64(count)) | (value & ((1 << UInt64(count)) - 1))
            pendingBits += count
            while pendingBits >= 8 {
                pendingBits -= 8
                bytes.append(UInt8(truncatingIfNeeded: pending >> UInt64(pendingBits)))
            }
        }

        mutating func finish() -> [UInt8] {
            if pendingBits > 0 { bytes.append(UInt8(truncatingIfNeeded: pending << UInt64(8 - pendingBits))) }
            pendingBits = 0
            return bytes
        }
    }

    /// Reads bits most significant first from memory padded with at least `BitReader.padding`
    /// zero bytes past the data, so reads never check bounds one by one.
    struct BitReader {
        static let padding = 40
        let base: UnsafeRawPointer
        var position = 0

        /// The `width` bits (0…56) of `word` that start `offset` bits from its top
        /// (`offset + width` ≤ 64), without branches: a zero width gives 0.
        @inline(__always)
        static func field(_ word: UInt64, at offset: Int, width: Int) -> UInt64 {
            ((word &<< UInt64(offset)) &>> 1) &>> UInt64(63 &- width)
        }

        /// The next `count` bits (0…64).
        @inline(__always)
        mutating func read(_ count: Int) -> UInt64 {
            guard count > 0 else { return 0 }
            let byte = position >> 3
            let shift = position & 7
            var word = UInt64(bigEndian: base.loadUnaligned(fromByteOffset: byte, as: UInt64.self)) << UInt64(shift)
            if count + shift > 64 {
                word |= UInt64(base.load(fromByteOffset: byte + 8, as: UInt8.self)) >> UInt64(8 - shift)
            }
            position += count
            return word >> UInt64(64 - count)
        }
    }

    /// What a sampler needs of a segment without decoding it: its size, its first and last
    /// points and the first points holding its smallest and largest non-NaN values (nil when
    /// every value is NaN), with their positions. Only for segments whose points are in step
    /// order.
    public struct Summary: Sendable, Equatable {
        public var count: Int
        public var first: MetricPoint
        public var last: MetricPoint
        public var minimum: (position: Int, point: MetricPoint)?
        public var maximum: (position: Int, point: MetricPoint)?

        public static func == (a: Summary, b: Summary) -> Bool {
            a.count == b.count && a.first == b.first && a.last == b.last
                && a.minimum?.position == b.minimum?.position && a.minimum?.point == b.minimum?.point
                && a.maximum?.position == b.maximum?.position && a.maximum?.point == b.maximum?.point
        }
    }

    /// The summary in a version-3 segment's header, after checking its checksum; nil for a
    /// segment without one (version 2, or points not in step order).
    public static func summary(_ bytes: UnsafeRawBufferPointer) throws(CorruptSegment) -> Summary? {
        try checkHeader(bytes)
        guard bytes[0] == version else { return nil }
        var index = headerSize
        let header = try Version3Header(bytes, &index)
        return header.summary
    }

    /// The fixed part of a version-3 segment, read up to its bits.
    struct Version3Header {
        var count: Int
        var first: MetricPoint
        var steps = DeltaWidth(reference: 0, width: 0, escapes: false)
        var timestamps = DeltaWidth(reference: 0, width: 0, escapes: false)
        var floor = 0
        /// The values' differences, when stored as such (flags & 4), else nil: XOR windows.
        var differences: DeltaWidth?
        var summary: Summary?

        init(_ bytes: UnsafeRawBufferPointer, _ index: inout Int) throws(CorruptSegment) {
            let stored = try readVarint(bytes, &index)
            guard stored >= 1, index < bytes.count else { throw CorruptSegment(description: "bad point count") }
            let flags = bytes[index]
            index += 1
            guard flags & ~7 == 0 else { throw CorruptSegment(description: "bad segment flags") }
            let step = unzigzag(try readVarint(bytes, &index))
            let timestamp = unzigzag(try readVarint(bytes, &index))
            first = MetricPoint(step: step, timestamp: timestamp, value: Double(bitPattern: try readLittleEndian(bytes, &index)))
            // A segment of the store holds at most `maxSegmentPoints` points, and a larger one
            // (encoded outside the store) takes at least one bit per point after the first.
            guard stored <= UInt64(maxSegmentPoints) || stored - 1 <= UInt64(bytes.count - index) * 8 else {
                throw CorruptSegment(description: "point count exceeds segment size")
            }
            count = Int(stored)
            if count == 1 {
                guard flags & 2 == (first.value.isNaN ? 0 : 2) else { throw CorruptSegment(description: "bad segment flags") }
                let extreme = first.value.isNaN ? nil : (position: 0, point: first)
                summary = flags & 1 == 0 ? nil : Summary(count: 1, first: first, last: first, minimum: extreme, maximum: extreme)
                return
            }
            steps = try Self.deltaWidth(bytes, &index)
            timestamps = try Self.deltaWidth(bytes, &index)
            guard index < bytes.count, bytes[index] < 64 else { throw CorruptSegment(description: "bad value floor") }
            floor = Int(bytes[index])
            index += 1
            if flags & 4 != 0 { differences = try Self.deltaWidth(bytes, &index) }
            guard flags & 1 != 0 else { return }
            let last = try Self.offsetPoint(bytes, &index, from: first)
            // The minimum, then the maximum (two locals, not an array: this runs for every segment a chart reads).
            var minimum: (position: Int, point: MetricPoint)?
            var maximum: (position: Int, point: MetricPoint)?
            if flags & 2 != 0 {
                minimum = try Self.extreme(bytes, &index, stored: stored, first: first, last: last)
                maximum = try Self.extreme(bytes, &index, stored: stored, first: first, last: last)
            }
            summary = Summary(count: count, first: first, last: last, minimum: minimum, maximum: maximum)
        }

        private static func extreme(_ bytes: UnsafeRawBufferPointer, _ index: inout Int, stored: UInt64, first: MetricPoint,
                                    last: MetricPoint) throws(CorruptSegment) -> (position: Int, point: MetricPoint) {
            let position = try readVarint(bytes, &index)
            guard position < stored else { throw CorruptSegment(description: "bad extreme position") }
            let point = position == 0 ? first : position == stored - 1 ? last : try offsetPoint(bytes, &index, from: first)
            return (Int(position), point)
        }

        private static func deltaWidth(_ bytes: UnsafeRawBufferPointer, _ index: inout Int) throws(CorruptSegment) -> DeltaWidth {
            let reference = unzigzag(try readVarint(bytes, &index))
            guard index < bytes.count else { throw CorruptSegment(description: "truncated header") }
            let mode = bytes[index]
            index += 1
            guard mode & 0x7F <= 64 else { throw CorruptSegment(description: "bad delta width") }
            return DeltaWidth(reference: reference, width: Int(mode & 0x7F), escapes: mode & 0x80 != 0)
        }

        private static func offsetPoint(_ bytes: UnsafeRawBufferPointer, _ index: inout Int, from first: MetricPoint) throws(CorruptSegment) -> MetricPoint {
            let step = first.step &+ Int64(bitPattern: try readVarint(bytes, &index))
            let timestamp = first.timestamp &+ unzigzag(try readVarint(bytes, &index))
            let xor = try readTrimmed(bytes, &index)
            return MetricPoint(step: step, timestamp: timestamp, value: Double(bitPattern: first.value.bitPattern ^ xor))
        }
    }

    static func appendOffset(_ point: MetricPoint, from first: MetricPoint, to out: inout [UInt8]) {
        appendVarint(UInt64(bitPattern: point.step &- first.step), to: &out)
        appendVarint(zigzag(point.timestamp &- first.timestamp), to: &out)
        appendTrimmed(point.value.bitPattern ^ first.value.bitPattern, to: &out)
    }

    static func appendLittleEndian(_ value: UInt64, to out: inout [UInt8]) {
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: value >> UInt64(8 * i))) }
    }

    static func readLittleEndian(_ bytes: UnsafeRawBufferPointer, _ index: inout Int) throws(CorruptSegment) -> UInt64 {
        guard index + 8 <= bytes.count else { throw CorruptSegment(description: "truncated value") }
        defer { index += 8 }
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
    }

    /// A 64-bit XOR without its zero bytes at both ends: `0x00` for zero, else a header byte
    /// `1 + leadingZeroBytes * 8 + trailingZeroBytes` and the remaining bytes, big-endian.
    static func appendTrimmed(_ xor: UInt64, to out: inout [UInt8]) {
        if xor == 0 {
            out.append(0)
            return
        }
        let leading = xor.leadingZeroBitCount / 8
        let trailing = xor.trailingZeroBitCount / 8
        out.append(UInt8(1 + leading * 8 + trailing))
        var shift = (7 - leading) * 8
        while shift >= trailing * 8 {
            out.append(UInt8(truncatingIfNeeded: xor >> UInt64(shift)))
            shift -= 8
        }
    }

    @inline(__always)
    static func readTrimmed(_ bytes: UnsafeRawBufferPointer, _ index: inout Int) throws(CorruptSegment) -> UInt64 {
        let end = bytes.count
        guard index < end else { throw CorruptSegment(description: "truncated value") }
        let header = Int(bytes[index])
        index += 1
        guard header != 0 else { return 0 }
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
        index += width
        return xor << UInt64(trailing * 8)
    }

    /// The points in version 2, as written before version 3: for tests and for rewriting
    /// version-1 segments.
    static func encodeVersion2(_ points: [MetricPoint]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(headerSize + 1 + points.count * 10)
        out.append(version2)
        out.append(contentsOf: [0, 0, 0, 0])
        appendVarint(UInt64(points.count), to: &out)
        var previousStep: Int64 = 0
        var previousTimestamp: Int64 = 0
        var previousBits: UInt64 = 0
        for point in points {
            appendVarint(zigzag(point.step &- previousStep), to: &out)
            appendVarint(zigzag(point.timestamp &- previousTimestamp), to: &out)
            appendTrimmed(point.value.bitPattern ^ previousBits, to: &out)
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
        var out: [UInt8] = [version2, 0, 0, 0, 0]
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

    /// Appends the segment's points to `points`, straight from the stored bytes.
    /// The points are decoded into scratch memory and appended in one go, so the hot loop does
    /// no per-point array bookkeeping.
    public static func decode(_ bytes: UnsafeRawBufferPointer, into points: inout [MetricPoint]) throws(CorruptSegment) {
        var scratch = UnsafeMutableBufferPointer<MetricPoint>.allocate(capacity: 256)
        defer { scratch.deallocate() }
        let count = try decode(bytes, into: &scratch)
        // Grow geometrically: reserving exactly count more per segment would copy the whole
        // array once per segment (quadratic in a long series).
        if points.capacity < points.count + count {
            points.reserveCapacity(max(points.count + count, points.capacity * 2))
        }
        points.append(contentsOf: UnsafeBufferPointer(rebasing: scratch[..<count]))
    }

    /// Decodes the segment into `scratch`, reallocating it when too small, and answers the
    /// point count: for reads that go through a series one segment at a time.
    /// `checked`: the checksum was already checked (by `summary`), so it is not computed again.
    public static func decode(_ bytes: UnsafeRawBufferPointer, into scratch: inout UnsafeMutableBufferPointer<MetricPoint>,
                              checked: Bool = false) throws(CorruptSegment) -> Int {
        if !checked { try checkHeader(bytes) }
        var index = headerSize
        if bytes[0] == version2 {
            let count = try version2PointCount(bytes, &index)
            reserve(&scratch, count)
            try decodeVersion2Points(bytes, from: &index, count: count, into: scratch.baseAddress!)
            return count
        }
        let header = try Version3Header(bytes, &index)
        reserve(&scratch, header.count)
        try decodeVersion3Points(bytes, from: index, header, into: scratch.baseAddress!)
        return header.count
    }

    private static func reserve(_ scratch: inout UnsafeMutableBufferPointer<MetricPoint>, _ count: Int) {
        if scratch.count < count {
            scratch.deallocate()
            scratch = .allocate(capacity: max(count, scratch.count * 2))
        }
    }

    /// Checks the version byte and the checksum.
    private static func checkHeader(_ bytes: UnsafeRawBufferPointer) throws(CorruptSegment) {
        guard bytes.count > headerSize, bytes[0] == version || bytes[0] == version2 else {
            throw CorruptSegment(description: bytes.isEmpty ? "empty segment" : "unknown segment version \(bytes[0])")
        }
        let stored = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 1, as: UInt32.self))
        let actual = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[headerSize...]))
        guard stored == actual else {
            throw CorruptSegment(description: "checksum mismatch: stored crc32c \(hex(stored)), computed \(hex(actual))")
        }
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    /// The points after a version-3 header: the bits are copied into zero-padded scratch
    /// memory so the reader never checks bounds per field; the point count bounds the reads.
    private static func decodeVersion3Points(_ bytes: UnsafeRawBufferPointer, from start: Int, _ header: Version3Header,
                                             into out: UnsafeMutablePointer<MetricPoint>) throws(CorruptSegment) {
        out.initialize(to: header.first)
        let count = header.count
        let byteCount = bytes.count - start
        if count == 1 {
            guard byteCount == 0 else { throw CorruptSegment(description: "trailing bytes") }
            return
        }
        let failure = withUnsafeTemporaryAllocation(byteCount: byteCount + BitReader.padding, alignment: 8) { padded -> CorruptSegment? in
            padded.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[start...]))
            padded.baseAddress!.advanced(by: byteCount).initializeMemory(as: UInt8.self, repeating: 0, count: BitReader.padding)
            var reader = BitReader(base: UnsafeRawPointer(padded.baseAddress!))
            let totalBits = byteCount * 8
            let steps = header.steps
            let timestamps = header.timestamps
            let floor = Int64(header.floor)
            let differences = header.differences
            var step = header.first.step
            var timestamp = header.first.timestamp
            var bits = header.first.value.bitPattern
            var window = 0
            if let differences, !steps.escapes, !timestamps.escapes, !differences.escapes,
               steps.width + timestamps.width + differences.width <= 56 {
                // The usual shape of a training curve (every delta within its width, values as
                // differences): a point's three fields lie in one 64-bit load, taken apart
                // without branches. The point count bounds the reads, checked once.
                let stepWidth = steps.width, timestampWidth = timestamps.width, valueWidth = differences.width
                let pointBits = stepWidth + timestampWidth + valueWidth
                guard (count - 1) * pointBits <= totalBits else { return CorruptSegment(description: "truncated points") }
                let base = UnsafeRawPointer(padded.baseAddress!)
                var position = 0
                for n in 1..<count {
                    let word = UInt64(bigEndian: base.loadUnaligned(fromByteOffset: position &>> 3, as: UInt64.self)) &<< UInt64(position & 7)
                    position &+= pointBits
                    step = step &+ (unzigzag(BitReader.field(word, at: 0, width: stepWidth)) &+ steps.reference)
                    timestamp = timestamp &+ (unzigzag(BitReader.field(word, at: stepWidth, width: timestampWidth)) &+ timestamps.reference)
                    let difference = unzigzag(BitReader.field(word, at: stepWidth + timestampWidth, width: valueWidth)) &+ differences.reference
                    bits = bits &+ UInt64(bitPattern: difference &<< floor)
                    (out + n).initialize(to: MetricPoint(step: step, timestamp: timestamp, value: Double(bitPattern: bits)))
                }
                reader.position = position
            } else if !steps.escapes, !timestamps.escapes, !(differences?.escapes ?? false), steps.width + timestamps.width <= 48 {
                // Every delta within its width and values too wide for the path above (noisy
                // doubles, as differences or XOR windows): a point's step and timestamp deltas and
                // its value's control bits (at most 8) lie in one 64-bit load; its value bits, up
                // to 64, in a second load and the byte after it.
                let stepWidth = steps.width, timestampWidth = timestamps.width
                let base = UnsafeRawPointer(padded.baseAddress!)
                /// The `width` bits (1…64) at bit `position`.
                @inline(__always) func wide(_ position: Int, _ width: Int) -> UInt64 {
                    let byte = position &>> 3, shift = UInt64(position & 7)
                    let high = UInt64(bigEndian: base.loadUnaligned(fromByteOffset: byte, as: UInt64.self)) &<< shift
                    let low = UInt64(base.load(fromByteOffset: byte &+ 8, as: UInt8.self)) &>> (8 &- shift)
                    return (high | low) &>> UInt64(64 &- width)
                }
                var position = 0
                for n in 1..<count {
                    // One point reads at most 48 + 8 + 64 bits, well within the padding.
                    guard position <= totalBits else { return CorruptSegment(description: "truncated points") }
                    let word = UInt64(bigEndian: base.loadUnaligned(fromByteOffset: position &>> 3, as: UInt64.self)) &<< UInt64(position & 7)
                    step = step &+ (unzigzag(BitReader.field(word, at: 0, width: stepWidth)) &+ steps.reference)
                    timestamp = timestamp &+ (unzigzag(BitReader.field(word, at: stepWidth, width: timestampWidth)) &+ timestamps.reference)
                    var at = stepWidth &+ timestampWidth
                    if let differences {
                        position &+= at
                        let z = differences.width == 0 ? 0 : wide(position, differences.width)
                        bits = bits &+ UInt64(bitPattern: (unzigzag(z) &+ differences.reference) &<< floor)
                        position &+= differences.width
                    } else if (word &<< UInt64(at)) &>> 63 == 1 {
                        if (word &<< UInt64(at &+ 1)) &>> 63 == 1 {
                            window = Int((word &<< UInt64(at &+ 2)) &>> 58)
                            at &+= 8
                        } else {
                            at &+= 2
                        }
                        let width = 64 - window - Int(floor)
                        guard width > 0 else { return CorruptSegment(description: "bad value window") }
                        position &+= at
                        bits ^= wide(position, width) &<< UInt64(floor)
                        position &+= width
                    } else {
                        position &+= at &+ 1
                    }
                    (out + n).initialize(to: MetricPoint(step: step, timestamp: timestamp, value: Double(bitPattern: bits)))
                }
                reader.position = position
            } else {
                for n in 1..<count {
                    // One point reads at most 202 bits, well within the padding.
                    guard reader.position <= totalBits else { return CorruptSegment(description: "truncated points") }
                    step = step &+ steps.read(&reader)
                    timestamp = timestamp &+ timestamps.read(&reader)
                    if let differences {
                        bits = bits &+ UInt64(bitPattern: differences.read(&reader) << floor)
                    } else if reader.read(1) == 1 {
                        if reader.read(1) == 1 {
                            window = Int(reader.read(6))
                        }
                        let width = 64 - window - Int(floor)
                        guard width > 0 else { return CorruptSegment(description: "bad value window") }
                        bits ^= reader.read(width) << UInt64(floor)
                    }
                    (out + n).initialize(to: MetricPoint(step: step, timestamp: timestamp, value: Double(bitPattern: bits)))
                }
            }
            // Only the zero bits up to the byte boundary may follow.
            guard reader.position <= totalBits, totalBits - reader.position < 8,
                  reader.read(totalBits - reader.position) == 0 else { return CorruptSegment(description: "trailing bytes") }
            return nil
        }
        if let failure { throw failure }
    }

    private static func version2PointCount(_ bytes: UnsafeRawBufferPointer, _ index: inout Int) throws(CorruptSegment) -> Int {
        let stored = try readVarint(bytes, &index)
        // Each point takes at least three bytes (two varints and a value header).
        guard stored <= UInt64(bytes.count / 3) else { throw CorruptSegment(description: "point count exceeds segment size") }
        return Int(stored)
    }

    @inline(__always)
    private static func decodeVersion2Points(_ bytes: UnsafeRawBufferPointer, from start: inout Int, count: Int,
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
            bits ^= try readTrimmed(bytes, &index)
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
