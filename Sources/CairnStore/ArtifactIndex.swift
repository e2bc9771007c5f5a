import CairnCore

/// One file of the artifact manifest.
public struct ArtifactEntry: Sendable, Hashable {
    /// Relative to the artifact root (`<experiment>/<run>/artifacts/<name>`).
    public var path: String
    public var digest: String
    public var size: Int64

    public init(path: String, digest: String, size: Int64) {
        self.path = path
        self.digest = digest
        self.size = size
    }
}

/// The manifest of artifact paths → content digests. Only persists; the artifact rules (path
/// validation, blob durability before the manifest row) live in `ArtifactService`.
public protocol ArtifactIndex: Sendable {
    /// Points `entry.path` at its blob, replacing an earlier file at that path. A path is a file
    /// or a folder, never both: recording over a folder, or under a file, is refused.
    func recordArtifact(_ entry: ArtifactEntry, now: Int64) async throws
    func fetchArtifact(path: String) async throws -> ArtifactEntry?
    /// Every file strictly below the folder `directory` ("" = the whole root), ordered by path.
    func listArtifacts(under directory: String) async throws -> [ArtifactEntry]
    /// Removes the file at `path`, or every file below it when it is a folder; returns what was removed.
    func deleteArtifacts(at path: String) async throws -> [ArtifactEntry]
    /// Every digest the manifest references.
    func referencedDigests() async throws -> Set<String>
    /// Forgets the manifest entries of deleted runs (for `cairn gc`), except every file at or
    /// under a location a registered model version or a logged model uses: those are kept, with
    /// who uses them. Decided and done in one write transaction, so a version registered at any
    /// moment before it is safe. With `dryRun`, the same answer from a read, and nothing changes.
    func forgetDeletedRunArtifacts(dryRun: Bool) async throws -> DeletedRunArtifacts
    /// Purges the database rows of runs deleted at or before `deletedBefore` (metric points and
    /// summaries, params, tags, dataset inputs and logged-model links; the run keeps its row,
    /// marked purged, and can no longer be restored), except runs a registered model version
    /// or a live logged model comes from. One write transaction; with `dryRun` only counted.
    func purgeDeletedRuns(deletedBefore: Int64, now: Int64, dryRun: Bool) async throws -> PurgedRuns
    /// The last recorded verification of each of `digests` that has one.
    func blobChecks(_ digests: [String]) async throws -> [String: BlobCheck]
    /// Records verification results, each replacing the digest's earlier one.
    func recordBlobChecks(_ checks: [String: BlobCheck]) async throws
    /// Who uses the artifacts of run `runID` (for a deleted run: why `cairn gc` keeps them).
    func artifactUsers(runID: String) async throws -> [ArtifactUser]
}

/// Something that needs stored artifact files to stay: `cairn gc` never forgets them.
public enum ArtifactUser: Sendable, Hashable, CustomStringConvertible {
    /// A registered model version (any stage, with or without aliases; not a deleted version).
    case modelVersion(name: String, version: Int64)
    /// A logged model (MLflow 3), by id and name.
    case loggedModel(id: String, name: String)

    public var description: String {
        switch self {
        case let .modelVersion(name, version): "model \(name) version \(version)"
        case let .loggedModel(id, name): "logged model \(name) (\(id))"
        }
    }
}

/// The files of one deleted run that `cairn gc` keeps, and who uses them.
public struct KeptArtifacts: Sendable, Hashable {
    public var runID: String
    public var entries: [ArtifactEntry]
    public var users: [ArtifactUser]

    public init(runID: String, entries: [ArtifactEntry], users: [ArtifactUser]) {
        self.runID = runID
        self.entries = entries
        self.users = users
    }
}

/// What forgetting the deleted runs' artifacts removed from the manifest, and what it kept.
public struct DeletedRunArtifacts: Sendable {
    public var forgotten: [ArtifactEntry] = []
    public var kept: [KeptArtifacts] = []

    public init(forgotten: [ArtifactEntry] = [], kept: [KeptArtifacts] = []) {
        self.forgotten = forgotten
        self.kept = kept
    }
}

/// The outcome of re-hashing one blob, and when (milliseconds since the epoch). Blobs are
/// content-addressed and never change, so a result stays true until the storage under it
/// fails: `cairn verify` and the health report keep these, and re-check a blob only once its
/// result is old (or was not `ok`).
public struct BlobCheck: Sendable, Hashable {
    public enum Result: String, Sendable {
        case ok, missing, damaged
    }

    public var result: Result
    public var checkedAt: Int64

    public init(result: Result, checkedAt: Int64) {
        self.result = result
        self.checkedAt = checkedAt
    }
}

/// What `cairn gc` purged (or, dry, would purge) of deleted runs' database rows.
public struct PurgedRuns: Sendable, Equatable {
    public var runIDs: [String] = []
    /// Rows deleted, per table.
    public var rows: [String: Int64] = [:]
    public var metricPoints: Int64 = 0
    /// Bytes of the deleted rows' values (metric segment blobs, keys and values): what the
    /// database no longer holds (SQLite reuses the space; `VACUUM` returns it to the disk).
    public var bytes: Int64 = 0
    /// Deleted runs old enough that are kept because a model version or logged model comes from them.
    public var keptRunIDs: [String] = []

    public init() {}

    public var totalRows: Int64 { rows.values.reduce(0, +) }
}
