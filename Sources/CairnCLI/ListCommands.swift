import ArgumentParser
import CairnClient
import CairnCore
import Foundation

struct ExperimentsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiments",
        abstract: "List experiments.",
        discussion: "Example:\n\n  cairn experiments list --json",
        subcommands: [ExperimentsListCommand.self])
}

struct ExperimentsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the active experiments (id, name, creation time).",
        discussion: "Example:\n\n  cairn experiments list\n  cairn experiments list --all --json")

    @OptionGroup var client: ClientOptions
    @Flag(help: "Include deleted experiments.") var all = false
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        let tracking = client.makeClient()
        let experiments = try await withClientErrors("Listing experiments") {
            try await tracking.searchExperiments(viewType: all ? "ALL" : "ACTIVE_ONLY")
        }
        // Storage from Cairn's own endpoint; an MLflow server has none, and the columns are left out.
        let storage: [String: ExperimentStorage]? = try? await {
            struct Reply: Decodable { var experiments: [ExperimentStorage] }
            let reply = try await tracking.cairn(Reply.self, "storage", query: experiments.map { ("experiment_ids", $0.experimentID) } + [("runs", "0")])
            return Dictionary(reply.experiments.map { ($0.experimentId, $0) }, uniquingKeysWith: { a, _ in a })
        }()
        if json {
            printJSON(["experiments": experiments.map { e in
                var object: [String: Any] = [
                    "experiment_id": e.experimentID, "name": e.name, "artifact_location": e.artifactLocation,
                    "lifecycle_stage": e.lifecycleStage.rawValue, "creation_time": e.creationTime, "last_update_time": e.lastUpdateTime]
                if let s = storage?[e.experimentID] {
                    object["storage"] = ["runs": s.runCount, "artifact_files": s.storage.artifactFiles, "artifact_bytes": s.storage.artifactBytes,
                                         "blob_bytes": s.storage.blobBytes, "unique_bytes": s.storage.uniqueBytes, "shared_bytes": s.storage.sharedBytes,
                                         "metric_points": s.storage.metricPoints, "metric_bytes": s.storage.metricBytes]
                }
                return object
            }])
            return
        }
        var table = TextTable(["ID", "NAME", "CREATED", "STAGE"] + (storage == nil ? [] : ["RUNS", "ARTIFACTS", "UNIQUE", "METRIC POINTS"]))
        for e in experiments.sorted(by: { (Int64($0.experimentID) ?? 0) < (Int64($1.experimentID) ?? 0) }) {
            var row = [e.experimentID, e.name, formatTime(e.creationTime), e.lifecycleStage.rawValue]
            if let storage {
                let s = storage[e.experimentID]
                row += [s.map { String($0.runCount) } ?? "-", s.map { formatBytes($0.storage.blobBytes) } ?? "-",
                        s.map { formatBytes($0.storage.uniqueBytes) } ?? "-", s.map { "\($0.storage.metricPoints) (\(formatBytes($0.storage.metricBytes)))" } ?? "-"]
            }
            table.add(row)
        }
        print(table.render())
    }
}

struct RunsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "List and show runs.",
        discussion: "Example:\n\n  cairn runs list --experiment mnist --sort 'metrics.val_acc DESC'\n  cairn runs show 0123456789abcdef0123456789abcdef",
        subcommands: [RunsListCommand.self, RunsShowCommand.self, RunsCloseStaleCommand.self])
}

struct RunsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List runs, newest first, with their status and metrics.",
        discussion: """
            --filter takes MLflow's search syntax (plus OR, NOT and parentheses); --sort takes an order_by clause and can be repeated.

            Example:

              cairn runs list --experiment mnist --filter "metrics.val_acc > 0.9" --sort "metrics.val_acc DESC"
            """)

    @OptionGroup var client: ClientOptions
    @Option(name: .customLong("experiment"), help: ArgumentHelp("Experiment name or id; repeatable (default: every active experiment).", valueName: "name-or-id"))
    var experiments: [String] = []
    @Option(help: ArgumentHelp("Search filter, e.g. \"params.lr = '0.01' AND metrics.loss < 0.5\".", valueName: "filter"))
    var filter: String?
    @Option(name: .customLong("sort"), help: ArgumentHelp("Order, e.g. \"metrics.loss ASC\"; repeatable.", valueName: "clause"))
    var sort: [String] = []
    @Option(help: ArgumentHelp("At most this many runs.", valueName: "n")) var limit = 100
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        let tracking = client.makeClient()
        let runs = try await withClientErrors("Listing runs") { () async throws -> [Run] in
            var ids = try await resolveExperiments(experiments, client: tracking)
            if ids.isEmpty { ids = try await tracking.searchExperiments().map(\.experimentID) }
            guard !ids.isEmpty else { return [] }
            return try await tracking.searchAllRuns(experimentIDs: ids, filter: filter, orderBy: sort, limit: max(1, limit))
        }
        if json {
            printJSON(["runs": runs.map(runJSON)])
            return
        }
        if runs.isEmpty {
            print("No runs.")
            return
        }
        let metricKeys = Array(Set(runs.flatMap { $0.metrics.map(\.key) }).filter { !$0.hasPrefix("system.") && !$0.hasPrefix("cairn.") }.sorted().prefix(4))
        var table = TextTable(["RUN ID", "NAME", "EXP", "STATUS", "STARTED", "DURATION"] + metricKeys)
        for run in runs {
            let metrics = run.metricMap
            table.add([run.info.runID, run.info.runName, run.info.experimentID, run.info.status.rawValue, formatTime(run.info.startTime), formatDuration(run.info)]
                      + metricKeys.map { metrics[$0].map(formatNumber) ?? "-" })
        }
        print(table.render())
    }
}

struct RunsShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one run: status, params, metrics, tags, datasets and artifacts.",
        discussion: "Example:\n\n  cairn runs show 0123456789abcdef0123456789abcdef --json")

    @OptionGroup var client: ClientOptions
    @Argument(help: ArgumentHelp("The run id.", valueName: "run-id")) var runID: String
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        let tracking = client.makeClient()
        let run = try await withClientErrors("Reading run \(runID)") { try await tracking.getRun(id: runID) }
        let artifacts = (try? await tracking.listArtifacts(runID: runID)) ?? []
        if json {
            var object = runJSON(run)
            object["artifacts"] = artifacts.map { ["path": $0.path, "file_size": $0.size] as [String: Any] }
            printJSON(object)
            return
        }
        print(describe(run, artifacts: artifacts))
    }

    func describe(_ run: Run, artifacts: [(path: String, size: Int64)]) -> String {
        var lines: [String] = []
        lines.append("Run \(run.info.runID)  \(run.info.runName)")
        lines.append("  experiment  \(run.info.experimentID)")
        lines.append("  status      \(run.info.status.rawValue)")
        lines.append("  started     \(formatTime(run.info.startTime))")
        lines.append("  ended       \(formatTime(run.info.endTime))  (\(formatDuration(run.info)))")
        lines.append("  user        \(run.info.userID)")
        if !run.params.isEmpty {
            lines.append("\nParams")
            var table = TextTable(["KEY", "VALUE"])
            for p in run.params.sorted(by: { $0.key < $1.key }) { table.add([p.key, p.value]) }
            lines.append(indent(table.render()))
        }
        if !run.metrics.isEmpty {
            lines.append("\nMetrics (latest)")
            var table = TextTable(["KEY", "VALUE", "STEP"])
            for m in run.metrics.sorted(by: { $0.key < $1.key }) { table.add([m.key, formatNumber(m.value), String(m.step)]) }
            lines.append(indent(table.render()))
        }
        if !run.inputs.isEmpty {
            lines.append("\nDatasets")
            var table = TextTable(["NAME", "DIGEST", "SOURCE"])
            for input in run.inputs { table.add([input.dataset.name, input.dataset.digest, input.dataset.source]) }
            lines.append(indent(table.render()))
        }
        if !run.tags.isEmpty {
            lines.append("\nTags")
            var table = TextTable(["KEY", "VALUE"])
            for t in run.tags.sorted(by: { $0.key < $1.key }) {
                let value = t.value.count > 100 ? String(t.value.prefix(97)) + "..." : t.value
                table.add([t.key, value.replacingOccurrences(of: "\n", with: " ")])
            }
            lines.append(indent(table.render()))
        }
        if !artifacts.isEmpty {
            lines.append("\nArtifacts")
            var table = TextTable(["PATH", "SIZE"])
            for a in artifacts { table.add([a.path, formatBytes(a.size)]) }
            lines.append(indent(table.render()))
        }
        return lines.joined(separator: "\n")
    }
}

func indent(_ text: String) -> String {
    text.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n")
}

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Health figures: run success rate, linkage, artifact integrity, reproducibility.",
        discussion: """
            Computed by the server (GET /api/cairn/v1/report) over the active runs of the chosen experiments (default: all): success rate = finished / (finished + failed + killed); linkage = runs with a code reference (git commit tag) and with at least one dataset input; artifact integrity = the blobs those runs reference, re-hashed; reproducibility = `cairn reproduce` runs that reproduced / attempted; audit completeness (over the whole store) = share of changes with an audit event × share of events whose actor is known.

            Example:

              cairn report --experiment mnist
            """)

    @OptionGroup var client: ClientOptions
    @Option(name: .customLong("experiment"), help: ArgumentHelp("Experiment name or id; repeatable (default: every active experiment).", valueName: "name-or-id"))
    var experiments: [String] = []
    @Flag(help: "Print the server's JSON.") var json = false

    func run() async throws {
        let tracking = client.makeClient(timeout: 300)
        let report = try await withClientErrors("Computing the report") {
            try await tracking.report(experimentIDs: try await resolveExperiments(experiments, client: tracking))
        }
        if json {
            var writer = JSONWriter()
            writer.value(report)
            print(writer.string)
            return
        }
        print(Self.render(report))
    }

    static func render(_ r: JSONValue) -> String {
        func n(_ path: String...) -> Int64 {
            var value: JSONValue? = r
            for key in path { value = value?[key] }
            return value?.int64Value ?? 0
        }
        func percent(_ part: Int64, _ whole: Int64) -> String {
            whole == 0 ? "-" : String(format: "%.1f%%", 100 * Double(part) / Double(whole))
        }
        let ids = (r["experiment_ids"]?.arrayValue ?? []).compactMap(\.stringValue)
        let total = n("runs", "total")
        var lines = ["Cairn report for experiments \(ids.isEmpty ? "(none)" : ids.joined(separator: ", "))", ""]
        var table = TextTable(["FIGURE", "VALUE", "DETAIL"])
        let rate = r["success_rate"]?.doubleValue.map { String(format: "%.1f%%", $0 * 100) } ?? "-"
        table.add(["runs", String(total), "finished \(n("runs", "finished")), failed \(n("runs", "failed")), killed \(n("runs", "killed")), running \(n("runs", "running")), scheduled \(n("runs", "scheduled"))"])
        table.add(["success rate", rate, "finished / (finished + failed + killed)"])
        table.add(["linked to code", percent(n("linkage", "with_code"), total), "\(n("linkage", "with_code")) of \(total) runs have a git commit"])
        table.add(["linked to data", percent(n("linkage", "with_data"), total), "\(n("linkage", "with_data")) of \(total) runs have a dataset input"])
        table.add(["linked to both", percent(n("linkage", "with_both"), total), "\(n("linkage", "with_both")) of \(total) runs"])
        let blobs = n("artifacts", "blobs")
        table.add(["artifact integrity", percent(n("artifacts", "verified"), blobs), "\(n("artifacts", "verified")) of \(blobs) blobs verify (\(n("artifacts", "files")) files); missing \(n("artifacts", "missing")), damaged \(n("artifacts", "damaged"))"
                   + (n("artifacts", "unchecked") > 0 ? ", not checked yet \(n("artifacts", "unchecked")) (`cairn verify` checks all)" : "")])
        let attempted = n("reproducibility", "attempted")
        table.add(["reproducibility", percent(n("reproducibility", "reproduced"), attempted), "\(n("reproducibility", "reproduced")) of \(attempted) reproduce attempts reproduced"])
        if r["audit"] != nil {
            let sli = r["audit"]?["sli"]?.doubleValue.map { String(format: "%.1f%%", $0 * 100) } ?? "-"
            table.add(["audit completeness", sli, "\(n("audit", "changes_with_event")) of \(n("audit", "counted_changes")) changes have an audit event; "
                       + "actor known in \(n("audit", "events_with_actor")) of \(n("audit", "events")) events (whole store)"])
        }
        lines.append(table.render())
        return lines.joined(separator: "\n")
    }
}

struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Upload runs journaled while the server was unreachable.",
        discussion: """
            Replays every journal in $CAIRN_JOURNAL_DIR (default ~/.cairn/journal). Safe to repeat and to interrupt: a run is found by its recorded id or its cairn.journal.id tag before one is created, and replayed metrics, params, tags, datasets and artifacts are stored once. A journal is removed once it is fully uploaded.

            Example:

              cairn sync --tracking-uri http://127.0.0.1:5000
            """)

    @OptionGroup var client: ClientOptions
    @Option(name: .customLong("journal-dir"), help: ArgumentHelp("Journal folder (env CAIRN_JOURNAL_DIR, default ~/.cairn/journal).", valueName: "path"))
    var journalDirectory: String?
    @Flag(help: "Print what was uploaded as JSON.") var json = false

    func run() async throws {
        let folder = journalDirectory.map { URL(fileURLWithPath: $0) } ?? Journal.defaultFolder()
        let files = Journal.pending(in: folder)
        let sync = JournalSync(client: client.makeClient())
        var results: [JournalSyncResult] = []
        var failures = 0
        for file in files {
            do {
                let result = try await sync.sync(file: file)
                results.append(result)
                if !json {
                    print("synced \(result.journalID) → run \(result.runID)\(result.createdRun ? " (created)" : "") : \(result.batches) batches, \(result.metrics) metric points, \(result.artifacts) artifacts")
                    for refused in result.refused { print("  refused by the server: \(refused)") }
                }
            } catch let error as TrackingClientError {
                failures += 1
                if case .unreachable = error {
                    throw fail("\(error). \(files.count - results.count) journal(s) are kept in \(folder.path); run `cairn sync` again when the server is up.")
                }
                try? FileHandle.standardError.write(contentsOf: Data("error: syncing \(file.lastPathComponent) failed: \(error). It is kept; fix the cause and run `cairn sync` again.\n".utf8))
            } catch {
                failures += 1
                try? FileHandle.standardError.write(contentsOf: Data("error: syncing \(file.lastPathComponent) failed: \(error). It is kept; fix the cause and run `cairn sync` again.\n".utf8))
            }
        }
        if json {
            printJSON(["synced": results.map { ["journal_id": $0.journalID, "run_id": $0.runID, "created_run": $0.createdRun, "batches": $0.batches,
                                                "metrics": $0.metrics, "artifacts": $0.artifacts, "refused": $0.refused] as [String: Any] }])
        } else if files.isEmpty {
            print("Nothing to sync in \(folder.path).")
        }
        if failures > 0 { throw ExitCode(1) }
    }
}

struct RunsCloseStaleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "close-stale",
        abstract: "Mark stale runs KILLED: runs still RUNNING that have logged nothing for a while.",
        discussion: """
            A run's last activity is its newest metric timestamp, else its start time. Without --stale-after, the server's threshold decides (`cairn server --stale-after`, default 2h), the same one the web UI and the report use. Each closed run gets status KILLED, its end time, and the tag cairn.closed_as_stale=true.

            Example:

              cairn runs close-stale --dry-run
              cairn runs close-stale --experiment mnist --stale-after 6h
            """)

    @OptionGroup var client: ClientOptions
    @Option(name: .customLong("experiment"), help: ArgumentHelp("Experiment name or id; repeatable (default: every active experiment).", valueName: "name-or-id"))
    var experiments: [String] = []
    @Option(name: .customLong("stale-after"), help: ArgumentHelp("No activity for this long makes a running run stale (e.g. 90m, 2h, 1d; default: the server's threshold).", valueName: "duration"))
    var staleAfter: String?
    @Flag(name: .customLong("dry-run"), help: "List the stale runs; change nothing.") var dryRun = false
    @Flag(help: "Print JSON for scripts.") var json = false

    func validate() throws {
        if let staleAfter, StaleRuns.parseDuration(staleAfter) == nil {
            throw ValidationError("--stale-after '\(staleAfter)' is not a duration. Write it like 90m, 2h or 1d")
        }
    }

    struct Row: Decodable {
        var runId: String
        var runName: String
        var experimentId: String
        var status: String
        var lastActivity: Int64?
        var stale: Bool?
    }

    func run() async throws {
        let tracking = client.makeClient()
        let threshold = staleAfter.flatMap(StaleRuns.parseDuration)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let stale = try await withClientErrors("Finding stale runs") { () async throws -> [Row] in
            var ids = try await resolveExperiments(experiments, client: tracking)
            if ids.isEmpty { ids = try await tracking.searchExperiments().map(\.experimentID) }
            guard !ids.isEmpty else { return [] }
            struct Reply: Decodable { var runs: [Row] }
            let reply = try await tracking.cairn(Reply.self, "runs/table",
                                                 query: ids.map { ("experiment_ids", $0) } + [("filter", "attributes.status = 'RUNNING'")])
            return reply.runs.filter { row in
                guard row.status == "RUNNING" else { return false }
                if let threshold { return row.lastActivity.map { now - $0 > threshold } ?? false }
                return row.stale == true
            }
        }
        var closed: [String] = []
        if !dryRun {
            for row in stale {
                try await withClientErrors("Closing run \(row.runId)") {
                    try await tracking.updateRun(id: row.runId, status: .killed, endTime: now)
                    try await tracking.logBatch(runID: row.runId, metrics: [], params: [], tags: [Tag("cairn.closed_as_stale", "true")])
                }
                closed.append(row.runId)
            }
        }
        if json {
            printJSON(["stale_runs": stale.map { r in
                ["run_id": r.runId, "run_name": r.runName, "experiment_id": r.experimentId, "last_activity": r.lastActivity as Any] as [String: Any]
            }, "closed": closed, "dry_run": dryRun])
            return
        }
        if stale.isEmpty {
            print("No stale runs.")
            return
        }
        var table = TextTable(["RUN ID", "NAME", "EXP", "LAST ACTIVITY", "IDLE"])
        for r in stale {
            let idle = r.lastActivity.map { now - $0 }
            table.add([r.runId, r.runName, r.experimentId, formatTime(r.lastActivity),
                       idle.map { $0 >= 86_400_000 ? String(format: "%.1fd", Double($0) / 86_400_000)
                           : $0 >= 3_600_000 ? String(format: "%.1fh", Double($0) / 3_600_000) : "\($0 / 60_000)m" } ?? "-"])
        }
        print(table.render())
        print(dryRun ? "\n\(stale.count) stale run\(stale.count == 1 ? "" : "s"); nothing changed (--dry-run)."
                     : "\nMarked \(closed.count) run\(closed.count == 1 ? "" : "s") KILLED (tag cairn.closed_as_stale=true).")
    }
}
