import CairnCore

/// What `adoptAuditEvents` found.
public enum AuditAdoption: Sendable, Equatable {
    /// This many of the events were appended (the others were here already).
    case appended(Int)
    /// Every event was here already, as it is.
    case unchanged
    /// This store's log is another history: nothing was written. Why, in words.
    case foreign(String)
}

extension SQLStore {
    /// Takes over another store's audit log (`cairn import cairn`). `events` is a consecutive
    /// stretch of that log, checked by the caller (numbers from 1, links, hashes); its events
    /// are appended as they are (numbers, times, actors, digests and hashes kept), so this
    /// store's chain *is* that chain and `cairn audit verify` walks it; the head moves to the
    /// last one, signed with this store's key (the source's signature is of its own key).
    ///
    /// Only a log that is empty, or that is the same chain as far as it goes (an import run
    /// again, or resumed), can take them: a log with events of its own is another history,
    /// which no event can be put in front of without breaking its hashes, so it is left as it is
    /// (`.foreign`). `closing` is the import's own event, appended after the stretch in the same
    /// transaction when anything was appended: it marks in the chain where the adopted events
    /// end and this store's own begin.
    public func adoptAuditEvents(_ events: [AuditEvent], closing: AuditDraft?) async throws -> AuditAdoption {
        guard let first = events.first, let last = events.last else { return .unchanged }
        let key = auditKey.withLock { $0 }
        return try await write(audit: { (outcome: AuditAdoption) in
            if case .appended = outcome { return closing }
            return nil
        }) { db in
            let state = db.auditChain ?? AuditChainState()
            let head = try state.current(db)
            var start = 0
            if head.seq >= first.seq {
                let probe = min(head.seq, last.seq)
                let here = try db.value(String.self, "SELECT hash FROM audit_events WHERE seq = ?", [probe])
                guard here == events[Int(probe - first.seq)].hash else {
                    return .foreign("this store's audit log is another history (its event \(probe) is not the export's event \(probe))")
                }
                if head.seq >= last.seq { return .unchanged }
                start = Int(head.seq - first.seq) + 1
            } else if head.seq != first.seq - 1 || head.hash != first.previousHash {
                return .foreign("this store's audit log is another history (\(head.seq) events of its own)")
            }
            for event in events[start...] { try Self.insertAuditEvent(db, event) }
            try Self.moveAuditHead(db, state, seq: last.seq, hash: last.hash, key: key)
            return .appended(events.count - start)
        }
    }
}
