import CairnCore

/// What retention needs beyond the run tables: which runs registered versions depend on, and
/// what deleting a set of runs would free.
public protocol RetentionStore: Sendable {
    func registeredRunIDs() async throws -> Set<String>
    func exclusiveArtifactBytes(folders: [String]) async throws -> (blobs: Int, bytes: Int64)
    /// An audit event of its own (the summary of a retention pass).
    func recordAuditEvent(_ draft: AuditDraft) async throws
    /// The active runs of one experiment, newest first (start time, then run id), with only
    /// what a retention rule reads: a few dozen bytes a run, whatever their params, tags and
    /// metrics, so a plan over a big experiment stays small.
    func retentionCandidates(experimentID: Int64, keepTags: [String], metrics: [String]) async throws -> [RetentionCandidate]
}

/// A run as a retention rule sees it.
public struct RetentionCandidate: Sendable {
    public var runID: String
    public var status: RunStatus?
    public var startTime: Int64?
    public var artifactURI: String
    /// It carries one of the rule's keep tags with a value other than `false`.
    public var tagged: Bool
    /// The latest value of each metric the rule ranks by (in the order asked); nil when the run
    /// has none or it is not finite.
    public var metrics: [Double?]
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

    public func retentionCandidates(experimentID: Int64, keepTags: [String], metrics: [String]) async throws -> [RetentionCandidate] {
        try await read { db in
            var values: [SQLValue] = []
            var columns = "r.run_id, r.status, r.start_time, r.artifact_uri"
            if keepTags.isEmpty {
                columns += ", CAST(0 AS BIGINT)"
            } else {
                columns += ", CAST(CASE WHEN EXISTS (SELECT 1 FROM run_tags t WHERE t.run_pk = r.run_pk AND \(db.dialect.inTextList("t.key")) AND LOWER(t.value) <> 'false') THEN 1 ELSE 0 END AS BIGINT)"
                values.append(.text(textList(keepTags)))
            }
            for key in metrics {
                columns += ", (SELECT lm.value FROM latest_metrics lm WHERE lm.run_pk = r.run_pk AND lm.is_nan = 0 AND lm.key_id = (SELECT key_id FROM metric_keys WHERE key = ?))"
                values.append(.text(key))
            }
            values.append(.integer(experimentID))
            var candidates: [RetentionCandidate] = []
            try db.each("""
                SELECT \(columns) FROM runs r WHERE r.experiment_id = ? AND r.lifecycle_stage = 'active'
                ORDER BY \(db.dialect.orderTerm("r.start_time", ascending: false)), r.run_id ASC
                """, values, cache: false) { row in
                candidates.append(RetentionCandidate(
                    runID: row[0], status: RunStatus(rawValue: row[1]), startTime: row[2], artifactURI: row[3], tagged: (row[4] as Int64) != 0,
                    metrics: metrics.indices.map { (row[5 + $0] as Double?).flatMap { $0.isFinite ? $0 : nil } }))
            }
            return candidates
        }
    }

    /// The artifact bytes that only files under `folders` reference: what forgetting those
    /// folders and collecting garbage would free (each blob once).
    public func exclusiveArtifactBytes(folders: [String]) async throws -> (blobs: Int, bytes: Int64) {
        guard !folders.isEmpty else { return (0, 0) }
        return try await read { db in
            var seen = Set<String>()
            var inside: [String: (count: Int64, size: Int64)] = [:]
            try db.each(Self.filesUnderFoldersSQL(db.dialect), [.text(textList(folders))], cache: false) { row in
                // A file under two of the folders (one inside the other) counts once.
                guard seen.insert(row[0]).inserted else { return }
                inside[row[1], default: (0, row[2])].count += 1
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

    /// The files (path, digest, size) under any of the non-empty folders of the JSON array
    /// given as the one argument (`textList`), each folder's a range scan of the path index
    /// (`folderBounds`), all in one statement: a retention plan names thousands of run folders,
    /// and one statement per folder cost as many round trips on PostgreSQL.
    static func filesUnderFoldersSQL(_ dialect: SQLDialect) -> String {
        switch dialect {
        case .sqlite:
            return """
                SELECT f.path, f.digest, f.size FROM json_each(?) b CROSS JOIN artifact_files f
                WHERE f.path > b.value || '/' AND f.path < b.value || '0'
                """
        case .postgres:
            return """
                SELECT f.path, f.digest, f.size FROM json_array_elements_text(CAST(? AS json)) b (folder)
                JOIN artifact_files f ON f.path > (b.folder || '/') COLLATE "C" AND f.path < (b.folder || '0') COLLATE "C"
                """
        }
    }
}
