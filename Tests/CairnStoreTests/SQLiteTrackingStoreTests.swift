import CairnCore
import CairnTestSupport
import Foundation
import GRDB
import Testing
@testable import CairnStore

private func makeRun(_ store: SQLStore, experiment: String = "0", name: String = "r", start: Int64 = 1000) async throws -> Run {
    let id = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    let info = RunInfo(runID: id, experimentID: experiment, runName: name, userID: "u", status: .running,
                       startTime: start, endTime: nil, artifactURI: "mlflow-artifacts:/\(experiment)/\(id)/artifacts", lifecycleStage: .active)
    return try await store.createRun(NewRun(info: info, tags: [Tag(SystemTag.runName, name)]))
}

private func filter(_ text: String) throws -> FilterExpression? {
    try SearchFilterParser.parse(text, for: .runs)
}

@Suite("Tracking store (SQLite and PostgreSQL)")
struct SQLiteTrackingStoreTests {
    @Test("A new database has the Default experiment with id 0", arguments: StoreBackend.allCases)
    func defaultExperiment(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let experiment = try await store.fetchExperiment(id: 0)
            #expect(experiment.name == "Default")
            #expect(experiment.artifactLocation == "mlflow-artifacts:/0")
            #expect(experiment.lifecycleStage == .active)
        }
    }

    @Test("The durability setting picks SQLite's synchronous mode: NORMAL by default, FULL on request")
    func durability() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let normal = try SQLiteTrackingStore(path: directory.path + "/normal.sqlite")
        #expect(try await normal.readSQLite { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 1)
        let full = try SQLiteTrackingStore(path: directory.path + "/full.sqlite", durability: .full)
        #expect(try await full.readSQLite { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 2)
        #expect(try await full.readSQLite { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") } == "wal")
    }

    @Test("Experiment names stay unique, across deleted experiments too", arguments: StoreBackend.allCases)
    func uniqueNames(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let e = try await store.createExperiment(name: "a", artifactLocation: nil, tags: [Tag("k", "v")], now: 5)
            #expect(e.experimentID == "1")
            #expect(e.artifactLocation == "mlflow-artifacts:/1")
            #expect(e.tags == [Tag("k", "v")])
            try await store.setExperimentLifecycle(id: 1, stage: .deleted, now: 6)
            await #expect(throws: CairnError.self) {
                _ = try await store.createExperiment(name: "a", artifactLocation: nil, tags: [], now: 7)
            }
            let count = try await store.read { db in try db.value(Int.self, "SELECT COUNT(*) FROM experiments") }
            #expect(count == 2)
        }
    }

    @Test("Deleting an experiment deletes its active runs; restoring brings back only those", arguments: StoreBackend.allCases)
    func experimentLifecycleCascades(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.createExperiment(name: "e", artifactLocation: nil, tags: [], now: 1)
            let kept = try await makeRun(store, experiment: "1")
            let deletedBefore = try await makeRun(store, experiment: "1")
            try await store.setRunLifecycle(id: deletedBefore.info.runID, stage: .deleted, now: 2)
            try await store.setExperimentLifecycle(id: 1, stage: .deleted, now: 3)
            #expect(try await store.fetchRunInfo(id: kept.info.runID).lifecycleStage == .deleted)
            try await store.setExperimentLifecycle(id: 1, stage: .active, now: 4)
            #expect(try await store.fetchRunInfo(id: kept.info.runID).lifecycleStage == .active)
            #expect(try await store.fetchRunInfo(id: deletedBefore.info.runID).lifecycleStage == .deleted)
        }
    }

    @Test("Dataset summaries: each dataset an experiment's runs used, once per context, with or without one", arguments: StoreBackend.allCases)
    func datasetSummaries(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.createExperiment(name: "e", artifactLocation: nil, tags: [], now: 1)
            let dataset = Dataset(name: "train", digest: "abc", sourceType: "local", source: "{}")
            let context = [Tag(SystemTag.datasetContext, "training")]
            for experiment in ["0", "1"] {
                for _ in 0..<2 {
                    try await store.logInputs(runID: makeRun(store, experiment: experiment).info.runID, [DatasetInput(tags: context, dataset: dataset)], models: [])
                }
            }
            let bare = Dataset(name: "eval", digest: "def", sourceType: "local", source: "{}")
            try await store.logInputs(runID: makeRun(store, experiment: "1").info.runID, [DatasetInput(tags: [], dataset: bare)], models: [])
            #expect(try await store.searchDatasetSummaries(experimentIDs: [1], limit: 1000) == [
                DatasetSummary(experimentID: "1", name: "eval", digest: "def", context: nil),
                DatasetSummary(experimentID: "1", name: "train", digest: "abc", context: "training"),
            ])
            #expect(try await store.searchDatasetSummaries(experimentIDs: [0, 1], limit: 1000).count == 3)
            #expect(try await store.searchDatasetSummaries(experimentIDs: [0, 1], limit: 2).count == 2)
            #expect(try await store.searchDatasetSummaries(experimentIDs: [7], limit: 1000).isEmpty)
        }
    }

    @Test("A changed param rejects the whole batch: nothing of it is written", arguments: StoreBackend.allCases)
    func paramsAreWriteOnce(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let run = try await makeRun(store)
            let id = run.info.runID
            try await store.logRunWrites(runID: id, RunWrites(params: [Param("lr", "0.1")]))
            try await store.logRunWrites(runID: id, RunWrites(params: [Param("lr", "0.1")]))
            await #expect(throws: CairnError.self) {
                try await store.logRunWrites(runID: id, RunWrites(
                    metrics: [Metric(key: "loss", value: 1, timestamp: 1, step: 0)],
                    params: [Param("batch", "32"), Param("lr", "0.2")],
                    tags: [Tag("t", "x")]))
            }
            let after = try await store.fetchRun(id: id)
            #expect(after.params == [Param("lr", "0.1")])
            #expect(after.metrics.isEmpty)
            #expect(!after.tags.contains(Tag("t", "x")))
            #expect(try await store.metricHistory(runID: id, key: "loss").isEmpty)
        }
    }

    @Test("A perfectly regular series (points that cost no bits) is cut into segments by point count and reads back whole",
          arguments: StoreBackend.allCases)
    func regularSeriesSegmentsEndAtTheirPointLimit(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let id = try await makeRun(store).info.runID
            func point(_ step: Int64) -> Metric { Metric(key: "m", value: Double(step) * 0.25 + 1, timestamp: 1_700_000_000_000 + step, step: step) }
            // Batches of 200 (appended to the last segment while it has room), then single points.
            for batch in 0..<15 {
                try await store.logRunWrites(runID: id, RunWrites(metrics: (Int64(batch) * 200..<Int64(batch + 1) * 200).map(point)))
            }
            for step in Int64(3000)..<3100 {
                try await store.logRunWrites(runID: id, RunWrites(metrics: [point(step)]))
            }
            // One batch larger than a segment holds.
            try await store.logRunWrites(runID: id, RunWrites(metrics: (Int64(3100)..<5600).map(point)))
            let history = try await store.metricHistory(runID: id, key: "m")
            #expect(history.map(\.step) == Array(0..<5600))
            #expect(history.allSatisfy { $0 == MetricPoint(step: $0.step, timestamp: 1_700_000_000_000 + $0.step, value: Double($0.step) * 0.25 + 1) })
            let largest = try await store.read { db in try db.value(Int.self, "SELECT MAX(point_count) FROM metric_segments") }
            #expect(largest == MetricSegmentCodec.maxSegmentPoints)
            #expect(try await store.checkIntegrity().isHealthy)
        }
    }

    @Test("The latest value follows MLflow: highest step, then timestamp, then value", arguments: StoreBackend.allCases)
    func latestMetricRule(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let id = try await makeRun(store).info.runID
            try await store.logRunWrites(runID: id, RunWrites(metrics: [Metric(key: "m", value: 5, timestamp: 100, step: 10)]))
            try await store.logRunWrites(runID: id, RunWrites(metrics: [Metric(key: "m", value: 9, timestamp: 200, step: 3)]))
            #expect(try await store.fetchRun(id: id).metrics.first?.value == 5)
            try await store.logRunWrites(runID: id, RunWrites(metrics: [Metric(key: "m", value: 1, timestamp: 101, step: 10)]))
            #expect(try await store.fetchRun(id: id).metrics.first?.value == 1)
            try await store.logRunWrites(runID: id, RunWrites(metrics: [Metric(key: "m", value: 2, timestamp: 101, step: 10)]))
            #expect(try await store.fetchRun(id: id).metrics.first?.value == 2)
            let summary = try await store.read { db -> [Double] in
                guard let row = try db.row("SELECT min_value, max_value, point_count FROM latest_metrics") else { return [] }
                return [row[0], row[1], row[2]]
            }
            #expect(summary == [1, 9, 4])
        }
    }

    @Test("History keeps every point, NaN and infinities exactly, ordered by timestamp then step", arguments: StoreBackend.allCases)
    func history(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let id = try await makeRun(store).info.runID
            try await store.logRunWrites(runID: id, RunWrites(metrics: [
                Metric(key: "x", value: .infinity, timestamp: 30, step: 2),
                Metric(key: "x", value: .nan, timestamp: 10, step: 0),
            ]))
            try await store.logRunWrites(runID: id, RunWrites(metrics: [Metric(key: "x", value: -.infinity, timestamp: 20, step: 1)]))
            let points = try await store.metricHistory(runID: id, key: "x")
            #expect(points.map(\.step) == [0, 1, 2])
            #expect(points[0].value.isNaN)
            #expect(points[1].value == -.infinity)
            #expect(points[2].value == .infinity)
            let latest = try await store.fetchRun(id: id).metrics
            #expect(latest.first?.value == .infinity)
        }
    }

    @Test("A series of NaN only has no value, minimum or maximum in its summary and segments; a later number sets them",
          arguments: StoreBackend.allCases)
    func nanOnlySeries(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let id = try await makeRun(store).info.runID
            // Ten keys in one write, then nine whose last segments grow (PostgreSQL binds that
            // many rows as arrays, `writeSeries`), the NaN-only series among series with
            // numbers; then a one-key write (row by row).
            let fillers = (0..<7).map { "f\($0)" }
            try await store.logRunWrites(runID: id, RunWrites(metrics: [
                Metric(key: "a", value: 1.5, timestamp: 1, step: 0),
                Metric(key: "n", value: .nan, timestamp: 1, step: 0),
                Metric(key: "b", value: -2, timestamp: 1, step: 0),
            ] + fillers.map { Metric(key: $0, value: 0, timestamp: 1, step: 0) }))
            try await store.logRunWrites(runID: id, RunWrites(metrics: [
                Metric(key: "n", value: .nan, timestamp: 2, step: 1),
                Metric(key: "a", value: .nan, timestamp: 2, step: 1),
            ] + fillers.map { Metric(key: $0, value: 1, timestamp: 2, step: 1) }))
            #expect(SQLStore.arrayRowsFrom <= 9)
            func rows() async throws -> [String: [SQLValue]] {
                try await store.read { db in
                    var byKey: [String: [SQLValue]] = [:]
                    for row in try db.rows("""
                        SELECT k.key, lm.value, lm.is_nan, lm.min_value, lm.max_value, lm.point_count, lm.segment_count,
                               s.point_count, s.min_value, s.max_value
                        FROM latest_metrics lm JOIN metric_keys k ON k.key_id = lm.key_id
                        JOIN metric_segments s ON s.run_pk = lm.run_pk AND s.key_id = lm.key_id AND s.seq = lm.segment_count
                        """) {
                        byKey[row[0]] = Array(row.values.dropFirst())
                    }
                    return byKey
                }
            }
            var stored = try await rows()
            #expect(stored["n"] == [.null, .integer(1), .null, .null, .integer(2), .integer(1), .integer(2), .null, .null])
            #expect(stored["a"] == [.null, .integer(1), .real(1.5), .real(1.5), .integer(2), .integer(1), .integer(2), .real(1.5), .real(1.5)])
            #expect(stored["b"] == [.real(-2), .integer(0), .real(-2), .real(-2), .integer(1), .integer(1), .integer(1), .real(-2), .real(-2)])
            #expect(stored["f6"] == [.real(1), .integer(0), .real(0), .real(1), .integer(2), .integer(1), .integer(2), .real(0), .real(1)])
            try await store.logRunWrites(runID: id, RunWrites(metrics: [Metric(key: "n", value: 3, timestamp: 3, step: 2)]))
            stored = try await rows()
            #expect(stored["n"] == [.real(3), .integer(0), .real(3), .real(3), .integer(3), .integer(1), .integer(3), .real(3), .real(3)])
            let history = try await store.metricHistory(runID: id, key: "n")
            #expect(history.map(\.step) == [0, 1, 2] && history[0].value.isNaN && history[1].value.isNaN && history[2].value == 3)
        }
    }

    @Test("A replayed write leaves no duplicate points; a new value at the same step is kept", arguments: StoreBackend.allCases)
    func replayedWritesAreIdempotent(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let id = try await makeRun(store).info.runID
            let batch = RunWrites(metrics: (0..<5).map { Metric(key: "m", value: Double($0), timestamp: 100, step: Int64($0)) }
                + [Metric(key: "m", value: 4, timestamp: 100, step: 4)])
            try await store.logRunWrites(runID: id, batch)
            try await store.logRunWrites(runID: id, batch)
            #expect(try await store.metricHistory(runID: id, key: "m").count == 5)
            try await store.logRunWrites(runID: id, RunWrites(metrics: [Metric(key: "m", value: 9, timestamp: 100, step: 2)]))
            #expect(try await store.metricHistory(runID: id, key: "m").count == 6)
            let count = try await store.read { db in try db.value(Int.self, "SELECT point_count FROM latest_metrics") }
            #expect(count == 6)
        }
    }

    @Test("One-point writes are merged into small segments; the series reads back exactly, replays stay single", arguments: StoreBackend.allCases)
    func smallWritesAreMerged(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let id = try await makeRun(store).info.runID
            let values: [Double] = (0..<500).map { $0 % 7 == 0 ? .nan : sin(Double($0)) * 1e3 }
            for (step, value) in values.enumerated() {
                let point = Metric(key: "m", value: value, timestamp: 1_000 + Int64(step), step: Int64(step))
                try await store.logRunWrites(runID: id, RunWrites(metrics: [point]))
                if step % 50 == 0 { try await store.logRunWrites(runID: id, RunWrites(metrics: [point])) }
            }
            let history = try await store.metricHistory(runID: id, key: "m")
            #expect(history.map(\.step) == (0..<500).map(Int64.init))
            #expect(zip(history, values).allSatisfy { $0.value.bitPattern == $1.bitPattern })
            let (rows, segments, points, largest) = try await store.read { db in
                let row = try db.row("SELECT COUNT(*), MAX(length(points)) FROM metric_segments")!
                let summary = try db.row("SELECT segment_count, point_count FROM latest_metrics")!
                return (row[0] as Int, summary[0] as Int, summary[1] as Int, row[1] as Int)
            }
            #expect(rows < 50)
            #expect(segments == rows)
            #expect(points == 500)
            #expect(largest <= SQLStore.smallSegmentBytes)
            // A write going back in steps starts a new segment instead; nothing is lost.
            try await store.logRunWrites(runID: id, RunWrites(metrics: [Metric(key: "m", value: 1, timestamp: 5, step: 3)]))
            #expect(try await store.metricHistory(runID: id, key: "m").count == 501)
        }
    }

    @Test("A large write is stored as segments that fit their pages; the series reads back exactly", arguments: StoreBackend.allCases)
    func largeWritesAreSplit(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let id = try await makeRun(store).info.runID
            var generator = SystemRandomNumberGenerator()
            let values = (0..<1_000).map { _ in Double.random(in: -1...1, using: &generator) }
            try await store.logRunWrites(runID: id, RunWrites(metrics: values.enumerated().map {
                Metric(key: "m", value: $1, timestamp: 5_000 + Int64($0), step: Int64($0))
            }))
            let history = try await store.metricHistory(runID: id, key: "m")
            #expect(history.map(\.value) == values)
            let (rows, largest, segments, points) = try await store.read { db in
                let row = try db.row("SELECT COUNT(*), MAX(length(points)), SUM(point_count) FROM metric_segments")!
                let summary = try db.row("SELECT segment_count FROM latest_metrics")!
                return (row[0] as Int, row[1] as Int, summary[0] as Int, row[2] as Int)
            }
            #expect(rows > 1)
            #expect(largest <= SQLStore.smallSegmentBytes)
            #expect(segments == rows)
            #expect(points == 1_000)
            // The next write continues after the last chunk's sequence number.
            try await store.logRunWrites(runID: id, RunWrites(metrics: [Metric(key: "m", value: 2, timestamp: 9_000, step: 1_000)]))
            #expect(try await store.metricHistory(runID: id, key: "m").count == 1_001)
        }
    }

    @Test("A series read is one range scan of the segments' primary key")
    func seriesReadPlan() async throws {
        try await withSQLiteStore { store in
            let plan = try await store.readSQLite { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + SQLiteTrackingStore.seriesSQL, arguments: [1, "loss"])
                    .map { $0["detail"] as String }
            }
            let segmentSteps = plan.filter { $0.contains("metric_segments") }
            #expect(segmentSteps.count == 1)
            #expect(segmentSteps.allSatisfy { $0.hasPrefix("SEARCH") && $0.contains("PRIMARY KEY (run_pk=? AND key_id=?)") })
            #expect(!plan.contains { $0.hasPrefix("SCAN") })
            #expect(!plan.contains { $0.contains("TEMP B-TREE") })
        }
    }

    @Test("Many concurrent writers to one run lose nothing and never see 'database is locked'", arguments: StoreBackend.allCases)
    func concurrentWriters(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let id = try await makeRun(store).info.runID
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<16 {
                    group.addTask {
                        for i in 0..<25 {
                            let step = Int64(writer * 25 + i)
                            try await store.logRunWrites(runID: id, RunWrites(
                                metrics: [Metric(key: "m", value: Double(step), timestamp: step, step: step)],
                                tags: [Tag("w\(writer)", "\(i)")]))
                        }
                    }
                }
                for _ in 0..<8 {
                    group.addTask { _ = try await makeRun(store) }
                }
                try await group.waitForAll()
            }
            let run = try await store.fetchRun(id: id)
            #expect(run.metrics.first?.value == 399)
            #expect(try await store.metricHistory(runID: id, key: "m").count == 400)
            #expect(run.tags.filter { $0.key.hasPrefix("w") }.count == 16)
            let runs = try await store.read { db in try db.value(Int.self, "SELECT COUNT(DISTINCT run_id) FROM runs") }
            #expect(runs == 9)
        }
    }

    @Test("Search: filters with OR and NOT, metric order with missing values last, pages that cover every run once", arguments: StoreBackend.allCases)
    func search(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            var ids: [String] = []
            for i in 0..<7 {
                let run = try await makeRun(store, name: "run-\(i)", start: Int64(100 + i))
                ids.append(run.info.runID)
                var writes = RunWrites(params: [Param("p", i.isMultiple(of: 2) ? "even" : "odd")], tags: [Tag("i", "\(i)")])
                if i != 3 { writes.metrics = [Metric(key: "acc", value: Double(i) / 10, timestamp: 1, step: 0)] }
                try await store.logRunWrites(runID: run.info.runID, writes)
            }
            func names(_ text: String, order: [String] = [], max: Int = 100, offset: Int = 0) async throws -> [String] {
                let search = RunSearch(experimentIDs: [0], filter: try filter(text),
                                       orderBy: try order.map { try OrderByParser.parse($0, for: .runs) },
                                       viewType: .activeOnly, maxResults: max, offset: offset)
                return try await store.searchRuns(search).items.map(\.info.runName)
            }
            #expect(try await names("metrics.acc > 0.45") == ["run-6", "run-5"])
            #expect(try await names("metrics.acc >= 0.5 OR params.p = 'odd'") == ["run-6", "run-5", "run-3", "run-1"])
            #expect(try await names("NOT (params.p = 'odd') AND tags.i != '0'") == ["run-6", "run-4", "run-2"])
            #expect(try await names("attributes.run_name LIKE 'run-%' AND attributes.run_name LIKE 'RUN-%'") == [])
            #expect(try await names("attributes.run_name ILIKE 'RUN-1'") == ["run-1"])
            #expect(try await names("", order: ["metrics.acc DESC"]) == ["run-6", "run-5", "run-4", "run-2", "run-1", "run-0", "run-3"])
            #expect(try await names("", order: ["metrics.acc ASC"]).last == "run-3")
            #expect(try await names("tags.missing IS NULL").count == 7)
            var seen: [String] = []
            var offset = 0
            while true {
                let search = RunSearch(experimentIDs: [0], filter: nil, orderBy: [], viewType: .activeOnly, maxResults: 3, offset: offset)
                let page = try await store.searchRuns(search)
                seen += page.items.map(\.info.runID)
                if !page.hasMore { break }
                offset += 3
            }
            #expect(seen.count == 7)
            #expect(Set(seen) == Set(ids))
        }
    }

    @Test("A search ordered by a metric its filter compares walks that metric's index and answers what the rule says, page by page",
          arguments: StoreBackend.allCases)
    func metricDrivenSearch(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            struct Expected { let id: String; let name: String; let experiment: Int64; let start: Int64; let acc: Double?; let lr: String; let team: String?; let loss: Double? }
            var runs: [Expected] = []
            // A third of the runs in a second experiment, with the same metric: a search in one
            // experiment walks only its own rows of the metric, across both the store-wide index.
            _ = try await store.createExperiment(name: "second", artifactLocation: nil, tags: [], now: 1)
            for i in 0..<120 {
                let experiment: Int64 = i % 3 == 2 ? 1 : 0
                // Repeated accuracies and start times make ties that the later order terms break.
                let start = Int64(1000 + i % 17)
                let run = try await makeRun(store, experiment: "\(experiment)", name: "run-\(i)", start: start)
                let acc: Double? = i % 11 == 4 ? nil : (i % 13 == 6 ? .nan : Double(i * 7 % 23) / 22)
                let lr = ["0.1", "0.01"][i % 2]
                let team: String? = i % 5 == 0 ? nil : ["a", "b"][i % 3 == 0 ? 0 : 1]
                let loss: Double? = i % 4 == 1 ? nil : Double(i % 9)
                var writes = RunWrites(params: [Param("lr", lr)], tags: team.map { [Tag("team", $0)] } ?? [])
                if let acc { writes.metrics = [Metric(key: "acc", value: acc, timestamp: 1, step: 0)] }
                if let loss { writes.metrics.append(Metric(key: "loss", value: loss, timestamp: 1, step: 0)) }
                try await store.logRunWrites(runID: run.info.runID, writes)
                runs.append(Expected(id: run.info.runID, name: "run-\(i)", experiment: experiment, start: start, acc: acc, lr: lr, team: team, loss: loss))
            }
            for experiments in [[0], [1], [0, 1]] as [[Int64]] {
                func search(_ text: String, _ order: [String], pageSize: Int) async throws -> [String] {
                    var names: [String] = []
                    var offset = 0
                    while true {
                        let query = RunSearch(experimentIDs: experiments, filter: try filter(text), orderBy: try order.map { try OrderByParser.parse($0, for: .runs) },
                                              viewType: .activeOnly, maxResults: pageSize, offset: offset)
                        let page = try await store.searchRuns(query)
                        names += page.items.map(\.info.runName)
                        if !page.hasMore { break }
                        offset += pageSize
                    }
                    return names
                }
                func expected(_ keep: (Expected) -> Bool, ascending: Bool) -> [String] {
                    runs.filter { experiments.contains($0.experiment) && keep($0) }.sorted { a, b in
                        if a.acc! != b.acc! { return ascending ? a.acc! < b.acc! : a.acc! > b.acc! }
                        if a.start != b.start { return a.start > b.start }
                        return a.id < b.id
                    }.map(\.name)
                }
                let matches = { (r: Expected) in r.acc.map { !$0.isNaN && $0 > 0.3 } == true && r.lr == "0.01" }
                #expect(try await search("metrics.acc > 0.3 and params.lr = '0.01'", ["metrics.acc DESC"], pageSize: 7) == expected(matches, ascending: false))
                #expect(try await search("params.lr = '0.01' AND metrics.acc > 0.3", ["metrics.acc ASC", "attributes.start_time DESC"], pageSize: 5)
                        == expected(matches, ascending: true))
                // The filter's other conditions (params, tags, other metrics; under OR, NOT and IS NULL)
                // probe each walked run and keep the rule's answers.
                let above = { (r: Expected) in r.acc.map { !$0.isNaN && $0 > 0.3 } == true }
                #expect(try await search("metrics.acc > 0.3 and (tags.team = 'a' or params.lr != '0.01')", ["metrics.acc DESC"], pageSize: 6)
                        == expected({ above($0) && ($0.team == "a" || $0.lr != "0.01") }, ascending: false))
                #expect(try await search("metrics.acc > 0.3 and not tags.team = 'b' and tags.team IS NOT NULL", ["metrics.acc DESC"], pageSize: 4)
                        == expected({ above($0) && $0.team == "a" }, ascending: false))
                #expect(try await search("metrics.acc > 0.3 and tags.team IS NULL", ["metrics.acc ASC"], pageSize: 3)
                        == expected({ above($0) && $0.team == nil }, ascending: true))
                #expect(try await search("metrics.acc > 0.3 and metrics.loss < 4 and params.lr LIKE '0.0%'", ["metrics.acc DESC"], pageSize: 5)
                        == expected({ above($0) && ($0.loss ?? 99) < 4 && $0.lr == "0.01" }, ascending: false))
                let wide = { (r: Expected) in r.acc.map { !$0.isNaN && $0 >= 0 } == true }
                #expect(try await search("metrics.acc >= 0", ["metrics.acc DESC"], pageSize: 1000) == expected(wide, ascending: false))
            }
            // On SQLite the plan walks the metric's index instead of sorting every run of the
            // experiment (PostgreSQL's plans: PostgresPlanTests, on a table large enough to matter).
            guard let store = store as? SQLiteTrackingStore else { return }
            // In one experiment the walk is of that experiment's rows of the metric (the index
            // on (key, experiment, value)); across several, of the metric's rows of the store.
            for (set, index) in [([0], "latest_metrics_by_experiment_key_value (key_id=? AND experiment_id=?"),
                                 ([0, 1], "latest_metrics_by_key_value (key_id=?")] as [([Int64], String)] {
                let query = try SearchSQL(.sqlite).runQuery(RunSearch(experimentIDs: set, filter: try filter("metrics.acc > 0.3 and params.lr = '0.01'"),
                                                                   orderBy: [try OrderByParser.parse("metrics.acc DESC", for: .runs)],
                                                                   viewType: .activeOnly, maxResults: 10, offset: 0))
                let plan = try await store.readSQLite { db in
                    try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + query.sql, arguments: GRDBSession.arguments(query.arguments)).map { $0["detail"] as String }
                }
                #expect(plan.first.map { $0.hasPrefix("SEARCH o USING") && $0.contains(index) } == true, "\(plan)")
                #expect(!plan.contains { $0.contains("USE TEMP B-TREE FOR ORDER BY") }, "\(plan)")
                // The param condition probes the walked run's row by primary key: no set of every
                // matching run of the store is built first.
                #expect(!plan.contains { $0.contains("LIST SUBQUERY") || $0.contains("run_params_by_key_value") }, "\(plan)")
                #expect(plan.contains { $0.hasPrefix("SEARCH x USING PRIMARY KEY (run_pk=? AND key=?)") }, "\(plan)")
            }
        }
    }

    @Test("Filter values are bound parameters: quotes and SQL in values match literally", arguments: StoreBackend.allCases)
    func injection(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let run = try await makeRun(store, name: "x' OR '1'='1")
            _ = try await makeRun(store, name: "other")
            let search = RunSearch(experimentIDs: [0], filter: try filter("attributes.run_name = \"x' OR '1'='1\""),
                                   orderBy: [], viewType: .activeOnly, maxResults: 10, offset: 0)
            #expect(try await store.searchRuns(search).items.map(\.info.runID) == [run.info.runID])
        }
    }
}
