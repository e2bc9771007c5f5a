import CairnCore
import Foundation
import GRDB
import NIOPosix
import PostgresNIO

/// An MLflow SQL store (MLflow's SQLAlchemy schema), read directly: its SQLite file, opened
/// read-only (`cairn import mlflow --from-store sqlite:///mlflow.db`), or its PostgreSQL
/// database, read in read-only transactions (`--from-store postgresql://…`). Both run the same
/// queries through `SQLSession`. Answers the entities as MLflow's REST API answers them for the
/// same store (NaN from `is_nan`, times in ms, run ids, names, lifecycles as recorded), so an
/// import through it equals one through the server.
public final class MLflowSQLStore: Sendable {
    public let uri: String
    private let connection: Connection

    enum Connection: Sendable {
        case sqlite(DatabaseQueue)
        /// Blocking reads on threads of their own (the driver's futures are waited on).
        case postgres(PostgresConnectionPool, NIOThreadPool)
    }

    let hasLoggedModels: Bool
    let hasInputs: Bool
    let hasRegistry: Bool
    /// Where a series' points are read: on SQLite through MLflow's (run_uuid, key, step) index
    /// by name when the file has it. MLflow's files carry no planner statistics, and without
    /// them SQLite reads a series through the primary key's (key, …) index instead, every run's
    /// points of that key: 0.5 s a series in a store of 10 M points, 1.4 ms with the index.
    let metricPoints: String
    static let needed: Set = ["experiments", "runs", "metrics", "params", "tags", "alembic_version"]

    /// Throws unless `tables` are those of an MLflow store.
    static func requireMLflowTables(_ tables: Set<String>, describe: String) throws {
        guard needed.isSubset(of: tables) else {
            throw CairnError.invalidParameter("\(describe) but not an MLflow store (it has no \(needed.subtracting(tables).sorted().joined(separator: ", ")) table).")
        }
    }

    private init(uri: String, connection: Connection, tables: Set<String>, describe: String, metricPoints: String = "metrics") throws {
        try Self.requireMLflowTables(tables, describe: describe)
        self.metricPoints = metricPoints
        self.uri = uri
        self.connection = connection
        hasLoggedModels = tables.contains("logged_models")
        hasInputs = tables.contains("inputs") && tables.contains("datasets")
        hasRegistry = tables.contains("registered_models") && tables.contains("model_versions")
    }

    /// Opens the SQLite file `path` read-only; a missing file, or one that is not an MLflow
    /// store, throws a `CairnError` that says which.
    public convenience init(sqlitePath path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CairnError.notFound("There is no file '\(path)'.")
        }
        var configuration = Configuration()
        configuration.readonly = true
        let queue: DatabaseQueue
        let tables: Set<String>
        let seriesIndex = "index_metrics_run_uuid_key_step"
        let hasSeriesIndex: Bool
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
            (tables, hasSeriesIndex) = try queue.read { db in
                (try String.fetchSet(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'"),
                 try Bool.fetchOne(db, sql: "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", arguments: [seriesIndex]) ?? false)
            }
        } catch {
            throw CairnError.invalidParameter("'\(path)' cannot be read as an MLflow SQL store (\(error)).")
        }
        try self.init(uri: "sqlite:///" + path, connection: .sqlite(queue), tables: tables, describe: "'\(path)' is a SQLite file",
                      metricPoints: hasSeriesIndex ? "metrics INDEXED BY \(seriesIndex)" : "metrics")
    }

    /// Connects to the PostgreSQL database of an MLflow SQL store (MLflow's URI forms,
    /// `postgresql+psycopg2://…` included); nothing is written to it.
    public convenience init(postgres location: PostgresLocation) throws {
        let pool = PostgresConnectionPool(name: location.description, configuration: try location.configuration())
        let threads = NIOThreadPool(numberOfThreads: 4)
        threads.start()
        let tables: Set<String>
        let describe = "the database \(location.description) is reachable"
        do {
            tables = Set(try pool.withConnection { connection in
                try PostgresSession(connection).values(String.self, "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = current_schema()")
            })
            // Checked before the store exists: a refused one has no deinit to close the pool.
            try Self.requireMLflowTables(tables, describe: describe)
        } catch {
            pool.closeAll()
            try? threads.syncShutdownGracefully()
            throw PostgresBackend.mapError(error, location: location)
        }
        try self.init(uri: location.description, connection: .postgres(pool, threads), tables: tables, describe: describe)
    }

    deinit {
        if case .postgres(let pool, let threads) = connection {
            pool.closeAll()
            try? threads.syncShutdownGracefully()
        }
    }

    /// Runs `body` in one read: a SQLite read transaction, or a PostgreSQL read-only one.
    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        switch connection {
        case .sqlite(let queue):
            return try await queue.read { db in try body(GRDBSession(db)) }
        case .postgres(let pool, let threads):
            return try await threads.runIfActive {
                try pool.withConnection { connection in
                    let session = PostgresSession(connection)
                    try session.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    do {
                        let value = try body(session)
                        try session.execute("COMMIT")
                        return value
                    } catch {
                        _ = try? session.execute("ROLLBACK")
                        throw error
                    }
                }
            }
        }
    }

    static func tags(_ db: any SQLSession, _ sql: String, _ arguments: [any SQLBindable]) throws -> [Tag] {
        try db.rows(sql, arguments).map { Tag($0[0] as String, ($0[1] as String?) ?? "") }
    }

    static let experimentColumns = "experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time"

    static func experiment(_ db: any SQLSession, _ row: SQLRow) throws -> Experiment {
        let id: Int64 = row[0]
        return Experiment(
            experimentID: String(id), name: row[1], artifactLocation: (row[2] as String?) ?? "",
            lifecycleStage: LifecycleStage(rawValue: (row[3] as String?) ?? "active") ?? .active,
            creationTime: (row[4] as Int64?) ?? 0, lastUpdateTime: (row[5] as Int64?) ?? 0,
            tags: try tags(db, "SELECT \"key\", value FROM experiment_tags WHERE experiment_id = ? ORDER BY \"key\"", [id]))
    }

    /// Every experiment, active and deleted, by id.
    public func experiments() async throws -> [Experiment] {
        try await read { db in
            try db.rows("SELECT \(Self.experimentColumns) FROM experiments ORDER BY experiment_id").map { try Self.experiment(db, $0) }
        }
    }

    public func experiment(named name: String) async throws -> Experiment? {
        try await read { db in
            try db.row("SELECT \(Self.experimentColumns) FROM experiments WHERE name = ?", [name]).map { try Self.experiment(db, $0) }
        }
    }

    public func experiment(id: String) async throws -> Experiment? {
        guard let number = Int64(id) else { return nil }
        return try await read { db in
            try db.row("SELECT \(Self.experimentColumns) FROM experiments WHERE experiment_id = ?", [number]).map { try Self.experiment(db, $0) }
        }
    }

    /// Every run of the experiment, active and deleted, by start time then id; `metrics` holds
    /// one point per series (its keys name the series, as MLflow's latest values do).
    public func runs(experimentID: String) async throws -> [Run] {
        guard let experiment = Int64(experimentID) else { return [] }
        let hasInputs = self.hasInputs
        return try await read { db in
            let rows = try db.rows("""
                SELECT run_uuid, name, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri, experiment_id
                FROM runs WHERE experiment_id = ? ORDER BY start_time, run_uuid
                """, [experiment])
            return try rows.map { row in
                let runID: String = row[0]
                let info = RunInfo(
                    runID: runID, experimentID: String((row[8] as Int64?) ?? experiment), runName: (row[1] as String?) ?? "",
                    userID: (row[2] as String?) ?? "", status: RunStatus(rawValue: (row[3] as String?) ?? "RUNNING") ?? .running,
                    startTime: row[4], endTime: row[5], artifactURI: (row[7] as String?) ?? "",
                    lifecycleStage: LifecycleStage(rawValue: (row[6] as String?) ?? "active") ?? .active)
                let keys = try db.values(String.self, "SELECT DISTINCT \"key\" FROM metrics WHERE run_uuid = ? ORDER BY \"key\"", [runID])
                let params = try db.rows("SELECT \"key\", value FROM params WHERE run_uuid = ? ORDER BY \"key\"", [runID])
                    .map { Param($0[0] as String, ($0[1] as String?) ?? "") }
                let tags = try Self.tags(db, "SELECT \"key\", value FROM tags WHERE run_uuid = ? ORDER BY \"key\"", [runID])
                var run = Run(info: info, metrics: keys.map { Metric(key: $0, value: 0, timestamp: 0, step: 0) }, params: params, tags: tags)
                if hasInputs {
                    run.inputs = try db.rows("""
                        SELECT i.input_uuid, d.name, d.digest, d.dataset_source_type, d.dataset_source, d.dataset_schema, d.dataset_profile
                        FROM inputs i JOIN datasets d ON d.dataset_uuid = i.source_id
                        WHERE i.source_type = 'DATASET' AND i.destination_type = 'RUN' AND i.destination_id = ?
                        ORDER BY d.name, d.digest
                        """, [runID]).map { r in
                        DatasetInput(
                            tags: try Self.tags(db, "SELECT name, value FROM input_tags WHERE input_uuid = ? ORDER BY name", [r[0] as String]),
                            dataset: Dataset(name: r[1], digest: r[2], sourceType: r[3], source: r[4], schema: r[5], profile: r[6]))
                    }
                    run.modelInputs = try db.values(String.self, """
                        SELECT source_id FROM inputs WHERE source_type = 'MODEL_INPUT' AND destination_type = 'RUN_INPUT' AND destination_id = ? ORDER BY source_id
                        """, [runID])
                    run.modelOutputs = try db.rows("""
                        SELECT destination_id, step FROM inputs WHERE source_type = 'RUN_OUTPUT' AND source_id = ? AND destination_type = 'MODEL_OUTPUT' ORDER BY destination_id
                        """, [runID]).map { ModelOutput(modelID: $0[0], step: ($0[1] as Int64?) ?? 0) }
                }
                return run
            }
        }
    }

    /// Every point of one series, as MLflow orders them (timestamp, step, value); NaN where
    /// `is_nan` is set.
    public func metricHistory(runID: String, key: String) async throws -> [Metric] {
        let source = metricPoints
        return try await read { db in
            try db.rows("""
                SELECT value, "timestamp", step, is_nan FROM \(source) WHERE run_uuid = ? AND "key" = ? ORDER BY "timestamp", step, value
                """, [runID, key]).map { row in
                let isNaN: Bool = (row[3] as Bool?) ?? false
                return Metric(key: key, value: isNaN ? .nan : ((row[0] as Double?) ?? .nan), timestamp: row[1], step: (row[2] as Int64?) ?? 0)
            }
        }
    }

    /// The logged models of the experiment (none in a store made before MLflow 3), deleted ones
    /// left out as MLflow's search leaves them out.
    public func loggedModels(experimentID: String) async throws -> [LoggedModel] {
        guard hasLoggedModels, let experiment = Int64(experimentID) else { return [] }
        return try await read { db in
            try db.rows("""
                SELECT model_id, experiment_id, name, artifact_location, creation_timestamp_ms, last_updated_timestamp_ms, status,
                       lifecycle_stage, model_type, source_run_id, status_message
                FROM logged_models WHERE experiment_id = ? AND coalesce(lifecycle_stage, 'active') <> 'deleted'
                ORDER BY creation_timestamp_ms, model_id
                """, [experiment]).map { row in
                let id: String = row[0]
                return LoggedModel(
                    modelID: id, experimentID: String(experiment), name: row[2], artifactURI: (row[3] as String?) ?? "",
                    creationTimestamp: (row[4] as Int64?) ?? 0, lastUpdatedTimestamp: (row[5] as Int64?) ?? 0,
                    status: (row[6] as Int64?).flatMap(LoggedModelStatus.init(number:)) ?? .ready,
                    statusMessage: row[10], creatorID: nil, modelType: row[8], sourceRunID: row[9],
                    lifecycleStage: .active,
                    tags: try Self.tags(db, "SELECT tag_key, tag_value FROM logged_model_tags WHERE model_id = ? ORDER BY tag_key", [id]),
                    params: try db.rows("SELECT param_key, param_value FROM logged_model_params WHERE model_id = ? ORDER BY param_key", [id])
                        .map { Param($0[0] as String, ($0[1] as String?) ?? "") },
                    metrics: try db.rows("""
                        SELECT metric_name, metric_value, metric_timestamp_ms, metric_step, run_id, dataset_name, dataset_digest
                        FROM logged_model_metrics WHERE model_id = ? ORDER BY metric_name, metric_timestamp_ms, metric_step, run_id
                        """, [id]).map { m in
                        ModelMetric(key: m[0], value: (m[1] as Double?) ?? .nan, timestamp: m[2], step: m[3], runID: m[4],
                                    datasetName: m[5], datasetDigest: m[6])
                    })
            }
        }
    }

    static func aliases(_ db: any SQLSession, _ name: String) throws -> [(alias: String, version: Int64)] {
        try db.rows("SELECT alias, version FROM registered_model_aliases WHERE name = ? ORDER BY alias", [name])
            .map { (alias: $0[0] as String, version: $0[1] as Int64) }
    }

    /// Every registered model with its tags and aliases, by name.
    public func registeredModels() async throws -> [RegisteredModel] {
        guard hasRegistry else { return [] }
        return try await read { db in
            try db.rows("SELECT name, creation_time, last_updated_time, description FROM registered_models ORDER BY name").map { row in
                let name: String = row[0]
                return RegisteredModel(
                    name: name, creationTimestamp: (row[1] as Int64?) ?? 0, lastUpdatedTimestamp: (row[2] as Int64?) ?? 0,
                    userID: "", description: (row[3] as String?) ?? "",
                    tags: try Self.tags(db, "SELECT \"key\", value FROM registered_model_tags WHERE name = ? ORDER BY \"key\"", [name]),
                    aliases: try Self.aliases(db, name), latestVersions: [])
            }
        }
    }

    /// Every version of the registered model, by number, with tags and aliases.
    public func modelVersions(name: String) async throws -> [ModelVersion] {
        guard hasRegistry else { return [] }
        return try await read { db in
            let aliases = try Self.aliases(db, name)
            return try db.rows("""
                SELECT version, creation_time, last_updated_time, description, user_id, current_stage, source, run_id, status,
                       status_message, run_link
                FROM model_versions WHERE name = ? ORDER BY version
                """, [name]).map { row in
                let version: Int64 = row[0]
                let runID = (row[7] as String?).flatMap { $0.isEmpty ? nil : $0 }
                let runLink = (row[10] as String?).flatMap { $0.isEmpty ? nil : $0 }
                return ModelVersion(
                    name: name, version: version, creationTimestamp: (row[1] as Int64?) ?? 0,
                    lastUpdatedTimestamp: (row[2] as Int64?) ?? 0, userID: (row[4] as String?) ?? "",
                    currentStage: (row[5] as String?) ?? "None", description: (row[3] as String?) ?? "",
                    source: (row[6] as String?) ?? "", runID: runID, runLink: runLink,
                    status: (row[8] as String?) ?? "READY", statusMessage: row[9], modelID: nil,
                    tags: try Self.tags(db, "SELECT \"key\", value FROM model_version_tags WHERE name = ? AND version = ? ORDER BY \"key\"", [name, version]),
                    aliases: aliases.filter { $0.version == version }.map(\.alias))
            }
        }
    }
}
