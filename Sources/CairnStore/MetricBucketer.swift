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
        let lo = minX ?? points.first!.x
        let hi = maxX ?? points.last!.x
        guard lo <= hi else { return (0, []) }
        let span = Double(hi) - Double(lo) + 1
        var buckets: [MetricBucket] = []
        var current = -1
        var inRange = 0
        for point in points where point.x >= lo && point.x <= hi {
            inRange += 1
            // Multiply before dividing: exact for integer offsets below 2^53 / count, so a
            // bucket per step really holds one step.
            let index = min(count - 1, Int((Double(point.x) - Double(lo)) * Double(count) / span))
            let v = point.value
            if index != current {
                current = index
                buckets.append(MetricBucket(firstX: point.x, lastX: point.x, min: v, max: v, last: v, count: 1))
                continue
            }
            var b = buckets[buckets.count - 1]
            b.lastX = point.x
            b.last = v
            b.count += 1
            if !v.isNaN {
                if b.min.isNaN || v < b.min { b.min = v }
                if b.max.isNaN || v > b.max { b.max = v }
            }
            buckets[buckets.count - 1] = b
        }
        return (inRange, buckets)
    }
}
