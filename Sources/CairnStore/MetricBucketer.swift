import CairnCore

/// Cuts one series into equal x buckets and keeps each bucket's minimum, maximum and last
/// value: the chart sampler. Deterministic (the same points, range and bucket count always
/// give the same buckets, whatever was asked before), and a spike always survives as some
/// bucket's minimum or maximum.
public enum MetricBucketer {
    /// A point placed on the chart's x-axis.
    public struct Point: Sendable {
        public var x: Int64
        public var timestamp: Int64
        public var value: Double

        public init(x: Int64, timestamp: Int64, value: Double) {
            self.x = x
            self.timestamp = timestamp
            self.value = value
        }
    }

    /// Buckets the points with `minX ... maxX` (defaults: the points' own range) into
    /// `count` equal columns; empty columns are left out. Returns the points in range too.
    public static func bucket(_ input: [Point], minX: Int64?, maxX: Int64?, count: Int) -> (pointCount: Int, buckets: [MetricBucket]) {
        guard count > 0, !input.isEmpty else { return (0, []) }
        var points = input
        points.sort { a, b in
            if a.x != b.x { return a.x < b.x }
            if a.timestamp != b.timestamp { return a.timestamp < b.timestamp }
            return a.value.bitPattern < b.value.bitPattern
        }
        var stream = Stream(lo: minX ?? points.first!.x, hi: maxX ?? points.last!.x, count: count)
        for point in points { stream.add(x: point.x, value: point.value) }
        return stream.finish()
    }

    /// The bucketer fed in x order, one point or one whole segment at a time, for series read
    /// segment by segment on the step axis; the caller knows the range `lo ... hi`.
    public struct Stream {
        let lo: Int64
        let hi: Int64
        let span: Double
        let count: Int
        var buckets: [MetricBucket] = []
        var current = -1
        var inRange = 0

        public init(lo: Int64, hi: Int64, count: Int) {
            self.lo = lo
            self.hi = hi
            self.span = Double(hi) - Double(lo) + 1
            self.count = count
        }

        @inline(__always)
        func bucketIndex(_ x: Int64) -> Int {
            // Multiply before dividing: exact for integer offsets below 2^53 / count, so a
            // bucket per step really holds one step.
            min(count - 1, Int((Double(x) - Double(lo)) * Double(count) / span))
        }

        @inline(__always)
        public mutating func add(x: Int64, value v: Double) {
            guard x >= lo, x <= hi, lo <= hi else { return }
            inRange += 1
            let index = bucketIndex(x)
            if index != current {
                current = index
                buckets.append(MetricBucket(firstX: x, lastX: x, min: v, max: v, last: v, count: 1))
                return
            }
            var b = buckets[buckets.count - 1]
            b.lastX = x
            b.last = v
            b.count += 1
            if !v.isNaN {
                if b.min.isNaN || v < b.min { b.min = v }
                if b.max.isNaN || v > b.max { b.max = v }
            }
            buckets[buckets.count - 1] = b
        }

        /// Whether the segment `summary` describes (x = step) lies wholly in range and in one
        /// bucket, so `add(_:)` can take it whole.
        @inline(__always)
        public func holdsWhole(_ summary: MetricSegmentCodec.Summary) -> Bool {
            lo <= hi && summary.first.step >= lo && summary.last.step <= hi
                && bucketIndex(summary.first.step) == bucketIndex(summary.last.step)
        }

        /// Adds a whole segment from its summary: the same buckets as adding its points one by
        /// one when `holdsWhole(summary)`.
        public mutating func add(_ summary: MetricSegmentCodec.Summary) {
            add(x: summary.first.step, value: summary.first.value)
            guard summary.count > 1 else { return }
            inRange += summary.count - 1
            var b = buckets[buckets.count - 1]
            b.lastX = summary.last.step
            b.last = summary.last.value
            b.count += summary.count - 1
            if let minimum = summary.minimum?.point.value, b.min.isNaN || minimum < b.min { b.min = minimum }
            if let maximum = summary.maximum?.point.value, b.max.isNaN || maximum > b.max { b.max = maximum }
            buckets[buckets.count - 1] = b
        }

        public func finish() -> (pointCount: Int, buckets: [MetricBucket]) {
            (inRange, buckets)
        }
    }
}
