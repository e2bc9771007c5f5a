import ArgumentParser
import CairnServices
import Foundation

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Re-hash every stored artifact and report missing or damaged ones.",
        discussion: """
            Re-hashes every stored blob (SHA-256) and checks that every artifact path's blob exists. Exits 0 when all verify, 1 when any artifact is missing or damaged (each is listed with its path).

            Example:

              cairn verify --data-dir ./cairn-data
            """)

    @OptionGroup var store: StoreOptions
    @Flag(help: "Print the report as JSON.") var json = false

    func run() async throws {
        let artifacts = try store.openArtifactService()
        let report = try await artifacts.verify()
        if json {
            printJSON([
                "checked_blobs": report.checkedBlobs, "checked_bytes": report.checkedBytes,
                "missing": report.missing.map { ["path": $0.path, "sha256": $0.digest] },
                "damaged": report.damaged.map { ["path": $0.path, "sha256": $0.digest] },
                "damaged_unreferenced_blobs": report.damagedUnreferenced,
                "healthy": report.isHealthy,
            ])
        } else {
            for entry in report.missing { print("MISSING  \(entry.path)  (sha256 \(entry.digest))") }
            for entry in report.damaged { print("DAMAGED  \(entry.path)  (sha256 \(entry.digest))") }
            for digest in report.damagedUnreferenced { print("DAMAGED  unreferenced blob \(digest) (cairn gc removes it)") }
            let summary = "\(report.checkedBlobs) blobs, \(formatBytes(report.checkedBytes)) verified"
            if report.isHealthy {
                print("OK: \(summary); nothing missing or damaged.")
            } else {
                print("FAILED: \(summary); \(report.missing.count) missing, \(report.damaged.count + report.damagedUnreferenced.count) damaged. Restore them from a backup or re-log them.")
            }
        }
        if !report.isHealthy { throw ExitCode(1) }
    }
}

struct GCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove artifact blobs that nothing references, including those of deleted runs.",
        discussion: """
            Forgets the artifacts of runs in the deleted state, then removes every blob no artifact path references. Blobs shared with live runs stay. Blobs written in the last 15 minutes are kept (an upload may still be recording them). Use --dry-run first to see what would go and how many bytes it frees.

            Example:

              cairn gc --dry-run
              cairn gc
            """)

    @OptionGroup var store: StoreOptions
    @Flag(name: .customLong("dry-run"), help: "Show what would be removed without removing anything.") var dryRun = false
    @Flag(help: "Print the report as JSON.") var json = false

    func run() async throws {
        let artifacts = try store.openArtifactService()
        let report = try await artifacts.collectGarbage(dryRun: dryRun)
        if json {
            printJSON([
                "dry_run": dryRun,
                "forgotten_paths": report.removedManifestEntries.map(\.path),
                "removed_blobs": report.removedBlobs.map { ["sha256": $0.digest, "size": $0.size] },
                "freed_bytes": report.freedBytes,
            ])
            return
        }
        let verb = dryRun ? "Would remove" : "Removed"
        for entry in report.removedManifestEntries { print("\(dryRun ? "would forget" : "forgot")  \(entry.path)") }
        for blob in report.removedBlobs { print("\(dryRun ? "would remove" : "removed")  \(blob.digest)  \(formatBytes(blob.size))") }
        print("\(verb) \(report.removedBlobs.count) blobs (\(formatBytes(report.freedBytes))) and \(report.removedManifestEntries.count) paths of deleted runs.")
    }
}
