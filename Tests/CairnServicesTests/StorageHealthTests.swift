import CairnCore
import CairnServices
import Synchronization
import Testing

@Suite("Storage health")
struct StorageHealthTests {
    final class Service: Sendable {
        let down = Mutex(false)
        let asked = Mutex(0)

        func check() throws {
            asked.withLock { $0 += 1 }
            if down.withLock({ $0 }) {
                throw CairnError(.temporarilyUnavailable, "Cannot reach PostgreSQL at db:5432.")
            }
        }
    }

    @Test("A service that does not answer is a problem until it answers again; answers are reused within the interval")
    func probes() async throws {
        let service = Service()
        let fresh = StorageHealth(watched: [], probes: [("database", { try service.check() })], probeInterval: .zero)
        #expect(await fresh.problems().isEmpty)
        service.down.withLock { $0 = true }
        #expect(await fresh.problems() == ["database unavailable: Cannot reach PostgreSQL at db:5432."])
        service.down.withLock { $0 = false }
        #expect(await fresh.problems().isEmpty)

        let cached = StorageHealth(watched: [], probes: [("database", { try service.check() })], probeInterval: .seconds(3600))
        let before = service.asked.withLock { $0 }
        for _ in 0..<5 { #expect(await cached.problems().isEmpty) }
        #expect(service.asked.withLock { $0 } == before + 1)
    }
}
