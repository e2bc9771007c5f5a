// How often CairnCore's Statistics intervals cover the truth, in simulated experiments with a
// known effect. A benchmark, not a test (figures in bench/README.md, "Statistics: coverage
// simulation"):
//
//     swift run -c release cairn-stats-coverage
//
// Deterministic: every draw comes from one SplitMix64 stream with a fixed seed.
import CairnCore
import Foundation

/// SplitMix64 with uniform, normal (Box–Muller) and Bernoulli draws.
struct Generator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }

    mutating func normal(mean: Double, sd: Double) -> Double {
        let u1 = 1 - uniform()  // (0, 1]
        let u2 = uniform()
        return mean + sd * (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// How many of `n` units convert at rate `p`.
    mutating func conversions(_ n: Int, rate p: Double) -> Double {
        var k = 0
        for _ in 0..<n where uniform() < p { k += 1 }
        return Double(k)
    }
}

func percent(_ count: Int, of total: Int) -> String {
    String(format: "%5.1f%%", 100 * Double(count) / Double(total))
}

let experiments = 1_000
var rng = Generator(state: 0xC0FF_EE00_5EED)
let started = Date()

// ---- Offline: seeds per arm, normal noise ----
do {
    let baselineMean = 0.80
    let trueDiff = 0.03
    let sd = 0.05
    var welchCovered = 0
    var bootstrapCovered5 = 0
    var bootstrapCovered30 = 0
    var tCovered5 = 0
    for experiment in 0..<experiments {
        let treatment = (0..<5).map { _ in rng.normal(mean: baselineMean + trueDiff, sd: sd) }
        let baseline = (0..<5).map { _ in rng.normal(mean: baselineMean, sd: sd) }
        let welch = Statistics.welch(treatment: treatment, baseline: baseline)
        if welch.ciLow <= trueDiff && trueDiff <= welch.ciHigh { welchCovered += 1 }
        let boot = Statistics.bootstrapMeanCI(treatment, seed: UInt64(experiment))
        if boot.low <= baselineMean + trueDiff && baselineMean + trueDiff <= boot.high { bootstrapCovered5 += 1 }
        let summary = Statistics.summarize(treatment)
        if summary.ciLow <= baselineMean + trueDiff && baselineMean + trueDiff <= summary.ciHigh { tCovered5 += 1 }
        let thirty = (0..<30).map { _ in rng.normal(mean: baselineMean, sd: sd) }
        let boot30 = Statistics.bootstrapMeanCI(thirty, seed: UInt64(experiment))
        if boot30.low <= baselineMean && baselineMean <= boot30.high { bootstrapCovered30 += 1 }
    }
    print("Offline, \(experiments) experiments, normal noise (sd 0.05), true difference +0.03:")
    print("  95% Welch CI of the difference, 5 seeds per arm:    covers \(percent(welchCovered, of: experiments))")
    print("  95% Student-t CI of one arm's mean, 5 seeds:         covers \(percent(tCovered5, of: experiments))")
    print("  95% percentile bootstrap CI of the mean, 5 seeds:    covers \(percent(bootstrapCovered5, of: experiments))")
    print("  95% percentile bootstrap CI of the mean, 30 seeds:   covers \(percent(bootstrapCovered30, of: experiments))")
}

// ---- Online A/B: daily peeking over 30 days ----
func online(trueRate control: Double, lift: Double, rng: inout Generator) -> (fixedEver: Int, validEver: Int, fixedEnd: Int, relativeEnd: Int,
                                                         validEnd: Int, validContainsFixed: Bool, widthRatio: Double,
                                                         fixedDetects: Int, validDetects: Int) {
    let unitsPerDay = 1_000
    var fixedEver = 0
    var validEver = 0
    var fixedEnd = 0
    var relativeEnd = 0
    var validEnd = 0
    var validContainsFixed = true
    var widthRatioSum = 0.0
    var fixedDetects = 0
    var validDetects = 0
    let treatmentRate = control + lift
    for _ in 0..<experiments {
        var exposures = 0.0
        var conversionsT = 0.0
        var conversionsC = 0.0
        var fixedExcluded = false
        var validExcluded = false
        var validExcludedZero = false
        for day in 1...30 {
            exposures += Double(unitsPerDay)
            conversionsT += rng.conversions(unitsPerDay, rate: treatmentRate)
            conversionsC += rng.conversions(unitsPerDay, rate: control)
            let t = Statistics.rateArm(exposures: exposures, conversions: conversionsT)
            let c = Statistics.rateArm(exposures: exposures, conversions: conversionsC)
            let fixed = Statistics.lift(treatment: t, control: c)
            let valid = Statistics.alwaysValidLiftCI(treatment: t, control: c)
            if !(fixed.absoluteLow <= lift && lift <= fixed.absoluteHigh) { fixedExcluded = true }
            if !(valid.low <= lift && lift <= valid.high) { validExcluded = true }
            if valid.low > 0 || valid.high < 0 { validExcludedZero = true }
            if !(valid.low < fixed.absoluteLow && valid.high > fixed.absoluteHigh) { validContainsFixed = false }
            if day == 30 {
                if fixed.absoluteLow <= lift && lift <= fixed.absoluteHigh { fixedEnd += 1 }
                let trueRelative = treatmentRate / control - 1
                if fixed.relativeLow <= trueRelative && trueRelative <= fixed.relativeHigh { relativeEnd += 1 }
                if valid.low <= lift && lift <= valid.high { validEnd += 1 }
                widthRatioSum += (valid.high - valid.low) / (fixed.absoluteHigh - fixed.absoluteLow)
                if fixed.absoluteLow > 0 || fixed.absoluteHigh < 0 { fixedDetects += 1 }
            }
        }
        if fixedExcluded { fixedEver += 1 }
        if validExcluded { validEver += 1 }
        if validExcludedZero { validDetects += 1 }
    }
    return (fixedEver, validEver, fixedEnd, relativeEnd, validEnd, validContainsFixed,
            widthRatioSum / Double(experiments), fixedDetects, validDetects)
}

for (lift, label) in [(0.0, "null (true lift 0)"), (0.005, "true lift +0.005 (+5% relative)")] {
    let r = online(trueRate: 0.10, lift: lift, rng: &rng)
    print("Online A/B, \(experiments) experiments, conversion 10%, 1,000 units per arm per day, 30 daily looks, \(label):")
    print("  fixed-horizon 95% CI excluded the true lift on ANY day:  \(percent(r.fixedEver, of: experiments))")
    print("  always-valid 95% CI (mSPRT) excluded it on ANY day:      \(percent(r.validEver, of: experiments))")
    print("  coverage at day 30: absolute lift CI \(percent(r.fixedEnd, of: experiments)), relative lift CI "
        + "\(percent(r.relativeEnd, of: experiments)), always-valid CI \(percent(r.validEnd, of: experiments))")
    print("  always-valid CI strictly contained the fixed CI on every look: \(r.validContainsFixed); "
        + String(format: "at day 30 it is %.2f× as wide", r.widthRatio))
    print("  lift ≠ 0 declared: fixed CI at day 30 \(percent(r.fixedDetects, of: experiments)), "
        + "always-valid CI on any day \(percent(r.validDetects, of: experiments))")
}
print(String(format: "(%.1f s)", Date().timeIntervalSince(started)))
