import CairnCore
import CairnServices
import CairnStore
import CairnTestSupport
import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Synchronization
import Testing
@testable import CairnServer

/// A clock the test moves by hand: the worker's "now" (due times, backoff), never wall time.
final class ManualClock: Sendable {
    private let current: Mutex<Int64>
    init(_ start: Int64) { current = Mutex(start) }
    func now() -> Int64 { current.withLock { $0 } }
    func advance(_ millis: Int64) { current.withLock { $0 += millis } }
}

/// A real HTTP receiver on a loopback port that answers 503 to its first `failures` requests,
/// then 200, and keeps every request it got.
final class TestReceiver: Sendable {
    struct Received: Sendable {
        let headers: [String: String]
        let body: String
    }

    let failures: Int
    private let received = Mutex<[Received]>([])

    init(failures: Int) {
        self.failures = failures
    }

    var requests: [Received] { received.withLock { $0 } }

    /// Runs `body` with the receiver's URL while it listens.
    func run(_ body: @escaping @Sendable (String) async throws -> Void) async throws {
        let router = Router()
        router.post("hook") { request, _ -> Response in
            let bytes = try await request.body.collect(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let count = self.received.withLock { list in
                list.append(Received(headers: headers, body: String(buffer: bytes)))
                return list.count
            }
            return Response(status: count <= self.failures ? .serviceUnavailable : .ok)
        }
        let ready = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "test-receiver")
        logger.logLevel = .critical  // its shutdown at the end of the test is not news
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in ready.continuation.yield(channel.localAddress?.port ?? 0) }, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService() }
            var iterator = ready.stream.makeAsyncIterator()
            let port = await iterator.next() ?? 0
            try await body("http://127.0.0.1:\(port)/hook")
            group.cancelAll()
        }
    }
}

@Suite("Webhook delivery")
struct WebhookDeliveryTests {
    /// The service and a worker over `store` on the test's clock, private targets allowed, and
    /// one webhook to `url` for `event`.
    func makeDelivery(_ store: SQLStore, _ clock: ManualClock, url: String, event: WebhookEvent, secret: String?,
                      policy: WebhookRetryPolicy) async throws -> (WebhookService, WebhookDeliveryWorker, Webhook) {
        let sender = WebhookSender(targetGuard: WebhookTargetGuard(allowPrivate: true))
        let service = WebhookService(store: store, sender: sender, now: clock.now)
        let worker = WebhookDeliveryWorker(store: store, sender: sender, policy: policy, owner: "test", now: clock.now)
        let hook = try await service.createWebhook(name: "ci", url: url, events: [event], description: nil, secret: secret, status: nil)
        return (service, worker, hook)
    }

    @Test("A receiver that fails and recovers gets the event, correctly signed, after retries with backoff", arguments: StoreBackend.allCases)
    func failsThenRecovers(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let receiver = TestReceiver(failures: 2)
            try await receiver.run { url in
                let clock = ManualClock(1_700_000_000_000)
                let (service, worker, hook) = try await makeDelivery(store, clock, url: url, event: .modelVersionCreated, secret: "topsecret",
                                                                     policy: WebhookRetryPolicy(maxAttempts: 5, baseDelayMillis: 1000, maxDelayMillis: 60_000))
                let registry = RegistryService(registry: store, tracking: TrackingService(store: store, now: clock.now))
                _ = try await registry.createRegisteredModel(name: "m", tags: [], description: nil, user: "")
                _ = try await registry.createModelVersion(name: "m", source: "s3://bucket/model", runID: nil, runLink: nil,
                                                          description: "first", tags: [], modelID: nil, user: "")

                #expect(try await worker.deliverDue() == 1)  // 503
                #expect(try await worker.deliverDue() == 0)  // backing off: 1 s
                clock.advance(999)
                #expect(try await worker.deliverDue() == 0)
                clock.advance(1)
                #expect(try await worker.deliverDue() == 1)  // 503 again
                clock.advance(1999)
                #expect(try await worker.deliverDue() == 0)  // next wait is 2 s
                clock.advance(1)
                #expect(try await worker.deliverDue() == 1)  // 200
                clock.advance(3_600_000)
                #expect(try await worker.deliverDue() == 0)  // delivered: never again

                let requests = receiver.requests
                #expect(requests.count == 3)
                let deliveryIDs = Set(requests.compactMap { $0.headers["x-mlflow-delivery-id"] })
                #expect(deliveryIDs.count == 1)  // one delivery, the same id on every attempt
                let last = try #require(requests.last)
                #expect(last.body.hasPrefix(#"{"entity":"model_version","action":"created","timestamp":"#))
                #expect(last.body.hasSuffix(#""data":{"name":"m","version":"1","source":"s3://bucket/model","run_id":null,"tags":{},"description":"first"}}"#))
                let id = try #require(last.headers["x-mlflow-delivery-id"])
                let timestamp = try #require(last.headers["x-mlflow-timestamp"])
                #expect(timestamp == String((1_700_000_000_000 + 3000) / 1000))
                let mac = HMAC<SHA256>.authenticationCode(for: Array("\(id).\(timestamp).\(last.body)".utf8),
                                                          using: SymmetricKey(data: Array("topsecret".utf8)))
                #expect(last.headers["x-mlflow-signature"] == "v1," + Data(mac).base64EncodedString())

                let delivery = try #require(try await service.deliveries(webhookID: hook.webhookID, maxResults: nil).first)
                #expect(delivery.state == .delivered && delivery.attempts == 3 && delivery.lastStatusCode == 200)
                let attempts = try await store.deliveryAttempts(deliveryID: delivery.deliveryID)
                #expect(attempts.map(\.statusCode) == [503, 503, 200])
            }
        }
    }

    @Test("Two workers (two replicas) sharing one store send every delivery exactly once", arguments: StoreBackend.allCases)
    func twoWorkers(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let receiver = TestReceiver(failures: 0)
            try await receiver.run { url in
                let clock = ManualClock(5_000_000)
                let (_, first, _) = try await makeDelivery(store, clock, url: url, event: .registeredModelCreated, secret: "k",
                                                           policy: WebhookRetryPolicy())
                let second = WebhookDeliveryWorker(store: store, sender: first.sender, owner: "second", now: clock.now)
                for i in 0..<20 {
                    _ = try await store.createRegisteredModel(name: "m\(i)", description: "", tags: [], user: "", now: clock.now())
                }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in [first, second] {
                        group.addTask {
                            while try await worker.deliverDue() > 0 {}
                        }
                    }
                    try await group.waitForAll()
                }
                let bodies = receiver.requests.map(\.body)
                #expect(bodies.count == 20)
                #expect(Set(receiver.requests.compactMap { $0.headers["x-mlflow-delivery-id"] }).count == 20)
                #expect(Set(bodies).count == 20)
            }
        }
    }

    @Test("A receiver that never answers well is given up after the policy's attempts; a 4xx is not retried")
    func givesUp() async throws {
        try await withStore(.sqlite) { store in
            let receiver = TestReceiver(failures: 100)
            try await receiver.run { url in
                let clock = ManualClock(1_000_000)
                let (service, worker, hook) = try await makeDelivery(store, clock, url: url, event: .registeredModelCreated, secret: nil,
                                                                     policy: WebhookRetryPolicy(maxAttempts: 3, baseDelayMillis: 10, maxDelayMillis: 20))
                _ = try await store.createRegisteredModel(name: "m", description: "", tags: [], user: "", now: clock.now())
                for _ in 0..<10 {
                    try await worker.deliverDue()
                    clock.advance(20)
                }
                #expect(receiver.requests.count == 3)
                #expect(receiver.requests.allSatisfy { $0.headers["x-mlflow-signature"] == nil })  // no secret, no signature
                let delivery = try #require(try await service.deliveries(webhookID: hook.webhookID, maxResults: nil).first)
                #expect(delivery.state == .failed && delivery.attempts == 3 && delivery.lastStatusCode == 503)
            }
        }
        let policy = WebhookRetryPolicy()
        let refused = WebhookSendOutcome(statusCode: 404, responseBody: nil, error: nil, latencyMillis: 1)
        #expect(policy.next(after: refused, attempt: 1, now: 5).state == .failed)
        let down = WebhookSendOutcome(statusCode: nil, responseBody: nil, error: "connection refused", latencyMillis: 1)
        let retry = policy.next(after: down, attempt: 1, now: 5)
        #expect(retry.state == .pending && retry.at == 1005)
        #expect(policy.delay(afterAttempt: 30) == 3_600_000)
    }

    @Test("The SSRF guard refuses loopback, private, link-local and mapped addresses and plain http unless allowed")
    func ssrfGuard() async throws {
        let strict = WebhookTargetGuard(allowPrivate: false, resolve: { host in
            host == "internal.example" ? [[10, 1, 2, 3]] : [[93, 184, 216, 34]]
        })
        for url in ["https://127.0.0.1/x", "https://10.0.0.1/", "https://169.254.169.254/latest", "https://[::1]:8443/",
                    "https://[::ffff:192.168.1.1]/", "https://internal.example/hook", "http://example.com/hook", "ftp://example.com/",
                    "https://127.1/", "https:///nohost", "https://0.0.0.0/", "https://100.64.1.1/", "https://[fd00::1]/"] {
            await #expect(throws: CairnError.self, "\(url)") { try await strict.check(url) }
        }
        try await strict.check("https://example.com/hook")
        try await strict.check("https://93.184.216.34/hook")
        let relaxed = WebhookTargetGuard(allowPrivate: true, resolve: { _ in [] })
        try await relaxed.check("http://127.0.0.1:8080/hook")
        await #expect(throws: CairnError.self) { try await relaxed.check("ftp://127.0.0.1/") }
    }

    @Test("The MLflow webhook routes create, get, list, update, test and delete; the secret is never returned")
    func routes() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var configuration = CairnServerConfiguration(dataDirectory: directory.path)
        configuration.webhooksAllowPrivate = true
        let app = Application(router: buildRouter(services: try openServices(configuration)))
        try await app.test(.router) { client in
            func call(_ method: HTTPRequest.Method, _ uri: String, _ json: String? = nil) async throws -> (Int, [String: Any], String) {
                try await client.execute(uri: uri, method: method, headers: [.contentType: "application/json"],
                                         body: json.map { ByteBuffer(string: $0) }) { response in
                    let text = String(buffer: response.body)
                    let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
                    return (Int(response.status.code), object, text)
                }
            }
            let (status, created, text) = try await call(.post, "/api/2.0/mlflow/webhooks", #"""
                {"name": "w1", "url": "http://127.0.0.1:9/hook", "events": [{"entity": "MODEL_VERSION", "action": "CREATED"},
                 {"entity": "RUN", "action": "FAILED"}], "secret": "hush", "description": "ci"}
                """#)
            #expect(status == 200)
            #expect(!text.contains("hush"))
            let hook = try #require(created["webhook"] as? [String: Any])
            let id = try #require(hook["webhook_id"] as? String)
            #expect(hook["status"] as? String == "ACTIVE")
            // MLflow's endpoints show MLflow's events only (the mlflow client cannot parse RUN); Cairn's show all.
            #expect((hook["events"] as? [[String: String]]) == [["entity": "MODEL_VERSION", "action": "CREATED"]])
            let (_, full, _) = try await call(.get, "/api/cairn/v1/webhooks/get?webhook_id=\(id)")
            #expect(((full["webhook"] as? [String: Any])?["events"] as? [[String: String]])
                    == [["entity": "MODEL_VERSION", "action": "CREATED"], ["entity": "RUN", "action": "FAILED"]])
            let (_, got, gotText) = try await call(.get, "/api/2.0/mlflow/webhooks/\(id)")
            #expect((got["webhook"] as? [String: Any])?["description"] as? String == "ci")
            #expect(!gotText.contains("hush"))
            let (_, listed, _) = try await call(.get, "/api/2.0/mlflow/webhooks?max_results=10")
            #expect((listed["webhooks"] as? [[String: Any]])?.count == 1)
            let (_, updated, _) = try await call(.patch, "/api/2.0/mlflow/webhooks/\(id)", #"{"status": "DISABLED", "name": ""}"#)
            #expect((updated["webhook"] as? [String: Any])?["status"] as? String == "DISABLED")
            #expect((updated["webhook"] as? [String: Any])?["name"] as? String == "w1")
            let (testStatus, tested, _) = try await call(.post, "/api/2.0/mlflow/webhooks/\(id)/test", "{}")
            #expect(testStatus == 200)
            let result = try #require(tested["result"] as? [String: Any])
            #expect(result["success"] as? Bool == false)
            #expect((result["error_message"] as? String)?.hasPrefix("Failed to test webhook") == true)
            let (deliveriesStatus, deliveries, _) = try await call(.get, "/api/cairn/v1/webhooks/deliveries?webhook_id=\(id)")
            #expect(deliveriesStatus == 200)
            #expect(deliveries["deliveries"] == nil)  // none yet: the empty list is omitted, as MLflow omits empty fields
            let (badStatus, bad, _) = try await call(.post, "/api/2.0/mlflow/webhooks", #"""
                {"name": "w2", "url": "http://127.0.0.1/hook", "events": [{"entity": "MODEL_VERSION", "action": "SET"}]}
                """#)
            #expect(badStatus == 400)
            #expect(bad["error_code"] as? String == "INVALID_PARAMETER_VALUE")
            let (badNameStatus, _, _) = try await call(.post, "/api/2.0/mlflow/webhooks", #"""
                {"name": "-w", "url": "http://127.0.0.1/hook", "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}
                """#)
            #expect(badNameStatus == 400)
            let (deleteStatus, _, _) = try await call(.delete, "/api/2.0/mlflow/webhooks/\(id)", "{}")
            #expect(deleteStatus == 200)
            let (missingStatus, missing, _) = try await call(.get, "/api/2.0/mlflow/webhooks/\(id)")
            #expect(missingStatus == 404)
            #expect(missing["error_code"] as? String == "RESOURCE_DOES_NOT_EXIST")
        }
    }

    @Test("Without --webhooks-allow-private a loopback webhook is refused with INVALID_PARAMETER_VALUE")
    func refusesLoopbackByDefault() async throws {
        try await withRouteApp { call in
            let reply = try await call(.post, "/api/2.0/mlflow/webhooks", #"""
                {"name": "w1", "url": "https://127.0.0.1/hook", "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}
                """#)
            #expect(reply.status == 400)
            #expect(reply.json["error_code"] as? String == "INVALID_PARAMETER_VALUE")
        }
    }
}
