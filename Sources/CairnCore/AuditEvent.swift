/// One entry of the audit log: who changed what, when, from where, in which request; appended
/// in the same transaction as the change it describes, and chained to the entry before it by
/// `hash` (SHA-256 over `previousHash` and `canonicalText`; see the store's `AuditChain`).
public struct AuditEvent: Sendable, Equatable {
    /// 1, 2, 3… with no gap: the order in which changes committed.
    public var seq: Int64
    /// When the change was written, ms since the epoch (the writing server's clock).
    public var time: Int64
    /// The signed-in user, the OS user of a CLI command, or nil when nobody is known.
    public var actor: String?
    /// True when `actor` was proven (password or token).
    public var isAuthenticated: Bool
    public var clientAddress: String
    public var requestID: String
    /// What was done, `noun.verb` (`run.create`, `registered_model.alias.set`).
    public var action: String
    /// What it was done to, `kind:id` (`run:0a1b…`, `registered_model:churn/3`).
    public var target: String
    /// SHA-256 (hex) of what changed (the request's values as the store wrote them).
    public var digest: String
    /// A small JSON object of non-secret details (counts, paths, sizes), keys sorted.
    public var details: String
    public var previousHash: String
    public var hash: String

    public init(seq: Int64, time: Int64, actor: String?, isAuthenticated: Bool, clientAddress: String, requestID: String,
                action: String, target: String, digest: String, details: String, previousHash: String, hash: String) {
        self.seq = seq
        self.time = time
        self.actor = actor
        self.isAuthenticated = isAuthenticated
        self.clientAddress = clientAddress
        self.requestID = requestID
        self.action = action
        self.target = target
        self.digest = digest
        self.details = details
        self.previousHash = previousHash
        self.hash = hash
    }

    /// The bytes the chain hashes (after the previous hash): every field but the hashes, each
    /// as its UTF-8 length, a colon and its text, so no two events encode alike.
    public var canonicalText: String {
        let fields = [
            "cairn-audit-v1", String(seq), String(time), actor.map { "u" + $0 } ?? "-", isAuthenticated ? "1" : "0",
            clientAddress, requestID, action, target, digest, details,
        ]
        return fields.map { "\($0.utf8.count):\($0)" }.joined()
    }

    /// The event as one JSON object (`cairn audit export`, the audit API).
    public var json: JSONValue {
        .object([
            ("seq", .number(String(seq))),
            ("time", .number(String(time))),
            ("actor", actor.map(JSONValue.string) ?? .null),
            ("authenticated", .bool(isAuthenticated)),
            ("client_address", .string(clientAddress)),
            ("request_id", .string(requestID)),
            ("action", .string(action)),
            ("target", .string(target)),
            ("digest", .string(digest)),
            ("details", (try? JSONValue.parse(details)) ?? .string(details)),
            ("previous_hash", .string(previousHash)),
            ("hash", .string(hash)),
        ])
    }
}

/// What a change tells the audit log about itself; the store adds who, when and the chain.
public struct AuditDraft: Sendable, Equatable {
    public var action: String
    public var target: String
    /// Non-secret details; written as a JSON object with sorted keys.
    public var details: [String: JSONValue]
    /// SHA-256 of what changed, when the writer computed one; otherwise the store digests the
    /// action, target and details.
    public var digest: [UInt8]?

    public init(_ action: String, _ target: String, details: [String: JSONValue] = [:], digest: [UInt8]? = nil) {
        self.action = action
        self.target = target
        self.details = details
        self.digest = digest
    }

    /// `details` as compact JSON with sorted keys (the text the chain hashes).
    public var detailsText: String {
        var writer = JSONWriter()
        writer.value(.object(details.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))
        return writer.string
    }
}

extension JSONValue {
    /// An integer detail.
    public static func int(_ value: some BinaryInteger) -> JSONValue { .number(String(value)) }
}

/// A filter over the audit log (`GET /api/cairn/v1/audit`, `cairn audit export`).
public struct AuditQuery: Sendable, Equatable {
    public var actor: String?
    /// An exact action, or a prefix ending in `.` / `*` (`run.` matches `run.create`, `run.delete`).
    public var action: String?
    /// An exact target, or a prefix ending in `*` (`run:0a1b*`).
    public var target: String?
    public var sinceTime: Int64?
    public var untilTime: Int64?
    public var afterSeq: Int64?
    /// Newest first (the UI, the API's default) or oldest first (export).
    public var newestFirst: Bool
    public var limit: Int

    public init(actor: String? = nil, action: String? = nil, target: String? = nil, sinceTime: Int64? = nil, untilTime: Int64? = nil,
                afterSeq: Int64? = nil, newestFirst: Bool = true, limit: Int = 100) {
        self.actor = actor
        self.action = action
        self.target = target
        self.sinceTime = sinceTime
        self.untilTime = untilTime
        self.afterSeq = afterSeq
        self.newestFirst = newestFirst
        self.limit = limit
    }
}

/// The outcome of walking the chain (`cairn audit verify`).
public struct AuditVerification: Sendable, Equatable {
    public enum Problem: Sendable, Equatable, CustomStringConvertible {
        /// The event's stored hash is not the hash of its content: a field was edited.
        case edited(seq: Int64)
        /// The event does not link to the one before it (`previous_hash`), or a sequence number
        /// is missing: events were deleted, inserted or reordered here.
        case broken(seq: Int64, expectedSeq: Int64)
        /// The head names a last event that is not the last one found.
        case headMismatch(headSeq: Int64, lastSeq: Int64)
        /// The head's HMAC does not match (the head was rewritten without the key), or no key was given.
        case headSignature(String)

        public var description: String {
            switch self {
            case .edited(let seq):
                return "event \(seq) was edited: its content no longer hashes to its stored hash"
            case .broken(let seq, let expected):
                if seq == expected {
                    return "event \(seq) does not follow event \(seq - 1): its previous_hash differs (an event before it was edited, replaced or forged, or the order was changed)"
                }
                if seq > expected {
                    return "event \(expected) is missing (the next one found is \(seq)): events were deleted"
                }
                return "event \(seq) appears where event \(expected) should be: events were inserted or reordered"
            case .headMismatch(let headSeq, let lastSeq):
                if lastSeq < headSeq {
                    return "the signed head names event \(headSeq) but the log ends at event \(lastSeq): the tail was deleted"
                }
                return "the log goes on past the signed head (event \(headSeq)) to event \(lastSeq): events were appended without the key, or the head was rolled back"
            case .headSignature(let reason):
                return reason
            }
        }
    }

    public var events: Int64
    public var lastSeq: Int64
    public var lastHash: String
    /// nil when no key was given (the chain was checked, the head's signature was not).
    public var headSignatureValid: Bool?
    /// Every problem found, the first (the one `verify` names) first; at most a few.
    public var problems: [Problem]

    public init(events: Int64, lastSeq: Int64, lastHash: String, headSignatureValid: Bool?, problems: [Problem]) {
        self.events = events
        self.lastSeq = lastSeq
        self.lastHash = lastHash
        self.headSignatureValid = headSignatureValid
        self.problems = problems
    }

    public var isIntact: Bool { problems.isEmpty && headSignatureValid != false }
}

/// The health report's audit figure (the seeds' SLI): of the changes that can be counted
/// independently of the log, the share that has an audit event, and of all events, the share
/// whose actor is known.
public struct AuditCompleteness: Sendable, Equatable, Codable {
    /// Changes counted from the data itself since the log began (created experiments, runs,
    /// registered models and versions).
    public var countedChanges: Int
    /// Of those, how many have their creation event.
    public var changesWithEvent: Int
    public var events: Int
    public var eventsWithActor: Int

    public init(countedChanges: Int, changesWithEvent: Int, events: Int, eventsWithActor: Int) {
        self.countedChanges = countedChanges
        self.changesWithEvent = changesWithEvent
        self.events = events
        self.eventsWithActor = eventsWithActor
    }

    /// Share of changes with an event (1 when there is nothing to count).
    public var coverage: Double { countedChanges == 0 ? 1 : Double(changesWithEvent) / Double(countedChanges) }
    /// Share of events whose actor is known (1 when there are none).
    public var actorKnown: Double { events == 0 ? 1 : Double(eventsWithActor) / Double(events) }
    /// The SLI: changes with an event whose actor is known.
    public var sli: Double { coverage * actorKnown }
}

/// Why a change is made, when it is made by a bulk operation rather than a single request
/// (`retention`, `gc`, `import mlflow`, `store copy`): the store adds it to each event's
/// details as `via`, so every run a retention pass deleted says so.
public enum AuditContext {
    @TaskLocal public static var via: String?
}
