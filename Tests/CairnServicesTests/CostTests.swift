import CairnCore
import CairnServices
import CairnStore
import CairnTestSupport
import Foundation
import Testing

/// Compute cost from what `cairn run` records, priced by the server's cost model, on both backends.
@Suite("Cost")
struct CostTests {
    @Test("Cost per run, per experiment and per effective run; the budget is compared with the total", arguments: StoreBackend.allCases)
    func costs(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let tracking = TrackingService(store: store)
            let experiment = try await tracking.createExperiment(name: "cost-\(UUID().uuidString)", artifactLocation: nil,
                                                                 tags: [CairnCore.Tag("cairn.budget", "10")]).experimentID
            func run(wall: Double, cpu: Double, gpus: String, status: RunStatus) async throws {
                let run = try await tracking.createRun(experimentID: experiment, userID: nil, runName: nil, startTime: nil,
                                                       tags: [CairnCore.Tag("cairn.host.gpus", gpus)])
                try await tracking.logBatch(runID: run.info.runID, metrics: [Metric(key: "cairn.wall_time_s", value: wall, timestamp: 1, step: 0),
                                                                             Metric(key: "cairn.cpu_time_s", value: cpu, timestamp: 1, step: 0)], params: [], tags: [])
                _ = try await tracking.updateRun(id: run.info.runID, status: status, endTime: 2, runName: nil)
            }
            // 2 h on two A100s and 4 CPU hours: 2 × 2 × 2.5 + 4 × 0.5 = 12; 1 h on a T4 (the * rate) and 1 CPU hour: 1 + 0.5.
            try await run(wall: 7200, cpu: 14_400, gpus: "NVIDIA A100-SXM4-40GB; NVIDIA A100-SXM4-40GB", status: .finished)
            try await run(wall: 3600, cpu: 3600, gpus: "Tesla T4", status: .failed)
            _ = try await tracking.createRun(experimentID: experiment, userID: nil, runName: nil, startTime: nil, tags: [])  // no times: no cost
            let model = try CostModel.parse(Data(#"{"currency": "EUR", "cpu_hour": 0.5, "gpu_hour": {"A100": 2.5, "*": 1}}"#.utf8))
            let explorer = ExplorerService(store: store, costModel: model)
            let cost = try #require(try await explorer.cost(experimentIDs: [experiment]).first)
            #expect(cost.currency == "EUR" && cost.costedRuns == 2 && cost.finishedRuns == 1)
            #expect(abs(cost.total - 13.5) < 1e-9 && abs(cost.costPerEffectiveRun! - 13.5) < 1e-9)
            #expect(cost.budget == 10 && cost.overBudget)
            await #expect(throws: CairnError.self) { try await ExplorerService(store: store).cost(experimentIDs: []) }
        }
    }

    @Test("Cost models: rates by the longest matching GPU name, refused when malformed")
    func model() throws {
        let model = try CostModel.parse(Data(#"{"gpu_hour": {"A100": 2, "A100-80GB": 3}}"#.utf8))
        #expect(model.gpuRate("NVIDIA A100-80GB") == 3 && model.gpuRate("NVIDIA A100-SXM4") == 2 && model.gpuRate("H100") == 0)
        #expect(model.cost(wallSeconds: nil, cpuSeconds: nil, gpus: "A100") == nil)
        #expect(throws: CairnError.self) { try CostModel.parse(Data("{".utf8)) }
        #expect(throws: CairnError.self) { try CostModel.parse(Data(#"{"cpu_hour": -1}"#.utf8)) }
    }
}
