import CairnArtifacts
import CairnCore
import CairnStore
import Crypto
import Foundation

/// What `cairn export` writes.
public struct ExportSelection: Sendable {
    /// Experiment names or ids; empty = every experiment (deleted ones included).
    public var experiments: [String]
    /// A run search filter (`metrics.acc > 0.9`, `tags.team = 'nlp'`): only these runs.
    public var runFilter: String?

    public init(experiments: [String] = [], runFilter: String? = nil) {
        self.experiments = experiments
        self.runFilter = runFilter
    }

    public var isEverything: Bool { experiments.isEmpty && (runFilter ?? "").isEmpty }
}

/// One table of an export as the manifest lists it.
public struct ExportedTable: Sendable, Equatable {
    public let name: String
    public let file: String
    public let rows: Int
    public let bytes: Int64
    public let sha256: String
}

/// One artifact file of an export as the manifest lists it.
public struct ExportedArtifact: Sendable, Equatable {
    public let path: String
    public let size: Int64
    public let sha256: String
}

/// `DIR/manifest.json`: what an export holds, with a SHA-256 for every file.
public struct ExportManifest: Sendable {
    public var formatVersion: Int
    public var cairnVersion: String
    /// Milliseconds since the epoch.
    public var createdAt: Int64
    public var selection: [String: String]
    public var tables: [ExportedTable]
    public var artifacts: [ExportedArtifact]

    public var counts: [String: Int64] {
        var counts: [String: Int64] = [:]
        for table in tables { counts[table.name] = Int64(table.rows) }
        counts["artifact_files"] = Int64(artifacts.count)
        counts["artifact_bytes"] = artifacts.reduce(0) { $0 + $1.size }
        return counts
    }

    public func json() throws -> Data {
        let object: [String: Any] = [
            "format": ExportFormat.formatName,
            "format_version": formatVersion,
            "cairn_version": cairnVersion,
            "created_at": createdAt,
            "selection": selection,
            "tables": tables.map { ["name": $0.name, "file": $0.file, "rows": $0.rows, "bytes": $0.bytes, "sha256": $0.sha256] as [String: Any] },
            "artifacts": artifacts.map { ["path": $0.path, "size": $0.size, "sha256": $0.sha256] as [String: Any] },
            "counts": counts,
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }

    public static func parse(_ data: Data) throws -> ExportManifest {
        func bad(_ detail: String) -> CairnError {
            CairnError(.invalidParameterValue, "manifest.json is not a Cairn export manifest: \(detail).")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw bad("it is not a JSON object") }
        guard object["format"] as? String == ExportFormat.formatName else { throw bad("its \"format\" is not \"\(ExportFormat.formatName)\"") }
        func int(_ any: Any?) -> Int64? {
            if let n = any as? Int { return Int64(n) }
            if let n = any as? Int64 { return n }
            return (any as? NSNumber)?.int64Value
        }
        guard let version = int(object["format_version"]).map(Int.init) else { throw bad("it has no format_version") }
        guard version <= ExportFormat.version else {
            throw CairnError(.invalidParameterValue, "This export has format version \(version); this Cairn reads version \(ExportFormat.version) and older. Import it with a newer Cairn.")
        }
        var tables: [ExportedTable] = []
        for item in object["tables"] as? [[String: Any]] ?? [] {
            guard let name = item["name"] as? String, let file = item["file"] as? String, let rows = int(item["rows"]),
                  let bytes = int(item["bytes"]), let sha = item["sha256"] as? String else { throw bad("a table entry lacks name, file, rows, bytes or sha256") }
            tables.append(ExportedTable(name: name, file: file, rows: Int(rows), bytes: bytes, sha256: sha))
        }
        var artifacts: [ExportedArtifact] = []
        for item in object["artifacts"] as? [[String: Any]] ?? [] {
            guard let path = item["path"] as? String, let size = int(item["size"]), let sha = item["sha256"] as? String else {
                throw bad("an artifact entry lacks path, size or sha256")
            }
            artifacts.append(ExportedArtifact(path: path, size: size, sha256: sha))
        }
        return ExportManifest(formatVersion: version, cairnVersion: object["cairn_version"] as? String ?? "", createdAt: int(object["created_at"]) ?? 0,
                              selection: object["selection"] as? [String: String] ?? [:], tables: tables, artifacts: artifacts)
    }
}

/// `cairn export`: writes the selected experiments, runs (params, tags, every metric point,
/// dataset inputs), logged models and registered models (versions, aliases, tags, registry
/// history) as Parquet tables (`ExportFormat`), the artifact files of those runs and models
/// under their paths, and `manifest.json` with row counts and SHA-256 digests. Deleted entities
/// are included with their lifecycle. Rows are written in an order that depends only on the
/// content, so the same content exports to the same bytes, on either backend.
public struct ExportService: Sendable {
    public let store: SQLStore
    public let blobs: any BlobStore
    public let cairnVersion: String
    public let now: @Sendable () -> Int64
    /// Rows per Parquet row group (memory stays bounded by one group per table being written).
    public let rowGroupSize: Int

    public init(store: SQLStore, blobs: any BlobStore, cairnVersion: String, now: @escaping @Sendable () -> Int64, rowGroupSize: Int = 100_000) {
        self.store = store
        self.blobs = blobs
        self.cairnVersion = cairnVersion
        self.now = now
        self.rowGroupSize = max(1, rowGroupSize)
    }

    /// Writes the export into `directory`, which must be absent or empty unless `force` (then
    /// the export's own files are replaced).
    public func export(_ selection: ExportSelection, to directory: URL, force: Bool = false) async throws -> ExportManifest {
        let fm = FileManager.default
        if let existing = try? fm.contentsOfDirectory(atPath: directory.path), !existing.isEmpty {
            guard force else {
                throw CairnError(.invalidParameterValue, "'\(directory.path)' is not empty. Export into a new or empty folder, or pass --force to replace an export there.")
            }
            for name in ["tables", "artifacts", "manifest.json"] { try? fm.removeItem(at: directory.appendingPathComponent(name)) }
        }
        try fm.createDirectory(at: directory.appendingPathComponent("tables"), withIntermediateDirectories: true)

        let experimentIDs = try await selectExperiments(selection)
        var allowedRuns: Set<String>?
        if let filter = selection.runFilter, !filter.isEmpty {
            allowedRuns = try await filteredRuns(filter, experimentIDs: experimentIDs)
        }

        var writers: [String: TableFile] = [:]
        for table in ExportFormat.tables {
            writers[table.name] = try TableFile(table, in: directory, rowGroupSize: rowGroupSize)
        }
        func append(_ table: ExportFormat.Table, _ row: [ParquetValue]) throws { try writers[table.name]!.append(row) }

        var artifactRoots: [String] = []
        var exportedRuns = Set<String>()
        var exportedModels = Set<String>()
        var datasets: [[ParquetValue]: [ParquetValue]] = [:]
        var exportedExperiments = Set<Int64>()
        for id in experimentIDs {
            var runIDs = try await store.exportRunIDs(experimentID: id)
            if let allowedRuns {
                runIDs = runIDs.filter(allowedRuns.contains)
                // A run filter alone takes the experiments where it selects runs.
                if selection.experiments.isEmpty, runIDs.isEmpty { continue }
            }
            let experiment = try await store.exportExperiment(id: id)
            try append(ExportFormat.experiments, [.int64(id), .string(experiment.name), .string(experiment.artifactLocation),
                                                  .string(experiment.lifecycleStage.rawValue), .int64(experiment.creationTime), .int64(experiment.lastUpdateTime)])
            for tag in experiment.tags.sorted(by: { $0.key < $1.key }) {
                try append(ExportFormat.experimentTags, [.int64(id), .string(tag.key), .string(tag.value)])
            }
            for start in stride(from: 0, to: runIDs.count, by: 100) {
                for run in try await store.exportRuns(ids: Array(runIDs[start..<min(runIDs.count, start + 100)])) {
                    try await writeRun(run, experimentID: id, append: append, datasets: &datasets)
                    exportedRuns.insert(run.info.runID)
                    if let root = ArtifactLocation.proxyPath(fromArtifactURI: run.info.artifactURI), !root.isEmpty { artifactRoots.append(root) }
                }
            }
            for model in try await store.exportLoggedModels(experimentID: id) {
                // With a run filter, the logged models of the selected runs only.
                if allowedRuns != nil, !(model.sourceRunID.map(exportedRuns.contains) ?? false) { continue }
                try writeLoggedModel(model, experimentID: id, append: append)
                exportedModels.insert(model.modelID)
                if let root = ArtifactLocation.proxyPath(fromArtifactURI: model.artifactURI), !root.isEmpty { artifactRoots.append(root) }
            }
            let traceIDs = try await store.exportTraceIDs(experimentID: id)
            for start in stride(from: 0, to: traceIDs.count, by: 100) {
                for trace in try await store.exportTraces(ids: Array(traceIDs[start..<min(traceIDs.count, start + 100)])) {
                    // With a run filter, the traces of the selected runs only (made in one or linked to one).
                    if allowedRuns != nil {
                        let runs = trace.runIDs + trace.info.metadata.filter { $0.key == TraceKey.sourceRun }.map(\.value)
                        if !runs.contains(where: exportedRuns.contains) { continue }
                    }
                    try writeTrace(trace, append: append)
                }
            }
            exportedExperiments.insert(id)
        }
        for key in datasets.keys.sorted(by: { Self.rowOrder($0, $1) }) {
            try append(ExportFormat.datasets, key + datasets[key]!)
        }

        for name in try await store.exportRegisteredModelNames() {
            let (model, versions, events) = try await store.exportRegisteredModel(name: name)
            if !selection.isEverything {
                // A selection takes the registered models with a version from what it exported.
                let linked = versions.contains { v in
                    v.runID.map(exportedRuns.contains) == true || v.modelID.map(exportedModels.contains) == true
                        || ArtifactLocation.loggedModelID(inSource: v.source).map(exportedModels.contains) == true
                }
                if !linked { continue }
            }
            try append(ExportFormat.registeredModels, [.string(name), .string(model.description), .string(model.userID),
                                                       .int64(model.creationTimestamp), .int64(model.lastUpdatedTimestamp)])
            for tag in model.tags.sorted(by: { $0.key < $1.key }) {
                try append(ExportFormat.registeredModelTags, [.string(name), .string(tag.key), .string(tag.value)])
            }
            for v in versions {
                try append(ExportFormat.modelVersions, [
                    .string(name), .int64(v.version), .int64(v.creationTimestamp), .int64(v.lastUpdatedTimestamp), .string(v.userID),
                    .string(v.currentStage), .string(v.description), .string(v.source), Self.optional(v.runID), Self.optional(v.runLink),
                    .string(v.status), Self.optional(v.statusMessage), Self.optional(v.modelID),
                ])
                for tag in v.tags.sorted(by: { $0.key < $1.key }) {
                    try append(ExportFormat.modelVersionTags, [.string(name), .int64(v.version), .string(tag.key), .string(tag.value)])
                }
            }
            for alias in model.aliases.sorted(by: { $0.alias < $1.alias }) {
                try append(ExportFormat.registeredModelAliases, [.string(name), .string(alias.alias), .int64(alias.version)])
            }
            for event in events {
                try append(ExportFormat.registryEvents, [.string(name), .string(event.modelName), event.version.map(ParquetValue.int64) ?? .null,
                                                         .int64(event.timestamp), .string(event.user), .string(event.action), .string(event.changes)])
            }
        }

        for id in try await store.exportEvaluationDatasetIDs() {
            var (dataset, records) = try await store.exportEvaluationDataset(id: id)
            // A selection takes the datasets of the experiments it exported, with links to those only.
            let experiments = dataset.experimentIDs.filter { Int64($0).map(exportedExperiments.contains) ?? false }
            if !selection.isEverything {
                if experiments.isEmpty { continue }
                dataset.experimentIDs = experiments
            }
            try writeEvaluationDataset(dataset, records: records, append: append)
        }
        // A part of the audit log cannot be verified, and names what was not selected.
        if selection.isEverything { try await writeAuditLog(append: append) }

        var tables: [ExportedTable] = []
        for table in ExportFormat.tables {
            tables.append(try writers[table.name]!.close())
        }
        let artifacts = try await writeArtifacts(roots: artifactRoots, into: directory)
        var selectionInfo: [String: String] = [:]
        if !selection.experiments.isEmpty { selectionInfo["experiments"] = selection.experiments.joined(separator: ", ") }
        if let filter = selection.runFilter, !filter.isEmpty { selectionInfo["run_filter"] = filter }
        let manifest = ExportManifest(formatVersion: ExportFormat.version, cairnVersion: cairnVersion, createdAt: now(),
                                      selection: selectionInfo, tables: tables, artifacts: artifacts)
        try manifest.json().write(to: directory.appendingPathComponent("manifest.json"), options: .atomic)
        return manifest
    }

    static func optional(_ text: String?) -> ParquetValue { text.map(ParquetValue.string) ?? .null }

    /// The audit log from its first event to the head as the export finds it, oldest first,
    /// a page at a time; events appended meanwhile belong to the next export.
    func writeAuditLog(append: (ExportFormat.Table, [ParquetValue]) throws -> Void) async throws {
        let head = try await store.auditHead().seq
        let pageSize = 10_000
        var after: Int64 = 0
        while after < head {
            let page = try await store.searchAuditEvents(AuditQuery(afterSeq: after, newestFirst: false, limit: pageSize), beforeSeq: head + 1)
                .prefix(pageSize)
            guard let last = page.last else { break }
            for e in page {
                try append(ExportFormat.auditEvents, [
                    .int64(e.seq), .int64(e.time), Self.optional(e.actor), .boolean(e.isAuthenticated), .string(e.clientAddress),
                    .string(e.requestID), .string(e.action), .string(e.target), .string(e.digest), .string(e.details),
                    .string(e.previousHash), .string(e.hash),
                ])
            }
            after = last.seq
        }
    }

    func selectExperiments(_ selection: ExportSelection) async throws -> [Int64] {
        let all = try await store.exportExperimentIDs()
        guard !selection.experiments.isEmpty else { return all }
        var ids: [Int64] = []
        for wanted in selection.experiments {
            if let experiment = try await store.fetchExperiment(name: wanted), let id = Int64(experiment.experimentID) {
                ids.append(id)
            } else if let id = Int64(wanted), all.contains(id) {
                ids.append(id)
            } else {
                throw CairnError.notFound("No experiment named '\(wanted)' (or with that id) in this store. List them with `cairn experiments`, or leave out --experiment to export them all.")
            }
        }
        return Array(Set(ids)).sorted()
    }

    /// The ids of the runs (deleted ones included) of `experimentIDs` the filter selects.
    func filteredRuns(_ filter: String, experimentIDs: [Int64]) async throws -> Set<String> {
        let expression = try SearchFilterParser.parse(filter, for: .runs)
        var ids = Set<String>()
        var offset = 0
        while true {
            let page = try await store.searchRuns(RunSearch(experimentIDs: experimentIDs, filter: expression, orderBy: [], viewType: .all,
                                                            maxResults: 1000, offset: offset))
            ids.formUnion(page.items.map(\.info.runID))
            offset += page.items.count
            if !page.hasMore || page.items.isEmpty { return ids }
        }
    }

    func writeRun(_ run: Run, experimentID: Int64, append: (ExportFormat.Table, [ParquetValue]) throws -> Void,
                  datasets: inout [[ParquetValue]: [ParquetValue]]) async throws {
        let info = run.info
        let id = ParquetValue.string(info.runID)
        try append(ExportFormat.runs, [id, .int64(experimentID), .string(info.runName), .string(info.userID), .string(info.status.rawValue),
                                       info.startTime.map(ParquetValue.int64) ?? .null, info.endTime.map(ParquetValue.int64) ?? .null,
                                       .string(info.artifactURI), .string(info.lifecycleStage.rawValue)])
        for param in run.params.sorted(by: { $0.key < $1.key }) { try append(ExportFormat.params, [id, .string(param.key), .string(param.value)]) }
        for tag in run.tags.sorted(by: { $0.key < $1.key }) { try append(ExportFormat.tags, [id, .string(tag.key), .string(tag.value)]) }
        for key in Set(run.metrics.map(\.key)).sorted() {
            for point in try await store.metricHistory(runID: info.runID, key: key) {
                try append(ExportFormat.metrics, [id, .string(key), .int64(point.step), .int64(point.timestamp), .double(point.value)])
            }
        }
        for (position, input) in run.inputs.enumerated() {
            let d = input.dataset
            try append(ExportFormat.datasetInputs, [id, .int64(Int64(position)), .string(d.name), .string(d.digest)])
            for tag in input.tags.sorted(by: { $0.key < $1.key }) {
                try append(ExportFormat.datasetInputTags, [id, .string(d.name), .string(d.digest), .string(tag.key), .string(tag.value)])
            }
            datasets[[.int64(experimentID), .string(d.name), .string(d.digest)]] = [.string(d.sourceType), .string(d.source), Self.optional(d.schema), Self.optional(d.profile)]
        }
        for modelID in Set(run.modelInputs).sorted() { try append(ExportFormat.runModelInputs, [id, .string(modelID)]) }
        for output in Set(run.modelOutputs).sorted(by: { ($0.modelID, $0.step) < ($1.modelID, $1.step) }) {
            try append(ExportFormat.runModelOutputs, [id, .string(output.modelID), .int64(output.step)])
        }
    }

    func writeTrace(_ trace: ExportedTrace, append: (ExportFormat.Table, [ParquetValue]) throws -> Void) throws {
        let info = trace.info
        let id = ParquetValue.string(info.traceID)
        try append(ExportFormat.traces, [
            id, .int64(Int64(info.experimentID) ?? 0), .int64(info.requestTime), info.executionDuration.map(ParquetValue.int64) ?? .null,
            .string(info.state.rawValue), Self.optional(info.requestPreview), Self.optional(info.responsePreview), Self.optional(info.clientRequestID),
        ])
        for tag in info.tags { try append(ExportFormat.traceTags, [id, .string(tag.key), .string(tag.value)]) }
        for entry in info.metadata { try append(ExportFormat.traceMetadata, [id, .string(entry.key), .string(entry.value)]) }
        for (position, span) in trace.spans.enumerated() { try append(ExportFormat.traceSpans, [id, .int64(Int64(position)), .string(span)]) }
        for a in info.assessments {
            try append(ExportFormat.traceAssessments, [id, .string(a.assessmentID), .string(a.name), .int64(a.createTime), .int64(a.lastUpdateTime), .string(a.body.text)])
        }
        for run in trace.runIDs { try append(ExportFormat.traceRunLinks, [id, .string(run)]) }
    }

    func writeEvaluationDataset(_ dataset: EvaluationDataset, records: [DatasetRecord], append: (ExportFormat.Table, [ParquetValue]) throws -> Void) throws {
        let id = ParquetValue.string(dataset.datasetID)
        try append(ExportFormat.evaluationDatasets, [
            id, .string(dataset.name), Self.optional(dataset.schema), Self.optional(dataset.profile), .string(dataset.digest),
            .int64(dataset.createdTime), .int64(dataset.lastUpdateTime), Self.optional(dataset.createdBy), Self.optional(dataset.lastUpdatedBy),
        ])
        for tag in dataset.tags { try append(ExportFormat.evaluationDatasetTags, [id, .string(tag.key), .string(tag.value)]) }
        for experiment in dataset.experimentIDs { try append(ExportFormat.evaluationDatasetExperiments, [id, .int64(Int64(experiment) ?? 0)]) }
        for record in records {
            try append(ExportFormat.evaluationDatasetRecords, [id, .string(record.recordID), .string(record.inputKey), .string(record.body.text),
                                                              .int64(record.createdTime), .int64(record.lastUpdateTime)])
        }
    }

    func writeLoggedModel(_ model: LoggedModel, experimentID: Int64, append: (ExportFormat.Table, [ParquetValue]) throws -> Void) throws {
        let id = ParquetValue.string(model.modelID)
        try append(ExportFormat.loggedModels, [
            id, .int64(experimentID), .string(model.name), .string(model.artifactURI), .int64(model.creationTimestamp),
            .int64(model.lastUpdatedTimestamp), .string(model.status.rawValue), Self.optional(model.statusMessage), Self.optional(model.creatorID),
            Self.optional(model.modelType), Self.optional(model.sourceRunID), .string(model.lifecycleStage.rawValue),
        ])
        for tag in model.tags.sorted(by: { $0.key < $1.key }) { try append(ExportFormat.loggedModelTags, [id, .string(tag.key), .string(tag.value)]) }
        for param in model.params.sorted(by: { $0.key < $1.key }) { try append(ExportFormat.loggedModelParams, [id, .string(param.key), .string(param.value)]) }
        let metrics = model.metrics.map { m -> [ParquetValue] in
            [id, .string(m.key), .double(m.value), .int64(m.timestamp), .int64(m.step), Self.optional(m.runID), Self.optional(m.datasetName), Self.optional(m.datasetDigest)]
        }
        for row in metrics.sorted(by: { Self.rowOrder($0, $1) }) { try append(ExportFormat.loggedModelMetrics, row) }
    }

    /// A total order on rows that depends on their values only (doubles by their bits).
    static func rowOrder(_ a: [ParquetValue], _ b: [ParquetValue]) -> Bool {
        for (x, y) in zip(a, b) where x != y {
            switch (x, y) {
            case (.int64(let p), .int64(let q)): return p < q
            case (.double(let p), .double(let q)): return p.bitPattern < q.bitPattern
            case (.string(let p), .string(let q)): return p.utf8.lexicographicallyPrecedes(q.utf8)
            case (.null, _): return true
            case (_, .null): return false
            default: return x.description < y.description
            }
        }
        return false
    }

    /// Copies the artifact files below `roots` from the blob store, each re-hashed as it is
    /// written and checked against its digest; a damaged or missing blob stops the export.
    func writeArtifacts(roots: [String], into directory: URL) async throws -> [ExportedArtifact] {
        var entries: [String: ArtifactEntry] = [:]
        for root in Set(roots) {
            for entry in try await store.listArtifacts(under: root) { entries[entry.path] = entry }
        }
        var result: [ExportedArtifact] = []
        for path in entries.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            let entry = entries[path]!
            let relative = try ArtifactPath(validating: path).string
            let url = directory.appendingPathComponent("artifacts").appendingPathComponent(relative)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            guard let content = try await blobs.read(entry.digest, range: nil) else {
                throw CairnError(.invalidState, "The artifact '\(path)' has no content in the blob store (sha256 \(entry.digest)); nothing more was exported. Run `cairn verify` to see what is missing.")
            }
            guard FileManager.default.createFile(atPath: url.path, contents: nil), let handle = try? FileHandle(forWritingTo: url) else {
                throw CairnError(.invalidState, "Cannot write '\(url.path)'.")
            }
            var hasher = SHA256()
            var size: Int64 = 0
            do {
                for try await chunk in content.bytes {
                    let bytes = Array(chunk.readableBytesView)
                    hasher.update(data: bytes)
                    size += Int64(bytes.count)
                    try handle.write(contentsOf: bytes)
                }
                try handle.close()
            } catch {
                try? handle.close()
                throw error
            }
            let digest = Self.hex(hasher.finalize())
            guard digest == entry.digest, size == entry.size else {
                throw CairnError(.invalidState, "The artifact '\(path)' is damaged in the blob store: its content hashes to \(digest) (\(size) bytes), the manifest says \(entry.digest) (\(entry.size) bytes). Nothing more was exported; run `cairn verify`.")
            }
            result.append(ExportedArtifact(path: relative, size: size, sha256: digest))
        }
        return result
    }

    static func hex(_ digest: some Sequence<UInt8>) -> String {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}

/// One table being written: rows are buffered up to a row group, then written to the file and
/// hashed; `close` writes the footer and answers the table's manifest entry.
final class TableFile {
    let table: ExportFormat.Table
    let handle: FileHandle
    var writer: ParquetWriter
    var hasher = SHA256()
    var buffer: [[ParquetValue]] = []
    var rows = 0
    var bytes: Int64 = 0
    let rowGroupSize: Int

    init(_ table: ExportFormat.Table, in directory: URL, rowGroupSize: Int) throws {
        self.table = table
        self.rowGroupSize = rowGroupSize
        let url = directory.appendingPathComponent(table.file)
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw CairnError(.invalidState, "Cannot create '\(url.path)'.")
        }
        handle = try FileHandle(forWritingTo: url)
        writer = ParquetWriter(columns: table.columns, metadata: [("cairn.export.table", table.name), ("cairn.export.format_version", String(ExportFormat.version))])
    }

    func append(_ row: [ParquetValue]) throws {
        buffer.append(row)
        rows += 1
        if buffer.count >= rowGroupSize { try flush() }
    }

    private func flush() throws {
        try emit(try writer.writeRowGroup(buffer))
        buffer = []
    }

    private func emit(_ chunk: [UInt8]) throws {
        hasher.update(data: chunk)
        bytes += Int64(chunk.count)
        try handle.write(contentsOf: chunk)
    }

    func close() throws -> ExportedTable {
        if !buffer.isEmpty { try flush() }
        try emit(writer.finish())
        try handle.synchronize()
        try handle.close()
        return ExportedTable(name: table.name, file: table.file, rows: rows, bytes: bytes, sha256: ExportService.hex(hasher.finalize()))
    }
}
