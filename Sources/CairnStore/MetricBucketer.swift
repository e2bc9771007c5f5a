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
    ///
    /// The bucket being filled is kept apart from the finished ones, with the first x beyond it
    /// (`next`), so a point of the same bucket costs two comparisons and no division or array
    /// write: the compare chart feeds every point of the segments that straddle a bucket edge
    /// through here. `next` is only a cache of `bucketIndex`: the buckets are the same as when
    /// each point's index is computed.
    public struct Stream {
        let lo: Int64
        let hi: Int64
        let span: Double
        let count: Int
        /// Whether `next` can be computed exactly (ranges that fit a double's integers, away from
        /// Int64's ends); otherwise every point's index is computed.
        let boundsCached: Bool
        var buckets: [MetricBucket] = []
        var bucket = MetricBucket(firstX: 0, lastX: 0, min: 0, max: 0, last: 0, count: 0)
        var open = false
        var current = -1
        var next = Int64.min
        var inRange = 0

        public init(lo: Int64, hi: Int64, count: Int) {
            self.lo = lo
            self.hi = hi
            self.span = Double(hi) - Double(lo) + 1
            self.count = count
            self.boundsCached = lo <= hi && span <= 4_503_599_627_370_496 // 2^52
                && lo > Int64.min / 2 && hi < Int64.max / 2
        }

        @inline(__always)
        func bucketIndex(_ x: Int64) -> Int {
            // Multiply before dividing: exact for integer offsets below 2^53 / count, so a
            // bucket per step really holds one step.
            min(count - 1, Int((Double(x) - Double(lo)) * Double(count) / span))
        }

        /// The smallest x whose bucket comes after bucket `index` (Int64.max for the last one):
        /// an estimate, corrected with `bucketIndex` itself, which is monotonic in x.
        func firstX(after index: Int) -> Int64 {
            guard index < count - 1 else { return Int64.max }
            var x = lo + Int64((Double(index + 1) * span / Double(count)).rounded(.up))
            while x > lo, bucketIndex(x - 1) > index { x -= 1 }
            while bucketIndex(x) <= index { x += 1 }
            return x
        }

        @inline(__always)
        public mutating func add(x: Int64, value v: Double) {
            guard x >= lo, x <= hi, lo <= hi else { return }
            inRange += 1
            if open, x < next, x >= bucket.firstX {
                extend(x: x, value: v)
                return
            }
            let index = bucketIndex(x)
            if open, index == current {
                extend(x: x, value: v)
                return
            }
            if open { buckets.append(bucket) }
            open = true
            current = index
            bucket = MetricBucket(firstX: x, lastX: x, min: v, max: v, last: v, count: 1)
            next = boundsCached ? firstX(after: index) : Int64.min
        }

        /// Adds points in step order (x = step): the points of one bucket go through a loop on
        /// local copies of the bucket's fields, the same buckets as adding them one by one.
        public mutating func add(stepOrdered points: UnsafeMutableBufferPointer<MetricPoint>) {
            var i = 0
            let n = points.count
            while i < n {
                // With boundsCached, hi < Int64.max / 2; without it `next` is Int64.min and no run starts.
                let upper = Swift.min(next, hi &+ 1)
                guard open, points[i].step >= bucket.firstX, points[i].step < upper else {
                    add(x: points[i].step, value: points[i].value)
                    i += 1
                    continue
                }
                let firstX = bucket.firstX
                var lastX = bucket.lastX, low = bucket.min, high = bucket.max, last = bucket.last
                let start = i
                while i < n {
                    let x = points[i].step
                    guard x >= firstX, x < upper else { break }
                    let v = points[i].value
                    lastX = x
                    last = v
                    if !v.isNaN {
                        if low.isNaN || v < low { low = v }
                        if high.isNaN || v > high { high = v }
                    }
                    i += 1
                }
                bucket.lastX = lastX
                bucket.last = last
                bucket.min = low
                bucket.max = high
                bucket.count += i - start
                inRange += i - start
            }
        }

        @inline(__always)
        mutating func extend(x: Int64, value v: Double) {
            bucket.lastX = x
            bucket.last = v
            bucket.count += 1
            if !v.isNaN {
                if bucket.min.isNaN || v < bucket.min { bucket.min = v }
                if bucket.max.isNaN || v > bucket.max { bucket.max = v }
            }
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
            bucket.lastX = summary.last.step
            bucket.last = summary.last.value
            bucket.count += summary.count - 1
            if let minimum = summary.minimum?.point.value, bucket.min.isNaN || minimum < bucket.min { bucket.min = minimum }
            if let maximum = summary.maximum?.point.value, bucket.max.isNaN || maximum > bucket.max { bucket.max = maximum }
        }

        public func finish() -> (pointCount: Int, buckets: [MetricBucket]) {
            (inRange, open ? buckets + [bucket] : buckets)
        }
    }
}
