import CairnCore
import Foundation

extension SQLStore {
    static let auditHeadQuery = "SELECT last_seq, last_hash, signature FROM audit_head WHERE id = 1"
    static let auditColumns = "seq, time, actor, authenticated, client_address, request_id, action, target, digest, details, previous_hash, hash"

    /// Appends one event after the chain's head and moves the head, inside the caller's work:
    /// one INSERT and one UPDATE, sent without waiting for their answers; on PostgreSQL one
    /// statement does both (`runDeferredIndependent`).
    static func appendAuditEvent(_ db: any SQLSession, _ draft: AuditDraft, identity: RequestIdentity?, key: AuditKey?) throws {
        let state = db.auditChain ?? AuditChainState()
        let head = try state.current(db)
        let detailsText = draft.detailsText
        var event = AuditEvent(
            seq: head.seq + 1, time: Int64(Date().timeIntervalSince1970 * 1000),
            actor: identity?.user, isAuthenticated: identity?.isAuthenticated ?? false,
            clientAddress: identity?.clientAddress ?? "internal", requestID: identity?.requestID ?? "",
            action: draft.action, target: draft.target,
            digest: draft.digest.map { AuditChain.hex($0) } ?? AuditChain.defaultDigest(draft, detailsText: detailsText),
            details: detailsText, previousHash: head.hash, hash: "")
        event.hash = AuditChain.hash(previous: head.hash, event: event)
        // Independent writes: PostgreSQL sends them as one statement, with the work's own
        // independent writes before them (a metric write's segments and summaries).
        try db.executeDeferredIndependent(insertAuditEventSQL, auditEventArguments(event))
        // The works of a PostgreSQL batch may send their writes together: only the last move
        // of the head goes out (`runDeferredReplaceable`).
        try db.executeDeferredReplaceable(moveAuditHeadSQL, moveAuditHeadArguments(seq: event.seq, hash: event.hash, key: key))
        state.advance(seq: event.seq, hash: event.hash)
    }

    private static let insertAuditEventSQL = "INSERT INTO audit_events (\(auditColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    private static let moveAuditHeadSQL = "UPDATE audit_head SET last_seq = ?, last_hash = ?, signature = ? WHERE id = 1"

    private static func auditEventArguments(_ event: AuditEvent) -> [any SQLBindable] {
        [event.seq, event.time, event.actor, event.isAuthenticated, event.clientAddress, event.requestID,
         event.action, event.target, event.digest, event.details, event.previousHash, event.hash]
    }

    private static func moveAuditHeadArguments(seq: Int64, hash: String, key: AuditKey?) -> [any SQLBindable] {
        [seq, hash, AuditChain.signature(seq: seq, hash: hash, key: key)]
    }

    /// One event row as it is (sent without waiting for its answer).
    static func insertAuditEvent(_ db: any SQLSession, _ event: AuditEvent) throws {
        try db.executeDeferred(insertAuditEventSQL, auditEventArguments(event))
    }

    /// Points the head at event `seq` (signed with `key`) and tells the batch's chain state.
    static func moveAuditHead(_ db: any SQLSession, _ state: AuditChainState, seq: Int64, hash: String, key: AuditKey?) throws {
        try db.executeDeferred(moveAuditHeadSQL, moveAuditHeadArguments(seq: seq, hash: hash, key: key))
        state.advance(seq: seq, hash: hash)
    }

    /// An event that goes with no other change of the store (a sign-in, a refused sign-in), in
    /// its own transaction.
    public func recordAuditEvent(_ draft: AuditDraft) async throws {
        try await write(audit: { _ in draft }) { _ in }
    }

    static func auditEvent(_ row: SQLRow) -> AuditEvent {
        AuditEvent(seq: row[0], time: row[1], actor: row[2], isAuthenticated: row[3], clientAddress: row[4], requestID: row[5],
                   action: row[6], target: row[7], digest: row[8], details: row[9], previousHash: row[10], hash: row[11])
    }

    /// Events matching `query`, in its order, at most `query.limit` (+1 so the caller can tell
    /// whether there are more).
    public func searchAuditEvents(_ query: AuditQuery, beforeSeq: Int64? = nil) async throws -> [AuditEvent] {
        var conditions: [String] = []
        var arguments: [SQLValue] = []
        if let actor = query.actor {
            conditions.append("actor = ?")
            arguments.append(.text(actor))
        }
        for (column, value) in [("action", query.action), ("target", query.target)] {
            guard let value, !value.isEmpty else { continue }
            if value.hasSuffix("*") || (column == "action" && value.hasSuffix(".")) {
                let prefix = value.hasSuffix("*") ? String(value.dropLast()) : value
                conditions.append("substr(\(column), 1, CAST(? AS INTEGER)) = ?")
                arguments += [.integer(Int64(prefix.utf8.count)), .text(prefix)]
            } else {
                conditions.append("\(column) = ?")
                arguments.append(.text(value))
            }
        }
        if let since = query.sinceTime {
            conditions.append("time >= ?")
            arguments.append(.integer(since))
        }
        if let until = query.untilTime {
            conditions.append("time < ?")
            arguments.append(.integer(until))
        }
        if let after = query.afterSeq {
            conditions.append("seq > ?")
            arguments.append(.integer(after))
        }
        if let beforeSeq {
            conditions.append("seq < ?")
            arguments.append(.integer(beforeSeq))
        }
        arguments.append(.integer(Int64(query.limit + 1)))
        let sql = "SELECT \(Self.auditColumns) FROM audit_events"
            + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))
            + " ORDER BY seq \(query.newestFirst ? "DESC" : "ASC") LIMIT ?"
        let values = arguments
        return try await read { db in try db.rows(sql, values: values, cache: false).map(Self.auditEvent) }
    }

    /// The chain's head: the last event's number and hash, and the HMAC stored with them.
    public func auditHead() async throws -> (seq: Int64, hash: String, signature: String) {
        try await read { db in
            guard let row = try db.row(Self.auditHeadQuery) else {
                throw CairnError(.internalError, "The audit log's head row is missing.")
            }
            return (row[0], row[1], row[2])
        }
    }

    /// Walks the whole chain from the first event, `pageSize` events a read, and checks every
    /// event's hash, every link and the numbering, then the head and its HMAC (when `key` is
    /// given). Events appended while it walks are walked too.
    public func verifyAuditChain(key: AuditKey?, pageSize: Int = 20_000, maxProblems: Int = 20) async throws -> AuditVerification {
        var expectedSeq: Int64 = 1
        var previous = AuditChain.genesis
        var count: Int64 = 0
        var problems: [AuditVerification.Problem] = []
        var lastSeq: Int64 = 0
        while true {
            let after = lastSeq
            let (rows, head) = try await read { db -> ([AuditEvent], SQLRow?) in
                let rows = try db.rows("SELECT \(Self.auditColumns) FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?",
                                       [after, Int64(pageSize)]).map(Self.auditEvent)
                return (rows, rows.isEmpty ? try db.row(Self.auditHeadQuery) : nil)
            }
            for event in rows {
                count += 1
                lastSeq = event.seq
                if problems.count < maxProblems {
                    if event.seq != expectedSeq {
                        problems.append(.broken(seq: event.seq, expectedSeq: expectedSeq))
                    } else if event.previousHash != previous {
                        problems.append(.broken(seq: event.seq, expectedSeq: expectedSeq))
                    } else if AuditChain.hash(previous: event.previousHash, event: event) != event.hash {
                        problems.append(.edited(seq: event.seq))
                    }
                }
                expectedSeq = event.seq + 1
                previous = event.hash
            }
            guard rows.isEmpty, let head else { continue }
            let headSeq: Int64 = head[0]
            let headHash: String = head[1]
            let signature: String = head[2]
            if headSeq != lastSeq || headHash != previous {
                problems.append(.headMismatch(headSeq: headSeq, lastSeq: lastSeq))
            }
            var signatureValid: Bool?
            if let key {
                if headSeq == 0 && signature.isEmpty {
                    signatureValid = true
                } else if signature.isEmpty {
                    signatureValid = false
                    problems.append(.headSignature("the head (event \(headSeq)) is not signed: it was written by a process without the audit key"))
                } else {
                    signatureValid = AuditChain.signature(seq: headSeq, hash: headHash, key: key) == signature
                    if signatureValid == false {
                        problems.append(.headSignature("the head's HMAC does not match (event \(headSeq)): the head was rewritten without the key, or the key is not the one the server uses"))
                    }
                }
            }
            return AuditVerification(events: count, lastSeq: lastSeq, lastHash: previous, headSignatureValid: signatureValid, problems: problems)
        }
    }

    /// The audit SLI from the data: experiments, runs and logged models created since the first
    /// event, and how many of them have an event naming them; events and how many name an actor
    /// (the server's own background work, `internal`, counts as known: the server did it).
    /// A change's own time (taken by the service) comes a little before its event's (taken as
    /// the event is appended): what was created this long before the first event still counts.
    static let auditClockSlack: Int64 = 60_000

    public func auditCompleteness() async throws -> AuditCompleteness {
        try await read { db in
            let counts = try db.row("""
                SELECT CAST(COUNT(*) AS BIGINT),
                       CAST(COALESCE(SUM(CASE WHEN actor IS NOT NULL OR client_address = 'internal' THEN 1 ELSE 0 END), 0) AS BIGINT),
                       MIN(time)
                FROM audit_events
                """)
            let events: Int = counts?[0] ?? 0
            let withActor: Int = counts?[1] ?? 0
            guard let since = counts.flatMap({ $0.isNull(2) ? nil : ($0[2] as Int64) }) else {
                return AuditCompleteness(countedChanges: 0, changesWithEvent: 0, events: events, eventsWithActor: withActor)
            }
            // The Default experiment (0) is made by the schema itself, not by a change.
            let kinds = [
                ("experiments", "experiment_id", "creation_time", "experiment:", " AND t.experiment_id <> 0"),
                ("runs", "run_id", "start_time", "run:", ""),
                ("logged_models", "model_id", "creation_timestamp", "logged_model:", ""),
            ]
            var counted = 0
            var covered = 0
            for (table, id, time, prefix, condition) in kinds {
                let row = try db.row("""
                    SELECT CAST(COUNT(*) AS BIGINT),
                           CAST(COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM audit_events e WHERE e.target = '\(prefix)' || CAST(t.\(id) AS TEXT))
                                             THEN 1 ELSE 0 END), 0) AS BIGINT)
                    FROM \(table) t WHERE t.\(time) >= ?\(condition)
                    """, [since - Self.auditClockSlack])
                counted += row?[0] ?? 0
                covered += row?[1] ?? 0
            }
            return AuditCompleteness(countedChanges: counted, changesWithEvent: covered, events: events, eventsWithActor: withActor)
        }
    }
}

/// The audit log's reads and its one write that goes with no other change, as the services
/// see them (the tracking store keeps it).
public protocol AuditStore: Sendable {
    func recordAuditEvent(_ draft: AuditDraft) async throws
    func searchAuditEvents(_ query: AuditQuery, beforeSeq: Int64?) async throws -> [AuditEvent]
    func auditHead() async throws -> (seq: Int64, hash: String, signature: String)
    func verifyAuditChain(key: AuditKey?, pageSize: Int, maxProblems: Int) async throws -> AuditVerification
    func auditCompleteness() async throws -> AuditCompleteness
}
