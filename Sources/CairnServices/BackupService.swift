import CairnArtifacts
import CairnCore
import CairnStore
import Foundation

/// What `cairn backup` wrote.
public struct BackupReport: Sendable {
    public var databaseBytes: Int64 = 0
    public var copiedBlobs = 0
    public var copiedBytes: Int64 = 0
    /// Blobs the manifest references that were missing or failed their digest while copied.
    public var unreadableBlobs: [ArtifactEntry] = []
    /// The copy's own integrity check.
    public var integrity = IntegrityReport()
}

/// Backups: an online, consistent copy of the database (which holds the artifact manifest)
/// plus the artifact blobs it references, laid out like a data folder, so a backup folder can
/// be restored with `cairn restore` or served as it is with `cairn server --data-dir`.
public struct BackupService: Sendable {
    public let store: any TrackingStore
    public let index: any ArtifactIndex
    public let blobs: any BlobStore

    public init(store: any TrackingStore, index: any ArtifactIndex, blobs: any BlobStore) {
        self.store = store
        self.index = index
        self.blobs = blobs
    }

    /// The database file inside a backup folder, and the blob store beside it.
    public static func backupDatabasePath(in folder: String) -> String { folder + "/cairn.sqlite" }
    public static func backupArtifactPath(in folder: String) -> String { folder + "/artifacts" }

    /// Writes the backup into `folder` (which must not exist, or be empty). The database copy is
    /// one snapshot; the blobs it references are copied and re-hashed on the way, so a damaged
    /// source blob is reported, not silently copied. With `includeArtifacts` false, only the
    /// database (and its manifest) is copied.
    public func backup(to folder: String, includeArtifacts: Bool) async throws -> BackupReport {
        let fileManager = FileManager.default
        if let contents = try? fileManager.contentsOfDirectory(atPath: folder), !contents.isEmpty {
            throw CairnError.invalidParameter("'\(folder)' is not empty. Give a new folder for the backup (e.g. one named after today's date).")
        }
        do {
            try fileManager.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw CairnError.invalidParameter("Cannot create the backup folder '\(folder)': \(error.localizedDescription)")
        }
        var report = BackupReport()
        let database = Self.backupDatabasePath(in: folder)
        let partial = database + ".partial"
        try await store.backupDatabase(to: partial)
        guard rename(partial, database) == 0 else {
            throw CairnError(.internalError, "Cannot move the database copy into place at '\(database)': \(String(cString: strerror(errno))).")
        }
        report.databaseBytes = ((try? fileManager.attributesOfItem(atPath: database)[.size]) as? NSNumber)?.int64Value ?? 0
        let copy = try SQLiteTrackingStore(path: database)
        report.integrity = try await copy.checkIntegrity()
        let entries = try await copy.listArtifacts(under: "")
        try copy.close()
        _ = unlink(database + ".lock")
        guard includeArtifacts else { return report }
        let target = try LocalBlobStore(root: URL(fileURLWithPath: Self.backupArtifactPath(in: folder)))
        var done = Set<String>()
        for entry in entries where done.insert(entry.digest).inserted {
            let copied = try await Self.copyBlob(entry.digest, from: blobs, to: target)
            if let copied {
                report.copiedBlobs += 1
                report.copiedBytes += copied
            } else {
                report.unreadableBlobs.append(entry)
            }
        }
        return report
    }

    /// Copies one blob, re-hashing it on the way; nil when it is missing or its bytes no longer
    /// match its digest (the partial copy is removed).
    static func copyBlob(_ digest: String, from source: any BlobStore, to target: any BlobStore) async throws -> Int64? {
        if try await target.contains(digest) { return try await target.size(of: digest) }
        guard let content = try await source.read(digest, range: nil) else { return nil }
        let info = try await target.write(content.bytes, maxBytes: nil)
        guard info.digest == digest else {
            try await target.remove(info.digest)
            return nil
        }
        return info.size
    }

    /// Puts a backup folder's database and blobs into a data folder: the backup is checked
    /// first (a damaged backup is refused), an existing database is moved aside to
    /// `<database>.before-restore-<time>` (only with `replace`), and nothing may be using it.
    /// The blobs go into `artifacts` (the data folder's, or the bucket `cairn server` uses).
    public static func restore(from folder: String, databasePath: String, artifacts target: any BlobStore, replace: Bool) async throws -> BackupReport {
        let fileManager = FileManager.default
        let source = backupDatabasePath(in: folder)
        guard fileManager.fileExists(atPath: source) else {
            throw CairnError.invalidParameter("'\(folder)' holds no cairn.sqlite: it is not a Cairn backup folder (make one with `cairn backup`).")
        }
        let exists = fileManager.fileExists(atPath: databasePath)
        if exists, !replace {
            throw CairnError.invalidParameter("A database already exists at '\(databasePath)'. Add --force to move it aside (it is kept as \(databasePath).before-restore-<time>) and restore over it.")
        }
        // Check the backup on a scratch copy (opening a store may migrate it; the backup stays as it was).
        let staged = databasePath + ".restoring"
        for suffix in ["", "-wal", "-shm", ".lock"] { _ = unlink(staged + suffix) }
        do {
            try fileManager.createDirectory(atPath: (databasePath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try fileManager.copyItem(atPath: source, toPath: staged)
        } catch {
            throw CairnError.invalidParameter("Cannot copy the backup's database to '\(staged)': \(error.localizedDescription)")
        }
        var report = BackupReport()
        do {
            let check = try SQLiteTrackingStore(path: staged)
            report.integrity = try await check.checkIntegrity()
            try check.close()
            report.databaseBytes = ((try? fileManager.attributesOfItem(atPath: staged)[.size]) as? NSNumber)?.int64Value ?? 0
        }
        guard report.integrity.isHealthy else {
            for suffix in ["", "-wal", "-shm", ".lock"] { _ = unlink(staged + suffix) }
            return report
        }
        try SQLiteTrackingStore.withExclusiveUse(path: databasePath) {
            if exists {
                let aside = databasePath + ".before-restore-\(Int64(Date().timeIntervalSince1970))"
                for suffix in ["", "-wal", "-shm"] where fileManager.fileExists(atPath: databasePath + suffix) {
                    guard rename(databasePath + suffix, aside + suffix) == 0 else {
                        throw CairnError(.internalError, "Cannot move '\(databasePath + suffix)' aside: \(String(cString: strerror(errno))).")
                    }
                }
            }
            for suffix in ["-wal", "-shm"] { _ = unlink(staged + suffix) }
            guard rename(staged, databasePath) == 0 else {
                throw CairnError(.internalError, "Cannot move the restored database into place at '\(databasePath)': \(String(cString: strerror(errno))).")
            }
        }
        _ = unlink(staged + ".lock")
        let backupBlobs = try LocalBlobStore(root: URL(fileURLWithPath: backupArtifactPath(in: folder)))
        let restored = try SQLiteTrackingStore(path: databasePath)
        let entries = try await restored.listArtifacts(under: "")
        try restored.close()
        var done = Set<String>()
        for entry in entries where done.insert(entry.digest).inserted {
            if let copied = try await copyBlob(entry.digest, from: backupBlobs, to: target) {
                report.copiedBlobs += 1
                report.copiedBytes += copied
            } else {
                report.unreadableBlobs.append(entry)
            }
        }
        return report
    }
}
