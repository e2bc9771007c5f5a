import CairnCore
import CairnTestSupport
import Foundation
import Testing
@testable import CairnStore

@Suite("SQLite logged models")
struct LoggedModelStoreTests {
    func makeModel(_ store: SQLStore, name: String, created: Int64) async throws -> LoggedModel {
        let id = "m-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        return try await store.createLoggedModel(LoggedModel(
            modelID: id, experimentID: "0", name: name, artifactURI: "mlflow-artifacts:/0/models/\(id)/artifacts",
            creationTimestamp: created, lastUpdatedTimestamp: created, status: .pending, params: [Param("depth", "\(created)")]))
    }

    func makeRun(_ store: SQLStore) async throws -> String {
        let id = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let info = RunInfo(runID: id, experimentID: "0", runName: "r", userID: "", status: .running, startTime: 1, endTime: nil,
                           artifactURI: "x", lifecycleStage: .active)
        return try await store.createRun(NewRun(info: info, tags: [])).info.runID
    }

    @Test("Metrics logged with a model id land on the model; search filters and orders by them per dataset", arguments: StoreBackend.allCases)
    func modelMetricsAndSearch(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let runID = try await makeRun(store)
            let a = try await makeModel(store, name: "a", created: 1)
            let b = try await makeModel(store, name: "b", created: 2)
            let c = try await makeModel(store, name: "c", created: 3)
            try await store.logRunWrites(runID: runID, RunWrites(metrics: [
                Metric(key: "acc", value: 0.7, timestamp: 1, step: 0, modelID: a.modelID, datasetName: "val", datasetDigest: "d1"),
                Metric(key: "acc", value: 0.95, timestamp: 1, step: 0, modelID: a.modelID, datasetName: "train", datasetDigest: "d2"),
                Metric(key: "acc", value: 0.8, timestamp: 1, step: 0, modelID: b.modelID, datasetName: "val", datasetDigest: "d1"),
            ]))
            let loaded = try await store.fetchLoggedModel(id: a.modelID, allowDeleted: false)
            #expect(loaded.metrics.count == 2)
            #expect(loaded.metrics.allSatisfy { $0.runID == runID })
            func names(_ filter: String, datasets: [DatasetFilter] = [], order: [LoggedModelOrder] = []) async throws -> [String] {
                let search = LoggedModelSearch(experimentIDs: [0], filter: try SearchFilterParser.parse(filter, for: .loggedModels),
                                               datasets: datasets, orderBy: order, maxResults: 10, offset: 0)
                return try await store.searchLoggedModels(search).items.map(\.name)
            }
            #expect(try await names("") == ["c", "b", "a"])
            #expect(try await names("metrics.acc > 0.75", datasets: [DatasetFilter(name: "val", digest: nil)]) == ["b"])
            #expect(try await names("params.depth = '2' OR name LIKE 'c%'") == ["c", "b"])
            let byAcc = [LoggedModelOrder(clause: OrderByClause(FilterIdentifier(.metric, "acc"), ascending: false), dataset: DatasetFilter(name: "val", digest: "d1"))]
            #expect(try await names("", order: byAcc) == ["b", "a", "c"])
            try await store.deleteLoggedModel(id: c.modelID, now: 9)
            #expect(try await names("") == ["b", "a"])
            await #expect(throws: CairnError.self) { _ = try await store.fetchLoggedModel(id: c.modelID, allowDeleted: false) }
            #expect(try await store.fetchLoggedModel(id: c.modelID, allowDeleted: true).lifecycleStage == .deleted)
        }
    }

    @Test("A metric naming an unknown model rejects the whole batch", arguments: StoreBackend.allCases)
    func unknownModel(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let runID = try await makeRun(store)
            await #expect(throws: CairnError.self) {
                try await store.logRunWrites(runID: runID, RunWrites(
                    metrics: [Metric(key: "acc", value: 1, timestamp: 1, step: 0, modelID: "m-nope")], params: [Param("p", "1")]))
            }
            let run = try await store.fetchRun(id: runID)
            #expect(run.metrics.isEmpty && run.params.isEmpty)
        }
    }

    @Test("In one shared transaction, a failing request rolls back only itself", arguments: StoreBackend.allCases)
    func groupCommitIsolation(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let runID = try await makeRun(store)
            try await store.logRunWrites(runID: runID, RunWrites(params: [Param("fixed", "1")]))
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for i in 0..<40 {
                    group.addTask {
                        do {
                            let params = i.isMultiple(of: 2) ? [Param("fixed", "2")] : [Param("p\(i)", "v")]
                            try await store.logRunWrites(runID: runID, RunWrites(tags: [Tag("t\(i)", "x")]).with(params: params))
                            return true
                        } catch {
                            return false
                        }
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 }.count == 20)
            let run = try await store.fetchRun(id: runID)
            #expect(run.params.count == 21)
            #expect(run.tags.count == 20)
            #expect(run.params.contains(Param("fixed", "1")))
        }
    }
}

private extension RunWrites {
    func with(params: [Param]) -> RunWrites {
        var copy = self
        copy.params = params
        return copy
    }
}
