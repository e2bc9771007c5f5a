import Foundation

extension Statistics {
    /// Holm's step-down adjusted p-values, in the input order, like
    /// `statsmodels.stats.multitest.multipletests(p, method='holm')[1]`: sorted ascending,
    /// p₍ᵢ₎·(m − i + 1), made non-decreasing by a running maximum, capped at 1. Controls the
    /// family-wise error rate. Empty in, empty out.
    public static func holm(_ p: [Double]) -> [Double] {
        let m = p.count
        let order = p.indices.sorted { p[$0] < p[$1] }
        var adjusted = [Double](repeating: 0, count: m)
        var running = -Double.infinity
        for (rank, index) in order.enumerated() {
            running = Swift.max(running, p[index] * Double(m - rank))
            adjusted[index] = Swift.min(1, running)
        }
        return adjusted
    }

    /// Benjamini–Hochberg adjusted p-values (q-values), in the input order, like
    /// `statsmodels.stats.multitest.multipletests(p, method='fdr_bh')[1]`: sorted ascending,
    /// p₍ᵢ₎/(i/m), made non-decreasing by a running minimum from the largest, capped at 1.
    /// Controls the false discovery rate (independent or positively dependent tests).
    public static func benjaminiHochberg(_ p: [Double]) -> [Double] {
        let m = p.count
        let order = p.indices.sorted { p[$0] < p[$1] }
        var adjusted = [Double](repeating: 0, count: m)
        var running = Double.infinity
        for rank in stride(from: m - 1, through: 0, by: -1) {
            let index = order[rank]
            running = Swift.min(running, p[index] / (Double(rank + 1) / Double(m)))
            adjusted[index] = Swift.min(1, running)
        }
        return adjusted
    }

    /// The smallest number of seeds (runs) per arm, equal arms, for which a two-sided
    /// two-sample t test at `alpha` has at least `power` to detect `diff`, given the arms' sds:
    /// effect size d = |diff|/√((sdA² + sdB²)/2), power(n) = P(T > t_crit) + P(T < −t_crit) for
    /// T noncentral t with df 2n − 2 and noncentrality d·√(n/2), t_crit = t_{2n−2, 1−alpha/2}.
    /// Like `ceil(statsmodels.stats.power.TTestIndPower().solve_power(effect_size=d, alpha=alpha,
    /// power=power, ratio=1))`, found by bisection on whole n from 2 (statsmodels' lower bound).
    ///
    /// nil when diff is 0 or NaN, either sd is 0 or NaN, alpha or power is outside (0, 1), or
    /// more than 100,000 seeds per arm would be needed.
    public static func seedsPerArm(diff: Double, sdTreatment: Double, sdBaseline: Double, alpha: Double = 0.05,
                                   power: Double = 0.8) -> Int? {
        guard diff.isFinite, diff != 0, sdTreatment.isFinite, sdTreatment > 0, sdBaseline.isFinite, sdBaseline > 0,
              alpha > 0, alpha < 1, power > 0, power < 1 else { return nil }
        let d = abs(diff) / ((sdTreatment * sdTreatment + sdBaseline * sdBaseline) / 2).squareRoot()
        func achieved(_ n: Int) -> Double {
            let df = Double(2 * n - 2)
            let critical = StudentT.quantile(1 - alpha / 2, df: df)
            let delta = d * (Double(n) / 2).squareRoot()
            return (1 - NoncentralT.cdf(critical, df: df, noncentrality: delta))
                + NoncentralT.cdf(-critical, df: df, noncentrality: delta)
        }
        let cap = 100_000
        if achieved(2) >= power { return 2 }
        if achieved(cap) < power { return nil }
        var low = 2  // power(low) < target
        var high = cap  // power(high) ≥ target
        // Start near the normal approximation n ≈ 2((z_{1−α/2} + z_power)/d)².
        let guess = 2 * pow((Normal.quantile(1 - alpha / 2) + Normal.quantile(power)) / d, 2)
        if guess.isFinite, guess > 2, guess < Double(cap) {
            let g = Int(guess.rounded(.up))
            if achieved(g) >= power { high = g } else { low = g }
            let step = Swift.max(2, g / 20)
            if high == g, g - step > low, achieved(g - step) < power { low = g - step }
            if low == g, g + step < high, achieved(g + step) >= power { high = g + step }
        }
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if achieved(middle) >= power { high = middle } else { low = middle }
        }
        return high
    }
}
