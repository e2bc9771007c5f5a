import CairnCore

/// The read path of `cairn export`: every entity with its lifecycle (deleted ones included), in
/// an order that depends only on the content (ids, names), so two stores holding the same
/// entities export the same bytes whatever their internal keys.
extension SQLStore {
    /// Every experiment id, deleted ones included, ascending.
    public func exportExperimentIDs() async throws -> [Int64] {
        try await read { db in try db.values(Int64.self, "SELECT experiment_id FROM experiments ORDER BY experiment_id") }
    }

    /// An experiment with its tags, whatever its lifecycle.
    public func exportExperiment(id: Int64) async throws -> Experiment {
        try await read { db in try Self.loadExperiment(db, id: id) }
    }

    /// The run ids of an experiment, deleted runs included, in id order.
    public func exportRunIDs(experimentID: Int64) async throws -> [String] {
        try await read { db in try db.values(String.self, "SELECT run_id FROM runs WHERE experiment_id = ? ORDER BY run_id", [experimentID]) }
    }

    /// Whole runs (params, tags, dataset inputs, model inputs and outputs), in the order asked.
    public func exportRuns(ids: [String]) async throws -> [Run] {
        try await read { db in
            try ids.map { id in
                let (pk, _) = try Self.loadRunInfo(db, id: id)
                return try Self.loadRuns(db, pks: [pk])[0]
            }
        }
    }

    /// The logged models of an experiment, deleted ones included, in id order.
    public func exportLoggedModels(experimentID: Int64) async throws -> [LoggedModel] {
        try await read { db in
            let pks = try db.values(Int64.self, "SELECT model_pk FROM logged_models WHERE experiment_id = ? ORDER BY model_id", [experimentID])
            return try Self.loadLoggedModels(db, pks: pks).sorted { $0.modelID < $1.modelID }
        }
    }

    /// Every registered model's name, ascending.
    public func exportRegisteredModelNames() async throws -> [String] {
        try await read { db in try db.values(String.self, "SELECT name FROM registered_models ORDER BY name") }
    }

    /// A registered model with its tags and aliases, its versions (not deleted ones) with their
    /// tags, and its registry events in the order they were recorded.
    public func exportRegisteredModel(name: String) async throws -> (RegisteredModel, [ModelVersion], [RecordedRegistryEvent]) {
        try await read { db in
            guard let pk = try db.value(Int64.self, "SELECT model_pk FROM registered_models WHERE name = ?", [name]) else {
                throw CairnError.notFound("Registered model with name=\(name) not found")
            }
            let model = try Self.loadRegisteredModel(db, pk: pk)
            let versions = try db.rows("SELECT \(Self.versionColumns) FROM model_versions WHERE model_pk = ? AND deleted = 0 ORDER BY version", [pk])
                .map { try Self.version(from: $0, db: db, pk: pk, name: name) }
            let events = try db.rows("""
                SELECT timestamp, "user", action, model_name, version, changes FROM registry_events WHERE model_pk = ? ORDER BY event_pk
                """, [pk]).map { row in
                    RecordedRegistryEvent(timestamp: row[0], user: row[1], action: row[2], modelName: row[3], version: row[4], changes: row[5])
                }
            return (model, versions, events)
        }
    }
}

/// A registry event as stored: its `changes` JSON text kept byte for byte (export and import).
public struct RecordedRegistryEvent: Sendable, Equatable {
    public var timestamp: Int64
    public var user: String
    public var action: String
    /// The model's name when the event was recorded (a renamed model keeps its old events' names).
    public var modelName: String
    public var version: Int64?
    public var changes: String

    public init(timestamp: Int64, user: String, action: String, modelName: String, version: Int64?, changes: String) {
        self.timestamp = timestamp
        self.user = user
        self.action = action
        self.modelName = modelName
        self.version = version
        self.changes = changes
    }
}

extension SQLStore {
    /// Gives the Default experiment (0), which every store creates with its own times, the
    /// times of an export's Default experiment, while it holds no runs and no logged models
    /// (a store that never used it): so an export of the imported store has the same
    /// experiments table. Answers whether it changed anything.
    @discardableResult
    public func importDefaultExperimentTimes(creationTime: Int64, lastUpdateTime: Int64) async throws -> Bool {
        try await write(audit: { (changed: Bool) in
            changed ? AuditDraft("import.experiment", "experiment:0", details: ["creation_time": .int(creationTime)]) : nil
        }) { db in
            try db.execute("""
                UPDATE experiments SET creation_time = ?, last_update_time = ?
                WHERE experiment_id = 0 AND (creation_time <> ? OR last_update_time <> ?)
                AND NOT EXISTS (SELECT 1 FROM runs WHERE experiment_id = 0) AND NOT EXISTS (SELECT 1 FROM logged_models WHERE experiment_id = 0)
                """, [creationTime, lastUpdateTime, creationTime, lastUpdateTime]) > 0
        }
    }
}
