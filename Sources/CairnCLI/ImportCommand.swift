import ArgumentParser
import CairnClient
import CairnCore
import CairnServer
import CairnServices
import CairnStore
import Foundation
import Synchronization

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Move in from another tracking server.",
        discussion: """
            Example:

              cairn import mlflow --from http://mlflow-host:5000
              cairn import mlflow --from-store sqlite:///mlflow.db --artifacts ./mlartifacts
              cairn import mlflow --from-store ./mlruns
              cairn import cairn ./export
            """,
        subcommands: [ImportMLflowCommand.self, ImportCairnCommand.self])
}

struct ImportMLflowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlflow",
        abstract: "Copy experiments, runs, models and artifacts from a running MLflow server, or its store read directly, into this Cairn store, keeping their ids.",
        discussion: """
            Reads any MLflow 2.x/3.x server through its REST API (--from), or its store directly, no server needed (--from-store: an SQL store in SQLite, sqlite:///mlflow.db, opened read-only, or in PostgreSQL, postgresql://user:password@host:5432/db, read in read-only transactions, with --artifacts for the folder behind its mlflow-artifacts:/ locations, the server's --artifacts-destination; or a file store, ./mlruns), and writes into the Cairn store directly (stop `cairn server` on it first, or let it run: each entity is one transaction). Copies experiments (tags, lifecycle), runs with their ids, names, users, status, times, lifecycle, params, tags and notes, every point of every metric history, dataset inputs, logged models (params, tags, metrics), the artifact files under mlflow-artifacts:/ locations and in local file: folders (streamed; sizes checked, content re-hashed at the end; a file: location's files move into Cairn, the run's artifact URI becoming mlflow-artifacts:/<experiment>/<run>/artifacts), and registered models with descriptions, tags, aliases and versions (source, run link, stage, status, tags). Ids and times are kept, so runs:/…, models:/… and #/experiments/…/runs/… links keep working; values are copied bit for bit.

            Running the import again resumes an interrupted one and changes nothing after a complete one. An entity Cairn already holds with other content (a conflict) is listed and left as it is, never overwritten; anything Cairn cannot hold (artifacts neither behind the source's artifact proxy nor in a folder on this machine, non-integer experiment ids) is listed too. Either makes the command exit 1; --skip-unrepresentable accepts the latter. At the end the store is re-read and compared with the source: runs, params, tags, metric series and points, logged models, model versions, artifact files and bytes.

            Credentials for the source: MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (Basic), or MLFLOW_TRACKING_TOKEN (Bearer).

            Example:

              cairn import mlflow --from http://mlflow-host:5000 --data-dir ./cairn-data
              cairn import mlflow --from-store sqlite:///mlflow.db --artifacts ./mlartifacts
              cairn import mlflow --from-store ./mlruns --filter "tags.team = 'nlp'"
              cairn import mlflow --from http://mlflow-host:5000 --experiment churn --experiment fraud
              cairn import mlflow --from http://mlflow-host:5000 --filter "tags.team = 'nlp'" \\
                  --backend-store-uri postgresql://cairn:secret@db:5432/cairn \\
                  --artifacts-destination s3://cairn/artifacts
            """)

    @Option(help: ArgumentHelp("The MLflow server, e.g. http://mlflow-host:5000 (a path prefix is kept).", valueName: "url"))
    var from: String?

    @Option(name: .customLong("from-store"), help: ArgumentHelp("An MLflow store read directly instead of a server: sqlite:///mlflow.db (relative) or sqlite:////abs/path/mlflow.db, postgresql://user:password@host:5432/db, or an mlruns folder.", valueName: "uri"))
    var fromStore: String?

    @Option(help: ArgumentHelp("With --from-store: the folder behind its mlflow-artifacts:/ locations (the MLflow server's --artifacts-destination, e.g. ./mlartifacts). Without it no artifact files are copied (listed as not imported).", valueName: "dir"))
    var artifacts: String?

    @Option(name: .customLong("experiment"), help: ArgumentHelp("An experiment to import, by name (or id); repeat for several. Default: all, deleted ones included.", valueName: "name"))
    var experiments: [String] = []

    @Option(help: ArgumentHelp("Only experiments this MLflow search filter selects, e.g. \"name LIKE 'prod-%'\".", valueName: "filter"))
    var filter: String?

    @Flag(name: .customLong("skip-unrepresentable"), help: "Leave out what Cairn cannot hold (listed) and still exit 0.")
    var skipUnrepresentable = false

    @Flag(help: "Print the report as JSON (no progress lines).") var json = false

    @OptionGroup var store: StoreOptions

    /// The reader `--from` or `--from-store` names (exactly one of them).
    func reader() throws -> any MLflowReader {
        switch (from, fromStore) {
        case (nil, nil):
            throw fail("Name the MLflow source: --from http://mlflow-host:5000 (a running server) or --from-store sqlite:///mlflow.db, postgresql://…, ./mlruns (its store).")
        case (.some, .some):
            throw fail("--from and --from-store are exclusive: read a running MLflow server or its store, not both.")
        case (let url?, nil):
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw fail("--from '\(url)' is not an http(s) URL of a running MLflow server, e.g. http://mlflow-host:5000.")
            }
            if artifacts != nil { throw fail("--artifacts goes with --from-store; through --from the server's artifact proxy is read.") }
            return MLflowSource(uri: url)
        case (nil, let store?):
            if let artifacts {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: artifacts, isDirectory: &isDirectory), isDirectory.boolValue else {
                    throw fail("--artifacts '\(artifacts)' is not a folder (give the MLflow server's --artifacts-destination, e.g. ./mlartifacts).")
                }
            }
            do {
                return MLflowStoreReader(tables: try storeTables(store), artifacts: artifacts)
            } catch let error as CairnError {
                throw fail("--from-store \(PostgresLocation.redacted(store)): \(error.message)")
            }
        }
    }

    /// The store `--from-store` names: `sqlite:///…`, `postgresql://…`, or an `mlruns` folder
    /// (a path or `file:` URI).
    func storeTables(_ store: String) throws -> any MLflowStoreTables {
        if store.hasPrefix("sqlite:///") {
            return try MLflowSQLStore(sqlitePath: String(store.dropFirst("sqlite:///".count)))
        }
        if PostgresLocation.isPostgres(store) {
            return try MLflowSQLStore(postgres: try PostgresLocation(uri: store))
        }
        switch ArtifactLocation.scheme(of: store) {
        case nil:
            return try MLflowFileStore(root: store)
        case "file":
            return try MLflowFileStore(root: URL(string: store)?.path ?? String(store.dropFirst("file:".count)))
        case let scheme? where scheme.hasPrefix("mysql") || scheme.hasPrefix("mariadb"):
            throw CairnError.invalidParameter("MySQL stores are not read directly (Cairn has no MySQL driver). Start an MLflow server on it and import through its REST API: `mlflow server --backend-store-uri \(scheme)://… --artifacts-destination DIR`, then `cairn import mlflow --from http://127.0.0.1:5000`; or convert it to SQLite first.")
        case let scheme?:
            throw CairnError.invalidParameter("\(scheme): stores are not read directly; an MLflow store in SQLite (sqlite:///mlflow.db), PostgreSQL (postgresql://user:password@host:5432/db) or an mlruns folder (./mlruns) is. Import through a running MLflow server on it instead: --from http://mlflow-host:5000.")
        }
    }

    /// The one line for an error answer of the source: for 401/403, whether credentials were
    /// missing or refused (never the password); else how to resume.
    static func serverRefusal(uri: String, status: Int, code: String, message: String, environment: [String: String]) -> String {
        guard status == 401 || status == 403 else {
            return "The MLflow server at \(uri) answered \(status) \(code): \(message). What was written so far stays; run the same command again to resume."
        }
        let given = ["MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"].filter { !(environment[$0] ?? "").isEmpty }
        if given.isEmpty {
            return "The MLflow server at \(uri) needs credentials (it answered \(status)): set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) for it."
        }
        let who = environment["MLFLOW_TRACKING_USERNAME"].map { " for user '\($0)'" } ?? ""
        return status == 401
            ? "The MLflow server at \(uri) refused the credentials\(who) (it answered 401): check \(given.joined(separator: " and "))."
            : "The MLflow server at \(uri) does not let the user\(who) read everything the import needs (it answered 403): use an account with read permission on the experiments and models, or an administrator's."
    }

    /// As the OS user, so the audit log says who changed the store.
    func run() async throws {
        try await withLocalIdentity { try await runLocally() }
    }

    private func runLocally() async throws {
        let source = try reader()
        let configuration = try store.configuration()
        let services: CairnServiceSet
        do {
            services = try CairnServer.openServices(configuration)
        } catch let error as ConfigurationError {
            throw fail(error.message)
        }
        guard let target = services.tracking.store as? SQLStore else {
            throw fail("The store opened for --data-dir / --backend-store-uri cannot take imports.")
        }
        let service = ImportService(source: source, store: target, blobs: services.artifacts.blobs, now: services.tracking.now)
        let display = ImportProgress(enabled: !json, isTerminal: isatty(STDOUT_FILENO) == 1)
        if !json { say("Importing from MLflow at \(source.uri)") }
        if !json, fromStore != nil, artifacts == nil { say("No --artifacts folder given: artifact files are not copied.") }
        let started = Date()
        let report: ImportReport
        do {
            report = try await service.importAll(ImportSelection(experiments: experiments, filter: filter)) { display.show($0) }
        } catch let error as CairnError {
            display.finish()
            throw fail("The import stopped: \(error.message) What was written so far stays; run the same command again to resume.")
        } catch TrackingClientError.unreachable(_, let reason) {
            display.finish()
            throw fail("Cannot reach the MLflow server at \(source.uri) (\(reason)). Check --from and that the server runs; what was written so far stays, and the same command resumes.")
        } catch TrackingClientError.server(let status, let code, let message) {
            display.finish()
            throw fail(Self.serverRefusal(uri: source.uri, status: status, code: code, message: message,
                                          environment: ProcessInfo.processInfo.environment))
        } catch {
            display.finish()
            throw failure(error, doing: "The import from \(source.uri) (run the same command again to resume)")
        }
        display.finish()
        let seconds = Date().timeIntervalSince(started)
        let kinds: [ImportEvent.Kind] = [.experiment, .run, .loggedModel, .registeredModel]
        let blocked = !report.conflicts.isEmpty || (!report.unrepresentable.isEmpty && !skipUnrepresentable) || !report.verified
        if json {
            printJSON([
                "source": source.uri,
                "created": Dictionary(uniqueKeysWithValues: kinds.map { ($0.rawValue, report.created[$0] ?? 0) }),
                "unchanged": Dictionary(uniqueKeysWithValues: kinds.map { ($0.rawValue, report.unchanged[$0] ?? 0) }),
                "merged": Dictionary(uniqueKeysWithValues: kinds.map { ($0.rawValue, report.merged[$0] ?? 0) }),
                "written_points": report.writtenPoints, "written_files": report.writtenFiles, "written_bytes": report.writtenBytes,
                "present_files": report.presentFiles, "changed_nothing": report.changedNothing, "seconds": seconds,
                "conflicts": report.conflicts.map { ["what": $0.what, "differences": $0.differences] as [String: Any] },
                "unrepresentable": report.unrepresentable.map { ["what": $0.what, "reason": $0.reason] },
                "checks": report.checks.map { ["what": $0.what, "source": $0.source, "target": $0.target, "matches": $0.matches] as [String: Any] },
                "artifact_mismatches": report.artifactMismatches,
                "verified": report.verified,
            ])
        } else {
            sayImportSummary(report, kinds: kinds, seconds: seconds, empty: "Nothing selected.", everything: "everything selected")
            sayUnrepresentable(report, skipped: skipUnrepresentable)
            say("")
            say("Verification (the source's figures against this store, re-read):")
            var table = TextTable(["WHAT", "SOURCE", "CAIRN", "RESULT"])
            for check in report.checks { table.add([check.what, String(check.source), String(check.target), check.matches ? "same" : "DIFFERENT"]) }
            say(table.render())
            for mismatch in report.artifactMismatches { say("ARTIFACT  \(mismatch)") }
            if !blocked {
                say("OK: everything selected is in this store, as in the source.")
            } else {
                var problems: [String] = []
                if !report.conflicts.isEmpty { problems.append("\(report.conflicts.count) conflicts (listed above; resolve them and run the import again)") }
                if !report.unrepresentable.isEmpty && !skipUnrepresentable { problems.append("\(report.unrepresentable.count) items Cairn cannot hold (listed above; accept leaving them out with --skip-unrepresentable)") }
                if !report.verified { problems.append("the verification found differences") }
                say("INCOMPLETE: \(problems.joined(separator: "; ")).")
            }
        }
        if blocked { throw ExitCode(1) }
    }
}

/// The import's progress: on a terminal one status line redrawn in place (entities, points,
/// bytes and rate), else one plain line per entity.
final class ImportProgress: Sendable {
    let enabled: Bool
    let isTerminal: Bool
    private let state = Mutex<(runs: Int, others: Int, points: Int, bytes: Int64, started: Date, drawn: Bool)>((0, 0, 0, 0, Date(), false))

    init(enabled: Bool, isTerminal: Bool) {
        self.enabled = enabled
        self.isTerminal = isTerminal
    }

    func show(_ event: ImportEvent) {
        guard enabled else { return }
        let outcome: String
        switch event.outcome {
        case .created: outcome = "new"
        case .unchanged: outcome = "unchanged"
        case .merged: outcome = "merged"
        case .conflict: outcome = "CONFLICT"
        }
        var line = "\(event.kind.rawValue) \(event.id)\(event.name == event.id ? "" : " '\(event.name)'"): \(outcome)"
        if event.kind == .run { line += ", \(event.points) points" }
        if event.files > 0 { line += ", \(event.files) files (\(formatBytes(event.bytes)))" }
        guard isTerminal else {
            say(line)
            return
        }
        let status = state.withLock { s -> String in
            if event.kind == .run { s.runs += 1 } else { s.others += 1 }
            s.points += event.points
            s.bytes += event.bytes
            s.drawn = true
            let elapsed = max(0.001, Date().timeIntervalSince(s.started))
            return "\(s.runs) runs and \(s.others) other entities (\(String(format: "%.1f", Double(s.runs) / elapsed)) runs/s), "
                + "\(s.points) metric points read (\(Int(Double(s.points) / elapsed))/s), \(formatBytes(s.bytes)) of artifacts written (\(formatBytes(Int64(Double(s.bytes) / elapsed)))/s)"
        }
        var text = ""
        if case .conflict = event.outcome { text += "\r\u{1B}[K" + line + "\n" }
        text += "\r\u{1B}[K" + status
        try? FileHandle.standardOutput.write(contentsOf: Data(text.utf8))
    }

    func finish() {
        if enabled, isTerminal, state.withLock({ $0.drawn }) { say("") }
    }
}

/// One line on standard output, written at once (not buffered): the progress lines must be
/// out before the process can be stopped.
/// The closing lines of an import (`import mlflow`, `import cairn`): per kind what was new,
/// unchanged or merged, what was written, and every conflict.
func sayImportSummary(_ report: ImportReport, kinds: [ImportEvent.Kind], seconds: Double, empty: String, everything: String) {
    let summary = kinds.compactMap { kind -> String? in
        let parts = [("new", report.created[kind] ?? 0), ("unchanged", report.unchanged[kind] ?? 0), ("merged", report.merged[kind] ?? 0)]
            .filter { $0.1 > 0 }.map { "\($0.1) \($0.0)" }
        return parts.isEmpty ? nil : "\(kind.rawValue)s: \(parts.joined(separator: ", "))"
    }
    say("")
    say(summary.isEmpty ? empty : summary.joined(separator: "; "))
    say("Written: \(report.writtenPoints) metric points, \(report.writtenFiles) artifact files (\(formatBytes(report.writtenBytes))); \(report.presentFiles) files were already there. \(String(format: "%.1f", seconds)) s.")
    if report.changedNothing && report.conflicts.isEmpty { say("Nothing changed: this store already held \(everything).") }
    for conflict in report.conflicts {
        say("CONFLICT  \(conflict.what): \(conflict.differences.joined(separator: "; ")). Left as it is.")
    }
}

/// What the import left out because the store cannot hold it, one line each.
func sayUnrepresentable(_ report: ImportReport, skipped: Bool) {
    for item in report.unrepresentable {
        say("\(skipped ? "SKIPPED" : "NOT IMPORTED")  \(item.what): \(item.reason)")
    }
}

func say(_ line: String) {
    try? FileHandle.standardOutput.write(contentsOf: Data((line + "\n").utf8))
}
