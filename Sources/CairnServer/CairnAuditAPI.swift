import CairnCore
import CairnServices

/// `GET /api/cairn/v1/audit?actor=&action=&target=&since=&until=&max_results=&page_token=`:
/// the audit log, newest first, filtered (`action` and `target` take a prefix ending in `*`;
/// times in ms since the epoch), paged by `next_page_token`.
/// `GET /api/cairn/v1/audit/completeness`: the audit SLI of the health report.
struct CairnAuditAPI: Sendable {
    let audit: AuditService

    var endpoints: [MLflowEndpoint] {
        [
            MLflowEndpoint(methods: ["GET"], path: "audit", handler: search),
            MLflowEndpoint(methods: ["GET"], path: "audit/completeness", handler: completeness),
        ]
    }

    func search(_ f: RequestFields) async throws -> [UInt8] {
        let query = AuditQuery(
            actor: try f.string("actor").flatMap { $0.isEmpty ? nil : $0 },
            action: try f.string("action").flatMap { $0.isEmpty ? nil : $0 },
            target: try f.string("target").flatMap { $0.isEmpty ? nil : $0 },
            sinceTime: try f.int64("since"), untilTime: try f.int64("until"),
            limit: Int(try f.int64("max_results") ?? 100))
        let page = try await audit.search(query, pageToken: try f.string("page_token"))
        return WireEncoding.page("events", page) { w, event in w.value(event.json) }
    }

    func completeness(_ f: RequestFields) async throws -> [UInt8] {
        Self.encode(try await audit.completeness())
    }

    static func encode(_ c: AuditCompleteness) -> [UInt8] {
        WireEncoding.reply { o in Self.fields(&o, c) }
    }

    static func fields(_ o: inout JSONObjectBuilder, _ c: AuditCompleteness) {
        o.int("counted_changes", Int64(c.countedChanges))
        o.int("changes_with_event", Int64(c.changesWithEvent))
        o.int("events", Int64(c.events))
        o.int("events_with_actor", Int64(c.eventsWithActor))
        o.double("coverage", c.coverage)
        o.double("actor_known", c.actorKnown)
        o.double("sli", c.sli)
    }
}
