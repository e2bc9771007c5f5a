import CairnCore
import Foundation

extension SQLStore: WebhookStore {
    static let webhookColumns = "webhook_pk, webhook_id, name, description, url, status, creation_timestamp, last_updated_timestamp, secret"

    /// What a webhook change sets, secret left out (only whether one was given).
    static func webhookDetails(_ change: WebhookChange) -> [String: JSONValue] {
        var details: [String: JSONValue] = [:]
        if let name = change.name { details["name"] = .string(name) }
        if let url = change.url { details["url"] = .string(url) }
        if let status = change.status { details["status"] = .string(status.rawValue) }
        if change.secret != nil { details["secret_changed"] = .bool(true) }
        return details
    }

    public func createWebhook(id: String, _ fields: WebhookChange, now: Int64) async throws -> Webhook {
        try await write("webhook.create", "webhook:\(id)", details: Self.webhookDetails(fields)) { db in
            let pk = try db.insert("""
                INSERT INTO webhooks (webhook_id, name, description, url, secret, status, creation_timestamp, last_updated_timestamp)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING webhook_pk
                """, [id, fields.name ?? "", fields.description ?? "", fields.url ?? "", fields.secret ?? "",
                      (fields.status ?? .active).rawValue, now, now])
            try Self.setWebhookEvents(db, pk: pk, fields.events ?? [])
            return try Self.loadWebhook(db, id: id).webhook
        }
    }

    public func fetchWebhook(id: String) async throws -> Webhook {
        try await read { db in try Self.loadWebhook(db, id: id).webhook }
    }

    public func listWebhooks(maxResults: Int, offset: Int) async throws -> (items: [Webhook], hasMore: Bool) {
        try await read { db in
            var ids = try db.values(String.self, """
                SELECT webhook_id FROM webhooks WHERE deleted_timestamp IS NULL
                ORDER BY creation_timestamp DESC, webhook_pk DESC LIMIT ? OFFSET ?
                """, [maxResults + 1, offset])
            let hasMore = ids.count > maxResults
            if hasMore { ids.removeLast() }
            return (try ids.map { try Self.loadWebhook(db, id: $0).webhook }, hasMore)
        }
    }

    public func updateWebhook(id: String, _ change: WebhookChange, now: Int64) async throws -> Webhook {
        try await write("webhook.update", "webhook:\(id)", details: Self.webhookDetails(change)) { db in
            let (pk, _) = try Self.loadWebhook(db, id: id)
            let columns: [(String, String?)] = [
                ("name", change.name), ("description", change.description), ("url", change.url), ("secret", change.secret),
                ("status", change.status?.rawValue),
            ]
            for case let (column, value?) in columns {
                try db.execute("UPDATE webhooks SET \(column) = ? WHERE webhook_pk = ?", [value, pk])
            }
            if let events = change.events {
                try db.execute("DELETE FROM webhook_events WHERE webhook_pk = ?", [pk])
                try Self.setWebhookEvents(db, pk: pk, events)
            }
            try db.execute("UPDATE webhooks SET last_updated_timestamp = ? WHERE webhook_pk = ?", [now, pk])
            return try Self.loadWebhook(db, id: id).webhook
        }
    }

    public func deleteWebhook(id: String, now: Int64) async throws {
        try await write("webhook.delete", "webhook:\(id)") { db in
            let (pk, _) = try Self.loadWebhook(db, id: id)
            try db.execute("UPDATE webhooks SET deleted_timestamp = ?, last_updated_timestamp = ? WHERE webhook_pk = ?", [now, now, pk])
            try db.execute("""
                UPDATE webhook_deliveries SET state = 'failed', last_error = 'the webhook was deleted', lease_owner = NULL, lease_until = NULL
                WHERE webhook_pk = ? AND state = 'pending'
                """, [pk])
        }
    }

    // MARK: - Delivery queue

    public func claimDeliveries(owner: String, now: Int64, leaseUntil: Int64, limit: Int) async throws -> [ClaimedDelivery] {
        // Delivery bookkeeping: no audit event (the change that queued the delivery has one).
        try await writeUnaudited { db in
            // PostgreSQL: rows another replica is claiming right now are skipped, not waited
            // for (no deadlock, no double claim); the outer conditions repeat the inner ones as
            // a second guard. SQLite runs one writer at a time.
            let lock = db.dialect == .postgres ? "FOR UPDATE OF d SKIP LOCKED" : ""
            let pks = try db.values(Int64.self, """
                UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ?
                WHERE delivery_pk IN (
                    SELECT d.delivery_pk FROM webhook_deliveries d JOIN webhooks w ON w.webhook_pk = d.webhook_pk
                    WHERE d.state = 'pending' AND d.next_attempt_at <= ? AND (d.lease_until IS NULL OR d.lease_until <= ?)
                      AND w.status = 'ACTIVE' AND w.deleted_timestamp IS NULL
                    ORDER BY d.next_attempt_at, d.delivery_pk LIMIT ? \(lock))
                  AND state = 'pending' AND (lease_until IS NULL OR lease_until <= ?)
                RETURNING delivery_pk
                """, [owner, leaseUntil, now, now, limit, now])
            guard !pks.isEmpty else { return [] }
            return try db.rows("""
                SELECT d.delivery_pk, d.delivery_id, w.webhook_id, w.url, w.secret, d.payload, d.attempts
                FROM webhook_deliveries d JOIN webhooks w ON w.webhook_pk = d.webhook_pk
                WHERE \(db.dialect.inPKList("d.delivery_pk")) ORDER BY d.delivery_pk
                """, [pkList(pks)]).map {
                ClaimedDelivery(deliveryPK: $0[0], deliveryID: $0[1], webhookID: $0[2], url: $0[3], secret: $0[4], payload: $0[5], attempts: $0[6])
            }
        }
    }

    @discardableResult
    public func recordAttempt(_ record: DeliveryAttemptRecord) async throws -> Bool {
        try await writeUnaudited { db in
            let deliveredAt: Int64? = record.state == .delivered ? record.startedAt + record.latencyMillis : nil
            guard let attempt = try db.value(Int64.self, """
                UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, next_attempt_at = ?, lease_owner = NULL, lease_until = NULL,
                    last_status = ?, last_error = ?, last_latency_ms = ?, delivered_at = ?
                WHERE delivery_pk = ? AND lease_owner = ? AND state = 'pending'
                RETURNING attempts
                """, [record.state.rawValue, record.nextAttemptAt, record.statusCode, record.error, record.latencyMillis, deliveredAt,
                      record.deliveryPK, record.owner]) else {
                return false
            }
            try db.execute("""
                INSERT INTO webhook_attempts (delivery_pk, attempt, started_at, status_code, latency_ms, error) VALUES (?, ?, ?, ?, ?, ?)
                """, [record.deliveryPK, attempt, record.startedAt, record.statusCode, record.latencyMillis, record.error])
            return true
        }
    }

    public func nextDeliveryDue() async throws -> Int64? {
        try await read { db in
            try db.value(Int64.self, """
                SELECT MIN(d.next_attempt_at) FROM webhook_deliveries d JOIN webhooks w ON w.webhook_pk = d.webhook_pk
                WHERE d.state = 'pending' AND w.status = 'ACTIVE' AND w.deleted_timestamp IS NULL
                """)
        }
    }

    public func listDeliveries(webhookID: String, limit: Int) async throws -> [WebhookDelivery] {
        try await read { db in
            let (pk, _) = try Self.loadWebhook(db, id: webhookID)
            return try db.rows("""
                SELECT delivery_id, entity, action, payload, created_at, state, attempts, next_attempt_at, last_status, last_error,
                       last_latency_ms, delivered_at
                FROM webhook_deliveries WHERE webhook_pk = ? ORDER BY delivery_pk DESC LIMIT ?
                """, [pk, limit]).map {
                WebhookDelivery(deliveryID: $0[0], webhookID: webhookID, event: WebhookEvent(entity: $0[1], action: $0[2]), payload: $0[3],
                                createdAt: $0[4], state: WebhookDeliveryState(rawValue: $0[5]) ?? .pending, attempts: $0[6],
                                nextAttemptAt: $0[7], lastStatusCode: $0[8], lastError: $0[9], lastLatencyMillis: $0[10], deliveredAt: $0[11])
            }
        }
    }

    public func deliveryAttempts(deliveryID: String) async throws -> [WebhookAttempt] {
        try await read { db in
            guard let pk = try db.value(Int64.self, "SELECT delivery_pk FROM webhook_deliveries WHERE delivery_id = ?", [deliveryID]) else {
                throw CairnError.notFound("Webhook delivery with ID \(deliveryID) not found.")
            }
            return try db.rows("SELECT attempt, started_at, status_code, latency_ms, error FROM webhook_attempts WHERE delivery_pk = ? ORDER BY attempt", [pk])
                .map { WebhookAttempt(attempt: $0[0], startedAt: $0[1], statusCode: $0[2], latencyMillis: $0[3], error: $0[4]) }
        }
    }

    // MARK: - Queuing events (inside the transaction of the change that causes them)

    /// Queues `event` for every active webhook subscribed to it, in the caller's transaction:
    /// the event is durable exactly when the change is, and lost with it if it rolls back.
    public func markBudgetExceeded(experimentID: Int64, data: JSONValue, now: Int64) async throws -> Bool {
        try await write(audit: { (marked: Bool) in
            marked ? AuditDraft("experiment.budget_exceeded", "experiment:\(experimentID)") : nil
        }) { db in
            let marked = try db.value(Bool.self, "SELECT 1 FROM experiment_tags WHERE experiment_id = ? AND key = 'cairn.budget.exceeded_at'", [experimentID]) ?? false
            guard !marked else { return false }
            try db.execute("INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, 'cairn.budget.exceeded_at', ?)", [experimentID, String(now)])
            try Self.enqueueWebhookEvent(db, .budgetExceeded, data: data, now: now)
            return true
        }
    }

    public func markAlertFired(runID: String, rule: String, data: JSONValue, now: Int64) async throws -> Bool {
        try await write(audit: { (fired: Bool) in
            fired ? AuditDraft("run.alert_fired", "run:\(runID)", details: ["rule": .string(rule)]) : nil
        }) { db in
            guard let pk = try db.value(Int64.self, "SELECT run_pk FROM runs WHERE run_id = ?", [runID]) else { return false }
            let current = try db.value(String.self, "SELECT value FROM run_tags WHERE run_pk = ? AND key = ?", [pk, MetricAlert.firedTag])
            guard !MetricAlert.fired(inTag: current).contains(rule) else { return false }
            let value = (current.flatMap { $0.isEmpty ? nil : $0 }.map { $0 + "; " } ?? "") + rule
            _ = try Self.upsertTags(db, runPK: pk, [Tag(MetricAlert.firedTag, value)])
            try Self.enqueueWebhookEvent(db, .metricThresholdCrossed, data: data, now: now)
            return true
        }
    }

    public func notifyStaleRuns(staleBefore: Int64, now: Int64) async throws -> [String] {
        try await write(audit: { (marked: [String]) in
            marked.isEmpty ? nil : AuditDraft("run.stale_notified", "runs", details: ["runs": .array(marked.map { .string($0) })])
        }) { db in
            // Nobody listens: nothing is marked (no tag appears on anyone's runs), nothing is scanned.
            guard try db.value(Int64.self, """
                SELECT w.webhook_pk FROM webhook_events e JOIN webhooks w ON w.webhook_pk = e.webhook_pk
                WHERE e.entity = ? AND e.action = ? AND w.status = 'ACTIVE' AND w.deleted_timestamp IS NULL LIMIT 1
                """, [WebhookEvent.runStale.entity, WebhookEvent.runStale.action]) != nil else { return [] }
            let candidates = try db.rows("""
                SELECT r.run_pk, r.run_id, r.experiment_id, COALESCE((SELECT MAX(lm.timestamp) FROM latest_metrics lm WHERE lm.run_pk = r.run_pk), r.start_time)
                FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id
                WHERE r.status = 'RUNNING' AND r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active'
                  AND COALESCE((SELECT MAX(lm.timestamp) FROM latest_metrics lm WHERE lm.run_pk = r.run_pk), r.start_time) < ?
                  AND NOT EXISTS (SELECT 1 FROM run_tags t WHERE t.run_pk = r.run_pk AND t.key = ?)
                ORDER BY r.run_pk
                """, [staleBefore, StaleRuns.notifiedTag])
            var marked: [String] = []
            for row in candidates {
                let pk: Int64 = row[0], runID: String = row[1], experimentID: Int64 = row[2], lastActivity: Int64 = row[3]
                // Another replica's pass may have marked it since: only the one that inserts the tag sends.
                guard try db.execute("INSERT INTO run_tags (run_pk, key, value) VALUES (?, ?, ?) ON CONFLICT (run_pk, key) DO NOTHING",
                                     [pk, StaleRuns.notifiedTag, String(now)]) > 0 else { continue }
                try Self.enqueueWebhookEvent(db, .runStale, data: .object([
                    ("run_id", .string(runID)), ("experiment_id", .string(String(experimentID))),
                    ("last_activity", .number(String(lastActivity))), ("stale_before", .number(String(staleBefore))),
                ]), now: now)
                marked.append(runID)
            }
            return marked
        }
    }

    public func alertRuleTags() async throws -> [(experimentID: String, rules: String)] {
        try await read { db in
            try db.rows("""
                SELECT t.experiment_id, t.value FROM experiment_tags t JOIN experiments e ON e.experiment_id = t.experiment_id
                WHERE t.key = ? AND e.lifecycle_stage = 'active'
                """, [MetricAlert.tag]).map { row -> (experimentID: String, rules: String) in
                let id: Int64 = row[0]
                let value: String = row[1]
                return (String(id), value)
            }
        }
    }

    static func enqueueWebhookEvent(_ db: any SQLSession, _ event: WebhookEvent, data: JSONValue, now: Int64) throws {
        let hooks = try db.values(Int64.self, """
            SELECT w.webhook_pk FROM webhook_events e JOIN webhooks w ON w.webhook_pk = e.webhook_pk
            WHERE e.entity = ? AND e.action = ? AND w.status = 'ACTIVE' AND w.deleted_timestamp IS NULL ORDER BY w.webhook_pk
            """, [event.entity, event.action])
        guard !hooks.isEmpty else { return }
        let body = WebhookPayload.body(event, data: data, timestampMillis: now)
        for pk in hooks {
            try db.execute("""
                INSERT INTO webhook_deliveries (delivery_id, webhook_pk, entity, action, payload, created_at, state, attempts, next_attempt_at)
                VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?)
                """, [UUID().uuidString.lowercased(), pk, event.entity, event.action, body, now, now])
        }
    }

    /// Whether the registered model is a prompt (MLflow keeps prompts in the registry, marked by
    /// a tag); its events then use the prompt entities.
    static func isPrompt(_ db: any SQLSession, pk: Int64) throws -> Bool {
        try db.value(String.self, "SELECT value FROM registered_model_tags WHERE model_pk = ? AND key = ?", [pk, promptTag])?.lowercased() == "true"
    }

    static let promptTag = "mlflow.prompt.is_prompt"
    static let promptTypeTag = "_mlflow_prompt_type"
    static let promptTextTag = "mlflow.prompt.text"

    // MARK: - Rows

    static func setWebhookEvents(_ db: any SQLSession, pk: Int64, _ events: [WebhookEvent]) throws {
        var seen = Set<WebhookEvent>()
        for event in events where seen.insert(event).inserted {
            try db.execute("INSERT INTO webhook_events (webhook_pk, entity, action, position) VALUES (?, ?, ?, ?)",
                           [pk, event.entity, event.action, seen.count])
        }
    }

    static func loadWebhook(_ db: any SQLSession, id: String) throws -> (pk: Int64, webhook: Webhook) {
        guard let row = try db.row("SELECT \(webhookColumns) FROM webhooks WHERE webhook_id = ? AND deleted_timestamp IS NULL", [id]) else {
            throw CairnError.notFound("Webhook with ID \(id) not found.")
        }
        let pk: Int64 = row[0]
        let events = try db.rows("SELECT entity, action FROM webhook_events WHERE webhook_pk = ? ORDER BY position", [pk])
            .map { WebhookEvent(entity: $0[0], action: $0[1]) }
        return (pk, Webhook(webhookID: row[1], name: row[2], description: row[3], url: row[4], events: events,
                            status: WebhookStatus(rawValue: row[5]) ?? .active, creationTimestamp: row[6], lastUpdatedTimestamp: row[7],
                            secret: row[8]))
    }
}
