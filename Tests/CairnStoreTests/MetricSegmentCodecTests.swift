import Testing
@testable import CairnStore

@Suite("Metric segment codec")
struct MetricSegmentCodecTests {
    @Test("Points round-trip bit-exactly, NaN and infinities included")
    func roundTrip() throws {
        let points: [MetricPoint] = [
            .init(step: 0, timestamp: 1_700_000_000_000, value: 0.5),
            .init(step: 1, timestamp: 1_700_000_000_010, value: .nan),
            .init(step: 2, timestamp: 1_700_000_000_005, value: .infinity),
            .init(step: -7, timestamp: 0, value: -.infinity),
            .init(step: Int64.max, timestamp: Int64.max, value: -0.0),
            .init(step: Int64.min, timestamp: 3, value: Double.leastNonzeroMagnitude),
            .init(step: 5, timestamp: 3, value: Double.greatestFiniteMagnitude),
            .init(step: 5, timestamp: 3, value: Double.greatestFiniteMagnitude),
        ]
        let decoded = try MetricSegmentCodec.decode(MetricSegmentCodec.encode(points))
        #expect(decoded == points)
        #expect(decoded[1].value.isNaN)
    }

    @Test("A regular series costs only a few bytes per point")
    func compact() {
        let points = (0..<10_000).map { i in
            MetricPoint(step: Int64(i), timestamp: 1_700_000_000_000 + Int64(i) * 20, value: 1.0 / Double(i + 1))
        }
        let bytes = MetricSegmentCodec.encode(points)
        #expect(Double(bytes.count) / Double(points.count) < 12)
    }

    @Test("Damaged bytes are reported, never decoded into wrong points")
    func corrupt() {
        let bytes = MetricSegmentCodec.encode([.init(step: 1, timestamp: 2, value: 3.25), .init(step: 2, timestamp: 3, value: 4.5)])
        #expect(throws: MetricSegmentCodec.CorruptSegment.self) { try MetricSegmentCodec.decode(Array(bytes.dropLast())) }
        #expect(throws: MetricSegmentCodec.CorruptSegment.self) { try MetricSegmentCodec.decode(bytes + [0]) }
        #expect(throws: MetricSegmentCodec.CorruptSegment.self) { try MetricSegmentCodec.decode([9] + bytes.dropFirst()) }
        #expect(throws: MetricSegmentCodec.CorruptSegment.self) { try MetricSegmentCodec.decode([]) }
    }
}

@Suite("Metric sampler")
struct MetricSamplerTests {
    @Test("A series that fits is returned whole, sorted by step")
    func fits() {
        let points = [MetricPoint(step: 2, timestamp: 0, value: 1), .init(step: 1, timestamp: 0, value: 2)]
        #expect(MetricSampler.sample(points, maxPoints: 10).map(\.step) == [1, 2])
    }

    @Test("Sampling keeps the first and last points and every spike, within the budget, deterministically")
    func spikes() {
        var points = (0..<10_000).map { MetricPoint(step: Int64($0), timestamp: Int64($0), value: 1.0) }
        points[4321].value = 1000
        points[777].value = -50
        let sample = MetricSampler.sample(points.shuffled(), maxPoints: 100)
        #expect(sample.count <= 100)
        #expect(sample.first?.step == 0)
        #expect(sample.last?.step == 9999)
        #expect(sample.contains { $0.value == 1000 && $0.step == 4321 })
        #expect(sample.contains { $0.value == -50 && $0.step == 777 })
        #expect(sample == MetricSampler.sample(points, maxPoints: 100))
        #expect(zip(sample, sample.dropFirst()).allSatisfy { $0.step <= $1.step })
    }
}
