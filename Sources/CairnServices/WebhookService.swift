import CairnCore
import CairnStore
import Foundation

/// What `test_webhook` reports, as MLflow's `WebhookTestResult`.
public struct WebhookTestResult: Sendable, Equatable {
    public var success: Bool
    public var responseStatus: Int?
    public var responseBody: String?
    public var errorMessage: String?
}

/// The rules of webhooks (MLflow's validation of names, URLs and events, the SSRF guard,
/// paging) and `test_webhook`. Deliveries of real events are queued by the store with the
/// change that causes them and sent by `WebhookDeliveryWorker`.
public struct WebhookService: Sendable {
    public let store: any WebhookStore
    public let sender: WebhookSender
    let now: @Sendable () -> Int64

    public static let defaultListResults = 100
    public static let maxListResults = 1000
    public static let maxDeliveriesListed = 1000

    public init(store: any WebhookStore, sender: WebhookSender, now: @escaping @Sendable () -> Int64) {
        self.store = store
        self.sender = sender
        self.now = now
    }

    public func createWebhook(name: String, url: String, events: [WebhookEvent], description: String?, secret: String?,
                              status: WebhookStatus?) async throws -> Webhook {
        try Self.validateName(name)
        try await sender.targetGuard.check(url)
        try Self.validateEvents(events)
        let fields = WebhookChange(name: name, description: description ?? "", url: url, events: events, secret: secret ?? "",
                                   status: status ?? .active)
        return try await store.createWebhook(id: UUID().uuidString.lowercased(), fields, now: now())
    }

    public func getWebhook(id: String) async throws -> Webhook {
        try await store.fetchWebhook(id: id)
    }

    public func listWebhooks(maxResults: Int64?, pageToken: String?) async throws -> Page<Webhook> {
        let limit = try TrackingService.pageSize(maxResults, default: Self.defaultListResults, maximum: Self.maxListResults)
        let token = try PageToken.decode(pageToken)
        let (items, hasMore) = try await store.listWebhooks(maxResults: limit, offset: token.offset)
        return Page(items: items, nextPageToken: PageToken.next(after: token.offset, pageSize: limit, hasMore: hasMore))
    }

    /// Nil fields are left as they are; an empty secret removes the secret.
    public func updateWebhook(id: String, _ change: WebhookChange) async throws -> Webhook {
        if let name = change.name { try Self.validateName(name) }
        if let url = change.url { try await sender.targetGuard.check(url) }
        if let events = change.events { try Self.validateEvents(events) }
        return try await store.updateWebhook(id: id, change, now: now())
    }

    public func deleteWebhook(id: String) async throws {
        try await store.deleteWebhook(id: id, now: now())
    }

    /// Sends an example payload of `event` (the webhook's first event when nil) at once, signed
    /// like a real delivery, and reports the answer; nothing is queued or retried (as MLflow).
    public func testWebhook(id: String, event: WebhookEvent?) async throws -> WebhookTestResult {
        let webhook = try await store.fetchWebhook(id: id)
        guard let event = event ?? webhook.events.first else {
            throw CairnError.invalidParameter("Webhook \(id) has no events to test.")
        }
        try Self.validateEvents([event])
        let at = now()
        let body = WebhookPayload.body(event, data: Self.example(event), timestampMillis: at)
        let outcome = await sender.send(url: webhook.url, secret: webhook.secret, deliveryID: UUID().uuidString.lowercased(), body: body,
                                        unixSeconds: at / 1000)
        if let status = outcome.statusCode {
            return WebhookTestResult(success: status < 400, responseStatus: status, responseBody: outcome.responseBody, errorMessage: nil)
        }
        return WebhookTestResult(success: false, responseStatus: nil, responseBody: nil,
                                 errorMessage: "Failed to test webhook: \(outcome.error ?? "no answer")")
    }

    /// Sends `run.stale` for every RUNNING run that logged nothing for `staleAfterMillis` and
    /// was not reported yet (once per run); answers the runs reported.
    public func notifyStaleRuns(staleAfterMillis: Int64) async throws -> [String] {
        let at = now()
        return try await store.notifyStaleRuns(staleBefore: at - staleAfterMillis, now: at)
    }

    /// A webhook's most recent deliveries (newest first), for the API and the UI.
    public func deliveries(webhookID: String, maxResults: Int64?) async throws -> [WebhookDelivery] {
        let limit = try TrackingService.pageSize(maxResults, default: 100, maximum: Self.maxDeliveriesListed)
        return try await store.listDeliveries(webhookID: webhookID, limit: limit)
    }

    // MARK: Rules

    /// MLflow's `_validate_webhook_name`: 1 to 63 letters, digits, `.`, `_` and `-`, starting
    /// and ending with a letter or digit.
    static func validateName(_ name: String) throws {
        let scalars = Array(name.unicodeScalars)
        func alphanumeric(_ s: Unicode.Scalar) -> Bool { s.isASCII && (CharacterSet.alphanumerics.contains(s)) }
        let valid = (1...63).contains(scalars.count) && alphanumeric(scalars.first!) && alphanumeric(scalars.last!)
            && scalars.allSatisfy { alphanumeric($0) || $0 == "." || $0 == "_" || $0 == "-" }
        if !valid {
            throw CairnError.invalidParameter("Webhook name '\(name)' is invalid. It must start and end with a letter or digit, be less than 63 characters long, and contain only letters, digits, dots (.), underscores (_), and hyphens (-).")
        }
    }

    static func validateEvents(_ events: [WebhookEvent]) throws {
        if events.isEmpty {
            throw CairnError.invalidParameter("Webhook events must be a non-empty list of events, e.g. [{\"entity\": \"MODEL_VERSION\", \"action\": \"CREATED\"}].")
        }
        for event in events where !event.isValid {
            let actions = WebhookEvent.validActions.first { $0.entity == event.entity }?.actions
            if let actions {
                throw CairnError.invalidParameter("Invalid action '\(event.action)' for entity '\(event.entity)'. Valid actions are: \(actions.sorted()).")
            }
            throw CairnError.invalidParameter("Invalid webhook entity '\(event.entity)'. Valid entities are: \(WebhookEvent.validActions.map(\.entity).joined(separator: ", ")).")
        }
    }

    /// MLflow's example payload of each event (`get_example_payload_for_event`), and Cairn's.
    static func example(_ event: WebhookEvent) -> JSONValue {
        let name: JSONValue = event.entity.hasPrefix("prompt") ? .string("example_prompt") : .string("example_model")
        let tags: JSONValue = .object([("example_key", .string("example_value"))])
        switch (event.entity, event.action) {
        case ("registered_model", _), ("prompt", _):
            let description = event.entity == "prompt" ? "An example prompt" : "An example registered model"
            return .object([("name", name), ("tags", tags), ("description", .string(description))])
        case ("model_version", _):
            return .object([("name", name), ("version", .string("1")), ("source", .string("models:/123")),
                            ("run_id", .string("abcd1234abcd5678")), ("tags", tags), ("description", .string("An example model version"))])
        case ("prompt_version", _):
            return .object([("name", name), ("version", .string("1")), ("template", .string("Hello {{name}}!")), ("tags", tags),
                            ("description", .string("An example prompt version"))])
        case ("model_version_tag", "set"), ("prompt_version_tag", "set"):
            return .object([("name", name), ("version", .string("1")), ("key", .string("example_key")), ("value", .string("example_value"))])
        case ("model_version_tag", _), ("prompt_version_tag", _):
            return .object([("name", name), ("version", .string("1")), ("key", .string("example_key"))])
        case ("prompt_tag", "set"):
            return .object([("name", name), ("key", .string("example_key")), ("value", .string("example_value"))])
        case ("prompt_tag", _):
            return .object([("name", name), ("key", .string("example_key"))])
        case ("model_version_alias", "created"), ("prompt_alias", "created"):
            return .object([("name", name), ("alias", .string("example_alias")), ("version", .string("1"))])
        case ("model_version_alias", _), ("prompt_alias", _):
            return .object([("name", name), ("alias", .string("example_alias"))])
        case ("budget_policy", _):
            return .object([
                ("budget_policy_id", .string("bp-abc123")), ("budget_unit", .string("USD")), ("budget_amount", .number("100.0")),
                ("current_spend", .number("105.5")), ("duration_unit", .string("MONTHS")), ("duration_value", .number("1")),
                ("target_scope", .string("ENDPOINT")), ("workspace", .string("default")), ("target_value", .string("ep-abc123")),
                ("window_start", .number("1704067200000")),
            ])
        case ("run", "stale"):
            return .object([
                ("run_id", .string("0123456789abcdef0123456789abcdef")), ("experiment_id", .string("1")),
                ("last_activity", .number("1704067200000")), ("stale_before", .number("1704074400000")),
            ])
        case ("metric", _):
            return .object([
                ("run_id", .string("0123456789abcdef0123456789abcdef")), ("experiment_id", .string("1")), ("rule", .string("val_loss>2")),
                ("metric", .string("val_loss")), ("value", .number("2.5")), ("step", .number("120")), ("timestamp", .number("1704067260000")),
            ])
        default:
            return .object([
                ("run_id", .string("0123456789abcdef0123456789abcdef")), ("experiment_id", .string("1")), ("run_name", .string("example-run")),
                ("user_id", .string("example-user")), ("status", .string(event.action.uppercased())),
                ("start_time", .number("1704067200000")), ("end_time", .number("1704067260000")),
            ])
        }
    }
}
