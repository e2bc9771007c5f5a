import ArgumentParser
import CairnCore
import CairnServer
import CairnServices
import CairnStore
import Foundation

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write experiments, runs, models and artifacts to a folder in an open format (Parquet tables + files).",
        discussion: """
            Writes DIR/tables/<table>.parquet (experiments, experiment_tags, runs, params, tags, metrics with one row per logged point, datasets, dataset_inputs, dataset_input_tags, run_model_inputs, run_model_outputs, logged_models with their tags, params and metrics, registered_models, registered_model_tags, model_versions, model_version_tags, registered_model_aliases, registry_events), the artifact files of the exported runs and logged models under DIR/artifacts/<path> (each checked against its SHA-256 as it is read), and DIR/manifest.json with row counts and the SHA-256 of every file. README.md ("Export format") documents every column; pandas and pyarrow read the tables without Cairn. Deleted experiments, runs and models are included with their lifecycle stage.

            The same content always exports to the same table bytes, so `cairn import cairn DIR` into another store and exporting that gives tables with the same SHA-256s. Reads the store directly: `cairn server` may keep running on it.

            Example:

              cairn export --data-dir ./cairn-data ./export
              cairn export --experiment churn --filter "metrics.auc > 0.9" ./churn-best
              python -c "import pandas; print(pandas.read_parquet('export/tables/metrics.parquet'))"
            """)

    @Argument(help: ArgumentHelp("The folder to write (created; must be empty unless --force).", valueName: "dir"))
    var directory: String

    @Option(name: .customLong("experiment"), help: ArgumentHelp("An experiment to export, by name or id; repeat for several. Default: all, deleted ones included.", valueName: "name"))
    var experiments: [String] = []

    @Option(help: ArgumentHelp("Only runs this search filter selects, e.g. \"metrics.auc > 0.9 and tags.team = 'nlp'\" (with the logged models of those runs, and the registered models with a version of them).", valueName: "filter"))
    var filter: String?

    @Flag(help: "Replace the export in a folder that is not empty.") var force = false

    @Flag(help: "Print the manifest's figures as JSON.") var json = false

    @OptionGroup var store: StoreOptions

    func run() async throws {
        let services = try store.openServices()
        guard let source = services.tracking.store as? SQLStore else { throw fail("The store opened for --data-dir / --backend-store-uri cannot be exported.") }
        let service = ExportService(store: source, blobs: services.artifacts.blobs, cairnVersion: cairnVersion, now: services.tracking.now)
        let started = Date()
        let manifest: ExportManifest
        do {
            manifest = try await service.export(ExportSelection(experiments: experiments, runFilter: filter),
                                                to: URL(fileURLWithPath: directory), force: force)
        } catch let error as CairnError {
            throw fail("The export stopped: \(error.message)")
        } catch {
            throw failure(error, doing: "The export to '\(directory)'")
        }
        let seconds = Date().timeIntervalSince(started)
        let bytes = manifest.tables.reduce(0) { $0 + $1.bytes }
        if json {
            printJSON(["directory": directory, "counts": manifest.counts, "table_bytes": bytes, "seconds": seconds])
            return
        }
        var table = TextTable(["TABLE", "ROWS", "BYTES", "SHA-256"])
        for t in manifest.tables { table.add([t.name, String(t.rows), String(t.bytes), String(t.sha256.prefix(16))]) }
        say(table.render())
        let artifactBytes = manifest.artifacts.reduce(0) { $0 + $1.size }
        say("Exported to \(directory): \(manifest.tables.reduce(0) { $0 + $1.rows }) rows in \(manifest.tables.count) tables (\(formatBytes(bytes))), \(manifest.artifacts.count) artifact files (\(formatBytes(artifactBytes))) in \(String(format: "%.1f", seconds)) s.")
    }
}

struct ImportCairnCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cairn",
        abstract: "Load a folder written by `cairn export` into this store, keeping ids, times and lifecycle.",
        discussion: """
            First checks every file of the export against the SHA-256 in its manifest.json and refuses a damaged export before writing anything. Then takes over the export's audit log when it has one (an export of everything): its events keep their numbers and hashes, so `cairn audit verify` checks them here, and the import's own events follow them in the chain; only a store whose audit log is empty (or already that chain) can take it, else it is listed as not imported (exit 1 unless --skip-unrepresentable). Then writes experiments, runs (params, tags, every metric point, dataset inputs), logged models, registered models (versions, aliases, tags and their registry history as recorded) and artifact files through the same import path as `cairn import mlflow`: each entity one transaction; one this store already holds as it is is left alone, one it holds with other content is a conflict, listed and never overwritten (exit 1). Running it again resumes an interrupted import and changes nothing after a complete one. Works into SQLite and PostgreSQL (--backend-store-uri).

            Example:

              cairn import cairn ./export --data-dir ./other-cairn-data
              cairn import cairn ./export --backend-store-uri postgresql://cairn:secret@db:5432/cairn
            """)

    @Argument(help: ArgumentHelp("A folder written by `cairn export`.", valueName: "dir"))
    var directory: String

    @Flag(help: "Print the report as JSON (no progress lines).") var json = false

    @Flag(name: .customLong("skip-unrepresentable"), help: "Leave out what this store cannot take (listed: an audit log when this store has its own) and still exit 0.")
    var skipUnrepresentable = false

    @OptionGroup var store: StoreOptions

    /// As the OS user, so the audit log says who changed the store.
    func run() async throws {
        try await withLocalIdentity { try await runLocally() }
    }

    private func runLocally() async throws {
        let configuration = try store.configuration()
        let services: CairnServiceSet
        do {
            services = try CairnServer.openServices(configuration)
        } catch let error as ConfigurationError {
            throw fail(error.message)
        }
        guard let target = services.tracking.store as? SQLStore else { throw fail("The store opened for --data-dir / --backend-store-uri cannot take imports.") }
        let service = ExportImportService(store: target, blobs: services.artifacts.blobs, now: services.tracking.now)
        let display = ImportProgress(enabled: !json, isTerminal: isatty(STDOUT_FILENO) == 1)
        let started = Date()
        let report: ImportReport
        do {
            report = try await service.importExport(from: URL(fileURLWithPath: directory)) { display.show($0) }
        } catch let error as CairnError {
            display.finish()
            throw fail("The import stopped: \(error.message)")
        } catch {
            display.finish()
            throw failure(error, doing: "The import of '\(directory)' (run the same command again to resume)")
        }
        display.finish()
        let seconds = Date().timeIntervalSince(started)
        let kinds: [ImportEvent.Kind] = [.auditEvent, .experiment, .run, .loggedModel, .registeredModel, .trace, .evaluationDataset]
        if json {
            printJSON([
                "created": Dictionary(uniqueKeysWithValues: kinds.map { ($0.rawValue, report.created[$0] ?? 0) }),
                "unchanged": Dictionary(uniqueKeysWithValues: kinds.map { ($0.rawValue, report.unchanged[$0] ?? 0) }),
                "merged": Dictionary(uniqueKeysWithValues: kinds.map { ($0.rawValue, report.merged[$0] ?? 0) }),
                "written_points": report.writtenPoints, "written_files": report.writtenFiles, "written_bytes": report.writtenBytes,
                "present_files": report.presentFiles, "changed_nothing": report.changedNothing, "seconds": seconds,
                "conflicts": report.conflicts.map { ["what": $0.what, "differences": $0.differences] as [String: Any] },
                "unrepresentable": report.unrepresentable.map { ["what": $0.what, "reason": $0.reason] },
            ])
        } else {
            sayImportSummary(report, kinds: kinds, seconds: seconds, empty: "The export holds nothing.", everything: "everything in the export")
            sayUnrepresentable(report, skipped: skipUnrepresentable)
        }
        if !report.conflicts.isEmpty || (!report.unrepresentable.isEmpty && !skipUnrepresentable) { throw ExitCode(1) }
    }
}
