import CairnCore

extension SQLStore {
    /// Per UTC day from `since` to `until`: runs started by status, gate evaluations and
    /// artifact bytes written; the window's latest failures and the runs running now (active
    /// runs of active experiments, or of `experimentIDs`). Grouped queries sent together.
    public func dashboardFigures(since: Int64, until: Int64, experimentIDs: [Int64]?) async throws
        -> (runsByDay: [(day: Int64, status: String, count: Int64)], gatesByDay: [(day: Int64, action: String, count: Int64)],
            bytesByDay: [(day: Int64, bytes: Int64)], bytesBefore: Int64, failures: [RunInfo], running: [RunRow]) {
        let (scope, scopeValues) = runScope(experimentIDs)
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

    public func dashboardReproductionsAndAudit(since: Int64, until: Int64, experimentIDs: [Int64]?) async throws
        -> (reproductions: [(start: Int64, end: Int64?, status: String)], auditByDay: [(day: Int64, events: Int64, withActor: Int64)]) {
        let (scope, scopeValues) = runScope(experimentIDs)
        let day: Int64 = 86_400_000
        return try await read { db in
            let results = try db.rows(of: [
                (sql: """
                    SELECT r.start_time, r.end_time, s.value FROM runs r
                    JOIN experiments e ON e.experiment_id = r.experiment_id
                    JOIN run_tags o ON o.run_pk = r.run_pk AND o.key = 'cairn.reproduce.of'
                    JOIN run_tags s ON s.run_pk = r.run_pk AND s.key = 'cairn.reproduce.status'
                    WHERE r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active' AND r.start_time >= ? AND r.start_time < ? \(scope)
                    """, values: [.integer(since), .integer(until)] + scopeValues),
                (sql: """
                    SELECT (time / \(day)) * \(day), CAST(COUNT(*) AS BIGINT),
                           CAST(SUM(CASE WHEN actor IS NOT NULL OR client_address = 'internal' THEN 1 ELSE 0 END) AS BIGINT)
                    FROM audit_events WHERE time >= ? AND time < ? GROUP BY (time / \(day)) * \(day)
                    """, values: [.integer(since), .integer(until)]),
            ])
            let reproductions = results[0].map { row -> (start: Int64, end: Int64?, status: String) in
                (row[0], row.isNull(1) ? nil : row[1] as Int64, row[2])
            }
            return (reproductions, results[1].map { ($0[0], $0[1], $0[2]) })
        }
    }

    public func costInputs(experimentIDs: [Int64]?) async throws -> [RunCostInput] {
        let (scope, scopeValues) = runScope(experimentIDs)
        return try await read { db in
            let wall = try db.value(Int64.self, "SELECT key_id FROM metric_keys WHERE key = 'cairn.wall_time_s'") ?? -1
            let cpu = try db.value(Int64.self, "SELECT key_id FROM metric_keys WHERE key = 'cairn.cpu_time_s'") ?? -1
            return try db.rows("""
                SELECT r.experiment_id, r.status, w.value, w.is_nan, c.value, c.is_nan, g.value
                FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id
                LEFT JOIN latest_metrics w ON w.run_pk = r.run_pk AND w.key_id = ?
                LEFT JOIN latest_metrics c ON c.run_pk = r.run_pk AND c.key_id = ?
                LEFT JOIN run_tags g ON g.run_pk = r.run_pk AND g.key = 'cairn.host.gpus'
                WHERE r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active' \(scope)
                """, values: [.integer(wall), .integer(cpu)] + scopeValues, cache: true).map { row in
                let experiment: Int64 = row[0]
                let status: String = row[1]
                func number(_ i: Int) -> Double? {
                    if row.isNull(i + 1) { return nil }
                    let nan: Int64 = row[i + 1]
                    return nan != 0 || row.isNull(i) ? .nan : row[i] as Double
                }
                return RunCostInput(experimentID: String(experiment), status: RunStatus(rawValue: status) ?? .running,
                                    wallSeconds: number(2), cpuSeconds: number(4), gpus: row.isNull(6) ? nil : row[6] as String)
            }
        }
    }

    /// `AND r.experiment_id IN (…)` and its value when `experimentIDs` is given; nothing otherwise.
    func runScope(_ experimentIDs: [Int64]?) -> (String, [SQLValue]) {
        guard let experimentIDs else { return ("", []) }
        return ("AND \(dialect.inPKList("r.experiment_id"))", [.text(pkList(experimentIDs))])
    }
}
