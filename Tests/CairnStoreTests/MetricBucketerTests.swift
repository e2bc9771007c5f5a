import CairnCore
import Testing
@testable import CairnStore

@Suite("Metric bucketer")
struct MetricBucketerTests {
    static func series(_ values: [Double]) -> [MetricBucketer.Point] {
        values.enumerated().map { MetricBucketer.Point(x: Int64($0.offset), timestamp: 1000 + Int64($0.offset), value: $0.element) }
    }

    @Test("A single spike among a million points survives as its bucket's maximum")
    func spikeSurvives() {
        var values = [Double](repeating: 1, count: 1_000_000)
        values[777_777] = 500
        let (count, buckets) = MetricBucketer.bucket(Self.series(values), minX: nil, maxX: nil, count: 300)
        #expect(count == 1_000_000)
        #expect(buckets.count == 300)
        #expect(buckets.map(\.max).max() == 500)
        #expect(buckets.reduce(0) { $0 + $1.count } == 1_000_000)
        let spike = buckets.first { $0.max == 500 }!
        #expect(spike.firstX <= 777_777 && spike.lastX >= 777_777)
    }

    @Test("Each bucket keeps its minimum, maximum and last value, in x order")
    func minMaxLast() {
        let (_, buckets) = MetricBucketer.bucket(Self.series([5, 1, 9, 3, 2, 8, 4, 7]), minX: nil, maxX: nil, count: 2)
        #expect(buckets == [
            MetricBucket(firstX: 0, lastX: 3, min: 1, max: 9, last: 3, count: 4),
            MetricBucket(firstX: 4, lastX: 7, min: 2, max: 8, last: 7, count: 4),
        ])
    }

    @Test("The same points and range give the same buckets whatever order they arrive in")
    func deterministic() {
        let points = Self.series((0..<5000).map { Double(($0 * 7919) % 1013) })
        let a = MetricBucketer.bucket(points, minX: 100, maxX: 4000, count: 97)
        let b = MetricBucketer.bucket(points.reversed(), minX: 100, maxX: 4000, count: 97)
        #expect(a.buckets == b.buckets)
        #expect(a.pointCount == 3901)
        #expect(a.buckets.first?.firstX == 100)
        #expect(a.buckets.last?.lastX == 4000)
    }

    @Test("NaN points are counted and kept as last values but never become a minimum or maximum")
    func nanValues() {
        let (_, buckets) = MetricBucketer.bucket(Self.series([.nan, 2, .infinity, .nan]), minX: nil, maxX: nil, count: 1)
        #expect(buckets.count == 1)
        #expect(buckets[0].min == 2)
        #expect(buckets[0].max == .infinity)
        #expect(buckets[0].last.isNaN)
        #expect(buckets[0].count == 4)
    }

    @Test("An empty range or no points give no buckets")
    func empty() {
        #expect(MetricBucketer.bucket([], minX: nil, maxX: nil, count: 10).buckets.isEmpty)
        #expect(MetricBucketer.bucket(Self.series([1, 2, 3]), minX: 10, maxX: 20, count: 10).buckets.isEmpty)
    }
}

extension MetricBucketerTests {
    @Test("With as many buckets as steps, each bucket holds exactly one step")
    func oneStepPerBucket() {
        let points = Self.series([Double](repeating: 1, count: 1000))
        for (lo, hi) in [(100, 149), (0, 999), (333, 777), (1, 3)] {
            let (_, buckets) = MetricBucketer.bucket(points, minX: Int64(lo), maxX: Int64(hi), count: hi - lo + 1)
            #expect(buckets.map(\.firstX) == (lo...hi).map(Int64.init))
        }
    }

    /// Each point's bucket computed from scratch, the definition the stream's cached edges must match.
    static func reference(_ xs: [Int64], lo: Int64, hi: Int64, count: Int) -> [[Int64]] {
        let span = Double(hi) - Double(lo) + 1
        var groups: [[Int64]] = []
        var current = -1
        for x in xs where x >= lo && x <= hi {
            let index = min(count - 1, Int((Double(x) - Double(lo)) * Double(count) / span))
            if index != current { groups.append([]); current = index }
            groups[groups.count - 1].append(x)
        }
        return groups
    }

    @Test("The stream's cached bucket edges put every x in the bucket its index names, for any range and bucket count",
          arguments: [(Int64(0), Int64(999_999), 1000), (0, 999, 1000), (0, 9, 1000), (-1_000_003, 2_000_017, 997),
                      (17, 17, 5), (1_700_000_000_000, 1_700_000_999_999, 333),
                      (Int64.min, Int64.max, 1000), (Int64.min / 2 - 10, 0, 7), (0, Int64.max - 5, 64)])
    func cachedEdges(range: (Int64, Int64, Int)) {
        let (lo, hi, count) = range
        // Every x near each bucket edge and the ends, plus an even spread: where a cached edge off by one would show.
        let span = Double(hi) - Double(lo) + 1
        var xs: Set<Int64> = [lo, hi]
        for i in 0...count {
            let edge = Double(lo) + Double(i) * span / Double(count)
            for d in -2...2 {
                let x = edge + Double(d)
                if x >= Double(lo), x <= Double(hi), x.magnitude < 9.2e18 { xs.insert(Int64(x)) }
            }
        }
        for i in 0..<5000 {
            let x = (Double(lo) + Double(i) / 5000 * (span - 1)).rounded(.down)
            if x.magnitude < 9.2e18 { xs.insert(Int64(x)) }
        }
        let sorted = xs.filter { $0 >= lo && $0 <= hi }.sorted()
        var stream = MetricBucketer.Stream(lo: lo, hi: hi, count: count)
        for x in sorted { stream.add(x: x, value: Double(x % 1000)) }
        let (pointCount, buckets) = stream.finish()
        let expected = Self.reference(sorted, lo: lo, hi: hi, count: count)
        #expect(pointCount == sorted.count)
        #expect(buckets.map { [$0.firstX, $0.lastX] } == expected.map { [$0.first!, $0.last!] })
        #expect(buckets.map(\.count) == expected.map(\.count))
        // Fed as step-ordered runs of points (as segments are), in chunks of uneven size, with NaNs: the same buckets.
        let points = sorted.map { MetricPoint(step: $0, timestamp: 0, value: $0 % 7 == 0 ? .nan : Double($0 % 1000)) }
        var single = MetricBucketer.Stream(lo: lo, hi: hi, count: count)
        for p in points { single.add(x: p.step, value: p.value) }
        var chunked = MetricBucketer.Stream(lo: lo, hi: hi, count: count)
        var buffer = points
        buffer.withUnsafeMutableBufferPointer { all in
            var start = 0
            var size = 1
            while start < all.count {
                let end = Swift.min(all.count, start + size)
                chunked.add(stepOrdered: UnsafeMutableBufferPointer(rebasing: all[start..<end]))
                start = end
                size = size * 3 % 257 + 1
            }
        }
        let a = single.finish(), b = chunked.finish()
        #expect(a.pointCount == b.pointCount)
        #expect(a.buckets.map { [$0.firstX, $0.lastX, Int64($0.count)] } == b.buckets.map { [$0.firstX, $0.lastX, Int64($0.count)] })
        #expect(a.buckets.map { [$0.min.bitPattern, $0.max.bitPattern, $0.last.bitPattern] }
                == b.buckets.map { [$0.min.bitPattern, $0.max.bitPattern, $0.last.bitPattern] })
    }
}
