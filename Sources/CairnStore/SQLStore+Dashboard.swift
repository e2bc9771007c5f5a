import CairnCore

extension SQLStore {
    /// Per UTC day from `since` to `until`: runs started by status, gate evaluations and
    /// artifact bytes written; the window's latest failures and the runs running now (active
    /// runs of active experiments, or of `experimentIDs`). Grouped queries sent together.
    public func dashboardFigures(since: Int64, until: Int64, experimentIDs: [Int64]?) async throws
        -> (runsByDay: [(day: Int64, status: String, count: Int64)], gatesByDay: [(day: Int64, action: String, count: Int64)],
            bytesByDay: [(day: Int64, bytes: Int64)], bytesBefore: Int64, failures: [RunInfo], running: [RunRow]) {
        let scope = experimentIDs.map { _ in "AND \(dialect.inPKList("r.experiment_id"))" } ?? ""
        let scopeValues: [SQLValue] = experimentIDs.map { [.text(pkList($0))] } ?? []
        let day: Int64 = 86_400_000
        return try await read { db in
            let results = try db.rows(of: [
                (sql: """
                    SELECT (r.start_time / \(day)) * \(day), r.status, COUNT(*) FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id
                    WHERE r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active' AND r.start_time >= ? AND r.start_time < ? \(scope)
                    GROUP BY (r.start_time / \(day)) * \(day), r.status
                    """, values: [.integer(since), .integer(until)] + scopeValues),
                (sql: """
                    SELECT (ev.timestamp / \(day)) * \(day), ev.action, COUNT(*) FROM registry_events ev
                    WHERE ev.action IN ('gate_passed', 'gate_failed', 'gate_overridden') AND ev.timestamp >= ? AND ev.timestamp < ?
                    GROUP BY (ev.timestamp / \(day)) * \(day), ev.action
                    """, values: [.integer(since), .integer(until)]),
                (sql: """
                    SELECT (created_at / \(day)) * \(day), SUM(size) FROM artifact_files WHERE created_at >= ? AND created_at < ?
                    GROUP BY (created_at / \(day)) * \(day)
                    """, values: [.integer(since), .integer(until)]),
                (sql: "SELECT COALESCE(SUM(size), 0) FROM artifact_files WHERE created_at < ?", values: [.integer(since)]),
                (sql: """
                    SELECT r.run_pk FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id
                    WHERE r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active' AND r.status IN ('FAILED', 'KILLED')
                      AND COALESCE(r.end_time, r.start_time) >= ? \(scope)
                    ORDER BY COALESCE(r.end_time, r.start_time) DESC, r.run_pk DESC LIMIT 20
                    """, values: [.integer(since)] + scopeValues),
                (sql: """
                    SELECT r.run_pk FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id
                    WHERE r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active' AND r.status = 'RUNNING' \(scope)
                    ORDER BY r.start_time DESC, r.run_pk DESC LIMIT 200
                    """, values: scopeValues),
            ])
            let failures = try Self.loadRunRows(db, pks: results[4].map { $0[0] }).map(\.info)
            let running = try Self.loadRunRows(db, pks: results[5].map { $0[0] })
            return (results[0].map { ($0[0], $0[1], $0[2]) }, results[1].map { ($0[0], $0[1], $0[2]) },
                    results[2].map { ($0[0], $0[1]) }, results[3].first?[0] ?? 0, failures, running)
        }
    }
}
