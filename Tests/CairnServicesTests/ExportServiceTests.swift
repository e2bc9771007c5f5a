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

private func readTable(_ directory: TemporaryDirectory, _ dir: String, _ table: ExportFormat.Table) throws -> [[ParquetValue]] {
    let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory.file("\(dir)/\(table.file)"))))
    return try ParquetReader(bytes: bytes).allRows()
}

@Suite("cairn export and cairn import cairn")
struct ExportServiceTests {
    @Test("Export, import into a new store, export again: the same tables byte for byte and the same artifacts; a second import changes nothing",
          arguments: StoreBackend.allCases)
    func roundTripIsExact(backend: StoreBackend) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await withStore(backend) { sourceStore in
            let source = try Stack(store: sourceStore, blobs: directory.file("source-artifacts"))
            try await fill(source)
            let first = try await exporter(source, rowGroupSize: 7).export(ExportSelection(), to: URL(fileURLWithPath: directory.file("first")))
            #expect(first.tables.count == ExportFormat.tables.count)
            #expect(first.counts["runs"] == 4 && first.counts["experiments"] == 3 && first.counts["logged_models"] == 1)
            #expect(first.counts["model_versions"] == 2 && first.counts["registered_model_aliases"] == 1)
            #expect((first.counts["metrics"] ?? 0) > 100 && (first.counts["registry_events"] ?? 0) >= 4)
            #expect(first.artifacts.count == 4)

            try await withStore(backend) { targetStore in
                let target = try Stack(store: targetStore, blobs: directory.file("target-artifacts"))
                let report = try await importer(target).importExport(from: URL(fileURLWithPath: directory.file("first")))
                #expect(report.conflicts.isEmpty, "\(report.conflicts)")
                #expect(report.created[.run] == 4 && report.created[.loggedModel] == 1 && report.created[.registeredModel] == 1)
                #expect(report.writtenFiles == 4)

                let second = try await exporter(target, rowGroupSize: 7).export(ExportSelection(), to: URL(fileURLWithPath: directory.file("second")))
                #expect(second.tables == first.tables)
                #expect(second.artifacts == first.artifacts)

                let again = try await importer(target).importExport(from: URL(fileURLWithPath: directory.file("first")))
                #expect(again.changedNothing && again.conflicts.isEmpty)
                #expect(again.presentFiles == 4)
            }
        }
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
        let s = try Stack(store: try SQLiteTrackingStore(path: directory.file("cairn.sqlite")), blobs: directory.file("artifacts"))
        try await fill(s)
        _ = try await exporter(s).export(ExportSelection(), to: URL(fileURLWithPath: directory.file("out")))
        let target = try Stack(store: try SQLiteTrackingStore(path: directory.file("target.sqlite")), blobs: directory.file("target-artifacts"))
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
