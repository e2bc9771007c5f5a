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
}
