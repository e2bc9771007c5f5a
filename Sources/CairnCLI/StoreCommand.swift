import ArgumentParser
import CairnArtifacts
import CairnCore
import CairnServices
import CairnStore
import Foundation

struct StoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Move a Cairn database to another backend.",
        discussion: """
            Example:

              cairn store copy --from ./cairn-data --to postgresql://cairn@db:5432/cairn
            """,
        subcommands: [StoreCopyCommand.self])
}

struct StoreCopyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy a SQLite data folder into a PostgreSQL database, resumably, and compare the two.",
        discussion: """
            Copies every experiment, run, param, tag, metric point, dataset input, logged model, registered model, version, alias, registry event and artifact manifest row, with their ids, in batches of one transaction each; with --artifacts-to also the artifact files (re-hashed as they are written; files the target already has are skipped). The target must be a new, empty database or one an earlier copy of the same source went to: an interrupted copy is resumed by running the same command again, and running it after it finished changes nothing. Anything else in the target is refused and nothing is changed. Stop the server that uses the source first, so the copy sees one state of it. At the end every table is counted and checksummed (SHA-256 over its rows in key order) on both sides; exits 1 if they differ.

            Example:

              export CAIRN_BACKEND_STORE_URI=postgresql://cairn:secret@db:5432/cairn
              cairn store copy --from ./cairn-data --artifacts-to /srv/cairn/artifacts
              cairn server --data-dir /srv/cairn
            """)

    @Option(help: ArgumentHelp("The source: a data folder (holding cairn.sqlite and artifacts/), a SQLite file or a sqlite:/// URI (env CAIRN_COPY_FROM).", valueName: "data-dir|file|uri"))
    var from: String?

    @Option(help: ArgumentHelp("The target database, postgresql://USER:PASSWORD@HOST:PORT/DATABASE (env CAIRN_COPY_TO, else CAIRN_BACKEND_STORE_URI).", valueName: "uri"))
    var to: String?

    @Option(name: .customLong("artifacts-to"), help: ArgumentHelp("Where the team server keeps artifacts, to copy the files into: its folder (<data-dir>/artifacts) or its bucket, s3://bucket/prefix (credentials and endpoint as for cairn server: AWS_*, MLFLOW_S3_ENDPOINT_URL); without it only their manifest is copied (env CAIRN_COPY_ARTIFACTS_TO).", valueName: "folder|s3://…"))
    var artifactsTo: String?

    @Option(name: .customLong("artifacts-from"), help: ArgumentHelp("The source's artifact folder, if not artifacts/ beside its database.", valueName: "folder"))
    var artifactsFrom: String?

    @Option(name: .customLong("batch-size"), help: ArgumentHelp("Rows per transaction (env CAIRN_COPY_BATCH_SIZE, default 500).", valueName: "n"))
    var batchSize: Int?

    @Option(name: .customLong("audit-key-file"), help: ArgumentHelp("The audit key the team servers use (env CAIRN_AUDIT_KEY_FILE), to sign the target's audit log head; without it the head stays unsigned until a server writes.", valueName: "path"))
    var auditKeyFile: String?

    @Flag(help: "Print the report and the comparison as JSON (no progress lines).") var json = false

    /// As the OS user, so the audit log says who changed the store.
    func run() async throws {
        try await withLocalIdentity { try await runLocally() }
    }

    private func runLocally() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let from = from ?? environment["CAIRN_COPY_FROM"], !from.isEmpty else {
            throw fail("Give the source with --from: the data folder `cairn server` used (e.g. ./cairn-data) or its cairn.sqlite.")
        }
        guard let to = to ?? environment["CAIRN_COPY_TO"] ?? environment["CAIRN_BACKEND_STORE_URI"], !to.isEmpty else {
            throw fail("Give the target with --to postgresql://USER:PASSWORD@HOST:PORT/DATABASE (a new, empty database).")
        }
        let batch = batchSize ?? environment["CAIRN_COPY_BATCH_SIZE"].flatMap { Int($0) } ?? 500
        guard batch > 0 else { throw fail("--batch-size must be a positive number of rows.") }
        let (databasePath, defaultArtifacts) = try Self.sourcePaths(from)
        guard PostgresLocation.isPostgres(to) else {
            throw fail("The target '\(PostgresLocation.redacted(to))' is not a PostgreSQL URI: give --to postgresql://USER:PASSWORD@HOST:PORT/DATABASE.")
        }
        let location: PostgresLocation
        do {
            location = try PostgresLocation(uri: to)
        } catch let error as CairnError {
            throw fail(error.message)
        }
        let sourceInUse = (try? SQLiteTrackingStore.withExclusiveUse(path: databasePath) { true }) == nil
        let source: SQLiteTrackingStore
        do {
            source = try SQLiteTrackingStore(path: databasePath)
        } catch let error as CairnError {
            throw fail("Cannot open the source database '\(databasePath)': \(error.message)")
        }
        let target: PostgresTrackingStore
        do {
            target = try PostgresTrackingStore(location: location, poolSize: 2)
        } catch let error as CairnError where error.code == .temporarilyUnavailable {
            throw fail("Cannot reach the target \(location): nothing was changed. Check that PostgreSQL runs there and that --to names the right host and port.")
        } catch let error as CairnError {
            throw fail("Cannot use the target \(location): \(error.message)")
        }
        defer { target.shutdown() }
        if let keyFile = auditKeyFile ?? environment["CAIRN_AUDIT_KEY_FILE"], !keyFile.isEmpty {
            do {
                target.useAuditKey(try AuditKey.load(path: keyFile, create: false))
            } catch let error as CairnError {
                throw fail(error.message)
            }
        }

        let artifactsFromPath = artifactsFrom ?? defaultArtifacts
        let sourceBlobs: LocalBlobStore? = FileManager.default.fileExists(atPath: artifactsFromPath)
            ? try? LocalBlobStore(root: URL(fileURLWithPath: artifactsFromPath)) : nil
        var targetBlobs: (any BlobStore)?
        if let folder = artifactsTo ?? environment["CAIRN_COPY_ARTIFACTS_TO"], !folder.isEmpty {
            if folder.hasPrefix("s3://") {
                // The team server's bucket, with the settings `cairn server --artifacts-destination` reads.
                do {
                    let bucket = S3BlobStore(configuration: try S3Configuration.resolve(
                        destination: folder, endpointURL: environment["CAIRN_S3_ENDPOINT_URL"] ?? environment["MLFLOW_S3_ENDPOINT_URL"],
                        environment: environment))
                    try await bucket.checkAccess()
                    targetBlobs = bucket
                } catch {
                    throw fail("Cannot use the bucket '\(folder)' (--artifacts-to): \(error.message)")
                }
            } else {
                do {
                    targetBlobs = try LocalBlobStore(root: URL(fileURLWithPath: folder))
                } catch {
                    throw fail("Cannot use the artifact folder '\(folder)' (--artifacts-to): \(error.message)")
                }
            }
        }
        let service = StoreCopyService(source: source, target: target, sourceBlobs: sourceBlobs, targetBlobs: targetBlobs,
                                       batchSize: batch, sourceName: "'\(databasePath)'", targetName: location.description)
        if !json {
            print("Copying '\(databasePath)' into \(location)")
            if sourceInUse {
                print("Note: a cairn server or another cairn command has the source open. Stop it so the copy sees one state of it; otherwise the closing comparison shows what changed meanwhile.")
            }
            if let artifactsTo = artifactsTo ?? environment["CAIRN_COPY_ARTIFACTS_TO"], !artifactsTo.isEmpty {
                print("Artifacts: '\(artifactsFromPath)' into '\(artifactsTo)'")
            } else {
                print("Artifacts: metadata only (no --artifacts-to): the manifest is copied, the files are not; copy them with --artifacts-to.")
            }
        }
        let report: StoreCopyReport
        let comparisons: [StoreTableComparison]
        let missingBlobs: [String]?
        do {
            let bar = ProgressPrinter(enabled: !json, isTerminal: isatty(STDOUT_FILENO) == 1)
            if !json { print("Checking the source's metric segments, then copying table by table:") }
            report = try await service.copy(progress: { bar.show($0) })
            if !json { print("Comparing source and target (row counts and SHA-256 of every table)…") }
            comparisons = try await service.compare()
            missingBlobs = try await service.missingTargetBlobs()
        } catch let error as CairnError {
            throw fail(error.message)
        }
        let differing = comparisons.filter { !$0.matches }
        let healthy = differing.isEmpty && report.unreadableBlobs.isEmpty && (missingBlobs ?? []).isEmpty
        if json {
            printJSON([
                "source": databasePath, "target": location.description, "resumed": report.resumed,
                "read_rows": report.readRows, "written_rows": report.writtenRows,
                "artifacts_copied": report.copiesArtifacts, "copied_blobs": report.copiedBlobs, "copied_bytes": report.copiedBytes,
                "present_blobs": report.presentBlobs,
                "unreadable_blobs": report.unreadableBlobs.map { ["path": $0.path, "sha256": $0.digest] },
                "missing_target_blobs": missingBlobs as Any,
                "tables": comparisons.map {
                    ["table": $0.table, "source_rows": $0.sourceRows, "target_rows": $0.targetRows,
                     "source_sha256": $0.sourceSHA256, "target_sha256": $0.targetSHA256, "matches": $0.matches] as [String: Any]
                },
                "identical": healthy,
            ])
        } else {
            print("\(report.resumed ? "Resumed an earlier copy" : "Copied"): \(report.readRows) rows read, \(report.writtenRows) written (rows the target already held as they are were left alone).")
            if report.copiesArtifacts {
                print("Artifact files: \(report.copiedBlobs) copied (\(formatBytes(report.copiedBytes))), \(report.presentBlobs) already there.")
            }
            for entry in report.unreadableBlobs {
                print("UNREADABLE  \(entry.path)  (sha256 \(entry.digest)): missing from the source's artifact folder or damaged there")
            }
            for digest in missingBlobs ?? [] { print("MISSING  blob \(digest) in the target's artifact folder") }
            print("")
            print(Self.comparisonTable(comparisons))
            if healthy {
                print("OK: source and target hold the same \(comparisons.count) tables.")
            } else {
                var problems: [String] = []
                if !differing.isEmpty { problems.append("\(differing.count) \(differing.count == 1 ? "table differs" : "tables differ") (\(differing.map(\.table).joined(separator: ", ")))") }
                if !report.unreadableBlobs.isEmpty { problems.append("\(report.unreadableBlobs.count) artifact files are unreadable in the source") }
                if let missingBlobs, !missingBlobs.isEmpty { problems.append("\(missingBlobs.count) artifact files are missing from the target") }
                print("DIFFERENT: \(problems.joined(separator: "; ")). If the source was in use during the copy, stop its server and run the copy again; rows deleted from the source after an earlier copy stay in the target, so then copy into a new, empty database.")
            }
        }
        if !healthy { throw ExitCode(1) }
    }

    /// The SQLite file `--from` names, and the artifact folder beside it.
    static func sourcePaths(_ from: String) throws -> (database: String, artifacts: String) {
        if PostgresLocation.isPostgres(from) {
            throw fail("--from '\(PostgresLocation.redacted(from))' is a PostgreSQL database; the copy reads a SQLite data folder, file or sqlite:/// URI.")
        }
        var path = from
        if from.hasPrefix("sqlite:///") {
            path = String(from.dropFirst("sqlite:///".count))
        } else if from.contains("://") {
            throw fail("Unsupported source '\(from)': give a data folder, a SQLite file or sqlite:///path.")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw fail("The source '\(path)' does not exist. Give the data folder `cairn server` used (e.g. ./cairn-data) or its cairn.sqlite.")
        }
        if isDirectory.boolValue {
            let database = (path as NSString).appendingPathComponent("cairn.sqlite")
            guard FileManager.default.fileExists(atPath: database) else {
                throw fail("The folder '\(path)' holds no cairn.sqlite: it is not a Cairn data folder.")
            }
            return (database, (path as NSString).appendingPathComponent("artifacts"))
        }
        return (path, ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("artifacts"))
    }

    static func comparisonTable(_ comparisons: [StoreTableComparison]) -> String {
        var table = TextTable(["TABLE", "SOURCE ROWS", "TARGET ROWS", "SOURCE SHA-256", "TARGET SHA-256", "RESULT"])
        for c in comparisons {
            table.add([c.table, String(c.sourceRows), String(c.targetRows), String(c.sourceSHA256.prefix(16)),
                       String(c.targetSHA256.prefix(16)), c.matches ? "same" : "DIFFERENT"])
        }
        return table.render()
    }
}

/// The copy's progress on standard output: a bar redrawn in place on a terminal, else one
/// plain line per finished table.
final class ProgressPrinter: Sendable {
    let enabled: Bool
    let isTerminal: Bool

    init(enabled: Bool, isTerminal: Bool) {
        self.enabled = enabled
        self.isTerminal = isTerminal
    }

    func show(_ progress: StoreCopyProgress) {
        guard enabled else { return }
        let label = "[\(progress.tableIndex + 1)/\(progress.tableCount)] \(progress.table)"
        if isTerminal {
            let width = 30
            let fraction = progress.totalRows == 0 ? 1 : min(1, Double(progress.copiedRows) / Double(progress.totalRows))
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            let line = "\r" + label.padding(toLength: 34, withPad: " ", startingAt: 0) + " [\(bar)] \(progress.copiedRows)/\(progress.totalRows)"
            try? FileHandle.standardOutput.write(contentsOf: Data((line + (progress.isTableFinished ? "\n" : "")).utf8))
        } else if progress.isTableFinished {
            print("\(label): \(progress.copiedRows) \(progress.copiedRows == 1 ? "row" : "rows")")
        }
    }
}
