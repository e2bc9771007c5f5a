import Foundation

extension Statistics {
    /// One variant's estimate of a per-unit mean from aggregated data (a conversion rate is the
    /// mean of 0/1 units): `n` units, the `mean`, and the per-unit `variance` (ddof 1 for
    /// continuous outcomes, p(1 − p) for rates). The mean's standard error is √(variance/n).
    public struct Arm: Sendable, Equatable {
        public var n: Double
        public var mean: Double
        public var variance: Double

        public init(n: Double, mean: Double, variance: Double) {
            self.n = n
            self.mean = mean
            self.variance = variance
        }
    }

    /// A conversion rate: mean = conversions/exposures, variance = p(1 − p) (the Bernoulli
    /// variance, ddof 0, as statsmodels' Wald tests for proportions). No exposures: NaN mean and
    /// variance.
    public static func rateArm(exposures: Double, conversions: Double) -> Arm {
        let p = exposures > 0 ? conversions / exposures : .nan
        return Arm(n: exposures, mean: p, variance: p * (1 - p))
    }

    /// A continuous outcome from its sums: mean = Σy/n, variance = (Σy² − (Σy)²/n)/(n − 1)
    /// (ddof 1, never below 0 from rounding). NaN mean for n ≤ 0, NaN variance for n ≤ 1.
    public static func meanArm(n: Double, sum: Double, sumOfSquares: Double) -> Arm {
        let mean = n > 0 ? sum / n : .nan
        let variance = n > 1 ? Swift.max(0, (sumOfSquares - sum * sum / n) / (n - 1)) : .nan
        return Arm(n: n, mean: mean, variance: variance)
    }

    /// The arm's mean with a normal interval, mean ± z_{(1+level)/2}·√(variance/n)
    /// (`scipy.stats.norm.interval(level, mean, sqrt(variance/n))`; a rate of 0 or 1 gives the
    /// point, as its estimated variance is 0).
    public static func armCI(_ arm: Arm, level: Double = 0.95) -> (low: Double, high: Double) {
        let se = (arm.variance / arm.n).squareRoot()
        let z = level > 0 && level < 1 ? Normal.quantile((1 + level) / 2) : .nan
        return (arm.mean - z * se, arm.mean + z * se)
    }

    /// The lift of treatment over control, absolute and relative.
    public struct Lift: Sendable, Equatable {
        public var absolute, absoluteLow, absoluteHigh, relative, relativeLow, relativeHigh, p: Double

        public init(absolute: Double, absoluteLow: Double, absoluteHigh: Double, relative: Double, relativeLow: Double,
                    relativeHigh: Double, p: Double) {
            self.absolute = absolute
            self.absoluteLow = absoluteLow
            self.absoluteHigh = absoluteHigh
            self.relative = relative
            self.relativeLow = relativeLow
            self.relativeHigh = relativeHigh
            self.p = p
        }
    }

    /// Absolute lift Δ = m_T − m_C with the unpooled normal (Wald) interval Δ ± z·se,
    /// se² = v_T/n_T + v_C/n_C, and the two-sided z test p = 2·Φ(−|Δ/se|) (for rates this is
    /// `statsmodels.stats.proportion.test_proportions_2indep(..., method='wald')` and
    /// `confint_proportions_2indep(..., method='wald')`).
    ///
    /// Relative lift r = m_T/m_C − 1 with the delta-method interval r ± z·se_r, where
    /// se_r² = v_T/(n_T·m_C²) + m_T²·v_C/(n_C·m_C⁴) (first-order variance of a ratio of two
    /// independent means). z = z_{(1+level)/2}. se = 0 gives p NaN (no difference) or 0; a control
    /// mean of 0 gives a NaN or infinite relative lift.
    public static func lift(treatment: Arm, control: Arm, level: Double = 0.95) -> Lift {
        let z = level > 0 && level < 1 ? Normal.quantile((1 + level) / 2) : .nan
        let absolute = treatment.mean - control.mean
        let se = (treatment.variance / treatment.n + control.variance / control.n).squareRoot()
        let relative = treatment.mean / control.mean - 1
        let mc2 = control.mean * control.mean
        let relativeSE = (treatment.variance / (treatment.n * mc2)
            + treatment.mean * treatment.mean * control.variance / (control.n * mc2 * mc2)).squareRoot()
        return Lift(absolute: absolute, absoluteLow: absolute - z * se, absoluteHigh: absolute + z * se,
                    relative: relative, relativeLow: relative - z * relativeSE,
                    relativeHigh: relative + z * relativeSE, p: twoSidedNormalP(absolute / se))
    }

    /// Sample-ratio mismatch: Pearson's chi-square of the observed unit counts per variant
    /// against the planned shares (normalized to sum 1), χ² = Σ(o − e)²/e with e = total·share,
    /// df = k − 1, p = P(χ²_df > χ²); like `scipy.stats.chisquare(observed, f_exp=total*shares)`.
    /// One variant (df 0) gives p NaN; no units at all gives χ² and p NaN, as scipy. A count of
    /// shares different from the count of variants is a caller's mistake: χ² and p NaN (scipy
    /// raises), df still k − 1.
    public static func sampleRatioMismatch(observed: [Double], plannedShares: [Double])
        -> (chiSquare: Double, df: Int, p: Double)
    {
        guard observed.count == plannedShares.count else { return (.nan, observed.count - 1, .nan) }
        let total = observed.reduce(0, +)
        let shareTotal = plannedShares.reduce(0, +)
        var chiSquare = 0.0
        for (o, share) in zip(observed, plannedShares) {
            let e = total * (share / shareTotal)
            chiSquare += (o - e) * (o - e) / e
        }
        let df = observed.count - 1
        return (chiSquare, df, ChiSquare.survival(chiSquare, df: Double(df)))
    }

    /// An always-valid (anytime) interval for the absolute lift Δ = m_T − m_C, from the mixture
    /// sequential probability ratio test (mSPRT) with a normal mixture N(0, τ²) over the true
    /// lift (Robbins 1970; Johari, Pekelis, Walsh 2017 "Peeking at A/B tests"; Howard et al. 2021).
    /// With V = v_T/n_T + v_C/n_C the variance of Δ̂, the mixture likelihood ratio against a lift
    /// θ is Λ(θ) = √(V/(V+τ²))·exp(τ²(Δ̂−θ)²/(2V(V+τ²))); the interval is {θ : Λ(θ) < 1/α},
    /// α = 1 − level:
    ///
    ///     Δ̂ ± √( 2V(V+τ²)/τ² · log( √((V+τ²)/V) / α ) )
    ///
    /// so looking after every day (or every unit) keeps the chance that the true lift is ever
    /// outside it at most α. It is always wider than the fixed-horizon z interval and shrinks as
    /// data accrue (half-width ~ √(V·log(1/V))).
    ///
    /// τ² default: one hundredth of the mean per-unit variance of the two arms, (v_T + v_C)/200,
    /// i.e. the mixture expects true lifts of about a tenth of a per-unit standard deviation,
    /// the usual scale of online effects; this makes the interval tightest (relative to the fixed
    /// one) around 2,000 units per arm, where τ²/V ≈ 10. Pass `tauSquared` from the spread of past experiments' lifts for tighter
    /// intervals (Johari et al. §4). NaN when V is NaN or τ² is not positive.
    public static func alwaysValidLiftCI(treatment: Arm, control: Arm, level: Double = 0.95,
                                         tauSquared: Double? = nil) -> (low: Double, high: Double) {
        let v = treatment.variance / treatment.n + control.variance / control.n
        let tau2 = tauSquared ?? (treatment.variance + control.variance) / 200
        let alpha = 1 - level
        guard !v.isNaN, tau2 > 0, alpha > 0, alpha < 1 else { return (.nan, .nan) }
        let absolute = treatment.mean - control.mean
        guard v > 0 else { return (absolute, absolute) }
        let radius = (2 * v * (v + tau2) / tau2 * (0.5 * log((v + tau2) / v) - log(alpha))).squareRoot()
        return (absolute - radius, absolute + radius)
    }

    /// One variant's sufficient statistics for CUPED: n units, Σy, Σy², Σx, Σx², Σxy of the
    /// outcome y and a pre-experiment covariate x.
    public struct CovariateSums: Sendable, Equatable {
        public var n, sumY, sumY2, sumX, sumX2, sumXY: Double

        public init(n: Double, sumY: Double, sumY2: Double, sumX: Double, sumX2: Double, sumXY: Double) {
            self.n = n
            self.sumY = sumY
            self.sumY2 = sumY2
            self.sumX = sumX
            self.sumX2 = sumX2
            self.sumXY = sumXY
        }
    }

    /// CUPED (Deng, Xu, Kohavi, Walker 2013): variance reduction with a pre-experiment covariate.
    /// θ = cov(x, y)/var(x) over all units of all variants pooled (ddof 1; equal to
    /// `numpy.cov(x_all, y_all)[0, 1] / numpy.var(x_all, ddof=1)`); per variant the adjusted mean
    /// ȳ − θ(x̄ − x̄_all) and the adjusted per-unit variance var(y) − 2θ·cov(x, y) + θ²·var(x)
    /// (within the variant, ddof 1). Returns the adjusted arms in the input order and θ.
    ///
    /// A covariate with no variance carries no information: θ = 0 and the arms are unadjusted.
    /// A variant with n ≤ 1 gets NaN variance (n ≤ 0 also NaN mean).
    public static func cuped(_ arms: [CovariateSums]) -> (arms: [Arm], theta: Double) {
        let n = arms.reduce(0) { $0 + $1.n }
        let sumX = arms.reduce(0) { $0 + $1.sumX }
        let sumY = arms.reduce(0) { $0 + $1.sumY }
        let varX = (arms.reduce(0) { $0 + $1.sumX2 } - sumX * sumX / n) / (n - 1)
        let covXY = (arms.reduce(0) { $0 + $1.sumXY } - sumX * sumY / n) / (n - 1)
        let theta = varX > 0 ? covXY / varX : 0
        let meanX = sumX / n
        let adjusted = arms.map { arm -> Arm in
            let armMeanY = arm.n > 0 ? arm.sumY / arm.n : .nan
            let armMeanX = arm.n > 0 ? arm.sumX / arm.n : .nan
            guard arm.n > 1 else { return Arm(n: arm.n, mean: armMeanY - theta * (armMeanX - meanX), variance: .nan) }
            let vy = (arm.sumY2 - arm.sumY * arm.sumY / arm.n) / (arm.n - 1)
            let vx = (arm.sumX2 - arm.sumX * arm.sumX / arm.n) / (arm.n - 1)
            let cov = (arm.sumXY - arm.sumX * arm.sumY / arm.n) / (arm.n - 1)
            return Arm(n: arm.n, mean: armMeanY - theta * (armMeanX - meanX),
                       variance: Swift.max(0, vy - 2 * theta * cov + theta * theta * vx))
        }
        return (adjusted, theta)
    }
}
