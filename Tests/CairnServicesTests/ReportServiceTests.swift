import CairnArtifacts
import CairnCore
import CairnServices
import CairnStore
import CairnTestSupport
import Foundation
import NIOCore
import Synchronization
import Testing

/// The health report keeps blob checks instead of re-hashing every artifact on each request.
@Suite("Health report: kept blob checks")
struct ReportServiceTests {
    static let day: Int64 = 24 * 3_600_000

    struct Fixture {
        let directory: TemporaryDirectory
        let tracking: TrackingService
        let artifacts: ArtifactService
        let blobs: LocalBlobStore
        let clock = StoppedClock()

        /// A clock that moves only when told to.
        final class StoppedClock: Sendable {
            let time = Mutex<Int64>(1_700_000_000_000)
            func now() -> Int64 { time.withLock { $0 } }
        }

        init(_ store: SQLStore) throws {
            directory = try TemporaryDirectory()
            blobs = try LocalBlobStore(root: URL(fileURLWithPath: directory.file("artifacts")))
            let clock = self.clock
            tracking = TrackingService(store: store, now: { clock.now() })
            artifacts = ArtifactService(index: store, blobs: blobs, tracking: tracking)
        }

        func advance(days: Int64) { clock.time.withLock { $0 += days * ReportServiceTests.day } }

        func report(budget: Int64 = 64 << 20) async throws -> HealthReport {
            try await ReportService(tracking: tracking, artifacts: artifacts, verifyBudgetBytes: budget).report(experimentIDs: ["0"])
        }

        /// A run with `count` files of 10 bytes each, every one its own blob.
        func runWithFiles(_ count: Int) async throws -> [ArtifactEntry] {
            let run = try await tracking.createRun(experimentID: "0", userID: nil, runName: "r", startTime: nil, tags: [])
            let root = ArtifactService.proxyPath(fromArtifactURI: run.info.artifactURI)!
            var entries: [ArtifactEntry] = []
            for i in 0..<count {
                entries.append(try await artifacts.upload(path: "\(root)/f\(i).txt", body: ByteBufferChunks([ByteBuffer(string: "content \(i)\n")])))
            }
            return entries
        }

        func damage(_ entry: ArtifactEntry) throws {
            try Data("tampered!!".utf8).write(to: try #require(blobs.fileURL(for: entry.digest)))
        }
    }

    @Test("Checks are kept: a second report re-hashes nothing, damage is found once the check is due", arguments: StoreBackend.allCases)
    func keptChecks(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let f = try Fixture(store)
            defer { f.directory.remove() }
            let entries = try await f.runWithFiles(3)

            let first = try await f.report()
            #expect((first.blobs, first.verified, first.unchecked, first.checkedNow) == (3, 3, 0, 3))
            #expect(first.oldestCheck == f.tracking.now())

            // Damaged after its check: within the week, the kept result stands and nothing is read.
            try f.damage(entries[1])
            f.advance(days: 6)
            let second = try await f.report()
            #expect((second.verified, second.damaged, second.checkedNow) == (3, 0, 0))

            // A week after the check it is due again, and the damage is found; a failed result is
            // re-checked on every report until it passes.
            f.advance(days: 1)
            let third = try await f.report()
            #expect((third.verified, third.damaged, third.checkedNow) == (2, 1, 3))
            let fourth = try await f.report()
            #expect((fourth.damaged, fourth.checkedNow) == (1, 1))
        }
    }

    @Test("Each report re-hashes at most its budget, never-checked blobs first, and says how many are left", arguments: StoreBackend.allCases)
    func budget(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let f = try Fixture(store)
            defer { f.directory.remove() }
            _ = try await f.runWithFiles(5)
            // 10-byte blobs, 25 bytes a report: two per report (and always at least one).
            var seen: [(Int, Int, Int)] = []
            for _ in 0..<3 {
                let report = try await f.report(budget: 25)
                seen.append((report.checkedNow, report.verified, report.unchecked))
            }
            #expect(seen.map(\.0) == [2, 2, 1])
            #expect(seen.map(\.1) == [2, 4, 5])
            #expect(seen.map(\.2) == [3, 1, 0])
            #expect(try await f.report(budget: 0).checkedNow == 0)
        }
    }

    @Test("cairn verify keeps its results, so the report that follows re-hashes nothing", arguments: StoreBackend.allCases)
    func verifyFeedsTheReport(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let f = try Fixture(store)
            defer { f.directory.remove() }
            let entries = try await f.runWithFiles(2)
            try f.damage(entries[0])
            #expect(try await f.artifacts.verify().damaged.map(\.digest) == [entries[0].digest])
            let report = try await f.report()
            #expect((report.verified, report.damaged, report.checkedNow) == (1, 1, 1))
        }
    }
}
