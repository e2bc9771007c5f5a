import CairnCore

/// What an import write found and did (`cairn import mlflow`).
public enum ImportOutcome: Sendable, Equatable {
    /// The entity was not there; it now is, with its given id, times and lifecycle.
    case created
    /// The entity was there with the same content: nothing was written.
    case unchanged
    /// The entity was there and only gained what it lacked (tags of the Default experiment).
    case merged
    /// The entity was there with other content: nothing was written. The differences, in words.
    case conflict([String])
}

/// The import write path: entities of another tracking server written with the ids, times,
/// lifecycle and content they have there. Each write is one transaction and is compared with
/// what the store already holds: absent → created, identical → left alone, different →
/// refused with a list of the differences (never overwritten). That makes an import that is
/// run again, after an interruption or after it finished, resume or do nothing.
extension SQLStore {
    /// An imported entity's event (`import.run`…): only when the import wrote something.
    static func importAudit(_ kind: String, _ target: String, _ details: [String: JSONValue]) -> @Sendable (ImportOutcome) -> AuditDraft? {
        { outcome in
            switch outcome {
            case .created: return AuditDraft("import.\(kind)", target, details: details)
            case .merged: return AuditDraft("import.\(kind).merge", target, details: details)
            case .unchanged, .conflict: return nil
            }
        }
    }

    // MARK: - Experiments

    /// Writes an experiment with its id. The Default experiment (id 0), which every store has,
    /// is merged: same name, its tags added (a tag with another value is a conflict).
    /// Experiment ids of new experiments are the largest id + 1, so ids imported here are
    /// never reused by experiments created later.
    public func importExperiment(_ experiment: Experiment) async throws -> ImportOutcome {
        let id = try Validation.parseExperimentID(experiment.experimentID)
        return try await write(audit: Self.importAudit("experiment", "experiment:\(id)", ["name": .string(experiment.name)])) { db in
            if try db.value(Bool.self, "SELECT 1 FROM experiments WHERE experiment_id = ?", [id]) == true {
                let existing = try Self.loadExperiment(db, id: id)
                var differences: [String] = []
                if existing.name != experiment.name { differences.append("name is '\(existing.name)', the source's '\(experiment.name)'") }
                if id == 0 {
                    differences += Self.tagConflicts(existing.tags, experiment.tags, what: "tag")
                    guard differences.isEmpty else { return .conflict(differences) }
                    let missing = experiment.tags.filter { tag in !existing.tags.contains { $0.key == tag.key } }
                    guard !missing.isEmpty else { return .unchanged }
                    for tag in missing {
                        try db.execute("INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?)", [id, tag.key, tag.value])
                    }
                    return .merged
                }
                if existing.artifactLocation != experiment.artifactLocation {
                    differences.append("artifact location is '\(existing.artifactLocation)', the source's '\(experiment.artifactLocation)'")
                }
                if existing.lifecycleStage != experiment.lifecycleStage {
                    differences.append("lifecycle stage is \(existing.lifecycleStage.rawValue), the source's \(experiment.lifecycleStage.rawValue)")
                }
                if existing.creationTime != experiment.creationTime {
                    differences.append("creation time is \(existing.creationTime), the source's \(experiment.creationTime)")
                }
                differences += Self.setDifferences(existing.tags.map { [$0.key, $0.value] }, experiment.tags.map { [$0.key, $0.value] }, what: "tag")
                return differences.isEmpty ? .unchanged : .conflict(differences)
            }
            if let other = try db.value(Int64.self, "SELECT experiment_id FROM experiments WHERE name = ?", [experiment.name]) {
                return .conflict(["the name '\(experiment.name)' is taken by experiment \(other) here"])
            }
            try db.execute("""
                INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
                VALUES (?, ?, ?, ?, ?, ?)
                """, [id, experiment.name, experiment.artifactLocation, experiment.lifecycleStage.rawValue,
                      experiment.creationTime, experiment.lastUpdateTime])
            for tag in experiment.tags {
                try db.execute("INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?) ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value", [id, tag.key, tag.value])
            }
            return .created
        }
    }

    // MARK: - Runs

    /// Writes a run with its id, info, lifecycle, params, tags, dataset inputs, model inputs and
    /// outputs and every point of its metric histories, in one transaction, so an interrupted
    /// import leaves either the whole run or none of it. An existing run is compared: info,
    /// params, tags, inputs, outputs and each series' point count.
    public func importRun(_ run: Run, history: [Metric]) async throws -> ImportOutcome {
        let experimentID = try Validation.parseExperimentID(run.info.experimentID)
        let details: [String: JSONValue] = ["experiment_id": .int(experimentID), "points": .int(history.count), "params": .int(run.params.count)]
        return try await write(audit: Self.importAudit("run", "run:\(run.info.runID)", details)) { db in
            let info = run.info
            if let pk = try db.value(Int64.self, "SELECT run_pk FROM runs WHERE run_id = ?", [info.runID]) {
                let existing = try Self.loadRuns(db, pks: [pk])[0]
                let differences = Self.runDifferences(existing, run, storedCounts: try Self.pointCounts(db, runPK: pk),
                                                      sourceCounts: Self.distinctPointCounts(history))
                return differences.isEmpty ? .unchanged : .conflict(differences)
            }
            guard let experiment = try db.row("SELECT lifecycle_stage FROM experiments WHERE experiment_id = ?", [experimentID]) else {
                throw Self.noSuchExperiment(experimentID)
            }
            let deletedWithExperiment = (experiment[0] as String) == LifecycleStage.deleted.rawValue && info.lifecycleStage == .deleted
            let pk = try db.insert("""
                INSERT INTO runs (run_id, experiment_id, run_name, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage, deleted_with_experiment)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING run_pk
                """, [info.runID, experimentID, info.runName, info.userID, info.status.rawValue, info.startTime, info.endTime,
                      info.artifactURI, info.lifecycleStage.rawValue, deletedWithExperiment ? 1 : 0])
            try Self.insertParams(db, runPK: pk, runID: info.runID, run.params)
            try Self.upsertTags(db, runPK: pk, run.tags)
            var start = 0
            while start < history.count {
                let end = min(history.count, start + Self.importPointsPerWrite)
                try Self.appendMetrics(db, runPK: pk, experimentID: experimentID, Array(history[start..<end]))
                start = end
            }
            var position: Int64 = 0
            for input in run.inputs {
                let d = input.dataset
                try db.execute("""
                    INSERT INTO datasets (experiment_id, name, digest, source_type, source, schema, profile)
                    VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                    """, [experimentID, d.name, d.digest, d.sourceType, d.source, d.schema, d.profile])
                guard let datasetPK = try db.value(Int64.self, "SELECT dataset_pk FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?", [experimentID, d.name, d.digest]),
                      try db.execute("INSERT INTO run_inputs (run_pk, dataset_pk, position) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", [pk, datasetPK, position]) > 0
                else { continue }
                position += 1
                for tag in input.tags {
                    try db.execute("INSERT INTO input_tags (run_pk, dataset_pk, key, value) VALUES (?, ?, ?, ?) ON CONFLICT (run_pk, dataset_pk, key) DO UPDATE SET value = excluded.value", [pk, datasetPK, tag.key, tag.value])
                }
            }
            for modelID in Set(run.modelInputs) {
                try db.execute("INSERT INTO run_model_inputs (run_pk, model_id) VALUES (?, ?) ON CONFLICT DO NOTHING", [pk, modelID])
            }
            for output in Set(run.modelOutputs) {
                try db.execute("INSERT INTO run_model_outputs (run_pk, model_id, step) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", [pk, output.modelID, output.step])
            }
            return .created
        }
    }

    /// Points per segment an imported history is written in (one transaction for the run).
    static let importPointsPerWrite = 50_000

    /// The number of stored points of each of a run's series.
    public func metricPointCounts(runID: String) async throws -> [String: Int] {
        try await read { db in try Self.pointCounts(db, runPK: Self.runPK(db, id: runID)) }
    }

    static func pointCounts(_ db: any SQLSession, runPK: Int64) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try db.rows("SELECT mk.key, lm.point_count FROM latest_metrics lm JOIN metric_keys mk ON mk.key_id = lm.key_id WHERE lm.run_pk = ?", [runPK]) {
            counts[row[0]] = Int(row[1] as Int64)
        }
        return counts
    }

    /// Points per key, identical points (same step, timestamp and value bits) counted once, as
    /// the metric write path keeps them.
    public static func distinctPointCounts(_ history: [Metric]) -> [String: Int] {
        struct Point: Hashable { let key: String; let step: Int64; let timestamp: Int64; let bits: UInt64 }
        var seen = Set<Point>()
        var counts: [String: Int] = [:]
        for metric in history where seen.insert(Point(key: metric.key, step: metric.step, timestamp: metric.timestamp, bits: metric.value.bitPattern)).inserted {
            counts[metric.key, default: 0] += 1
        }
        return counts
    }

    static func runDifferences(_ stored: Run, _ source: Run, storedCounts: [String: Int], sourceCounts: [String: Int]) -> [String] {
        var differences: [String] = []
        let a = stored.info
        let b = source.info
        func compare<T: Equatable>(_ what: String, _ x: T, _ y: T) {
            if x != y { differences.append("\(what) is \(String(describing: x)), the source's \(String(describing: y))") }
        }
        compare("experiment", a.experimentID, b.experimentID)
        compare("name", a.runName, b.runName)
        compare("user", a.userID, b.userID)
        compare("status", a.status.rawValue, b.status.rawValue)
        compare("start time", a.startTime.map(String.init) ?? "none", b.startTime.map(String.init) ?? "none")
        compare("end time", a.endTime.map(String.init) ?? "none", b.endTime.map(String.init) ?? "none")
        compare("artifact URI", a.artifactURI, b.artifactURI)
        compare("lifecycle stage", a.lifecycleStage.rawValue, b.lifecycleStage.rawValue)
        differences += setDifferences(stored.params.map { [$0.key, $0.value] }, source.params.map { [$0.key, $0.value] }, what: "param")
        differences += setDifferences(stored.tags.map { [$0.key, $0.value] }, source.tags.map { [$0.key, $0.value] }, what: "tag")
        differences += setDifferences(stored.inputs.map { [$0.dataset.name, $0.dataset.digest] }, source.inputs.map { [$0.dataset.name, $0.dataset.digest] }, what: "dataset input")
        differences += setDifferences(stored.modelOutputs.map { [$0.modelID, String($0.step)] }, source.modelOutputs.map { [$0.modelID, String($0.step)] }, what: "model output")
        for key in Set(storedCounts.keys).union(sourceCounts.keys).sorted() where storedCounts[key] != sourceCounts[key] {
            differences.append("metric '\(key)' has \(storedCounts[key] ?? 0) points, the source's \(sourceCounts[key] ?? 0)")
        }
        return differences
    }

    /// Elements (key and value…) present on one side only, described.
    static func setDifferences(_ stored: [[String]], _ source: [[String]], what: String) -> [String] {
        let here = Set(stored)
        let there = Set(source)
        var differences: [String] = []
        for item in here.subtracting(there).sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            differences.append("\(what) \(item.map { "'\($0)'" }.joined(separator: " = ")) is here but not in the source")
        }
        for item in there.subtracting(here).sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            differences.append("\(what) \(item.map { "'\($0)'" }.joined(separator: " = ")) is in the source but not here")
        }
        return differences
    }

    /// Tags both sides have with different values.
    static func tagConflicts(_ stored: [Tag], _ source: [Tag], what: String) -> [String] {
        var values: [String: String] = [:]
        for tag in stored { values[tag.key] = tag.value }
        return source.compactMap { tag in
            guard let value = values[tag.key], value != tag.value else { return nil }
            return "\(what) '\(tag.key)' is '\(value)', the source's '\(tag.value)'"
        }
    }

    // MARK: - Logged models

    /// Writes a logged model with its id, times, status, lifecycle, tags, params and metrics.
    public func importLoggedModel(_ model: LoggedModel) async throws -> ImportOutcome {
        let experimentID = try Validation.parseExperimentID(model.experimentID)
        return try await write(audit: Self.importAudit("logged_model", "logged_model:\(model.modelID)", ["experiment_id": .int(experimentID)])) { db in
            if let pk = try db.value(Int64.self, "SELECT model_pk FROM logged_models WHERE model_id = ?", [model.modelID]) {
                let existing = try Self.loadLoggedModels(db, pks: [pk])[0]
                var differences: [String] = []
                func compare(_ what: String, _ x: String?, _ y: String?) {
                    if x != y { differences.append("\(what) is \(x ?? "none"), the source's \(y ?? "none")") }
                }
                compare("experiment", existing.experimentID, model.experimentID)
                compare("name", existing.name, model.name)
                compare("artifact URI", existing.artifactURI, model.artifactURI)
                compare("creation time", String(existing.creationTimestamp), String(model.creationTimestamp))
                compare("status", existing.status.rawValue, model.status.rawValue)
                compare("source run", existing.sourceRunID, model.sourceRunID)
                compare("lifecycle stage", existing.lifecycleStage.rawValue, model.lifecycleStage.rawValue)
                differences += Self.setDifferences(existing.tags.map { [$0.key, $0.value] }, model.tags.map { [$0.key, $0.value] }, what: "tag")
                differences += Self.setDifferences(existing.params.map { [$0.key, $0.value] }, model.params.map { [$0.key, $0.value] }, what: "param")
                if existing.metrics.count != model.metrics.count {
                    differences.append("it has \(existing.metrics.count) metric values, the source \(model.metrics.count)")
                }
                return differences.isEmpty ? .unchanged : .conflict(differences)
            }
            guard try db.value(Bool.self, "SELECT 1 FROM experiments WHERE experiment_id = ?", [experimentID]) == true else {
                throw Self.noSuchExperiment(experimentID)
            }
            let pk = try db.insert("""
                INSERT INTO logged_models (model_id, experiment_id, name, artifact_uri, creation_timestamp, last_updated_timestamp,
                                           status, status_message, creator_id, model_type, source_run_id, lifecycle_stage)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING model_pk
                """, [model.modelID, experimentID, model.name, model.artifactURI, model.creationTimestamp, model.lastUpdatedTimestamp,
                      model.status.rawValue, model.statusMessage, model.creatorID, model.modelType, model.sourceRunID,
                      model.lifecycleStage.rawValue])
            for tag in model.tags {
                try db.execute("INSERT INTO logged_model_tags (model_pk, key, value) VALUES (?, ?, ?) ON CONFLICT (model_pk, key) DO UPDATE SET value = excluded.value", [pk, tag.key, tag.value])
            }
            try Self.insertModelParams(db, modelPK: pk, modelID: model.modelID, model.params)
            for metric in model.metrics {
                let isNaN = metric.value.isNaN
                try db.execute("""
                    INSERT INTO logged_model_metrics (model_pk, key, value, is_nan, timestamp, step, run_id, dataset_name, dataset_digest)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [pk, metric.key, isNaN ? nil : metric.value, isNaN, metric.timestamp, metric.step,
                          metric.runID, metric.datasetName, metric.datasetDigest])
            }
            return .created
        }
    }

    // MARK: - Registered models

    /// Writes a registered model with its times, description, tags, aliases and versions (with
    /// their numbers, times, stage, status, source, run link and tags), in one transaction, and
    /// records one `import` event for the model and for each version; or, given `events` (a Cairn
    /// export's history of the model), those events as they were recorded, in their order.
    public func importRegisteredModel(_ model: RegisteredModel, versions: [ModelVersion], events: [RecordedRegistryEvent]? = nil) async throws -> ImportOutcome {
        try await write(audit: Self.importAudit("registered_model", "registered_model:\(model.name)", ["versions": .int(versions.count)])) { db in
            if let pk = try db.value(Int64.self, "SELECT model_pk FROM registered_models WHERE name = ?", [model.name]) {
                let existing = try Self.loadRegisteredModel(db, pk: pk)
                var differences: [String] = []
                if existing.description != model.description { differences.append("description differs") }
                if existing.creationTimestamp != model.creationTimestamp {
                    differences.append("creation time is \(existing.creationTimestamp), the source's \(model.creationTimestamp)")
                }
                differences += Self.setDifferences(existing.tags.map { [$0.key, $0.value] }, model.tags.map { [$0.key, $0.value] }, what: "tag")
                differences += Self.setDifferences(existing.aliases.map { [$0.alias, String($0.version)] }, model.aliases.map { [$0.alias, String($0.version)] }, what: "alias")
                let stored = try db.rows("SELECT \(Self.versionColumns) FROM model_versions WHERE model_pk = ? AND deleted = 0 ORDER BY version", [pk])
                    .map { try Self.version(from: $0, db: db, pk: pk, name: model.name) }
                differences += Self.setDifferences(stored.map(Self.versionFields), versions.map(Self.versionFields), what: "version")
                return differences.isEmpty ? .unchanged : .conflict(differences)
            }
            let pk = try db.insert("""
                INSERT INTO registered_models (name, description, user_id, creation_timestamp, last_updated_timestamp) VALUES (?, ?, ?, ?, ?)
                RETURNING model_pk
                """, [model.name, model.description, model.userID, model.creationTimestamp, model.lastUpdatedTimestamp])
            for tag in model.tags {
                try db.execute("INSERT INTO registered_model_tags (model_pk, key, value) VALUES (?, ?, ?) ON CONFLICT (model_pk, key) DO UPDATE SET value = excluded.value", [pk, tag.key, tag.value])
            }
            if events == nil {
                try Self.recordEvent(db, pk: pk, name: model.name, version: nil, user: model.userID, now: model.creationTimestamp, action: "import",
                                     changes: ["description": .string(model.description), "tags": Self.json(model.tags)])
            }
            for version in versions {
                try db.execute("""
                    INSERT INTO model_versions (model_pk, version, creation_timestamp, last_updated_timestamp, user_id, current_stage,
                                                description, source, run_id, run_link, status, status_message, model_id)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [pk, version.version, version.creationTimestamp, version.lastUpdatedTimestamp, version.userID, version.currentStage,
                          version.description, version.source, version.runID, version.runLink, version.status, version.statusMessage, version.modelID])
                for tag in version.tags {
                    try db.execute("INSERT INTO model_version_tags (model_pk, version, key, value) VALUES (?, ?, ?, ?) ON CONFLICT (model_pk, version, key) DO UPDATE SET value = excluded.value", [pk, version.version, tag.key, tag.value])
                }
                guard events == nil else { continue }
                try Self.recordEvent(db, pk: pk, name: model.name, version: version.version, user: version.userID, now: version.creationTimestamp,
                                     action: "import", changes: [
                                         "source": .string(version.source), "run_id": version.runID.map(JSONValue.string) ?? .null,
                                         "model_id": version.modelID.map(JSONValue.string) ?? .null, "stage": .string(version.currentStage),
                                     ])
            }
            for alias in model.aliases {
                try db.execute("INSERT INTO registered_model_aliases (model_pk, alias, version) VALUES (?, ?, ?)", [pk, alias.alias, alias.version])
            }
            for event in events ?? [] {
                try db.execute("""
                    INSERT INTO registry_events (model_pk, model_name, version, timestamp, "user", action, changes) VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, [pk, event.modelName, event.version, event.timestamp, event.user, event.action, event.changes])
            }
            return .created
        }
    }

    static func versionFields(_ v: ModelVersion) -> [String] {
        [String(v.version), String(v.creationTimestamp), v.userID, v.currentStage, v.description, v.source, v.runID ?? "",
         v.runLink ?? "", v.status, v.modelID ?? ""] + v.tags.sorted { $0.key < $1.key }.flatMap { [$0.key, $0.value] }
    }
}
