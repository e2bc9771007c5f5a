import CairnArtifacts
import CairnCore
import CairnStore
import Foundation
import NIOCore

/// One entry of a folder listing.
public struct ArtifactListing: Sendable, Hashable {
    /// Relative to the listed folder's owner (see the callers).
    public var path: String
    public var isDirectory: Bool
    public var size: Int64?
    public var digest: String?
}

public struct ArtifactVerifyReport: Sendable {
    public var checkedBlobs = 0
    public var checkedBytes: Int64 = 0
    /// Manifest paths whose blob is missing or damaged.
    public var missing: [ArtifactEntry] = []
    public var damaged: [ArtifactEntry] = []
    /// Damaged blobs no path references (harmless, removed by `cairn gc`).
    public var damagedUnreferenced: [String] = []
    public var isHealthy: Bool { missing.isEmpty && damaged.isEmpty && damagedUnreferenced.isEmpty }
}

public struct ArtifactGCReport: Sendable {
    public var removedManifestEntries: [ArtifactEntry] = []
    /// Files of deleted runs that a model version or a logged model uses: never forgotten,
    /// so their blobs stay.
    public var keptManifestEntries: [KeptArtifacts] = []
    public var removedBlobs: [BlobInfo] = []
    /// Partial uploads left by writers that died.
    public var removedTempFiles: [AbandonedTempFile] = []
    /// Database rows of runs deleted longer than the purge grace (nil when not asked for).
    public var purged: PurgedRuns?
    public var freedBytes: Int64 { removedBlobs.reduce(0) { $0 + $1.size } + removedTempFiles.reduce(0) { $0 + $1.size } }
}

/// The artifact rules: paths are validated and can never leave the artifact root; a file's
/// manifest row is committed only after its content blob is durable; identical content is
/// stored once.
public struct ArtifactService: Sendable {
    public let index: any ArtifactIndex
    public let blobs: any BlobStore
    public let tracking: TrackingService

    public init(index: any ArtifactIndex, blobs: any BlobStore, tracking: TrackingService) {
        self.index = index
        self.blobs = blobs
        self.tracking = tracking
    }

    /// Streams an upload into the blob store, then records it at `path` (the store refuses a
    /// path that is a folder or lies under a file; the blob then waits for `cairn gc`).
    public func upload<Chunks: AsyncSequence & Sendable>(path: String, body: Chunks) async throws -> ArtifactEntry where Chunks.Element == ByteBuffer {
        let artifactPath = try ArtifactPath(validating: path)
        let blob = try await blobs.write(body, maxBytes: nil)
        let entry = ArtifactEntry(path: artifactPath.string, digest: blob.digest, size: blob.size)
        try await index.recordArtifact(entry, now: tracking.now())
        return entry
    }

    /// The stored file at `path` (its digest and size).
    public func entry(path: String) async throws -> ArtifactEntry {
        let artifactPath = try ArtifactPath(validating: path)
        guard let entry = try await index.fetchArtifact(path: artifactPath.string) else {
            if try await !index.listArtifacts(under: artifactPath.string).isEmpty {
                throw CairnError.invalidParameter("Artifact path refers to a directory, not a file: '\(artifactPath.string)'")
            }
            throw CairnError.notFound("No such artifact: '\(artifactPath.string)'. List the folder to see what is stored.")
        }
        return entry
    }

    /// The stored file `path` below the artifact URI `root`: an `mlflow-artifacts:` URI this
    /// server serves, or `runs:/<run>/<folder>` (a model version's download URI) resolved to
    /// that run's artifacts. MLflow's own web app reads files this way (`/get-artifact`).
    public func entry(path: String, under root: String) async throws -> ArtifactEntry {
        var root = root
        if let (runID, folder) = ArtifactLocation.runSource(root) {
            let runRoot = try await tracking.getRun(id: runID).info.artifactURI
            root = folder.isEmpty ? runRoot : runRoot + "/" + folder
        }
        guard let folder = Self.proxyPath(fromArtifactURI: root) else {
            throw CairnError.invalidParameter("The artifact location '\(root)' is not served by this server.")
        }
        let relative = try ArtifactPath(validating: path)
        return try await entry(path: folder.isEmpty ? relative.string : folder + "/" + relative.string)
    }

    /// Streams a stored file's bytes, or the inclusive byte range `range` of them (which the
    /// caller has checked against `entry.size`).
    public func read(_ entry: ArtifactEntry, range: ClosedRange<Int64>? = nil) async throws -> ByteStream {
        guard let content = try await blobs.read(entry.digest, range: range) else {
            throw CairnError(.internalError, "The content of artifact '\(entry.path)' (sha256 \(entry.digest)) is missing from the blob store; run `cairn verify`.")
        }
        return content.bytes
    }

    /// The direct children of the folder `directory` ("" = the root), names relative to it.
    /// A file or an absent path lists as nothing, as in MLflow.
    public func list(directory: String) async throws -> [ArtifactListing] {
        let folder = try ArtifactPath(validating: directory, allowRoot: true)
        let entries = try await index.listArtifacts(under: folder.string)
        return Self.children(of: entries, folder: folder.string)
    }

    /// `artifacts/list` of the tracking API: the children of `path` in the run's artifact root,
    /// with paths relative to that root.
    public func listRunArtifacts(runID: String, path: String?) async throws -> (rootURI: String, files: [ArtifactListing]) {
        let run = try await tracking.getRun(id: runID)
        return (run.info.artifactURI, try await list(path ?? "", under: run.info.artifactURI, owner: "run"))
    }

    /// `logged-models/{id}/artifacts/directories`: the children of `path` in the logged model's
    /// artifact root, with paths relative to that root.
    public func listLoggedModelArtifacts(modelID: String, path: String?) async throws -> (rootURI: String, files: [ArtifactListing]) {
        let model = try await tracking.getLoggedModel(id: modelID)
        return (model.artifactURI, try await list(path ?? "", under: model.artifactURI, owner: "logged model"))
    }

    /// The stored file `path` among a logged model's artifacts (MLflow's web app reads them so).
    public func loggedModelEntry(modelID: String, path: String) async throws -> ArtifactEntry {
        try await entry(path: path, under: tracking.getLoggedModel(id: modelID).artifactURI)
    }

    /// The largest file MLflow's web app may upload into a run (`ajax-api/…/upload-artifact`).
    public static let maxUIUploadBytes = 10 * 1024 * 1024

    /// A file MLflow's web app uploads into a run's artifacts (`path` relative to the run's
    /// root), with MLflow's checks: a path, some data, at most `maxUIUploadBytes`, a known run.
    public func uploadRunArtifact(runID: String?, path: String?, data: ByteBuffer) async throws -> ArtifactEntry {
        guard let runID, !runID.isEmpty else { throw CairnError.invalidParameter("Request must specify run_uuid.") }
        guard let path, !path.isEmpty else { throw CairnError.invalidParameter("Request must specify path.") }
        let relative = try ArtifactPath(validating: path)
        guard data.readableBytes > 0 else { throw CairnError.invalidParameter("Request must specify data.") }
        guard data.readableBytes <= Self.maxUIUploadBytes else { throw Self.uiUploadTooLarge }
        let root = try await tracking.getRun(id: runID).info.artifactURI
        guard let folder = Self.proxyPath(fromArtifactURI: root) else {
            throw CairnError.invalidParameter("The run's artifact location '\(root)' is not served by this server.")
        }
        return try await upload(path: folder + "/" + relative.string, body: ByteBufferChunks([data]))
    }

    public static let uiUploadTooLarge = CairnError.invalidParameter("Artifact size is too large. Max size is 10MB.")

    /// The children of `path` below the artifact URI `root` of a run or logged model (`owner`),
    /// named relative to `root`.
    func list(_ path: String, under root: String, owner: String) async throws -> [ArtifactListing] {
        guard let rootFolder = Self.proxyPath(fromArtifactURI: root) else {
            throw CairnError.invalidParameter("The \(owner)'s artifact location '\(root)' is not served by this server.")
        }
        let relative = try ArtifactPath(validating: path, allowRoot: true)
        let folder = relative.string.isEmpty ? rootFolder : rootFolder + "/" + relative.string
        let entries = try await index.listArtifacts(under: folder)
        let prefix = relative.string.isEmpty ? "" : relative.string + "/"
        return Self.children(of: entries, folder: folder).map { child -> ArtifactListing in
            var child = child
            child.path = prefix + child.path
            return child
        }
    }

    public func delete(path: String) async throws {
        let artifactPath = try ArtifactPath(validating: path)
        let removed = try await index.deleteArtifacts(at: artifactPath.string)
        if removed.isEmpty {
            throw CairnError.notFound("No artifact at '\(artifactPath.string)'.")
        }
    }

    /// Re-hashes every stored blob, and checks that every blob the manifest references exists.
    public func verify(progress: ProgressReport? = nil) async throws -> ArtifactVerifyReport {
        var report = ArtifactVerifyReport()
        var health: [String: BlobHealth] = [:]
        let all = try await blobs.allBlobs()
        for blob in all {
            if report.checkedBlobs % 100 == 0 {
                progress?("artifact blobs: \(report.checkedBlobs) of \(all.count) (\(report.checkedBytes) bytes) hashed")
            }
            health[blob.digest] = try await blobs.verify(blob.digest)
            report.checkedBlobs += 1
            report.checkedBytes += blob.size
        }
        var referenced = Set<String>()
        for entry in try await index.listArtifacts(under: "") {
            referenced.insert(entry.digest)
            switch health[entry.digest] ?? .missing {
            case .ok: break
            case .missing: report.missing.append(entry)
            case .damaged: report.damaged.append(entry)
            }
        }
        for (digest, result) in health where !referenced.contains(digest) {
            if case .damaged = result { report.damagedUnreferenced.append(digest) }
        }
        report.damagedUnreferenced.sort()
        // Kept, so that the health report need not re-hash what was just checked.
        let now = tracking.now()
        var checks: [String: BlobCheck] = [:]
        for digest in referenced { checks[digest] = BlobCheck(health[digest] ?? .missing, at: now) }
        try await index.recordBlobChecks(checks)
        return report
    }

    /// For a deleted run: the model versions and logged models that use its stored artifacts,
    /// so `cairn gc` keeps those files. Empty for a run that is not deleted.
    public func keptArtifactUsers(runID: String) async throws -> [ArtifactUser] {
        let run = try await tracking.getRun(id: runID)
        guard run.info.lifecycleStage == .deleted else { return [] }
        return try await index.artifactUsers(runID: runID)
    }

    /// Forgets the artifacts of deleted runs (except the files a model version or a logged
    /// model uses, which are kept and reported), then removes every blob nothing references and
    /// that is older than `gracePeriod` seconds (a blob written by an upload still in flight has
    /// no manifest row yet). With `dryRun`, only reports what would go.
    ///
    /// With `purgeAfterMillis`, it first purges the database rows (metric points, params, tags,
    /// inputs) of runs deleted at least that long ago, except runs a registered model version or
    /// a live logged model comes from (`ArtifactIndex.purgeDeletedRuns`).
    public func collectGarbage(dryRun: Bool, gracePeriod: TimeInterval = 15 * 60,
                               tempFileGracePeriod: TimeInterval = 60, purgeAfterMillis: Int64? = nil,
                               progress: ProgressReport? = nil) async throws -> ArtifactGCReport {
        try await AuditContext.$via.withValue("gc") {
            try await collectGarbageNow(dryRun: dryRun, gracePeriod: gracePeriod, tempFileGracePeriod: tempFileGracePeriod,
                                        purgeAfterMillis: purgeAfterMillis, progress: progress)
        }
    }

    private func collectGarbageNow(dryRun: Bool, gracePeriod: TimeInterval, tempFileGracePeriod: TimeInterval, purgeAfterMillis: Int64?,
                                   progress: ProgressReport?) async throws -> ArtifactGCReport {
        var report = ArtifactGCReport()
        if let purgeAfterMillis {
            progress?("purging the rows of runs deleted long enough ago")
            let now = tracking.now()
            report.purged = try await index.purgeDeletedRuns(deletedBefore: now - purgeAfterMillis, now: now, dryRun: dryRun)
        }
        // Partial uploads whose writer died (kill -9 mid-upload): their writer's lock is gone.
        progress?("partial uploads")
        report.removedTempFiles = try await blobs.removeAbandonedTempFiles(olderThan: tempFileGracePeriod, dryRun: dryRun)
        progress?("artifacts of deleted runs")
        // The store decides what is forgotten and what a model still uses, in one transaction.
        let forgotten = try await index.forgetDeletedRunArtifacts(dryRun: dryRun)
        report.removedManifestEntries = forgotten.forgotten
        report.keptManifestEntries = forgotten.kept
        let dropped = Set(forgotten.forgotten.map(\.path))
        var referenced = try await index.referencedDigests()
        if dryRun, !dropped.isEmpty {
            referenced = Set(try await index.listArtifacts(under: "").filter { !dropped.contains($0.path) }.map(\.digest))
        }
        let cutoff = Date().addingTimeInterval(-gracePeriod)
        progress?("listing blobs (\(referenced.count) referenced)")
        let all = try await blobs.allBlobs()
        for (number, blob) in all.enumerated() where !referenced.contains(blob.digest) {
            progress?("blobs: \(number) of \(all.count) looked at, \(report.removedBlobs.count) unreferenced")
            if gracePeriod > 0, blob.modified > cutoff { continue }
            report.removedBlobs.append(BlobInfo(digest: blob.digest, size: blob.size))
            if !dryRun { try await blobs.remove(blob.digest) }
        }
        if !dryRun, !report.removedBlobs.isEmpty {
            // The blobs are gone from the bucket or folder, not the database: one event says so.
            try await tracking.store.recordAuditEvent(AuditDraft("gc.remove_blobs", "blobs", details: [
                "blobs": .int(report.removedBlobs.count), "bytes": .int(report.removedBlobs.reduce(Int64(0)) { $0 + $1.size }),
                "sha256": .array(report.removedBlobs.prefix(5).map { .string($0.digest) }),
            ]))
        }
        return report
    }

    // MARK: - Helpers

    /// `mlflow-artifacts:/1/abc/artifacts` → `1/abc/artifacts`; nil for other schemes.
    public static func proxyPath(fromArtifactURI uri: String) -> String? { ArtifactLocation.proxyPath(fromArtifactURI: uri) }

    static func children(of entries: [ArtifactEntry], folder: String) -> [ArtifactListing] {
        let prefix = folder.isEmpty ? "" : folder + "/"
        var result: [ArtifactListing] = []
        var seenFolders = Set<String>()
        for entry in entries where entry.path.hasPrefix(prefix) {
            let rest = entry.path.dropFirst(prefix.count)
            if let slash = rest.firstIndex(of: "/") {
                let name = String(rest[..<slash])
                if seenFolders.insert(name).inserted {
                    result.append(ArtifactListing(path: name, isDirectory: true, size: nil, digest: nil))
                }
            } else {
                result.append(ArtifactListing(path: String(rest), isDirectory: false, size: entry.size, digest: entry.digest))
            }
        }
        return result
    }
}

extension BlobCheck {
    /// A verification's outcome, kept.
    public init(_ health: BlobHealth, at time: Int64) {
        switch health {
        case .ok: self.init(result: .ok, checkedAt: time)
        case .missing: self.init(result: .missing, checkedAt: time)
        case .damaged: self.init(result: .damaged, checkedAt: time)
        }
    }
}
