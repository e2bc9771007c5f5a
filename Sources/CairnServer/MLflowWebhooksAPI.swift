import CairnCore
import CairnServices
import CairnStore

/// MLflow's webhook endpoints (`/api/2.0/mlflow/webhooks…`, what `MlflowClient.create_webhook`
/// and friends call) and Cairn's: webhooks with all their events, and a webhook's deliveries.
/// The secret is accepted, never returned.
///
/// Cairn's own events (`RUN`/`FAILED`…) are accepted on create and update, but MLflow's
/// endpoints answer with MLflow's events only, and list only webhooks that have one: the
/// `mlflow` client fails to parse a webhook with an event its enums lack. The Cairn endpoints
/// (`webhooks/list`, `webhooks/get`) show everything.
struct MLflowWebhooksAPI: Sendable {
    let webhooks: WebhookService

    var endpoints: [MLflowEndpoint] {
        [
            MLflowEndpoint(methods: ["POST"], path: "webhooks", handler: create),
            MLflowEndpoint(methods: ["GET"], path: "webhooks", handler: list),
            MLflowEndpoint(methods: ["GET"], path: "webhooks/:webhook_id", handler: get),
            MLflowEndpoint(methods: ["PATCH"], path: "webhooks/:webhook_id", handler: update),
            MLflowEndpoint(methods: ["DELETE"], path: "webhooks/:webhook_id", handler: delete),
            MLflowEndpoint(methods: ["POST"], path: "webhooks/:webhook_id/test", handler: test),
        ]
    }

    /// Under `/api/cairn/v1/`.
    var cairnEndpoints: [MLflowEndpoint] {
        [
            MLflowEndpoint(methods: ["GET"], path: "webhooks/list", handler: listAll),
            MLflowEndpoint(methods: ["GET"], path: "webhooks/get", handler: getAll),
            MLflowEndpoint(methods: ["GET"], path: "webhooks/deliveries", handler: deliveries),
        ]
    }

    func create(_ f: RequestFields) async throws -> [UInt8] {
        webhookReply(try await webhooks.createWebhook(
            name: f.requiredString("name"), url: f.requiredString("url"), events: events(f) ?? [],
            description: f.string("description"), secret: f.string("secret"), status: status(f)))
    }

    func list(_ f: RequestFields) async throws -> [UInt8] {
        var page = try await webhooks.listWebhooks(maxResults: f.int64("max_results"), pageToken: f.string("page_token"))
        page.items = page.items.filter { $0.events.contains(where: \.isMLflowEvent) }
        return WireEncoding.page("webhooks", page) { Self.webhook(&$0, $1, mlflowEventsOnly: true) }
    }

    func get(_ f: RequestFields) async throws -> [UInt8] {
        webhookReply(try await webhooks.getWebhook(id: f.requiredString("webhook_id")))
    }

    func listAll(_ f: RequestFields) async throws -> [UInt8] {
        let page = try await webhooks.listWebhooks(maxResults: f.int64("max_results"), pageToken: f.string("page_token"))
        return WireEncoding.page("webhooks", page) { Self.webhook(&$0, $1, mlflowEventsOnly: false) }
    }

    func getAll(_ f: RequestFields) async throws -> [UInt8] {
        webhookReply(try await webhooks.getWebhook(id: f.requiredString("webhook_id")), mlflowEventsOnly: false)
    }

    /// MLflow's update: an empty name or URL and an empty event list mean "unchanged"; a
    /// description or secret that is present (even empty) is set.
    func update(_ f: RequestFields) async throws -> [UInt8] {
        let name = try f.string("name").flatMap { $0.isEmpty ? nil : $0 }
        let url = try f.string("url").flatMap { $0.isEmpty ? nil : $0 }
        let change = WebhookChange(name: name, description: try f.string("description"), url: url, events: try events(f),
                                   secret: try f.string("secret"), status: try status(f))
        return webhookReply(try await webhooks.updateWebhook(id: f.requiredString("webhook_id"), change))
    }

    func delete(_ f: RequestFields) async throws -> [UInt8] {
        try await webhooks.deleteWebhook(id: f.requiredString("webhook_id"))
        return WireEncoding.empty
    }

    func test(_ f: RequestFields) async throws -> [UInt8] {
        let event = try f.object("event").map(Self.event)
        let result = try await webhooks.testWebhook(id: f.requiredString("webhook_id"), event: event)
        return WireEncoding.reply { o in
            o.object("result") { r in
                r.bool("success", result.success)
                if let status = result.responseStatus { r.int("response_status", Int64(status)) }
                if let body = result.responseBody, !body.isEmpty { r.string("response_body", body) }
                if let message = result.errorMessage { r.string("error_message", message) }
            }
        }
    }

    func deliveries(_ f: RequestFields) async throws -> [UInt8] {
        let items = try await webhooks.deliveries(webhookID: f.requiredString("webhook_id"), maxResults: f.int64("max_results"))
        return WireEncoding.reply { o in
            o.array("deliveries", items) { w, d in
                w.object { x in
                    x.string("delivery_id", d.deliveryID)
                    x.string("webhook_id", d.webhookID)
                    x.string("event", d.event.description)
                    x.string("state", d.state.rawValue)
                    x.int("attempts", Int64(d.attempts))
                    x.int("created_at", d.createdAt)
                    if d.state == .pending { x.int("next_attempt_at", d.nextAttemptAt) }
                    if let code = d.lastStatusCode { x.int("last_status_code", Int64(code)) }
                    if let error = d.lastError { x.string("last_error", error) }
                    if let latency = d.lastLatencyMillis { x.int("last_latency_ms", latency) }
                    if let at = d.deliveredAt { x.int("delivered_at", at) }
                    x.string("payload", d.payload)
                }
            }
        }
    }

    // MARK: Wire

    private func webhookReply(_ webhook: Webhook, mlflowEventsOnly: Bool = true) -> [UInt8] {
        WireEncoding.reply { o in
            o.key("webhook")
            Self.webhook(&o.writer, webhook, mlflowEventsOnly: mlflowEventsOnly)
        }
    }

    static func webhook(_ w: inout JSONWriter, _ webhook: Webhook, mlflowEventsOnly: Bool) {
        w.object { o in
            o.string("webhook_id", webhook.webhookID)
            o.string("name", webhook.name)
            if !webhook.description.isEmpty { o.string("description", webhook.description) }
            o.string("url", webhook.url)
            o.array("events", webhook.events.filter { !mlflowEventsOnly || $0.isMLflowEvent }) { w, event in
                w.object { e in
                    e.string("entity", event.entity.uppercased())
                    e.string("action", event.action.uppercased())
                }
            }
            o.string("status", webhook.status.rawValue)
            o.int("creation_timestamp", webhook.creationTimestamp)
            o.int("last_updated_timestamp", webhook.lastUpdatedTimestamp)
        }
    }

    /// The `events` field, nil when absent or empty (MLflow treats both as "not given").
    private func events(_ f: RequestFields) throws -> [WebhookEvent]? {
        let items = try f.objects("events").map(Self.event)
        return items.isEmpty ? nil : items
    }

    /// `{"entity": "MODEL_VERSION", "action": "CREATED"}` (names in any case, or proto numbers).
    static func event(_ f: RequestFields) throws -> WebhookEvent {
        let entity = try f.enumeration("entity", byName: Self.lowercasedName, byNumber: { number in
            WebhookEvent.entityNumbers.first { Int64($0.value) == number }?.key
        }, expected: "a webhook entity such as MODEL_VERSION") ?? ""
        let action = try f.enumeration("action", byName: Self.lowercasedName, byNumber: { number in
            WebhookEvent.actionNumbers.first { Int64($0.value) == number }?.key
        }, expected: "a webhook action such as CREATED") ?? ""
        return WebhookEvent(entity: entity, action: action)
    }

    /// An entity or action name as stored (`model_version`); numbers are looked up instead.
    private static func lowercasedName(_ text: String) -> String? {
        text.isEmpty || text.allSatisfy(\.isNumber) ? nil : text.lowercased()
    }

    private func status(_ f: RequestFields) throws -> WebhookStatus? {
        try f.enumeration("status", byName: WebhookStatus.init(rawValue:), byNumber: WebhookStatus.init(number:),
                          expected: "one of ACTIVE, DISABLED")
    }
}
