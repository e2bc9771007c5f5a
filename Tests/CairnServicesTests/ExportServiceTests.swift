import CairnArtifacts
import CairnCore
import CairnServices
import CairnTestSupport
import Foundation
import Testing
@testable import CairnStore

private func exporter(_ s: Stack, rowGroupSize: Int = 100_000) -> ExportService {
    ExportService(store: s.store, blobs: s.blobs, cairnVersion: "test", now: { 1_700_000_000_000 }, rowGroupSize: rowGroupSize)
}

private func importer(_ s: Stack) -> ExportImportService {
    ExportImportService(store: s.store, blobs: s.blobs, now: { 1_700_000_000_000 })
}

/// A filled SQLite store (changed by `prepare` after filling) exported to `out`, and an empty
/// SQLite store to import it into.
private func exportedSourceAndTarget(_ directory: TemporaryDirectory, prepare: (Stack) async throws -> Void = { _ in }) async throws -> (Stack, Stack) {
    let source = try Stack(store: try SQLiteTrackingStore(path: directory.file("cairn.sqlite")), blobs: directory.file("artifacts"))
    try await fill(source)
    try await prepare(source)
    _ = try await exporter(source).export(ExportSelection(), to: URL(fileURLWithPath: directory.file("out")))
    let target = try Stack(store: try SQLiteTrackingStore(path: directory.file("target.sqlite")), blobs: directory.file("target-artifacts"))
    return (source, target)
}

private func readTable(_ directory: TemporaryDirectory, _ dir: String, _ table: ExportFormat.Table) throws -> [[ParquetValue]] {
    let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory.file("\(dir)/\(table.file)"))))
    return try ParquetReader(bytes: bytes).allRows()
}

/// Two traces in experiment 1 (one with spans holding typed attributes and an event, assessments
/// and a run link; one with a summary only) and an evaluation dataset with tags and records.
private func fillTraces(_ s: Stack) async throws {
    var span = OTLPSpan()
    span.traceID = Array(repeating: 9, count: 16)
    span.spanID = Array("root0001".utf8)
    span.name = "app ✓"
    span.startTimeUnixNano = 1_000_000_123
    span.endTimeUnixNano = 2_000_000_456
    span.statusCode = 1
    span.attributes = [OTLPKeyValue(key: "mlflow.spanInputs", value: .string("{\"q\": \"ünï\"}")),
                       OTLPKeyValue(key: "score", value: .double(0.1 + 0.2)), OTLPKeyValue(key: "n", value: .int(Int64.max))]
    var child = span
    child.spanID = Array("child001".utf8)
    child.parentSpanID = span.spanID
    child.name = "llm"
    try await s.store.logSpans(experimentID: 1, [TraceSpanBatch(traceID: "tr-a", spans: [span.json, child.json])],
                               newTraceTags: { [Tag("mlflow.artifactLocation", "mlflow-artifacts:/1/traces/\($0)/artifacts")] })
    try await s.store.setTraceTag(id: "tr-a", tag: Tag("reviewed", "yes"))
    let run = try await s.store.exportRunIDs(experimentID: 1)[0]
    try await s.store.linkTraces(ids: ["tr-a"], runID: run)
    let body = JSONValue.object([("assessment_id", .string("a-1")), ("assessment_name", .string("correct")),
                                 ("feedback", .object([("value", .number("4.50"))])), ("valid", .bool(true))])
    try await s.store.createAssessment(Assessment(assessmentID: "a-1", traceID: "tr-a", name: "correct", createTime: 5, lastUpdateTime: 6, body: body))
    _ = try await s.store.startTrace(TraceInfo(traceID: "tr-b", experimentID: "1", requestTime: 77, executionDuration: nil, state: .inProgress,
                                               requestPreview: "{\"q\": 1}", clientRequestID: "c-1", metadata: [Tag(TraceKey.sourceRun, run)],
                                               tags: [Tag(TraceKey.traceName, "b")]))
    let dataset = EvaluationDataset(datasetID: "d-1", name: "golden", tags: [Tag("z", "last"), Tag("a", "first")], schema: "{\"inputs\": {}}",
                                    profile: nil, digest: "abc", createdTime: 10, lastUpdateTime: 11, createdBy: "ada", lastUpdatedBy: nil,
                                    experimentIDs: ["1"])
    try await s.store.createEvaluationDataset(dataset)
    try await s.store.saveEvaluationDatasetRecords([
        DatasetRecord(recordID: "r-2", inputKey: "{\"q\":\"b\"}", body: .object([("inputs", .object([("q", .string("b"))]))]), createdTime: 12, lastUpdateTime: 12),
        DatasetRecord(recordID: "r-1", inputKey: "{\"q\":\"a\"}", body: .object([("inputs", .object([("q", .string("a"))])), ("expectations", .object([("x", .number("1.0"))]))]),
                      createdTime: 13, lastUpdateTime: 14),
    ], dataset: dataset)
}

@Suite("cairn export and cairn import cairn")
struct ExportServiceTests {
    @Test("Export, import into a new store, export again: the same tables byte for byte and the same artifacts; the audit log is taken over (numbers and hashes kept, verified, the head signed with the target's key) and followed by the import's own events; a second import changes nothing",
          arguments: StoreBackend.allCases)
    func roundTripIsExact(backend: StoreBackend) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await withStore(backend) { sourceStore in
            let source = try Stack(store: sourceStore, blobs: directory.file("source-artifacts"))
            try await fill(source)
            try await fillTraces(source)
            let spansBefore = try await sourceStore.exportTraces(ids: ["tr-a"]).first?.spans
            let sourceEvents = try await sourceStore.searchAuditEvents(AuditQuery(newestFirst: false, limit: 1000), beforeSeq: nil)
            let first = try await exporter(source, rowGroupSize: 7).export(ExportSelection(), to: URL(fileURLWithPath: directory.file("first")))
            #expect(first.tables.count == ExportFormat.tables.count)
            #expect(first.counts["runs"] == 4 && first.counts["experiments"] == 3 && first.counts["logged_models"] == 1)
            #expect(first.counts["model_versions"] == 2 && first.counts["registered_model_aliases"] == 1)
            #expect((first.counts["metrics"] ?? 0) > 100 && (first.counts["registry_events"] ?? 0) >= 4)
            #expect(first.artifacts.count == 4)
            #expect(first.counts["traces"] == 2 && first.counts["trace_spans"] == 2 && first.counts["trace_assessments"] == 1)
            #expect(first.counts["trace_run_links"] == 1 && first.counts["evaluation_datasets"] == 1 && first.counts["evaluation_dataset_records"] == 2)
            #expect(sourceEvents.count > 10 && first.counts["audit_events"] == Int64(sourceEvents.count))

            try await withStore(backend) { targetStore in
                let key = AuditKey(bytes: Array(repeating: 7, count: 32))
                targetStore.useAuditKey(key)
                let target = try Stack(store: targetStore, blobs: directory.file("target-artifacts"))
                let report = try await importer(target).importExport(from: URL(fileURLWithPath: directory.file("first")))
                #expect(report.conflicts.isEmpty && report.unrepresentable.isEmpty, "\(report.conflicts) \(report.unrepresentable)")
                #expect(report.created[.run] == 4 && report.created[.loggedModel] == 1 && report.created[.registeredModel] == 1)
                #expect(report.created[.auditEvent] == sourceEvents.count)
                #expect(report.writtenFiles == 4)
                #expect(report.created[.trace] == 2 && report.created[.evaluationDataset] == 1)
                // Spans come back bit for bit, and the span filters find them.
                #expect(try await targetStore.exportTraces(ids: ["tr-a"]).first?.spans == spansBefore)
                #expect(try await targetStore.fetchTraces(ids: ["tr-a"], withSpans: true).first?.spans
                        == (try await sourceStore.fetchTraces(ids: ["tr-a"], withSpans: true).first?.spans))
                let found = try await targetStore.searchTraces(TraceSearch(experimentIDs: [1], clauses: try TraceFilterParser.parse("span.name = 'llm'"),
                                                                           orderBy: [], maxResults: 10, offset: 0))
                #expect(found.items.map(\.traceID) == ["tr-a"])
                #expect(try await targetStore.evaluationDatasetRecords(id: "d-1").map(\.recordID) == ["r-2", "r-1"])

                let events = try await targetStore.searchAuditEvents(AuditQuery(newestFirst: false, limit: 1000), beforeSeq: nil)
                #expect(Array(events.prefix(sourceEvents.count)) == sourceEvents)
                let own = events.dropFirst(sourceEvents.count)
                #expect(own.first?.action == "import.audit_log" && own.first?.previousHash == sourceEvents.last?.hash)
                #expect(own.contains { $0.action == "import.run" } && own.allSatisfy { $0.details.contains("import cairn") })
                let verification = try await targetStore.verifyAuditChain(key: key, pageSize: 7, maxProblems: 5)
                #expect(verification.isIntact && verification.headSignatureValid == true, "\(verification.problems)")
                #expect(verification.events == Int64(events.count))

                let second = try await exporter(target, rowGroupSize: 7).export(ExportSelection(), to: URL(fileURLWithPath: directory.file("second")))
                #expect(second.tables.filter { $0.name != "audit_events" } == first.tables.filter { $0.name != "audit_events" })
                #expect(second.artifacts == first.artifacts)
                let sourceLog = try readTable(directory, "first", ExportFormat.auditEvents)
                let targetLog = try readTable(directory, "second", ExportFormat.auditEvents)
                #expect(targetLog.count == events.count && Array(targetLog.prefix(sourceLog.count)) == sourceLog)

                let again = try await importer(target).importExport(from: URL(fileURLWithPath: directory.file("first")))
                #expect(again.changedNothing && again.conflicts.isEmpty && again.unrepresentable.isEmpty)
                #expect(again.presentFiles == 4 && again.unchanged[.auditEvent] == sourceEvents.count)
                #expect(try await targetStore.auditHead().seq == Int64(events.count))
            }
        }
    }

    @Test("A store with an audit log of its own keeps it: the export's log is listed as not imported, the rest is imported, the chain stays intact")
    func auditLogOfAnotherHistoryIsLeftOut() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (s, target) = try await exportedSourceAndTarget(directory)
        try await target.tracking.setExperimentTag(id: "0", tag: Tag("here", "first"))
        let report = try await importer(target).importExport(from: URL(fileURLWithPath: directory.file("out")))
        #expect(report.unrepresentable.count == 1)
        #expect(report.unrepresentable.first?.reason.contains("another history") == true)
        #expect(report.created[.run] == 4 && report.created[.auditEvent] == nil)
        let events = try await target.store.searchAuditEvents(AuditQuery(newestFirst: false, limit: 1000), beforeSeq: nil)
        #expect(events.first?.action == "experiment.tag.set")
        #expect(try await target.store.verifyAuditChain(key: nil, pageSize: 100, maxProblems: 5).problems.isEmpty)
        // An export of a part holds no audit events: a part of a chain cannot be verified.
        let part = try await exporter(s).export(ExportSelection(experiments: ["copy-me"]), to: URL(fileURLWithPath: directory.file("part")))
        #expect(part.counts["audit_events"] == 0)
    }

    @Test("An export of a store whose audit log was edited (its trigger dropped) is imported without the log, saying why")
    func editedAuditLogIsNotTakenOver() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (_, target) = try await exportedSourceAndTarget(directory) { s in
            try await s.store.writeUnaudited { db in
                try db.execute("DROP TRIGGER audit_events_no_update")
                try db.execute("UPDATE audit_events SET action = 'run.delete' WHERE seq = 3")
            }
        }
        let report = try await importer(target).importExport(from: URL(fileURLWithPath: directory.file("out")))
        #expect(report.unrepresentable.map(\.reason).contains { $0.contains("does not verify") && $0.contains("event 3") })
        #expect(report.created[.run] == 4 && report.created[.auditEvent] == nil)
        #expect(try await target.store.searchAuditEvents(AuditQuery(newestFirst: false, limit: 1), beforeSeq: nil).first?.action.hasPrefix("import.experiment") == true)
    }

    @Test("The metric table holds every point as the store answers it, NaN and infinities bit for bit, in several row groups")
    func metricRowsAreTheHistories() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let s = try Stack(store: try SQLiteTrackingStore(path: directory.file("cairn.sqlite")), blobs: directory.file("artifacts"))
        try await fill(s)
        _ = try await exporter(s, rowGroupSize: 10).export(ExportSelection(), to: URL(fileURLWithPath: directory.file("out")))
        let rows = try readTable(directory, "out", ExportFormat.metrics)
        var expected: [[ParquetValue]] = []
        for experiment in try await s.store.exportExperimentIDs() {
            for run in try await s.store.exportRuns(ids: try await s.store.exportRunIDs(experimentID: experiment)) {
                for key in Set(run.metrics.map(\.key)).sorted() {
                    for p in try await s.store.metricHistory(runID: run.info.runID, key: key) {
                        expected.append([.string(run.info.runID), .string(key), .int64(p.step), .int64(p.timestamp), .double(p.value)])
                    }
                }
            }
        }
        #expect(rows == expected)
        #expect(rows.contains { $0[4].double?.isNaN == true })
        #expect(rows.contains { $0[4] == .double(-0.0) } && rows.contains { $0[4] == .double(-.infinity) })
    }

    @Test("An export of format version 1 (no trace or evaluation dataset tables) still imports")
    func versionOneImports() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let s = try Stack(store: try SQLiteTrackingStore(path: directory.file("cairn.sqlite")), blobs: directory.file("artifacts"))
        try await fill(s)
        _ = try await exporter(s).export(ExportSelection(), to: URL(fileURLWithPath: directory.file("out")))
        // Make it what Cairn wrote before version 2: the same manifest without the newer tables and their files.
        let manifestURL = URL(fileURLWithPath: directory.file("out/manifest.json"))
        var manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: manifestURL)) as? [String: Any])
        let newer = Set(ExportFormat.tables.filter { $0.since > 1 }.map(\.name))
        #expect(newer.contains("traces") && newer.contains("evaluation_dataset_records"))
        manifest["format_version"] = 1
        manifest["tables"] = (manifest["tables"] as? [[String: Any]] ?? []).filter { !newer.contains($0["name"] as? String ?? "") }
        try JSONSerialization.data(withJSONObject: manifest).write(to: manifestURL)
        for table in ExportFormat.tables where table.since > 1 { try FileManager.default.removeItem(atPath: directory.file("out/\(table.file)")) }

        let target = try Stack(store: try SQLiteTrackingStore(path: directory.file("target.sqlite")), blobs: directory.file("target-artifacts"))
        let report = try await importer(target).importExport(from: URL(fileURLWithPath: directory.file("out")))
        #expect(report.conflicts.isEmpty && report.created[.run] == 4 && report.created[.trace] == nil)
    }

    @Test("A damaged export is refused before anything is written, naming the file")
    func damagedExportIsRefused() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let s = try Stack(store: try SQLiteTrackingStore(path: directory.file("cairn.sqlite")), blobs: directory.file("artifacts"))
        try await fill(s)
        _ = try await exporter(s).export(ExportSelection(), to: URL(fileURLWithPath: directory.file("out")))
        let file = URL(fileURLWithPath: directory.file("out/tables/params.parquet"))
        var bytes = try [UInt8](Data(contentsOf: file))
        bytes[10] ^= 0xFF
        try Data(bytes).write(to: file)

        let target = try Stack(store: try SQLiteTrackingStore(path: directory.file("target.sqlite")), blobs: directory.file("target-artifacts"))
        await #expect {
            _ = try await importer(target).importExport(from: URL(fileURLWithPath: directory.file("out")))
        } throws: { error in
            let message = (error as? CairnError)?.message ?? ""
            return message.contains("damaged") && message.contains("tables/params.parquet") && message.contains("SHA-256")
        }
        #expect(try await target.store.exportRunIDs(experimentID: 1).isEmpty)
        #expect(try await target.store.exportExperimentIDs() == [0])
    }

    @Test("A folder that is not empty is refused unless forced; a run filter exports the runs it selects")
    func selectionAndFolder() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let s = try Stack(store: try SQLiteTrackingStore(path: directory.file("cairn.sqlite")), blobs: directory.file("artifacts"))
        try await fill(s)
        let out = URL(fileURLWithPath: directory.file("out"))
        _ = try await exporter(s).export(ExportSelection(), to: out)
        await #expect(throws: CairnError.self) { _ = try await exporter(s).export(ExportSelection(), to: out) }
        let filtered = try await exporter(s).export(ExportSelection(experiments: ["copy-me"], runFilter: "params.seed = '1'"), to: out, force: true)
        #expect(filtered.counts["experiments"] == 1 && filtered.counts["runs"] == 1)
        let runs = try readTable(directory, "out", ExportFormat.runs)
        #expect(runs.count == 1 && runs[0][2] == .string("run-1"))
        #expect(filtered.counts["params"] == 2)
        // A run filter alone takes only the experiments where it selects runs.
        let onlyFilter = try await exporter(s).export(ExportSelection(runFilter: "params.seed = '1'"), to: out, force: true)
        #expect(onlyFilter.counts["experiments"] == 1 && onlyFilter.counts["runs"] == 1)
    }

    @Test("README.md documents every table and column of the export format with its type")
    func readmeDocumentsTheFormat() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        func typeName(_ column: ParquetColumn) -> String {
            let base: String
            switch column.kind {
            case .string: base = "string"
            case .int64: base = "int64"
            case .timestampMillis: base = "timestamp[ms, tz=UTC]"
            case .double: base = "double"
            case .boolean: base = "bool"
            }
            return column.isOptional ? base + ", nullable" : base
        }
        for table in ExportFormat.tables {
            guard let start = readme.range(of: "### `\(table.file)`") else {
                Issue.record("README.md has no section for \(table.file)")
                continue
            }
            let section = readme[start.upperBound...].prefix { _ in true }
            let end = [section.range(of: "\n### ")?.lowerBound, section.range(of: "\n## ")?.lowerBound].compactMap { $0 }.min() ?? section.endIndex
            let rows = section[..<end].split(separator: "\n").filter { $0.hasPrefix("| `") }
            #expect(rows.count == table.columns.count, "\(table.name)")
            for (row, column) in zip(rows, table.columns) {
                #expect(row.hasPrefix("| `\(column.name)` | \(typeName(column)) | "), "\(table.name): \(row)")
            }
        }
    }

    @Test("An entity the target holds with other content is reported as a conflict and left as it is; the rest is imported")
    func conflictsAreReportedNeverOverwritten() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (_, target) = try await exportedSourceAndTarget(directory)
        _ = try await importer(target).importExport(from: URL(fileURLWithPath: directory.file("out")))
        var runID = ""
        for id in try await target.store.exportRunIDs(experimentID: 1) where try await target.store.fetchRunInfo(id: id).lifecycleStage == .active {
            runID = id
        }
        _ = try await target.tracking.updateRun(id: runID, status: nil, endTime: nil, runName: "renamed here")

        let report = try await importer(target).importExport(from: URL(fileURLWithPath: directory.file("out")))
        #expect(report.conflicts.count == 1)
        #expect(report.conflicts.first?.what.contains(runID) == true)
        #expect(report.conflicts.first?.differences.contains { $0.contains("renamed here") } == true)
        #expect(report.unchanged[.run] == 3 && report.created.values.allSatisfy { $0 == 0 })
        #expect(try await target.store.fetchRunInfo(id: runID).runName == "renamed here")
    }
}
