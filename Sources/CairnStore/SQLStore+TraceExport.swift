import CairnCore

/// A trace as `cairn export` writes it and `cairn import cairn` reads it back: its summary with
/// tags, metadata (by key) and assessments (in the order they were logged), each span's
/// protobuf JSON exactly as stored (so spans come back bit for bit) and the runs it is linked to.
public struct ExportedTrace: Sendable, Equatable {
    public var info: TraceInfo
    /// Each span's JSON text, in the stored (start time) order.
    public var spans: [String]
    public var runIDs: [String]

    public init(info: TraceInfo, spans: [String], runIDs: [String]) {
        self.info = info
        self.spans = spans
        self.runIDs = runIDs
    }
}

extension SQLStore {
    /// The trace ids of an experiment, ascending.
    public func exportTraceIDs(experimentID: Int64) async throws -> [String] {
        try await read { db in try db.values(String.self, "SELECT trace_id FROM traces WHERE experiment_id = ? ORDER BY trace_id", [experimentID]) }
    }

    /// Whole traces, in the order asked (unknown ids are skipped).
    public func exportTraces(ids: [String]) async throws -> [ExportedTrace] {
        try await read { db in try ids.compactMap { id in try Self.loadExportedTrace(db, id: id) } }
    }

    static func loadExportedTrace(_ db: any SQLSession, id: String) throws -> ExportedTrace? {
        guard let pk = try db.value(Int64.self, "SELECT trace_pk FROM traces WHERE trace_id = ?", [id]),
              let info = try loadTraceInfos(db, pks: [pk]).first else { return nil }
        let runIDs = try db.values(String.self, "SELECT run_id FROM trace_run_links WHERE trace_pk = ? ORDER BY run_id", [pk])
        return ExportedTrace(info: info, spans: try (loadSpans(db, pk: pk) ?? []).map(\.text), runIDs: runIDs)
    }

    /// Writes an exported trace with its id, spans, assessments and links; a trace already
    /// here as it is is left alone, one with other content is a conflict.
    public func importTrace(_ trace: ExportedTrace) async throws -> ImportOutcome {
        let spans: [JSONValue] = try trace.spans.map { text in
            do { return try JSONValue.parse(text) } catch {
                throw CairnError(.invalidParameterValue, "A span of trace \(trace.info.traceID) in the export is not JSON: \(error).")
            }
        }
        let info = trace.info
        let experimentID = try Validation.parseExperimentID(info.experimentID)
        return try await write(audit: Self.importAudit("trace", "trace:\(info.traceID)", ["experiment_id": .int(experimentID)])) { db in
            if let existing = try Self.loadExportedTrace(db, id: info.traceID) {
                guard existing != trace else { return .unchanged }
                var differences: [String] = []
                if existing.info.experimentID != info.experimentID { differences.append("it is in experiment \(existing.info.experimentID), the source's in \(info.experimentID)") }
                if existing.spans != trace.spans { differences.append("its spans differ (\(existing.spans.count) here, \(trace.spans.count) in the source)") }
                if existing.info.tags != info.tags || existing.info.metadata != info.metadata { differences.append("its tags or metadata differ") }
                if existing.info.assessments != info.assessments { differences.append("its assessments differ") }
                if differences.isEmpty { differences.append("its summary (time, duration, state, previews) or run links differ") }
                return .conflict(differences)
            }
            guard try db.value(Bool.self, "SELECT 1 FROM experiments WHERE experiment_id = ?", [experimentID]) == true else {
                return .conflict(["its experiment \(experimentID) is not here"])
            }
            let pk = try db.insert("""
                INSERT INTO traces (trace_id, experiment_id, request_time, execution_duration, state, request_preview, response_preview, client_request_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING trace_pk
                """, [info.traceID, experimentID, info.requestTime, info.executionDuration, info.state.rawValue, info.requestPreview,
                      info.responsePreview, info.clientRequestID])
            for tag in info.tags { try db.execute("INSERT INTO trace_tags (trace_pk, key, value) VALUES (?, ?, ?)", [pk, tag.key, tag.value]) }
            for tag in info.metadata { try db.execute("INSERT INTO trace_metadata (trace_pk, key, value) VALUES (?, ?, ?)", [pk, tag.key, tag.value]) }
            if !spans.isEmpty {
                try Self.storeSpans(db, pk: pk, spans)
                try Self.indexSpans(db, [pk: spans])
            }
            for a in info.assessments {
                try db.execute("""
                    INSERT INTO trace_assessments (assessment_id, trace_pk, name, create_time, last_update_time, body) VALUES (?, ?, ?, ?, ?, ?)
                    """, [a.assessmentID, pk, a.name, a.createTime, a.lastUpdateTime, Self.assessmentBody(a)])
            }
            for run in trace.runIDs { try db.execute("INSERT INTO trace_run_links (trace_pk, run_id) VALUES (?, ?)", [pk, run]) }
            return .created
        }
    }

    // MARK: - Evaluation datasets

    /// Every evaluation dataset id, ascending.
    public func exportEvaluationDatasetIDs() async throws -> [String] {
        try await read { db in try db.values(String.self, "SELECT dataset_id FROM evaluation_datasets ORDER BY dataset_id") }
    }

    /// A dataset (its experiment links ascending) and its records in the order they were added.
    public func exportEvaluationDataset(id: String) async throws -> (EvaluationDataset, [DatasetRecord]) {
        (try await fetchEvaluationDataset(id: id), try await evaluationDatasetRecords(id: id))
    }

    /// Writes an exported dataset with its id, links and records; one already here as it is is
    /// left alone, one with other content is a conflict.
    public func importEvaluationDataset(_ dataset: EvaluationDataset, records: [DatasetRecord]) async throws -> ImportOutcome {
        try await write(audit: Self.importAudit("dataset", "dataset:\(dataset.datasetID)", ["name": .string(dataset.name)])) { db in
            if let row = try db.row("SELECT \(Self.datasetColumns) FROM evaluation_datasets WHERE dataset_id = ?", [dataset.datasetID]) {
                let existing = try Self.loadDataset(db, row: row)
                let pk: Int64 = row[0]
                let existingRecords = try db.rows("SELECT record_id, input_key, body, created_time, last_update_time FROM evaluation_dataset_records WHERE dataset_pk = ? ORDER BY record_pk", [pk])
                    .map { DatasetRecord(recordID: $0[0], inputKey: $0[1], body: (try? JSONValue.parse($0[2] as String)) ?? .object([]), createdTime: $0[3], lastUpdateTime: $0[4]) }
                var differences: [String] = []
                if existing != dataset { differences.append("its name, tags, schema, digest, times or experiments differ") }
                if existingRecords != records { differences.append("its records differ (\(existingRecords.count) here, \(records.count) in the source)") }
                return differences.isEmpty ? .unchanged : .conflict(differences)
            }
            for id in dataset.experimentIDs {
                if try db.value(Bool.self, "SELECT 1 FROM experiments WHERE experiment_id = ?", [Int64(id) ?? -1]) != true {
                    return .conflict(["its experiment \(id) is not here"])
                }
            }
            let pk = try db.insert("""
                INSERT INTO evaluation_datasets (dataset_id, name, tags, schema, profile, digest, created_time, last_update_time, created_by, last_updated_by)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING dataset_pk
                """, [dataset.datasetID, dataset.name, Self.tagsText(dataset.tags), dataset.schema, dataset.profile, dataset.digest,
                      dataset.createdTime, dataset.lastUpdateTime, dataset.createdBy, dataset.lastUpdatedBy])
            for id in dataset.experimentIDs {
                try db.execute("INSERT INTO evaluation_dataset_experiments (dataset_pk, experiment_id) VALUES (?, ?)", [pk, Int64(id) ?? 0])
            }
            for record in records {
                try db.execute("""
                    INSERT INTO evaluation_dataset_records (record_id, dataset_pk, input_key, body, created_time, last_update_time) VALUES (?, ?, ?, ?, ?, ?)
                    """, [record.recordID, pk, record.inputKey, record.body.text, record.createdTime, record.lastUpdateTime])
            }
            return .created
        }
    }
}
