import CairnCore
import CairnTestSupport
import Foundation
import GRDB
import Testing
@testable import CairnStore

private func newRun(_ store: SQLStore) async throws -> String {
    let id = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    let info = RunInfo(runID: id, experimentID: "0", runName: "r", userID: "u", status: .running,
                       startTime: 1000, endTime: nil, artifactURI: "mlflow-artifacts:/0/\(id)/artifacts", lifecycleStage: .active)
    _ = try await store.createRun(NewRun(info: info, tags: [Tag(SystemTag.runName, "r")]))
    return id
}

/// Flips one bit of the first occurrence of `needle` in the file at `path`.
private func flipBit(in path: String, of needle: [UInt8], bit: UInt8 = 0x20) throws {
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    guard let start = (0...(bytes.count - needle.count)).first(where: { bytes[$0..<($0 + needle.count)].elementsEqual(needle) }) else {
        Issue.record("the bytes to damage are not in the file")
        return
    }
    bytes[start + needle.count / 2] ^= bit
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

@Suite("Integrity: damage on disk is detected, never served")
struct IntegrityTests {
    @Test("A flipped bit in a tag value on disk is reported by the integrity check with the run it belongs to")
    func flippedTagBit() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("cairn.sqlite")
        var store: SQLiteTrackingStore? = try SQLiteTrackingStore(path: path)
        let runID = try await newRun(store!)
        try await store!.logRunWrites(runID: runID, RunWrites(params: [Param("lr", "0.01")], tags: [Tag("approval", "alice-approved")]))
        #expect(try await store!.checkIntegrity().isHealthy)
        try store!.close()
        store = nil

        try flipBit(in: path, of: Array("alice-approved".utf8))
        let reopened = try SQLiteTrackingStore(path: path)
        let report = try await reopened.checkIntegrity()
        #expect(!report.isHealthy)
        let row = try #require(report.damagedRows.first { $0.table == "run_tags" })
        #expect(row.owner == "run \(runID)")
        #expect(row.key.contains("approval"))
    }

    @Test("A flipped bit inside a metric segment fails the read with the run and key named, and the check lists the series")
    func flippedSegmentBit() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("cairn.sqlite")
        var store: SQLiteTrackingStore? = try SQLiteTrackingStore(path: path)
        let runID = try await newRun(store!)
        let metrics = (0..<40).map { Metric(key: "loss", value: 1.0 / Double($0 + 3), timestamp: 5000 + Int64($0), step: Int64($0)) }
        try await store!.logRunWrites(runID: runID, RunWrites(metrics: metrics))
        let points = metrics.map { MetricPoint(step: $0.step, timestamp: $0.timestamp, value: $0.value) }
        #expect(try await store!.metricHistory(runID: runID, key: "loss") == points)
        try store!.close()
        store = nil

        // The segment's bytes are exactly the codec's encoding of the points: damage one of them.
        try flipBit(in: path, of: Array(MetricSegmentCodec.encode(points).dropFirst(MetricSegmentCodec.headerSize)), bit: 0x04)
        let reopened = try SQLiteTrackingStore(path: path)
        await #expect {
            _ = try await reopened.metricHistory(runID: runID, key: "loss")
        } throws: { error in
            let message = (error as? CairnError)?.message ?? ""
            return message.contains(runID) && message.contains("'loss'") && message.contains("cairn verify")
        }
        await #expect(throws: CairnError.self) {
            _ = try await reopened.sampledMetricHistory(runIDs: [runID], key: "loss", startStep: nil, endStep: nil, maxPoints: 10)
        }
        let report = try await reopened.checkIntegrity()
        let series = try #require(report.damagedSeries.first)
        #expect(series.runID == runID && series.key == "loss")
        #expect(series.detail.contains("checksum"))
    }

    @Test("The integrity check recomputes each series' summary from its points and finds a summary that disagrees", arguments: StoreBackend.allCases)
    func summaryMismatch(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let runID = try await newRun(store)
            try await store.logRunWrites(runID: runID, RunWrites(metrics: [Metric(key: "acc", value: 0.5, timestamp: 1, step: 1),
                                                                            Metric(key: "acc", value: .nan, timestamp: 2, step: 2),
                                                                            Metric(key: "acc", value: -.infinity, timestamp: 3, step: 0)]))
            try await store.logRunWrites(runID: runID, RunWrites(metrics: [Metric(key: "acc", value: 0.75, timestamp: 4, step: 3)]))
            #expect(try await store.checkIntegrity().isHealthy)
            _ = try await store.writeUnaudited { db in try db.execute("UPDATE latest_metrics SET max_value = 0.9") }
            let report = try await store.checkIntegrity()
            #expect(report.damagedSeries.map(\.key) == ["acc"])
        }
    }

    @Test("Migration 0006 gives version-1 segments their checksum, and every existing row its check")
    func migratesOldSegments() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("cairn.sqlite")
        let points = (0..<10).map { MetricPoint(step: Int64($0), timestamp: 100 + Int64($0), value: Double($0) * 0.5) }
        do {
            // A database as the release before 0006 left it, holding a version-1 segment.
            var configuration = Configuration()
            configuration.prepareDatabase { db in db.add(function: SQLiteIntegrity.rowCheckFunction) }
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            try SQLiteMigrations.makeMigrator().migrate(queue, upTo: "0005_search_indexes")
            let version1 = [UInt8(1)] + MetricSegmentCodec.encodeVersion2(points).dropFirst(MetricSegmentCodec.headerSize)
            try await queue.write { db in
                try db.execute(sql: """
                    INSERT INTO runs (run_pk, run_id, experiment_id, run_name, user_id, status, start_time, artifact_uri)
                    VALUES (1, 'aaaabbbbccccddddeeeeffff00001111', 0, 'old', 'u', 'FINISHED', 1, 'mlflow-artifacts:/0/a/artifacts');
                    INSERT INTO metric_keys (key_id, key) VALUES (1, 'loss');
                    INSERT INTO latest_metrics VALUES (1, 1, 9, 109, 4.5, 0, 0.0, 4.5, 10, 1, 0, 9);
                    """)
                try db.execute(sql: "INSERT INTO metric_segments VALUES (1, 1, 1, 10, 0, 9, 0.0, 4.5, ?)", arguments: [Data(version1)])
            }
            try queue.close()
        }
        let store = try SQLiteTrackingStore(path: path)
        #expect(try await store.metricHistory(runID: "aaaabbbbccccddddeeeeffff00001111", key: "loss") == points)
        let report = try await store.checkIntegrity()
        #expect(report.isHealthy)
        #expect(report.checkedSegments == 1 && report.checkedPoints == 10)
        #expect(FileManager.default.fileExists(atPath: path + ".backup-before-0006_checksums"))
    }

    @Test("Every series' summary carries its run's experiment: written by logging and import, filled by the migration, checked by verify",
          arguments: StoreBackend.allCases)
    func summaryExperiment(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.createExperiment(name: "second", artifactLocation: nil, tags: [], now: 1)
            let logged = try await newRun(store)
            try await store.logRunWrites(runID: logged, RunWrites(metrics: [Metric(key: "acc", value: 0.5, timestamp: 1, step: 0)]))
            try await store.logRunWrites(runID: logged, RunWrites(metrics: [Metric(key: "acc", value: 0.7, timestamp: 2, step: 1),
                                                                           Metric(key: "loss", value: 2, timestamp: 2, step: 1)]))
            let imported = "0123456789abcdef0123456789abcdef"
            let info = RunInfo(runID: imported, experimentID: "1", runName: "i", userID: "u", status: .finished, startTime: 1000, endTime: 2000,
                               artifactURI: "mlflow-artifacts:/1/\(imported)/artifacts", lifecycleStage: .active)
            _ = try await store.importRun(Run(info: info), history: [Metric(key: "acc", value: 0.9, timestamp: 1, step: 0)])
            func summaries() async throws -> [String] {
                try await store.read { db in
                    try db.rows("""
                        SELECT r.run_id, mk.key, lm.experiment_id FROM latest_metrics lm
                        JOIN runs r ON r.run_pk = lm.run_pk JOIN metric_keys mk ON mk.key_id = lm.key_id ORDER BY r.run_id, mk.key
                        """).map { "\($0[0] as String) \($0[1] as String) \(($0[2] as Int64?).map(String.init) ?? "NULL")" }
                }
            }
            let expected = ["\(imported) acc 1", "\(logged) acc 0", "\(logged) loss 0"].sorted()
            #expect(try await summaries() == expected)
            #expect(try await store.checkIntegrity().isHealthy)
            // A store from before the column: the migration gives every existing row its run's.
            let migration = backend == .sqlite ? SQLiteMigrations.latestMetricsExperiment : PostgresMigrations.latestMetricsExperiment
            _ = try await store.writeUnaudited { db in
                try db.execute("DROP INDEX latest_metrics_by_experiment_key_value")
                try db.execute("ALTER TABLE latest_metrics DROP COLUMN experiment_id")
                for statement in migration.split(separator: ";") where !statement.allSatisfy(\.isWhitespace) {
                    try db.execute(String(statement))
                }
            }
            #expect(try await summaries() == expected)
            #expect(try await store.checkIntegrity().isHealthy)
            // A summary that names another experiment than its run's is reported.
            _ = try await store.writeUnaudited { db in
                try db.execute("UPDATE latest_metrics SET experiment_id = 1 WHERE run_pk = (SELECT run_pk FROM runs WHERE run_id = ?)", [logged])
            }
            let report = try await store.checkIntegrity()
            #expect(report.damagedSeries.map(\.key).sorted() == ["acc", "loss"])
            #expect(report.damagedSeries.allSatisfy { $0.runID == logged && $0.detail.contains("another experiment") })
        }
    }

    @Test("Row checks follow every kind of write: inserts, upserts, updates and replaced rows stay healthy", arguments: StoreBackend.allCases)
    func checksFollowWrites(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let runID = try await newRun(store)
            try await store.logRunWrites(runID: runID, RunWrites(params: [Param("a", "1")], tags: [Tag("t", "x")]))
            try await store.logRunWrites(runID: runID, RunWrites(tags: [Tag("t", "y")]))
            _ = try await store.updateRun(id: runID, status: .finished, endTime: 2000, runName: "renamed", now: 2000)
            try await store.deleteTag(runID: runID, key: "t")
            try await store.setRunLifecycle(id: runID, stage: .deleted, now: 3000)
            _ = try await store.createExperiment(name: "e", artifactLocation: nil, tags: [Tag("k", "v")], now: 1)
            try await store.setExperimentTag(id: 1, tag: Tag("k", "w"), now: 2)
            try await store.renameExperiment(id: 1, newName: "e2", now: 3)
            let report = try await store.checkIntegrity()
            #expect(report.isHealthy, "\(report.damagedRows)")
            #expect(report.checkedRows > 5)
        }
    }
}
