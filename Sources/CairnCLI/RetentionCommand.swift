import ArgumentParser
import CairnCore
import CairnServer
import CairnServices
import Foundation

struct RetentionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retention",
        abstract: "Plan and apply retention rules: which runs to keep, which to delete, and what that frees.",
        discussion: """
            An experiment's rule is its tag cairn.retention (set it like any experiment tag), or --default for experiments without one; experiments with neither are left alone. Clauses, separated by ';': keep_last=N (the N newest runs), keep_days=D (runs started in the last D days), keep_tag=KEY (runs with that tag; the tag 'keep' always keeps a run), keep_top=K:metric (the K best runs by that metric). A run is kept when any clause keeps it. Runs still running and runs a registered model version comes from are never deleted.

            Example:

              mlflow: client.set_experiment_tag(exp_id, "cairn.retention", "keep_last=20; keep_days=30; keep_top=5:val_acc")
              cairn retention plan
              cairn retention apply && cairn gc
            """,
        subcommands: [RetentionPlanCommand.self, RetentionApplyCommand.self])
}

struct RetentionOptions: ParsableArguments {
    @OptionGroup var store: StoreOptions
    @Option(name: .customLong("experiment"), help: ArgumentHelp("Experiment id; repeatable (default: every active experiment).", valueName: "id"))
    var experiments: [String] = []
    @Option(name: .customLong("default"), help: ArgumentHelp("The rule for experiments without a cairn.retention tag, e.g. 'keep_last=50'.", valueName: "rule"))
    var defaultRule: String?
    @Flag(help: "Print JSON for scripts.") var json = false
    @Flag(help: "Progress lines on stderr once a second, also when stderr is not a terminal (on a terminal one line shows it anyway).")
    var progress = false

    func plan() async throws -> (RetentionService, RetentionPlan) {
        let services = try store.openServices()
        let printer = StoreProgress(forced: progress, prefix: "retention")
        defer { printer.finish() }
        do {
            return (services.retention, try await services.retention.plan(experimentIDs: experiments, defaultRule: defaultRule, progress: printer.report))
        } catch let error as CairnError {
            throw fail(error.message)
        }
    }

    /// The plan printed one experiment at a time as it is made: nothing of an experiment is
    /// kept once it is printed, so a plan naming a million runs prints in the memory of the
    /// largest experiment (the same output as `printRetention`).
    func printPlan() async throws {
        let services = try store.openServices()
        let printer = StoreProgress(forced: progress, prefix: "retention")
        defer { printer.finish() }
        var printed = false
        do {
            let withoutRule = try await services.retention.plan(experimentIDs: experiments, defaultRule: defaultRule, progress: printer.report) {
                printer.finish()
                printRetention($0, applied: false)
                printed = true
            }
            printRetentionEnd(withoutRule: withoutRule, printed: printed)
        } catch let error as CairnError {
            throw fail(error.message)
        }
    }
}

struct RetentionPlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show what the retention rules would delete and what it would free; change nothing.",
        discussion: "Example:\n\n  cairn retention plan --default 'keep_last=50'")

    @OptionGroup var options: RetentionOptions

    func run() async throws {
        if !options.json { return try await options.printPlan() }
        let (_, plan) = try await options.plan()
        printJSON(retentionJSON(plan, deleted: nil))
    }
}

struct RetentionApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Delete the runs the retention plan names (then `cairn gc` frees their artifacts).",
        discussion: "Each deleted run is tagged cairn.deleted_by=retention first; deleted runs can be restored until `cairn gc` has run.\n\nExample:\n\n  cairn retention apply && cairn gc")

    @OptionGroup var options: RetentionOptions

    /// As the OS user, so the audit log says who changed the store.
    func run() async throws {
        try await withLocalIdentity { try await runLocally() }
    }

    private func runLocally() async throws {
        let (service, plan) = try await options.plan()
        let deleted = try await service.apply(plan)
        if options.json { printJSON(retentionJSON(plan, deleted: deleted)); return }
        printRetention(plan, applied: true)
        print("\nDeleted \(deleted.count) run\(deleted.count == 1 ? "" : "s"). Run `cairn gc` to free their artifacts.")
    }
}

func retentionJSON(_ plan: RetentionPlan, deleted: [String]?) -> [String: Any] {
    var object: [String: Any] = [
        "experiments": plan.experiments.map { e in
            ["experiment_id": e.experimentID, "name": e.name, "rule": e.rule, "kept": e.kept,
             "kept_because": Dictionary(e.keptBecause.map { ($0.reason, $0.runs) }, uniquingKeysWith: { a, _ in a }),
             "delete": e.delete.map { ["run_id": $0.runId, "run_name": $0.runName, "blob_bytes": $0.storage.blobBytes,
                                       "metric_points": $0.storage.metricPoints, "metric_bytes": $0.storage.metricBytes] as [String: Any] },
             "freed_artifact_bytes": e.freedArtifactBytes, "freed_blobs": e.freedBlobs, "metric_bytes": e.metricBytes] as [String: Any]
        },
        "experiments_without_rule": plan.withoutRule,
    ]
    if let deleted { object["deleted"] = deleted }
    return object
}

/// Prints the plan as it goes: one line a run to delete, never the whole report as one string
/// (a plan can name hundreds of thousands of runs).
func printRetention(_ plan: RetentionPlan, applied: Bool) {
    for e in plan.experiments { printRetention(e, applied: applied) }
    printRetentionEnd(withoutRule: plan.withoutRule, printed: !plan.experiments.isEmpty)
}

/// One experiment of the plan, a line a run.
func printRetention(_ e: RetentionExperimentPlan, applied: Bool) {
    print("Experiment \(e.experimentID) (\(e.name)), rule '\(e.rule)'")
    print("  keeps \(e.kept) run\(e.kept == 1 ? "" : "s")" + (e.keptBecause.isEmpty ? "" : ": " + e.keptBecause.map { "\($0.runs) \($0.reason)" }.joined(separator: ", ")))
    if e.delete.isEmpty {
        print("  deletes nothing")
        return
    }
    print("  \(applied ? "deleted" : "would delete") \(e.delete.count) run\(e.delete.count == 1 ? "" : "s"):")
    func cells(_ r: RunStorage) -> [String] {
        [r.runId, r.runName, formatBytes(r.storage.blobBytes), "\(r.storage.metricPoints) (\(formatBytes(r.storage.metricBytes)))"]
    }
    // The columns' widths first, then each row as it is formatted (TextTable's layout).
    let headers = ["RUN ID", "NAME", "ARTIFACTS", "METRIC POINTS"]
    var widths = headers.map(\.count)
    for r in e.delete { for (i, cell) in cells(r).enumerated() { widths[i] = max(widths[i], cell.count) } }
    func line(_ cells: [String]) -> String { "    " + TextTable.line(cells, widths: widths) }
    print(line(headers))
    for r in e.delete { print(line(cells(r))) }
    print("  frees \(formatBytes(e.freedArtifactBytes)) of artifacts (\(e.freedBlobs) blobs no other run uses) after `cairn gc`; "
        + "their \(formatBytes(e.metricBytes)) of metric data stay in the database (deleted runs can be restored)")
}

/// The plan's last lines: the experiments left alone, or that there was nothing at all.
func printRetentionEnd(withoutRule: [String], printed: Bool) {
    if !withoutRule.isEmpty {
        print("No rule (left alone): experiment\(withoutRule.count == 1 ? "" : "s") \(withoutRule.joined(separator: ", ")). Tag one with cairn.retention or pass --default.")
    } else if !printed {
        print("No experiments.")
    }
}
