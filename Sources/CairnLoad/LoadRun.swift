import Foundation
import NIOCore

/// One timed phase's figures, as written to the JSON (trackbench's names where it has them).
struct PhaseRecord: Codable, Sendable {
    var scenario: String
    var name: String
    var connections: Int
    var target_operations: Int
    var ok: Int
    var failed: Int
    var wall_s: Double
    var operations_per_s: Double
    /// Metric points per second, for the phases that log them (s2: 1,000 per log-batch; writers: 10).
    var points_per_s: Double?
    var latency: LatencyReport
    var bytes_received: Int
    var timed_out: Bool
    var client_cpu_s: Double
    var client_cpu_ms_per_operation: Double?
    var server_cpu_s: Double?
    var server_cpu_ms_per_operation: Double?
    var server_rss_before_mib: Double?
    var server_rss_peak_mib: Double?
    var server_rss_after_mib: Double?
    var errors: [LoadError]
}

/// What `cairn-load run` measures and with how much load.
struct LoadPlan: Sendable {
    var scenarios: [String]
    var connections: Int
    var requests: Int
    var batches: Int
    var writers: Int
    var writerRequests: Int
    /// Milliseconds between a writer's requests (0: back to back).
    var writerIntervalMilliseconds: Int
    var historyPoints: Int
    var reads: Int
    var searchRuns: Int
    var maxSeconds: Double
    var seed: UInt64
}

/// Runs the scenarios of a plan against one server and collects their records.
struct LoadRun {
    let client: LoadClient
    let plan: LoadPlan
    let server: ProcessTree?
    let tag: String
    var records: [PhaseRecord] = []
    /// Setup failures (an experiment or run that could not be created): the scenario is skipped.
    var aborted: [String: String] = [:]

    init(client: LoadClient, plan: LoadPlan, server: ProcessTree?) {
        self.client = client
        self.plan = plan
        self.server = server
        let stamp = ISO8601DateFormatter().string(from: Date()).filter { $0.isNumber }
        self.tag = "\(stamp)-\(String(UInt32.random(in: 0..<UInt32.max), radix: 16))"
    }

    struct SetupFailed: Error, CustomStringConvertible {
        var description: String
    }

    /// An untimed phase whose answers are read (experiment and run ids).
    private func setup(_ workload: any Workload, operations: [Int], field: [String]) async throws -> [String] {
        let result = try await client.run(workload, operations: operations, maxSeconds: plan.maxSeconds)
        let ids = result.connections.flatMap(\.bodies).map { MLflowAPI.field(field, in: $0) }
        guard result.failed == 0, ids.allSatisfy({ $0 != nil }) else {
            let error = result.errors.first.map { "\($0.status) on \($0.endpoint): \($0.sample)" } ?? "an answer without \(field.joined(separator: "."))"
            throw SetupFailed(description: "setup failed: \(error)")
        }
        return ids.compactMap { $0 }
    }

    private func experiment(_ scenario: String) async throws -> String {
        try await setup(CreateExperiment(name: "cairn-load-\(scenario)-\(tag)"), operations: [1], field: ["experiment_id"])[0]
    }

    /// One run per connection, created by that connection (so connection i logs to run i).
    private func runs(in experiment: String, prefix: String, connections: Int) async throws -> [String] {
        try await setup(CreateRuns(experimentID: experiment, namePrefix: prefix, connections: connections, keepsBodies: true),
                        operations: Array(repeating: 1, count: connections), field: ["run", "info", "run_id"])
    }

    /// A timed phase: the server tree's CPU and resident memory around it, the client's CPU.
    @discardableResult
    private mutating func timed(_ scenario: String, _ name: String, _ workload: any Workload, operations: [Int],
                                pointsPerOperation: Int? = nil, interval: TimeAmount = .zero) async throws -> PhaseResult {
        let cpu0 = server?.cpuSeconds()
        let client0 = clientCPUSeconds()
        let rssBefore = server?.memory().treeKiB
        let sampler = server.map { tree in
            // Every 100 ms; the tree's members (a walk over all of /proc) are looked up once a second.
            Task {
                var peak = 0
                var pids: [Int32] = []
                var samples = 0
                while !Task.isCancelled {
                    if samples % 10 == 0 { pids = tree.members().map(\.pid) }
                    samples += 1
                    peak = max(peak, tree.memory(of: pids).treeKiB)
                    try? await Task.sleep(for: .milliseconds(100))
                }
                return max(peak, tree.memory().treeKiB)
            }
        }
        let result = try await client.run(workload, operations: operations, interval: interval, maxSeconds: plan.maxSeconds)
        sampler?.cancel()
        let peak = await sampler?.value
        let clientCPU = clientCPUSeconds() - client0
        let serverCPU = cpu0.flatMap { before in server.map { $0.cpuSeconds() - before } }
        let ok = result.succeeded
        func mib(_ kib: Int?) -> Double? { kib.map { (Double($0) / 1024 * 10).rounded() / 10 } }
        func perOperation(_ seconds: Double?) -> Double? {
            guard let seconds, ok > 0 else { return nil }
            return LatencyReport.rounded(1000 * seconds / Double(ok))
        }
        let rate = result.wallSeconds > 0 ? Double(ok) / result.wallSeconds : 0
        let record = PhaseRecord(
            scenario: scenario, name: name, connections: operations.count, target_operations: operations.reduce(0, +),
            ok: ok, failed: result.failed, wall_s: LatencyReport.rounded(result.wallSeconds),
            operations_per_s: (rate * 10).rounded() / 10,
            points_per_s: pointsPerOperation.map { (rate * Double($0)).rounded() },
            latency: LatencyReport(nanoseconds: result.latencies), bytes_received: result.bytesReceived,
            timed_out: result.timedOut, client_cpu_s: LatencyReport.rounded(clientCPU),
            client_cpu_ms_per_operation: perOperation(clientCPU),
            server_cpu_s: serverCPU.map(LatencyReport.rounded), server_cpu_ms_per_operation: perOperation(serverCPU),
            server_rss_before_mib: mib(rssBefore), server_rss_peak_mib: mib(peak), server_rss_after_mib: mib(server?.memory().treeKiB),
            errors: result.errors)
        records.append(record)
        Report.printLine(record)
        return result
    }

    mutating func runAll() async throws {
        for scenario in plan.scenarios {
            do {
                try await run(scenario)
            } catch let error as SetupFailed {
                aborted[scenario] = error.description
                print("[\(scenario)] ABORTED: \(error.description)")
            }
        }
    }

    private mutating func run(_ scenario: String) async throws {
        let connections = plan.connections
        let timestamp = MLflowAPI.nowMilliseconds()
        switch scenario {
        case "s1":
            let experiment = try await experiment("s1")
            try await timed("s1", "create_runs", CreateRuns(experimentID: experiment, namePrefix: "r", connections: connections, keepsBodies: false),
                            operations: split(plan.requests, over: connections))
        case "s2":
            let experiment = try await experiment("s2")
            let runIDs = try await runs(in: experiment, prefix: "ingest-", connections: connections)
            try await timed("s2", "log_batch", LogBatches(runIDs: runIDs, keys: (0..<10).map { "m\($0)" }, stepsPerRequest: 100,
                                                          timestamp: timestamp, seed: plan.seed),
                            operations: split(plan.batches, over: connections), pointsPerOperation: 1000)
        case "s3":
            let experiment = try await experiment("s3")
            let runIDs = try await runs(in: experiment, prefix: "single-", connections: connections)
            try await timed("s3", "log_metric", LogMetrics(runIDs: runIDs, timestamp: timestamp),
                            operations: split(plan.requests, over: connections))
        case "s4":
            let experiment = try await experiment("s4")
            let runID = try await runs(in: experiment, prefix: "history-", connections: 1)[0]
            // Ingest (untimed in the read figures, reported as its own phase): 1,000-point batches of "loss".
            try await timed("s4", "ingest", LogBatches(runIDs: [runID], keys: ["loss"], stepsPerRequest: 1000, timestamp: timestamp, seed: plan.seed),
                            operations: [(plan.historyPoints + 999) / 1000], pointsPerOperation: 1000)
            try await timed("s4", "get_history", ReadHistory(runID: runID, key: "loss", maxResults: nil), operations: [plan.reads])
            try await timed("s4", "get_history_paged_25k", ReadHistory(runID: runID, key: "loss", maxResults: 25_000), operations: [plan.reads])
            for maxResults in [320, 2500] {
                try await timed("s4", "bulk_interval_\(maxResults)", ReadBulkInterval(runID: runID, key: "loss", maxResults: maxResults),
                                operations: [plan.reads])
            }
        case "s5":
            let experiment = try await experiment("s5")
            try await timed("s5", "populate", PopulateRuns(experimentID: experiment, connections: connections, seed: plan.seed),
                            operations: split(plan.searchRuns, over: connections))
            try await timed("s5", "filtered_search", SearchRuns.filtered(experimentID: experiment), operations: [plan.reads])
            try await timed("s5", "unfiltered_search_1000", SearchRuns.unfiltered(experimentID: experiment), operations: [plan.reads])
        case "writers":
            // Many jobs logging at once: each connection creates its own run (timed: a burst of run
            // starts), then logs 10 metrics per step, one log-batch per step: back to back, or one
            // every --writer-interval-ms as a training job logs (then p99 is latency, not queueing).
            let experiment = try await experiment("writers")
            try await client.ensureConnections(plan.writers)
            let created = try await timed("writers", "create_run", CreateRuns(experimentID: experiment, namePrefix: "writer-", connections: plan.writers,
                                                                             keepsBodies: true),
                                          operations: Array(repeating: 1, count: plan.writers))
            // A writer whose run could not be created (counted as failed above) logs nothing.
            let runIDs = created.connections.map { $0.bodies.first.flatMap { MLflowAPI.field(["run", "info", "run_id"], in: $0) } }
            guard runIDs.contains(where: { $0 != nil }) else {
                throw SetupFailed(description: "none of the \(plan.writers) writers could create its run")
            }
            try await timed("writers", "log_batch_10", LogBatches(runIDs: runIDs.map { $0 ?? "" }, keys: (0..<10).map { "m\($0)" }, stepsPerRequest: 1,
                                                                  timestamp: timestamp, seed: plan.seed),
                            operations: runIDs.map { $0 == nil ? 0 : plan.writerRequests }, pointsPerOperation: 10,
                            interval: .milliseconds(Int64(plan.writerIntervalMilliseconds)))
        default:
            throw SetupFailed(description: "unknown scenario \(scenario)")
        }
    }
}
