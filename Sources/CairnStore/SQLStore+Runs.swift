import CairnCore
import Foundation

extension SQLStore {
    public func createRun(_ run: NewRun) async throws -> Run {
        let info = run.info
        return try await write { db in
            let experimentID = try Validation.parseExperimentID(info.experimentID)
            let experiment = try Self.loadExperiment(db, id: experimentID)
            if experiment.lifecycleStage != .active {
                throw CairnError.invalidParameter("The experiment \(experimentID) must be in the 'active' state to create runs in it, but it is deleted. Restore it first.")
            }
            let runPK = try db.insert("""
                    INSERT INTO runs (run_id, experiment_id, run_name, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active') RETURNING run_pk
                    """, [info.runID, experimentID, info.runName, info.userID, info.status.rawValue,
                            info.startTime, info.endTime, info.artifactURI])
            for tag in run.tags {
                try db.execute("INSERT INTO run_tags (run_pk, key, value) VALUES (?, ?, ?) ON CONFLICT (run_pk, key) DO UPDATE SET value = excluded.value", [runPK, tag.key, tag.value])
            }
            return try Self.loadRuns(db, pks: [runPK])[0]
        }
    }

    public func fetchRun(id: String) async throws -> Run {
        try await read { db in
            let pk = try Self.runPK(db, id: id)
            return try Self.loadRuns(db, pks: [pk])[0]
        }
    }

    public func fetchRunInfo(id: String) async throws -> RunInfo {
        try await read { db in try Self.loadRunInfo(db, id: id).1 }
    }

    public func updateRun(id: String, status: RunStatus?, endTime: Int64?, runName: String?) async throws -> RunInfo {
        try await write { db in
            let (pk, info) = try Self.loadRunInfo(db, id: id)
            try Self.requireActive(info)
            if let status {
                try db.execute("UPDATE runs SET status = ? WHERE run_pk = ?", [status.rawValue, pk])
            }
            if let endTime {
                try db.execute("UPDATE runs SET end_time = ? WHERE run_pk = ?", [endTime, pk])
            }
            if let runName {
                try db.execute("UPDATE runs SET run_name = ? WHERE run_pk = ?", [runName, pk])
                try db.execute("INSERT INTO run_tags (run_pk, key, value) VALUES (?, ?, ?) ON CONFLICT (run_pk, key) DO UPDATE SET value = excluded.value", [pk, SystemTag.runName, runName])
            }
            return try Self.loadRunInfo(db, id: id).1
        }
    }

    public func setRunLifecycle(id: String, stage: LifecycleStage, now: Int64) async throws {
        try await write { db in
            let (pk, _) = try Self.loadRunInfo(db, id: id)
            try db.execute("UPDATE runs SET lifecycle_stage = ?, deleted_with_experiment = 0 WHERE run_pk = ?", [stage.rawValue, pk])
        }
    }

    public func deleteTag(runID: String, key: String) async throws {
        try await write { db in
            let (pk, info) = try Self.loadRunInfo(db, id: runID)
            try Self.requireActive(info)
            if (try db.execute("DELETE FROM run_tags WHERE run_pk = ? AND key = ?", [pk, key])) == 0 {
                throw CairnError.notFound("No tag with name: \(key) in run with id \(runID)")
            }
        }
    }

    public func logRunWrites(runID: String, _ writes: RunWrites) async throws {
        try await write { db in
            let (pk, info) = try Self.loadRunInfo(db, id: runID)
            try Self.requireActive(info)
            try Self.insertParams(db, runPK: pk, runID: runID, writes.params)
            for tag in writes.tags {
                try db.execute("INSERT INTO run_tags (run_pk, key, value) VALUES (?, ?, ?) ON CONFLICT (run_pk, key) DO UPDATE SET value = excluded.value", [pk, tag.key, tag.value])
                if tag.key == SystemTag.runName {
                    try db.execute("UPDATE runs SET run_name = ? WHERE run_pk = ?", [tag.value, pk])
                }
            }
            try Self.appendMetrics(db, runPK: pk, writes.metrics)
            try Self.attachModelMetrics(db, runID: runID, writes.metrics)
        }
    }

    public func logInputs(runID: String, _ inputs: [DatasetInput], models: [String]) async throws {
        try await write { db in
            let (pk, info) = try Self.loadRunInfo(db, id: runID)
            try Self.requireActive(info)
            let experimentID = Int64(info.experimentID) ?? 0
            var position = try db.value(Int64.self, "SELECT COALESCE(MAX(position), -1) + 1 FROM run_inputs WHERE run_pk = ?", [pk]) ?? 0
            for input in inputs {
                let d = input.dataset
                try db.execute("""
                        INSERT INTO datasets (experiment_id, name, digest, source_type, source, schema, profile)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT DO NOTHING
                        """, [experimentID, d.name, d.digest, d.sourceType, d.source, d.schema, d.profile])
                guard let datasetPK = try db.value(Int64.self, "SELECT dataset_pk FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?", [experimentID, d.name, d.digest])
                else { continue }
                // Re-logging the same dataset to a run keeps the first input and its tags.
                guard (try db.execute("INSERT INTO run_inputs (run_pk, dataset_pk, position) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", [pk, datasetPK, position])) > 0 else { continue }
                position += 1
                for tag in input.tags {
                    try db.execute("INSERT INTO input_tags (run_pk, dataset_pk, key, value) VALUES (?, ?, ?, ?) ON CONFLICT (run_pk, dataset_pk, key) DO UPDATE SET value = excluded.value", [pk, datasetPK, tag.key, tag.value])
                }
            }
            for modelID in models {
                _ = try Self.modelPK(db, id: modelID, allowDeleted: false)
                try db.execute("INSERT INTO run_model_inputs (run_pk, model_id) VALUES (?, ?) ON CONFLICT DO NOTHING", [pk, modelID])
            }
        }
    }

    public func searchRuns(_ search: RunSearch) async throws -> (items: [Run], hasMore: Bool) {
        let query = try searchSQL.runQuery(search)
        return try await read { db in
            var pks = try db.values(Int64.self, query)
            let hasMore = pks.count > search.maxResults
            if hasMore { pks.removeLast() }
            return (try Self.loadRuns(db, pks: pks), hasMore)
        }
    }

    // MARK: - Helpers shared by the run methods

    static func requireActive(_ info: RunInfo) throws {
        if info.lifecycleStage != .active {
            throw CairnError.invalidParameter("The run \(info.runID) must be in the 'active' state to be changed, but it is deleted. Restore it first.")
        }
    }

    static func runPK(_ db: any SQLSession, id: String) throws -> Int64 {
        guard let pk = try db.value(Int64.self, "SELECT run_pk FROM runs WHERE run_id = ?", [id]) else {
            throw CairnError.notFound("Run with id=\(id) not found. Check the run id (32 hex characters).")
        }
        return pk
    }

    static let runColumns = "run_pk, run_id, experiment_id, run_name, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage"

    static func runInfo(from row: SQLRow) -> RunInfo {
        RunInfo(
            runID: row[1], experimentID: String(row[2] as Int64), runName: row[3], userID: row[4],
            status: RunStatus(rawValue: row[5]) ?? .running, startTime: row[6], endTime: row[7],
            artifactURI: row[8], lifecycleStage: LifecycleStage(rawValue: row[9]) ?? .active)
    }

    static func loadRunInfo(_ db: any SQLSession, id: String) throws -> (Int64, RunInfo) {
        guard let row = try db.row("SELECT \(runColumns) FROM runs WHERE run_id = ?", [id]) else {
            throw CairnError.notFound("Run with id=\(id) not found. Check the run id (32 hex characters).")
        }
        return (row[0], runInfo(from: row))
    }

    /// Loads whole runs (info, latest metrics, params, tags, inputs) in the order of `pks`,
    /// with one query per table. The keys travel as one JSON array parameter, so every
    /// statement text is fixed and stays prepared in the connection's statement cache.
    static func loadRuns(_ db: any SQLSession, pks: [Int64]) throws -> [Run] {
        guard !pks.isEmpty else { return [] }
        var runs: [Int64: Run] = [:]
        runs.reserveCapacity(pks.count)
        let args: [any SQLBindable] = [pkList(pks)]
        func rows(_ sql: String) throws -> [SQLRow] {
            try db.rows(sql, args)
        }
        try forEachRunInfo(db, args) { pk, info in runs[pk] = Run(info: info) }
        try forEachKeyValue(db, table: .params, args) { pk, key, value in runs[pk]?.params.append(Param(key, value)) }
        try forEachKeyValue(db, table: .tags, args) { pk, key, value in runs[pk]?.tags.append(Tag(key, value)) }
        let metrics = try rows("""
            SELECT lm.run_pk, mk.key, lm.value, lm.is_nan, lm.timestamp, lm.step
            FROM latest_metrics lm JOIN metric_keys mk ON mk.key_id = lm.key_id
            WHERE lm.run_pk IN (\(db.dialect.pkListSelect)) ORDER BY lm.run_pk, mk.key
            """)
        for row in metrics {
            let isNaN: Bool = row[3]
            let value: Double = isNaN ? .nan : (row[2] as Double?) ?? .nan
            runs[row[0]]?.metrics.append(Metric(key: row[1], value: value, timestamp: row[4], step: row[5]))
        }
        let modelInputs = try rows("SELECT run_pk, model_id FROM run_model_inputs WHERE run_pk IN (\(db.dialect.pkListSelect)) ORDER BY model_id")
        for row in modelInputs {
            runs[row[0]]?.modelInputs.append(row[1])
        }
        let modelOutputs = try rows("SELECT run_pk, model_id, step FROM run_model_outputs WHERE run_pk IN (\(db.dialect.pkListSelect)) ORDER BY step, model_id")
        for row in modelOutputs {
            runs[row[0]]?.modelOutputs.append(ModelOutput(modelID: row[1], step: row[2]))
        }
        let inputRows = try db.rows("""
            SELECT ri.run_pk, ri.dataset_pk, d.name, d.digest, d.source_type, d.source, d.schema, d.profile
            FROM run_inputs ri JOIN datasets d ON d.dataset_pk = ri.dataset_pk
            WHERE ri.run_pk IN (\(db.dialect.pkListSelect)) ORDER BY ri.run_pk, ri.position
            """, args)
        if !inputRows.isEmpty {
            var inputTags: [String: [Tag]] = [:]
            let tagRows = try rows("SELECT run_pk, dataset_pk, key, value FROM input_tags WHERE run_pk IN (\(db.dialect.pkListSelect)) ORDER BY key")
            for row in tagRows {
                inputTags["\(row[0] as Int64)/\(row[1] as Int64)", default: []].append(Tag(row[2], row[3]))
            }
            for row in inputRows {
                let dataset = Dataset(name: row[2], digest: row[3], sourceType: row[4], source: row[5], schema: row[6], profile: row[7])
                let tags = inputTags["\(row[0] as Int64)/\(row[1] as Int64)"] ?? []
                runs[row[0]]?.inputs.append(DatasetInput(tags: tags, dataset: dataset))
            }
        }
        return pks.compactMap { runs[$0] }
    }

    /// Each run of `pkArguments` (`[pkList(pks)]`) with its info, in no particular order.
    static func forEachRunInfo(_ db: any SQLSession, _ pkArguments: [any SQLBindable], _ body: (Int64, RunInfo) -> Void) throws {
        let cursor = try db.rows("SELECT \(runColumns) FROM runs WHERE run_pk IN (\(db.dialect.pkListSelect))", pkArguments)
        for row in cursor {
            body(row[0], runInfo(from: row))
        }
    }

    enum KeyValueTable: String {
        case params = "run_params"
        case tags = "run_tags"
    }

    /// Each (run, key, value) of the params or tags of the runs of `pkArguments`, by run then key.
    static func forEachKeyValue(_ db: any SQLSession, table: KeyValueTable, _ pkArguments: [any SQLBindable],
                                _ body: (Int64, String, String) -> Void) throws {
        let cursor = try db.rows("""
            SELECT run_pk, key, value FROM \(table.rawValue) WHERE run_pk IN (\(db.dialect.pkListSelect)) ORDER BY run_pk, key
            """, pkArguments)
        for row in cursor {
            body(row[0], row[1], row[2])
        }
    }

    static func insertParams(_ db: any SQLSession, runPK: Int64, runID: String, _ params: [Param]) throws {
        var conflicts: [(key: String, old: String, new: String)] = []
        for param in params {
            if let existing = try db.value(String.self, "SELECT value FROM run_params WHERE run_pk = ? AND key = ?", [runPK, param.key]) {
                if existing != param.value { conflicts.append((param.key, existing, param.value)) }
                continue
            }
            try db.execute("INSERT INTO run_params (run_pk, key, value) VALUES (?, ?, ?)", [runPK, param.key, param.value])
        }
        if !conflicts.isEmpty {
            let list = conflicts.map { "{'key': '\($0.key)', 'old_value': '\($0.old)', 'new_value': '\($0.new)'}" }.joined(separator: ", ")
            throw CairnError.invalidParameter("Changing param values is not allowed. Params were already logged='[\(list)]' for run ID='\(runID)'. Params are write-once; log the new value under a new key or in a new run.")
        }
    }
}
