import CairnCore
import CairnTestSupport
import Foundation
import Testing

@testable import CairnStore

/// PostgreSQL going away under a running store: requests answer TEMPORARILY_UNAVAILABLE (503)
/// and change nothing; when the database is back the store reconnects by itself, and
/// everything acknowledged before is still there.
@Suite("PostgreSQL faults")
struct PostgresFaultTests {
    @Test("A restarted or unreachable database gives 503s, then the store recovers by itself; nothing acknowledged is lost")
    func restart() async throws {
        let cluster = try ThrowawayPostgresCluster()
        defer { cluster.remove() }
        let store = try PostgresTrackingStore(location: cluster.location, poolSize: 3)
        defer { store.shutdown() }
        let before = try await store.createExperiment(name: "before", artifactLocation: nil, tags: [], now: 1)
        try await store.ping()

        try cluster.stop()
        // What /health asks: the database does not answer.
        await #expect { try await store.ping() } throws: { ($0 as? CairnError)?.code == .temporarilyUnavailable }
        for _ in 0..<3 {
            do {
                _ = try await store.createExperiment(name: "while-down", artifactLocation: nil, tags: [], now: 2)
                Issue.record("a write succeeded while the database was down")
            } catch let error as CairnError {
                #expect(error.code == .temporarilyUnavailable, "\(error)")
            }
            do {
                _ = try await store.fetchExperiment(id: 0)
                Issue.record("a read succeeded while the database was down")
            } catch let error as CairnError {
                #expect(error.code == .temporarilyUnavailable, "\(error)")
            }
        }

        try cluster.start()
        // The first request on each broken pooled connection may still fail; the store drops
        // that connection and the next request opens a new one. Bounded by count, not time.
        var recovered = false
        for _ in 0..<10 where !recovered {
            recovered = (try? await store.fetchExperiment(id: Int64(before.experimentID)!)) != nil
        }
        #expect(recovered)
        var answers = false
        for _ in 0..<10 where !answers {
            answers = (try? await store.ping()) != nil
        }
        #expect(answers)
        #expect(try await store.fetchExperiment(name: "before") != nil)
        #expect(try await store.fetchExperiment(name: "while-down") == nil)
        _ = try await store.createExperiment(name: "after", artifactLocation: nil, tags: [], now: 3)
        #expect(try await store.fetchExperiment(name: "after") != nil)
    }

    @Test("An unreachable database at start is one clear error")
    func unreachableAtStart() async throws {
        let cluster = try ThrowawayPostgresCluster()
        try cluster.stop()
        defer { cluster.remove() }
        #expect {
            _ = try PostgresTrackingStore(location: cluster.location, poolSize: 2)
        } throws: { error in
            (error as? CairnError)?.code == .temporarilyUnavailable
        }
    }
}
