import CairnCore
import CairnTestSupport
import Foundation
import Synchronization
import Testing

@testable import CairnStore

/// The group commit's batches on PostgreSQL, given exactly (the group commit's own batches
/// depend on which requests meet): several works run in one transaction without savepoints;
/// when one fails, the batch runs again with a savepoint per work. Which way a batch ran shows
/// in the rows' `xmin`: rows written inside a savepoint carry the subtransaction's id, rows of
/// the top transaction all carry its one id.
@Suite("PostgreSQL group-commit batches")
struct PostgresBatchTests {
    static let key = AuditKey(bytes: Array(repeating: 9, count: 32))

    /// Sets tag `name` of the run and appends an audit event, both sent without waiting.
    static func tag(_ runID: String, _ name: String) -> GroupCommitWriter.Work {
        { db in
            let (pk, _) = try SQLStore.loadRunInfo(db, id: runID)
            try db.executeDeferred("INSERT INTO run_tags (run_pk, key, value) VALUES (?, ?, ?)", [pk, name, "v"])
            try SQLStore.appendAuditEvent(db, AuditDraft("test.tag", "run:\(runID)", details: ["key": .string(name)]), identity: nil, key: key)
            return name
        }
    }

    /// The tag's row with the transaction id that wrote it.
    static func writers(_ store: SQLStore) async throws -> [String: String] {
        try await store.read { db in
            var xmin: [String: String] = [:]
            for row in try db.rows("SELECT key, CAST(xmin AS TEXT) FROM run_tags", values: [], cache: false) {
                xmin[row[0]] = row[1]
            }
            return xmin
        }
    }

    static func succeeded(_ outcomes: [GroupCommitWriter.Outcome]) -> [Bool] {
        outcomes.map { if case .success = $0 { true } else { false } }
    }

    @Test("Several works commit in one transaction without savepoints; a failed one makes the batch run again work by work, the others commit once, nothing of it stays, and the audit chain stays whole")
    func batches() async throws {
        try await withPostgresStore { store in
            store.useAuditKey(Self.key)
            let backend = try #require(store.backend as? PostgresBackend)
            let runID = try await AuditLogTests.newRun(store)

            // All good: one transaction, no savepoints.
            #expect(Self.succeeded(try await backend.commitBatch([Self.tag(runID, "a"), Self.tag(runID, "b")])) == [true, true])
            var xmin = try await Self.writers(store)
            #expect(xmin.count == 2 && xmin["a"] == xmin["b"])
            #expect(!backend.startsWithSavepoints)

            // A statement that fails only in the database (tag "a" exists): the first run of the
            // batch committed nothing, the second ran each work in its own savepoint.
            let duplicate: GroupCommitWriter.Work = { db in
                let (pk, _) = try SQLStore.loadRunInfo(db, id: runID)
                try db.executeDeferred("INSERT INTO run_tags (run_pk, key, value) VALUES (?, ?, ?)", [pk, "z-before", "v"])
                try db.executeDeferred("INSERT INTO run_tags (run_pk, key, value) VALUES (?, ?, ?)", [pk, "a", "again"])
                return "dup"
            }
            #expect(Self.succeeded(try await backend.commitBatch([Self.tag(runID, "c"), duplicate, Self.tag(runID, "d")])) == [true, false, true])
            xmin = try await Self.writers(store)
            #expect(Set(xmin.keys) == ["a", "b", "c", "d"])
            #expect(xmin["c"] != xmin["d"] && xmin["c"] != xmin["a"])
            #expect(backend.startsWithSavepoints)

            // After a failure the next batch starts work by work; a good one ends that.
            #expect(Self.succeeded(try await backend.commitBatch([Self.tag(runID, "e"), Self.tag(runID, "f")])) == [true, true])
            xmin = try await Self.writers(store)
            #expect(xmin["e"] != xmin["f"])
            #expect(!backend.startsWithSavepoints)

            // A work that throws before anything of it reaches the database.
            let refused: GroupCommitWriter.Work = { _ in throw CairnError.invalidParameter("refused") }
            #expect(Self.succeeded(try await backend.commitBatch([Self.tag(runID, "g"), refused, Self.tag(runID, "h")])) == [true, false, true])
            #expect(Self.succeeded(try await backend.commitBatch([Self.tag(runID, "i"), Self.tag(runID, "j")])) == [true, true])
            #expect(Self.succeeded(try await backend.commitBatch([Self.tag(runID, "k"), Self.tag(runID, "l")])) == [true, true])
            xmin = try await Self.writers(store)
            #expect(Set(xmin.keys) == Set(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"]))
            #expect(xmin["g"] != xmin["h"] && xmin["i"] != xmin["j"] && xmin["k"] == xmin["l"])

            // One event per committed tag after the run's own, numbered without a gap.
            let events = try await AuditLogTests.all(store)
            #expect(events.filter { $0.action == "test.tag" }.count == 12)
            #expect(events.map(\.seq) == Array(1...Int64(events.count)))
            #expect(try await store.verifyAuditChain(key: Self.key, pageSize: 5, maxProblems: 5).isIntact)
        }
    }

    /// A metric write as `logRunWrites` makes it: the run and its series' state, then the points.
    static func log(_ runID: String, _ metrics: [Metric]) -> (GroupCommitWriter.Work, SeriesReadAhead) {
        var keys: [String] = []
        for metric in metrics where !keys.contains(metric.key) { keys.append(metric.key) }
        let work: GroupCommitWriter.Work = { [keys] db in
            let (pk, info, series) = try SQLStore.runWithSeriesStates(db, id: runID, keys: keys)
            try SQLStore.appendMetrics(db, runPK: pk, experimentID: Int64(info.experimentID)!, metrics, known: series)
            return runID
        }
        return (work, SeriesReadAhead(runID: runID, keys: keys))
    }

    @Test("A batch reads its leading metric writes' series ahead, each run once; a later write to the same run reads what the earlier one wrote")
    func readAhead() async throws {
        try await withPostgresStore { store in
            let backend = try #require(store.backend as? PostgresBackend)
            let first = try await AuditLogTests.newRun(store)
            let second = try await AuditLogTests.newRun(store)
            func point(_ key: String, _ step: Int64) -> Metric { Metric(key: key, value: Double(step) / 2, timestamp: 100 + step, step: step) }
            // Small segments to grow: one point per series per write.
            try await store.logRunWrites(runID: first, RunWrites(metrics: [point("loss", 0)]))
            try await store.logRunWrites(runID: second, RunWrites(metrics: [point("loss", 0)]))

            // The first write adds the key "fresh" (the second's read, sent ahead, found it
            // missing); the third writes to the first run again, so it and every later work
            // read when their turn comes: the third must grow the segment the first grew (read
            // ahead, it would write its point over the first's, and nothing would fail).
            let works = [
                Self.log(first, [point("loss", 1), point("fresh", 1)]),
                Self.log(second, [point("loss", 1), point("fresh", 1)]),
                Self.log(first, [point("loss", 2)]),
                Self.log(second, [point("loss", 2)]),
            ]
            let before = backend.readAheadsTaken
            let outcomes = try await backend.commitBatch(works.map(\.0), readAheads: works.map { .series($0.1) })
            #expect(Self.succeeded(outcomes) == [true, true, true, true])
            #expect(backend.readAheadsTaken - before == 2)
            #expect(!backend.startsWithSavepoints)

            for (run, loss, fresh) in [(first, [0, 1, 2], [1]), (second, [0, 1, 2], [1])] as [(String, [Int64], [Int64])] {
                #expect(try await store.metricHistory(runID: run, key: "loss").map(\.step) == loss)
                #expect(try await store.metricHistory(runID: run, key: "fresh").map(\.step) == fresh)
                let latest = Dictionary(uniqueKeysWithValues: try await store.fetchRun(id: run).metrics.map { ($0.key, $0.step) })
                #expect(latest == ["loss": loss.last!, "fresh": fresh.last!])
            }
            let keys = try await store.read { db in try db.values(String.self, "SELECT key FROM metric_keys ORDER BY key") }
            #expect(keys == ["fresh", "loss"])
            let summaries = try await store.read { db in
                try db.values(Int64.self, "SELECT point_count FROM latest_metrics ORDER BY run_pk, key_id")
            }
            #expect(summaries.sorted() == [1, 1, 3, 3])
        }
    }

    /// `log`, with the audit event `logRunWrites` appends.
    static func audited(_ runID: String, _ metrics: [Metric]) -> (GroupCommitWriter.Work, SeriesReadAhead) {
        let (log, readAhead) = Self.log(runID, metrics)
        let work: GroupCommitWriter.Work = { db in
            let value = try log(db)
            try SQLStore.appendAuditEvent(db, AuditDraft("test.log", "run:\(runID)", details: [:]), identity: nil, key: key)
            return value
        }
        return (work, readAhead)
    }

    @Test("A batch's works read ahead in one statement and send their writes together: the audit head moves once, to the last event, and a later work reads what they wrote")
    func writesTogether() async throws {
        try await withPostgresStore { store in
            store.useAuditKey(Self.key)
            let backend = try #require(store.backend as? PostgresBackend)
            let keys = (0..<10).map { "k\($0)" }
            func points(_ step: Int64) -> [Metric] { keys.map { Metric(key: $0, value: Double(step) + 0.5, timestamp: 100 + step, step: step) } }
            var runs: [String] = []
            for _ in 0..<20 {
                let run = try await AuditLogTests.newRun(store)
                // The keys exist and every series has a small segment to grow.
                try await store.logRunWrites(runID: run, RunWrites(metrics: points(0)))
                runs.append(run)
            }
            func head() async throws -> Int64? {
                try await store.read { db in try db.value(Int64.self, "SELECT last_seq FROM audit_head WHERE id = 1") }
            }
            // Twenty runs, each written once, all read ahead.
            var works = runs.map { Self.audited($0, points(1)) }
            var taken = backend.readAheadsTaken, sent = backend.batchStatementsSent
            var outcomes = try await backend.commitBatch(works.map(\.0), readAheads: works.map { .series($0.1) })
            #expect(Self.succeeded(outcomes) == Array(repeating: true, count: 20))
            #expect(backend.readAheadsTaken - taken == 20)
            // BEGIN, the lock with the twenty reads (one statement), the works' writes, COMMIT:
            // seven statements, where one per read and one per work's writes would be 43. Each work grows its segments, writes their summaries, appends its event and
            // moves the audit head; only the last move of the head waiting to be sent goes out,
            // so sixteen statements wait after every fifth work, and go out as one
            // (`sendEvery`): four. (With every move of the head sent, every fourth work: five.)
            #expect(backend.batchStatementsSent - sent == 7)
            #expect(try await head() == (try await AuditLogTests.all(store)).last?.seq)

            // Then each run again, and the first a third time: that work reads in turn, after the
            // others' writes went out.
            works = runs.map { Self.audited($0, points(2)) } + [Self.audited(runs[0], points(3))]
            taken = backend.readAheadsTaken
            sent = backend.batchStatementsSent
            outcomes = try await backend.commitBatch(works.map(\.0), readAheads: works.map { .series($0.1) })
            #expect(Self.succeeded(outcomes) == Array(repeating: true, count: 21))
            #expect(!backend.startsWithSavepoints)
            #expect(backend.readAheadsTaken - taken == 20)
            // As above, and the last work's read and its writes.
            #expect(backend.batchStatementsSent - sent == 9)

            for (index, run) in runs.enumerated() {
                let steps: [Int64] = index == 0 ? [0, 1, 2, 3] : [0, 1, 2]
                for key in keys { #expect(try await store.metricHistory(runID: run, key: key).map(\.step) == steps) }
                let latest = try await store.fetchRun(id: run).metrics
                #expect(latest.count == 10 && latest.allSatisfy { $0.step == steps.last! })
            }
            let events = try await AuditLogTests.all(store)
            #expect(events.filter { $0.action == "test.log" }.count == 41)
            #expect(events.map(\.seq) == Array(1...Int64(events.count)))
            #expect(try await head() == events.last?.seq)
            #expect(try await store.verifyAuditChain(key: Self.key, pageSize: 7, maxProblems: 5).isIntact)
        }
    }

    /// Runs `waiting` while a second store on the same database (another replica) holds the
    /// write lock in a work that ran `after` first; releases the lock once `waiting`'s first
    /// statement waits for it (polled in `pg_stat_activity`, with a bound only against a hang,
    /// minutes, not a deadline), and answers how `waiting` ended. The other store's work must
    /// commit.
    static func whileAnotherStoreHoldsTheLock<T: Sendable>(_ store: PostgresTrackingStore, after work: @escaping @Sendable (any SQLSession) throws -> Void,
                                                           waiting: @escaping @Sendable () async throws -> T) async throws -> Result<T, any Error> {
        let other = try PostgresTrackingStore(location: store.location, poolSize: 2)
        defer { other.shutdown() }
        let otherBackend = try #require(other.backend as? PostgresBackend)
        let holding = Atomic<Bool>(false), release = Atomic<Bool>(false)
        // Whatever happens below, the other store's thread stops waiting (before its shutdown).
        defer { release.store(true, ordering: .sequentiallyConsistent) }
        let held = Task {
            try await otherBackend.commitBatch([{ db in
                // Set even when the work fails, so that the test goes on (and fails) instead of waiting.
                defer { holding.store(true, ordering: .sequentiallyConsistent) }
                try work(db)
                holding.store(true, ordering: .sequentiallyConsistent)
                while !release.load(ordering: .sequentiallyConsistent) { usleep(1_000) }
                return 1
            }])
        }
        while !holding.load(ordering: .sequentiallyConsistent) { try await Task.sleep(for: .milliseconds(5)) }
        let waiter = Task { try await waiting() }
        var waits = false
        for _ in 0..<60_000 where !waits {
            waits = try await store.read { db in
                try db.value(Int64.self, "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'") ?? 0
            } > 0
            if !waits { try await Task.sleep(for: .milliseconds(5)) }
        }
        #expect(waits)
        release.store(true, ordering: .sequentiallyConsistent)
        #expect(succeeded(try await held.value) == [true])
        return await waiter.result
    }

    @Test("A write's series read goes with the write lock and runs after it: a write that waited for another replica's transaction reads what that one committed")
    func readsAfterTheLock() async throws {
        try await withPostgresStore { store in
            let run = try await AuditLogTests.newRun(store)
            @Sendable func point(_ step: Int64) -> Metric { Metric(key: "loss", value: Double(step), timestamp: 100 + step, step: step) }
            try await store.logRunWrites(runID: run, RunWrites(metrics: [point(0)]))
            let experimentID = Int64(try await store.fetchRun(id: run).info.experimentID)!

            // Another replica on the same database holds the lock while it grows the series with
            // step 1; this replica's write of step 2 waits for it.
            try await Self.whileAnotherStoreHoldsTheLock(store, after: { db in
                let (pk, _, series) = try SQLStore.runWithSeriesStates(db, id: run, keys: ["loss"])
                try SQLStore.appendMetrics(db, runPK: pk, experimentID: experimentID, [point(1)], known: series)
            }, waiting: { try await store.logRunWrites(runID: run, RunWrites(metrics: [point(2)])) }).get()

            #expect(try await store.metricHistory(runID: run, key: "loss").map(\.step) == [0, 1, 2])
            let counts = try await store.read { db in try db.values(Int64.self, "SELECT point_count FROM latest_metrics") }
            #expect(counts == [3])
        }
    }

    /// A new run and its tags, as `createRun` writes them on PostgreSQL, and its audit event.
    static func newRunWork(_ runID: String, tag: String) -> GroupCommitWriter.Work {
        { db in
            try db.runDeferredIndependent(first: ("""
                INSERT INTO runs (run_id, experiment_id, run_name, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage)
                VALUES (?, 0, ?, '', 'RUNNING', 1, NULL, 'x', 'active') RETURNING run_pk
                """, [.text(runID), .text("name-" + tag)]), then: """
                INSERT INTO run_tags (run_pk, key, value) SELECT r.run_pk, t.key, t.value FROM {first} r, (VALUES (CAST(? AS TEXT), CAST(? AS TEXT))) AS t(key, value)
                """, [.text("which"), .text(tag)])
            try SQLStore.appendAuditEvent(db, AuditDraft("run.create", "run:\(runID)", details: [:]), identity: nil, key: key)
            return runID
        }
    }

    @Test("New runs with their tags and audit events go out as one statement, each run's tags on its own run")
    func newRunsTogether() async throws {
        try await withPostgresStore { store in
            store.useAuditKey(Self.key)
            let backend = try #require(store.backend as? PostgresBackend)
            let ids = (0..<5).map { _ in UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased() }
            let sent = backend.batchStatementsSent
            let outcomes = try await backend.commitBatch(ids.enumerated().map { Self.newRunWork($0.element, tag: "t\($0.offset)") })
            #expect(Self.succeeded(outcomes) == Array(repeating: true, count: 5))
            // BEGIN, the lock with the head, the first run (sent when the first event waits for
            // the head), the other four runs with their tags, the five events and the last move
            // of the head as one statement, COMMIT. (With a statement per run, 9.)
            #expect(backend.batchStatementsSent - sent == 5)
            // In one go: no statement failed (a batch that did ran again work by work, each
            // work's rows with the id of its own savepoint's subtransaction).
            let writers = try await store.read { db in
                try db.values(String.self, "SELECT DISTINCT CAST(xmin AS TEXT) FROM runs WHERE run_id = ANY(CAST(? AS text[]))", values: [.array(.texts(ids))], cache: false)
            }
            #expect(writers.count == 1)
            let tags = try await store.read { db in
                try db.rows("SELECT r.run_id, r.run_name, t.value FROM runs r JOIN run_tags t ON t.run_pk = r.run_pk WHERE t.key = 'which' ORDER BY r.run_id",
                            values: [], cache: false).map { row -> [String] in [row[0], row[1], row[2]] }
            }
            #expect(tags == ids.enumerated().map { [$0.element, "name-t\($0.offset)", "t\($0.offset)"] }.sorted { $0[0] < $1[0] })
            let events = try await AuditLogTests.all(store).filter { $0.action == "run.create" }
            #expect(events.map(\.target) == ids.map { "run:\($0)" })
            #expect(try await store.verifyAuditChain(key: Self.key, pageSize: 7, maxProblems: 5).isIntact)
            // A lone one: its two parts, its event and the head's move in one statement too.
            let lone = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            #expect(Self.succeeded(try await backend.commitBatch([Self.newRunWork(lone, tag: "alone")])) == [true])
            let alone = try await store.read { db in
                try db.value(String.self, "SELECT t.value FROM runs r JOIN run_tags t ON t.run_pk = r.run_pk WHERE r.run_id = ?", [lone])
            }
            #expect(alone == "alone")
        }
    }

    @Test("New runs read their experiment with the write lock: every creation of a batch takes its row from the lock's statement, and a creation that waited for another replica's deletion of the experiment is refused")
    func experimentReadAfterTheLock() async throws {
        try await withPostgresStore { store in
            let backend = try #require(store.backend as? PostgresBackend)
            @Sendable func newRun(_ experiment: String = "0") -> NewRun {
                NewRun(info: RunInfo(runID: UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased(), experimentID: experiment, runName: "r",
                                     userID: "", status: .running, startTime: 1, endTime: nil, artifactURI: "x", lifecycleStage: .active),
                       tags: [Tag("t", "v")])
            }
            // Alone and all at once: every creation is read ahead (a batch of creations reads
            // each experiment once for all of them).
            var taken = backend.readAheadsTaken
            for _ in 0..<3 { _ = try await store.createRun(newRun()) }
            #expect(backend.readAheadsTaken - taken == 3)
            taken = backend.readAheadsTaken
            let created = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<20 { group.addTask { try await store.createRun(newRun()).info.runID } }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(created.count == 20)
            #expect(backend.readAheadsTaken - taken == 20)
            let tagged = try await store.read { db in try db.value(Int64.self, "SELECT COUNT(*) FROM run_tags WHERE key = 't'") }
            #expect(tagged == 23)
            // A missing experiment is refused as before.
            await #expect(throws: CairnError.self) { _ = try await store.createRun(newRun("424242")) }

            // Another replica holds the lock while it deletes an experiment.
            let experiment = try await store.createExperiment(name: "doomed", artifactLocation: nil, tags: [], now: 1).experimentID
            let creating = try await Self.whileAnotherStoreHoldsTheLock(store, after: { db in
                try db.execute("UPDATE experiments SET lifecycle_stage = 'deleted' WHERE experiment_id = ?", [Int64(experiment)!])
            }, waiting: { try await store.createRun(newRun(experiment)) })
            #expect(throws: CairnError.self) { _ = try creating.get() }
            let inDeleted = try await store.read { db in
                try db.value(Int64.self, "SELECT COUNT(*) FROM runs WHERE experiment_id = ?", [Int64(experiment)!])
            }
            #expect(inDeleted == 0)
        }
    }
}
