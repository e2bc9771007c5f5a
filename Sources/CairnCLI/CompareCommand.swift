import ArgumentParser
import CairnClient
import CairnCore
import Foundation

struct CompareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Say whether one configuration really beats another: groups of runs compared beyond seed noise.",
        discussion: """
            Runs are grouped by --group-by (params or tags), or by configuration: every param except seed-like ones (seed, *_seed, random_state, fold, cairn.seed.*, …; --seed-param replaces the list). Each group is summarized per metric (n, mean, sd, confidence interval; failed, killed and unfinished runs and runs without the metric are counted, not used), then compared with the baseline group: Welch's t-test with a CI of the difference, Mann–Whitney U, a permutation test and Hedges' g — or, when both groups ran the same seeds, the paired t-test and Wilcoxon signed-rank. p-values are corrected over every comparison (Holm, or --correction bh). Each comparison ends in a verdict (better, worse, inconclusive) and warnings that change its meaning: few runs, different data, code or environment between the groups, unequal failure rates, different step counts, a metric still improving.

            Example:

              cairn compare --experiment sweep --group-by params.model --metric val_acc --baseline small
              cairn compare --experiment sweep --metric val_loss --at best --require better --json
            """)

    @OptionGroup var client: ClientOptions
    @Option(name: .customLong("experiment"), help: ArgumentHelp("Experiment name or id; repeatable.", valueName: "name-or-id"))
    var experiments: [String] = []
    @Option(help: ArgumentHelp("Search filter selecting the runs, e.g. \"tags.stage = 'final'\".", valueName: "filter"))
    var filter: String?
    @Option(name: .customLong("group-by"), help: ArgumentHelp("params.<key> or tags.<key>; repeatable (default: by configuration).", valueName: "field"))
    var groupBy: [String] = []
    @Option(name: .customLong("metric"), help: ArgumentHelp("Metric to compare; repeatable.", valueName: "key"))
    var metrics: [String] = []
    @Option(help: ArgumentHelp("Which value of each run: last, best or step=N.", valueName: "at"))
    var at = "last"
    @Option(help: ArgumentHelp("The baseline group: its value of the group-by field, field=value, or its full key (default: the first group).", valueName: "value"))
    var baseline: String?
    @Option(help: ArgumentHelp("Confidence level.", valueName: "level")) var level = 0.95
    @Option(help: ArgumentHelp("Multiple-comparison correction: holm or bh.", valueName: "method")) var correction = "holm"
    @Option(help: ArgumentHelp("Group intervals: t or bootstrap.", valueName: "kind")) var interval = "t"
    @Option(name: .customLong("direction"), help: ArgumentHelp("Override a metric's direction, e.g. val_score:min; repeatable.", valueName: "key:min|max"))
    var directions: [String] = []
    @Option(name: .customLong("seed-param"), help: ArgumentHelp("A seed-like param pattern (* wildcard); repeatable; replaces the default list.", valueName: "pattern"))
    var seedParams: [String] = []
    @Flag(name: .customLong("no-pairing"), help: "Never pair runs by their shared seeds.") var noPairing = false
    @Option(help: ArgumentHelp("Exit 1 unless every comparison is better (better) or none is worse (not-worse).", valueName: "better|not-worse"))
    var require: String?
    @Flag(help: "Print the server's JSON answer.") var json = false

    func validate() throws {
        if metrics.isEmpty { throw ValidationError("Name at least one metric with --metric, e.g. --metric val_acc") }
        if experiments.isEmpty { throw ValidationError("Name the experiment with --experiment (name or id)") }
        if let require, !["better", "not-worse"].contains(require) { throw ValidationError("--require takes better or not-worse, not '\(require)'") }
        if ValueAt(text: at) == nil { throw ValidationError("--at takes last, best or step=N, not '\(at)'") }
    }

    func run() async throws {
        let tracking = client.makeClient()
        let result = try await withClientErrors("Comparing runs") { () async throws -> (StatsComparison, Data) in
            let ids = try await resolveExperiments(experiments, client: tracking)
            var query: [(String, String)] = ids.map { ("experiment_ids", $0) }
            query += metrics.map { ("metrics", $0) } + groupBy.map { ("group_by", $0) } + directions.map { ("direction", $0) } + seedParams.map { ("seed_params", $0) }
            query += [("at", at), ("level", String(level)), ("correction", correction), ("interval", interval), ("pair", noPairing ? "never" : "auto")]
            if let filter { query.append(("filter", filter)) }
            if let baseline { query.append(("baseline", baseline)) }
            let data = try await tracking.callData("GET", "/api/cairn/v1/stats/compare", query: query)
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            return (try decoder.decode(StatsComparison.self, from: data), data)
        }
        if json {
            FileHandle.standardOutput.write(result.1)
            print()
        } else {
            print(Self.render(result.0))
        }
        try Self.enforce(require, verdicts: result.0.comparisons.map { ($0.verdict, "\($0.group) vs \($0.baseline) on \($0.metric)") })
    }

    /// `--require`: exit 1 (after printing) when the verdicts do not meet it.
    static func enforce(_ require: String?, verdicts: [(verdict: String, what: String)]) throws {
        guard let require else { return }
        let failing = verdicts.filter { require == "better" ? $0.verdict != "better" : $0.verdict == "worse" }
        guard failing.isEmpty else {
            let list = failing.map { "\($0.what): \($0.verdict)" }.joined(separator: "; ")
            throw fail("--require \(require) is not met: \(list).")
        }
    }

    static func render(_ r: StatsComparison) -> String {
        let g = r.groups
        var lines: [String] = []
        let percent = "\(stat(g.level * 100, digits: 3))%"
        let grouping = g.groupBy.isEmpty ? "one configuration" : (g.byConfiguration ? "configuration (\(g.groupBy.joined(separator: ", ")))" : g.groupBy.joined(separator: ", "))
        lines.append("\(g.runCount) runs in \(g.groups.count) groups by \(grouping); value: \(g.at); \(percent) intervals.")
        if g.byConfiguration { lines.append("Seed-like params (repeats of one configuration): \(g.seedParams.joined(separator: ", "))") }
        lines.append("")
        var table = TextTable(["GROUP", "METRIC", "N", "MEAN", "SD", "\(percent) CI", "NOT COUNTED"])
        // The baseline first: the rows below read as differences from it.
        for group in g.groups.filter({ $0.key == r.baseline }) + g.groups.filter({ $0.key != r.baseline }) {
            for m in group.metrics {
                let name = group.key == r.baseline ? "\(group.key) (baseline)" : group.key
                table.add([name, m.key, String(m.n), opt(m.mean), opt(m.sd), ciText(m.ciLow, m.ciHigh), excluded(m.excluded)])
            }
        }
        lines.append(table.render())
        lines.append("")
        let by = r.correction == "holm" ? "Holm" : "Benjamini–Hochberg"
        let tested = r.comparisons.filter { $0.p != nil }.count
        lines.append(tested > 1 ? "Against \(r.baseline) (\(by) correction over \(tested) comparisons):" : "Against \(r.baseline):")
        var compare = TextTable(["GROUP", "METRIC", "DIFF", "\(percent) CI", "TEST", "P", "P ADJ", "HEDGES G", "VERDICT"])
        for c in r.comparisons {
            compare.add([c.group, c.metric, c.diff.map { signed($0) } ?? "-", signedInterval(c.ciLow, c.ciHigh), c.paired ? "paired t" : "welch t",
                         c.p.map(pValue) ?? "-", c.pAdjusted.map(pValue) ?? "-", opt(c.hedgesG), c.verdict.uppercased()])
        }
        lines.append(compare.render())
        let warned = r.comparisons.filter { !$0.warnings.isEmpty }
        if !warned.isEmpty {
            lines.append("")
            lines.append("Warnings:")
            for c in warned {
                for w in c.warnings { lines.append("  - \(c.group), \(c.metric): \(w.message)") }
            }
        }
        lines.append("")
        lines.append("Verdict:")
        for c in r.comparisons { lines.append("  \(c.summary)") }
        return lines.joined(separator: "\n")
    }

    static func excluded(_ e: ExcludedRuns) -> String {
        var parts: [String] = []
        if e.failed > 0 { parts.append("\(e.failed) failed") }
        if e.killed > 0 { parts.append("\(e.killed) killed") }
        if e.unfinished > 0 { parts.append("\(e.unfinished) unfinished") }
        if e.missing > 0 { parts.append("\(e.missing) missing") }
        if e.nonfinite > 0 { parts.append("\(e.nonfinite) NaN/inf") }
        return parts.isEmpty ? "-" : parts.joined(separator: ", ")
    }
}

struct ABCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ab",
        abstract: "Online (A/B) experiments: variants logged as runs, analysed like offline ones.",
        subcommands: [ABReportCommand.self])
}

struct ABReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Lift of each variant against the control, with a sample-ratio check and always-valid intervals.",
        discussion: """
            An online experiment is an experiment whose runs are its variants: the control is tagged cairn.control=true, the planned split is the tag cairn.allocation on each variant (default: equal). Each time bucket (the step, e.g. the day) is logged as increments: exposures; for a rate metric M, M.conversions; for a mean, M.sum and M.sum_squares (and M.n); for CUPED, M.pre_sum, M.pre_sum_squares and M.cross_sum.

            The verdict uses the always-valid (sequential) interval, so reading the report every day does not inflate false positives; the fixed-horizon interval and p-value are shown beside it. A split of units far from the plan (chi-square p < 0.001) is flagged: the results are not to be trusted until it is explained.

            Example:

              cairn ab report checkout-button
              cairn ab report 12 --metric purchase --require better --json
            """)

    @OptionGroup var client: ClientOptions
    @Argument(help: ArgumentHelp("The experiment (name or id).", valueName: "experiment")) var experiment: String
    @Option(name: .customLong("metric"), help: ArgumentHelp("Only this metric; repeatable.", valueName: "name")) var metrics: [String] = []
    @Option(help: ArgumentHelp("Confidence level.", valueName: "level")) var level = 0.95
    @Option(help: ArgumentHelp("Exit 1 unless every variant is better (better), or if any is worse or the sample ratio mismatches (not-worse).", valueName: "better|not-worse"))
    var require: String?
    @Flag(help: "Print the server's JSON answer.") var json = false

    func validate() throws {
        if let require, !["better", "not-worse"].contains(require) { throw ValidationError("--require takes better or not-worse, not '\(require)'") }
    }

    func run() async throws {
        let tracking = client.makeClient()
        let result = try await withClientErrors("Reading the online experiment") { () async throws -> (OnlineReport, Data) in
            guard let id = try await resolveExperiments([experiment], client: tracking).first else { throw fail("No experiment '\(experiment)'.") }
            let query = [("experiment_id", id), ("level", String(level))] + metrics.map { ("metrics", $0) }
            let data = try await tracking.callData("GET", "/api/cairn/v1/online/report", query: query)
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            return (try decoder.decode(OnlineReport.self, from: data), data)
        }
        let report = result.0
        if json {
            FileHandle.standardOutput.write(result.1)
            print()
        } else {
            print(Self.render(report))
        }
        if report.sampleRatio.mismatch, require != nil {
            throw fail("--require \(require!) is not met: the sample ratio does not match the planned allocation (p = \(report.sampleRatio.p.map(pValue) ?? "?")).")
        }
        try CompareCommand.enforce(require, verdicts: report.metrics.flatMap { m in m.lifts.map { ($0.verdict, "\($0.variant) on \(m.key)") } })
    }

    static func render(_ r: OnlineReport) -> String {
        var lines: [String] = []
        let percent = "\(stat(r.level * 100, digits: 3))%"
        lines.append("Online experiment \(r.experimentName) (\(r.experimentId)); control: \(r.control)")
        lines.append("")
        var split = TextTable(["VARIANT", "EXPOSURES", "SHARE", "PLANNED"])
        for v in r.variants {
            split.add([v.control ? "\(v.name) (control)" : v.name, stat(v.exposures, digits: 10), v.observedShare.map { percentText($0) } ?? "-", percentText(v.plannedShare)])
        }
        lines.append(split.render())
        let srm = r.sampleRatio
        lines.append(srm.mismatch
            ? "SAMPLE-RATIO MISMATCH: chi-square \(opt(srm.chiSquare)), p \(srm.p.map { $0 < 0.0001 ? "< 0.0001" : "= " + pValue($0) } ?? "-"): the split differs from the plan."
            : "Sample ratio as planned (chi-square p = \(srm.p.map(pValue) ?? "-")).")
        for m in r.metrics {
            lines.append("")
            var title = "\(m.key) (\(m.kind), \(m.direction == .maximize ? "higher is better" : "lower is better"))"
            if let theta = m.cupedTheta {
                title += "; CUPED theta \(stat(theta))" + (m.cupedVarianceReduction.map { ", variance −\(percentText($0))" } ?? "")
            }
            lines.append(title)
            var arms = TextTable(["VARIANT", "N", m.kind == "rate" ? "RATE" : "MEAN", "\(percent) CI"])
            for a in m.arms { arms.add([a.variant, stat(a.n, digits: 10), opt(a.mean), ciText(a.ciLow, a.ciHigh)]) }
            lines.append(arms.render())
            var lifts = TextTable(["VARIANT", "LIFT", "REL", "\(percent) CI", "ALWAYS-VALID CI", "P", "VERDICT"])
            for l in m.lifts {
                lifts.add([l.variant, l.absolute.map { signed($0) } ?? "-", l.relative.map { signed($0 * 100) + "%" } ?? "-",
                           signedInterval(l.absoluteLow, l.absoluteHigh), signedInterval(l.sequentialLow, l.sequentialHigh), l.p.map(pValue) ?? "-", l.verdict.uppercased()])
            }
            lines.append(lifts.render())
        }
        if !r.warnings.isEmpty {
            lines.append("")
            lines.append("Warnings:")
            for w in r.warnings { lines.append("  - \(w.message)") }
        }
        if !r.modelVersions.isEmpty {
            lines.append("")
            lines.append("Model versions tested here: \(r.modelVersions.joined(separator: ", "))")
        }
        lines.append("")
        lines.append("Verdict:")
        for m in r.metrics { for l in m.lifts { lines.append("  \(l.summary)") } }
        return lines.joined(separator: "\n")
    }
}

/// Four significant digits, trailing zeros dropped.
func stat(_ value: Double, digits: Int = 4) -> String {
    guard value.isFinite else { return "\(value)" }
    if value == value.rounded(), abs(value) < 1e12, digits >= 10 { return String(Int64(value)) }
    var text = String(format: "%.\(digits)g", value)
    if !text.contains("e"), text.contains(".") {
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
    }
    return text
}

private func opt(_ value: Double?) -> String { value.map { stat($0) } ?? "-" }
private func signed(_ value: Double) -> String { value > 0 ? "+" + stat(value) : stat(value) }
private func pValue(_ p: Double) -> String { p < 0.0001 ? "<0.0001" : stat(p, digits: 2) }
private func percentText(_ share: Double) -> String { stat(share * 100, digits: 3) + "%" }
private func ciText(_ low: Double?, _ high: Double?) -> String {
    guard let low, let high else { return "-" }
    return "[\(stat(low)), \(stat(high))]"
}
private func signedInterval(_ low: Double?, _ high: Double?) -> String {
    guard let low, let high else { return "-" }
    return "[\(signed(low)), \(signed(high))]"
}
