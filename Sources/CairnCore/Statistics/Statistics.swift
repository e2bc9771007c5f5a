import Foundation

/// The statistics behind "is B really better than A?": pure functions on arrays of finite
/// `Double`s (the caller removes NaN and ±infinity and counts them), each matching a named scipy
/// 1.17 or statsmodels 0.15 function (`scripts/stats-reference.py` writes their answers into the
/// fixture `StatisticsTests` compares against).
///
/// Where a statistic is undefined (no data, one value, zero variance) the functions return NaN
/// exactly where scipy returns nan; they never trap. Files: distributions
/// (`Statistics+Distributions.swift`), one-sample summaries and the bootstrap
/// (`Statistics+Summary.swift`), two-sample tests (`Statistics+TwoSample.swift`), multiple testing
/// and power (`Statistics+MultipleTesting.swift`), online A/B experiments from aggregated data
/// (`Statistics+Online.swift`).
public enum Statistics {}

// MARK: - Helpers shared by the files of Statistics

extension Statistics {
    /// Arithmetic mean; NaN for no values.
    static func mean(_ xs: [Double]) -> Double {
        xs.isEmpty ? .nan : xs.reduce(0, +) / Double(xs.count)
    }

    /// Sample variance (ddof 1, two passes like numpy); NaN for fewer than two values.
    static func variance(_ xs: [Double]) -> Double {
        guard xs.count > 1 else { return .nan }
        let m = mean(xs)
        return xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(xs.count - 1)
    }

    /// Average ranks (1-based, ties get the mean of their ranks, like `scipy.stats.rankdata`) and
    /// the sizes of the groups of tied values.
    static func averageRanks(_ xs: [Double]) -> (ranks: [Double], tieGroups: [Int]) {
        let order = xs.indices.sorted { xs[$0] < xs[$1] }
        var ranks = [Double](repeating: 0, count: xs.count)
        var groups: [Int] = []
        var start = 0
        while start < order.count {
            var end = start + 1
            while end < order.count && xs[order[end]] == xs[order[start]] { end += 1 }
            let rank = Double(start + 1 + end) / 2  // mean of ranks start+1 ... end
            for k in start..<end { ranks[order[k]] = rank }
            groups.append(end - start)
            start = end
        }
        return (ranks, groups)
    }

    /// Two-sided p-value of a standard normal statistic, 2·Φ(−|z|), at most 1.
    static func twoSidedNormalP(_ z: Double) -> Double {
        probability(2 * Normal.cdf(-abs(z)))
    }

    /// p clipped to [0, 1] like `numpy.clip`, NaN kept (`Swift.min(1, .nan)` would be 1).
    static func probability(_ p: Double) -> Double {
        p.isNaN ? p : Swift.min(1, Swift.max(0, p))
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014; the seeding generator of xoshiro): 64 bits of state, a
/// Weyl sequence through a 64-bit mix. Small, fast and good enough for resampling; fixed here so
/// a seed gives the same bootstrap interval and permutation p on every platform and Swift version
/// (the standard library's `random(in:using:)` algorithm is not promised to stay the same).
public struct SplitMix64 {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in 0..<bound (bound > 0), without modulo bias (Lemire 2019).
    mutating func below(_ bound: Int) -> Int {
        let n = UInt64(bound)
        var product = next().multipliedFullWidth(by: n)
        if product.low < n {
            let threshold = (0 &- n) % n
            while product.low < threshold { product = next().multipliedFullWidth(by: n) }
        }
        return Int(product.high)
    }
}
