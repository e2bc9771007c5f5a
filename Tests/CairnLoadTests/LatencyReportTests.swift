import Testing
@testable import CairnLoad

@Suite struct LatencyReportTests {
    @Test func percentilesOfAKnownSpreadAreWithinTheHistogramsPrecision() throws {
        // 1 ms, 2 ms, ... 1,000 ms, in nanoseconds, shuffled.
        let values = (1...1000).map { UInt64($0) * 1_000_000 }.shuffled()
        let report = LatencyReport(nanoseconds: values)
        #expect(report.n == 1000)
        func close(_ value: Double?, _ expected: Double) -> Bool {
            guard let value else { return false }
            return abs(value - expected) <= expected * 0.001 + 0.001
        }
        #expect(close(report.p50_ms, 500))
        #expect(close(report.p90_ms, 900))
        #expect(close(report.p99_ms, 990))
        #expect(close(report.max_ms, 1000))
        #expect(close(report.mean_ms, 500.5))
    }

    @Test func anEmptyPhaseHasNoPercentiles() {
        let report = LatencyReport(nanoseconds: [])
        #expect(report == LatencyReport(nanoseconds: []))
        #expect(report.n == 0)
        #expect(report.p50_ms == nil && report.max_ms == nil)
    }

    @Test func subMicrosecondValuesCountAsOneMicrosecond() {
        let report = LatencyReport(nanoseconds: [1, 10, 400])
        #expect(report.n == 3)
        #expect(report.max_ms == 0.001)
    }
}
