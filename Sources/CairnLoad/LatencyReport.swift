import Histogram

/// Latency percentiles of one timed phase, in milliseconds, from an HdrHistogram of microseconds
/// (3 significant digits: a figure is within 0.1% of the recorded value).
struct LatencyReport: Codable, Equatable, Sendable {
    var n: Int
    var p50_ms: Double?
    var p90_ms: Double?
    var p99_ms: Double?
    var max_ms: Double?
    var mean_ms: Double?

    init(nanoseconds: [UInt64]) {
        var histogram = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
        for value in nanoseconds {
            // Microseconds, at least 1 (the histogram's lowest discernible value); an hour at most.
            _ = histogram.record(Swift.min(Swift.max(1, (value + 500) / 1000), histogram.highestTrackableValue))
        }
        self.init(histogram: histogram)
    }

    init(histogram: Histogram<UInt64>) {
        n = Int(histogram.totalCount)
        guard n > 0 else { return }
        func ms(_ microseconds: UInt64) -> Double { Self.rounded(Double(microseconds) / 1000) }
        p50_ms = ms(histogram.valueAtPercentile(50))
        p90_ms = ms(histogram.valueAtPercentile(90))
        p99_ms = ms(histogram.valueAtPercentile(99))
        max_ms = ms(histogram.max)
        mean_ms = Self.rounded(histogram.mean / 1000)
    }

    /// Three decimals, as trackbench writes its milliseconds.
    static func rounded(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }
}
