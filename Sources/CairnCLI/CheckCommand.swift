import ArgumentParser
import CairnClient
import CairnCore
import Foundation

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
