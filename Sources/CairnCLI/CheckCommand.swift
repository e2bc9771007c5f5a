import ArgumentParser
import CairnClient
import CairnCore
import Foundation

/// One requirement of `cairn check` and whether a run meets it.
struct CheckFinding: Equatable {
    var requirement: String
    var passed: Bool
    var detail: String
}

/// The judgement of `cairn check`, separate from I/O so it can be tested on values.
enum RunChecks {
    static let requirementNames = ["code", "data", "env", "seed", "finished"]

    static func evaluate(run: Run, artifacts: [String], requirements: [String], metricGates: [MetricGate], artifactPaths: [String]) -> [CheckFinding] {
        let tags = run.tagMap
        var findings: [CheckFinding] = []
        for requirement in requirements {
            switch requirement {
            case "code":
                let commit = tags["cairn.git.commit"] ?? tags["mlflow.source.git.commit"]
                findings.append(CheckFinding(requirement: "code", passed: commit != nil,
                    detail: commit.map { "git commit \($0.prefix(12))" + (tags["cairn.git.dirty"] == "true" ? " plus an uncommitted diff" : "") }
                        ?? "no git commit recorded; run it with `cairn run` inside a git repository"))
            case "data":
                findings.append(CheckFinding(requirement: "data", passed: !run.inputs.isEmpty,
                    detail: run.inputs.isEmpty ? "no dataset input recorded; pass --input PATH to `cairn run` (or call mlflow.log_input)"
                        : run.inputs.map { "\($0.dataset.name) \($0.dataset.digest)" }.joined(separator: ", ")))
            case "env":
                let hasHost = tags["cairn.host.os"] != nil
                let isPython = tags["cairn.python.version"] != nil
                let hasPackages = !isPython || artifacts.contains("cairn/pip-freeze.txt") || artifacts.contains { $0.hasPrefix("cairn/lock/") }
                let passed = hasHost && hasPackages
                findings.append(CheckFinding(requirement: "env", passed: passed,
                    detail: passed ? "environment recorded (\(tags["cairn.host.os"] ?? "?")\(isPython ? ", \(tags["cairn.python.version"]!) with package list" : ""))"
                        : (hasHost ? "Python run without a package list (cairn/pip-freeze.txt); do not pass --no-pip-freeze"
                                   : "no environment recorded; run the command with `cairn run`")))
            case "seed":
                let seeds = run.params.filter { $0.key.hasPrefix("cairn.seed.") || $0.key == "seed" }
                findings.append(CheckFinding(requirement: "seed", passed: !seeds.isEmpty,
                    detail: seeds.isEmpty ? "no seed recorded; pass --seed N to `cairn run` or give the command a --seed flag"
                        : seeds.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")))
            case "finished":
                findings.append(CheckFinding(requirement: "finished", passed: run.info.status == .finished,
                    detail: "status \(run.info.status.rawValue)" + (run.info.status == .finished ? "" : "; only FINISHED runs pass")))
            default:
                findings.append(CheckFinding(requirement: requirement, passed: false, detail: "unknown requirement"))
            }
        }
        let metrics = run.metricMap
        for gate in metricGates {
            if let value = metrics[gate.key] {
                let passed = gate.holds(for: value)
                findings.append(CheckFinding(requirement: "metric \(gate.text)", passed: passed, detail: "\(gate.key) = \(formatNumber(value))"))
            } else {
                findings.append(CheckFinding(requirement: "metric \(gate.text)", passed: false, detail: "the run has no metric '\(gate.key)'"))
            }
        }
        for path in artifactPaths {
            let folder = path.hasSuffix("/") ? path : path + "/"
            let found = artifacts.contains { $0 == path || $0.hasPrefix(folder) }
            findings.append(CheckFinding(requirement: "artifact \(path)", passed: found, detail: found ? "present" : "no artifact at '\(path)'"))
        }
        return findings
    }
}

/// `val_acc>=0.9`: a metric, a comparison and a number.
struct MetricGate: Equatable {
    var key: String
    var op: String
    var threshold: Double
    var text: String

    static func parse(_ text: String) -> MetricGate? {
        for op in [">=", "<=", "==", "!=", ">", "<", "="] {
            if let range = text.range(of: op) {
                let key = text[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
                let number = text[range.upperBound...].trimmingCharacters(in: .whitespaces)
                guard !key.isEmpty, let value = Double(number) else { return nil }
                return MetricGate(key: key.hasPrefix("metrics.") ? String(key.dropFirst(8)) : key, op: op == "=" ? "==" : op, threshold: value, text: text)
            }
        }
        return nil
    }

    func holds(for value: Double) -> Bool {
        switch op {
        case ">=": return value >= threshold
        case "<=": return value <= threshold
        case ">": return value > threshold
        case "<": return value < threshold
        case "==": return value == threshold
        case "!=": return value != threshold
        default: return false
        }
    }
}

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Exit 0 if a run meets the requirements, 1 with one line per failure (for CI gates).",
        discussion: """
            Requirements (--require, comma-separated): code (a git commit), data (a dataset input), env (host and, for Python, the package list), seed (a cairn.seed.* or seed param), finished (status FINISHED). With no --require, --metric or --artifact, all five are checked.

            Example:

              cairn check 0123456789abcdef0123456789abcdef --require code,data,env,seed --metric 'val_acc>=0.9' --artifact model/
            """)

    @OptionGroup var client: ClientOptions
    @Argument(help: ArgumentHelp("The run id.", valueName: "run-id")) var runID: String
    @Option(help: ArgumentHelp("Comma-separated: code, data, env, seed, finished.", valueName: "list")) var require: String?
    @Option(name: .customLong("metric"), help: ArgumentHelp("A gate on the latest metric value, e.g. 'val_acc>=0.9'; repeatable.", valueName: "gate"))
    var metrics: [String] = []
    @Option(name: .customLong("artifact"), help: ArgumentHelp("An artifact file, or a folder ending in /, that must exist; repeatable.", valueName: "path"))
    var artifacts: [String] = []
    @Flag(help: "Print every finding as JSON.") var json = false

    func validate() throws {
        for gate in metrics where MetricGate.parse(gate) == nil {
            throw ValidationError("--metric '\(gate)' is not a gate. Write it like --metric 'val_acc>=0.9' (operators >= <= > < == !=)")
        }
        for name in requirementList where !RunChecks.requirementNames.contains(name) {
            throw ValidationError("Unknown requirement '\(name)' in --require. Use any of: \(RunChecks.requirementNames.joined(separator: ", "))")
        }
    }

    var requirementList: [String] {
        if let require { return require.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
        return metrics.isEmpty && artifacts.isEmpty ? RunChecks.requirementNames : []
    }

    func run() async throws {
        let tracking = client.makeClient()
        let (run, files) = try await withClientErrors("Reading run \(runID)") {
            (try await tracking.getRun(id: runID), try await tracking.listArtifacts(runID: runID).map(\.path))
        }
        let findings = RunChecks.evaluate(run: run, artifacts: files, requirements: requirementList,
                                          metricGates: metrics.compactMap(MetricGate.parse), artifactPaths: artifacts)
        let failed = findings.filter { !$0.passed }
        if json {
            printJSON(["run_id": runID, "passed": failed.isEmpty,
                       "findings": findings.map { ["requirement": $0.requirement, "passed": $0.passed, "detail": $0.detail] as [String: Any] }])
        } else {
            for finding in failed { print("FAIL \(finding.requirement): \(finding.detail)") }
            if failed.isEmpty { print("OK: run \(runID) meets \(findings.count) requirement\(findings.count == 1 ? "" : "s").") }
        }
        if !failed.isEmpty { throw ExitCode(1) }
    }
}
