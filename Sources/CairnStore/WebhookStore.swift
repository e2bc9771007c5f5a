import CairnCore

/// A webhook's fields as the service has validated them, for create and update (nil: keep).
public struct WebhookChange: Sendable {
    public var name: String?
    public var description: String?
    public var url: String?
    public var events: [WebhookEvent]?
    public var secret: String?
    public var status: WebhookStatus?

    public init(name: String? = nil, description: String? = nil, url: String? = nil, events: [WebhookEvent]? = nil,
                secret: String? = nil, status: WebhookStatus? = nil) {
        self.name = name
        self.description = description
        self.url = url
        self.events = events
        self.secret = secret
        self.status = status
    }
}

/// A delivery a worker holds the lease of: what to send, where, and with which secret.
public struct ClaimedDelivery: Sendable, Equatable {
    public var deliveryPK: Int64
    public var deliveryID: String
    public var webhookID: String
    public var url: String
    public var secret: String
    public var payload: String
    /// Attempts made before this one.
    public var attempts: Int

    public init(deliveryPK: Int64, deliveryID: String, webhookID: String, url: String, secret: String, payload: String, attempts: Int) {
        self.deliveryPK = deliveryPK
        self.deliveryID = deliveryID
        self.webhookID = webhookID
        self.url = url
        self.secret = secret
        self.payload = payload
        self.attempts = attempts
    }
}

/// The outcome of one attempt and what the worker decided from it.
public struct DeliveryAttemptRecord: Sendable {
    public var deliveryPK: Int64
    /// The lease holder; the record is dropped if the lease has passed to another worker.
    public var owner: String
    public var startedAt: Int64
    public var statusCode: Int?
    public var latencyMillis: Int64
    public var error: String?
    /// `pending` with `nextAttemptAt` to retry, `delivered` or `failed`.
    public var state: WebhookDeliveryState
    public var nextAttemptAt: Int64

    public init(deliveryPK: Int64, owner: String, startedAt: Int64, statusCode: Int?, latencyMillis: Int64, error: String?,
                state: WebhookDeliveryState, nextAttemptAt: Int64) {
        self.deliveryPK = deliveryPK
        self.owner = owner
        self.startedAt = startedAt
        self.statusCode = statusCode
        self.latencyMillis = latencyMillis
        self.error = error
        self.state = state
        self.nextAttemptAt = nextAttemptAt
    }
}

/// One recorded attempt of a delivery.
public struct WebhookAttempt: Sendable, Equatable {
    public var attempt: Int
    public var startedAt: Int64
    public var statusCode: Int?
    public var latencyMillis: Int64
    public var error: String?
}

/// Persistence of webhooks and their durable delivery queue. The events themselves are queued
/// by the registry and run writes, in their own transactions (see `SQLStore.enqueueWebhookEvent`).
/// Unknown or deleted webhook ids throw `RESOURCE_DOES_NOT_EXIST`.
public protocol WebhookStore: Sendable {
    /// Marks the experiment over budget (tag `cairn.budget.exceeded_at`) and queues
    /// `budget_policy.exceeded` with `data`, in one transaction, unless it is marked already.
    /// Returns whether it marked it now.
    func markBudgetExceeded(experimentID: Int64, data: JSONValue, now: Int64) async throws -> Bool
    /// Adds `rule` to the run's tag `cairn.alert.fired` and queues `metric.threshold_crossed`
    /// with `data`, in one transaction, unless the tag lists the rule already (or the run is
    /// gone). Returns whether it fired now.
    func markAlertFired(runID: String, rule: String, data: JSONValue, now: Int64) async throws -> Bool
    /// Marks every RUNNING run of a live experiment whose last activity (newest metric, else its
    /// start) is before `staleBefore` and that was not marked yet with the tag
    /// `StaleRuns.notifiedTag`, and queues `run.stale` for each, in one transaction; answers the
    /// runs marked. Replicas running it at once mark each run once. Without an active webhook
    /// subscribed to `run.stale` it does nothing.
    func notifyStaleRuns(staleBefore: Int64, now: Int64) async throws -> [String]
    /// Every live experiment's `cairn.alert` tag: (experiment id, rule text).
    func alertRuleTags() async throws -> [(experimentID: String, rules: String)]
    func createWebhook(id: String, _ fields: WebhookChange, now: Int64) async throws -> Webhook
    func fetchWebhook(id: String) async throws -> Webhook
    /// Newest first, as MLflow lists them.
    func listWebhooks(maxResults: Int, offset: Int) async throws -> (items: [Webhook], hasMore: Bool)
    func updateWebhook(id: String, _ change: WebhookChange, now: Int64) async throws -> Webhook
    /// Soft delete: the webhook disappears from the API and its pending deliveries are dropped.
    func deleteWebhook(id: String, now: Int64) async throws

    /// Leases up to `limit` pending deliveries that are due at `now` and not leased by a live
    /// lease, to `owner` until `leaseUntil`. Two workers never hold the same delivery at once.
    func claimDeliveries(owner: String, now: Int64, leaseUntil: Int64, limit: Int) async throws -> [ClaimedDelivery]
    /// Records an attempt and the delivery's new state, if `owner` still holds the lease.
    /// Answers whether it did.
    @discardableResult
    func recordAttempt(_ record: DeliveryAttemptRecord) async throws -> Bool
    /// When the earliest pending delivery is due (nil when none is pending).
    func nextDeliveryDue() async throws -> Int64?
    /// A webhook's most recent deliveries, newest first.
    func listDeliveries(webhookID: String, limit: Int) async throws -> [WebhookDelivery]
    func deliveryAttempts(deliveryID: String) async throws -> [WebhookAttempt]
}
