import CairnCore

/// Persistence of MLflow 3 evaluation datasets and their records. Unknown dataset ids throw
/// `RESOURCE_DOES_NOT_EXIST`.
public protocol EvaluationDatasetStore: Sendable {
    func createEvaluationDataset(_ dataset: EvaluationDataset) async throws
    func fetchEvaluationDataset(id: String) async throws -> EvaluationDataset
    /// Every dataset linked to one of `experimentIDs` (all datasets when nil), newest first.
    func listEvaluationDatasets(experimentIDs: [Int64]?) async throws -> [EvaluationDataset]
    /// Replaces the dataset's name, tags, schema, profile, digest, update time and updater.
    func updateEvaluationDataset(_ dataset: EvaluationDataset) async throws
    func deleteEvaluationDataset(id: String) async throws
    func linkEvaluationDataset(id: String, add: [Int64], remove: [Int64]) async throws
    /// The records in the order they were first added.
    func evaluationDatasetRecords(id: String) async throws -> [DatasetRecord]
    /// Writes records (new ones inserted, ones whose input key exists replaced) and the
    /// dataset's new summary in one transaction.
    func saveEvaluationDatasetRecords(_ records: [DatasetRecord], dataset: EvaluationDataset) async throws
}

extension SQLStore: EvaluationDatasetStore {
    static let datasetColumns = "dataset_pk, dataset_id, name, tags, schema, profile, digest, created_time, last_update_time, created_by, last_updated_by"

    static func noSuchDataset(_ id: String) -> CairnError {
        .notFound("Evaluation dataset with id '\(id)' not found")
    }

    static func tagsText(_ tags: [Tag]) -> String {
        JSONValue.object(tags.map { ($0.key, JSONValue.string($0.value)) }).text
    }

    static func tags(fromText text: String) -> [Tag] {
        guard case .object(let members)? = try? JSONValue.parse(text) else { return [] }
        return members.compactMap { key, value in
            if case .string(let s) = value { return Tag(key, s) }
            return nil
        }
    }

    public func createEvaluationDataset(_ dataset: EvaluationDataset) async throws {
        try await write("dataset.create", "dataset:\(dataset.datasetID)", details: ["name": .string(dataset.name)]) { db in
            let pk = try db.insert("""
                INSERT INTO evaluation_datasets (dataset_id, name, tags, schema, profile, digest, created_time, last_update_time, created_by, last_updated_by)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING dataset_pk
                """, [dataset.datasetID, dataset.name, Self.tagsText(dataset.tags), dataset.schema, dataset.profile, dataset.digest,
                      dataset.createdTime, dataset.lastUpdateTime, dataset.createdBy, dataset.lastUpdatedBy])
            for id in dataset.experimentIDs {
                try db.execute("INSERT INTO evaluation_dataset_experiments (dataset_pk, experiment_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                               [pk, Int64(id) ?? 0])
            }
        }
    }

    static func loadDataset(_ db: any SQLSession, row: SQLRow) throws -> EvaluationDataset {
        let pk: Int64 = row[0]
        let experiments = try db.values(Int64.self, "SELECT experiment_id FROM evaluation_dataset_experiments WHERE dataset_pk = ? ORDER BY experiment_id", [pk])
        return EvaluationDataset(datasetID: row[1], name: row[2], tags: tags(fromText: row[3]), schema: row[4], profile: row[5], digest: row[6],
                                 createdTime: row[7], lastUpdateTime: row[8], createdBy: row[9], lastUpdatedBy: row[10],
                                 experimentIDs: experiments.map { String($0) })
    }

    static func datasetPK(_ db: any SQLSession, _ id: String) throws -> Int64 {
        guard let pk = try db.value(Int64.self, "SELECT dataset_pk FROM evaluation_datasets WHERE dataset_id = ?", [id]) else { throw noSuchDataset(id) }
        return pk
    }

    public func fetchEvaluationDataset(id: String) async throws -> EvaluationDataset {
        try await read { db in
            guard let row = try db.row("SELECT \(Self.datasetColumns) FROM evaluation_datasets WHERE dataset_id = ?", [id]) else { throw Self.noSuchDataset(id) }
            return try Self.loadDataset(db, row: row)
        }
    }

    public func listEvaluationDatasets(experimentIDs: [Int64]?) async throws -> [EvaluationDataset] {
        try await read { db in
            let rows: [SQLRow]
            if let experimentIDs {
                rows = try db.rows("""
                    SELECT \(Self.datasetColumns) FROM evaluation_datasets WHERE dataset_pk IN (
                        SELECT dataset_pk FROM evaluation_dataset_experiments WHERE \(db.dialect.inPKList("experiment_id")))
                    ORDER BY created_time DESC, dataset_pk DESC
                    """, [pkList(experimentIDs)])
            } else {
                rows = try db.rows("SELECT \(Self.datasetColumns) FROM evaluation_datasets ORDER BY created_time DESC, dataset_pk DESC")
            }
            return try rows.map { try Self.loadDataset(db, row: $0) }
        }
    }

    static func writeDatasetSummary(_ db: any SQLSession, _ dataset: EvaluationDataset) throws {
        if try db.execute("""
            UPDATE evaluation_datasets SET name = ?, tags = ?, schema = ?, profile = ?, digest = ?, last_update_time = ?, last_updated_by = ?
            WHERE dataset_id = ?
            """, [dataset.name, tagsText(dataset.tags), dataset.schema, dataset.profile, dataset.digest, dataset.lastUpdateTime,
                  dataset.lastUpdatedBy, dataset.datasetID]) == 0 {
            throw noSuchDataset(dataset.datasetID)
        }
    }

    public func updateEvaluationDataset(_ dataset: EvaluationDataset) async throws {
        try await write("dataset.update", "dataset:\(dataset.datasetID)") { db in try Self.writeDatasetSummary(db, dataset) }
    }

    public func deleteEvaluationDataset(id: String) async throws {
        try await write("dataset.delete", "dataset:\(id)") { db in
            let pk = try Self.datasetPK(db, id)
            for table in ["evaluation_dataset_records", "evaluation_dataset_experiments", "evaluation_datasets"] {
                try db.execute("DELETE FROM \(table) WHERE dataset_pk = ?", [pk])
            }
        }
    }

    public func linkEvaluationDataset(id: String, add: [Int64], remove: [Int64]) async throws {
        try await write("dataset.link", "dataset:\(id)", details: ["add": .array(add.map { .number(String($0)) }), "remove": .array(remove.map { .number(String($0)) })]) { db in
            let pk = try Self.datasetPK(db, id)
            for experiment in add {
                try db.execute("INSERT INTO evaluation_dataset_experiments (dataset_pk, experiment_id) VALUES (?, ?) ON CONFLICT DO NOTHING", [pk, experiment])
            }
            for experiment in remove {
                try db.execute("DELETE FROM evaluation_dataset_experiments WHERE dataset_pk = ? AND experiment_id = ?", [pk, experiment])
            }
        }
    }

    public func evaluationDatasetRecords(id: String) async throws -> [DatasetRecord] {
        try await read { db in
            let pk = try Self.datasetPK(db, id)
            return try db.rows("SELECT record_id, input_key, body, created_time, last_update_time FROM evaluation_dataset_records WHERE dataset_pk = ? ORDER BY record_pk", [pk])
                .map { row in
                    DatasetRecord(recordID: row[0], inputKey: row[1], body: (try? JSONValue.parse(row[2] as String)) ?? .object([]),
                                  createdTime: row[3], lastUpdateTime: row[4])
                }
        }
    }

    public func saveEvaluationDatasetRecords(_ records: [DatasetRecord], dataset: EvaluationDataset) async throws {
        try await write("dataset.records", "dataset:\(dataset.datasetID)", details: ["records": .number(String(records.count))]) { db in
            let pk = try Self.datasetPK(db, dataset.datasetID)
            for record in records {
                try db.execute("""
                    INSERT INTO evaluation_dataset_records (record_id, dataset_pk, input_key, body, created_time, last_update_time) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (dataset_pk, input_key) DO UPDATE SET body = excluded.body, last_update_time = excluded.last_update_time
                    """, [record.recordID, pk, record.inputKey, record.body.text, record.createdTime, record.lastUpdateTime])
            }
            try Self.writeDatasetSummary(db, dataset)
        }
    }
}
