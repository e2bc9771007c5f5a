import CairnCore
import CairnServices
import CairnStore
import CairnTestSupport
import Foundation
import Testing

/// Two replicas are two stores on one PostgreSQL database, each with its own connections and
/// group commit, as two `cairn server` processes would be. Whatever one acknowledges the other
/// reads at once, and concurrent changes through both never duplicate, lose or reorder.
@Suite("Replicas on one PostgreSQL database")
struct ReplicaTests {
    struct Replica {
        let store: PostgresTrackingStore
        let tracking: TrackingService
        let registry: RegistryService

        init(_ location: PostgresLocation) throws {
            store = try PostgresTrackingStore(location: location, poolSize: 4)
            tracking = TrackingService(store: store)
            registry = RegistryService(registry: store, tracking: tracking)
        }
    }

    /// Two replicas started at the same moment on a new database (they race to migrate it).
    static func withReplicas(_ body: (Replica, Replica) async throws -> Void) async throws {
        let location = try await PostgresTestServer.shared.createDatabase()
        async let first = Task.detached { try Replica(location) }.value
        async let second = Task.detached { try Replica(location) }.value
        let (a, b) = try await (first, second)
        defer {
            a.store.shutdown()
            b.store.shutdown()
        }
        try await body(a, b)
        try await PostgresTestServer.shared.dropDatabase(location.database)
    }

    @Test("A write acknowledged by one replica is read by the other at once")
    func readYourWrites() async throws {
        try await Self.withReplicas { a, b in
            for i in 0..<20 {
                let run = try await a.tracking.createRun(experimentID: "0", userID: "u", runName: "r\(i)", startTime: Int64(i), tags: [])
                try await a.tracking.logBatch(runID: run.info.runID, metrics: [Metric(key: "loss", value: Double(i), timestamp: 1, step: 0)],
                                              params: [Param("i", "\(i)")], tags: [])
                let seen = try await b.tracking.getRun(id: run.info.runID)
                #expect(seen.params == [Param("i", "\(i)")])
                #expect(seen.metrics.map(\.value) == [Double(i)])
            }
        }
    }

    @Test("Concurrent experiments, runs, points and model versions through two replicas: nothing duplicated, lost or reordered")
    func concurrentWrites() async throws {
        try await Self.withReplicas { a, b in
            let shared = try await a.tracking.createRun(experimentID: "0", userID: "u", runName: "shared", startTime: 1, tags: [])
            _ = try await a.registry.createRegisteredModel(name: "clf", tags: [], description: nil, user: "u")
            let writers = 16
            try await withThrowingTaskGroup(of: Void.self) { group in
                for w in 0..<writers {
                    let replica = w % 2 == 0 ? a : b
                    group.addTask {
                        _ = try await replica.tracking.createExperiment(name: "exp-\(w)", artifactLocation: nil, tags: [])
                        _ = try await replica.tracking.createRun(experimentID: "0", userID: "u", runName: "w\(w)", startTime: Int64(w), tags: [])
                        for step in 0..<25 {
                            try await replica.tracking.logBatch(
                                runID: shared.info.runID,
                                metrics: [Metric(key: "w\(w)", value: Double(step), timestamp: Int64(step), step: Int64(step))],
                                params: [], tags: [])
                        }
                        _ = try await replica.registry.createModelVersion(name: "clf", source: "s3://bucket/\(w)", runID: nil, runLink: nil,
                                                                          description: nil, tags: [], modelID: nil, user: "u")
                    }
                }
                try await group.waitForAll()
            }
            // Experiment ids are unique and dense: each replica saw the other's ids before choosing.
            let experiments = try await b.tracking.searchExperiments(filter: nil, orderBy: [], viewType: .all, maxResults: 1000, pageToken: nil).items
            #expect(experiments.count == writers + 1)
            #expect(Set(experiments.map(\.experimentID)).count == writers + 1)
            #expect(Set(experiments.map(\.experimentID)) == Set((0...writers).map(String.init)))
            // Every point of every writer, in order, once.
            for w in 0..<writers {
                let history = try await a.tracking.getMetricHistory(runID: shared.info.runID, key: "w\(w)", maxResults: nil, pageToken: nil).items
                #expect(history.map(\.step) == (0..<25).map(Int64.init), "writer \(w)")
            }
            // Version numbers 1…n, each once.
            let versions = try await b.registry.searchModelVersions(filter: "name = 'clf'", maxResults: 1000, orderBy: [], pageToken: nil).items
            #expect(versions.map(\.version).sorted() == Array(1...Int64(writers)))
            #expect(Set(versions.map(\.source)).count == writers)
        }
    }
}
