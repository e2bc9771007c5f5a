import ArgumentParser
import CairnClient
import CairnCore
import Foundation

/// What differs between two runs, computed from values (no I/O) so it can be tested.
struct RunComparison {
    struct Change: Equatable {
        var key: String
        var a: String?
        var b: String?
    }

    struct MetricDelta: Equatable {
        var key: String
        var a: Double?
        var b: Double?
    }

    var params: [Change] = []
    var seeds: [Change] = []
    var code: [Change] = []
    /// Whether the recorded uncommitted diffs differ (nil: not known).
    var sourceDiffDiffers: Bool?
    var packages: [Change] = []
    var environment: [Change] = []
    var data: [Change] = []
    var hardware: [Change] = []
    var tags: [Change] = []
    var metrics: [MetricDelta] = []

    /// The kinds of difference that could explain different results, in reading order.
    var explanations: [String] {
        var result: [String] = []
        // The branch and remote name where the code came from; the commit, the uncommitted
        // changes and the command are what ran.
        let significant: Set<String> = ["cairn.git.commit", "cairn.git.dirty", "cairn.command"]
        if code.contains(where: { significant.contains($0.key) }) || sourceDiffDiffers == true { result.append("code") }
        if !params.isEmpty { result.append("params (\(params.count))") }
        if !seeds.isEmpty { result.append("seeds") }
        if !data.isEmpty { result.append("data (\(data.count))") }
        if !packages.isEmpty { result.append("packages (\(packages.count))") }
        if !environment.isEmpty { result.append("environment variables (\(environment.count))") }
        if !hardware.isEmpty { result.append("hardware") }
        return result
    }

    var verdict: String {
        let reasons = explanations
        return reasons.isEmpty ? "Verdict: equivalent setup (same code, params, seeds, data, packages and hardware)."
            : "Verdict: different setup — \(reasons.joined(separator: ", ")) could explain different results."
    }

    static func changes(_ a: [String: String], _ b: [String: String]) -> [Change] {
        Set(a.keys).union(b.keys).sorted().compactMap { key in a[key] == b[key] ? nil : Change(key: key, a: a[key], b: b[key]) }
    }

    /// `name==version` lines of pip freeze (or lock files) → name → version.
    static func packages(_ freeze: String?) -> [String: String] {
        guard let freeze else { return [:] }
        var result: [String: String] = [:]
        for line in freeze.split(separator: "\n") {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty || text.hasPrefix("#") { continue }
            if let range = text.range(of: "==") {
                result[text[..<range.lowerBound].lowercased()] = String(text[range.upperBound...])
            } else if let range = text.range(of: " @ ") {
                result[text[..<range.lowerBound].lowercased()] = String(text[range.upperBound...])
            } else {
                result[text.lowercased()] = ""
            }
        }
        return result
    }

    static func compare(_ a: Run, _ b: Run, freezeA: String?, freezeB: String?, sourceDiffA: String?, sourceDiffB: String?) -> RunComparison {
        var result = RunComparison()
        let ta = a.tagMap, tb = b.tagMap
        let pa = a.paramMap, pb = b.paramMap
        func isSeed(_ key: String) -> Bool { key.hasPrefix("cairn.seed.") || key == "seed" }
        result.params = changes(pa.filter { !isSeed($0.key) }, pb.filter { !isSeed($0.key) })
        result.seeds = changes(pa.filter { isSeed($0.key) }, pb.filter { isSeed($0.key) })
        func pick(_ tags: [String: String], _ keys: [String]) -> [String: String] { tags.filter { keys.contains($0.key) } }
        let codeKeys = ["cairn.git.commit", "cairn.git.branch", "cairn.git.remote", "cairn.git.dirty", "cairn.command"]
        let commitA = ta["cairn.git.commit"] ?? ta["mlflow.source.git.commit"], commitB = tb["cairn.git.commit"] ?? tb["mlflow.source.git.commit"]
        var codeA = pick(ta, codeKeys), codeB = pick(tb, codeKeys)
        codeA["cairn.git.commit"] = commitA
        codeB["cairn.git.commit"] = commitB
        result.code = changes(codeA, codeB)
        if sourceDiffA != nil || sourceDiffB != nil { result.sourceDiffDiffers = (sourceDiffA ?? "") != (sourceDiffB ?? "") }
        if freezeA != nil || freezeB != nil { result.packages = changes(packages(freezeA), packages(freezeB)) }
        let versionKeys = ["cairn.python.version", "cairn.swift.version"]
        func versions(_ tags: [String: String]) -> [String: String] { tags.filter { versionKeys.contains($0.key) || $0.key.hasPrefix("cairn.lock.") } }
        result.packages = changes(versions(ta), versions(tb)) + result.packages
        // Variables that vary by session without changing results are left out.
        let volatile: Set<String> = ["cairn.env.MLFLOW_RUN_ID", "cairn.env.MLFLOW_EXPERIMENT_ID", "cairn.env.HOSTNAME", "cairn.env.MLFLOW_TRACKING_URI"]
        func env(_ tags: [String: String]) -> [String: String] {
            tags.filter { $0.key.hasPrefix("cairn.env.") && !volatile.contains($0.key) && !$0.key.uppercased().contains("SEED") }
        }
        result.environment = changes(env(ta), env(tb))
        func datasets(_ run: Run) -> [String: String] {
            Dictionary(run.inputs.map { ($0.dataset.name, $0.dataset.digest) }, uniquingKeysWith: { x, y in x == y ? x : x + "," + y })
        }
        result.data = changes(datasets(a), datasets(b))
        result.hardware = changes(ta.filter { $0.key.hasPrefix("cairn.host.") }, tb.filter { $0.key.hasPrefix("cairn.host.") })
        let shown = Set(codeKeys + versionKeys + ["cairn.git.root", "cairn.cwd", "cairn.exit_code", journalMarkerTag, "mlflow.runName",
                                                  "mlflow.source.git.commit", "mlflow.source.git.branch", "mlflow.source.git.repoURL",
                                                  "cairn.reproduce.of", "cairn.reproduce.status"])
        func other(_ tags: [String: String]) -> [String: String] {
            tags.filter { !shown.contains($0.key) && !$0.key.hasPrefix("cairn.env.") && !$0.key.hasPrefix("cairn.host.")
                && !$0.key.hasPrefix("cairn.lock.") && !$0.key.hasPrefix("mlflow.log-model") }
        }
        result.tags = changes(other(ta), other(tb))
        let ma = a.metricMap, mb = b.metricMap
        result.metrics = Set(ma.keys).union(mb.keys).sorted().map { MetricDelta(key: $0, a: ma[$0], b: mb[$0]) }
        return result
    }

    func render(runA: String, runB: String) -> String {
        var lines: [String] = ["Comparing run A \(runA) with run B \(runB)"]
        func section(_ title: String, _ changes: [Change]) {
            guard !changes.isEmpty else { return }
            lines.append("\n\(title)")
            var table = TextTable(["KEY", "A", "B"])
            for change in changes { table.add([change.key, clip(change.a ?? "(absent)"), clip(change.b ?? "(absent)")]) }
            lines.append(indent(table.render()))
        }
        section("Code", code)
        if let differs = sourceDiffDiffers {
            lines.append(differs ? "  uncommitted changes (cairn/git.diff) differ" : "  uncommitted changes (cairn/git.diff) are identical")
        }
        section("Params", params)
        section("Seeds", seeds)
        section("Data", data)
        section("Packages", packages)
        section("Environment variables", environment)
        section("Hardware", hardware)
        section("Other tags", tags)
        if !metrics.isEmpty {
            lines.append("\nMetrics (latest values)")
            var table = TextTable(["KEY", "A", "B", "DELTA", "REL"])
            for m in metrics {
                var delta = "-", rel = "-"
                if let a = m.a, let b = m.b {
                    delta = formatNumber(b - a)
                    if a != 0 { rel = String(format: "%+.2f%%", 100 * (b - a) / abs(a)) }
                }
                table.add([m.key, m.a.map(formatNumber) ?? "(absent)", m.b.map(formatNumber) ?? "(absent)", delta, rel])
            }
            lines.append(indent(table.render()))
        }
        lines.append("")
        lines.append(verdict)
        return lines.joined(separator: "\n")
    }

    private func clip(_ text: String) -> String {
        let flat = text.replacingOccurrences(of: "\n", with: " ")
        return flat.count > 60 ? String(flat.prefix(57)) + "..." : flat
    }
}

struct DiffCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Show what differs between two runs and whether their setups are equivalent.",
        discussion: """
            Compares params, seeds, code (commit, branch, dirty flag, the recorded uncommitted diff, and `git diff --stat` between the commits when this repository has both), data digests, packages (pip freeze: added, removed, changed), environment variables, hardware and other tags, then the latest metric values with their deltas. The last line is the verdict.

            Example:

              cairn diff 0123456789abcdef0123456789abcdef fedcba9876543210fedcba9876543210
            """)

    @OptionGroup var client: ClientOptions
    @Argument(help: ArgumentHelp("The first run id.", valueName: "run-a")) var runA: String
    @Argument(help: ArgumentHelp("The second run id.", valueName: "run-b")) var runB: String
    @Flag(help: "Print the differences as JSON.") var json = false

    func run() async throws {
        let tracking = client.makeClient()
        let a = try await withClientErrors("Reading run \(runA)") { try await tracking.getRun(id: runA) }
        let b = try await withClientErrors("Reading run \(runB)") { try await tracking.getRun(id: runB) }
        async let freezeA = optionalText(tracking, a, "cairn/pip-freeze.txt")
        async let freezeB = optionalText(tracking, b, "cairn/pip-freeze.txt")
        async let diffA = optionalText(tracking, a, "cairn/git.diff")
        async let diffB = optionalText(tracking, b, "cairn/git.diff")
        let comparison = RunComparison.compare(a, b, freezeA: await freezeA, freezeB: await freezeB, sourceDiffA: await diffA, sourceDiffB: await diffB)
        if json {
            func changes(_ list: [RunComparison.Change]) -> [[String: Any]] {
                list.map { ["key": $0.key, "a": $0.a ?? NSNull(), "b": $0.b ?? NSNull()] }
            }
            printJSON([
                "run_a": runA, "run_b": runB,
                "code": changes(comparison.code), "source_diff_differs": comparison.sourceDiffDiffers ?? NSNull(),
                "params": changes(comparison.params), "seeds": changes(comparison.seeds), "data": changes(comparison.data),
                "packages": changes(comparison.packages), "environment": changes(comparison.environment),
                "hardware": changes(comparison.hardware), "tags": changes(comparison.tags),
                "metrics": comparison.metrics.map { ["key": $0.key, "a": $0.a.map(jsonNumber) ?? NSNull(), "b": $0.b.map(jsonNumber) ?? NSNull()] as [String: Any] },
                "equivalent_setup": comparison.explanations.isEmpty, "differences": comparison.explanations,
            ])
            return
        }
        var text = comparison.render(runA: runA, runB: runB)
        let ta = a.tagMap, tb = b.tagMap
        if let ca = ta["cairn.git.commit"], let cb = tb["cairn.git.commit"], ca != cb,
           let stat = captureText(["git", "diff", "--stat", ca, cb]), !stat.isEmpty {
            text = text.replacingOccurrences(of: "\nCode\n", with: "\nCode (git diff --stat A B in this repository)\n" + indent(stat) + "\n")
        }
        print(text)
    }

    private func optionalText(_ client: TrackingClient, _ run: Run, _ path: String) async -> String? {
        guard let data = try? await client.downloadArtifact(artifactURI: run.info.artifactURI, path: path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
