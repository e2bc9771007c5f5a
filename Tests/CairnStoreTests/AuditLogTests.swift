import CairnCore
import CairnTestSupport
import Foundation
import Testing
@testable import CairnStore

@Suite("Audit log: every change appends a hash-chained event in its own transaction")
struct AuditLogTests {
    static let key = AuditKey(bytes: Array(repeating: 7, count: 32))

    static func identity(_ user: String?, request: String = "req-1") -> RequestIdentity {
        RequestIdentity(user: user, isAuthenticated: user != nil, isAdmin: false, clientAddress: "10.0.0.9", requestID: request)
    }

    static func newRun(_ store: SQLStore, experiment: String = "0") async throws -> String {
        let id = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let info = RunInfo(runID: id, experimentID: experiment, runName: "r", userID: "", status: .running, startTime: 1, endTime: nil,
                           artifactURI: "x", lifecycleStage: .active)
        return try await store.createRun(NewRun(info: info, tags: [])).info.runID
    }

    static func all(_ store: SQLStore) async throws -> [AuditEvent] {
        try await store.searchAuditEvents(AuditQuery(newestFirst: false, limit: 10_000), beforeSeq: nil)
    }

    @Test("A change appends one event naming who, from where, which request, what and the new id; metrics are one event per request",
          arguments: StoreBackend.allCases)
    func eventsDescribeChanges(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            store.useAuditKey(Self.key)
            let (experiment, runID) = try await RequestIdentity.$current.withValue(Self.identity("alice")) {
                let experiment = try await store.createExperiment(name: "e", artifactLocation: nil, tags: [], now: 1)
                let runID = try await Self.newRun(store, experiment: experiment.experimentID)
                let points = (0..<250).map { Metric(key: $0 % 2 == 0 ? "loss" : "acc", value: Double($0), timestamp: 5, step: Int64($0)) }
                try await store.logRunWrites(runID: runID, RunWrites(metrics: points))
                try await store.logRunWrites(runID: runID, RunWrites(params: [Param("lr", "0.1")], tags: [Tag("secret-ish", "value")]))
                try await store.setRunLifecycle(id: runID, stage: .deleted, now: 9)
                return (experiment, runID)
            }
            let events = try await Self.all(store)
            #expect(events.map(\.action) == ["experiment.create", "run.create", "run.metrics.log", "run.log_batch", "run.delete"])
            #expect(events.map(\.seq) == [1, 2, 3, 4, 5])
            #expect(events[0].target == "experiment:\(experiment.experimentID)" && events[1].target == "run:\(runID)")
            #expect(events.allSatisfy { $0.actor == "alice" && $0.isAuthenticated && $0.clientAddress == "10.0.0.9" && $0.requestID == "req-1" })
            let metrics = try JSONValue.parse(events[2].details)
            #expect(metrics["points"] == .number("250"))
            #expect(metrics["metric_keys"] == .array([.string("acc"), .string("loss")]))
            // Tag and param values go into the digest only, never into the details.
            #expect(!events[3].details.contains("value") && events[3].details.contains("secret-ish"))
            #expect(events[2].digest.count == 64 && events[2].digest != events[3].digest)
            #expect(events[0].previousHash == AuditChain.genesis)
            for (a, b) in zip(events, events.dropFirst()) { #expect(b.previousHash == a.hash) }
            let verified = try await store.verifyAuditChain(key: Self.key, pageSize: 2, maxProblems: 5)
            #expect(verified.isIntact && verified.events == 5 && verified.lastSeq == 5 && verified.headSignatureValid == true)
        }
    }

    @Test("A change that fails leaves no event, alone or inside a shared group-commit batch", arguments: StoreBackend.allCases)
    func failedChangeLeavesNoEvent(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            store.useAuditKey(Self.key)
            _ = try await store.createExperiment(name: "taken", artifactLocation: nil, tags: [], now: 1)
            await #expect(throws: CairnError.self) { _ = try await store.createExperiment(name: "taken", artifactLocation: nil, tags: [], now: 2) }
            let runID = try await Self.newRun(store)
            await #expect(throws: CairnError.self) { try await store.deleteTag(runID: runID, key: "missing") }
            // Many at once, every other one failing: the failures roll back to their savepoint, events included.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<40 {
                    group.addTask {
                        if i % 2 == 0 {
                            try await store.logRunWrites(runID: runID, RunWrites(tags: [Tag("k\(i)", "v")]))
                        } else {
                            try? await store.deleteTag(runID: runID, key: "never-set-\(i)")
                        }
                    }
                }
                try await group.waitForAll()
            }
            let events = try await Self.all(store)
            #expect(events.map(\.action).filter { $0 == "run.tags.set" }.count == 20)
            #expect(!events.contains { $0.action == "run.tag.delete" })
            #expect(events.count == 2 + 20 && events.map(\.seq) == Array(1...22))
            #expect(try await store.verifyAuditChain(key: Self.key, pageSize: 7, maxProblems: 5).isIntact)
        }
    }

    @Test("A lone change whose statement fails only when the database runs it (after the work returned) leaves no row and no event",
          arguments: StoreBackend.allCases)
    func failedDeferredStatementLeavesNothing(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            store.useAuditKey(Self.key)
            let runID = try await Self.newRun(store)
            // On PostgreSQL the inserts are sent without waiting and the COMMIT right behind them;
            // the duplicate key aborts the transaction, so that COMMIT rolls everything back.
            await #expect(throws: (any Error).self) {
                try await store.write("test.fail", "run:\(runID)") { db in
                    let (pk, _) = try SQLStore.loadRunInfo(db, id: runID)
                    try db.executeDeferred("INSERT INTO run_tags (run_pk, key, value) VALUES (?, ?, ?)", [pk, "before", "x"])
                    try db.executeDeferred("INSERT INTO run_tags (run_pk, key, value) VALUES (?, ?, ?), (?, ?, ?)", [pk, "dup", "a", pk, "dup", "b"])
                }
            }
            #expect(try await store.fetchRun(id: runID).tags.isEmpty)
            try await store.logRunWrites(runID: runID, RunWrites(tags: [Tag("after", "y")]))
            #expect(try await store.fetchRun(id: runID).tags == [Tag("after", "y")])
            let events = try await Self.all(store)
            #expect(!events.contains { $0.action == "test.fail" })
            #expect(events.map(\.seq) == Array(1...Int64(events.count)))
            #expect(try await store.verifyAuditChain(key: Self.key, pageSize: 7, maxProblems: 5).isIntact)
        }
    }

    @Test("Concurrent writers keep one linear chain: every number once, every link intact", arguments: StoreBackend.allCases)
    func concurrentWritersStayLinear(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            store.useAuditKey(Self.key)
            let runs = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<8 { group.addTask { try await Self.newRun(store) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (r, runID) in runs.enumerated() {
                    for i in 0..<15 {
                        group.addTask {
                            try await RequestIdentity.$current.withValue(Self.identity("u\(r)", request: "r\(r)-\(i)")) {
                                try await store.logRunWrites(runID: runID, RunWrites(metrics: [Metric(key: "m", value: 1, timestamp: 1, step: Int64(i))]))
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let events = try await Self.all(store)
            let expected: [Int64] = Array(1...128)
            #expect(events.map(\.seq) == expected)
            let requests = Set(events.map(\.requestID))
            #expect(requests.count == 121)
            #expect(try await store.verifyAuditChain(key: Self.key, pageSize: 50, maxProblems: 5).isIntact)
        }
    }

    @Test("Two PostgreSQL replicas writing at once append to one linear chain")
    func replicasShareOneChain() async throws {
        try await withPostgresStore { first in
            let second = try PostgresTrackingStore(location: first.location, poolSize: 3)
            defer { second.shutdown() }
            first.useAuditKey(Self.key)
            second.useAuditKey(Self.key)
            let runID = try await Self.newRun(first)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<60 {
                    let store: SQLStore = i % 2 == 0 ? first : second
                    group.addTask { try await store.logRunWrites(runID: runID, RunWrites(tags: [Tag("k\(i)", "v")])) }
                }
                try await group.waitForAll()
            }
            let verified = try await second.verifyAuditChain(key: Self.key, pageSize: 1000, maxProblems: 5)
            #expect(verified.isIntact && verified.events == 61)
        }
    }

    @Test("An event without other change (a sign-in) carries the identity; search filters by actor, action prefix, target and time, paged",
          arguments: StoreBackend.allCases)
    func recordAndSearch(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            try await RequestIdentity.$current.withValue(Self.identity(nil, request: "login-1")) {
                try await store.recordAuditEvent(AuditDraft("user.sign_in.failed", "user:bob", details: ["reason": .string("bad password")]))
            }
            try await RequestIdentity.$current.withValue(Self.identity("bob", request: "login-2")) {
                try await store.recordAuditEvent(AuditDraft("user.sign_in", "user:bob"))
                _ = try await store.createExperiment(name: "x", artifactLocation: nil, tags: [], now: 1)
            }
            let failed = try await store.searchAuditEvents(AuditQuery(action: "user.sign_in.failed"), beforeSeq: nil)
            #expect(failed.count == 1 && failed[0].actor == nil && !failed[0].isAuthenticated && failed[0].requestID == "login-1")
            #expect(try await store.searchAuditEvents(AuditQuery(action: "user."), beforeSeq: nil).map(\.seq) == [2, 1])
            #expect(try await store.searchAuditEvents(AuditQuery(actor: "bob"), beforeSeq: nil).map(\.action) == ["experiment.create", "user.sign_in"])
            #expect(try await store.searchAuditEvents(AuditQuery(target: "experiment:*"), beforeSeq: nil).count == 1)
            #expect(try await store.searchAuditEvents(AuditQuery(limit: 1), beforeSeq: 3).map(\.seq) == [2, 1])
            #expect(try await store.searchAuditEvents(AuditQuery(sinceTime: Int64(Date().timeIntervalSince1970 * 1000) + 60_000), beforeSeq: nil).isEmpty)
            // Without a key the head stays unsigned, and verify with a key says so.
            let verified = try await store.verifyAuditChain(key: Self.key, pageSize: 10, maxProblems: 5)
            #expect(verified.headSignatureValid == false && !verified.isIntact)
            #expect(try await store.verifyAuditChain(key: nil, pageSize: 10, maxProblems: 5).isIntact)
        }
    }

    /// What someone with write access to the database does behind Cairn's back: first lift
    /// the guard that refuses UPDATE and DELETE of events, then change rows.
    static func tamper(_ store: SQLStore, _ statements: [String], _ values: [[SQLValue]] = []) async throws {
        let lift = store.dialect == .sqlite
            ? ["DROP TRIGGER IF EXISTS audit_events_no_update", "DROP TRIGGER IF EXISTS audit_events_no_delete"]
            : ["DROP RULE IF EXISTS audit_events_no_update ON audit_events", "DROP RULE IF EXISTS audit_events_no_delete ON audit_events"]
        try await store.writeUnaudited { db in
            for sql in lift { try db.run(sql, [], cache: false) }
            for (i, sql) in statements.enumerated() { try db.run(sql, i < values.count ? values[i] : [], cache: false) }
        }
    }

    static func chainOf(_ count: Int, _ store: SQLStore) async throws {
        store.useAuditKey(key)
        for i in 0..<count {
            try await store.recordAuditEvent(AuditDraft("test.event", "thing:\(i)"))
        }
    }

    @Test("Events refuse UPDATE and DELETE from an ordinary statement", arguments: StoreBackend.allCases)
    func appendOnly(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            try await Self.chainOf(3, store)
            if backend == .sqlite {
                await #expect(throws: (any Error).self) { _ = try await store.writeUnaudited { db in try db.execute("DELETE FROM audit_events") } }
            } else {
                _ = try await store.writeUnaudited { db in try db.execute("DELETE FROM audit_events WHERE seq = 2") }
            }
            #expect(try await Self.all(store).count == 3)
        }
    }

    @Test("verify names an edited event, a deleted one, a reordered pair, a re-hashed edit, a forged tail and a truncated tail",
          arguments: StoreBackend.allCases)
    func verifyNamesEachTampering(backend: StoreBackend) async throws {
        typealias Problem = AuditVerification.Problem
        func check(_ statements: [String], _ values: [[SQLValue]] = [], expect: Problem) async throws {
            try await withStore(backend) { store in
                try await Self.chainOf(6, store)
                #expect(try await store.verifyAuditChain(key: Self.key, pageSize: 4, maxProblems: 5).isIntact)
                try await Self.tamper(store, statements, values)
                let result = try await store.verifyAuditChain(key: Self.key, pageSize: 4, maxProblems: 5)
                #expect(!result.isIntact)
                #expect(result.problems.first == expect, "\(result.problems)")
            }
        }
        // Edited: the content no longer hashes to the stored hash.
        try await check(["UPDATE audit_events SET target = 'thing:99' WHERE seq = 3"], expect: .edited(seq: 3))
        // Deleted from the middle: a gap in the numbers.
        try await check(["DELETE FROM audit_events WHERE seq = 4"], expect: .broken(seq: 5, expectedSeq: 4))
        // Reordered: two events swap their numbers; the one now second does not link to the first.
        try await check(["UPDATE audit_events SET seq = -2 WHERE seq = 2", "UPDATE audit_events SET seq = 2 WHERE seq = 3",
                         "UPDATE audit_events SET seq = 3 WHERE seq = -2"], expect: .broken(seq: 2, expectedSeq: 2))
        // Edited with its hash recomputed: the next event's link no longer matches.
        try await withStore(backend) { store in
            try await Self.chainOf(6, store)
            let third = try await Self.all(store)[2]
            var forged = third
            forged.target = "thing:forged"
            forged.hash = AuditChain.hash(previous: forged.previousHash, event: forged)
            try await Self.tamper(store, ["UPDATE audit_events SET target = ?, hash = ? WHERE seq = 3"], [[.text(forged.target), .text(forged.hash)]])
            let result = try await store.verifyAuditChain(key: Self.key, pageSize: 4, maxProblems: 5)
            #expect(result.problems.first == .broken(seq: 4, expectedSeq: 4), "\(result.problems)")
        }
        // Forged at the end with a correct hash but no key: the signed head does not name it,
        // and a head rewritten without the key does not verify.
        try await withStore(backend) { store in
            try await Self.chainOf(6, store)
            let last = try await Self.all(store)[5]
            var forged = last
            forged.seq = 7
            forged.action = "test.forged"
            forged.previousHash = last.hash
            forged.hash = AuditChain.hash(previous: last.hash, event: forged)
            try await Self.tamper(store, ["INSERT INTO audit_events (\(SQLStore.auditColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"], [[
                .integer(7), .integer(forged.time), .null, .integer(0), .text(forged.clientAddress), .text(forged.requestID),
                .text(forged.action), .text(forged.target), .text(forged.digest), .text(forged.details), .text(forged.previousHash), .text(forged.hash),
            ]])
            var result = try await store.verifyAuditChain(key: Self.key, pageSize: 4, maxProblems: 5)
            #expect(result.problems.first == .headMismatch(headSeq: 6, lastSeq: 7), "\(result.problems)")
            try await Self.tamper(store, ["UPDATE audit_head SET last_seq = 7, last_hash = ?, signature = ?"],
                                  [[.text(forged.hash), .text(AuditChain.signature(seq: 7, hash: forged.hash, key: AuditKey(bytes: Array(repeating: 1, count: 32))))]])
            result = try await store.verifyAuditChain(key: Self.key, pageSize: 4, maxProblems: 5)
            #expect(result.headSignatureValid == false && result.problems.count == 1, "\(result.problems)")
        }
        // The tail deleted: the head still names the last event.
        try await check(["DELETE FROM audit_events WHERE seq >= 5"], expect: .headMismatch(headSeq: 6, lastSeq: 4))
    }
}
