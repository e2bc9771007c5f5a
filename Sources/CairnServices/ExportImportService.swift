import CairnArtifacts
import CairnCore
import CairnStore
import Crypto
import Foundation
import NIOCore

/// A file of the export whose bytes do not match the manifest.
public struct ExportDamage: Sendable, Equatable {
    public let file: String
    public let detail: String
}

/// `cairn import cairn DIR`: loads an export (`ExportService`) into this store through the
/// import write path (`SQLStore.importExperiment`, `importRun`, …): ids, times and lifecycle
/// kept, an entity already here as it is left alone, one here with other content reported as a
/// conflict and never overwritten, so running it again resumes or does nothing. Every file is
/// checked against the manifest's SHA-256 first; a damaged export is refused before anything
/// is written. Registry events are written as they were recorded in the source (not as
/// `import` events), so exporting the imported store gives the same tables, byte for byte.
public struct ExportImportService: Sendable {
    public let store: SQLStore
    public let blobs: any BlobStore
    public let now: @Sendable () -> Int64

    public init(store: SQLStore, blobs: any BlobStore, now: @escaping @Sendable () -> Int64) {
        self.store = store
        self.blobs = blobs
        self.now = now
    }

    /// The manifest, and the files whose size or SHA-256 differ from it (or are missing).
    public func verify(_ directory: URL) throws -> (ExportManifest, [ExportDamage]) {
        let manifestURL = directory.appendingPathComponent("manifest.json")
        guard let data = FileManager.default.contents(atPath: manifestURL.path) else {
            throw CairnError(.invalidParameterValue, "'\(directory.path)' holds no manifest.json, so it is not a Cairn export (made by `cairn export`).")
        }
        let manifest = try ExportManifest.parse(data)
        var damage: [ExportDamage] = []
        for table in ExportFormat.tables where table.since <= manifest.formatVersion && !manifest.tables.contains(where: { $0.name == table.name }) {
            damage.append(ExportDamage(file: table.file, detail: "the manifest does not list it"))
        }
        for table in manifest.tables {
            guard ExportFormat.tables.contains(where: { $0.name == table.name && $0.file == table.file }) else {
                damage.append(ExportDamage(file: table.file, detail: "'\(table.name)' is not a table of format version \(ExportFormat.version)"))
                continue
            }
            damage += Self.check(directory.appendingPathComponent(table.file), name: table.file, size: table.bytes, sha256: table.sha256)
        }
        for artifact in manifest.artifacts {
            guard let path = try? ArtifactPath(validating: artifact.path).string, path == artifact.path else {
                damage.append(ExportDamage(file: "artifacts/\(artifact.path)", detail: "not a valid artifact path"))
                continue
            }
            damage += Self.check(directory.appendingPathComponent("artifacts").appendingPathComponent(path), name: "artifacts/\(path)",
                                 size: artifact.size, sha256: artifact.sha256)
        }
        return (manifest, damage)
    }

    static func check(_ url: URL, name: String, size: Int64, sha256: String) -> [ExportDamage] {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return [ExportDamage(file: name, detail: "missing")] }
        defer { try? handle.close() }
        var hasher = SHA256()
        var count: Int64 = 0
        while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
            count += Int64(chunk.count)
        }
        let digest = ExportService.hex(hasher.finalize())
        if count != size { return [ExportDamage(file: name, detail: "\(count) bytes, the manifest says \(size)")] }
        if digest != sha256 { return [ExportDamage(file: name, detail: "its SHA-256 is \(digest), the manifest says \(sha256)")] }
        return []
    }

    /// Verifies the export, then imports it. Throws when the export is damaged (nothing written).
    public func importExport(from directory: URL, progress: @Sendable (ImportEvent) -> Void = { _ in }) async throws -> ImportReport {
        try await AuditContext.$via.withValue("import cairn") { try await importExportFolder(from: directory, progress: progress) }
    }

    private func importExportFolder(from directory: URL, progress: @Sendable (ImportEvent) -> Void) async throws -> ImportReport {
        let (manifest, damage) = try verify(directory)
        if !damage.isEmpty {
            let list = damage.prefix(10).map { "\($0.file): \($0.detail)" }.joined(separator: "; ")
            let more = damage.count > 10 ? " (and \(damage.count - 10) more)" : ""
            throw CairnError(.invalidParameterValue, "The export in '\(directory.path)' is damaged, so nothing was imported: \(list)\(more). Export again, or copy the folder again from where it was made.")
        }
        var report = ImportReport()
        let tables = try TableSet(directory)
        // The audit log first: the import's own events (import.run, …) follow it in the chain.
        if manifest.tables.contains(where: { $0.name == ExportFormat.auditEvents.name }) {
            try await importAuditLog(tables, into: &report, progress: progress)
        }

        // Small tables are read whole; metric points are read a row group at a time, in the
        // runs' order (the exporter writes them grouped by run, in that order).
        let experimentTags = try tables.grouped(ExportFormat.experimentTags) { $0[0] }
        let params = try tables.grouped(ExportFormat.params) { $0[0] }
        let runTags = try tables.grouped(ExportFormat.tags) { $0[0] }
        var datasets: [[ParquetValue]: [ParquetValue]] = [:]
        for row in try tables.rows(ExportFormat.datasets) { datasets[Array(row[0..<3])] = Array(row[3...]) }
        let inputs = try tables.grouped(ExportFormat.datasetInputs) { $0[0] }
        let inputTags = try tables.grouped(ExportFormat.datasetInputTags) { $0[0] }
        let modelInputs = try tables.grouped(ExportFormat.runModelInputs) { $0[0] }
        let modelOutputs = try tables.grouped(ExportFormat.runModelOutputs) { $0[0] }
        let runs = try tables.grouped(ExportFormat.runs) { $0[1] }
        let loggedModels = try tables.grouped(ExportFormat.loggedModels) { $0[1] }
        let modelTags = try tables.grouped(ExportFormat.loggedModelTags) { $0[0] }
        let modelParams = try tables.grouped(ExportFormat.loggedModelParams) { $0[0] }
        let modelMetrics = try tables.grouped(ExportFormat.loggedModelMetrics) { $0[0] }
        var metrics = try tables.stream(ExportFormat.metrics)

        for row in try tables.rows(ExportFormat.experiments) {
            let id = try Self.int(row[0])
            let experiment = Experiment(experimentID: String(id), name: try Self.text(row[1]), artifactLocation: try Self.text(row[2]),
                                        lifecycleStage: try Self.stage(row[3]), creationTime: try Self.int(row[4]), lastUpdateTime: try Self.int(row[5]),
                                        tags: try (experimentTags[row[0]] ?? []).map { Tag(try Self.text($0[1]), try Self.text($0[2])) })
            var outcome = try await store.importExperiment(experiment)
            if id == 0, !Self.isConflict(outcome),
               try await store.importDefaultExperimentTimes(creationTime: experiment.creationTime, lastUpdateTime: experiment.lastUpdateTime) {
                outcome = .merged
            }
            record(outcome, .experiment, "experiment \(id) '\(experiment.name)'", into: &report)
            progress(ImportEvent(kind: .experiment, id: String(id), name: experiment.name, outcome: outcome, points: 0, files: 0, bytes: 0))
            let skip = Self.isConflict(outcome)

            for m in loggedModels[row[0]] ?? [] {
                let modelID = try Self.text(m[0])
                guard let status = LoggedModelStatus(rawValue: try Self.text(m[6])) else { throw Self.bad(ExportFormat.loggedModels, "status '\(m[6])'") }
                let model = LoggedModel(
                    modelID: modelID, experimentID: String(id), name: try Self.text(m[2]), artifactURI: try Self.text(m[3]),
                    creationTimestamp: try Self.int(m[4]), lastUpdatedTimestamp: try Self.int(m[5]), status: status, statusMessage: m[7].string,
                    creatorID: m[8].string, modelType: m[9].string, sourceRunID: m[10].string, lifecycleStage: try Self.stage(m[11]),
                    tags: try (modelTags[m[0]] ?? []).map { Tag(try Self.text($0[1]), try Self.text($0[2])) },
                    params: try (modelParams[m[0]] ?? []).map { Param(try Self.text($0[1]), try Self.text($0[2])) },
                    metrics: try (modelMetrics[m[0]] ?? []).map {
                        ModelMetric(key: try Self.text($0[1]), value: try Self.double($0[2]), timestamp: try Self.int($0[3]), step: try Self.int($0[4]),
                                    runID: $0[5].string, datasetName: $0[6].string, datasetDigest: $0[7].string)
                    })
                if skip { continue }
                let outcome = try await store.importLoggedModel(model)
                record(outcome, .loggedModel, "logged model \(modelID) '\(model.name)'", into: &report)
                progress(ImportEvent(kind: .loggedModel, id: modelID, name: model.name, outcome: outcome, points: 0, files: 0, bytes: 0))
            }

            for r in runs[row[0]] ?? [] {
                let runID = try Self.text(r[0])
                guard let status = RunStatus(rawValue: try Self.text(r[4])) else { throw Self.bad(ExportFormat.runs, "status '\(r[4])'") }
                let info = RunInfo(runID: runID, experimentID: String(id), runName: try Self.text(r[2]), userID: try Self.text(r[3]), status: status,
                                   startTime: r[5].int64, endTime: r[6].int64, artifactURI: try Self.text(r[7]), lifecycleStage: try Self.stage(r[8]))
                var history: [Metric] = []
                while let point = try metrics.peek(), point[0] == r[0] {
                    history.append(Metric(key: try Self.text(point[1]), value: try Self.double(point[4]), timestamp: try Self.int(point[3]), step: try Self.int(point[2])))
                    try metrics.advance()
                }
                var datasetInputs: [DatasetInput] = []
                for input in (inputs[r[0]] ?? []).sorted(by: { ($0[1].int64 ?? 0) < ($1[1].int64 ?? 0) }) {
                    let key: [ParquetValue] = [row[0], input[2], input[3]]
                    guard let d = datasets[key] else { throw Self.bad(ExportFormat.datasetInputs, "dataset \(input[2]) \(input[3]) of run \(runID) is not in datasets") }
                    let tags = try (inputTags[r[0]] ?? []).filter { $0[1] == input[2] && $0[2] == input[3] }.map { Tag(try Self.text($0[3]), try Self.text($0[4])) }
                    datasetInputs.append(DatasetInput(tags: tags, dataset: Dataset(name: try Self.text(input[2]), digest: try Self.text(input[3]),
                                                                                   sourceType: try Self.text(d[0]), source: try Self.text(d[1]),
                                                                                   schema: d[2].string, profile: d[3].string)))
                }
                let run = Run(info: info,
                              params: try (params[r[0]] ?? []).map { Param(try Self.text($0[1]), try Self.text($0[2])) },
                              tags: try (runTags[r[0]] ?? []).map { Tag(try Self.text($0[1]), try Self.text($0[2])) },
                              inputs: datasetInputs,
                              modelInputs: try (modelInputs[r[0]] ?? []).map { try Self.text($0[1]) },
                              modelOutputs: try (modelOutputs[r[0]] ?? []).map { ModelOutput(modelID: try Self.text($0[1]), step: try Self.int($0[2])) })
                if skip { continue }
                let outcome = try await store.importRun(run, history: history)
                record(outcome, .run, "run \(runID) '\(info.runName)'", into: &report)
                if outcome == .created { report.writtenPoints += SQLStore.distinctPointCounts(history).values.reduce(0, +) }
                progress(ImportEvent(kind: .run, id: runID, name: info.runName, outcome: outcome, points: history.count, files: 0, bytes: 0))
            }
        }
        if try metrics.peek() != nil {
            throw CairnError(.invalidParameterValue, "tables/metrics.parquet holds points of runs that are not in tables/runs.parquet, or not in the runs' order; the import stopped there.")
        }

        if manifest.formatVersion >= 2 {
            try await importTraces(tables, into: &report, progress: progress)
            try await importEvaluationDatasets(tables, into: &report, progress: progress)
        }

        let modelTagsByName = try tables.grouped(ExportFormat.registeredModelTags) { $0[0] }
        let versions = try tables.grouped(ExportFormat.modelVersions) { $0[0] }
        let versionTags = try tables.grouped(ExportFormat.modelVersionTags) { [$0[0], $0[1]] }
        let aliases = try tables.grouped(ExportFormat.registeredModelAliases) { $0[0] }
        let events = try tables.grouped(ExportFormat.registryEvents) { $0[0] }
        for m in try tables.rows(ExportFormat.registeredModels) {
            let name = try Self.text(m[0])
            let model = RegisteredModel(name: name, creationTimestamp: try Self.int(m[3]), lastUpdatedTimestamp: try Self.int(m[4]), userID: try Self.text(m[2]),
                                        description: try Self.text(m[1]),
                                        tags: try (modelTagsByName[m[0]] ?? []).map { Tag(try Self.text($0[1]), try Self.text($0[2])) },
                                        aliases: try (aliases[m[0]] ?? []).map { (alias: try Self.text($0[1]), version: try Self.int($0[2])) },
                                        latestVersions: [])
            let modelVersions = try (versions[m[0]] ?? []).map { v in
                ModelVersion(name: name, version: try Self.int(v[1]), creationTimestamp: try Self.int(v[2]), lastUpdatedTimestamp: try Self.int(v[3]),
                             userID: try Self.text(v[4]), currentStage: try Self.text(v[5]), description: try Self.text(v[6]), source: try Self.text(v[7]),
                             runID: v[8].string, runLink: v[9].string, status: try Self.text(v[10]), statusMessage: v[11].string, modelID: v[12].string,
                             tags: try (versionTags[[m[0], v[1]]] ?? []).map { Tag(try Self.text($0[2]), try Self.text($0[3])) }, aliases: [])
            }
            let history = try (events[m[0]] ?? []).map { e in
                RecordedRegistryEvent(timestamp: try Self.int(e[3]), user: try Self.text(e[4]), action: try Self.text(e[5]), modelName: try Self.text(e[1]),
                                      version: e[2].int64, changes: try Self.text(e[6]))
            }
            let outcome = try await store.importRegisteredModel(model, versions: modelVersions, events: history)
            record(outcome, .registeredModel, "registered model '\(name)'", into: &report)
            progress(ImportEvent(kind: .registeredModel, id: name, name: name, outcome: outcome, points: 0, files: 0, bytes: 0))
        }

        try await importArtifacts(manifest.artifacts, from: directory, into: &report)
        return report
    }

    /// The traces (format version 2), each with its tags, metadata, spans (their JSON as
    /// exported), assessments and run links, after the experiments they belong to.
    func importTraces(_ tables: TableSet, into report: inout ImportReport, progress: @Sendable (ImportEvent) -> Void) async throws {
        let tags = try tables.grouped(ExportFormat.traceTags) { $0[0] }
        let metadata = try tables.grouped(ExportFormat.traceMetadata) { $0[0] }
        let spans = try tables.grouped(ExportFormat.traceSpans) { $0[0] }
        let assessments = try tables.grouped(ExportFormat.traceAssessments) { $0[0] }
        let links = try tables.grouped(ExportFormat.traceRunLinks) { $0[0] }
        func pairs(_ rows: [[ParquetValue]]?) throws -> [Tag] { try (rows ?? []).map { Tag(try Self.text($0[1]), try Self.text($0[2])) } }
        for t in try tables.rows(ExportFormat.traces) {
            let id = try Self.text(t[0])
            guard let state = TraceState(rawValue: try Self.text(t[4])) else { throw Self.bad(ExportFormat.traces, "state '\(t[4])'") }
            let info = TraceInfo(
                traceID: id, experimentID: String(try Self.int(t[1])), requestTime: try Self.int(t[2]), executionDuration: t[3].int64, state: state,
                requestPreview: t[5].string, responsePreview: t[6].string, clientRequestID: t[7].string,
                metadata: try pairs(metadata[t[0]]), tags: try pairs(tags[t[0]]),
                assessments: try (assessments[t[0]] ?? []).map { a in
                    guard let body = try? JSONValue.parse(try Self.text(a[5])) else { throw Self.bad(ExportFormat.traceAssessments, "assessment \(a[1]) is not JSON") }
                    return Assessment(assessmentID: try Self.text(a[1]), traceID: id, name: try Self.text(a[2]), createTime: try Self.int(a[3]),
                                      lastUpdateTime: try Self.int(a[4]), body: body)
                })
            let trace = ExportedTrace(info: info, spans: try (spans[t[0]] ?? []).sorted { ($0[1].int64 ?? 0) < ($1[1].int64 ?? 0) }.map { try Self.text($0[2]) },
                                      runIDs: try (links[t[0]] ?? []).map { try Self.text($0[1]) })
            let outcome = try await store.importTrace(trace)
            record(outcome, .trace, "trace \(id)", into: &report)
            progress(ImportEvent(kind: .trace, id: id, name: id, outcome: outcome, points: 0, files: 0, bytes: 0))
        }
    }

    /// The evaluation datasets (format version 2) with their tags, experiment links and records.
    func importEvaluationDatasets(_ tables: TableSet, into report: inout ImportReport, progress: @Sendable (ImportEvent) -> Void) async throws {
        let tags = try tables.grouped(ExportFormat.evaluationDatasetTags) { $0[0] }
        let experiments = try tables.grouped(ExportFormat.evaluationDatasetExperiments) { $0[0] }
        let records = try tables.grouped(ExportFormat.evaluationDatasetRecords) { $0[0] }
        for d in try tables.rows(ExportFormat.evaluationDatasets) {
            let id = try Self.text(d[0])
            let dataset = EvaluationDataset(
                datasetID: id, name: try Self.text(d[1]), tags: try (tags[d[0]] ?? []).map { Tag(try Self.text($0[1]), try Self.text($0[2])) },
                schema: d[2].string, profile: d[3].string, digest: try Self.text(d[4]), createdTime: try Self.int(d[5]), lastUpdateTime: try Self.int(d[6]),
                createdBy: d[7].string, lastUpdatedBy: d[8].string,
                experimentIDs: try (experiments[d[0]] ?? []).map { String(try Self.int($0[1])) })
            let rows = try (records[d[0]] ?? []).map { r in
                let text = try Self.text(r[3])
                guard let body = try? JSONValue.parse(text) else { throw Self.bad(ExportFormat.evaluationDatasetRecords, "record \(r[1]) is not JSON") }
                return DatasetRecord(recordID: try Self.text(r[1]), inputKey: try Self.text(r[2]), body: body, createdTime: try Self.int(r[4]),
                                     lastUpdateTime: try Self.int(r[5]))
            }
            let outcome = try await store.importEvaluationDataset(dataset, records: rows)
            record(outcome, .evaluationDataset, "evaluation dataset \(id) '\(dataset.name)'", into: &report)
            progress(ImportEvent(kind: .evaluationDataset, id: id, name: dataset.name, outcome: outcome, points: 0, files: 0, bytes: 0))
        }
    }

    static let auditBatch = 5_000

    /// The export's audit log becomes this store's (`SQLStore.adoptAuditEvents`): the whole
    /// table is checked first (numbers from 1 without gaps, each event linked to the one before
    /// and hashing to its stored hash), then appended in batches, each one transaction, with
    /// the import's `import.audit_log` event after the last. A log that does not verify, or a
    /// store whose own log is another history, is listed as not imported; the rest goes on.
    func importAuditLog(_ tables: TableSet, into report: inout ImportReport, progress: @Sendable (ImportEvent) -> Void) async throws {
        var count: Int64 = 0
        var lastHash = AuditChain.genesis
        var stream = try tables.stream(ExportFormat.auditEvents)
        while let row = try stream.peek() {
            let event = try Self.auditEvent(row)
            count += 1
            let problem: String? = event.seq != count ? "event \(count) is missing or out of order (found \(event.seq))"
                : event.previousHash != lastHash ? "event \(count) does not follow event \(count - 1)"
                : AuditChain.hash(previous: lastHash, event: event) != event.hash ? "event \(count) does not hash to its stored hash" : nil
            if let problem {
                report.unrepresentable.append(Unrepresentable(
                    what: "the audit log", reason: "the export's audit log does not verify (\(problem)), so it was not taken over; the rest was imported"))
                return
            }
            lastHash = event.hash
            try stream.advance()
        }
        let closing = AuditDraft("import.audit_log", "audit", details: ["events": .int(count), "last_hash": .string(lastHash)])
        stream = try tables.stream(ExportFormat.auditEvents)
        var batch: [AuditEvent] = []
        while let row = try stream.peek() {
            batch.append(try Self.auditEvent(row))
            try stream.advance()
            guard batch.count == Self.auditBatch || batch.last?.seq == count else { continue }
            let outcome = try await store.adoptAuditEvents(batch, closing: batch.last?.seq == count ? closing : nil)
            let range = "\(batch[0].seq)-\(batch[batch.count - 1].seq)"
            switch outcome {
            case .appended(let appended):
                report.created[.auditEvent, default: 0] += appended
                report.unchanged[.auditEvent, default: 0] += batch.count - appended
                progress(ImportEvent(kind: .auditEvent, id: range, name: range, outcome: .created, points: 0, files: 0, bytes: 0))
            case .unchanged:
                report.unchanged[.auditEvent, default: 0] += batch.count
                progress(ImportEvent(kind: .auditEvent, id: range, name: range, outcome: .unchanged, points: 0, files: 0, bytes: 0))
            case .foreign(let why):
                report.unrepresentable.append(Unrepresentable(
                    what: "the audit log (\(count) events)",
                    reason: "\(why); a log is one hash chain and cannot take another store's events in front of its own, so it was not taken over (import into a new store to carry it); the rest was imported"))
                return
            }
            batch = []
        }
    }

    static func auditEvent(_ row: [ParquetValue]) throws -> AuditEvent {
        guard let authenticated = row[3].boolean else { throw bad(ExportFormat.auditEvents, "authenticated \(row[3])") }
        return AuditEvent(seq: try int(row[0]), time: try int(row[1]), actor: row[2].string, isAuthenticated: authenticated,
                          clientAddress: try text(row[4]), requestID: try text(row[5]), action: try text(row[6]), target: try text(row[7]),
                          digest: try text(row[8]), details: try text(row[9]), previousHash: try text(row[10]), hash: try text(row[11]))
    }

    /// Stores each artifact file (blob first, manifest row after) unless its path is here with
    /// the same content; a path here with other content is a conflict, left as it is.
    func importArtifacts(_ artifacts: [ExportedArtifact], from directory: URL, into report: inout ImportReport) async throws {
        for artifact in artifacts {
            if let existing = try await store.fetchArtifact(path: artifact.path) {
                if existing.digest == artifact.sha256 {
                    report.presentFiles += 1
                } else {
                    report.conflicts.append(ImportConflict(what: "artifact '\(artifact.path)'", differences: ["its content here has sha256 \(existing.digest), the export's \(artifact.sha256)"]))
                }
                continue
            }
            let url = directory.appendingPathComponent("artifacts").appendingPathComponent(artifact.path)
            let blob = try await blobs.write(FileChunks(url: url), maxBytes: nil)
            guard blob.digest == artifact.sha256, blob.size == artifact.size else {
                throw CairnError(.invalidState, "The artifact file '\(url.path)' changed while it was imported (sha256 \(blob.digest), the manifest says \(artifact.sha256)); it was not recorded.")
            }
            try await store.recordArtifact(ArtifactEntry(path: artifact.path, digest: blob.digest, size: blob.size), now: now())
            report.writtenFiles += 1
            report.writtenBytes += blob.size
        }
    }

    func record(_ outcome: ImportOutcome, _ kind: ImportEvent.Kind, _ what: String, into report: inout ImportReport) {
        switch outcome {
        case .created: report.created[kind, default: 0] += 1
        case .unchanged: report.unchanged[kind, default: 0] += 1
        case .merged: report.merged[kind, default: 0] += 1
        case .conflict(let differences): report.conflicts.append(ImportConflict(what: what, differences: differences))
        }
    }

    static func isConflict(_ outcome: ImportOutcome) -> Bool {
        if case .conflict = outcome { return true }
        return false
    }

    static func bad(_ table: ExportFormat.Table, _ detail: String) -> CairnError {
        CairnError(.invalidParameterValue, "\(table.file) holds an invalid value: \(detail).")
    }

    static func text(_ value: ParquetValue) throws -> String {
        guard let s = value.string else { throw CairnError(.invalidParameterValue, "The export holds \(value) where text is required.") }
        return s
    }

    static func int(_ value: ParquetValue) throws -> Int64 {
        guard let n = value.int64 else { throw CairnError(.invalidParameterValue, "The export holds \(value) where an integer is required.") }
        return n
    }

    static func double(_ value: ParquetValue) throws -> Double {
        guard let d = value.double else { throw CairnError(.invalidParameterValue, "The export holds \(value) where a number is required.") }
        return d
    }

    static func stage(_ value: ParquetValue) throws -> LifecycleStage {
        guard let stage = LifecycleStage(rawValue: try text(value)) else { throw CairnError(.invalidParameterValue, "The export holds lifecycle stage \(value).") }
        return stage
    }
}

/// The tables of an export folder, opened with the Parquet reader and checked against the
/// columns of `ExportFormat` (names and kinds).
struct TableSet {
    let directory: URL

    init(_ directory: URL) throws {
        self.directory = directory
    }

    func open(_ table: ExportFormat.Table) throws -> ParquetReader {
        let url = directory.appendingPathComponent(table.file)
        let handle = try FileHandle(forReadingFrom: url)
        let size = Int(try handle.seekToEnd())
        let box = HandleBox(handle)
        let reader: ParquetReader
        do {
            reader = try ParquetReader(size: size) { offset, count in try box.read(offset, count) }
        } catch let error as ParquetError {
            throw CairnError(.invalidParameterValue, "\(table.file) is \(error.description)")
        }
        guard reader.columns == table.columns else {
            throw CairnError(.invalidParameterValue, "\(table.file) has the columns \(reader.columns.map(\.name)), not those of format version \(ExportFormat.version): \(table.columns.map(\.name)).")
        }
        return reader
    }

    func rows(_ table: ExportFormat.Table) throws -> [[ParquetValue]] {
        do {
            return try open(table).allRows()
        } catch let error as ParquetError {
            throw CairnError(.invalidParameterValue, "\(table.file) is \(error.description)")
        }
    }

    /// The rows by a key, each group in file order.
    func grouped<Key: Hashable>(_ table: ExportFormat.Table, by key: ([ParquetValue]) -> Key) throws -> [Key: [[ParquetValue]]] {
        Dictionary(grouping: try rows(table), by: key)
    }

    func stream(_ table: ExportFormat.Table) throws -> RowStream {
        RowStream(reader: try open(table))
    }
}

/// Rows of a table a row group at a time.
struct RowStream {
    let reader: ParquetReader
    var group = -1
    var rows: [[ParquetValue]] = []
    var index = 0

    mutating func peek() throws -> [ParquetValue]? {
        while index >= rows.count {
            group += 1
            guard group < reader.rowGroupCount else { return nil }
            rows = try reader.rows(ofGroup: group)
            index = 0
        }
        return rows[index]
    }

    mutating func advance() throws {
        index += 1
    }
}

/// A file handle read at offsets (the Parquet reader's reads, one at a time).
final class HandleBox: @unchecked Sendable {
    private let handle: FileHandle
    private let lock = NSLock()

    init(_ handle: FileHandle) {
        self.handle = handle
    }

    deinit {
        try? handle.close()
    }

    func read(_ offset: Int, _ count: Int) throws -> [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        try handle.seek(toOffset: UInt64(offset))
        let data = try handle.read(upToCount: count) ?? Data()
        guard data.count == count else { throw CairnError(.invalidParameterValue, "A table file of the export ends early.") }
        return Array(data)
    }
}

/// A local file's bytes in 1 MiB chunks, for `BlobStore.write`.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let url: URL

    func makeAsyncIterator() -> Iterator {
        Iterator(handle: try? FileHandle(forReadingFrom: url))
    }

    struct Iterator: AsyncIteratorProtocol {
        let handle: FileHandle?

        mutating func next() async throws -> ByteBuffer? {
            guard let handle else { throw CairnError(.invalidState, "An artifact file of the export cannot be opened.") }
            guard let data = try handle.read(upToCount: 1 << 20), !data.isEmpty else {
                try? handle.close()
                return nil
            }
            return ByteBuffer(bytes: data)
        }
    }
}
