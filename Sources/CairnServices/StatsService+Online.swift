import CairnCore
import CairnStore
import Foundation

/// Online (A/B) experiments, tracked like offline ones: an experiment whose runs are the
/// variants, logged through the same API.
///
/// - A variant is a run; its name is the run tag `cairn.variant`, else the run name. The
///   control is the run tagged `cairn.control=true` (else the variant named `control`).
/// - The planned allocation is the run tag `cairn.allocation` (a share or a weight; default:
///   equal shares).
/// - Data arrive per time bucket as metric points whose step is the bucket (a day number, an
///   hour…), each point the bucket's increment: `exposures` (units exposed); for a rate metric
///   M, `M.conversions`; for a continuous metric M, `M.sum` and `M.sum_squares` (and `M.n` when
///   not every exposed unit has a value); for CUPED, a pre-experiment covariate per unit:
///   `M.pre_sum`, `M.pre_sum_squares` and `M.cross_sum` (Σ x·y). A bucket logged twice counts
///   once (its last value), so a retried upload does not double it.
/// - A model version links to the experiment that tested it with the version tag
///   `cairn.online.experiment_id`.
extension StatsService {
    public static let variantTag = "cairn.variant"
    public static let controlTag = "cairn.control"
    public static let allocationTag = "cairn.allocation"
    public static let onlineExperimentTag = "cairn.online.experiment_id"
    /// A sample-ratio mismatch is flagged below this p-value (the usual threshold: a real split
    /// this far from plan is almost always a bug in assignment or logging).
    public static let sampleRatioThreshold = 0.001
    /// The cumulative timeline keeps at most this many buckets (evenly spread, the last always in).
    public static let maxTimelinePoints = 400

    struct VariantData {
        var row: RunRow
        var name: String
        var control: Bool
        var weight: Double
        /// key → step → the bucket's value.
        var series: [String: [Int64: Double]]
    }

    enum OnlineMetricKind {
        case rate
        case mean(hasN: Bool)
    }

    public func onlineReport(experimentID: String, metrics requested: [String], level: Double?) async throws -> OnlineReport {
        let level = level ?? 0.95
        guard level > 0.5, level < 1 else {
            throw CairnError.invalidParameter("level must be between 0.5 and 1 (e.g. 0.95 for 95% intervals), got \(level).")
        }
        let experiment = try await tracking.getExperiment(id: experimentID)
        let search = try explorer.makeSearch(experimentIDs: [experimentID], filter: nil, orderBy: [], viewType: .activeOnly)
        let (rows, _) = try await explorer.store.runRows(search)
        guard rows.count >= 2 else {
            throw CairnError.invalidParameter("Experiment '\(experiment.name)' has \(rows.count) run\(rows.count == 1 ? "" : "s"); an online experiment needs one run per variant (a control and at least one more).")
        }
        var variants: [VariantData] = []
        for row in rows {
            let tags = Dictionary(row.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
            let name = tags[Self.variantTag].flatMap { $0.isEmpty ? nil : $0 } ?? row.info.runName
            var weight = 1.0
            if let text = tags[Self.allocationTag] {
                guard let value = Double(text.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "%", with: "")), value.isFinite, value > 0 else {
                    throw CairnError.invalidParameter("Run \(row.info.runID) (\(name)) has \(Self.allocationTag)='\(text)'; it must be a positive number (a share such as 0.5 or a weight such as 50).")
                }
                weight = value
            }
            variants.append(VariantData(row: row, name: name, control: tags[Self.controlTag]?.lowercased() == "true", weight: weight, series: [:]))
        }
        if !variants.contains(where: \.control), let index = variants.firstIndex(where: { $0.name.lowercased() == "control" }) {
            variants[index].control = true
        }
        let controls = variants.filter(\.control)
        guard controls.count == 1 else {
            throw CairnError.invalidParameter(controls.isEmpty
                ? "No control variant in experiment '\(experiment.name)'. Tag the control run with \(Self.controlTag)=true (or name its variant 'control')."
                : "\(controls.count) runs are tagged \(Self.controlTag)=true (\(controls.map(\.name).joined(separator: ", "))); exactly one variant is the control.")
        }
        // The control first, then the variants by name: the same order on every read.
        variants.sort { a, b in a.control != b.control ? a.control : a.name.localizedStandardCompare(b.name) == .orderedAscending }
        var names = Set<String>()
        for v in variants where !names.insert(v.name).inserted {
            throw CairnError.invalidParameter("Two runs share the variant name '\(v.name)'. Give each variant its own run name or \(Self.variantTag) tag.")
        }

        // Which metrics the variants logged, and of which kind.
        var keys = Set<String>()
        for v in variants { for m in v.row.metrics { keys.insert(m.key) } }
        guard keys.contains("exposures") else {
            throw CairnError.invalidParameter("No variant logged 'exposures'. Log the units exposed per time bucket as the metric 'exposures' (step = the bucket).")
        }
        var kinds: [(String, OnlineMetricKind)] = []
        for key in keys.sorted() {
            if key.hasSuffix(".conversions") { kinds.append((String(key.dropLast(".conversions".count)), .rate)) }
            if key.hasSuffix(".sum") {
                let name = String(key.dropLast(".sum".count))
                if keys.contains(name + ".sum_squares") { kinds.append((name, .mean(hasN: keys.contains(name + ".n")))) }
            }
        }
        if !requested.isEmpty {
            for name in requested where !kinds.contains(where: { $0.0 == name }) {
                throw CairnError.invalidParameter("No variant logged metric '\(name)' as '\(name).conversions' or '\(name).sum' + '\(name).sum_squares'. Known: \(kinds.map(\.0).joined(separator: ", ")).")
            }
            kinds = kinds.filter { requested.contains($0.0) }
        }
        var needed: Set<String> = ["exposures"]
        for (name, kind) in kinds {
            switch kind {
            case .rate: needed.insert(name + ".conversions")
            case .mean(let hasN):
                needed.formUnion([name + ".sum", name + ".sum_squares"])
                if hasN { needed.insert(name + ".n") }
            }
            for suffix in [".pre_sum", ".pre_sum_squares", ".cross_sum"] where keys.contains(name + suffix) { needed.insert(name + suffix) }
        }
        for i in variants.indices {
            for key in needed where variants[i].row.metrics.contains(where: { $0.key == key }) {
                let points = try await tracking.store.metricHistory(runID: variants[i].row.info.runID, key: key)
                var byStep: [Int64: (timestamp: Int64, value: Double)] = [:]
                for p in points where p.value.isFinite {
                    if let seen = byStep[p.step], seen.timestamp > p.timestamp { continue }
                    byStep[p.step] = (p.timestamp, p.value)
                }
                variants[i].series[key] = byStep.mapValues(\.value)
            }
        }

        let totalWeight = variants.map(\.weight).reduce(0, +)
        var variantReports = variants.map { v in
            OnlineVariant(runId: v.row.info.runID, name: v.name, control: v.control, plannedShare: v.weight / totalWeight,
                          exposures: (v.series["exposures"] ?? [:]).values.reduce(0, +))
        }
        let totalExposures = variantReports.map(\.exposures).reduce(0, +)
        for i in variantReports.indices where totalExposures > 0 { variantReports[i].observedShare = variantReports[i].exposures / totalExposures }
        var warnings: [StatsWarning] = []
        let srm = Statistics.sampleRatioMismatch(observed: variantReports.map(\.exposures), plannedShares: variantReports.map(\.plannedShare))
        let srmCheck = SampleRatioCheck(chiSquare: finite(srm.chiSquare), df: srm.df, p: finite(srm.p), mismatch: (srm.p.isFinite && srm.p < Self.sampleRatioThreshold))
        if srmCheck.mismatch {
            let split = variantReports.map { "\($0.name) \(Self.format(($0.observedShare ?? 0) * 100, digits: 3))% (planned \(Self.format($0.plannedShare * 100, digits: 3))%)" }
            warnings.append(StatsWarning(code: "sample_ratio_mismatch", message: "Sample-ratio mismatch: units were split \(split.joined(separator: ", ")); "
                + "chi-square \(Self.pPhrase(srm.p)) (below \(Self.sampleRatioThreshold)). Assignment or logging is broken, so no lift below can be trusted until it is found."))
        }
        for v in variantReports where v.exposures == 0 {
            warnings.append(StatsWarning(code: "no_exposures", message: "Variant \(v.name) has no exposures yet."))
        }

        let control = variants.firstIndex(where: \.control)!
        var steps = Set<Int64>()
        for v in variants { for s in v.series.values { steps.formUnion(s.keys) } }
        var timelineSteps = steps.sorted()
        if timelineSteps.count > Self.maxTimelinePoints {
            let last = timelineSteps.count - 1
            timelineSteps = (0..<Self.maxTimelinePoints).map { timelineSteps[$0 * last / (Self.maxTimelinePoints - 1)] }
        }
        var reports: [OnlineMetricReport] = []
        for (name, kind) in kinds {
            let direction = MetricDirection.inferred(from: name)
            var report = OnlineMetricReport(key: name, kind: { if case .rate = kind { return "rate" } else { return "mean" } }(), direction: direction)
            let hasCovariate = variants.allSatisfy { v in [".pre_sum", ".pre_sum_squares", ".cross_sum"].allSatisfy { v.series[name + $0] != nil } }
            func arms(through step: Int64?) -> (arms: [Statistics.Arm], theta: Double?, raw: [Statistics.Arm]) {
                func total(_ v: VariantData, _ key: String) -> Double {
                    (v.series[key] ?? [:]).reduce(0) { sum, item in step == nil || item.key <= step! ? sum + item.value : sum }
                }
                var raw: [Statistics.Arm] = []
                var sums: [Statistics.CovariateSums] = []
                for v in variants {
                    let exposures = total(v, "exposures")
                    switch kind {
                    case .rate:
                        let conversions = total(v, name + ".conversions")
                        raw.append(Statistics.rateArm(exposures: exposures, conversions: conversions))
                        sums.append(Statistics.CovariateSums(n: exposures, sumY: conversions, sumY2: conversions,
                                                             sumX: total(v, name + ".pre_sum"), sumX2: total(v, name + ".pre_sum_squares"), sumXY: total(v, name + ".cross_sum")))
                    case .mean(let hasN):
                        let n = hasN ? total(v, name + ".n") : exposures
                        let sum = total(v, name + ".sum"), squares = total(v, name + ".sum_squares")
                        raw.append(Statistics.meanArm(n: n, sum: sum, sumOfSquares: squares))
                        sums.append(Statistics.CovariateSums(n: n, sumY: sum, sumY2: squares,
                                                             sumX: total(v, name + ".pre_sum"), sumX2: total(v, name + ".pre_sum_squares"), sumXY: total(v, name + ".cross_sum")))
                    }
                }
                guard hasCovariate else { return (raw, nil, raw) }
                let adjusted = Statistics.cuped(sums)
                return adjusted.theta.isFinite ? (adjusted.arms, adjusted.theta, raw) : (raw, nil, raw)
            }
            let final = arms(through: nil)
            if let theta = final.theta {
                report.cupedTheta = theta
                let before = final.raw[control].variance, after = final.arms[control].variance
                if before > 0 { report.cupedVarianceReduction = finite(1 - after / before) }
            }
            for (v, arm) in zip(variants, final.arms) {
                let ci = Statistics.armCI(arm, level: level)
                report.arms.append(OnlineArmResult(variant: v.name, n: arm.n, mean: finite(arm.mean), ciLow: finite(ci.low), ciHigh: finite(ci.high)))
            }
            for (index, v) in variants.enumerated() where index != control {
                report.lifts.append(onlineLift(variant: v.name, control: variants[control].name, metric: name, direction: direction,
                                               treatment: final.arms[index], controlArm: final.arms[control], level: level, srm: srmCheck.mismatch))
            }
            for step in timelineSteps {
                let at = arms(through: step)
                for (index, v) in variants.enumerated() where index != control {
                    var point = OnlineTimelinePoint(step: step, variant: v.name)
                    if at.arms[index].n > 1, at.arms[control].n > 1 {
                        let lift = Statistics.lift(treatment: at.arms[index], control: at.arms[control], level: level)
                        let sequential = Statistics.alwaysValidLiftCI(treatment: at.arms[index], control: at.arms[control], level: level)
                        point.lift = finite(lift.absolute)
                        point.low = finite(lift.absoluteLow)
                        point.high = finite(lift.absoluteHigh)
                        point.sequentialLow = finite(sequential.low)
                        point.sequentialHigh = finite(sequential.high)
                    }
                    report.timeline.append(point)
                }
            }
            reports.append(report)
        }
        let linked = try await linkedModelVersions(experimentID: experimentID)
        return OnlineReport(experimentId: experimentID, experimentName: experiment.name, level: level, control: variants[control].name,
                            variants: variantReports, sampleRatio: srmCheck, metrics: reports, warnings: warnings, modelVersions: linked)
    }

    func onlineLift(variant: String, control: String, metric: String, direction: MetricDirection, treatment: Statistics.Arm, controlArm: Statistics.Arm,
                    level: Double, srm: Bool) -> OnlineLift {
        var out = OnlineLift(variant: variant, verdict: "inconclusive", summary: "")
        guard treatment.n > 1, controlArm.n > 1 else {
            out.summary = "Inconclusive: \(variant) or \(control) has fewer than 2 units on \(metric)."
            return out
        }
        let lift = Statistics.lift(treatment: treatment, control: controlArm, level: level)
        let sequential = Statistics.alwaysValidLiftCI(treatment: treatment, control: controlArm, level: level)
        out.absolute = finite(lift.absolute)
        out.absoluteLow = finite(lift.absoluteLow)
        out.absoluteHigh = finite(lift.absoluteHigh)
        out.relative = finite(lift.relative)
        out.relativeLow = finite(lift.relativeLow)
        out.relativeHigh = finite(lift.relativeHigh)
        out.p = finite(lift.p)
        out.sequentialLow = finite(sequential.low)
        out.sequentialHigh = finite(sequential.high)
        let percent = "\(Self.format(level * 100, digits: 3))%"
        let relative = lift.relative.isFinite ? " (\(Self.signed(lift.relative * 100))%)" : ""
        let intervals = "\(percent) always-valid CI \(Self.signed(sequential.low)) to \(Self.signed(sequential.high)); "
            + "fixed-horizon CI \(Self.signed(lift.absoluteLow)) to \(Self.signed(lift.absoluteHigh)), \(Self.pPhrase(lift.p))"
        let caveat = srm ? " Not trustworthy: the sample ratio does not match the plan." : ""
        if sequential.low > 0 || sequential.high < 0 {
            let up = sequential.low > 0
            let better = (direction == .maximize) == up
            out.verdict = better ? "better" : "worse"
            out.summary = "\(better ? "Better" : "Worse"): \(variant) changes \(metric) by \(Self.signed(lift.absolute))\(relative) against \(control) (\(intervals)).\(caveat)"
        } else {
            out.summary = "Inconclusive: \(variant) changes \(metric) by \(Self.signed(lift.absolute))\(relative) against \(control), "
                + "but the always-valid interval includes 0 (\(intervals)). Keep the experiment running or accept no detectable effect.\(caveat)"
        }
        return out
    }

    /// `name/version` of the model versions tagged with this experiment's id.
    func linkedModelVersions(experimentID: String) async throws -> [String] {
        guard let registry else { return [] }
        let escaped = experimentID.replacingOccurrences(of: "'", with: "''")
        let page = try await registry.searchModelVersions(filter: "tags.`\(Self.onlineExperimentTag)` = '\(escaped)'", maxResults: 1000, orderBy: [], pageToken: nil)
        return page.items.map { "\($0.name)/\($0.version)" }
    }
}
