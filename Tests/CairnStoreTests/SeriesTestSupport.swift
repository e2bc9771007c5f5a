import CairnCore
@testable import CairnStore

/// A running run in experiment 0 whose id is `letter` 32 times, for the series tests.
func newSeriesRun(_ store: SQLStore, _ letter: Character) async throws -> String {
    let info = RunInfo(runID: String(repeating: letter, count: 32), experimentID: "0", runName: "r", userID: "u", status: .running,
                       startTime: 1, endTime: nil, artifactURI: "mlflow-artifacts:/0/\(letter)/artifacts", lifecycleStage: .active)
    return try await store.createRun(NewRun(info: info, tags: [])).info.runID
}

/// Logs `points` to the run's "loss" in batches of uneven sizes (`first`, then `size % wrap + grow`
/// after each batch of `size`), so merged and split segments both occur.
func logInUnevenBatches(_ store: SQLStore, runID: String, _ points: [MetricPoint], first: Int, wrap: Int, grow: Int) async throws {
    var start = 0
    var size = first
    while start < points.count {
        let batch = points[start..<min(start + size, points.count)]
        try await store.logRunWrites(runID: runID, RunWrites(metrics: batch.map {
            Metric(key: "loss", value: $0.value, timestamp: $0.timestamp, step: $0.step)
        }))
        start += batch.count
        size = size % wrap + grow
    }
}
