import CairnArtifacts
import CairnCore
import CairnServices
import CairnStore
import CairnTestSupport
import Foundation
import Testing

/// A run still RUNNING that has logged nothing for the threshold is stale: in the run table's
/// rows and the health report, on both backends.
@Suite("Stale runs")
struct StaleRunsTests {
    static let hour: Int64 = 3_600_000
    static let now: Int64 = 1_800_000_000_000

    @Test("A silent running run is stale; a recently active one, a finished one and a new one are not", arguments: StoreBackend.allCases)
    func staleRows(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let tracking = TrackingService(store: store, now: { Self.now })
            let experiment = try await tracking.createExperiment(name: "stale-\(UUID().uuidString)", artifactLocation: nil, tags: []).experimentID
            func run(_ name: String, start: Int64, lastMetric: Int64?, status: RunStatus = .running) async throws -> String {
                let run = try await tracking.createRun(experimentID: experiment, userID: nil, runName: name, startTime: start, tags: [])
                if let lastMetric {
                    try await tracking.logBatch(runID: run.info.runID, metrics: [Metric(key: "loss", value: 1, timestamp: lastMetric, step: 0)], params: [], tags: [])
                }
                if status != .running { _ = try await tracking.updateRun(id: run.info.runID, status: status, endTime: start + 1, runName: nil) }
                return run.info.runID
            }
            let silent = try await run("silent", start: Self.now - 5 * Self.hour, lastMetric: Self.now - 3 * Self.hour)
            let active = try await run("active", start: Self.now - 5 * Self.hour, lastMetric: Self.now - Self.hour / 2)
            let neverLogged = try await run("never-logged", start: Self.now - 3 * Self.hour, lastMetric: nil)
            _ = try await run("fresh", start: Self.now - Self.hour, lastMetric: nil)
            _ = try await run("finished", start: Self.now - 9 * Self.hour, lastMetric: Self.now - 8 * Self.hour, status: .finished)

            let explorer = ExplorerService(store: store, staleAfterMillis: 2 * Self.hour, now: { Self.now })
            let (rows, _, _) = try await explorer.runTable(experimentIDs: [experiment], filter: nil, orderBy: [], viewType: nil, maxResults: nil)
            let stale = Set(rows.filter { explorer.staleness(of: $0, at: Self.now).stale }.map(\.info.runID))
            #expect(stale == [silent, neverLogged])
            let row = try #require(rows.first { $0.info.runID == active })
            #expect(explorer.staleness(of: row, at: Self.now).lastActivity == Self.now - Self.hour / 2)

            let directory = try TemporaryDirectory()
            let blobs = try LocalBlobStore(root: URL(fileURLWithPath: directory.file("artifacts")))
            let report = try await ReportService(tracking: tracking, artifacts: ArtifactService(index: store, blobs: blobs, tracking: tracking),
                                                 staleAfterMillis: 2 * Self.hour).report(experimentIDs: [experiment])
            #expect(report.running == 4 && report.stale == 2)
        }
    }

    @Test("Durations: 90m, 2h, 1d, 45s, 500ms, plain milliseconds; anything else is refused")
    func durations() {
        #expect(StaleRuns.parseDuration("90m") == Int64(5_400_000))
        #expect(StaleRuns.parseDuration("2h") == 2 * Self.hour)
        #expect(StaleRuns.parseDuration("1.5d") == 36 * Self.hour)
        #expect(StaleRuns.parseDuration("45s") == 45_000)
        #expect(StaleRuns.parseDuration("500ms") == 500)
        #expect(StaleRuns.parseDuration("7200000") == 2 * Self.hour)
        for bad in ["", "h", "-2h", "0", "two hours", "2w", "nanh"] { #expect(StaleRuns.parseDuration(bad) == nil, "\(bad)") }
    }

    @Test("Dashboard: runs per day by status, success rate, failures, running runs (stale first), gate pass rate", arguments: StoreBackend.allCases)
    func dashboard(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let day: Int64 = 86_400_000
            let tracking = TrackingService(store: store, now: { Self.now })
            let experiment = try await tracking.createExperiment(name: "dash-\(UUID().uuidString)", artifactLocation: nil, tags: []).experimentID
            func run(daysAgo: Int64, status: RunStatus, lastMetric: Int64? = nil, hoursAgo: Int64 = 1) async throws {
                let start = Self.now - daysAgo * day - hoursAgo * Self.hour
                let run = try await tracking.createRun(experimentID: experiment, userID: nil, runName: "r", startTime: start, tags: [])
                if let lastMetric { try await tracking.logBatch(runID: run.info.runID, metrics: [Metric(key: "loss", value: 1, timestamp: lastMetric, step: 0)], params: [], tags: []) }
                if status != .running { _ = try await tracking.updateRun(id: run.info.runID, status: status, endTime: start + 1000, runName: nil) }
            }
            try await run(daysAgo: 1, status: .finished)
            try await run(daysAgo: 1, status: .finished)
            try await run(daysAgo: 1, status: .failed)
            try await run(daysAgo: 3, status: .killed)
            try await run(daysAgo: 20, status: .failed)  // outside a week
            try await run(daysAgo: 0, status: .running, lastMetric: Self.now - 5 * Self.hour, hoursAgo: 6)  // stale after 2 h
            try await run(daysAgo: 0, status: .running, lastMetric: Self.now - 60_000)

            let explorer = ExplorerService(store: store, staleAfterMillis: 2 * Self.hour, now: { Self.now })
            let d = try await explorer.dashboard(window: "week", experimentIDs: [experiment])
            #expect(d.days.count == 7)
            let yesterday = try #require(d.days.first { $0.day == (Self.now - day - Self.hour) / day * day })
            #expect(yesterday.finished == 2 && yesterday.failed == 1 && yesterday.successRate == 2.0 / 3)
            #expect(d.successRate == 2.0 / 4)
            #expect(d.recentFailures.map(\.status) == ["FAILED", "KILLED"])
            #expect(d.running.map(\.stale) == [true, false])
            #expect(d.promotionPassRate == nil)
            await #expect(throws: CairnError.self) { try await explorer.dashboard(window: "forever", experimentIDs: []) }
        }
    }
}
