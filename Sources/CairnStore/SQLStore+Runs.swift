import CairnCore
import Crypto
import Foundation

extension SQLStore {
    /// The experiment a new run goes into, as a PL/pgSQL function that the write lock's
    /// statement calls (`ReadAhead.experiment`), made and named like
    /// `runWithSeriesStatesFunction`: VOLATILE, so its query reads with a snapshot of its own,
    /// taken after the lock was granted.
    static let experimentStateFunction: (name: String, sql: String) = {
        let definition = """
            (p_after bigint, p_experiment bigint) RETURNS TABLE (c1 text, c2 text)
            LANGUAGE plpgsql VOLATILE AS $$
            BEGIN
            RETURN QUERY SELECT e.lifecycle_stage, e.artifact_location FROM experiments e WHERE e.experiment_id = p_experiment;
            END $$
            """
        let name = "cairn_experiment_state_" + SHA256.hash(data: Data(definition.utf8)).prefix(6).map { String(format: "%02x", $0) }.joined()
        return (name, "CREATE OR REPLACE FUNCTION \(name) " + definition)
    }()

    public func createRun(_ run: NewRun) async throws -> Run {
        // On PostgreSQL the experiment is read with the write lock (`ReadAhead`).
        let readAhead = (try? Validation.parseExperimentID(run.info.experimentID)).map(ReadAhead.experiment)
        // On PostgreSQL a run with tags is written without reading anything more (see below).
        let readsNothingElse = (1...Self.rowsPerStatement).contains(Self.lastTagValues(run.tags).count)
        return try await write(readAhead: readAhead, readsNothingElse: readsNothingElse, audit: { (created: Run) in
            AuditDraft("run.create", "run:\(created.info.runID)", details: [
                "experiment_id": .string(created.info.experimentID), "run_name": .string(created.info.runName),
                "user_id": .string(created.info.userID), "tags": .int(created.tags.count),
            ])
        }) { db in
            var info = run.info
            let experimentID = try Validation.parseExperimentID(info.experimentID)
            let experiment: SQLRow?
            let read = ReadAhead.experiment(experimentID).query
            if let rows = try db.readAhead(read.sql, read.values) {
                experiment = rows.first
            } else {
                experiment = try db.row("SELECT lifecycle_stage, artifact_location FROM experiments WHERE experiment_id = ?", [experimentID])
            }
            guard let experiment else {
                throw Self.noSuchExperiment(experimentID)
            }
            if experiment[0] as String != LifecycleStage.active.rawValue {
                throw CairnError.invalidParameter("The experiment \(experimentID) must be in the 'active' state to create runs in it, but it is deleted. Restore it first.")
            }
            if let artifactURI = run.artifactURI { info.artifactURI = artifactURI(experiment[1]) }
            let insertRun = "INSERT INTO runs (run_id, experiment_id, run_name, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active')"
            let runValues: [any SQLBindable] = [info.runID, experimentID, info.runName, info.userID, info.status.rawValue,
                                                info.startTime, info.endTime, info.artifactURI]
            let tags: [Tag]
            if db.dialect == .postgres, case let written = Self.lastTagValues(run.tags), !written.isEmpty, written.count <= Self.rowsPerStatement {
                // One statement for the run and its tags (on PostgreSQL each statement is a round
                // trip), sent without waiting: nothing here needs the run's key. It goes out with
                // the audit event and its head (and a batch's other new runs) as one statement:
                // their rows are distinct.
                try db.runDeferredIndependent(first: (insertRun + " RETURNING run_pk", runValues.map(\.sqlValue)), then: """
                    INSERT INTO run_tags (run_pk, key, value) SELECT r.run_pk, t.key, t.value FROM {first} r, (VALUES \(
                        Array(repeating: "(CAST(? AS TEXT), CAST(? AS TEXT))", count: written.count).joined(separator: ", "))) AS t(key, value)
                    """, written.flatMap { [.text($0.key), .text($0.value)] })
                tags = written
            } else {
                let runPK = try db.insert(insertRun + " RETURNING run_pk", runValues)
                tags = try Self.upsertTags(db, runPK: runPK, run.tags)
            }
            // A new run holds just what was written here: no round trip to read it back.
            var created = Run(info: info)
            created.tags = tags
            return created
        }
    }

    /// One event per request however many points it carries: what kinds of values it wrote,
    /// how many, their keys (never tag or param values: they go into the digest only).
    static func auditDraft(runID: String, _ writes: RunWrites) -> AuditDraft {
        var hasher = AuditHasher()
        var keys = KeySlots()
        writes.metrics.withUnsafeBufferPointer { metrics in
            for i in metrics.indices {
                hasher.add(metrics[i].key); hasher.add(metrics[i].value); hasher.add(metrics[i].timestamp); hasher.add(metrics[i].step)
                _ = keys.slot(metrics[i].key)
            }
        }
        hasher.add("params")
        for param in writes.params { hasher.add(param.key); hasher.add(param.value) }
        hasher.add("tags")
        for tag in writes.tags { hasher.add(tag.key); hasher.add(tag.value) }
        var details: [String: JSONValue] = [:]
        var kinds: [String] = []
        if !writes.metrics.isEmpty {
            kinds.append("metrics")
            details["points"] = .int(writes.metrics.count)
            details["metric_keys"] = .array(keys.keys.sorted().prefix(20).map(JSONValue.string))
        }
        if !writes.params.isEmpty {
            kinds.append("params")
            details["param_keys"] = .array(writes.params.prefix(20).map { .string($0.key) })
        }
        if !writes.tags.isEmpty {
            kinds.append("tags")
            details["tag_keys"] = .array(writes.tags.prefix(20).map { .string($0.key) })
        }
        let action: String
        switch kinds {
        case ["metrics"]: action = "run.metrics.log"
        case ["params"]: action = "run.params.log"
        case ["tags"]: action = "run.tags.set"
        default: action = "run.log_batch"
        }
        return AuditDraft(action, "run:\(runID)", details: details, digest: hasher.finalize())
    }

    public func fetchRun(id: String) async throws -> Run {
        if let postgres = backend as? PostgresBackend {
            // One statement of fixed text, sent from this task (`readStatements`).
            let results = try await postgres.readPacked("SELECT * FROM \(Self.loadRunsFunction.name)(ARRAY(SELECT run_pk FROM runs WHERE run_id = ?))",
                                                        [.text(id)], columns: Self.runQuerySQL { $0 }.map(\.columns), cache: true)
            guard let pk = results[0].first.map({ $0[0] as Int64 }) else { throw Self.noSuchRun(id) }
            return Self.assembleRuns(pks: [pk], results)[0]
        }
        return try await read { db in
            let pk = try Self.runPK(db, id: id)
            return try Self.loadRuns(db, pks: [pk])[0]
        }
    }

    public func fetchRunInfo(id: String) async throws -> RunInfo {
        guard let row = try await backend.readStatements([(Self.runInfoByIDSQL, [.text(id)])])[0].first else { throw Self.noSuchRun(id) }
        return Self.runInfo(from: row)
    }

    /// A run that reaches a terminal status (from another one) queues its `run.*` webhook event
    /// in the same transaction.
    public func updateRun(id: String, status: RunStatus?, endTime: Int64?, runName: String?, now: Int64) async throws -> RunInfo {
        var details: [String: JSONValue] = [:]
        if let status { details["status"] = .string(status.rawValue) }
        if let endTime { details["end_time"] = .int(endTime) }
        if let runName { details["run_name"] = .string(runName) }
        return try await write("run.update", "run:\(id)", details: details) { db in
            let (pk, info) = try Self.loadRunInfo(db, id: id)
            try Self.requireActive(info)
            if let status {
                try db.execute("UPDATE runs SET status = ? WHERE run_pk = ?", [status.rawValue, pk])
            }
            if let status, status != info.status, let event = WebhookEvent.run(status: status) {
                try Self.enqueueWebhookEvent(db, event, data: .object([
                    ("run_id", .string(info.runID)), ("experiment_id", .string(info.experimentID)),
                    ("run_name", .string(runName ?? info.runName)), ("user_id", .string(info.userID)), ("status", .string(status.rawValue)),
                    ("start_time", info.startTime.map { .number(String($0)) } ?? .null),
                    ("end_time", (endTime ?? info.endTime).map { .number(String($0)) } ?? .null),
                ]), now: now)
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
        try await write(stage == .deleted ? "run.delete" : "run.restore", "run:\(id)") { db in
            let (pk, _) = try Self.loadRunInfo(db, id: id)
            if stage == .active, let purged = try db.value(Int64.self, "SELECT purged_time FROM runs WHERE run_pk = ? AND purged_time IS NOT NULL", [pk]) {
                throw CairnError.invalidParameter("Run \(id) cannot be restored: cairn gc purged its data at \(purged) (ms since 1970), after it had been deleted longer than the grace period.")
            }
            try db.execute("UPDATE runs SET lifecycle_stage = ?, deleted_with_experiment = 0, deleted_time = ? WHERE run_pk = ?",
                           [stage.rawValue, stage == .deleted ? SQLValue.integer(now) : SQLValue.null, pk])
        }
    }

    public func deleteTag(runID: String, key: String) async throws {
        try await write("run.tag.delete", "run:\(runID)", details: ["key": .string(key)]) { db in
            let (pk, info) = try Self.loadRunInfo(db, id: runID)
            try Self.requireActive(info)
            if (try db.execute("DELETE FROM run_tags WHERE run_pk = ? AND key = ?", [pk, key])) == 0 {
                throw CairnError.notFound("No tag with name: \(key) in run with id \(runID)")
            }
        }
    }

    public func logRunWrites(runID: String, _ writes: RunWrites) async throws {
        var slots = KeySlots()
        for metric in writes.metrics { _ = slots.slot(metric.key) }
        let metricKeys = slots.keys
        let readAhead = metricKeys.isEmpty ? nil : ReadAhead.series(SeriesReadAhead(runID: runID, keys: metricKeys))
        // Params are checked against those stored, and a model's metrics against its own: reads
        // of their own. Metrics usually read nothing more (new keys and steps logged again do).
        let readsNothingElse = writes.params.isEmpty && !writes.metrics.contains { !($0.modelID ?? "").isEmpty }
        try await write(readAhead: readAhead, readsNothingElse: readsNothingElse, audit: { _ in Self.auditDraft(runID: runID, writes) }) { [metricKeys] db in
            let (pk, info, series) = try Self.runWithSeriesStates(db, id: runID, keys: metricKeys)
            try Self.requireActive(info)
            try Self.insertParams(db, runPK: pk, runID: runID, writes.params)
            try Self.upsertTags(db, runPK: pk, writes.tags)
            if let runName = writes.tags.last(where: { $0.key == SystemTag.runName }) {
                try db.executeDeferred("UPDATE runs SET run_name = ? WHERE run_pk = ?", [runName.value, pk])
            }
            try Self.appendMetrics(db, runPK: pk, experimentID: try Validation.parseExperimentID(info.experimentID), writes.metrics, known: series)
            try Self.attachModelMetrics(db, runID: runID, writes.metrics)
        }
    }

    public func logInputs(runID: String, _ inputs: [DatasetInput], models: [String]) async throws {
        var hasher = AuditHasher()
        for input in inputs {
            for field in [input.dataset.name, input.dataset.digest, input.dataset.sourceType, input.dataset.source] { hasher.add(field) }
            for tag in input.tags { hasher.add(tag.key); hasher.add(tag.value) }
        }
        for model in models { hasher.add(model) }
        let details: [String: JSONValue] = [
            "datasets": .array(inputs.map { .string("\($0.dataset.name)@\($0.dataset.digest)") }),
            "models": .array(models.map(JSONValue.string)),
        ]
        try await write("run.inputs.log", "run:\(runID)", details: details, digest: hasher.finalize()) { db in
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

    public func searchDatasetSummaries(experimentIDs: [Int64], limit: Int) async throws -> [DatasetSummary] {
        guard !experimentIDs.isEmpty else { return [] }
        let list = Array(repeating: "?", count: experimentIDs.count).joined(separator: ", ")
        return try await read { db in
            let arguments: [any SQLBindable] = [SystemTag.datasetContext] + experimentIDs.map { $0 as any SQLBindable } + [Int64(limit)]
            return try db.rows("""
                SELECT DISTINCT d.experiment_id, d.name, d.digest, t.value
                FROM datasets d
                JOIN run_inputs i ON i.dataset_pk = d.dataset_pk
                LEFT JOIN input_tags t ON t.run_pk = i.run_pk AND t.dataset_pk = i.dataset_pk AND t.key = ?
                WHERE d.experiment_id IN (\(list))
                ORDER BY d.experiment_id, d.name, d.digest, t.value
                LIMIT ?
                """, arguments).map { row in
                DatasetSummary(experimentID: String(row[0] as Int64), name: row[1], digest: row[2], context: row[3])
            }
        }
    }

    public func searchRuns(_ search: RunSearch) async throws -> (items: [Run], hasMore: Bool) {
        let query = try searchSQL.runQuery(search)
        if let postgres = backend as? PostgresBackend {
            // One statement, so one round trip, sent from this task: the page's keys, then
            // every table's rows of the page's runs (`loadRuns`), each read over the page itself.
            var results = try await postgres.readPacked(Self.searchAndLoadSQL(query.sql), query.arguments,
                                                        columns: [1] + Self.runQuerySQL { $0 }.map(\.columns), cache: false)
            var pks = results.removeFirst().map { $0[0] as Int64 }
            let hasMore = pks.count > search.maxResults
            if hasMore { pks.removeLast() }
            return (Self.assembleRuns(pks: pks, results), hasMore)
        }
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
    /// How many columns `runColumns` names (what a query that selects them first reads after them).
    static let runColumnCount = runColumns.split(separator: ",").count

    static func runInfo(from row: SQLRow) -> RunInfo {
        RunInfo(
            runID: row[1], experimentID: String(row[2] as Int64), runName: row[3], userID: row[4],
            status: RunStatus(rawValue: row[5]) ?? .running, startTime: row[6], endTime: row[7],
            artifactURI: row[8], lifecycleStage: LifecycleStage(rawValue: row[9]) ?? .active)
    }

    static func loadRunInfo(_ db: any SQLSession, id: String) throws -> (Int64, RunInfo) {
        guard let row = try db.row(runInfoByIDSQL, [id]) else { throw noSuchRun(id) }
        return (row[0], runInfo(from: row))
    }

    static let runInfoByIDSQL = "SELECT \(runColumns) FROM runs WHERE run_id = ?"

    static func noSuchRun(_ id: String) -> CairnError {
        CairnError.notFound("Run with id=\(id) not found. Check the run id (32 hex characters).")
    }

    /// Loads whole runs (info, latest metrics, params, tags, inputs) in the order of `pks`,
    /// with one query per table, sent together, each query's rows packed (`packedRows(of:)`).
    /// The keys travel as one JSON array parameter, so every statement text is fixed and stays
    /// prepared in the connection's statement cache.
    static func loadRuns(_ db: any SQLSession, pks: [Int64]) throws -> [Run] {
        guard !pks.isEmpty else { return [] }
        return assembleRuns(pks: pks, try db.packedRows(of: runQueries(db.dialect, pks: pks)))
    }

    /// PostgreSQL's search of a page of runs in one statement: one row whose first column is the
    /// page's keys (`searchSQL`'s `run_pk`s, in order), the others the rows of `runQuerySQL`'s
    /// queries over the page, each packed (`PostgresSession.packed`).
    static func searchAndLoadSQL(_ searchSQL: String) -> String {
        "WITH page AS MATERIALIZED (\(searchSQL)) SELECT * FROM (\(PostgresSession.packed("SELECT run_pk FROM page", columns: 1))) g0 "
            + "CROSS JOIN \(loadRunsFunction.name)(ARRAY(SELECT run_pk FROM page))"
    }

    /// The packed rows of `runQuerySQL`'s queries over the runs of `p_pks` (one row of arrays),
    /// as a PL/pgSQL function that the search's statement calls, made and named like
    /// `runWithSeriesStatesFunction`. Planning these eight queries in the search's statement
    /// took about 1 ms of its 3.3 ms on 10,000 runs (`EXPLAIN ANALYZE`, 2026-11-28), every time:
    /// the function plans them once per connection, with a generic plan (`force_generic_plan`: its
    /// queries find runs by key, whose plan does not depend on the keys; with PostgreSQL's own
    /// choice it kept planning them for each call). Measured the same way: a filtered search's
    /// page of 100 runs 3.5 → 2.2 ms, an unfiltered page of 1,000 runs 13.5 → 12.0 ms.
    /// STABLE: it reads with the calling statement's snapshot.
    static let loadRunsFunction: (name: String, sql: String) = {
        precondition(runQuerySQL { $0 }.map(\.columns) == runQueryTypes.map(\.count))
        let columns = runQueryTypes.enumerated().flatMap { query in
            query.element.enumerated().map { "o\(query.offset)_\($0.offset) \($0.element)[]" }
        }.joined(separator: ", ")
        let definition = """
            (p_pks bigint[]) RETURNS TABLE (\(columns))
            LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $$
            BEGIN
            RETURN QUERY \(loadRunsSQL(keys: "p_pks"));
            END $$
            """
        let name = "cairn_load_runs_" + SHA256.hash(data: Data(definition.utf8)).prefix(6).map { String(format: "%02x", $0) }.joined()
        return (name, "CREATE OR REPLACE FUNCTION \(name) " + definition)
    }()

    /// The body of `loadRunsFunction`: `runQuerySQL`'s queries packed, side by side, over the
    /// runs of the array `keys`.
    static func loadRunsSQL(keys: String) -> String {
        "SELECT * FROM " + runQuerySQL { "\($0) = ANY(\(keys))" }.enumerated()
            .map { "(\(PostgresSession.packed($0.element.sql, columns: $0.element.columns))) g\($0.offset)" }.joined(separator: " CROSS JOIN ")
    }

    /// The PostgreSQL types of `runQuerySQL`'s columns, query by query.
    static let runQueryTypes: [[String]] = [
        ["bigint", "text", "bigint", "text", "text", "text", "bigint", "bigint", "text", "text"],
        ["bigint", "text", "text"], ["bigint", "text", "text"],
        ["bigint", "text", "double precision", "bigint", "bigint", "bigint"],
        ["bigint", "text"], ["bigint", "text", "bigint"],
        ["bigint", "bigint", "text", "text", "text", "text", "text", "text"],
        ["bigint", "bigint", "text", "text"],
    ]

    /// The runs of `pks`, in that order, from the rows of `runQuerySQL`'s queries.
    static func assembleRuns(pks: [Int64], _ results: [[SQLRow]]) -> [Run] {
        // Runs in an array, found by key through `slot`: appending to a run in place, never
        // through a dictionary's optional value (which moves the whole run out and back).
        var runs: [Run] = []
        runs.reserveCapacity(results[0].count)
        var slot: [Int64: Int] = [:]
        slot.reserveCapacity(results[0].count)
        for row in results[0] {
            slot[row[0]] = runs.count
            runs.append(Run(info: runInfo(from: row)))
        }
        for row in results[1] { if let i = slot[row[0]] { runs[i].params.append(Param(row[1], row[2])) } }
        for row in results[2] { if let i = slot[row[0]] { runs[i].tags.append(Tag(row[1], row[2])) } }
        for row in results[3] {
            guard let i = slot[row[0]] else { continue }
            let isNaN: Bool = row[3]
            let value: Double = isNaN ? .nan : (row[2] as Double?) ?? .nan
            runs[i].metrics.append(Metric(key: row[1], value: value, timestamp: row[4], step: row[5]))
        }
        for row in results[4] { if let i = slot[row[0]] { runs[i].modelInputs.append(row[1]) } }
        for row in results[5] { if let i = slot[row[0]] { runs[i].modelOutputs.append(ModelOutput(modelID: row[1], step: row[2])) } }
        var inputTags: [String: [Tag]] = [:]
        for row in results[7] {
            inputTags["\(row[0] as Int64)/\(row[1] as Int64)", default: []].append(Tag(row[2], row[3]))
        }
        for row in results[6] {
            guard let i = slot[row[0]] else { continue }
            let dataset = Dataset(name: row[2], digest: row[3], sourceType: row[4], source: row[5], schema: row[6], profile: row[7])
            let tags = inputTags["\(row[0] as Int64)/\(row[1] as Int64)"] ?? []
            runs[i].inputs.append(DatasetInput(tags: tags, dataset: dataset))
        }
        return pks.compactMap { slot[$0].map { runs[$0] } }
    }

    /// The queries `loadRuns` reads runs with, one per table: info, params, tags, latest
    /// metrics, model inputs, model outputs, dataset inputs, input tags.
    static func runQueries(_ dialect: SQLDialect, pks: [Int64]) -> [PackedQuery] {
        runQuerySQL(dialect.inPKList).map { (sql: $0.sql, values: [SQLValue.text(pkList(pks))], columns: $0.columns) }
    }

    /// `runQueries`' SQL and column counts, with `inKeys(column)` the condition that picks the runs.
    static func runQuerySQL(_ inKeys: (String) -> String) -> [(sql: String, columns: Int)] {
        [
            (runInfoSQL(inKeys), 10), (keyValueSQL(.params, inKeys), 3), (keyValueSQL(.tags, inKeys), 3),
            ("""
            SELECT lm.run_pk, mk.key, lm.value, lm.is_nan, lm.timestamp, lm.step
            FROM latest_metrics lm JOIN metric_keys mk ON mk.key_id = lm.key_id
            WHERE \(inKeys("lm.run_pk")) ORDER BY lm.run_pk, mk.key
            """, 6),
            ("SELECT run_pk, model_id FROM run_model_inputs WHERE \(inKeys("run_pk")) ORDER BY model_id", 2),
            ("SELECT run_pk, model_id, step FROM run_model_outputs WHERE \(inKeys("run_pk")) ORDER BY step, model_id", 3),
            ("""
            SELECT ri.run_pk, ri.dataset_pk, d.name, d.digest, d.source_type, d.source, d.schema, d.profile
            FROM run_inputs ri JOIN datasets d ON d.dataset_pk = ri.dataset_pk
            WHERE \(inKeys("ri.run_pk")) ORDER BY ri.run_pk, ri.position
            """, 8),
            ("SELECT run_pk, dataset_pk, key, value FROM input_tags WHERE \(inKeys("run_pk")) ORDER BY key", 4),
        ]
    }

    /// The runs picked by `inKeys` (`dialect.inPKList` for a `pkList` argument) with their info
    /// (`runInfo(from:)`), in no particular order.
    static func runInfoSQL(_ inKeys: (String) -> String) -> String {
        "SELECT \(runColumns) FROM runs WHERE \(inKeys("run_pk"))"
    }

    enum KeyValueTable: String {
        case params = "run_params"
        case tags = "run_tags"
    }

    /// (run, key, value) of the params or tags of the runs of a `pkList` argument, by run then key.
    static func keyValueSQL(_ table: KeyValueTable, _ inKeys: (String) -> String) -> String {
        "SELECT run_pk, key, value FROM \(table.rawValue) WHERE \(inKeys("run_pk")) ORDER BY run_pk, key"
    }

    /// Writes params, which are write-once: a key already logged with the same value is left
    /// as it is, with another value the whole write is refused (MLflow's rule and message).
    /// One query reads the keys already there, one statement inserts the new ones.
    static func insertParams(_ db: any SQLSession, runPK: Int64, runID: String, _ params: [Param]) throws {
        guard !params.isEmpty else { return }
        var stored: [String: String] = [:]
        try db.each("""
            SELECT key, value FROM run_params WHERE run_pk = ? AND \(db.dialect.inTextList("key"))
            """, [.integer(runPK), .text(textList(params.map(\.key)))], cache: true) { stored[$0[0]] = $0[1] }
        var conflicts: [(key: String, old: String, new: String)] = []
        var new: [Param] = []
        for param in params {
            if let existing = stored[param.key] {
                if existing != param.value { conflicts.append((param.key, existing, param.value)) }
                continue
            }
            stored[param.key] = param.value
            new.append(param)
        }
        if !conflicts.isEmpty {
            let list = conflicts.map { "{'key': '\($0.key)', 'old_value': '\($0.old)', 'new_value': '\($0.new)'}" }.joined(separator: ", ")
            throw CairnError.invalidParameter("Changing param values is not allowed. Params were already logged='[\(list)]' for run ID='\(runID)'. Params are write-once; log the new value under a new key or in a new run.")
        }
        // Independent writes (the run's own rows): on PostgreSQL they go out in one statement with
        // the rest of the work's writes, not a round trip each.
        try insertRows(db, "INSERT INTO run_params (run_pk, key, value) VALUES ", new.map { [.integer(runPK), .text($0.key), .text($0.value)] },
                       independent: true)
    }

    /// Sets tags (a key given twice keeps its last value); answers the tags written, by key.
    @discardableResult
    static func upsertTags(_ db: any SQLSession, runPK: Int64, _ tags: [Tag]) throws -> [Tag] {
        let written = lastTagValues(tags)
        try insertRows(db, "INSERT INTO run_tags (run_pk, key, value) VALUES ", written.map { [.integer(runPK), .text($0.key), .text($0.value)] },
                       independent: true, suffix: " ON CONFLICT (run_pk, key) DO UPDATE SET value = excluded.value")
        return written
    }

    /// `tags` with a key given twice at its last value, by key.
    static func lastTagValues(_ tags: [Tag]) -> [Tag] {
        var last: [String: String] = [:]
        for tag in tags { last[tag.key] = tag.value }
        return last.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }.map { Tag($0.key, $0.value) }
    }

    /// Rows written by multi-row statements (`INSERT … VALUES (…), (…)`, or `UPDATE … FROM
    /// (VALUES (…), (…))`), sent deferred, of at most `rowsPerStatement` rows each: a bounded set of statement texts (each prepared
    /// once), well under both backends' parameter limits.
    /// `independent`: the statements may go out as one with other independent writes (see
    /// `SQLSession.runDeferredIndependent`).
    static func insertRows(_ db: any SQLSession, _ insert: String, _ rows: [[SQLValue]], independent: Bool = false, suffix: String = "") throws {
        for statement in rowStatements(insert, rows, suffix: suffix) {
            if independent {
                try db.runDeferredIndependent(statement.sql, statement.values)
            } else {
                try db.runDeferred(statement.sql, statement.values)
            }
        }
    }

    /// The multi-row statements of `insertRows`, for a caller that needs their answers
    /// (`RETURNING`): `db.rows(of:)` sends them all before it waits.
    static func rowStatements(_ insert: String, _ rows: [[SQLValue]], suffix: String = "") -> [(sql: String, values: [SQLValue])] {
        guard let width = rows.first?.count else { return [] }
        let tuple = "(" + Array(repeating: "?", count: width).joined(separator: ", ") + ")"
        var statements: [(sql: String, values: [SQLValue])] = []
        var start = 0
        while start < rows.count {
            let count = min(rowsPerStatement, rows.count - start)
            statements.append((insert + Array(repeating: tuple, count: count).joined(separator: ", ") + suffix,
                               Array(rows[start..<start + count].joined())))
            start += count
        }
        return statements
    }

    static let rowsPerStatement = 64

    /// PostgreSQL only: a `SELECT` of rows bound as one array per column (`columnArrays`), the
    /// columns named as given: `SELECT c1, NULLIF(c2, 'NaN') AS c2, … FROM unnest(?, ?, …) AS
    /// u(c1, c2, …)`. One text whatever the number of rows, so PostgreSQL parses and plans one
    /// small statement instead of one with a `VALUES` row per row.
    static func rowsFromArrays(_ columns: [(name: String, kind: SQLArrayKind)]) -> String {
        let selected = columns.map { $0.kind == .real ? "NULLIF(\($0.name), 'NaN') AS \($0.name)" : $0.name }
        let arrays = columns.map { "CAST(? AS \($0.kind.postgresType))" }
        return "SELECT \(selected.joined(separator: ", ")) FROM unnest(\(arrays.joined(separator: ", "))) AS u(\(columns.map(\.name).joined(separator: ", ")))"
    }

    /// `rows` as the array parameters of `rowsFromArrays(columns)`, one per column. A NULL in a
    /// real column travels as NaN, which `rowsFromArrays` turns back: such a column never
    /// stores NaN itself. No other column may hold NULL.
    static func columnArrays(_ rows: [[SQLValue]], _ columns: [(name: String, kind: SQLArrayKind)]) -> [SQLValue] {
        columns.indices.map { c in
            switch columns[c].kind {
            case .integer:
                return .array(.integers(rows.map { row in
                    guard case .integer(let n) = row[c] else { preconditionFailure("\(columns[c].name): an integer column holds \(row[c])") }
                    return n
                }))
            case .real:
                return .array(.reals(rows.map { row in
                    switch row[c] {
                    case .real(let d): return d
                    case .null: return .nan
                    default: preconditionFailure("\(columns[c].name): a real column holds \(row[c])")
                    }
                }))
            case .blob:
                return .array(.blobs(rows.map { row in
                    guard case .blob(let bytes) = row[c] else { preconditionFailure("\(columns[c].name): a blob column holds \(row[c])") }
                    return bytes
                }))
            }
        }
    }
}
