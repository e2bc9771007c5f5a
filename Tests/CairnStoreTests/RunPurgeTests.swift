import CairnCore
import CairnTestSupport
import Foundation
import Testing
@testable import CairnStore

@Suite("Purging deleted runs (cairn gc)")
struct RunPurgeTests {
    static func run(_ store: SQLStore) async throws -> String {
        let id = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let info = RunInfo(runID: id, experimentID: "0", runName: "r", userID: "u", status: .finished,
                           startTime: 1000, endTime: 2000, artifactURI: "mlflow-artifacts:/0/\(id)/artifacts", lifecycleStage: .active)
        _ = try await store.createRun(NewRun(info: info, tags: [Tag(SystemTag.runName, "r")]))
        try await store.logRunWrites(runID: id, RunWrites(
            metrics: (0..<50).map { Metric(key: "loss", value: Double($0), timestamp: 10 + Int64($0), step: Int64($0)) },
            params: [Param("lr", "0.1")], tags: [Tag("team", "a")]))
        try await store.logInputs(runID: id, [DatasetInput(tags: [Tag("mlflow.data.context", "train")],
                                                            dataset: Dataset(name: "d", digest: "abc", sourceType: "local", source: "/d"))], models: [])
        return id
    }

    @Test("gc purges the rows of runs deleted longer than the grace, counts them dry first, and spares registered runs", arguments: StoreBackend.allCases)
    func purge(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let old = try await Self.run(store), registered = try await Self.run(store), recent = try await Self.run(store), live = try await Self.run(store)
            _ = try await store.createRegisteredModel(name: "m", description: "", tags: [], user: "u", now: 1)
            _ = try await store.createModelVersion(NewModelVersion(name: "m", source: "runs:/\(registered)/model", runID: registered, runLink: nil,
                                                                   description: "", modelID: nil, tags: [], userID: "u"), now: 2)
            for id in [old, registered] { try await store.setRunLifecycle(id: id, stage: .deleted, now: 1_000) }
            try await store.setRunLifecycle(id: recent, stage: .deleted, now: 9_000)

            let dry = try await store.purgeDeletedRuns(deletedBefore: 5_000, now: 10_000, dryRun: true)
            #expect(dry.runIDs == [old] && dry.keptRunIDs == [registered])
            #expect(dry.metricPoints == 50)
            #expect(dry.rows["run_params"] == 1 && dry.rows["run_tags"] == 2 && dry.rows["latest_metrics"] == 1)
            #expect(dry.rows["run_inputs"] == 1 && dry.rows["input_tags"] == 1 && (dry.rows["metric_segments"] ?? 0) >= 1)
            #expect(dry.bytes > 0)
            #expect(try await store.fetchRun(id: old).metrics.count == 1)  // a dry run changes nothing

            let done = try await store.purgeDeletedRuns(deletedBefore: 5_000, now: 10_000, dryRun: false)
            #expect(done == dry)
            let purged = try await store.fetchRun(id: old)
            #expect(purged.info.lifecycleStage == .deleted)
            #expect(purged.metrics.isEmpty && purged.params.isEmpty && purged.tags.isEmpty && purged.inputs.isEmpty)
            await #expect(throws: CairnError.self) { try await store.setRunLifecycle(id: old, stage: .active, now: 11_000) }
            // The registered run, the recently deleted one and the live one keep everything.
            for id in [registered, recent, live] {
                let run = try await store.fetchRun(id: id)
                #expect(run.metrics.count == 1 && run.params.count == 1 && run.inputs.count == 1)
            }
            // Nothing is left to purge, and the purge is audited.
            #expect(try await store.purgeDeletedRuns(deletedBefore: 5_000, now: 12_000, dryRun: false).runIDs.isEmpty)
            let events = try await store.searchAuditEvents(AuditQuery(action: "gc.purge_deleted_runs"), beforeSeq: nil)
            #expect(events.count == 1)
            // A restored run is not deleted any more: it is never purged.
            try await store.setRunLifecycle(id: recent, stage: .active, now: 12_000)
            #expect(try await store.purgeDeletedRuns(deletedBefore: 20_000, now: 20_000, dryRun: true).runIDs.isEmpty)
        }
    }
}
