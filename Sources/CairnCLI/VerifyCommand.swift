import ArgumentParser
import CairnCore
import CairnServer
import CairnServices
import CairnStore
import Foundation

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check the database and every stored artifact for damage.",
        discussion: """
            Checks everything Cairn stores against the checksums it keeps: SQLite's own structure check (PRAGMA integrity_check); the check of every metadata row (experiments, runs, params, tags, datasets, logged models, registry, artifact manifest); the CRC-32C of every metric segment, and each series' summary against its points; and the SHA-256 of every artifact blob, with every artifact path's blob present. Exits 0 when all is whole, 1 when anything is damaged or missing (each is listed with what it belongs to). It runs while the server is up.

            Example:

              cairn verify --data-dir ./cairn-data
            """)

    @OptionGroup var store: StoreOptions
    @Flag(help: "Print the report as JSON.") var json = false
    @Flag(help: "Progress lines on stderr once a second, also when stderr is not a terminal (on a terminal one line shows it anyway).")
    var progress = false

    func run() async throws {
        let services = try store.openServices()
        let database: IntegrityReport
        let printer = StoreProgress(forced: progress, prefix: "verify")
        do {
            database = try await services.tracking.checkIntegrity(progress: printer.report)
        } catch {
            printer.finish()
            throw fail("The database could not be checked: \(error). It may be damaged beyond reading; restore it from a backup (`cairn restore`).")
        }
        let report = try await services.artifacts.verify(progress: printer.report)
        printer.finish()
        let healthy = report.isHealthy && database.isHealthy
        if json {
            printJSON([
                "checked_blobs": report.checkedBlobs, "checked_bytes": report.checkedBytes,
                "missing": report.missing.map { ["path": $0.path, "sha256": $0.digest] },
                "damaged": report.damaged.map { ["path": $0.path, "sha256": $0.digest] },
                "damaged_unreferenced_blobs": report.damagedUnreferenced,
                "database": [
                    "checked_rows": database.checkedRows, "checked_segments": database.checkedSegments,
                    "checked_points": database.checkedPoints,
                    "integrity_check": database.integrityProblems,
                    "damaged_rows": database.damagedRows.map { ["table": $0.table, "key": $0.key, "owner": $0.owner ?? ""] },
                    "damaged_series": database.damagedSeries.map { ["run_id": $0.runID, "key": $0.key, "detail": $0.detail] },
                ] as [String: Any],
                "healthy": healthy,
            ])
        } else {
            for line in database.integrityProblems { print("DAMAGED  database structure: \(line)") }
            for row in database.damagedRows {
                print("DAMAGED  \(row.table) row \(row.key)\(row.owner.map { " (\($0))" } ?? ""): its contents no longer match its check")
            }
            for series in database.damagedSeries { print("DAMAGED  metric '\(series.key)' of run \(series.runID): \(series.detail)") }
            for entry in report.missing { print("MISSING  \(entry.path)  (sha256 \(entry.digest))") }
            for entry in report.damaged { print("DAMAGED  \(entry.path)  (sha256 \(entry.digest))") }
            for digest in report.damagedUnreferenced { print("DAMAGED  unreferenced blob \(digest) (cairn gc removes it)") }
            let summary = "\(database.checkedRows) rows, \(database.checkedSegments) metric segments (\(database.checkedPoints) points), "
                + "\(report.checkedBlobs) blobs (\(formatBytes(report.checkedBytes))) verified"
            if healthy {
                print("OK: \(summary); nothing missing or damaged.")
            } else {
                let damagedCount = database.integrityProblems.count + database.damagedRows.count + database.damagedSeries.count
                    + report.damaged.count + report.damagedUnreferenced.count
                print("FAILED: \(summary); \(report.missing.count) missing, \(damagedCount) damaged. "
                      + "Restore from your latest backup (`cairn restore <backup-folder> --force`), or re-log what is listed.")
            }
        }
        if !healthy { throw ExitCode(1) }
    }
}

struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the database and artifacts into a backup folder, while the server runs.",
        discussion: """
            Writes an online, consistent copy of the database (one snapshot, taken with SQLite's backup API while the server keeps serving; it holds the artifact manifest and the model registry) and of every artifact blob it references, re-hashed as they are copied. The folder is laid out like a data folder: `cairn restore <folder>` puts it back, and `cairn server --data-dir <folder>` serves it as it is. The copy is checked like `cairn verify` does; exits 1 if the copy has damage (then the source has it too: run `cairn verify`).

            Example:

              cairn backup /backups/cairn-2026-11-26
              cairn backup --no-artifacts /backups/db-only
            """)

    @OptionGroup var store: StoreOptions
    @Argument(help: ArgumentHelp("A new (or empty) folder for the backup.", valueName: "folder"))
    var folder: String
    @Flag(name: .customLong("no-artifacts"), help: "Copy only the database (with the artifact manifest), not the artifact files.")
    var noArtifacts = false
    @Flag(help: "Print the report as JSON.") var json = false

    func run() async throws {
        let services = try store.openServices()
        let report: BackupReport
        do {
            report = try await services.backup.backup(to: folder, includeArtifacts: !noArtifacts)
        } catch let error as CairnError {
            throw fail(error.message)
        }
        printBackupReport(report, verb: "Backed up", folder: folder, json: json)
        if !report.integrity.isHealthy || !report.unreadableBlobs.isEmpty { throw ExitCode(1) }
    }
}

struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Put a backup made by `cairn backup` back into a data folder.",
        discussion: """
            Checks the backup first (a damaged backup is refused and nothing changes), then installs its database and copies its artifact blobs (re-hashed) into the data folder. Stop the server first: restore refuses while a server or another cairn command has the database open. An existing database is kept beside the new one as cairn.sqlite.before-restore-<time>, and only with --force.

            Example:

              cairn restore /backups/cairn-2026-11-26 --data-dir ./cairn-data --force
            """)

    @OptionGroup var store: StoreOptions
    @Argument(help: ArgumentHelp("A folder written by `cairn backup`.", valueName: "folder"))
    var folder: String
    @Flag(help: "Replace an existing database (it is kept as <database>.before-restore-<time>).")
    var force = false
    @Flag(help: "Print the report as JSON.") var json = false

    func run() async throws {
        let configuration = try store.configuration()
        let report: BackupReport
        do {
            report = try await BackupService.restore(from: folder, databasePath: try configuration.databasePath(),
                                                     artifacts: try openBlobStore(configuration), replace: force)
        } catch let error as CairnError {
            throw fail(error.message)
        } catch let error as ConfigurationError {
            throw fail(error.message)
        }
        if !report.integrity.isHealthy {
            throw fail("The backup in '\(folder)' is damaged (\(report.integrity.damagedRows.count) rows, \(report.integrity.damagedSeries.count) metric series, \(report.integrity.integrityProblems.count) structure problems); nothing was restored. Use an older backup.")
        }
        printBackupReport(report, verb: "Restored", folder: folder, json: json)
        if !report.unreadableBlobs.isEmpty { throw ExitCode(1) }
    }
}

func printBackupReport(_ report: BackupReport, verb: String, folder: String, json: Bool) {
    if json {
        printJSON([
            "database_bytes": report.databaseBytes, "copied_blobs": report.copiedBlobs, "copied_bytes": report.copiedBytes,
            "unreadable_blobs": report.unreadableBlobs.map { ["path": $0.path, "sha256": $0.digest] },
            "healthy": report.integrity.isHealthy && report.unreadableBlobs.isEmpty,
        ])
        return
    }
    for entry in report.unreadableBlobs { print("MISSING  \(entry.path)  (sha256 \(entry.digest)): missing or damaged, not copied") }
    if !report.integrity.isHealthy {
        print("DAMAGED  the database copy fails its checks; run `cairn verify` on the data folder")
    }
    print("\(verb) the database (\(formatBytes(report.databaseBytes))) and \(report.copiedBlobs) artifact blobs (\(formatBytes(report.copiedBytes))) \(verb == "Restored" ? "from" : "to") \(folder).")
}

struct GCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove artifact blobs that nothing references, including those of deleted runs.",
        discussion: """
            Purges the database rows (metric points, params, tags, dataset inputs) of runs deleted at least --older-than ago (default 30d; such runs can no longer be restored), except runs a registered model version or a logged model comes from. Forgets the artifacts of runs in the deleted state, then removes every blob no artifact path references. Blobs shared with live runs stay. Files that a registered model version (any stage, with or without aliases) or a logged model uses are never forgotten, even when the run they were logged in is deleted: each such run is listed as "kept N files of deleted run <id>: used by model <name> version <n>". Blobs written in the last 15 minutes are kept (an upload may still be recording them). Also removes the partial files of uploads whose writer died (e.g. a server killed mid-upload), once untouched for a minute; a file still being written is never removed. With --artifacts-destination s3://…, the same runs against the bucket: unfinished multipart uploads under <prefix>/uploads/ are aborted and leftover temporary objects there are deleted, each once untouched for 15 minutes (S3 cannot tell whether a writer is alive). Use --dry-run first to see what would go and how many bytes it frees.

            Example:

              cairn gc --dry-run
              cairn gc
            """)

    @OptionGroup var store: StoreOptions
    @Flag(name: .customLong("dry-run"), help: "Show what would be removed without removing anything.") var dryRun = false
    @Flag(help: "Progress lines on stderr once a second, also when stderr is not a terminal (on a terminal one line shows it anyway).")
    var progress = false
    @Option(name: .customLong("older-than"),
            help: ArgumentHelp("Also purge the database rows (metric points, params, tags, inputs) of runs deleted at least this long ago, e.g. 30d or 0s; such runs can no longer be restored (default 30d).", valueName: "duration"))
    var olderThan = "30d"
    @Flag(help: "Print the report as JSON.") var json = false

    /// As the OS user, so the audit log says who changed the store.
    func run() async throws {
        try await withLocalIdentity { try await runLocally() }
    }

    private func runLocally() async throws {
        // 0 (in any unit) purges every deleted run; parseDuration reads positive durations only.
        let isZero = Double(olderThan.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: .letters)) == 0
        guard let purgeAfter = isZero ? 0 : StaleRuns.parseDuration(olderThan) else {
            throw fail("--older-than '\(olderThan)' is not a duration. Write it like 30d, 12h or 0s.")
        }
        let artifacts = try store.openArtifactService()
        let printer = StoreProgress(forced: progress, prefix: "gc")
        let report = try await artifacts.collectGarbage(dryRun: dryRun, purgeAfterMillis: purgeAfter, progress: printer.report)
        printer.finish()
        let purged = report.purged ?? PurgedRuns()
        if json {
            printJSON([
                "dry_run": dryRun,
                "purged_runs": purged.runIDs, "purged_rows": purged.rows, "purged_metric_points": purged.metricPoints,
                "purged_bytes": purged.bytes, "kept_deleted_runs": purged.keptRunIDs,
                "forgotten_paths": report.removedManifestEntries.map(\.path),
                "kept": report.keptManifestEntries.map {
                    ["run_id": $0.runID, "paths": $0.entries.map(\.path), "used_by": $0.users.map(\.description)] as [String: Any]
                },
                "removed_blobs": report.removedBlobs.map { ["sha256": $0.digest, "size": $0.size] },
                "removed_temp_files": report.removedTempFiles.map { ["name": $0.name, "size": $0.size] },
                "freed_bytes": report.freedBytes,
            ])
            return
        }
        let verb = dryRun ? "Would remove" : "Removed"
        for entry in report.removedManifestEntries { print("\(dryRun ? "would forget" : "forgot")  \(entry.path)") }
        for kept in report.keptManifestEntries {
            print("\(dryRun ? "would keep" : "kept")  \(kept.entries.count) \(kept.entries.count == 1 ? "file" : "files") of deleted run \(kept.runID): "
                  + "used by \(kept.users.map(\.description).joined(separator: ", "))")
        }
        for blob in report.removedBlobs { print("\(dryRun ? "would remove" : "removed")  \(blob.digest)  \(formatBytes(blob.size))") }
        for file in report.removedTempFiles { print("\(dryRun ? "would remove" : "removed")  partial upload \(file.name)  \(formatBytes(file.size))") }
        for run in purged.runIDs { print("\(dryRun ? "would purge" : "purged")  run \(run)") }
        if !purged.keptRunIDs.isEmpty {
            print("\(dryRun ? "would keep" : "kept")  the data of \(purged.keptRunIDs.count) deleted run\(purged.keptRunIDs.count == 1 ? "" : "s") a registered model version or a logged model comes from")
        }
        print("\(dryRun ? "Would purge" : "Purged") \(purged.runIDs.count) run\(purged.runIDs.count == 1 ? "" : "s") deleted over \(olderThan) ago: "
              + "\(purged.totalRows) database rows (\(purged.metricPoints) metric points, \(formatBytes(purged.bytes))).")
        print("\(verb) \(report.removedBlobs.count) blobs, \(report.removedTempFiles.count) partial uploads (\(formatBytes(report.freedBytes))) and \(report.removedManifestEntries.count) paths of deleted runs.")
    }
}
