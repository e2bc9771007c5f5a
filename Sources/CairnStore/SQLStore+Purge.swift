import CairnCore

extension SQLStore {
    /// The tables that hold a run's own rows by `run_pk`, and the bytes of one row's values.
    static func purgedTables(_ dialect: SQLDialect) -> [(table: String, bytes: String)] {
        let length = dialect == .postgres ? "octet_length" : "length"
        return [
            ("metric_segments", "\(length)(points)"),
            ("latest_metrics", "0"),
            ("run_params", "\(length)(key) + \(length)(value)"),
            ("run_tags", "\(length)(key) + \(length)(value)"),
            ("run_inputs", "0"),
            ("input_tags", "\(length)(key) + \(length)(value)"),
            ("run_model_inputs", "0"),
            ("run_model_outputs", "0"),
        ]
    }

    public func purgeDeletedRuns(deletedBefore: Int64, now: Int64, dryRun: Bool) async throws -> PurgedRuns {
        let work: @Sendable (any SQLSession) throws -> PurgedRuns = { db in try Self.purgeDeletedRuns(db, deletedBefore: deletedBefore, now: now, dryRun: dryRun) }
        if dryRun { return try await read(work) }
        return try await write(audit: { (result: PurgedRuns) in
            result.runIDs.isEmpty ? nil : AuditDraft("gc.purge_deleted_runs", "runs", details: [
                "runs": .int(result.runIDs.count), "rows": .int(result.totalRows), "metric_points": .int(result.metricPoints),
                "bytes": .int(result.bytes), "run_ids": .array(result.runIDs.prefix(20).map { .string($0) }),
            ])
        }, work)
    }

    /// Decided and done in the caller's transaction (a write one unless `dryRun`), so a version
    /// registered from a run before it commits keeps that run.
    static func purgeDeletedRuns(_ db: any SQLSession, deletedBefore: Int64, now: Int64, dryRun: Bool) throws -> PurgedRuns {
        var result = PurgedRuns()
        let candidates = try db.rows("""
            SELECT run_pk, run_id FROM runs
            WHERE lifecycle_stage = 'deleted' AND purged_time IS NULL AND deleted_time IS NOT NULL AND deleted_time <= ?
            ORDER BY run_pk
            """, [deletedBefore])
        guard !candidates.isEmpty else { return result }
        // What a registered version (its run, or its logged model's source run) or a live
        // logged model comes from stays whole.
        let protected = Set(try db.values(String.self, """
            SELECT run_id FROM model_versions WHERE deleted = 0 AND run_id IS NOT NULL AND run_id <> ''
            UNION
            SELECT lm.source_run_id FROM model_versions mv JOIN logged_models lm ON lm.model_id = mv.model_id
            WHERE mv.deleted = 0 AND lm.source_run_id IS NOT NULL AND lm.source_run_id <> ''
            UNION
            SELECT source_run_id FROM logged_models WHERE lifecycle_stage = 'active' AND source_run_id IS NOT NULL AND source_run_id <> ''
            """))
        var pks: [Int64] = []
        for row in candidates {
            let id: String = row[1]
            if protected.contains(id) { result.keptRunIDs.append(id) } else { pks.append(row[0]); result.runIDs.append(id) }
        }
        guard !pks.isEmpty else { return result }
        // In chunks, so no statement grows with the number of runs.
        let chunks = stride(from: 0, to: pks.count, by: 500).map { pks[$0..<min($0 + 500, pks.count)].map(String.init).joined(separator: ",") }
        for list in chunks {
            result.metricPoints += try db.value(Int64.self, "SELECT CAST(COALESCE(SUM(point_count), 0) AS BIGINT) FROM metric_segments WHERE run_pk IN (\(list))") ?? 0
            for (table, bytes) in purgedTables(db.dialect) {
                let counts = try db.row("""
                    SELECT CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(\(bytes)), 0) AS BIGINT) FROM \(table) WHERE run_pk IN (\(list))
                    """)
                let rows: Int64 = counts?[0] ?? 0
                let size: Int64 = counts?[1] ?? 0
                if rows > 0 { result.rows[table, default: 0] += rows }
                result.bytes += size
                if !dryRun, rows > 0 { try db.execute("DELETE FROM \(table) WHERE run_pk IN (\(list))") }
            }
            if !dryRun { try db.execute("UPDATE runs SET purged_time = ? WHERE run_pk IN (\(list))", [now]) }
        }
        return result
    }
}
