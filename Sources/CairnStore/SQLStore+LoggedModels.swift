import CairnCore
import Foundation

extension SQLStore {
    public func createLoggedModel(_ model: LoggedModel) async throws -> LoggedModel {
        let details: [String: JSONValue] = [
            "experiment_id": .string(model.experimentID), "name": .string(model.name),
            "source_run_id": model.sourceRunID.map(JSONValue.string) ?? .null,
        ]
        return try await write("logged_model.create", "logged_model:\(model.modelID)", details: details) { db in
            let experimentID = try Validation.parseExperimentID(model.experimentID)
            let experiment = try Self.loadExperiment(db, id: experimentID)
            if experiment.lifecycleStage != .active {
                throw CairnError.invalidParameter("The experiment \(experimentID) must be in the 'active' state to log models in it, but it is deleted. Restore it first.")
            }
            // source_run_id is not looked up: as in MLflow, it may name a run of another server.
            let pk = try db.insert("""
                    INSERT INTO logged_models (model_id, experiment_id, name, artifact_uri, creation_timestamp, last_updated_timestamp,
                                               status, status_message, creator_id, model_type, source_run_id)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING model_pk
                    """, [model.modelID, experimentID, model.name, model.artifactURI, model.creationTimestamp,
                            model.lastUpdatedTimestamp, model.status.rawValue, model.statusMessage, model.creatorID,
                            model.modelType, model.sourceRunID])
            for tag in model.tags {
                try db.execute("INSERT INTO logged_model_tags (model_pk, key, value) VALUES (?, ?, ?) ON CONFLICT (model_pk, key) DO UPDATE SET value = excluded.value", [pk, tag.key, tag.value])
            }
            try Self.insertModelParams(db, modelPK: pk, modelID: model.modelID, model.params)
            return try Self.loadLoggedModels(db, pks: [pk])[0]
        }
    }

    public func fetchLoggedModel(id: String, allowDeleted: Bool) async throws -> LoggedModel {
        try await read { db in
            let pk = try Self.modelPK(db, id: id, allowDeleted: allowDeleted)
            return try Self.loadLoggedModels(db, pks: [pk])[0]
        }
    }

    public func updateLoggedModelStatus(id: String, status: LoggedModelStatus, statusMessage: String?, now: Int64) async throws -> LoggedModel {
        try await write("logged_model.finalize", "logged_model:\(id)", details: ["status": .string(status.rawValue)]) { db in
            let pk = try Self.modelPK(db, id: id, allowDeleted: false)
            try db.execute("UPDATE logged_models SET status = ?, status_message = ?, last_updated_timestamp = ? WHERE model_pk = ?", [status.rawValue, statusMessage, now, pk])
            return try Self.loadLoggedModels(db, pks: [pk])[0]
        }
    }

    public func setLoggedModelTags(id: String, tags: [Tag], now: Int64) async throws {
        try await write("logged_model.tags.set", "logged_model:\(id)", details: ["keys": .array(tags.map { .string($0.key) })],
                        digest: Self.tagsDigest(tags)) { db in
            let pk = try Self.modelPK(db, id: id, allowDeleted: false)
            for tag in tags {
                try db.execute("INSERT INTO logged_model_tags (model_pk, key, value) VALUES (?, ?, ?) ON CONFLICT (model_pk, key) DO UPDATE SET value = excluded.value", [pk, tag.key, tag.value])
            }
            try Self.touchModel(db, pk: pk, now: now)
        }
    }

    public func deleteLoggedModelTag(id: String, key: String, now: Int64) async throws {
        try await write("logged_model.tag.delete", "logged_model:\(id)", details: ["key": .string(key)]) { db in
            let pk = try Self.modelPK(db, id: id, allowDeleted: false)
            if (try db.execute("DELETE FROM logged_model_tags WHERE model_pk = ? AND key = ?", [pk, key])) == 0 {
                throw CairnError.notFound("No tag with key '\(key)' on logged model \(id).")
            }
            try Self.touchModel(db, pk: pk, now: now)
        }
    }

    public func logLoggedModelParams(id: String, params: [Param], now: Int64) async throws {
        try await write("logged_model.params.log", "logged_model:\(id)", details: ["keys": .array(params.map { .string($0.key) })],
                        digest: Self.tagsDigest(params.map { Tag($0.key, $0.value) })) { db in
            let pk = try Self.modelPK(db, id: id, allowDeleted: false)
            try Self.insertModelParams(db, modelPK: pk, modelID: id, params)
            try Self.touchModel(db, pk: pk, now: now)
        }
    }

    public func deleteLoggedModel(id: String, now: Int64) async throws {
        try await write("logged_model.delete", "logged_model:\(id)") { db in
            let pk = try Self.modelPK(db, id: id, allowDeleted: false)
            try db.execute("UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp = ? WHERE model_pk = ?", [now, pk])
        }
    }

    public func searchLoggedModels(_ search: LoggedModelSearch) async throws -> (items: [LoggedModel], hasMore: Bool) {
        let query = try searchSQL.loggedModelQuery(search)
        return try await read { db in
            var pks = try db.values(Int64.self, query)
            let hasMore = pks.count > search.maxResults
            if hasMore { pks.removeLast() }
            return (try Self.loadLoggedModels(db, pks: pks), hasMore)
        }
    }

    public func logOutputs(runID: String, _ outputs: [ModelOutput]) async throws {
        try await write("run.outputs.log", "run:\(runID)", details: ["models": .array(outputs.map { .string($0.modelID) })]) { db in
            let (pk, info) = try Self.loadRunInfo(db, id: runID)
            try Self.requireActive(info)
            for output in outputs {
                _ = try Self.modelPK(db, id: output.modelID, allowDeleted: false)
                try db.execute("INSERT INTO run_model_outputs (run_pk, model_id, step) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", [pk, output.modelID, output.step])
            }
        }
    }

    public func appendLogModelHistory(runID: String, model: JSONValue) async throws {
        var writer = JSONWriter()
        writer.value(model)
        var hasher = AuditHasher()
        hasher.add(writer.string)
        try await write("run.log_model", "run:\(runID)", digest: hasher.finalize()) { db in
            let (pk, info) = try Self.loadRunInfo(db, id: runID)
            try Self.requireActive(info)
            var history: [JSONValue] = []
            if let existing = try db.value(String.self, "SELECT value FROM run_tags WHERE run_pk = ? AND key = ?", [pk, SystemTag.logModelHistory]),
               case .array(let items)? = try? JSONValue.parse(existing) {
                history = items
            }
            history.append(model)
            var writer = JSONWriter()
            writer.value(.array(history))
            try db.execute("INSERT INTO run_tags (run_pk, key, value) VALUES (?, ?, ?) ON CONFLICT (run_pk, key) DO UPDATE SET value = excluded.value", [pk, SystemTag.logModelHistory, writer.string])
        }
    }

    // MARK: - Helpers

    static func modelPK(_ db: any SQLSession, id: String, allowDeleted: Bool) throws -> Int64 {
        guard let row = try db.row("SELECT model_pk, lifecycle_stage FROM logged_models WHERE model_id = ?", [id]),
              allowDeleted || (row[1] as String) == LifecycleStage.active.rawValue
        else {
            throw CairnError.notFound("Logged model with ID '\(id)' not found.")
        }
        return row[0]
    }

    static func touchModel(_ db: any SQLSession, pk: Int64, now: Int64) throws {
        try db.execute("UPDATE logged_models SET last_updated_timestamp = ? WHERE model_pk = ?", [now, pk])
    }

    static func insertModelParams(_ db: any SQLSession, modelPK: Int64, modelID: String, _ params: [Param]) throws {
        for param in params {
            if let existing = try db.value(String.self, "SELECT value FROM logged_model_params WHERE model_pk = ? AND key = ?", [modelPK, param.key]) {
                if existing != param.value {
                    throw CairnError.invalidParameter("Changing param values is not allowed. Param '\(param.key)' of logged model \(modelID) is already '\(existing)', not '\(param.value)'.")
                }
                continue
            }
            try db.execute("INSERT INTO logged_model_params (model_pk, key, value) VALUES (?, ?, ?)", [modelPK, param.key, param.value])
        }
    }

    /// Stores the points of `metrics` that name a logged model against that model too;
    /// identical points are kept once (replayed requests).
    static func attachModelMetrics(_ db: any SQLSession, runID: String, _ metrics: [Metric]) throws {
        for metric in metrics {
            guard let modelID = metric.modelID, !modelID.isEmpty else { continue }
            let pk = try modelPK(db, id: modelID, allowDeleted: false)
            let isNaN = metric.value.isNaN
            let duplicate = try db.value(Bool.self, """
                SELECT 1 FROM logged_model_metrics
                WHERE model_pk = ? AND key = ? AND step = ? AND timestamp = ? AND is_nan = ? AND (is_nan = 1 OR value = ?)
                  AND run_id IS NOT DISTINCT FROM ? AND dataset_name IS NOT DISTINCT FROM ? AND dataset_digest IS NOT DISTINCT FROM ?
                """, [pk, metric.key, metric.step, metric.timestamp, isNaN, isNaN ? nil : metric.value,
                                  runID, metric.datasetName, metric.datasetDigest]) ?? false
            if duplicate { continue }
            try db.execute("""
                INSERT INTO logged_model_metrics (model_pk, key, value, is_nan, timestamp, step, run_id, dataset_name, dataset_digest)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [pk, metric.key, isNaN ? nil : metric.value, isNaN, metric.timestamp, metric.step,
                                         runID, metric.datasetName, metric.datasetDigest])
        }
    }

    static func loadLoggedModels(_ db: any SQLSession, pks: [Int64]) throws -> [LoggedModel] {
        guard !pks.isEmpty else { return [] }
        var models: [Int64: LoggedModel] = [:]
        do {
            let args: [any SQLBindable] = [pkList(pks)]
            for row in try db.rows("""
                SELECT model_pk, model_id, experiment_id, name, artifact_uri, creation_timestamp, last_updated_timestamp,
                       status, status_message, creator_id, model_type, source_run_id, lifecycle_stage
                FROM logged_models WHERE \(db.dialect.inPKList("model_pk"))
                """, args) {
                models[row[0]] = LoggedModel(
                    modelID: row[1], experimentID: String(row[2] as Int64), name: row[3], artifactURI: row[4],
                    creationTimestamp: row[5], lastUpdatedTimestamp: row[6],
                    status: LoggedModelStatus(rawValue: row[7]) ?? .pending, statusMessage: row[8], creatorID: row[9],
                    modelType: row[10], sourceRunID: row[11], lifecycleStage: LifecycleStage(rawValue: row[12]) ?? .active)
            }
            for row in try db.rows("SELECT model_pk, key, value FROM logged_model_tags WHERE \(db.dialect.inPKList("model_pk")) ORDER BY key", args) {
                models[row[0]]?.tags.append(Tag(row[1], row[2]))
            }
            for row in try db.rows("SELECT model_pk, key, value FROM logged_model_params WHERE \(db.dialect.inPKList("model_pk")) ORDER BY key", args) {
                models[row[0]]?.params.append(Param(row[1], row[2]))
            }
            for row in try db.rows("""
                SELECT model_pk, key, value, is_nan, timestamp, step, run_id, dataset_name, dataset_digest
                FROM logged_model_metrics WHERE \(db.dialect.inPKList("model_pk")) ORDER BY model_pk, key, step, timestamp
                """, args) {
                let isNaN: Bool = row[3]
                models[row[0]]?.metrics.append(ModelMetric(
                    key: row[1], value: isNaN ? .nan : (row[2] as Double?) ?? .nan, timestamp: row[4], step: row[5],
                    runID: row[6], datasetName: row[7], datasetDigest: row[8]))
            }
        }
        return pks.compactMap { models[$0] }
    }
}
