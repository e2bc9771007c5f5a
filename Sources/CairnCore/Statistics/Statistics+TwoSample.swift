import Foundation

extension Statistics {
    /// A difference of means, treatment − baseline, with its t test and interval.
    public struct MeanDifference: Sendable, Equatable {
        public var diff, se, df, t, p, ciLow, ciHigh: Double

        public init(diff: Double, se: Double, df: Double, t: Double, p: Double, ciLow: Double, ciHigh: Double) {
            self.diff = diff
            self.se = se
            self.df = df
            self.t = t
            self.p = p
            self.ciLow = ciLow
            self.ciHigh = ciHigh
        }

        static let undefined = MeanDifference(diff: .nan, se: .nan, df: .nan, t: .nan, p: .nan, ciLow: .nan, ciHigh: .nan)

        /// t = diff/se, two-sided p from t_df, interval diff + t_{df,(1∓level)/2}·se (scipy's
        /// `TtestResult.confidence_interval`, which stays [diff, diff] when se is 0).
        init(diff: Double, se: Double, df: Double, level: Double) {
            let t = diff / se
            let q = level > 0 && level < 1 ? StudentT.quantile((1 + level) / 2, df: df) : .nan
            self.init(diff: diff, se: se, df: df, t: t, p: probability(2 * StudentT.cdf(-abs(t), df: df)),
                      ciLow: diff - q * se, ciHigh: diff + q * se)
        }
    }

    /// Welch's unequal-variance t test of treatment − baseline, like
    /// `scipy.stats.ttest_ind(treatment, baseline, equal_var=False)` and its
    /// `confidence_interval(level)`: se = √(s₁²/n₁ + s₂²/n₂), Welch–Satterthwaite
    /// df = se⁴ / ((s₁²/n₁)²/(n₁−1) + (s₂²/n₂)²/(n₂−1)), interval diff ± t_df·se.
    ///
    /// As scipy: an arm with one value gives NaN se, t, p and interval; when df is 0/0 (both
    /// variances zero, or an arm of one value) df is reported as 1, scipy's placeholder; both arms
    /// constant gives t = ±∞ and p = 0 when the means differ, t and p NaN when they are equal,
    /// and the interval [diff, diff]. An empty arm gives all NaN.
    public static func welch(treatment: [Double], baseline: [Double], level: Double = 0.95) -> MeanDifference {
        guard !treatment.isEmpty, !baseline.isEmpty else { return .undefined }
        let n1 = Double(treatment.count)
        let n2 = Double(baseline.count)
        let a = variance(treatment) / n1
        let b = variance(baseline) / n2
        var df = (a + b) * (a + b) / (a * a / (n1 - 1) + b * b / (n2 - 1))
        if df.isNaN { df = 1 }
        return MeanDifference(diff: mean(treatment) - mean(baseline), se: (a + b).squareRoot(), df: df, level: level)
    }

    /// Paired t test of treatment − baseline, pairs by index, like
    /// `scipy.stats.ttest_rel(treatment, baseline)` and its `confidence_interval(level)`: the
    /// one-sample t test of the differences, df = n − 1.
    ///
    /// - Precondition: both arrays have the same count.
    ///
    /// As scipy: n = 1 gives df 0 and NaN se, t, p and interval; all differences equal gives se 0,
    /// t = ±∞ and p = 0 (or NaN when the differences are all 0) and the interval [diff, diff];
    /// n = 0 gives all NaN.
    public static func pairedT(treatment: [Double], baseline: [Double], level: Double = 0.95) -> MeanDifference {
        precondition(treatment.count == baseline.count, "pairedT needs as many treatment values as baseline values")
        guard !treatment.isEmpty else { return .undefined }
        let d = zip(treatment, baseline).map { $0 - $1 }
        let se = (variance(d) / Double(d.count)).squareRoot()
        return MeanDifference(diff: mean(d), se: se, df: Double(d.count - 1), level: level)
    }

    /// A rank test's statistic and two-sided p; `exact` says whether p comes from the exact null
    /// distribution (or an exhaustive permutation) rather than the normal approximation.
    public struct RankTest: Sendable, Equatable {
        public var statistic: Double
        public var p: Double
        public var exact: Bool

        public init(statistic: Double, p: Double, exact: Bool) {
            self.statistic = statistic
            self.p = p
            self.exact = exact
        }
    }

    /// The Mann–Whitney U test, like `scipy.stats.mannwhitneyu(treatment, baseline,
    /// alternative='two-sided')` with its defaults (`use_continuity=True`, `method='auto'`).
    /// statistic = U of treatment = R₁ − n₁(n₁+1)/2 (average ranks for ties).
    ///
    /// scipy 1.17's 'auto' rule: exact unless both arms have more than 8 values or there is any
    /// tie (in the pooled data); exact p = 2·P(U ≥ max(U₁, U₂)) from the exact null distribution
    /// (the Gaussian binomial coefficients), at most 1. Otherwise the normal approximation with
    /// the tie correction σ² = n₁n₂/12·((n+1) − Σ(t³−t)/(n(n−1))) and the continuity correction
    /// z = (max(U₁, U₂) − n₁n₂/2 − ½)/σ, p = 2·Φ(−z) at most 1 (all values tied: p = 1).
    /// An empty arm gives NaN statistic and p (exact false).
    public static func mannWhitneyU(treatment: [Double], baseline: [Double]) -> RankTest {
        let n1 = treatment.count
        let n2 = baseline.count
        guard n1 > 0, n2 > 0 else { return RankTest(statistic: .nan, p: .nan, exact: false) }
        let (ranks, groups) = averageRanks(treatment + baseline)
        let r1 = ranks[0..<n1].reduce(0, +)
        let u1 = r1 - Double(n1 * (n1 + 1)) / 2
        let u2 = Double(n1) * Double(n2) - u1
        let u = Swift.max(u1, u2)
        let hasTies = groups.contains { $0 > 1 }
        if !(n1 > 8 && n2 > 8) && !hasTies {
            // P(U ≥ u) = P(U ≤ n₁n₂ − u) by symmetry.
            let p = 2 * mannWhitneyCDF(Int((Double(n1) * Double(n2) - u).rounded()), n1, n2)
            return RankTest(statistic: u1, p: probability(p), exact: true)
        }
        let n = Double(n1 + n2)
        let tieTerm = groups.reduce(0.0) { $0 + Double($1) * Double($1) * Double($1) - Double($1) }
        let sigma = (Double(n1) * Double(n2) / 12 * ((n + 1) - tieTerm / (n * (n - 1)))).squareRoot()
        let z = (u - Double(n1) * Double(n2) / 2 - 0.5) / sigma
        return RankTest(statistic: u1, p: probability(2 * Normal.cdf(-z)), exact: false)
    }

    /// P(U ≤ k) under the null for arms of n₁ and n₂ distinct values: the coefficients of the
    /// Gaussian binomial [n₁+n₂ choose m]_q = Π_{i=1…m} (1 − q^{M+i})/(1 − q^i) (m = min, M = max
    /// of the sizes) count the arrangements with U = 0, 1, …; cost m·k.
    private static func mannWhitneyCDF(_ k: Int, _ n1: Int, _ n2: Int) -> Double {
        guard k >= 0 else { return 0 }
        let m = Swift.min(n1, n2)
        let big = Swift.max(n1, n2)
        var counts = [Double](repeating: 0, count: k + 1)
        counts[0] = 1
        var total = 1.0
        for i in 1...m {
            if big + i <= k {
                for u in stride(from: k, through: big + i, by: -1) { counts[u] -= counts[u - big - i] }
            }
            if i <= k {
                for u in i...k { counts[u] += counts[u - i] }
            }
            total = total * Double(big + i) / Double(i)
        }
        return counts.reduce(0, +) / total
    }

    /// The Wilcoxon signed-rank test of the differences treatment − baseline (pairs by index),
    /// like `scipy.stats.wilcoxon(treatment, baseline)` with its defaults (`zero_method='wilcox'`:
    /// zero differences are dropped; `correction=False`; `method='auto'`). statistic is what scipy
    /// reports for two-sided: min(W⁺, W⁻), the rank sums of the positive and negative differences
    /// (average ranks of |d| for ties).
    ///
    /// scipy 1.17's 'auto' rule, on n = the number of pairs (zeros included): n > 50 → normal
    /// approximation; no ties among |d| and no zero → exact null distribution, p = 2·min(P(W⁺ ≥
    /// ⌊w⌋), P(W⁺ ≤ ⌈w⌉)); ties or zeros and n ≤ 13 → exact permutation test over all 2ⁿ sign
    /// flips (scipy's `permutation_test`, same counting with its 100·eps tolerance); otherwise
    /// the normal approximation z = (W⁺ − m(m+1)/4)/σ with m the non-zero count and
    /// σ² = (m(m+1)(2m+1) − Σ(t³−t)/2)/24, p = 2·Φ(−|z|). `exact` is true for both exact paths.
    /// No pairs: NaN. All differences zero: p = 1 for n ≤ 13, NaN above (σ = 0), as scipy.
    ///
    /// - Precondition: both arrays have the same count.
    public static func wilcoxonSignedRank(treatment: [Double], baseline: [Double]) -> RankTest {
        precondition(treatment.count == baseline.count,
                     "wilcoxonSignedRank needs as many treatment values as baseline values")
        let d = zip(treatment, baseline).map { $0 - $1 }
        let n = d.count
        guard n > 0 else { return RankTest(statistic: .nan, p: .nan, exact: false) }
        let nonZero = d.filter { $0 != 0 }
        let m = nonZero.count
        let (ranks, groups) = averageRanks(nonZero.map { abs($0) })
        var rPlus = 0.0
        var rMinus = 0.0
        for (value, rank) in zip(nonZero, ranks) {
            if value > 0 { rPlus += rank } else { rMinus += rank }
        }
        let statistic = Swift.min(rPlus, rMinus)
        let hasTies = groups.contains { $0 > 1 }
        if n <= 50 && !hasTies && m == n {
            let counts = signedRankCounts(n)
            let total = counts.reduce(0, +)
            let w = Int(rPlus.rounded())
            let upper = counts[w...].reduce(0, +) / total
            let lower = counts[...w].reduce(0, +) / total
            return RankTest(statistic: statistic, p: probability(2 * Swift.min(upper, lower)), exact: true)
        }
        if n <= 13 {
            // All 2ⁿ sign flips; a zero stays zero, so it only duplicates outcomes.
            let gamma = abs(100 * Double.ulpOfOne * rPlus)
            var less = 0
            var greater = 0
            for mask in 0..<(1 << m) {
                var sum = 0.0
                for i in 0..<m where (nonZero[i] > 0) != (mask & (1 << i) != 0) { sum += ranks[i] }
                if sum <= rPlus + gamma { less += 1 }
                if sum >= rPlus - gamma { greater += 1 }
            }
            let p = 2 * Double(Swift.min(less, greater)) / Double(1 << m)
            return RankTest(statistic: statistic, p: probability(p), exact: true)
        }
        let md = Double(m)
        let tieCorrection = groups.reduce(0.0) { $0 + Double($1) * Double($1) * Double($1) - Double($1) }
        let sigma = ((md * (md + 1) * (2 * md + 1) - tieCorrection / 2) / 24).squareRoot()
        let z = (rPlus - md * (md + 1) / 4) / sigma
        return RankTest(statistic: statistic, p: twoSidedNormalP(z), exact: false)
    }

    /// How many subsets of {1, …, n} have each sum 0 … n(n+1)/2 (the null distribution of W⁺
    /// times 2ⁿ; exact in Double for n ≤ 50, as 2⁵⁰ < 2⁵³).
    private static func signedRankCounts(_ n: Int) -> [Double] {
        let top = n * (n + 1) / 2
        var counts = [Double](repeating: 0, count: top + 1)
        counts[0] = 1
        if n == 0 { return counts }
        for k in 1...n {
            for s in stride(from: top, through: k, by: -1) { counts[s] += counts[s - k] }
        }
        return counts
    }

    /// Two-sided permutation test of mean(treatment) − mean(baseline), like
    /// `scipy.stats.permutation_test((treatment, baseline), statistic, permutation_type='independent',
    /// alternative='two-sided', n_resamples=resamples)`: p = 2·min(P(T ≤ t), P(T ≥ t)) at most 1,
    /// comparisons with scipy's tolerance of 100·eps·|t|.
    ///
    /// Exact (every one of the C(n₁+n₂, n₁) splits, p = count/C) when C ≤ resamples; otherwise
    /// `resamples` random splits drawn with SplitMix64 from `seed` (Fisher–Yates), p = (k+1)/
    /// (resamples+1) per side as scipy. `exact` tells which. NaN (and exact false) when an arm
    /// has fewer than two values (scipy refuses them) or `resamples` < 1. Cost: C or resamples
    /// times n₁+n₂.
    public static func permutationTest(treatment: [Double], baseline: [Double], resamples: Int = 9_999,
                                       seed: UInt64 = 0x5EED) -> (p: Double, exact: Bool) {
        let n1 = treatment.count
        let n2 = baseline.count
        guard n1 > 1, n2 > 1, resamples > 0 else { return (.nan, false) }
        let observed = mean(treatment) - mean(baseline)
        let gamma = abs(100 * Double.ulpOfOne * observed)
        let pooled = treatment + baseline
        var less = 0
        var greater = 0
        func count(_ statistic: Double) {
            if statistic <= observed + gamma { less += 1 }
            if statistic >= observed - gamma { greater += 1 }
        }
        if let splits = binomial(n1 + n2, n1), splits <= resamples {
            // Every choice of n₁ indices (ascending) for the treatment arm.
            var chosen = Array(0..<n1)
            var inTreatment = [Bool](repeating: false, count: n1 + n2)
            while true {
                for i in inTreatment.indices { inTreatment[i] = false }
                for i in chosen { inTreatment[i] = true }
                var sumT = 0.0
                var sumB = 0.0
                for i in pooled.indices {
                    if inTreatment[i] { sumT += pooled[i] } else { sumB += pooled[i] }
                }
                count(sumT / Double(n1) - sumB / Double(n2))
                var k = n1 - 1
                while k >= 0 && chosen[k] == n2 + k { k -= 1 }
                if k < 0 { break }
                chosen[k] += 1
                for j in (k + 1)..<n1 { chosen[j] = chosen[j - 1] + 1 }
            }
            return (probability(2 * Double(Swift.min(less, greater)) / Double(splits)), true)
        }
        var rng = SplitMix64(seed: seed)
        var values = pooled
        for _ in 0..<resamples {
            // A partial Fisher–Yates shuffle: the first n₁ places are the new treatment arm.
            for i in 0..<n1 {
                values.swapAt(i, i + rng.below(values.count - i))
            }
            var sumT = 0.0
            var sumB = 0.0
            for i in 0..<n1 { sumT += values[i] }
            for i in n1..<values.count { sumB += values[i] }
            count(sumT / Double(n1) - sumB / Double(n2))
        }
        let p = 2 * Double(Swift.min(less, greater) + 1) / Double(resamples + 1)
        return (probability(p), false)
    }

    /// C(n, k), or nil when it does not fit in an Int.
    static func binomial(_ n: Int, _ k: Int) -> Int? {
        var result = 1
        for i in 0..<Swift.min(k, n - k) {
            let (product, overflow) = result.multipliedReportingOverflow(by: n - i)
            if overflow { return nil }
            result = product / (i + 1)
        }
        return result
    }

    /// A standardized mean difference with its interval.
    public struct EffectSize: Sendable, Equatable {
        public var g, ciLow, ciHigh: Double

        public init(g: Double, ciLow: Double, ciHigh: Double) {
            self.g = g
            self.ciLow = ciLow
            self.ciHigh = ciHigh
        }
    }

    /// Hedges' g of treatment − baseline: Cohen's d with the pooled sd,
    /// d = (x̄₁ − x̄₂)/s_p, s_p² = ((n₁−1)s₁² + (n₂−1)s₂²)/(n₁+n₂−2), times the exact small-sample
    /// correction J(ν) = Γ(ν/2)/(√(ν/2)·Γ((ν−1)/2)), ν = n₁+n₂−2 (Hedges 1981; ≈ 1 − 3/(4ν−1)).
    /// Interval g ± z_{(1+level)/2}·√V with the Hedges–Olkin large-sample variance
    /// V = (n₁+n₂)/(n₁n₂) + g²/(2(n₁+n₂)). scipy has no twin; the fixture computes the same
    /// formula with numpy/scipy.special. NaN when an arm has fewer than two values or s_p = 0.
    public static func hedgesG(treatment: [Double], baseline: [Double], level: Double = 0.95) -> EffectSize {
        let n1 = Double(treatment.count)
        let n2 = Double(baseline.count)
        guard n1 > 1, n2 > 1 else { return EffectSize(g: .nan, ciLow: .nan, ciHigh: .nan) }
        let df = n1 + n2 - 2
        let pooledSD = (((n1 - 1) * variance(treatment) + (n2 - 1) * variance(baseline)) / df).squareRoot()
        guard pooledSD > 0 else { return EffectSize(g: .nan, ciLow: .nan, ciHigh: .nan) }
        let j = exp(lgamma(df / 2) - lgamma((df - 1) / 2)) / (df / 2).squareRoot()
        let g = (mean(treatment) - mean(baseline)) / pooledSD * j
        let se = ((n1 + n2) / (n1 * n2) + g * g / (2 * (n1 + n2))).squareRoot()
        let z = Normal.quantile((1 + level) / 2)
        return EffectSize(g: g, ciLow: g - z * se, ciHigh: g + z * se)
    }
}
