/// A webhook as MLflow 3 defines it: a URL that receives a signed POST when one of its events
/// happens. The secret is write-only: it is kept to sign deliveries and never sent back.
public struct Webhook: Sendable, Equatable {
    public var webhookID: String
    public var name: String
    public var description: String
    public var url: String
    public var events: [WebhookEvent]
    public var status: WebhookStatus
    public var creationTimestamp: Int64
    public var lastUpdatedTimestamp: Int64
    /// Empty when there is none (deliveries are then sent unsigned, as in MLflow).
    public var secret: String

    public init(webhookID: String, name: String, description: String, url: String, events: [WebhookEvent], status: WebhookStatus,
                creationTimestamp: Int64, lastUpdatedTimestamp: Int64, secret: String) {
        self.webhookID = webhookID
        self.name = name
        self.description = description
        self.url = url
        self.events = events
        self.status = status
        self.creationTimestamp = creationTimestamp
        self.lastUpdatedTimestamp = lastUpdatedTimestamp
        self.secret = secret
    }
}

public enum WebhookStatus: String, Sendable, CaseIterable {
    case active = "ACTIVE"
    case disabled = "DISABLED"

    /// The protobuf enum number (`ACTIVE = 1`, `DISABLED = 2`).
    public init?(number: Int64) {
        switch number {
        case 1: self = .active
        case 2: self = .disabled
        default: return nil
        }
    }
}

/// An event a webhook subscribes to: an entity and an action, spelled as MLflow spells them in
/// payloads (`model_version` / `created`) and upper-case on the wire (`MODEL_VERSION`).
/// MLflow's registry events, plus Cairn's own on the same mechanism (`run.finished`,
/// `run.failed`, `run.killed`, `promotion_gate.failed`, `promotion_gate.overridden`,
/// `artifact.damaged`, `metric.threshold_crossed`).
public struct WebhookEvent: Sendable, Hashable, CustomStringConvertible {
    public let entity: String
    public let action: String

    public init(entity: String, action: String) {
        self.entity = entity
        self.action = action
    }

    public var description: String { "\(entity).\(action)" }

    public static let registeredModelCreated = WebhookEvent(entity: "registered_model", action: "created")
    public static let modelVersionCreated = WebhookEvent(entity: "model_version", action: "created")
    public static let modelVersionTagSet = WebhookEvent(entity: "model_version_tag", action: "set")
    public static let modelVersionTagDeleted = WebhookEvent(entity: "model_version_tag", action: "deleted")
    public static let modelVersionAliasCreated = WebhookEvent(entity: "model_version_alias", action: "created")
    public static let modelVersionAliasDeleted = WebhookEvent(entity: "model_version_alias", action: "deleted")
    public static let promptCreated = WebhookEvent(entity: "prompt", action: "created")
    public static let promptVersionCreated = WebhookEvent(entity: "prompt_version", action: "created")
    public static let promptTagSet = WebhookEvent(entity: "prompt_tag", action: "set")
    public static let promptTagDeleted = WebhookEvent(entity: "prompt_tag", action: "deleted")
    public static let promptVersionTagSet = WebhookEvent(entity: "prompt_version_tag", action: "set")
    public static let promptVersionTagDeleted = WebhookEvent(entity: "prompt_version_tag", action: "deleted")
    public static let promptAliasCreated = WebhookEvent(entity: "prompt_alias", action: "created")
    public static let promptAliasDeleted = WebhookEvent(entity: "prompt_alias", action: "deleted")
    public static let runFinished = WebhookEvent(entity: "run", action: "finished")
    public static let runFailed = WebhookEvent(entity: "run", action: "failed")
    public static let runKilled = WebhookEvent(entity: "run", action: "killed")
    /// A RUNNING run logged nothing for `--stale-after` (`StaleRuns`), once per run.
    public static let runStale = WebhookEvent(entity: "run", action: "stale")
    /// A promotion gate refused a version (`failed`) or was overridden with a reason (`overridden`).
    public static let gateFailed = WebhookEvent(entity: "promotion_gate", action: "failed")
    public static let gateOverridden = WebhookEvent(entity: "promotion_gate", action: "overridden")
    /// A check (`cairn verify`, the health report) found a blob missing or damaged that was not
    /// known so before (`result` says which; `paths` names up to 20 files that use it).
    public static let artifactDamaged = WebhookEvent(entity: "artifact", action: "damaged")
    /// An experiment's compute cost passed its `cairn.budget` (MLflow's own entity and action).
    public static let budgetExceeded = WebhookEvent(entity: "budget_policy", action: "exceeded")
    /// A logged metric value met one of its experiment's alert rules (`cairn.alert`), once per run and rule.
    public static let metricThresholdCrossed = WebhookEvent(entity: "metric", action: "threshold_crossed")

    /// Every entity and its valid actions: MLflow's table (`VALID_ENTITY_ACTIONS`), then Cairn's.
    public static let validActions: [(entity: String, actions: [String])] = [
        ("registered_model", ["created"]),
        ("model_version", ["created"]),
        ("model_version_tag", ["set", "deleted"]),
        ("model_version_alias", ["created", "deleted"]),
        ("prompt", ["created"]),
        ("prompt_version", ["created"]),
        ("prompt_tag", ["set", "deleted"]),
        ("prompt_version_tag", ["set", "deleted"]),
        ("prompt_alias", ["created", "deleted"]),
        ("budget_policy", ["exceeded"]),
        ("run", ["finished", "failed", "killed", "stale"]),
        ("promotion_gate", ["failed", "overridden"]),
        ("artifact", ["damaged"]),
        ("metric", ["threshold_crossed"]),
    ]

    /// Protobuf enum numbers of MLflow's entities and actions (requests may send numbers).
    public static let entityNumbers = [
        "registered_model": 1, "model_version": 2, "model_version_tag": 3, "model_version_alias": 4, "prompt": 5,
        "prompt_version": 6, "prompt_tag": 7, "prompt_version_tag": 8, "prompt_alias": 9, "budget_policy": 10,
    ]
    public static let actionNumbers = ["created": 1, "updated": 2, "deleted": 3, "set": 4, "exceeded": 5]

    /// Whether MLflow knows the event. The `mlflow` client cannot parse a webhook carrying any
    /// other (its enums have no `RUN`), so MLflow's endpoints show only these.
    public var isMLflowEvent: Bool { Self.entityNumbers[entity] != nil }

    /// Whether MLflow's entity/action table (or Cairn's additions) allows this pair.
    public var isValid: Bool {
        Self.validActions.contains { $0.entity == entity && $0.actions.contains(action) }
    }

    /// The event of a run that reached a terminal status, nil for `RUNNING` and `SCHEDULED`.
    public static func run(status: RunStatus) -> WebhookEvent? {
        switch status {
        case .finished: return .runFinished
        case .failed: return .runFailed
        case .killed: return .runKilled
        case .running, .scheduled: return nil
        }
    }
}

/// Where a delivery stands: waiting for its (next) attempt, delivered (a 2xx answer), or given
/// up (a refusal that retrying cannot change, or every attempt used).
public enum WebhookDeliveryState: String, Sendable {
    case pending
    case delivered
    case failed
}

/// One queued delivery of one event to one webhook, with its latest attempt.
public struct WebhookDelivery: Sendable, Equatable {
    public var deliveryID: String
    public var webhookID: String
    public var event: WebhookEvent
    /// The exact JSON body sent (and signed) on every attempt.
    public var payload: String
    public var createdAt: Int64
    public var state: WebhookDeliveryState
    public var attempts: Int
    public var nextAttemptAt: Int64
    public var lastStatusCode: Int?
    public var lastError: String?
    public var lastLatencyMillis: Int64?
    public var deliveredAt: Int64?

    public init(deliveryID: String, webhookID: String, event: WebhookEvent, payload: String, createdAt: Int64,
                state: WebhookDeliveryState, attempts: Int, nextAttemptAt: Int64, lastStatusCode: Int?, lastError: String?,
                lastLatencyMillis: Int64?, deliveredAt: Int64?) {
        self.deliveryID = deliveryID
        self.webhookID = webhookID
        self.event = event
        self.payload = payload
        self.createdAt = createdAt
        self.state = state
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.lastStatusCode = lastStatusCode
        self.lastError = lastError
        self.lastLatencyMillis = lastLatencyMillis
        self.deliveredAt = deliveredAt
    }
}

/// The body MLflow posts: `{"entity", "action", "timestamp" (ISO 8601, UTC), "data"}`, keys
/// in that order (Python's `json.dumps` of the dict MLflow builds). Pure: the store calls it
/// inside the transaction of the change, so the event is queued with the change or not at all.
public enum WebhookPayload {
    public static func body(_ event: WebhookEvent, data: JSONValue, timestampMillis: Int64) -> String {
        var writer = JSONWriter()
        writer.value(.object([
            ("entity", .string(event.entity)), ("action", .string(event.action)),
            ("timestamp", .string(isoTimestamp(millis: timestampMillis))), ("data", data),
        ]))
        return writer.string
    }

    /// `2026-11-26T13:30:00.123000+00:00`, as Python's `datetime.now(timezone.utc).isoformat()`.
    public static func isoTimestamp(millis: Int64) -> String {
        let seconds = millis >= 0 ? millis / 1000 : (millis - 999) / 1000
        let fraction = millis - seconds * 1000
        var days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let dayOfEra = days - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):"
            + "\(pad(secondOfDay % 60, 2)).\(pad(fraction, 3))000+00:00"
    }

    /// `{"k": "v", …}`: how MLflow's payloads carry tags.
    public static func tags(_ tags: [Tag]) -> JSONValue {
        .object(tags.map { ($0.key, .string($0.value)) })
    }

    public static func optional(_ text: String?) -> JSONValue {
        text.map(JSONValue.string) ?? .null
    }
}
