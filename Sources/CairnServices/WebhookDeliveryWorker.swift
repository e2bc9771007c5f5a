import CairnCore
import CairnStore
import Foundation
import Logging

/// When to try a delivery again: exponential backoff from `baseDelayMillis`, doubling up to
/// `maxDelayMillis`, for at most `maxAttempts` attempts. The defaults keep retrying for about
/// half a day (1 s, 2 s, 4 s … then hourly), so a receiver that is down for hours loses nothing.
public struct WebhookRetryPolicy: Sendable, Equatable {
    public var maxAttempts: Int
    public var baseDelayMillis: Int64
    public var maxDelayMillis: Int64

    public init(maxAttempts: Int = 20, baseDelayMillis: Int64 = 1000, maxDelayMillis: Int64 = 3_600_000) {
        self.maxAttempts = maxAttempts
        self.baseDelayMillis = baseDelayMillis
        self.maxDelayMillis = maxDelayMillis
    }

    /// The wait after the `attempt`-th failed attempt (from 1).
    public func delay(afterAttempt attempt: Int) -> Int64 {
        let doublings = min(max(attempt - 1, 0), 40)
        let delay = baseDelayMillis.multipliedReportingOverflow(by: Int64(1) << doublings)
        return delay.overflow ? maxDelayMillis : min(delay.partialValue, maxDelayMillis)
    }

    /// The delivery's state after an attempt with `outcome`, and when to try next.
    public func next(after outcome: WebhookSendOutcome, attempt: Int, now: Int64) -> (state: WebhookDeliveryState, at: Int64) {
        if outcome.isSuccess { return (.delivered, now) }
        if outcome.isRetryable, attempt < maxAttempts { return (.pending, now + delay(afterAttempt: attempt)) }
        return (.failed, now)
    }
}

/// Sends the queued webhook deliveries: one per server replica. Each pass leases the due
/// deliveries (so that replicas sharing a PostgreSQL database never send the same one at the
/// same time), posts them concurrently, and records every attempt (status code, latency,
/// error) with the delivery's next state. A delivery whose lease ran out (its replica died
/// mid-attempt) is taken up again by any replica: delivery is at least once, and receivers
/// recognise repeats by `X-MLflow-Delivery-Id`, the same on every attempt of a delivery.
public struct WebhookDeliveryWorker: Sendable {
    public let store: any WebhookStore
    public let sender: WebhookSender
    public var policy: WebhookRetryPolicy
    /// This worker's name in the leases it takes (unique per process).
    public let owner: String
    /// How long a lease lasts: longer than an attempt can take.
    public var leaseMillis: Int64 = 60_000
    /// Deliveries leased and sent at once in one pass.
    public var batchSize = 16
    /// How often an idle worker looks for new deliveries (other replicas queue them too).
    public var pollInterval: Duration = .seconds(1)
    let now: @Sendable () -> Int64
    let logger: Logger

    public init(store: any WebhookStore, sender: WebhookSender, policy: WebhookRetryPolicy = WebhookRetryPolicy(),
                owner: String = "cairn-\(ProcessInfo.processInfo.hostName)-\(getpid())-\(UUID().uuidString.prefix(8))",
                now: @escaping @Sendable () -> Int64, logger: Logger = Logger(label: "cairn.webhooks")) {
        self.store = store
        self.sender = sender
        self.policy = policy
        self.owner = owner
        self.now = now
        self.logger = logger
    }

    /// One pass: leases the deliveries due now, attempts each once and records the outcomes.
    /// Answers how many attempts it made.
    @discardableResult
    public func deliverDue() async throws -> Int {
        let start = now()
        let claimed = try await store.claimDeliveries(owner: owner, now: start, leaseUntil: start + leaseMillis, limit: batchSize)
        await withTaskGroup(of: Void.self) { group in
            for delivery in claimed {
                group.addTask { await attempt(delivery) }
            }
        }
        return claimed.count
    }

    func attempt(_ delivery: ClaimedDelivery) async {
        let startedAt = now()
        let outcome = await sender.send(url: delivery.url, secret: delivery.secret, deliveryID: delivery.deliveryID,
                                        body: delivery.payload, unixSeconds: startedAt / 1000)
        let number = delivery.attempts + 1
        let (state, nextAt) = policy.next(after: outcome, attempt: number, now: now())
        let record = DeliveryAttemptRecord(deliveryPK: delivery.deliveryPK, owner: owner, startedAt: startedAt, statusCode: outcome.statusCode,
                                           latencyMillis: outcome.latencyMillis, error: outcome.error.map { String($0.prefix(1000)) },
                                           state: state, nextAttemptAt: nextAt)
        var metadata: Logger.Metadata = [
            "cairn.webhook.id": "\(delivery.webhookID)", "cairn.webhook.delivery_id": "\(delivery.deliveryID)",
            "cairn.webhook.attempt": "\(number)", "cairn.webhook.state": "\(state.rawValue)",
        ]
        if let code = outcome.statusCode { metadata["cairn.webhook.status"] = "\(code)" }
        if let error = outcome.error { metadata["cairn.webhook.error"] = "\(error)" }
        logger.log(level: state == .delivered ? .debug : .info, "Webhook delivery attempted", metadata: metadata)
        do {
            try await store.recordAttempt(record)
        } catch {
            // The lease runs out and the delivery is attempted again: at least once.
            logger.warning("Recording a webhook delivery attempt failed", metadata: ["cairn.webhook.delivery_id": "\(delivery.deliveryID)", "cairn.error": "\(error)"])
        }
    }

    /// Delivers until the task is cancelled (server shutdown): a full batch is followed at once
    /// by the next pass, otherwise the worker waits `pollInterval`.
    public func run() async {
        while !Task.isCancelled {
            var sent = 0
            do {
                sent = try await deliverDue()
            } catch {
                logger.warning("Webhook delivery pass failed; retrying", metadata: ["cairn.error": "\(error)"])
            }
            if sent < batchSize {
                do { try await Task.sleep(for: pollInterval) } catch { return }
            }
        }
    }
}
