import CairnCore
import CairnTestSupport
import Foundation
import GRDB
import Testing
@testable import CairnStore

private func makeRun(_ store: SQLStore, experiment: String, name: String, start: Int64, params: [Param] = [], tags: [CairnCore.Tag] = [], metrics: [Metric] = [],
                     artifactURI: String? = nil) async throws -> String {
    let id = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    let info = RunInfo(runID: id, experimentID: experiment, runName: name, userID: "u", status: .running,
                       startTime: start, endTime: nil, artifactURI: artifactURI ?? "mlflow-artifacts:/\(experiment)/\(id)/artifacts", lifecycleStage: .active)
    _ = try await store.createRun(NewRun(info: info, tags: [Tag(SystemTag.runName, name)]))
    try await store.logRunWrites(runID: id, RunWrites(metrics: metrics, params: params, tags: tags))
    return id
}

private func search(_ experiments: [Int64], _ filter: String = "", orderBy: [String] = []) throws -> RunSearch {
    RunSearch(experimentIDs: experiments, filter: try SearchFilterParser.parse(filter, for: .runs),
              orderBy: try orderBy.map { try OrderByParser.parse($0, for: .runs) }, viewType: .activeOnly, maxResults: 1000, offset: 0)
}

@Suite("Explorer queries on SQLite")
struct ExplorerStoreTests {
    @Test("Run rows carry params, tags and each metric's latest value with its minimum, maximum, count and step range", arguments: StoreBackend.allCases)
    func runRows(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let id = try await makeRun(store, experiment: "0", name: "a", start: 10, params: [Param("lr", "0.1")], tags: [Tag("team", "x")],
                                       metrics: [Metric(key: "loss", value: 3, timestamp: 1, step: 0), Metric(key: "loss", value: 0.5, timestamp: 2, step: 1),
                                                 Metric(key: "loss", value: 1, timestamp: 3, step: 2)])
            let (rows, hasMore) = try await store.runRows(try search([0]))
            #expect(!hasMore)
            #expect(rows.count == 1)
            #expect(rows[0].info.runID == id)
            #expect(rows[0].params == [Param("lr", "0.1")])
            #expect(rows[0].tags.contains(Tag("team", "x")))
            #expect(rows[0].metrics == [MetricSummary(key: "loss", latest: 1, step: 2, timestamp: 3, min: 0.5, max: 3, count: 3, minStep: 0, maxStep: 2)])
        }
    }

    @Test("Store figures count active runs by status, points, distinct artifact blobs and the database's size", arguments: StoreBackend.allCases)
    func storeFigures(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let a = try await makeRun(store, experiment: "0", name: "a", start: 1, metrics: [
                Metric(key: "loss", value: 1, timestamp: 1, step: 0), Metric(key: "loss", value: 2, timestamp: 1, step: 1),
                Metric(key: "acc", value: 3, timestamp: 1, step: 0)])
            _ = try await store.updateRun(id: a, status: .finished, endTime: 2, runName: nil, now: 2)
            let b = try await makeRun(store, experiment: "0", name: "b", start: 1)
            let c = try await makeRun(store, experiment: "0", name: "c", start: 1, tags: [Tag("cairn.git.commit", "abc")])
            try await store.setRunLifecycle(id: b, stage: .deleted, now: 3)
            try await store.logInputs(runID: a, [DatasetInput(tags: [], dataset: Dataset(name: "d", digest: "1", sourceType: "local", source: "{}"))], models: [])
            _ = c
            try await store.recordArtifact(ArtifactEntry(path: "0/\(a)/artifacts/x", digest: String(repeating: "a", count: 64), size: 10), now: 1)
            try await store.recordArtifact(ArtifactEntry(path: "0/\(a)/artifacts/y", digest: String(repeating: "a", count: 64), size: 10), now: 1)
            try await store.recordArtifact(ArtifactEntry(path: "0/\(a)/artifacts/z", digest: String(repeating: "b", count: 64), size: 5), now: 1)
            try await store.recordBlobChecks([String(repeating: "a", count: 64): BlobCheck(result: .ok, checkedAt: 1)])
            let figures = try await store.storeFigures(staleBefore: 2)
            #expect(figures.runsByStatus == ["FINISHED": 1, "RUNNING": 1])
            // c runs, logged nothing and started at 1, before the stale threshold 2.
            #expect(figures.staleRuns == 1)
            #expect((figures.runsWithCode, figures.runsWithData, figures.runsWithBoth) == (1, 1, 0))
            #expect(figures.gateEvaluations.isEmpty && figures.reproduceAttempts.isEmpty)
            #expect(try await store.storeFigures(staleBefore: 1).staleRuns == 0)
            #expect((figures.experiments, figures.metricPoints) == (1, 3))
            #expect((figures.artifactFiles, figures.blobs, figures.artifactBytes) == (3, 2, 15))
            #expect(figures.blobChecks == ["ok": 1])
            #expect(figures.databaseBytes > 0)
        }
    }

    @Test("Run rows follow the filter (OR included) and the order of the search, across experiments", arguments: StoreBackend.allCases)
    func filterAndOrder(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.createExperiment(name: "second", artifactLocation: nil, tags: [], now: 1)
            _ = try await makeRun(store, experiment: "0", name: "a", start: 1, metrics: [Metric(key: "acc", value: 0.5, timestamp: 1, step: 0)])
            _ = try await makeRun(store, experiment: "1", name: "b", start: 2, metrics: [Metric(key: "acc", value: 0.9, timestamp: 1, step: 0)])
            _ = try await makeRun(store, experiment: "1", name: "c", start: 3, params: [Param("model", "resnet")])
            let rows = try await store.runRows(try search([0, 1], "metrics.acc > 0.8 OR params.model = 'resnet'", orderBy: ["attributes.run_name DESC"])).items
            #expect(rows.map(\.info.runName) == ["c", "b"])
            let all = try await store.runRows(try search([0, 1], orderBy: ["metrics.acc ASC"])).items
            #expect(all.map(\.info.runName) == ["a", "b", "c"])
        }
    }

    @Test("The column catalog lists every param, metric and tag key of the experiments' active runs", arguments: StoreBackend.allCases)
    func catalog(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            _ = try await makeRun(store, experiment: "0", name: "a", start: 1, params: [Param("lr", "1")], tags: [Tag("t1", "v")],
                                  metrics: [Metric(key: "loss", value: 1, timestamp: 1, step: 0)])
            _ = try await makeRun(store, experiment: "0", name: "b", start: 2, params: [Param("batch", "2")],
                                  metrics: [Metric(key: "acc", value: 1, timestamp: 1, step: 0)])
            let deleted = try await makeRun(store, experiment: "0", name: "gone", start: 3, params: [Param("secret", "1")])
            try await store.setRunLifecycle(id: deleted, stage: .deleted, now: 4)
            let c = try await store.columnCatalog(experimentIDs: [0])
            #expect(c.params == ["batch", "lr"])
            #expect(c.metrics == ["acc", "loss"])
            #expect(c.tags == ["mlflow.runName", "t1"])
            #expect(try await store.columnCatalog(experimentIDs: [99]) == ColumnCatalog(params: [], metrics: [], tags: []))
        }
    }

    @Test("The column catalog read from the experiments' key lists answers exactly what a scan of every active run's keys answers, through deletions, restores, removed tags, purges and the migration's fill",
          arguments: StoreBackend.allCases)
    func catalogFromKeyLists(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.createExperiment(name: "second", artifactLocation: nil, tags: [], now: 1)
            func scanned(_ experiments: [Int64]) async throws -> ColumnCatalog {
                try await store.read { db in
                    ColumnCatalog(params: try SQLStore.catalogKeysByScan(db, .param, experiments), metrics: try SQLStore.catalogKeysByScan(db, .metric, experiments),
                                  tags: try SQLStore.catalogKeysByScan(db, .tag, experiments))
                }
            }
            func expectExact(_ comment: Comment) async throws {
                for experiments in [[0], [1], [0, 1], [7]] as [[Int64]] {
                    let listed = try await store.columnCatalog(experimentIDs: experiments)
                    let scan = try await scanned(experiments)
                    #expect(listed == scan, "\(comment) in \(experiments)")
                }
            }
            func witness(_ kind: String, _ key: String) async throws -> String? {
                try await store.read { db in
                    try db.value(String.self, """
                        SELECT r.run_id FROM experiment_keys k JOIN runs r ON r.run_pk = k.run_pk WHERE k.experiment_id = 0 AND k.kind = ? AND k.key = ?
                        """, [kind, key])
                }
            }
            let first = try await makeRun(store, experiment: "0", name: "first", start: 1, params: [Param("lr", "1"), Param("only-first", "x")],
                                          tags: [Tag("team", "a")], metrics: [Metric(key: "loss", value: 1, timestamp: 1, step: 0)])
            let second = try await makeRun(store, experiment: "0", name: "second", start: 2, params: [Param("lr", "2")], tags: [Tag("team", "b")],
                                           metrics: [Metric(key: "loss", value: 2, timestamp: 1, step: 0), Metric(key: "acc", value: 1, timestamp: 1, step: 0)])
            _ = try await makeRun(store, experiment: "1", name: "other", start: 3, params: [Param("depth", "3")], tags: [Tag("team", "c")],
                                  metrics: [Metric(key: "f1", value: 1, timestamp: 1, step: 0)])
            for (kind, key) in [("param", "lr"), ("metric", "loss"), ("tag", "team")] {
                #expect(try await witness(kind, key) == first, "\(kind) \(key)")
            }
            try await expectExact("logged")
            #expect(try await store.columnCatalog(experimentIDs: [0]) == ColumnCatalog(params: ["lr", "only-first"], metrics: ["acc", "loss"], tags: ["mlflow.runName", "team"]))

            // The witness run deleted: its keys that other runs have stay, the one only it had goes.
            try await store.setRunLifecycle(id: first, stage: .deleted, now: 10)
            try await expectExact("witness deleted")
            #expect(try await store.columnCatalog(experimentIDs: [0]) == ColumnCatalog(params: ["lr"], metrics: ["acc", "loss"], tags: ["mlflow.runName", "team"]))
            // A run that logs a key whose witness is deleted takes over; an active witness stays.
            let third = try await makeRun(store, experiment: "0", name: "third", start: 4, params: [Param("lr", "3")], metrics: [Metric(key: "acc", value: 2, timestamp: 1, step: 0)])
            for (kind, key, run) in [("param", "lr", third), ("metric", "acc", second), ("tag", "team", first)] {
                #expect(try await witness(kind, key) == run, "\(kind) \(key)")
            }
            try await store.setRunLifecycle(id: first, stage: .active, now: 11)
            try await expectExact("witness restored")
            // A tag removed from its witness: found on another run, or gone with the last one.
            try await store.deleteTag(runID: first, key: "team")
            try await expectExact("tag removed from its witness")
            #expect(try await store.columnCatalog(experimentIDs: [0]).tags == ["mlflow.runName", "team"])
            try await store.deleteTag(runID: second, key: "team")
            try await expectExact("tag removed everywhere")
            #expect(try await store.columnCatalog(experimentIDs: [0]).tags == ["mlflow.runName"])
            // More keys without a live witness than are looked for one by one: the scan answers.
            var many: [String] = []
            for i in 0..<(SQLStore.catalogProbeLimit + 2) {
                many.append(try await makeRun(store, experiment: "0", name: "many-\(i)", start: 5, tags: [Tag("once-\(i)", "v")]))
            }
            try await expectExact("many single-run keys")
            for id in many { try await store.setRunLifecycle(id: id, stage: .deleted, now: 12) }
            try await expectExact("many keys whose runs are deleted")
            // A deleted experiment's runs are deleted with it, and come back with it.
            try await store.setExperimentLifecycle(id: 1, stage: .deleted, now: 13)
            try await expectExact("experiment deleted")
            #expect(try await store.columnCatalog(experimentIDs: [1]) == ColumnCatalog(params: [], metrics: [], tags: []))
            try await store.setExperimentLifecycle(id: 1, stage: .active, now: 14)
            try await expectExact("experiment restored")
            // Imported runs (also deleted ones) and purged runs.
            let imported = "fedcba9876543210fedcba9876543210"
            var run = Run(info: RunInfo(runID: imported, experimentID: "1", runName: "imported", userID: "u", status: .finished, startTime: 1, endTime: 2,
                                        artifactURI: "mlflow-artifacts:/1/\(imported)/artifacts", lifecycleStage: .deleted))
            run.params = [Param("imported-param", "1")]
            run.tags = [Tag("imported-tag", "1")]
            _ = try await store.importRun(run, history: [Metric(key: "imported-metric", value: 1, timestamp: 1, step: 0)])
            try await expectExact("a deleted run imported")
            _ = try await store.purgeDeletedRuns(deletedBefore: 100, now: 100, dryRun: false)
            try await expectExact("deleted runs purged")
            // The migration's fill gives the same lists.
            _ = try await store.writeUnaudited { db in
                try db.execute("DELETE FROM experiment_keys")
                for statement in SQLStore.experimentKeysFill.split(separator: ";") where !statement.allSatisfy(\.isWhitespace) {
                    try db.execute(String(statement))
                }
            }
            try await expectExact("filled by the migration")
            // On SQLite the list is read by its primary key and each witness probed by the
            // tables' primary keys: nothing scans the runs or their rows.
            if let sqlite = store as? SQLiteTrackingStore {
                for kind in SQLStore.CatalogKind.allCases {
                    let plan = try await sqlite.readSQLite { db in
                        try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + SQLStore.catalogListSQL(kind, experiments: 1), arguments: [0, kind.rawValue])
                            .map { $0["detail"] as String }
                    }
                    #expect(plan.first?.hasPrefix("SEARCH k USING PRIMARY KEY (experiment_id=? AND kind=?)") == true, "\(plan)")
                    #expect(!plan.contains { $0.hasPrefix("SCAN") || $0.contains("TEMP B-TREE") }, "\(plan)")
                }
            }
            #expect(try await store.columnCatalog(experimentIDs: [0, 1]) == ColumnCatalog(params: ["depth", "lr", "only-first"], metrics: ["acc", "f1", "loss"],
                                                                                       tags: ["mlflow.runName", "team"]))
        }
    }

    @Test("Group counts count the filtered runs per param value, runs without the param as missing", arguments: StoreBackend.allCases)
    func groups(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            for (i, lr) in ["0.1", "0.1", "0.01", nil].enumerated() {
                _ = try await makeRun(store, experiment: "0", name: "r\(i)", start: Int64(i), params: lr.map { [Param("lr", $0)] } ?? [],
                                      metrics: [Metric(key: "acc", value: Double(i), timestamp: 1, step: 0)])
            }
            let all = try await store.groupCounts(try search([0]), entity: .param, key: "lr")
            #expect(all == [GroupCount(value: "0.1", count: 2), GroupCount(value: "0.01", count: 1), GroupCount(value: nil, count: 1)])
            let filtered = try await store.groupCounts(try search([0], "metrics.acc >= 1"), entity: .param, key: "lr")
            #expect(filtered == [GroupCount(value: "0.01", count: 1), GroupCount(value: "0.1", count: 1), GroupCount(value: nil, count: 1)])
        }
    }

    @Test("Bucketed series read steps, wall time or time since the first point, restricted to a zoom range", arguments: StoreBackend.allCases)
    func series(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            var metrics: [Metric] = []
            for step in 0..<100 {
                let value: Double = step == 42 ? 1000 : Double(step)
                metrics.append(Metric(key: "loss", value: value, timestamp: 5000 + Int64(step) * 10, step: Int64(step)))
            }
            let a = try await makeRun(store, experiment: "0", name: "a", start: 1, metrics: Array(metrics[0..<50]))
            try await store.logRunWrites(runID: a, RunWrites(metrics: Array(metrics[50...])))
            let steps = try await store.bucketedSeries(SeriesQuery(runIDs: [a, "unknown"], keys: ["loss", "nope"], axis: .step, minX: nil, maxX: nil, buckets: 10))
            #expect(steps.count == 1)
            #expect(steps[0].pointCount == 100)
            #expect(steps[0].buckets.count == 10)
            #expect(steps[0].buckets[4].max == 1000)
            let zoomed = try await store.bucketedSeries(SeriesQuery(runIDs: [a], keys: ["loss"], axis: .step, minX: 40, maxX: 59, buckets: 20))
            #expect(zoomed[0].pointCount == 20)
            #expect(zoomed[0].buckets.map(\.lastX) == Array(40...59))
            let time = try await store.bucketedSeries(SeriesQuery(runIDs: [a], keys: ["loss"], axis: .time, minX: 5100, maxX: 5190, buckets: 100))
            #expect(time[0].buckets.first?.firstX == 5100)
            #expect(time[0].pointCount == 10)
            let relative = try await store.bucketedSeries(SeriesQuery(runIDs: [a], keys: ["loss"], axis: .relative, minX: nil, maxX: nil, buckets: 1000))
            #expect(relative[0].buckets.first?.firstX == 0)
            #expect(relative[0].buckets.last?.lastX == 990)
        }
    }

    @Test("Experiment summaries count active runs and report the latest activity", arguments: StoreBackend.allCases)
    func summaries(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.createExperiment(name: "b-exp", artifactLocation: nil, tags: [], now: 100)
            let alive = try await makeRun(store, experiment: "1", name: "r", start: 5_000)
            let gone = try await makeRun(store, experiment: "1", name: "r2", start: 7_000)
            try await store.setRunLifecycle(id: gone, stage: .deleted, now: 8)
            let list = try await store.experimentSummaries(viewType: .activeOnly)
            #expect(list.map(\.experiment.name) == ["Default", "b-exp"])
            #expect(list[1].runCount == 1)
            #expect(list[1].lastActivity == 7_000)
            #expect(list[0].runCount == 0)
            // A run's end counts too (a run ending after every start), and a run of another experiment does not.
            let other = try await store.createExperiment(name: "c-exp", artifactLocation: nil, tags: [], now: 100)
            _ = try await makeRun(store, experiment: other.experimentID, name: "late", start: 50_000)
            _ = try await store.updateRun(id: alive, status: .finished, endTime: 9_000, runName: nil, now: 9_000)
            let after = try await store.experimentSummaries(viewType: .all)
            #expect(after.map(\.experiment.name) == ["Default", "b-exp", "c-exp"])
            #expect(after[1].runCount == 1)
            #expect(after[1].lastActivity == 9_000)
            #expect(after[2].runCount == 1)
            #expect(after[2].lastActivity == 50_000)
        }
    }

    @Test("Storage: files go to their run, a blob another run shares is not unique, metric bytes are counted", arguments: StoreBackend.allCases)
    func storageUsage(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let a = try await makeRun(store, experiment: "0", name: "a", start: 1,
                                      metrics: (0..<100).map { Metric(key: "loss", value: Double($0), timestamp: Int64($0), step: Int64($0)) })
            let b = try await makeRun(store, experiment: "0", name: "b", start: 2)
            let shared = String(repeating: "a", count: 64), own = String(repeating: "b", count: 64), model = String(repeating: "c", count: 64)
            try await store.recordArtifact(ArtifactEntry(path: "0/\(a)/artifacts/model.pkl", digest: shared, size: 1000), now: 1)
            try await store.recordArtifact(ArtifactEntry(path: "0/\(a)/artifacts/copy/model.pkl", digest: shared, size: 1000), now: 1)
            try await store.recordArtifact(ArtifactEntry(path: "0/\(a)/artifacts/notes.txt", digest: own, size: 10), now: 1)
            try await store.recordArtifact(ArtifactEntry(path: "0/\(b)/artifacts/model.pkl", digest: shared, size: 1000), now: 1)
            try await store.recordArtifact(ArtifactEntry(path: "0/models/m-1/artifacts/MLmodel", digest: model, size: 5), now: 1)

            // A run whose folder lies outside the experiment's (an imported run), and one inside that one's;
            // a sibling folder whose name only starts the same belongs to neither.
            let moved = try await makeRun(store, experiment: "0", name: "moved", start: 3, artifactURI: "mlflow-artifacts:/elsewhere/m")
            let nested = try await makeRun(store, experiment: "0", name: "nested", start: 4, artifactURI: "mlflow-artifacts:/elsewhere/m/inner")
            try await store.recordArtifact(ArtifactEntry(path: "elsewhere/m/data.csv", digest: String(repeating: "f", count: 64), size: 10), now: 1)
            try await store.recordArtifact(ArtifactEntry(path: "elsewhere/m/inner/w.bin", digest: String(repeating: "d", count: 64), size: 7), now: 1)
            try await store.recordArtifact(ArtifactEntry(path: "elsewhere/m0/other.bin", digest: String(repeating: "e", count: 64), size: 99), now: 1)

            let usage = try #require(try await store.storageUsage(experimentIDs: [0]).first)
            #expect(usage.runCount == 4)
            let runMoved = try #require(usage.runs.first { $0.runId == moved }).storage
            #expect(runMoved.artifactFiles == 1 && runMoved.artifactBytes == 10 && runMoved.uniqueBytes == 10)
            let runNested = try #require(usage.runs.first { $0.runId == nested }).storage
            #expect(runNested.artifactFiles == 1 && runNested.artifactBytes == 7 && runNested.uniqueBytes == 7)
            let runA = try #require(usage.runs.first { $0.runId == a }).storage
            #expect(runA.artifactFiles == 3 && runA.artifactBytes == 2010)
            #expect(runA.blobBytes == 1010 && runA.uniqueBytes == 10 && runA.sharedBytes == 1000)
            #expect(runA.metricPoints == 100 && runA.metricBytes > 0)
            let runB = try #require(usage.runs.first { $0.runId == b }).storage
            #expect(runB.blobBytes == 1000 && runB.uniqueBytes == 0 && runB.metricPoints == 0)
            // The experiment: every blob once, all of them its own; the logged model's file included,
            // each file of the nested run folders once, the sibling's not.
            #expect(usage.storage.artifactFiles == 7 && usage.storage.blobBytes == 1032 && usage.storage.uniqueBytes == 1032)
            #expect(usage.storage.metricPoints == 100 && usage.storage.metricBytes == runA.metricBytes)
        }
    }

    @Test("Cost inputs carry each active run's status, latest wall and CPU time (NaN kept) and GPUs, and nothing of other runs", arguments: StoreBackend.allCases)
    func costInputs(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let priced = try await makeRun(store, experiment: "0", name: "a", start: 1, tags: [Tag("cairn.host.gpus", "A100;T4")], metrics: [
                Metric(key: "cairn.wall_time_s", value: 10, timestamp: 1, step: 0), Metric(key: "cairn.wall_time_s", value: 3600, timestamp: 2, step: 1),
                Metric(key: "cairn.cpu_time_s", value: .nan, timestamp: 1, step: 0), Metric(key: "loss", value: 1, timestamp: 1, step: 0)])
            _ = try await store.updateRun(id: priced, status: .finished, endTime: 5, runName: nil, now: 5)
            let bare = try await makeRun(store, experiment: "0", name: "b", start: 2)
            let gone = try await makeRun(store, experiment: "0", name: "c", start: 3)
            try await store.setRunLifecycle(id: gone, stage: .deleted, now: 6)
            let inputs = try await store.costInputs(experimentIDs: [0]).sorted { ($0.wallSeconds ?? 0) > ($1.wallSeconds ?? 0) }
            #expect(inputs.count == 2)
            #expect(inputs[0].status == .finished && inputs[0].wallSeconds == 3600 && inputs[0].cpuSeconds?.isNaN == true && inputs[0].gpus == "A100;T4")
            #expect(inputs[1].status == .running && inputs[1].wallSeconds == nil && inputs[1].cpuSeconds == nil && inputs[1].gpus == nil)
            #expect(try await store.costInputs(experimentIDs: nil).count == 2)
            _ = bare
        }
    }

    @Test("The dashboard's reproductions and audit events per day come from the runs' tags and the audit log", arguments: StoreBackend.allCases)
    func reproductionsAndAudit(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let day: Int64 = 86_400_000
            let original = try await makeRun(store, experiment: "0", name: "o", start: 10 * day)
            let again = try await makeRun(store, experiment: "0", name: "r", start: 10 * day + 1000,
                                          tags: [Tag("cairn.reproduce.of", original), Tag("cairn.reproduce.status", "reproduced")])
            _ = try await store.updateRun(id: again, status: .finished, endTime: 10 * day + 61_000, runName: nil, now: 1)
            _ = try await makeRun(store, experiment: "0", name: "u", start: 10 * day + 2000, tags: [Tag("cairn.reproduce.of", original)])
            let figures = try await store.dashboardReproductionsAndAudit(since: 10 * day, until: 11 * day, experimentIDs: [0])
            #expect(figures.reproductions.count == 1)
            #expect(figures.reproductions.first?.start == 10 * day + 1000 && figures.reproductions.first?.end == 10 * day + 61_000)
            #expect(figures.reproductions.first?.status == "reproduced")
            let audit = try await store.dashboardReproductionsAndAudit(since: 0, until: Int64(Date().timeIntervalSince1970 * 1000) + day, experimentIDs: nil).auditByDay
            #expect(audit.reduce(0) { $0 + $1.events } >= 5 && audit.allSatisfy { $0.withActor <= $0.events && $0.day % day == 0 })
        }
    }

    @Test("Exclusive artifact bytes: blobs only the folders' files use, each file once, siblings with a longer name outside", arguments: StoreBackend.allCases)
    func exclusiveArtifactBytes(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let files = [
                ("0/run1/artifacts/a.txt", "d-only-run1", 10), ("0/run1/artifacts/sub/b.txt", "d-shared", 20),
                ("0/run10/artifacts/c.txt", "d-shared", 20), ("0/run10/artifacts/d.txt", "d-only-run10", 40),
                ("0/rün2/artifacts/e.txt", "d-only-run2", 80), ("0/rün2/artifacts/f.txt", "d-only-run2", 80),
            ]
            for (path, digest, size) in files {
                try await store.recordArtifact(ArtifactEntry(path: path, digest: digest, size: Int64(size)), now: 1)
            }
            // run1 alone: its own blob; the shared one is also run10's ("0/run10" is not under "0/run1").
            #expect(try await store.exclusiveArtifactBytes(folders: ["0/run1"]) == (blobs: 1, bytes: 10))
            // Both: the shared blob too. A folder inside another listed one counts its files once.
            #expect(try await store.exclusiveArtifactBytes(folders: ["0/run1", "0/run10", "0/run1/artifacts/sub"]) == (blobs: 3, bytes: 70))
            // A blob two files of the folder share counts once; a non-ASCII folder name matches.
            #expect(try await store.exclusiveArtifactBytes(folders: ["0/rün2"]) == (blobs: 1, bytes: 80))
            #expect(try await store.exclusiveArtifactBytes(folders: ["0/none"]) == (blobs: 0, bytes: 0))
        }
    }
}
