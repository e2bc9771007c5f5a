import CairnTestSupport
import Foundation
import Testing
@testable import CairnCore

/// The answers of scipy 1.17.1 and statsmodels 0.15.0, written by scripts/stats-reference.py.
/// Every double is a string (its shortest repr; "nan", "inf", "-inf"): `Double(String)` reads it
/// back exactly, which Foundation's JSON number parsing on Linux does not promise.
private struct Reference {
    let root: [String: Any]

    init() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/statistics-reference.json")
        root = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    func rows(_ key: String) -> [[Any]] { root[key] as? [[Any]] ?? [] }
    func cases(_ key: String) -> [[String: Any]] { root[key] as? [[String: Any]] ?? [] }
}

private func number(_ value: Any?) -> Double {
    switch value {
    case let text as String: return Double(text) ?? .nan
    case let number as NSNumber: return number.doubleValue
    default: return .nan
    }
}

private func numbers(_ value: Any?) -> [Double] { (value as? [Any] ?? []).map(number) }

/// |a − b| ≤ rel·max(|a|, |b|) + abs; NaN matches only NaN, an infinity only itself.
private func close(_ a: Double, _ b: Double, rel: Double = 1e-9, abs absolute: Double = 0) -> Bool {
    if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
    if a.isInfinite || b.isInfinite { return a == b }
    return Swift.abs(a - b) <= rel * Swift.max(Swift.abs(a), Swift.abs(b)) + absolute
}

private func normalSample(_ n: Int, mean: Double, sd: Double, seed: UInt64) -> [Double] {
    var rng = SeededGenerator(seed: seed)
    return (0..<n).map { _ in
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &rng)
        let u2 = Double.random(in: 0..<1, using: &rng)
        return mean + sd * (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}

@Suite("Statistics")
struct StatisticsTests {
    // MARK: Distributions

    @Test("The normal cdf and quantile match scipy's ndtr and ndtri to 1e-12 relative, tails included")
    func normalDistribution() throws {
        let reference = try Reference()
        for row in reference.rows("normalCDF") {
            let (x, expected) = (number(row[0]), number(row[1]))
            // scipy's ndtr underflows to 0 at −38 where the true value is 2.9e-316: denormals compared absolutely.
            #expect(close(Statistics.Normal.cdf(x), expected, rel: 1e-12, abs: 1e-300), "Φ(\(x))")
        }
        for row in reference.rows("normalQuantile") {
            let (p, expected) = (number(row[0]), number(row[1]))
            #expect(close(Statistics.Normal.quantile(p), expected, rel: 1e-12, abs: 1e-300), "Φ⁻¹(\(p))")
        }
        #expect(Statistics.Normal.quantile(-0.1).isNaN && Statistics.Normal.quantile(1.5).isNaN)
        #expect(Statistics.Normal.quantile(.nan).isNaN && Statistics.Normal.cdf(.nan).isNaN)
    }

    @Test("Student's t cdf and quantile match scipy's stdtr and stdtrit to 1e-10 relative, df 1 to 1e7")
    func studentT() throws {
        let reference = try Reference()
        let cdfRows = reference.rows("tCDF")
        #expect(cdfRows.count > 100)
        for row in cdfRows {
            let (t, df, expected) = (number(row[0]), number(row[1]), number(row[2]))
            #expect(close(Statistics.StudentT.cdf(t, df: df), expected, rel: 1e-10, abs: 1e-300), "t cdf(\(t), df \(df))")
        }
        for row in reference.rows("tQuantile") {
            let (p, df, expected) = (number(row[0]), number(row[1]), number(row[2]))
            #expect(close(Statistics.StudentT.quantile(p, df: df), expected, rel: 1e-10), "t quantile(\(p), df \(df))")
        }
        #expect(Statistics.StudentT.cdf(1, df: 0).isNaN && Statistics.StudentT.quantile(0.3, df: -1).isNaN)
        #expect(Statistics.StudentT.quantile(0, df: 3) == -.infinity && Statistics.StudentT.quantile(1, df: 3) == .infinity)
        #expect(Statistics.StudentT.cdf(.infinity, df: 3) == 1 && Statistics.StudentT.cdf(2, df: .infinity) == Statistics.Normal.cdf(2))
    }

    @Test("The chi-square survival function matches scipy's chdtrc to 1e-10 relative")
    func chiSquare() throws {
        let reference = try Reference()
        for row in reference.rows("chiSquareSurvival") {
            let (x, df, expected) = (number(row[0]), number(row[1]), number(row[2]))
            // Below 1e-300 both are denormal: compared absolutely.
            #expect(close(Statistics.ChiSquare.survival(x, df: df), expected, rel: 1e-10, abs: 1e-300), "χ² sf(\(x), df \(df))")
        }
        #expect(Statistics.ChiSquare.survival(3, df: 0).isNaN)
    }

    // MARK: Summaries

    @Test("summarize matches numpy and scipy.stats.t.interval, n = 0, 1, ties and constant samples included")
    func summaries() throws {
        let reference = try Reference()
        for c in reference.cases("summaries") {
            let name = c["name"] as? String ?? "?"
            let s = Statistics.summarize(numbers(c["xs"]), level: number(c["level"]))
            #expect(s.n == c["n"] as? Int, "\(name)")
            let pairs: [(String, Double)] = [("mean", s.mean), ("sd", s.sd), ("se", s.se), ("median", s.median),
                                             ("min", s.min), ("max", s.max), ("ciLow", s.ciLow), ("ciHigh", s.ciHigh)]
            for (key, value) in pairs {
                // numpy sums pairwise, Swift left to right: last-digit differences, hence the 1e-12 floor.
                #expect(close(value, number(c[key]), rel: 1e-9, abs: 1e-12), "\(name) \(key): \(value) vs \(c[key] ?? "")")
            }
        }
    }

    @Test("summarize: no value is all NaN, one value has no spread, equal values have a point interval")
    func summaryEdges() {
        let empty = Statistics.summarize([])
        #expect(empty.n == 0 && empty.mean.isNaN && empty.median.isNaN && empty.ciLow.isNaN)
        let one = Statistics.summarize([2])
        #expect(one.mean == 2 && one.median == 2 && one.min == 2 && one.sd.isNaN && one.se.isNaN && one.ciHigh.isNaN)
        let constant = Statistics.summarize([4, 4, 4])
        #expect(constant.sd == 0 && constant.ciLow == 4 && constant.ciHigh == 4)
        #expect(Statistics.summarize([1, 2, 3], level: 1.5).ciLow.isNaN)
    }

    @Test("The bootstrap interval is the same for the same seed, differs for another, and is near the t interval for 2,000 normal values")
    func bootstrap() {
        let xs = normalSample(2000, mean: 10, sd: 3, seed: 7)
        let a = Statistics.bootstrapMeanCI(xs)
        let b = Statistics.bootstrapMeanCI(xs)
        let c = Statistics.bootstrapMeanCI(xs, seed: 99)
        #expect(a == b)
        #expect(a != c)
        let t = Statistics.summarize(xs)
        let width = t.ciHigh - t.ciLow
        #expect(Swift.abs(a.low - t.ciLow) < 0.05 * width && Swift.abs(a.high - t.ciHigh) < 0.05 * width)
        #expect(Statistics.bootstrapMeanCI([]).low.isNaN && Statistics.bootstrapMeanCI([3]).high.isNaN)
        #expect(Statistics.bootstrapMeanCI([5, 5, 5, 5]) == (5, 5))
        #expect(Statistics.bootstrapMeanCI(xs, resamples: 0).low.isNaN)
    }

    // MARK: Two samples

    private func checkMeanDifference(_ result: Statistics.MeanDifference, _ c: [String: Any], _ label: String) {
        let name = c["name"] as? String ?? "?"
        let pairs: [(String, Double)] = [("diff", result.diff), ("se", result.se), ("df", result.df), ("t", result.t),
                                         ("p", result.p), ("ciLow", result.ciLow), ("ciHigh", result.ciHigh)]
        for (key, value) in pairs {
            // Means are sums of ~0.8-sized values: numpy's pairwise summation differs in the last digits.
            #expect(close(value, number(c[key]), rel: 1e-9, abs: 1e-13), "\(label) \(name) \(key): \(value) vs \(c[key] ?? "")")
        }
    }

    @Test("welch matches scipy.stats.ttest_ind(equal_var=False) and its confidence interval, edge cases included")
    func welch() throws {
        let reference = try Reference()
        let cases = reference.cases("welch")
        #expect(cases.count > 30)
        for c in cases {
            checkMeanDifference(Statistics.welch(treatment: numbers(c["treatment"]), baseline: numbers(c["baseline"]),
                                                 level: number(c["level"])), c, "welch")
        }
        #expect(Statistics.welch(treatment: [], baseline: [1, 2]).diff.isNaN)
    }

    @Test("pairedT matches scipy.stats.ttest_rel and its confidence interval, edge cases included")
    func paired() throws {
        let reference = try Reference()
        for c in reference.cases("paired") {
            checkMeanDifference(Statistics.pairedT(treatment: numbers(c["treatment"]), baseline: numbers(c["baseline"]),
                                                   level: number(c["level"])), c, "paired")
        }
        #expect(Statistics.pairedT(treatment: [], baseline: []).p.isNaN)
    }

    @Test("mannWhitneyU matches scipy.stats.mannwhitneyu, exact and asymptotic, with ties")
    func mannWhitney() throws {
        let reference = try Reference()
        let cases = reference.cases("mannWhitneyU")
        #expect(cases.contains { $0["exact"] as? Bool == true } && cases.contains { $0["exact"] as? Bool == false })
        for c in cases {
            let name = c["name"] as? String ?? "?"
            let r = Statistics.mannWhitneyU(treatment: numbers(c["treatment"]), baseline: numbers(c["baseline"]))
            #expect(close(r.statistic, number(c["statistic"]), rel: 1e-12), "\(name) U")
            // scipy's exact p divides counts by a float binomial: 1e-15 absolute.
            #expect(close(r.p, number(c["p"]), rel: 1e-9, abs: 1e-15), "\(name) p: \(r.p) vs \(c["p"] ?? "")")
            #expect(r.exact == (c["exact"] as? Bool), "\(name) exact")
        }
    }

    @Test("wilcoxonSignedRank matches scipy.stats.wilcoxon: exact, permutation (zeros, ties) and normal paths")
    func wilcoxon() throws {
        let reference = try Reference()
        for c in reference.cases("wilcoxon") {
            let name = c["name"] as? String ?? "?"
            let r = Statistics.wilcoxonSignedRank(treatment: numbers(c["treatment"]), baseline: numbers(c["baseline"]))
            #expect(close(r.statistic, number(c["statistic"]), rel: 1e-12), "\(name) statistic")
            // scipy sums a float pmf and takes 1 − cdf for one tail: 1e-15 absolute.
            #expect(close(r.p, number(c["p"]), rel: 1e-9, abs: 1e-15), "\(name) p: \(r.p) vs \(c["p"] ?? "")")
            #expect(r.exact == (c["exact"] as? Bool), "\(name) exact")
        }
    }

    @Test("permutationTest matches scipy.stats.permutation_test exactly when it enumerates every split")
    func permutationExact() throws {
        let reference = try Reference()
        let cases = reference.cases("permutation")
        #expect(cases.count > 10)
        for c in cases {
            let name = c["name"] as? String ?? "?"
            let r = Statistics.permutationTest(treatment: numbers(c["treatment"]), baseline: numbers(c["baseline"]))
            #expect(r.exact, "\(name)")
            #expect(close(r.p, number(c["p"]), rel: 1e-12), "\(name) p: \(r.p) vs \(c["p"] ?? "")")
        }
        #expect(Statistics.permutationTest(treatment: [1], baseline: [2, 3]).p.isNaN)
    }

    @Test("permutationTest by random splits is within Monte Carlo error of scipy's p, and the same for the same seed")
    func permutationRandom() throws {
        let reference = try Reference()
        for c in reference.cases("permutationRandom") {
            let (t, b) = (numbers(c["treatment"]), numbers(c["baseline"]))
            let expected = number(c["p"])
            let r = Statistics.permutationTest(treatment: t, baseline: b, resamples: 20_000)
            #expect(!r.exact)
            // Random resampling cannot reproduce numpy's generator: 5 standard errors of 20,000 draws.
            let tolerance = 5 * (expected * (1 - expected) / 20_000).squareRoot() + 2e-4
            #expect(Swift.abs(r.p - expected) <= tolerance, "\(c["name"] ?? ""): \(r.p) vs \(expected)")
            #expect(Statistics.permutationTest(treatment: t, baseline: b, resamples: 20_000) == r)
        }
    }

    @Test("hedgesG matches the pooled-sd, exact-J, Hedges–Olkin formula computed with numpy")
    func hedges() throws {
        let reference = try Reference()
        for c in reference.cases("hedges") {
            let name = c["name"] as? String ?? "?"
            let r = Statistics.hedgesG(treatment: numbers(c["treatment"]), baseline: numbers(c["baseline"]),
                                       level: number(c["level"]))
            #expect(close(r.g, number(c["g"]), rel: 1e-9, abs: 1e-12), "\(name) g: \(r.g) vs \(c["g"] ?? "")")
            #expect(close(r.ciLow, number(c["ciLow"]), rel: 1e-9, abs: 1e-12), "\(name) ciLow")
            #expect(close(r.ciHigh, number(c["ciHigh"]), rel: 1e-9, abs: 1e-12), "\(name) ciHigh")
        }
        #expect(Statistics.hedgesG(treatment: [1], baseline: [1, 2]).g.isNaN)
        #expect(Statistics.hedgesG(treatment: [1, 1], baseline: [1, 1]).g.isNaN)
    }

    // MARK: Multiple testing and power

    @Test("holm and benjaminiHochberg match statsmodels multipletests in the input order")
    func multipleTesting() throws {
        let reference = try Reference()
        for c in reference.cases("multiple") {
            let p = numbers(c["p"])
            let holm = Statistics.holm(p)
            let bh = Statistics.benjaminiHochberg(p)
            #expect(holm.count == p.count && bh.count == p.count)
            for (a, b) in zip(holm, numbers(c["holm"])) { #expect(close(a, b, rel: 1e-12), "holm \(p)") }
            for (a, b) in zip(bh, numbers(c["bh"])) { #expect(close(a, b, rel: 1e-12), "BH \(p)") }
        }
    }

    @Test("seedsPerArm equals ceil(statsmodels TTestIndPower().solve_power) and is nil when nothing can be detected")
    func power() throws {
        let reference = try Reference()
        for c in reference.cases("power") {
            let n = Statistics.seedsPerArm(diff: number(c["diff"]), sdTreatment: number(c["sdTreatment"]),
                                           sdBaseline: number(c["sdBaseline"]), alpha: number(c["alpha"]),
                                           power: number(c["power"]))
            #expect(n == c["n"] as? Int, "\(c)")
        }
        #expect(Statistics.seedsPerArm(diff: 0, sdTreatment: 1, sdBaseline: 1) == nil)
        #expect(Statistics.seedsPerArm(diff: .nan, sdTreatment: 1, sdBaseline: 1) == nil)
        #expect(Statistics.seedsPerArm(diff: 1, sdTreatment: 0, sdBaseline: 1) == nil)
        #expect(Statistics.seedsPerArm(diff: 1, sdTreatment: .nan, sdBaseline: 1) == nil)
        #expect(Statistics.seedsPerArm(diff: 0.001, sdTreatment: 1, sdBaseline: 1) == nil)  // ~15.7 million per arm
        #expect(Statistics.seedsPerArm(diff: 100, sdTreatment: 1, sdBaseline: 1) == 2)
    }

    // MARK: Online experiments

    @Test("Rate arms and lifts match statsmodels' Wald test and interval for two proportions, relative lift the delta method")
    func rates() throws {
        let reference = try Reference()
        for c in reference.cases("rates") {
            let (t, k) = (numbers(c["treatment"]), numbers(c["control"]))
            let treatment = Statistics.rateArm(exposures: t[0], conversions: t[1])
            let control = Statistics.rateArm(exposures: k[0], conversions: k[1])
            let lift = Statistics.lift(treatment: treatment, control: control)
            let pairs: [(String, Double)] = [("absolute", lift.absolute), ("absoluteLow", lift.absoluteLow),
                                             ("absoluteHigh", lift.absoluteHigh), ("relative", lift.relative),
                                             ("relativeLow", lift.relativeLow), ("relativeHigh", lift.relativeHigh),
                                             ("p", lift.p)]
            for (key, value) in pairs {
                #expect(close(value, number(c[key]), rel: 1e-9, abs: 1e-15), "\(t) vs \(k) \(key): \(value) vs \(c[key] ?? "")")
            }
            let ci = Statistics.armCI(treatment)
            #expect(close(ci.low, number(c["treatmentArmLow"]), rel: 1e-9, abs: 1e-15))
            #expect(close(ci.high, number(c["treatmentArmHigh"]), rel: 1e-9, abs: 1e-15))
        }
        #expect(Statistics.rateArm(exposures: 0, conversions: 0).mean.isNaN)
    }

    @Test("Mean arms from sums match numpy's mean and variance of the units, and their lift the same formulas")
    func means() throws {
        let reference = try Reference()
        for c in reference.cases("means") {
            let (t, k) = (numbers(c["treatment"]), numbers(c["control"]))
            let treatment = Statistics.meanArm(n: t[0], sum: t[1], sumOfSquares: t[2])
            let control = Statistics.meanArm(n: k[0], sum: k[1], sumOfSquares: k[2])
            // The variance from sums (Σy² − (Σy)²/n) loses a few digits to cancellation: 1e-9 still holds.
            #expect(close(treatment.mean, number(c["treatmentMean"]), rel: 1e-12))
            #expect(close(treatment.variance, number(c["treatmentVariance"]), rel: 1e-9))
            let lift = Statistics.lift(treatment: treatment, control: control)
            let pairs: [(String, Double)] = [("absolute", lift.absolute), ("absoluteLow", lift.absoluteLow),
                                             ("absoluteHigh", lift.absoluteHigh), ("relative", lift.relative),
                                             ("relativeLow", lift.relativeLow), ("relativeHigh", lift.relativeHigh),
                                             ("p", lift.p)]
            for (key, value) in pairs {
                #expect(close(value, number(c[key]), rel: 1e-8, abs: 1e-13), "\(key): \(value) vs \(c[key] ?? "")")
            }
        }
        let one = Statistics.meanArm(n: 1, sum: 3, sumOfSquares: 9)
        #expect(one.mean == 3 && one.variance.isNaN)
        #expect(Statistics.meanArm(n: 0, sum: 0, sumOfSquares: 0).mean.isNaN)
    }

    @Test("sampleRatioMismatch matches scipy.stats.chisquare against the planned shares")
    func sampleRatioMismatch() throws {
        let reference = try Reference()
        for c in reference.cases("sampleRatioMismatch") {
            let r = Statistics.sampleRatioMismatch(observed: numbers(c["observed"]), plannedShares: numbers(c["plannedShares"]))
            #expect(close(r.chiSquare, number(c["chiSquare"]), rel: 1e-12), "\(c)")
            #expect(r.df == c["df"] as? Int)
            #expect(close(r.p, number(c["p"]), rel: 1e-10, abs: 1e-300), "\(c): \(r.p)")
        }
    }

    @Test("cuped matches the pooled-theta adjustment computed from the raw units with numpy")
    func cuped() throws {
        let reference = try Reference()
        for c in reference.cases("cuped") {
            let sums = (c["sums"] as? [Any] ?? []).map(numbers).map {
                Statistics.CovariateSums(n: $0[0], sumY: $0[1], sumY2: $0[2], sumX: $0[3], sumX2: $0[4], sumXY: $0[5])
            }
            let r = Statistics.cuped(sums)
            #expect(close(r.theta, number(c["theta"]), rel: 1e-9))
            let expected = c["arms"] as? [[String: Any]] ?? []
            #expect(r.arms.count == expected.count)
            for (arm, e) in zip(r.arms, expected) {
                #expect(arm.n == number(e["n"]))
                #expect(close(arm.mean, number(e["mean"]), rel: 1e-9), "mean \(arm.mean) vs \(e["mean"] ?? "")")
                #expect(close(arm.variance, number(e["variance"]), rel: 1e-8), "variance \(arm.variance) vs \(e["variance"] ?? "")")
            }
            // The adjustment reduces the variance when x predicts y.
            for (arm, s) in zip(r.arms, sums) {
                #expect(arm.variance < Statistics.meanArm(n: s.n, sum: s.sumY, sumOfSquares: s.sumY2).variance)
            }
        }
        let constantX = Statistics.cuped([Statistics.CovariateSums(n: 3, sumY: 6, sumY2: 14, sumX: 3, sumX2: 3, sumXY: 6)])
        #expect(constantX.theta == 0 && constantX.arms[0].mean == 2 && constantX.arms[0].variance == 1)
    }

    @Test("The always-valid interval strictly contains the fixed one, shrinks as units accrue and is deterministic")
    func alwaysValid() {
        var previousWidth = Double.infinity
        for n in [100.0, 1_000, 10_000, 100_000, 1_000_000] {
            let treatment = Statistics.rateArm(exposures: n, conversions: (0.105 * n).rounded())
            let control = Statistics.rateArm(exposures: n, conversions: (0.1 * n).rounded())
            let fixed = Statistics.lift(treatment: treatment, control: control)
            let valid = Statistics.alwaysValidLiftCI(treatment: treatment, control: control)
            #expect(valid.low < fixed.absoluteLow && valid.high > fixed.absoluteHigh, "n \(n)")
            #expect(close((valid.low + valid.high) / 2, fixed.absolute, rel: 1e-12))
            let width = valid.high - valid.low
            #expect(width < previousWidth, "n \(n)")
            previousWidth = width
            #expect(Statistics.alwaysValidLiftCI(treatment: treatment, control: control) == valid)
            // A larger level or a mismatched tau² widens it; it still contains the fixed interval.
            let custom = Statistics.alwaysValidLiftCI(treatment: treatment, control: control, level: 0.99, tauSquared: 1e-2)
            #expect(custom.high - custom.low > Statistics.lift(treatment: treatment, control: control, level: 0.99).absoluteHigh
                - Statistics.lift(treatment: treatment, control: control, level: 0.99).absoluteLow)
        }
        let arm = Statistics.Arm(n: 10, mean: 1, variance: 1)
        #expect(Statistics.alwaysValidLiftCI(treatment: arm, control: arm, tauSquared: 0).low.isNaN)
        #expect(Statistics.alwaysValidLiftCI(treatment: arm, control: Statistics.Arm(n: 0, mean: .nan, variance: .nan)).low.isNaN)
    }

    @Test("No function traps on empty, single, constant or tied input")
    func nothingTraps() {
        let inputs: [[Double]] = [[], [1], [2, 2], [3, 3, 3, 3], [1, 1, 2, 2]]
        for t in inputs {
            for b in inputs {
                _ = Statistics.welch(treatment: t, baseline: b)
                _ = Statistics.mannWhitneyU(treatment: t, baseline: b)
                _ = Statistics.permutationTest(treatment: t, baseline: b)
                _ = Statistics.hedgesG(treatment: t, baseline: b)
                if t.count == b.count {
                    _ = Statistics.pairedT(treatment: t, baseline: b)
                    _ = Statistics.wilcoxonSignedRank(treatment: t, baseline: b)
                }
            }
            _ = Statistics.summarize(t)
            _ = Statistics.bootstrapMeanCI(t, resamples: 100)
        }
        let zero = Statistics.Arm(n: 0, mean: .nan, variance: .nan)
        _ = Statistics.lift(treatment: zero, control: zero)
        _ = Statistics.armCI(zero)
        _ = Statistics.cuped([])
        #expect(Statistics.sampleRatioMismatch(observed: [], plannedShares: []).p.isNaN)
        #expect(Statistics.sampleRatioMismatch(observed: [10, 12], plannedShares: [1]).p.isNaN)
        #expect(Statistics.holm([]).isEmpty && Statistics.benjaminiHochberg([]).isEmpty)
    }
}
