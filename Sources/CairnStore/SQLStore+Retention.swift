import CairnCore

/// What retention needs beyond the run tables: which runs registered versions depend on, and
/// what deleting a set of runs would free.
public protocol RetentionStore: Sendable {
    func registeredRunIDs() async throws -> Set<String>
    func exclusiveArtifactBytes(folders: [String]) async throws -> (blobs: Int, bytes: Int64)
    /// An audit event of its own (the summary of a retention pass).
    func recordAuditEvent(_ draft: AuditDraft) async throws
}

extension SQLStore: RetentionStore {
    /// The ids of the runs registered model versions come from: a version's run, and the source
    /// run of a version's logged model (deleted versions aside).
    public func registeredRunIDs() async throws -> Set<String> {
        try await read { db in
            Set(try db.values(String.self, """
                SELECT run_id FROM model_versions WHERE deleted = 0 AND run_id IS NOT NULL AND run_id <> ''
                UNION
                SELECT lm.source_run_id FROM model_versions mv JOIN logged_models lm ON lm.model_id = mv.model_id
                WHERE mv.deleted = 0 AND lm.source_run_id IS NOT NULL AND lm.source_run_id <> ''
                """))
        }
    }

    /// The artifact bytes that only files under `folders` reference: what forgetting those
    /// folders and collecting garbage would free (each blob once).
    public func exclusiveArtifactBytes(folders: [String]) async throws -> (blobs: Int, bytes: Int64) {
        guard !folders.isEmpty else { return (0, 0) }
        return try await read { db in
            var inside: [String: (count: Int64, size: Int64)] = [:]
            for folder in folders {
                let (low, high) = Self.folderBounds(folder)
                for row in try db.rows("SELECT digest, size FROM artifact_files WHERE path > ? AND path < ?", [low, high]) {
                    inside[row[0], default: (0, row[1])].count += 1
                }
            }
            guard !inside.isEmpty else { return (0, 0) }
            var blobs = 0
            var bytes: Int64 = 0
            try db.each("SELECT digest, COUNT(*) FROM artifact_files WHERE \(db.dialect.inTextList("digest")) GROUP BY digest",
                        [.text(textList(Array(inside.keys)))], cache: false) { row in
                let digest: String = row[0], total: Int64 = row[1]
                if let use = inside[digest], total <= use.count {
                    blobs += 1
                    bytes += use.size
                }
            }
            return (blobs, bytes)
        }
    }
}
