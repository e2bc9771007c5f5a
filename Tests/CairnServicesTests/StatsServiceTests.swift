import CairnCore
import CairnServices
import CairnStore
import CairnTestSupport
import Foundation
import Testing

/// The rules of honest comparison on both backends: grouping by configuration, what does not
/// count, pairing by seeds, bands on aligned steps, online reports. The arithmetic itself is
/// checked against scipy (`StatisticsTests`, `compat/test_stats.py`).
@Suite("Statistics service")
struct StatsServiceTests {
    struct Fixture {
        let tracking: TrackingService
        let stats: StatsService
        let experiment: String

        init(_ store: SQLStore) async throws {
            tracking = TrackingService(store: store)
            let explorer = ExplorerService(store: store)
            stats = StatsService(explorer: explorer, tracking: tracking, registry: RegistryService(registry: store, tracking: tracking))
            experiment = try await tracking.createExperiment(name: "stats-\(UUID().uuidString)", artifactLocation: nil, tags: []).experimentID
        }

        @discardableResult
        func run(_ params: [String: String], _ metrics: [String: [Double]], status: RunStatus = .finished, tags: [CairnCore.Tag] = []) async throws -> String {
            let run = try await tracking.createRun(experimentID: experiment, userID: nil, runName: nil, startTime: 1_700_000_000_000, tags: tags)
            var points: [Metric] = []
            for (key, values) in metrics {
                for (step, value) in values.enumerated() { points.append(Metric(key: key, value: value, timestamp: 1_700_000_000_000 + Int64(step), step: Int64(step))) }
            }
            try await tracking.logBatch(runID: run.info.runID, metrics: points, params: params.map { Param($0.key, $0.value) }, tags: [])
            if status != .running { _ = try await tracking.updateRun(id: run.info.runID, status: status, endTime: 1_700_000_100_000, runName: nil) }
            return run.info.runID
        }
    }

    @Test("Groups by configuration: seeds are repeats, and runs that do not count are counted", arguments: StoreBackend.allCases)
    func groupsByConfiguration(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let f = try await Fixture(store)
            for seed in 0..<3 {
                try await f.run(["model": "a", "lr": "0.1", "seed": "\(seed)"], ["acc": [0.5, 0.70 + Double(seed) / 100]])
                try await f.run(["model": "b", "lr": "0.1", "seed": "\(seed)"], ["acc": [0.5, 0.80 + Double(seed) / 100]])
            }
            try await f.run(["model": "b", "lr": "0.1", "seed": "7"], ["acc": [0.99]], status: .failed)
            try await f.run(["model": "b", "lr": "0.1", "seed": "8"], ["acc": [0.99]], status: .running)
            try await f.run(["model": "b", "lr": "0.1", "seed": "9"], ["loss": [1]])
            try await f.run(["model": "b", "lr": "0.1", "seed": "10"], ["acc": [.nan]])

            let report = try await f.stats.groups(StatsRequest(experimentIDs: [f.experiment], metrics: ["acc"]))
            #expect(report.byConfiguration)
            #expect(report.groupBy == ["params.model"])  // lr is the same everywhere, seed is seed-like
            #expect(report.groups.map(\.key) == ["model=a", "model=b"])
            let b = try #require(report.groups.last?.metrics.first)
            #expect(b.n == 3)
            #expect(abs(b.mean! - 0.81) < 1e-12)
            #expect(b.excluded == { var e = ExcludedRuns(); e.failed = 1; e.unfinished = 1; e.missing = 1; e.nonfinite = 1; return e }())
            #expect(b.lastStep == 1)
        }
    }

    @Test("Runs that share seeds are paired; a clear difference is 'better', Holm-adjusted", arguments: StoreBackend.allCases)
    func pairedComparison(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let f = try await Fixture(store)
            let offsets = [0.0, 0.05, -0.04, 0.02, 0.01]
            for (seed, offset) in offsets.enumerated() {
                try await f.run(["model": "small", "seed": "\(seed)"], ["val_acc": [0.7 + offset], "val_loss": [0.5 - offset]])
                try await f.run(["model": "large", "seed": "\(seed)"], ["val_acc": [0.75 + offset + Double(seed) * 0.001], "val_loss": [0.5 - offset]])
            }
            let result = try await f.stats.compare(
                StatsRequest(experimentIDs: [f.experiment], groupBy: ["params.model"], metrics: ["val_acc", "val_loss"]),
                baseline: "small", correction: nil, pair: nil)
            #expect(result.baseline == "model=small")
            #expect(result.correction == "holm")
            let acc = try #require(result.comparisons.first { $0.metric == "val_acc" })
            #expect(acc.paired)
            #expect(acc.pairedBy == ["params.seed"])
            #expect(acc.verdict == "better")
            #expect(acc.summary.hasPrefix("Better: model=large beats model=small on val_acc"))
            let loss = try #require(result.comparisons.first { $0.metric == "val_loss" })
            #expect(loss.direction == .minimize)
            #expect(loss.verdict == "inconclusive")  // identical in both groups: no difference at all
            #expect(acc.pAdjusted! >= acc.p!)
        }
    }

    @Test("Bands: buckets line up across groups by step", arguments: StoreBackend.allCases)
    func bands(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let f = try await Fixture(store)
            for seed in 0..<2 {
                try await f.run(["model": "a", "seed": "\(seed)"], ["acc": (0..<4).map { Double($0 + seed) }])
                try await f.run(["model": "b", "seed": "\(seed)"], ["acc": (0..<8).map { Double(2 * $0 + seed) }])
            }
            let bands = try await f.stats.bands(StatsRequest(experimentIDs: [f.experiment], metrics: ["acc"]), axis: nil, buckets: 8, band: "minmax")
            let a = try #require(bands.series.first { $0.group == "model=a" })
            let b = try #require(bands.series.first { $0.group == "model=b" })
            #expect(a.x == [0, 1, 2, 3])
            #expect(b.x == Array(0...7))
            #expect(a.mean == [0.5, 1.5, 2.5, 3.5])
            #expect(b.low[3] == 6 && b.high[3] == 7)
        }
    }

    @Test("Online report: a planted sample-ratio mismatch is flagged", arguments: StoreBackend.allCases)
    func onlineMismatch(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let f = try await Fixture(store)
            try await f.run([:], ["exposures": Array(repeating: 1000, count: 5), "buy.conversions": Array(repeating: 100, count: 5)],
                            status: .running, tags: [CairnCore.Tag("cairn.control", "true"), CairnCore.Tag("cairn.variant", "control")])
            try await f.run([:], ["exposures": Array(repeating: 800, count: 5), "buy.conversions": Array(repeating: 100, count: 5)],
                            status: .running, tags: [CairnCore.Tag("cairn.variant", "treatment")])
            let report = try await f.stats.onlineReport(experimentID: f.experiment, metrics: [], level: nil)
            #expect(report.control == "control")
            #expect(report.sampleRatio.mismatch)
            #expect(report.warnings.map(\.code) == ["sample_ratio_mismatch"])
            let buy = try #require(report.metrics.first)
            #expect(buy.kind == "rate")
            #expect(buy.arms.map(\.n) == [5000, 4000])
            #expect(buy.timeline.count == 5)
            let lift = try #require(buy.lifts.first)
            #expect(abs(lift.absolute! - 0.025) < 1e-12)
            #expect(lift.summary.contains("Not trustworthy"))
        }
    }

    @Test("Requests that cannot be answered say why")
    func badRequests() async throws {
        try await withStore(.sqlite) { store in
            let f = try await Fixture(store)
            try await f.run(["model": "a"], ["acc": [1]])
            await #expect(throws: CairnError.self) { try await f.stats.groups(StatsRequest(experimentIDs: [f.experiment])) }
            await #expect(throws: CairnError.self) { try await f.stats.groups(StatsRequest(experimentIDs: [f.experiment], metrics: ["acc"], at: "middle")) }
            do {
                _ = try await f.stats.compare(StatsRequest(experimentIDs: [f.experiment], metrics: ["acc"]), baseline: nil, correction: nil, pair: nil)
                Issue.record("one group compared")
            } catch let error as CairnError {
                #expect(error.message.hasPrefix("Nothing to compare"))
            }
            await #expect(throws: CairnError.self) { try await f.stats.onlineReport(experimentID: f.experiment, metrics: [], level: nil) }
        }
    }

    @Test("Seed-like params: globs, case-insensitive")
    func seedPatterns() {
        let p = StatsService.defaultSeedParams
        for key in ["seed", "torch_seed", "SEED", "seed_data", "cairn.seed.PYTHONHASHSEED", "random_state", "fold", "cv_fold"] {
            #expect(StatsService.isSeedLike(key, p), "\(key)")
        }
        for key in ["lr", "model", "seedling_count_x", "folds_total"] {
            #expect(!StatsService.isSeedLike(key, p), "\(key)")
        }
    }
}
