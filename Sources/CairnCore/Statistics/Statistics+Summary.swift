import Foundation

extension Statistics {
    /// One sample described: count, location, spread and a Student-t interval for the mean.
    public struct Summary: Sendable, Equatable {
        public var n: Int
        public var mean, sd, se, median, min, max, ciLow, ciHigh: Double

        public init(n: Int, mean: Double, sd: Double, se: Double, median: Double, min: Double, max: Double,
                    ciLow: Double, ciHigh: Double) {
            self.n = n
            self.mean = mean
            self.sd = sd
            self.se = se
            self.median = median
            self.min = min
            self.max = max
            self.ciLow = ciLow
            self.ciHigh = ciHigh
        }
    }

    /// Mean, sample standard deviation (ddof 1, `numpy.std(xs, ddof=1)`), standard error
    /// sd/√n, median (`numpy.median`), min, max, and the Student-t interval for the mean at
    /// `level`, mean ± t_{n−1, (1+level)/2}·se (`scipy.stats.t.interval(level, n-1, mean, se)`).
    ///
    /// n = 0: everything NaN. n = 1: mean, median, min and max are the value; sd, se and the
    /// interval are NaN. All values equal: mean is the value and sd exactly 0 (numpy may leave a
    /// rounding residue), the interval is [mean, mean] (scipy would
    /// answer nan, as its scale must be positive; a point is the honest answer). A `level`
    /// outside (0, 1) gives a NaN interval.
    public static func summarize(_ xs: [Double], level: Double = 0.95) -> Summary {
        let n = xs.count
        guard n > 0 else {
            return Summary(n: 0, mean: .nan, sd: .nan, se: .nan, median: .nan, min: .nan, max: .nan,
                           ciLow: .nan, ciHigh: .nan)
        }
        let sorted = xs.sorted()
        let median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        // All values equal: the mean is that value and the sd exactly 0 (summing 0.7 three
        // times and dividing by 3 would leave a rounding residue of ~1e-16 in both).
        let constant = n > 1 && sorted[0] == sorted[n - 1]
        let m = constant ? sorted[0] : mean(xs)
        let sd = constant ? 0 : variance(xs).squareRoot()
        let se = sd / Double(n).squareRoot()
        var low = Double.nan
        var high = Double.nan
        if n > 1 {
            let q = StudentT.quantile((1 + level) / 2, df: Double(n - 1))
            if level > 0 && level < 1 {
                low = sd == 0 ? m : m - q * se
                high = sd == 0 ? m : m + q * se
            }
        }
        return Summary(n: n, mean: m, sd: sd, se: se, median: median, min: sorted[0], max: sorted[n - 1],
                       ciLow: low, ciHigh: high)
    }

    /// Percentile bootstrap interval of the mean, like
    /// `scipy.stats.bootstrap((xs,), numpy.mean, confidence_level=level, n_resamples=resamples,
    /// method='percentile')`: `resamples` means of n values drawn with replacement, and their
    /// (1−level)/2 and (1+level)/2 quantiles with linear interpolation (numpy's default).
    ///
    /// Deterministic for a seed: the draws come from SplitMix64 seeded with `seed` and Lemire's
    /// unbiased bounded integers, so the same input and seed give the same interval everywhere
    /// (not scipy's numbers, which come from numpy's PCG64). NaN for fewer than two values (scipy
    /// refuses them), for `resamples` < 1 or a `level` outside (0, 1). Cost: resamples × n.
    public static func bootstrapMeanCI(_ xs: [Double], level: Double = 0.95, resamples: Int = 10_000,
                                       seed: UInt64 = 0x5EED) -> (low: Double, high: Double) {
        let n = xs.count
        guard n > 1, resamples > 0, level > 0, level < 1 else { return (.nan, .nan) }
        var rng = SplitMix64(seed: seed)
        var means = [Double](repeating: 0, count: resamples)
        for r in 0..<resamples {
            var sum = 0.0
            for _ in 0..<n { sum += xs[rng.below(n)] }
            means[r] = sum / Double(n)
        }
        means.sort()
        return (percentile(sortedValues: means, (1 - level) / 2), percentile(sortedValues: means, (1 + level) / 2))
    }

    /// The q-quantile (0 ≤ q ≤ 1) of sorted values, linear interpolation between order
    /// statistics (numpy's `method='linear'`, Hyndman–Fan type 7).
    static func percentile(sortedValues v: [Double], _ q: Double) -> Double {
        guard !v.isEmpty else { return .nan }
        let position = q * Double(v.count - 1)
        let below = Int(position.rounded(.down))
        let above = Swift.min(below + 1, v.count - 1)
        let fraction = position - Double(below)
        return v[below] + (v[above] - v[below]) * fraction
    }
}
