import CairnCore
import CairnTestSupport
import Foundation
import Testing
@testable import CairnStore

@Suite("Webhook store")
struct WebhookStoreTests {
    func makeWebhook(_ store: SQLStore, name: String = "hook", events: [WebhookEvent], status: WebhookStatus = .active,
                     now: Int64 = 100) async throws -> Webhook {
        try await store.createWebhook(id: UUID().uuidString.lowercased(), WebhookChange(
            name: name, description: "d", url: "https://example.com/hook", events: events, secret: "s3cret", status: status), now: now)
    }

    @Test("Webhooks are created, listed newest first, updated and soft-deleted; the secret is kept", arguments: StoreBackend.allCases)
    func crud(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let a = try await makeWebhook(store, name: "a", events: [.modelVersionCreated, .registeredModelCreated], now: 1)
            let b = try await makeWebhook(store, name: "b", events: [.runFailed], now: 2)
            #expect(a.events == [.modelVersionCreated, .registeredModelCreated])
            #expect(a.secret == "s3cret")
            #expect(try await store.fetchWebhook(id: a.webhookID) == a)
            let page = try await store.listWebhooks(maxResults: 1, offset: 0)
            #expect(page.items.map(\.name) == ["b"] && page.hasMore)
            #expect(try await store.listWebhooks(maxResults: 1, offset: 1).items.map(\.name) == ["a"])

            let changed = try await store.updateWebhook(id: a.webhookID, WebhookChange(
                description: "", events: [.modelVersionTagSet], secret: "", status: .disabled), now: 5)
            #expect(changed.name == "a" && changed.description == "" && changed.secret == "" && changed.status == .disabled)
            #expect(changed.events == [.modelVersionTagSet] && changed.lastUpdatedTimestamp == 5 && changed.creationTimestamp == 1)

            try await store.deleteWebhook(id: b.webhookID, now: 6)
            await #expect(throws: CairnError.self) { _ = try await store.fetchWebhook(id: b.webhookID) }
            await #expect(throws: CairnError.self) { try await store.deleteWebhook(id: b.webhookID, now: 7) }
            #expect(try await store.listWebhooks(maxResults: 10, offset: 0).items.map(\.name) == ["a"])
        }
    }

    @Test("A registry change queues its event, in MLflow's payload shape, for each active subscribed webhook", arguments: StoreBackend.allCases)
    func registryEvents(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let hook = try await makeWebhook(store, events: [.modelVersionCreated, .modelVersionAliasCreated])
            _ = try await makeWebhook(store, name: "off", events: [.modelVersionCreated], status: .disabled)
            _ = try await makeWebhook(store, name: "other", events: [.registeredModelCreated])
            _ = try await store.createRegisteredModel(name: "m", description: "", tags: [], user: "u", now: 1_700_000_000_000)
            _ = try await store.createModelVersion(NewModelVersion(
                name: "m", source: "s3://b/m", runID: nil, runLink: nil, description: "", modelID: nil, tags: [Tag("k", "v")], userID: "u"),
                now: 1_700_000_000_123)
            try await store.setRegisteredModelAlias(name: "m", alias: "champion", version: 1, user: "u", now: 1_700_000_000_200)
            try await store.setModelVersionTag(name: "m", version: 1, tag: Tag("x", "y"), user: "u", now: 1_700_000_000_300)
            // A change that fails queues nothing: the event is part of the change's transaction.
            await #expect(throws: CairnError.self) {
                try await store.setRegisteredModelAlias(name: "m", alias: "ghost", version: 9, user: "u", now: 1_700_000_000_400)
            }

            let deliveries = try await store.listDeliveries(webhookID: hook.webhookID, limit: 10)
            #expect(deliveries.map(\.event) == [.modelVersionAliasCreated, .modelVersionCreated])
            #expect(deliveries.allSatisfy { $0.state == .pending && $0.attempts == 0 })
            let created = try #require(deliveries.last)
            #expect(created.payload == #"{"entity":"model_version","action":"created","timestamp":"2023-11-14T22:13:20.123000+00:00","data":{"name":"m","version":"1","source":"s3://b/m","run_id":null,"tags":{"k":"v"},"description":null}}"#)
            #expect(created.createdAt == 1_700_000_000_123 && created.nextAttemptAt == 1_700_000_000_123)
            #expect(deliveries.first?.payload.contains(#""data":{"name":"m","alias":"champion","version":"1"}"#) == true)
        }
    }

    @Test("A run that fails queues run.failed; staying RUNNING or finishing unsubscribed queues nothing", arguments: StoreBackend.allCases)
    func runEvents(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let hook = try await makeWebhook(store, events: [.runFailed])
            func makeRun() async throws -> String {
                let id = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
                let info = RunInfo(runID: id, experimentID: "0", runName: "r", userID: "me", status: .running, startTime: 1, endTime: nil,
                                   artifactURI: "x", lifecycleStage: .active)
                return try await store.createRun(NewRun(info: info, tags: [])).info.runID
            }
            let failing = try await makeRun()
            let finishing = try await makeRun()
            _ = try await store.updateRun(id: failing, status: .running, endTime: nil, runName: nil, now: 5)
            _ = try await store.updateRun(id: finishing, status: .finished, endTime: 9, runName: nil, now: 9)
            _ = try await store.updateRun(id: failing, status: .failed, endTime: 10, runName: nil, now: 10)
            _ = try await store.updateRun(id: failing, status: .failed, endTime: 11, runName: nil, now: 11)
            let deliveries = try await store.listDeliveries(webhookID: hook.webhookID, limit: 10)
            #expect(deliveries.count == 1)
            #expect(deliveries.first?.event == .runFailed)
            #expect(deliveries.first?.payload.contains(#""data":{"run_id":"\#(failing)","experiment_id":"0","run_name":"r","user_id":"me","status":"FAILED","start_time":1,"end_time":10}"#) == true)
        }
    }

    @Test("Idle RUNNING runs are reported stale once each, only while someone subscribes, and two passes at once report each once", arguments: StoreBackend.allCases)
    func staleRuns(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            func makeRun(start: Int64) async throws -> String {
                let id = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
                let info = RunInfo(runID: id, experimentID: "0", runName: "r", userID: "me", status: .running, startTime: start, endTime: nil,
                                   artifactURI: "x", lifecycleStage: .active)
                return try await store.createRun(NewRun(info: info, tags: [])).info.runID
            }
            let idle = try await makeRun(start: 1_000)
            let busy = try await makeRun(start: 1_000)
            try await store.logRunWrites(runID: busy, RunWrites(metrics: [Metric(key: "loss", value: 1, timestamp: 50_000, step: 0)]))
            // Nobody subscribed: nothing is marked.
            #expect(try await store.notifyStaleRuns(staleBefore: 10_000, now: 60_000).isEmpty)
            #expect(try await store.fetchRun(id: idle).tags.contains { $0.key == StaleRuns.notifiedTag } == false)
            let hook = try await makeWebhook(store, events: [.runStale])
            async let first = store.notifyStaleRuns(staleBefore: 10_000, now: 60_000)
            async let second = store.notifyStaleRuns(staleBefore: 10_000, now: 60_000)
            let reported = try await first + second
            #expect(reported == [idle])
            #expect(try await store.notifyStaleRuns(staleBefore: 10_000, now: 61_000).isEmpty)
            #expect(try await store.fetchRun(id: idle).tags.contains { $0.key == StaleRuns.notifiedTag && $0.value == "60000" })
            let deliveries = try await store.listDeliveries(webhookID: hook.webhookID, limit: 10)
            #expect(deliveries.map(\.event) == [.runStale])
            #expect(deliveries.first?.payload.contains(#""run_id":"\#(idle)","experiment_id":"0","last_activity":1000"#) == true)
        }
    }

    @Test("A lease keeps a delivery from a second worker until it runs out; a stale worker's record is refused", arguments: StoreBackend.allCases)
    func leases(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let hook = try await makeWebhook(store, events: [.registeredModelCreated])
            _ = try await store.createRegisteredModel(name: "m", description: "", tags: [], user: "u", now: 100)
            #expect(try await store.nextDeliveryDue() == 100)
            #expect(try await store.claimDeliveries(owner: "a", now: 99, leaseUntil: 1099, limit: 10).isEmpty)  // not due yet
            let claimed = try await store.claimDeliveries(owner: "a", now: 100, leaseUntil: 1100, limit: 10)
            #expect(claimed.count == 1)
            #expect(claimed.first?.url == "https://example.com/hook" && claimed.first?.secret == "s3cret" && claimed.first?.attempts == 0)
            #expect(try await store.claimDeliveries(owner: "b", now: 500, leaseUntil: 1500, limit: 10).isEmpty)
            // a's lease runs out; b takes the delivery over, and a's late record is dropped.
            let takenOver = try await store.claimDeliveries(owner: "b", now: 1100, leaseUntil: 2100, limit: 10)
            #expect(takenOver.map(\.deliveryID) == claimed.map(\.deliveryID))
            let pk = try #require(claimed.first?.deliveryPK)
            let late = DeliveryAttemptRecord(deliveryPK: pk, owner: "a", startedAt: 100, statusCode: 200, latencyMillis: 3, error: nil,
                                             state: .delivered, nextAttemptAt: 103)
            #expect(try await store.recordAttempt(late) == false)
            let failed = DeliveryAttemptRecord(deliveryPK: pk, owner: "b", startedAt: 1100, statusCode: 503, latencyMillis: 4, error: nil,
                                               state: .pending, nextAttemptAt: 2100)
            #expect(try await store.recordAttempt(failed))
            #expect(try await store.nextDeliveryDue() == 2100)
            let retried = try await store.claimDeliveries(owner: "a", now: 2100, leaseUntil: 3100, limit: 10)
            #expect(retried.first?.attempts == 1)
            #expect(try await store.recordAttempt(DeliveryAttemptRecord(deliveryPK: pk, owner: "a", startedAt: 2100, statusCode: 200, latencyMillis: 5,
                                                                        error: nil, state: .delivered, nextAttemptAt: 2105)))
            #expect(try await store.nextDeliveryDue() == nil)
            let delivery = try #require(try await store.listDeliveries(webhookID: hook.webhookID, limit: 1).first)
            #expect(delivery.state == .delivered && delivery.attempts == 2 && delivery.lastStatusCode == 200 && delivery.deliveredAt == 2105)
            let attempts = try await store.deliveryAttempts(deliveryID: delivery.deliveryID)
            #expect(attempts.map(\.statusCode) == [503, 200])
            #expect(attempts.map(\.attempt) == [1, 2])
        }
    }

    @Test("Concurrent claims by several workers never hand out one delivery twice", arguments: StoreBackend.allCases)
    func concurrentClaims(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            _ = try await makeWebhook(store, events: [.registeredModelCreated])
            for i in 0..<40 {
                _ = try await store.createRegisteredModel(name: "m\(i)", description: "", tags: [], user: "u", now: 100)
            }
            let claims = try await withThrowingTaskGroup(of: [String].self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        var ids: [String] = []
                        for _ in 0..<6 {
                            ids += try await store.claimDeliveries(owner: "w\(worker)", now: 100, leaseUntil: 10_000, limit: 3).map(\.deliveryID)
                        }
                        return ids
                    }
                }
                var all: [String] = []
                for try await ids in group { all += ids }
                return all
            }
            let rest = try await store.claimDeliveries(owner: "z", now: 100, leaseUntil: 10_000, limit: 100).map(\.deliveryID)
            #expect(claims.count + rest.count == 40)
            #expect(Set(claims + rest).count == 40)
        }
    }

    @Test("A blob newly found damaged or missing queues artifact.damaged once, naming the files that use it", arguments: StoreBackend.allCases)
    func artifactDamage(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            _ = try await makeWebhook(store, events: [.artifactDamaged])
            let good = String(repeating: "a", count: 64), bad = String(repeating: "b", count: 64)
            try await store.recordArtifact(ArtifactEntry(path: "0/run/artifacts/model.pkl", digest: bad, size: 3), now: 1)
            try await store.recordBlobChecks([good: BlobCheck(result: .ok, checkedAt: 10), bad: BlobCheck(result: .damaged, checkedAt: 10)])
            try await store.recordBlobChecks([bad: BlobCheck(result: .damaged, checkedAt: 20)])  // known already: no second event
            let claimed = try await store.claimDeliveries(owner: "t", now: 100, leaseUntil: 200, limit: 10)
            #expect(claimed.count == 1)
            let payload = try #require(claimed.first?.payload)
            #expect(payload.contains(#""entity":"artifact""#) && payload.contains(#""action":"damaged""#))
            #expect(payload.contains(bad) && payload.contains("0/run/artifacts/model.pkl") && !payload.contains(good))
            try await store.recordBlobChecks([bad: BlobCheck(result: .missing, checkedAt: 30)])  // worse news: announced
            // (The first delivery's lease has run out, so it is claimed again beside the new one.)
            let later = try await store.claimDeliveries(owner: "t", now: 300, leaseUntil: 400, limit: 10)
            #expect(later.filter { $0.payload.contains(#""result":"missing""#) }.count == 1)
        }
    }
}
