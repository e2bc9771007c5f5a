import Foundation

/// One requirement of `cairn check` and whether a run meets it.
public struct CheckFinding: Sendable, Equatable {
    public var requirement: String
    public var passed: Bool
    public var detail: String

    public init(requirement: String, passed: Bool, detail: String) {
        self.requirement = requirement
        self.passed = passed
        self.detail = detail
    }
}

/// The judgement of `cairn check`, separate from I/O so it can be tested on values.
public enum RunChecks {
    public static let requirementNames = ["code", "data", "env", "seed", "finished"]

    public static func evaluate(run: Run, artifacts: [String], requirements: [String], metricGates: [MetricGate], artifactPaths: [String]) -> [CheckFinding] {
        let tags = Dictionary(run.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
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
        let metrics = Dictionary(run.metrics.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        for gate in metricGates {
            if let value = metrics[gate.key] {
                let passed = gate.holds(for: value)
                findings.append(CheckFinding(requirement: "metric \(gate.text)", passed: passed, detail: "\(gate.key) = \(value)"))
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
public struct MetricGate: Sendable, Equatable {
    public var key: String
    public var op: String
    public var threshold: Double
    public var text: String

    public static func parse(_ text: String) -> MetricGate? {
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

    public func holds(for value: Double) -> Bool {
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

