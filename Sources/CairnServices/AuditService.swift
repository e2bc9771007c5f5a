import CairnCore
import CairnStore
import Foundation

/// Records an event that goes with no other change (a sign-in, a refused sign-in, a token
/// check that failed): one call, one transaction. Every change of the store records its own
/// event already, in its own transaction; this is only for what changes nothing else.
public struct AuditTrail: Sendable {
    public let store: any AuditStore

    public init(store: any AuditStore) {
        self.store = store
    }

    /// Appends `action` on `target` with `details` (never a secret: no password, no token),
    /// attributed to the request's identity (`RequestIdentity.current`).
    public func record(action: String, target: String, details: [String: JSONValue] = [:]) async throws {
        try await store.recordAuditEvent(AuditDraft(action, target, details: details))
    }
}

/// The audit log's rules: searching it (`GET /api/cairn/v1/audit`, the UI), exporting it
/// (`cairn audit export`), verifying its chain and head (`cairn audit verify`), and the
/// completeness figure of the health report.
public struct AuditService: Sendable {
    public let store: any AuditStore
    /// The key the head is signed with; without it `verify` checks the chain but not the head.
    public let key: AuditKey?
    public static let maxPageSize = 1_000

    public init(store: any AuditStore, key: AuditKey?) {
        self.store = store
        self.key = key
    }

    public var trail: AuditTrail { AuditTrail(store: store) }

    /// A page of events, newest first; `pageToken` is the previous page's `nextPageToken`.
    public func search(_ query: AuditQuery, pageToken: String?) async throws -> Page<AuditEvent> {
        guard (1...Self.maxPageSize).contains(query.limit) else {
            throw CairnError.invalidParameter("max_results must be between 1 and \(Self.maxPageSize), got \(query.limit).")
        }
        if let since = query.sinceTime, let until = query.untilTime, until < since {
            throw CairnError.invalidParameter("'until' (\(until)) is before 'since' (\(since)); give a time range that is not empty.")
        }
        var before: Int64?
        if let pageToken, !pageToken.isEmpty {
            guard let seq = Int64(pageToken), seq > 0 else {
                throw CairnError.invalidParameter("Invalid page_token '\(pageToken)': pass the next_page_token of the previous answer.")
            }
            before = seq
        }
        var query = query
        query.newestFirst = true
        var events = try await store.searchAuditEvents(query, beforeSeq: before)
        var next: String?
        if events.count > query.limit {
            events.removeLast()
            next = events.last.map { String($0.seq) }
        }
        return Page(items: events, nextPageToken: next)
    }

    /// Every event matching `query` (oldest first, from `afterSeq`), handed to `body` in pages.
    public func export(_ query: AuditQuery, _ body: ([AuditEvent]) throws -> Void) async throws -> Int {
        var query = query
        query.newestFirst = false
        query.limit = 5_000
        var count = 0
        while true {
            var events = try await store.searchAuditEvents(query, beforeSeq: nil)
            let more = events.count > query.limit
            if more { events.removeLast() }
            try body(events)
            count += events.count
            guard more, let last = events.last else { return count }
            query.afterSeq = last.seq
        }
    }

    public func verify() async throws -> AuditVerification {
        try await store.verifyAuditChain(key: key, pageSize: 20_000, maxProblems: 20)
    }

    public func completeness() async throws -> AuditCompleteness {
        try await store.auditCompleteness()
    }

    /// `--since` of `cairn audit export`: a sequence number (`1234`), an ISO 8601 time
    /// (`2026-11-26T10:00:00Z`) or a date (`2026-11-26`, UTC midnight).
    public static func parseSince(_ text: String) throws -> (seq: Int64?, time: Int64?) {
        if let seq = Int64(text), seq >= 0 { return (seq, nil) }
        let iso = ISO8601DateFormatter()
        if let date = iso.date(from: text) { return (nil, Int64(date.timeIntervalSince1970 * 1000)) }
        iso.formatOptions = [.withFullDate]
        if let date = iso.date(from: text) { return (nil, Int64(date.timeIntervalSince1970 * 1000)) }
        throw CairnError.invalidParameter("Invalid --since '\(text)': give an event number (1234), a time (2026-11-26T10:00:00Z) or a date (2026-11-26).")
    }
}
