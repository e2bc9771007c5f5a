import CairnCore
import Foundation
import GRDB

/// An MLflow SQL store (MLflow's SQLAlchemy schema) in a SQLite file, opened read-only: what
/// `cairn import mlflow --from-store sqlite:///mlflow.db` reads. Answers the entities as MLflow's
/// REST API answers them for the same store (NaN from `is_nan`, times in ms, run ids, names,
/// lifecycles as recorded), so an import through it equals one through the server.
public struct MLflowSQLStoreFile: Sendable {
    public let path: String
    let queue: DatabaseQueue

    /// Opens `path` read-only; a missing file, or one that is not an MLflow store, throws a
    /// `CairnError` that says which.
    public init(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CairnError.notFound("There is no file '\(path)'.")
        }
        var configuration = Configuration()
        configuration.readonly = true
        self.path = path
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
            let tables = try queue.read { db in
                try String.fetchSet(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            let needed: Set = ["experiments", "runs", "metrics", "params", "tags", "alembic_version"]
            guard needed.isSubset(of: tables) else {
                throw CairnError.invalidParameter("'\(path)' is a SQLite file but not an MLflow store (it has no \(needed.subtracting(tables).sorted().joined(separator: ", ")) table).")
            }
            hasLoggedModels = tables.contains("logged_models")
            hasInputs = tables.contains("inputs") && tables.contains("datasets")
            hasRegistry = tables.contains("registered_models") && tables.contains("model_versions")
        } catch let error as CairnError {
            throw error
        } catch {
            throw CairnError.invalidParameter("'\(path)' cannot be read as an MLflow SQL store (\(error)).")
        }
    }

    let hasLoggedModels: Bool
    let hasInputs: Bool
    let hasRegistry: Bool

    static func tags(_ db: Database, _ sql: String, _ arguments: StatementArguments) throws -> [Tag] {
        try Row.fetchAll(db, sql: sql, arguments: arguments).map { Tag($0[0] as String, ($0[1] as String?) ?? "") }
    }

    static func experiment(_ db: Database, _ row: Row) throws -> Experiment {
        let id: Int64 = row["experiment_id"]
        return Experiment(
            experimentID: String(id), name: row["name"], artifactLocation: (row["artifact_location"] as String?) ?? "",
            lifecycleStage: LifecycleStage(rawValue: (row["lifecycle_stage"] as String?) ?? "active") ?? .active,
            creationTime: (row["creation_time"] as Int64?) ?? 0, lastUpdateTime: (row["last_update_time"] as Int64?) ?? 0,
            tags: try tags(db, "SELECT key, value FROM experiment_tags WHERE experiment_id = ? ORDER BY key", [id]))
    }

    static let experimentColumns = "experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time"

    /// Every experiment, active and deleted, by id.
    public func experiments() throws -> [Experiment] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT \(Self.experimentColumns) FROM experiments ORDER BY experiment_id").map { try Self.experiment(db, $0) }
        }
    }

    public func experiment(named name: String) throws -> Experiment? {
        try queue.read { db in
            try Row.fetchOne(db, sql: "SELECT \(Self.experimentColumns) FROM experiments WHERE name = ?", arguments: [name]).map { try Self.experiment(db, $0) }
        }
    }

    public func experiment(id: String) throws -> Experiment? {
        guard let number = Int64(id) else { return nil }
        return try queue.read { db in
            try Row.fetchOne(db, sql: "SELECT \(Self.experimentColumns) FROM experiments WHERE experiment_id = ?", arguments: [number]).map { try Self.experiment(db, $0) }
        }
    }

    /// Every run of the experiment, active and deleted, by start time then id; `metrics` holds
    /// one point per series (its keys name the series, as MLflow's latest values do).
    public func runs(experimentID: String) throws -> [Run] {
        guard let experiment = Int64(experimentID) else { return [] }
        return try queue.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT run_uuid, name, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri, experiment_id
                FROM runs WHERE experiment_id = ? ORDER BY start_time, run_uuid
                """, arguments: [experiment])
            return try rows.map { row in
                let runID: String = row["run_uuid"]
                let info = RunInfo(
                    runID: runID, experimentID: String((row["experiment_id"] as Int64?) ?? experiment), runName: (row["name"] as String?) ?? "",
                    userID: (row["user_id"] as String?) ?? "", status: RunStatus(rawValue: (row["status"] as String?) ?? "RUNNING") ?? .running,
                    startTime: row["start_time"], endTime: row["end_time"], artifactURI: (row["artifact_uri"] as String?) ?? "",
                    lifecycleStage: LifecycleStage(rawValue: (row["lifecycle_stage"] as String?) ?? "active") ?? .active)
                let keys = try String.fetchAll(db, sql: "SELECT DISTINCT key FROM metrics WHERE run_uuid = ? ORDER BY key", arguments: [runID])
                let params = try Row.fetchAll(db, sql: "SELECT key, value FROM params WHERE run_uuid = ? ORDER BY key", arguments: [runID])
                    .map { Param($0[0] as String, ($0[1] as String?) ?? "") }
                let tags = try Self.tags(db, "SELECT key, value FROM tags WHERE run_uuid = ? ORDER BY key", [runID])
                var run = Run(info: info, metrics: keys.map { Metric(key: $0, value: 0, timestamp: 0, step: 0) }, params: params, tags: tags)
                if hasInputs {
                    run.inputs = try Row.fetchAll(db, sql: """
                        SELECT i.input_uuid, d.name, d.digest, d.dataset_source_type, d.dataset_source, d.dataset_schema, d.dataset_profile
                        FROM inputs i JOIN datasets d ON d.dataset_uuid = i.source_id
                        WHERE i.source_type = 'DATASET' AND i.destination_type = 'RUN' AND i.destination_id = ?
                        ORDER BY d.name, d.digest
                        """, arguments: [runID]).map { r in
                        DatasetInput(
                            tags: try Self.tags(db, "SELECT name, value FROM input_tags WHERE input_uuid = ? ORDER BY name", [r[0] as String]),
                            dataset: Dataset(name: r[1], digest: r[2], sourceType: r[3], source: r[4], schema: r[5], profile: r[6]))
                    }
                    run.modelInputs = try String.fetchAll(db, sql: """
                        SELECT source_id FROM inputs WHERE source_type = 'MODEL_INPUT' AND destination_type = 'RUN_INPUT' AND destination_id = ? ORDER BY source_id
                        """, arguments: [runID])
                    run.modelOutputs = try Row.fetchAll(db, sql: """
                        SELECT destination_id, step FROM inputs WHERE source_type = 'RUN_OUTPUT' AND source_id = ? AND destination_type = 'MODEL_OUTPUT' ORDER BY destination_id
                        """, arguments: [runID]).map { ModelOutput(modelID: $0[0], step: ($0[1] as Int64?) ?? 0) }
                }
                return run
            }
        }
    }

    /// Every point of one series, as MLflow orders them (timestamp, step, value); NaN where
    /// `is_nan` is set.
    public func metricHistory(runID: String, key: String) throws -> [Metric] {
        try queue.read { db in
            try Row.fetchAll(db, sql: """
                SELECT value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ? AND key = ? ORDER BY timestamp, step, value
                """, arguments: [runID, key]).map { row in
                let isNaN: Bool = (row[3] as Bool?) ?? false
                return Metric(key: key, value: isNaN ? .nan : ((row[0] as Double?) ?? .nan), timestamp: row[1], step: (row[2] as Int64?) ?? 0)
            }
        }
    }

    /// The logged models of the experiment (none in a store made before MLflow 3), deleted ones
    /// left out as MLflow's search leaves them out.
    public func loggedModels(experimentID: String) throws -> [LoggedModel] {
        guard hasLoggedModels, let experiment = Int64(experimentID) else { return [] }
        return try queue.read { db in
            try Row.fetchAll(db, sql: """
                SELECT model_id, experiment_id, name, artifact_location, creation_timestamp_ms, last_updated_timestamp_ms, status,
                       lifecycle_stage, model_type, source_run_id, status_message
                FROM logged_models WHERE experiment_id = ? AND coalesce(lifecycle_stage, 'active') <> 'deleted'
                ORDER BY creation_timestamp_ms, model_id
                """, arguments: [experiment]).map { row in
                let id: String = row["model_id"]
                return LoggedModel(
                    modelID: id, experimentID: String(experiment), name: row["name"], artifactURI: (row["artifact_location"] as String?) ?? "",
                    creationTimestamp: (row["creation_timestamp_ms"] as Int64?) ?? 0,
                    lastUpdatedTimestamp: (row["last_updated_timestamp_ms"] as Int64?) ?? 0,
                    status: (row["status"] as Int64?).flatMap(LoggedModelStatus.init(number:)) ?? .ready,
                    statusMessage: row["status_message"], creatorID: nil, modelType: row["model_type"], sourceRunID: row["source_run_id"],
                    lifecycleStage: .active,
                    tags: try Self.tags(db, "SELECT tag_key, tag_value FROM logged_model_tags WHERE model_id = ? ORDER BY tag_key", [id]),
                    params: try Row.fetchAll(db, sql: "SELECT param_key, param_value FROM logged_model_params WHERE model_id = ? ORDER BY param_key", arguments: [id])
                        .map { Param($0[0] as String, ($0[1] as String?) ?? "") },
                    metrics: try Row.fetchAll(db, sql: """
                        SELECT metric_name, metric_value, metric_timestamp_ms, metric_step, run_id, dataset_name, dataset_digest
                        FROM logged_model_metrics WHERE model_id = ? ORDER BY metric_name, metric_timestamp_ms, metric_step, run_id
                        """, arguments: [id]).map { m in
                        ModelMetric(key: m[0], value: (m[1] as Double?) ?? .nan, timestamp: m[2], step: m[3], runID: m[4],
                                    datasetName: m[5], datasetDigest: m[6])
                    })
            }
        }
    }

    /// Every registered model with its tags and aliases, by name.
    public func registeredModels() throws -> [RegisteredModel] {
        guard hasRegistry else { return [] }
        return try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT name, creation_time, last_updated_time, description FROM registered_models ORDER BY name").map { row in
                let name: String = row["name"]
                return RegisteredModel(
                    name: name, creationTimestamp: (row["creation_time"] as Int64?) ?? 0, lastUpdatedTimestamp: (row["last_updated_time"] as Int64?) ?? 0,
                    userID: "", description: (row["description"] as String?) ?? "",
                    tags: try Self.tags(db, "SELECT key, value FROM registered_model_tags WHERE name = ? ORDER BY key", [name]),
                    aliases: try Row.fetchAll(db, sql: "SELECT alias, version FROM registered_model_aliases WHERE name = ? ORDER BY alias", arguments: [name])
                        .map { (alias: $0[0] as String, version: $0[1] as Int64) },
                    latestVersions: [])
            }
        }
    }

    /// Every version of the registered model, by number, with tags and aliases.
    public func modelVersions(name: String) throws -> [ModelVersion] {
        guard hasRegistry else { return [] }
        return try queue.read { db in
            let aliases = try Row.fetchAll(db, sql: "SELECT alias, version FROM registered_model_aliases WHERE name = ? ORDER BY alias", arguments: [name])
                .map { (alias: $0[0] as String, version: $0[1] as Int64) }
            return try Row.fetchAll(db, sql: """
                SELECT version, creation_time, last_updated_time, description, user_id, current_stage, source, run_id, status,
                       status_message, run_link
                FROM model_versions WHERE name = ? ORDER BY version
                """, arguments: [name]).map { row in
                let version: Int64 = row["version"]
                let runID = (row["run_id"] as String?).flatMap { $0.isEmpty ? nil : $0 }
                let runLink = (row["run_link"] as String?).flatMap { $0.isEmpty ? nil : $0 }
                return ModelVersion(
                    name: name, version: version, creationTimestamp: (row["creation_time"] as Int64?) ?? 0,
                    lastUpdatedTimestamp: (row["last_updated_time"] as Int64?) ?? 0, userID: (row["user_id"] as String?) ?? "",
                    currentStage: (row["current_stage"] as String?) ?? "None", description: (row["description"] as String?) ?? "",
                    source: (row["source"] as String?) ?? "", runID: runID, runLink: runLink,
                    status: (row["status"] as String?) ?? "READY", statusMessage: row["status_message"], modelID: nil,
                    tags: try Self.tags(db, "SELECT key, value FROM model_version_tags WHERE name = ? AND version = ? ORDER BY key", [name, version]),
                    aliases: aliases.filter { $0.version == version }.map(\.alias))
            }
        }
    }
}
