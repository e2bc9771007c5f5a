import CairnCore
import CairnTestSupport
import Foundation
import Testing

@testable import CairnStore

/// Reads whose statements are known before they start (`SQLBackend.readStatements`) go out
/// from the caller's task on PostgreSQL: one statement alone, several in one read-only
/// transaction sent with them.
@Suite("PostgreSQL reads sent from the task")
struct PostgresReadStatementTests {
    @Test("One statement runs without a transaction around it; several share one read-only snapshot; a failed one leaves the connection usable")
    func snapshots() async throws {
        try await withPostgresStore(poolSize: 1) { store in
            let backend = store.backend
            // Alone: no BEGIN (the connection's default isolation, not the read sessions').
            let alone = try await backend.readStatements([("SELECT current_setting('transaction_isolation')", [])])
            #expect(alone.count == 1)
            #expect(alone[0].first.map { $0[0] as String } == "read committed")
            // Several: one repeatable-read, read-only transaction (the same start time).
            let state = "SELECT 0, current_setting('transaction_isolation'), current_setting('transaction_read_only'), now()::text"
            let several = try await backend.readStatements([(state, []), ("SELECT now()::text, ?", [.integer(7)])])
            #expect(several.count == 2)
            let first = try #require(several[0].first), second = try #require(several[1].first)
            #expect(first[1] as String == "repeatable read")
            #expect(first[2] as String == "on")
            #expect(first[3] as String == second[0] as String)
            #expect(second[1] as Int64 == 7)
            // A failure is the statement's error, and the connection (the pool's only one) serves the next read.
            for statements in [[("SELECT 1 / (SELECT 0)", [SQLValue]())], [("SELECT 1", []), ("SELECT 1 / (SELECT 0)", [])]] {
                await #expect(throws: (any Error).self) { try await backend.readStatements(statements) }
                let after = try await backend.readStatements([("SELECT current_setting('transaction_isolation')", [])])
                #expect(after[0].first.map { $0[0] as String } == "read committed")
            }
            // A write is refused in the shared snapshot, and nothing of it stays.
            await #expect(throws: (any Error).self) {
                try await backend.readStatements([("SELECT 1", []), ("INSERT INTO metric_keys (key) VALUES ('refused') RETURNING key_id", [])])
            }
            #expect(try await store.read { db in try db.value(Int.self, "SELECT COUNT(*) FROM metric_keys WHERE key = 'refused'") } == 0)
        }
    }

    @Test("A statement of fixed text sent again runs by name, as in read sessions")
    func named() async throws {
        try await withPostgresStore(poolSize: 1) { store in
            let text = "SELECT run_pk FROM runs WHERE run_id = ?"
            for _ in 0..<4 {
                let rows = try await store.backend.readStatements([(text, [.text("none")])])
                #expect(rows.map(\.count) == [0])
            }
            let prepared = try await PostgresNamedStatementTests.prepared(store, containing: "FROM runs WHERE run_id")
            #expect(prepared.count == 1)
            #expect(prepared.first.map { $0.generic + $0.custom } == 2)
        }
    }

    @Test("Reads sent from tasks share the store's connections with its threads: many at once wait for one, and never open more than the pool's size")
    func connectionLimit() async throws {
        try await withPostgresStore(poolSize: 2) { store in
            let runID = try await AuditLogTests.newRun(store)
            try await store.logRunWrites(runID: runID, RunWrites(metrics: (0..<50).map { Metric(key: "loss", value: Double($0), timestamp: 1, step: Int64($0)) }))
            let answers = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<60 {
                    group.addTask {
                        switch i % 3 {
                        case 0: return try await store.sampledMetricHistory(runIDs: [runID], key: "loss", startStep: nil, endStep: nil, maxPoints: 10)
                            .flatMap(\.points).count
                        case 1: return try await store.metricHistory(runID: runID, key: "loss").count
                        default:
                            try await store.logRunWrites(runID: runID, RunWrites(tags: [Tag("t\(i)", "v")]))
                            return try await store.read { db in try db.value(Int.self, "SELECT COUNT(*) FROM metric_segments") } ?? 0
                        }
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(answers.count == 60)
            #expect(answers.allSatisfy { $0 > 0 })
            let connections = try await store.read { db in
                try db.value(Int.self, "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'")
            }
            #expect(connections.map { $0 >= 1 && $0 <= 2 } == true, "\(String(describing: connections)) connections")
        }
    }

    @Test("A write alone that reads only what comes with the lock runs from its task; one that needs a read of its own is rolled back and runs on a thread, with the same result")
    func writesFromTheTask() async throws {
        try await withPostgresStore(poolSize: 2) { store in
            let backend = try #require(store.backend as? PostgresBackend)
            func metric(_ key: String, _ value: Double, step: Int64) -> Metric { Metric(key: key, value: value, timestamp: 1_000 + step, step: step) }
            // A run with tags: from the task (the experiment comes with the lock).
            var before = backend.writesFromTask
            let info = RunInfo(runID: "5f0c7b1e2d3a4c5b6a7980e1f2a3b4c5", experimentID: "0", runName: "r", userID: "u", status: .running,
                               startTime: 1, endTime: nil, artifactURI: "x", lifecycleStage: .active)
            let created = try await store.createRun(NewRun(info: info, tags: [Tag("a", "1"), Tag("b", "2")]))
            #expect(backend.writesFromTask.ran - before.ran == 1 && backend.writesFromTask.backToThread == before.backToThread)
            let runID = created.info.runID
            // A new key needs its id (a read of its own): rolled back, run on a thread.
            before = backend.writesFromTask
            try await store.logRunWrites(runID: runID, RunWrites(metrics: [metric("loss", 1, step: 0)]))
            #expect(backend.writesFromTask.ran == before.ran && backend.writesFromTask.backToThread - before.backToThread == 1)
            // The key known: from the task.
            before = backend.writesFromTask
            for step in 1...3 { try await store.logRunWrites(runID: runID, RunWrites(metrics: [metric("loss", Double(step), step: Int64(step))])) }
            #expect(backend.writesFromTask.ran - before.ran == 3 && backend.writesFromTask.backToThread == before.backToThread)
            // Steps logged again are compared with the stored points (a read): on a thread, the
            // same point not stored twice.
            before = backend.writesFromTask
            try await store.logRunWrites(runID: runID, RunWrites(metrics: [metric("loss", 2, step: 2)]))
            #expect(backend.writesFromTask.backToThread - before.backToThread == 1)
            // Params are read against those stored: not tried from the task.
            before = backend.writesFromTask
            try await store.logRunWrites(runID: runID, RunWrites(metrics: [metric("loss", 4, step: 4)], params: [Param("lr", "0.1")]))
            #expect(backend.writesFromTask.ran == before.ran && backend.writesFromTask.backToThread == before.backToThread)
            #expect(try await store.metricHistory(runID: runID, key: "loss").map(\.value) == [1, 1, 2, 3, 4])
            // A refused write changes nothing and leaves the connections usable.
            try await store.setRunLifecycle(id: runID, stage: .deleted, now: 5)
            before = backend.writesFromTask
            await #expect(throws: CairnError.self) { try await store.logRunWrites(runID: runID, RunWrites(metrics: [metric("loss", 9, step: 9)])) }
            #expect(backend.writesFromTask.ran - before.ran == 1)
            #expect(try await store.metricHistory(runID: runID, key: "loss").count == 5)
            try await store.setRunLifecycle(id: runID, stage: .active, now: 6)
            try await store.logRunWrites(runID: runID, RunWrites(metrics: [metric("loss", 5, step: 5)]))
            let run = try await store.fetchRun(id: runID)
            #expect(run.tags.map(\.key).sorted() == ["a", "b"])
            #expect(run.metrics.first?.value == 5)
            // Every write appended its event to one unbroken chain.
            let chain = try await store.verifyAuditChain(key: nil)
            #expect(chain.problems.allSatisfy { if case .headSignature = $0 { true } else { false } }, "\(chain.problems)")
            #expect(chain.events == 10)
        }
    }

    @Test("A one-run sampled read is one statement from the task: the same samples as the reads of the store's threads, an unknown run or key answers nothing")
    func sampledRead() async throws {
        try await withPostgresStore(poolSize: 2) { store in
            let runID = try await AuditLogTests.newRun(store)
            let points = (0..<5_000).map { MetricPoint(step: Int64($0), timestamp: 1_000 + Int64($0), value: sin(Double($0) / 50)) }
            for chunk in stride(from: 0, to: points.count, by: 700) {
                let metrics = points[chunk..<min(chunk + 700, points.count)].map { Metric(key: "loss", value: $0.value, timestamp: $0.timestamp, step: $0.step) }
                try await store.logRunWrites(runID: runID, RunWrites(metrics: metrics))
            }
            let whole = try await store.metricHistory(runID: runID, key: "loss")
            for (lower, upper) in [(nil, nil), (Int64(100), Int64(2_000)), (Int64(4_999), Int64(9_000))] as [(Int64?, Int64?)] {
                let inRange = whole.filter { $0.step >= (lower ?? .min) && $0.step <= (upper ?? .max) }
                for maxPoints in [3, 320, 10_000] {
                    let read = try await store.sampledMetricHistory(runIDs: [runID], key: "loss", startStep: lower, endStep: upper, maxPoints: maxPoints)
                    #expect(read.map(\.runID) == [runID])
                    #expect(read.flatMap(\.points) == MetricSampler.sample(inRange, maxPoints: maxPoints))
                }
            }
            #expect(try await store.sampledMetricHistory(runIDs: ["0123456789abcdef0123456789abcdef"], key: "loss", startStep: nil, endStep: nil, maxPoints: 10).isEmpty)
            #expect(try await store.sampledMetricHistory(runIDs: [runID], key: "other", startStep: nil, endStep: nil, maxPoints: 10).isEmpty)
            #expect(try await store.sampledMetricHistory(runIDs: [runID], key: "loss", startStep: 6_000, endStep: 7_000, maxPoints: 10).isEmpty)
        }
    }
}
