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
    /// The artifact URIs of runs that are deleted (for `cairn gc`).
    func deletedRunArtifactURIs() async throws -> [String]
}
