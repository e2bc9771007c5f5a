import CairnCore
import CairnTestSupport
import Foundation
import Testing
@testable import CairnStore

/// The sampler's rule written the plain way: sort, cut the step range into equal buckets, keep
/// each bucket's first minimum, first maximum and last point, and the series' first point.
private func referenceSample(_ input: [MetricPoint], maxPoints: Int) -> [MetricPoint] {
    let points = input.sorted { a, b in
        (a.step, a.timestamp, a.value.bitPattern) < (b.step, b.timestamp, b.value.bitPattern)
    }
    guard points.count > maxPoints, maxPoints > 0 else { return points }
    if maxPoints < 4 { return Array([points.first!, points.last!].prefix(maxPoints)) }
    let buckets = (maxPoints - 1) / 3
    let lo = points.first!.step
    let span = Double(points.last!.step) - Double(lo) + 1
    func bucket(_ p: MetricPoint) -> Int { min(buckets - 1, Int((Double(p.step) - Double(lo)) / span * Double(buckets))) }
    var keep: Set<Int> = [0]
    for members in Dictionary(grouping: points.indices, by: { bucket(points[$0]) }).values {
        let numbers = members.filter { !points[$0].value.isNaN }
        let minimum = numbers.min { points[$0].value < points[$1].value }  // min/max answer the first of equals
        let maximum = numbers.max { points[$0].value < points[$1].value }
        let firstMaximum = maximum.map { m in numbers.first { points[$0].value == points[m].value }! }
        keep.insert(minimum ?? members.first!)
        keep.insert(firstMaximum ?? members.first!)
        keep.insert(members.last!)
    }
    return keep.sorted().map { points[$0] }
}

private func series(count: Int, seed: UInt64, stepGap: Int64 = 1) -> [MetricPoint] {
    var generator = SeededGenerator(seed: seed)
    return (0..<count).map { i in
        let value: Double = i % 211 == 7 ? .nan : (i % 97 == 3 ? 5.0 : Double(Int.random(in: -1000...1000, using: &generator)) / 8)
        return MetricPoint(step: Int64(i) * stepGap, timestamp: 1_700_000_000_000 + Int64(i), value: value)
    }
}

@Suite("Sampled metric history")
struct SampledHistoryTests {
    @Test("The sampler keeps what the plain rule keeps: ties, NaN buckets, repeated steps, tiny budgets")
    func samplerMatchesTheRule() {
        var repeated = series(count: 3000, seed: 2)
        for i in stride(from: 0, to: repeated.count, by: 5) { repeated[i].step = repeated[max(0, i - 1)].step }
        let allNaN = (0..<500).map { MetricPoint(step: Int64($0), timestamp: 0, value: .nan) }
        let wide = [MetricPoint(step: Int64.min, timestamp: 0, value: 1), MetricPoint(step: 0, timestamp: 0, value: 2),
                    MetricPoint(step: Int64.max, timestamp: 0, value: 3)] + series(count: 50, seed: 3)
        for points in [series(count: 5000, seed: 1), series(count: 1000, seed: 4, stepGap: 37), repeated, allNaN, wide] {
            for maxPoints in [1, 2, 3, 4, 5, 10, 100, 320, 2500] {
                let sample = MetricSampler.sample(points.shuffled(), maxPoints: maxPoints)
                #expect(sample == referenceSample(points, maxPoints: maxPoints), "\(points.count) points, max \(maxPoints)")
                #expect(sample.count <= max(maxPoints, 0) || points.count <= maxPoints)
            }
        }
    }

    @Test("Reading segment by segment gives the whole-series sample, with and without a step range", arguments: StoreBackend.allCases)
    func segmentReadsMatchTheWholeSeries(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let runID = try await newSeriesRun(store, "a")
            let points = series(count: 20_000, seed: 9, stepGap: 3)
            // Batches of uneven sizes, some single points: merged and split segments both occur.
            try await logInUnevenBatches(store, runID: runID, points, first: 1, wrap: 700, grow: 37)
            let segments = try await store.read { db in try db.value(Int.self, "SELECT COUNT(*) FROM metric_segments") } ?? 0
            #expect(segments > 50)
            func streamed(_ maxPoints: Int) async throws -> [MetricPoint]? {
                try await store.read { db in
                    let pk = try db.value(Int64.self, "SELECT run_pk FROM runs WHERE run_id = ?", [runID])!
                    return try SQLiteTrackingStore.streamSample(db, runPK: pk, key: "loss", lower: .min, upper: .max, maxPoints: maxPoints)
                }
            }
            // Written in step order: sampled segment by segment, not read whole.
            #expect(try await streamed(320) != nil)
            for (lower, upper) in [(nil, nil), (Int64(1000), Int64(40_000)), (Int64(1), Int64(59_996)), (Int64(-5), Int64(2)),
                                   (Int64(30_001), Int64(30_001)), (Int64(70_000), Int64(80_000))] as [(Int64?, Int64?)] {
                let inRange = points.filter { $0.step >= (lower ?? .min) && $0.step <= (upper ?? .max) }
                for maxPoints in [1, 3, 4, 10, 320, 2500] {
                    let read = try await store.sampledMetricHistory(runIDs: [runID], key: "loss", startStep: lower, endStep: upper, maxPoints: maxPoints)
                    let got = read.flatMap(\.points)
                    #expect(read.allSatisfy { $0.runID == runID })
                    #expect(got == referenceSample(inRange, maxPoints: maxPoints), "range \(String(describing: lower))...\(String(describing: upper)), max \(maxPoints)")
                }
            }
            // Steps written out of order overlap earlier segments: the whole-series read answers the same rule.
            try await store.logRunWrites(runID: runID, RunWrites(metrics: [Metric(key: "loss", value: -9999, timestamp: 5, step: 1501)]))
            #expect(try await streamed(320) == nil)
            let mixed = points + [MetricPoint(step: 1501, timestamp: 5, value: -9999)]
            let read = try await store.sampledMetricHistory(runIDs: [runID], key: "loss", startStep: nil, endStep: nil, maxPoints: 320)
            #expect(read.flatMap(\.points) == referenceSample(mixed, maxPoints: 320))
            #expect(read.flatMap(\.points).contains { $0.value == -9999 })
        }
    }

    /// Buckets compared bit for bit (NaN never equals itself as a Double).
    private static func bits(_ buckets: [MetricBucket]) -> [[UInt64]] {
        buckets.map { [UInt64(bitPattern: $0.firstX), UInt64(bitPattern: $0.lastX), $0.min.bitPattern, $0.max.bitPattern,
                       $0.last.bitPattern, UInt64($0.count)] }
    }

    @Test("Segments taken whole from their summaries give the same samples and chart buckets as decoding every point",
          arguments: StoreBackend.allCases)
    func summariesMatchDecoding(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let runID = try await newSeriesRun(store, "b")
            var generator = SeededGenerator(seed: 17)
            // Ties, -0.0 next to 0.0, NaN here and there and whole stretches of NaN, repeated
            // timestamps, uneven step gaps.
            var step: Int64 = -500
            let points = (0..<30_000).map { i -> MetricPoint in
                step += Int64(generator.next() % 3) + 1
                let roll = generator.next() % 10
                let value: Double = (6000..<7500).contains(i) ? .nan
                    : roll == 0 ? .nan : roll == 1 ? -0.0 : roll == 2 ? 0.0 : roll == 3 ? 1.0
                    : Double(Float(Double(generator.next() % 10_000) / 1000))
                return MetricPoint(step: step, timestamp: 1_700_000_000_000 + Int64(i / 2), value: value)
            }
            try await logInUnevenBatches(store, runID: runID, points, first: 3, wrap: 900, grow: 53)
            // Some segments as an older release wrote them: read the same, decoded, never skipped.
            _ = try await store.writeUnaudited { db in
                for row in try db.rows("SELECT run_pk, key_id, seq, points FROM metric_segments WHERE seq % 7 = 3") {
                    guard case .blob(let bytes) = row.values[3] else { continue }
                    let version2 = MetricSegmentCodec.encodeVersion2(try MetricSegmentCodec.decode(Array(bytes)))
                    try db.execute("UPDATE metric_segments SET points = ? WHERE run_pk = ? AND key_id = ? AND seq = ?",
                                   [SQLValue.blob(version2), row.values[0], row.values[1], row.values[2]])
                }
            }
            #expect(try await store.metricHistory(runID: runID, key: "loss") == points)
            let (pk, summaries) = try await store.read { db in
                let pk = try db.value(Int64.self, "SELECT run_pk FROM runs WHERE run_id = ?", [runID])!
                let summaries = try db.rows("SELECT points FROM metric_segments WHERE run_pk = ? ORDER BY seq", [pk]).map { row in
                    try SQLiteTrackingStore.withSegmentBytes(row) { bytes throws(MetricSegmentCodec.CorruptSegment) in try MetricSegmentCodec.summary(bytes) }
                }
                return (pk, summaries)
            }
            #expect(summaries.contains { $0 == nil } && summaries.contains { $0 != nil })
            let ranges: [(Int64?, Int64?)] = [(nil, nil), (1000, 40_000), (-400, 59_000), (-5, 2), (30_001, 30_001), (70_000, 80_000)]
            for (lower, upper) in ranges {
                let inRange = points.filter { $0.step >= (lower ?? .min) && $0.step <= (upper ?? .max) }
                for maxPoints in [3, 4, 10, 41, 320, 2500] {
                    let (skipped, decoded) = try await store.read { db in
                        (try SQLiteTrackingStore.streamSample(db, runPK: pk, key: "loss", lower: lower ?? .min, upper: upper ?? .max, maxPoints: maxPoints),
                         try SQLiteTrackingStore.streamSample(db, runPK: pk, key: "loss", lower: lower ?? .min, upper: upper ?? .max, maxPoints: maxPoints,
                                                              skipping: false))
                    }
                    #expect(skipped == decoded, "range \(String(describing: lower))...\(String(describing: upper)), max \(maxPoints)")
                    if inRange.count > maxPoints {
                        #expect(skipped == referenceSample(inRange, maxPoints: maxPoints))
                    }
                    let answered = try await store.sampledMetricHistory(runIDs: [runID], key: "loss", startStep: lower, endStep: upper, maxPoints: maxPoints)
                    #expect(answered.flatMap(\.points) == referenceSample(inRange, maxPoints: maxPoints))
                }
                for count in [1, 3, 17, 100, 1000] {
                    let (skipped, decoded) = try await store.read { db in
                        (try SQLiteTrackingStore.streamBuckets(db, runPK: pk, key: "loss", minX: lower, maxX: upper, count: count),
                         try SQLiteTrackingStore.streamBuckets(db, runPK: pk, key: "loss", minX: lower, maxX: upper, count: count, skipping: false))
                    }
                    let whole = MetricBucketer.bucket(points.map { MetricBucketer.Point(x: $0.step, timestamp: $0.timestamp, value: $0.value) },
                                                      minX: lower, maxX: upper, count: count)
                    if let skipped, let decoded {
                        #expect(skipped.pointCount == whole.pointCount && decoded.pointCount == whole.pointCount)
                        #expect(Self.bits(skipped.buckets) == Self.bits(whole.buckets), "range \(String(describing: lower))...\(String(describing: upper)), \(count) buckets")
                        #expect(Self.bits(decoded.buckets) == Self.bits(whole.buckets))
                    } else {
                        #expect(skipped == nil && decoded == nil && inRange.isEmpty)
                    }
                }
            }
            // Wide buckets do take segments whole.
            let stream = MetricBucketer.Stream(lo: points.first!.step, hi: points.last!.step, count: 10)
            #expect(summaries.compactMap { $0 }.filter { stream.holdsWhole($0) }.count > summaries.count / 2)
            let series = try await store.bucketedSeries(SeriesQuery(runIDs: [runID], keys: ["loss"], axis: .step, minX: nil, maxX: nil, buckets: 100))
            #expect(series.first.map { Self.bits($0.buckets) } == Self.bits(MetricBucketer.bucket(
                points.map { MetricBucketer.Point(x: $0.step, timestamp: $0.timestamp, value: $0.value) }, minX: nil, maxX: nil, count: 100).buckets))
        }
    }

    @Test("A bucket edge splits the sampler exactly: every step below it falls in an earlier bucket, Int64's ends included")
    func bucketEdges() {
        var generator = SeededGenerator(seed: 23)
        let ranges: [(Int64, Int64)] = [(0, 99_999), (-500, 7), (Int64.min, Int64.max), (Int64.min, 0), (0, Int64.max),
                                        (Int64.max - 1000, Int64.max), (1, 2), (5, 5 + 3 * 832)]
            + (0..<50).map { _ in
                let a = Int64.random(in: -1_000_000_000...1_000_000_000, using: &generator)
                return (a, a + Int64.random(in: 1...10_000_000, using: &generator))
            }
        for (first, last) in ranges {
            for maxPoints in [4, 7, 41, 320, 2500] {
                let stream = MetricSampler.Stream(firstStep: first, lastStep: last, maxPoints: maxPoints)
                for b in Set([1, stream.bucketCount / 2, stream.bucketCount - 1]) where b >= 1 && b < stream.bucketCount {
                    guard let edge = stream.firstStep(ofBucket: b, through: last) else {
                        // Only when the last step's bucket is below b (a range of fewer steps than buckets).
                        #expect(stream.bucketIndex(last) < b, "\(first)...\(last), bucket \(b)")
                        continue
                    }
                    #expect(edge > first && edge <= last, "\(first)...\(last), bucket \(b)")
                    #expect(stream.bucketIndex(edge) >= b && stream.bucketIndex(edge - 1) < b, "\(first)...\(last), bucket \(b)")
                }
                #expect(stream.firstStep(ofBucket: stream.bucketCount / 2, through: last) != nil || last - first < 2 || stream.bucketCount < 2)
            }
        }
    }

    @Test("One long series is sampled in two halves read at once, the same answer as one read; a series that changed between the reads is read again whole",
          arguments: StoreBackend.allCases)
    func halves(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            func newRun(_ letter: Character) async throws -> String { try await newSeriesRun(store, letter) }
            func log(_ runID: String, _ points: [MetricPoint]) async throws {
                try await logInUnevenBatches(store, runID: runID, points, first: 5, wrap: 800, grow: 61)
            }
            let runID = try await newRun("c")
            var points = series(count: SampleHalves.minimumPoints, seed: 31, stepGap: 2)
            try await log(runID, points)
            var straddles = 0
            for maxPoints in [7, 10, 41, 320, 2500] {
                let plan = try await store.read { db in try SampleHalves.plan(db, runID: runID, key: "loss", maxPoints: maxPoints, minimumPoints: 0) }
                let halves = try #require(plan, "max \(maxPoints)")
                let (lower, upper, straddled) = try await store.read { db in
                    (try halves.sample(db, upperHalf: false), try halves.sample(db, upperHalf: true),
                     try db.value(Int.self, "SELECT COUNT(*) FROM metric_segments WHERE min_step < ? AND max_step >= ?", [halves.cut, halves.cut]) ?? 0)
                }
                let expected = referenceSample(points, maxPoints: maxPoints)
                #expect(try #require(lower) + #require(upper) == expected, "max \(maxPoints)")
                #expect(lower?.allSatisfy { $0.step < halves.cut } == true && upper?.allSatisfy { $0.step >= halves.cut } == true)
                straddles += straddled
                let answered = try await store.sampledMetricHistory(runIDs: [runID], key: "loss", startStep: nil, endStep: nil, maxPoints: maxPoints)
                #expect(answered.flatMap(\.points) == expected)
            }
            #expect(straddles > 0, "some cut falls inside a segment, which both halves read")
            // Too short to split, and too small a budget for buckets: no halves.
            #expect(try await store.read { db in try SampleHalves.plan(db, runID: runID, key: "loss", maxPoints: 60_000, minimumPoints: 0) } == nil)
            #expect(try await store.read { db in try SampleHalves.plan(db, runID: runID, key: "loss", maxPoints: 320, minimumPoints: 60_000) } == nil)
            #expect(try await store.read { db in try SampleHalves.plan(db, runID: runID, key: "loss", maxPoints: 3, minimumPoints: 0) } == nil)
            #expect(try await store.read { db in try SampleHalves.plan(db, runID: runID, key: "loss", maxPoints: 6, minimumPoints: 0) } == nil, "one bucket")
            #expect(try await store.read { db in try SampleHalves.plan(db, runID: "unknown", key: "loss", maxPoints: 320, minimumPoints: 0) } == nil)

            // A point logged after the plan was made: each half sees another series and says so.
            let plan = try await store.read { db in try SampleHalves.plan(db, runID: runID, key: "loss", maxPoints: 320, minimumPoints: 0) }
            let more = MetricPoint(step: 200_000, timestamp: 1_800_000_000_000, value: -1)
            try await log(runID, [more])
            points.append(more)
            #expect(try await store.read { db in try plan!.sample(db, upperHalf: false) } == nil)
            #expect(try await store.read { db in try plan!.sample(db, upperHalf: true) } == nil)
            #expect(try await store.sampledMetricHistory(runIDs: [runID], key: "loss", startStep: nil, endStep: nil, maxPoints: 320)
                .flatMap(\.points) == referenceSample(points, maxPoints: 320))

            // Several runs are read in slices at once and answered in the order asked, unknown runs left out.
            let second = try await newRun("d")
            let secondPoints = series(count: 3_000, seed: 32)
            try await log(second, secondPoints)
            let third = try await newRun("e")
            try await log(third, Array(secondPoints.prefix(7)))
            let many = try await store.sampledMetricHistory(runIDs: [third, "unknown", runID, second], key: "loss", startStep: nil, endStep: nil, maxPoints: 320)
            #expect(many.map(\.runID) == [third, runID, second])
            #expect(many.map(\.points) == [Array(secondPoints.prefix(7)), referenceSample(points, maxPoints: 320), referenceSample(secondPoints, maxPoints: 320)])
        }
    }
}
