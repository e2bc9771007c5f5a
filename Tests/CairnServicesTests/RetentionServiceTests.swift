import CairnArtifacts
import CairnCore
import CairnServices
import CairnStore
import CairnTestSupport
import Foundation
import NIOCore
import Synchronization
import Testing

/// Retention: the plan keeps what the rule and the registry need, and what `apply` then `gc`
/// free is exactly what the plan said, byte for byte, on both backends.
@Suite("Retention")
struct RetentionServiceTests {
    static let day: Int64 = 86_400_000
    static let now: Int64 = 1_800_000_000_000

    @Test("The plan names the runs to delete and what gc frees; apply deletes exactly those; gc frees exactly those bytes", arguments: StoreBackend.allCases)
    func planApplyCollect(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let directory = try TemporaryDirectory()
            let blobs = try LocalBlobStore(root: URL(fileURLWithPath: directory.file("artifacts")))
            let tracking = TrackingService(store: store, now: { Self.now })
            let artifacts = ArtifactService(index: store, blobs: blobs, tracking: tracking)
            let explorer = ExplorerService(store: store, now: { Self.now })
            let registry = RegistryService(registry: store, tracking: tracking, artifacts: store)
            let retention = RetentionService(tracking: tracking, explorer: explorer, store: store)
            let experiment = try await tracking.createExperiment(name: "ret-\(UUID().uuidString)", artifactLocation: nil,
                                                                 tags: [CairnCore.Tag(RetentionPolicy.tag, "keep_last=2; keep_top=1:val_acc")]).experimentID
            var ids: [String] = []
            func run(_ i: Int, acc: Double, status: RunStatus = .finished, tags: [CairnCore.Tag] = [], file: String) async throws -> String {
                let run = try await tracking.createRun(experimentID: experiment, userID: nil, runName: "r\(i)", startTime: Self.now - Int64(10 - i) * Self.day, tags: tags)
                try await tracking.logBatch(runID: run.info.runID, metrics: [Metric(key: "val_acc", value: acc, timestamp: 1, step: 0)], params: [], tags: [])
                let root = ArtifactService.proxyPath(fromArtifactURI: run.info.artifactURI)!
                _ = try await artifacts.upload(path: "\(root)/out.txt", body: ByteBufferChunks([ByteBuffer(string: file)]))
                if status != .running { _ = try await tracking.updateRun(id: run.info.runID, status: status, endTime: Self.now, runName: nil) }
                ids.append(run.info.runID)
                return run.info.runID
            }
            let best = try await run(0, acc: 0.99, file: "best model, kept by keep_top")
            let tagged = try await run(1, acc: 0.1, tags: [CairnCore.Tag("keep", "yes")], file: "tagged keep")
            let registered = try await run(2, acc: 0.2, file: "registered")
            let running = try await run(3, acc: 0.3, status: .running, file: "still running")
            let old1 = try await run(4, acc: 0.4, status: .failed, file: "old one, unique bytes")
            let old2 = try await run(5, acc: 0.5, file: "shared with a kept run")
            let newest1 = try await run(6, acc: 0.6, file: "shared with a kept run")  // same content as old2: one blob
            let newest2 = try await run(7, acc: 0.7, file: "newest")
            _ = try await registry.createRegisteredModel(name: "m-\(experiment)", tags: [], description: nil, user: "ana")
            _ = try await registry.createModelVersion(name: "m-\(experiment)", source: "runs:/\(registered)/model", runID: registered, runLink: nil,
                                                      description: nil, tags: [], modelID: nil, user: "ana")

            let plan = try await retention.plan(experimentIDs: [experiment], defaultRule: nil)
            let entry = try #require(plan.experiments.first)
            #expect(Set(entry.delete.map(\.runId)) == [old1, old2])
            #expect(entry.kept == 6)
            let reasons = Dictionary(entry.keptBecause.map { ($0.reason, $0.runs) }, uniquingKeysWith: { a, _ in a })
            #expect(reasons["unfinished"] == 1 && reasons["registered model version"] == 1 && reasons["newest 2"] == 2)
            // old2's blob is shared with a kept run: only old1's bytes are freed.
            #expect(entry.freedBlobs == 1 && entry.freedArtifactBytes == Int64("old one, unique bytes".utf8.count))

            let deleted = try await retention.apply(plan)
            #expect(Set(deleted) == [old1, old2])
            for id in [best, tagged, registered, running, newest1, newest2] {
                #expect(try await tracking.getRun(id: id).info.lifecycleStage == .active)
            }
            #expect(try await tracking.getRun(id: old1).tags.contains(CairnCore.Tag("cairn.deleted_by", "retention")))
            let gc = try await artifacts.collectGarbage(dryRun: false, gracePeriod: 0)
            #expect(gc.removedBlobs.reduce(0) { $0 + $1.size } == entry.freedArtifactBytes)
            #expect(ids.count == 8)
        }
    }

    @Test("The plan one experiment at a time: each experiment's plan is handed over before the next is planned, the same as the whole plan", arguments: StoreBackend.allCases)
    func planEachExperiment(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let tracking = TrackingService(store: store, now: { Self.now })
            let explorer = ExplorerService(store: store, now: { Self.now })
            let retention = RetentionService(tracking: tracking, explorer: explorer, store: store)
            var experiments: [String] = []
            for (n, rule) in ["keep_last=1", nil, "keep_last=2"].enumerated() {
                let tags = rule.map { [CairnCore.Tag(RetentionPolicy.tag, $0)] } ?? []
                let id = try await tracking.createExperiment(name: "each-\(n)-\(UUID().uuidString)", artifactLocation: nil, tags: tags).experimentID
                for i in 0..<4 {
                    let run = try await tracking.createRun(experimentID: id, userID: nil, runName: "r\(i)", startTime: Self.now - Int64(10 - i) * Self.day, tags: [])
                    try await tracking.logBatch(runID: run.info.runID, metrics: [Metric(key: "val_acc", value: 0.5, timestamp: 1, step: 0)], params: [], tags: [])
                    _ = try await tracking.updateRun(id: run.info.runID, status: .finished, endTime: Self.now, runName: nil)
                }
                experiments.append(id)
            }
            final class Lines: Sendable { let lines = Mutex<[String]>([]) }
            let heard = Lines()
            var handed: [(experiment: String, afterProgressLines: Int)] = []
            var streamed: [RetentionExperimentPlan] = []
            let withoutRule = try await retention.plan(experimentIDs: experiments, defaultRule: nil, progress: { line in heard.lines.withLock { $0.append(line) } }) {
                handed.append(($0.experimentID, heard.lines.withLock { $0.count }))
                streamed.append($0)
            }
            // Experiment 1 is handed over right after its own progress line, experiment 3 after its own:
            // nothing is gathered first.
            #expect(handed.map(\.experiment) == [experiments[0], experiments[2]])
            #expect(handed.map(\.afterProgressLines) == [1, 3])
            #expect(withoutRule == [experiments[1]])
            #expect(streamed.map { $0.delete.count } == [3, 2])
            let whole = try await retention.plan(experimentIDs: experiments, defaultRule: nil)
            #expect(whole.withoutRule == withoutRule)
            #expect(whole.experiments.map { $0.delete.map(\.runId) } == streamed.map { $0.delete.map(\.runId) })
            #expect(whole.experiments.map(\.kept) == [1, 2])
        }
    }

    @Test("Rules: parsed clauses, refused mistakes")
    func rules() throws {
        let p = try RetentionPolicy.parse("keep_last=20; keep_days=30; keep_tag=pinned; keep_top=5:metrics.val_acc")
        #expect(p.keepLast == 20 && p.keepDays == 30 && p.keepTags == ["keep", "pinned"] && p.keepTop.map(\.metric) == ["val_acc"])
        for bad in ["", "keep_last=-1", "keep_top=5", "keep_everything=1", "keep_days"] {
            #expect(throws: CairnError.self) { try RetentionPolicy.parse(bad) }
        }
    }
}
