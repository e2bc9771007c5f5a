import Metrics
import Synchronization

/// Group commit: concurrent writers are queued and run together in one shared transaction,
/// in which one failing request rolls back only its own changes. Every caller is answered
/// only after the shared transaction has committed. The backend supplies `transact`, which
/// runs one batch that way: SQLite on its writer connection, each work in its own savepoint;
/// PostgreSQL on a pooled connection under the cluster-wide write lock, first without
/// savepoints (each costs round trips there) and, when a work failed and so nothing was
/// committed, again with a savepoint per work.
///
/// There is no background task: the first writer to find the queue idle becomes the leader and
/// commits a batch; if more writers queued up meanwhile, leadership passes to the oldest of them.
final class GroupCommitWriter: Sendable {
    typealias Work = @Sendable (any SQLSession) throws -> any Sendable
    typealias Outcome = Result<any Sendable, any Error>
    /// Runs the works of one batch in one transaction, a failed work's changes rolled back
    /// alone; answers each work's outcome, all failures when the transaction did not commit.
    /// Beside each work, what it will read first when its caller said so (`ReadAhead`), and
    /// whether it reads nothing else (`SQLBackend.write`).
    typealias Transact = @Sendable ([Work], [ReadAhead?], [Bool]) async -> [Outcome]

    private enum Signal: Sendable {
        case lead
        case done(Result<any Sendable, any Error>)
    }

    private final class Job: Sendable {
        let work: Work
        let readAhead: ReadAhead?
        let readsNothingElse: Bool
        private let mailbox = Mutex<(ready: [Signal], waiter: CheckedContinuation<Signal, Never>?)>(([], nil))

        init(work: @escaping Work, readAhead: ReadAhead?, readsNothingElse: Bool) {
            self.work = work
            self.readAhead = readAhead
            self.readsNothingElse = readsNothingElse
        }

        func post(_ signal: Signal) {
            let waiter = mailbox.withLock { box -> CheckedContinuation<Signal, Never>? in
                if let waiter = box.waiter {
                    box.waiter = nil
                    return waiter
                }
                box.ready.append(signal)
                return nil
            }
            waiter?.resume(returning: signal)
        }

        func next() async -> Signal {
            await withCheckedContinuation { continuation in
                let ready = mailbox.withLock { box -> Signal? in
                    if !box.ready.isEmpty { return box.ready.removeFirst() }
                    box.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }

    private struct Queue {
        var pending: [Job] = []
        var draining = false
    }

    private let transact: Transact
    private let queue = Mutex(Queue())
    private let maxBatch: Int
    /// How many requests each committed transaction carried (`/metrics`:
    /// `cairn_group_commit_batch_size`), through swift-metrics (a no-op without a backend).
    private let batchSizes = Recorder(label: GroupCommitWriter.batchSizeMetric)
    static let batchSizeMetric = "cairn_group_commit_batch_size"

    init(maxBatch: Int = 512, transact: @escaping Transact) {
        self.transact = transact
        self.maxBatch = maxBatch
    }

    func write<T: Sendable>(readAhead: ReadAhead? = nil, readsNothingElse: Bool = false,
                            _ work: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        let job = Job(work: { db in try work(db) }, readAhead: readAhead, readsNothingElse: readsNothingElse)
        let isLeader = queue.withLock { q -> Bool in
            q.pending.append(job)
            if q.draining { return false }
            q.draining = true
            return true
        }
        if isLeader { job.post(.lead) }
        while true {
            switch await job.next() {
            case .lead:
                await commitBatch()
            case .done(let result):
                // The job stored a T; the cast cannot fail.
                return try result.get() as! T
            }
        }
    }

    private func commitBatch() async {
        let batch = queue.withLock { q -> [Job] in
            let batch = Array(q.pending.prefix(maxBatch))
            q.pending.removeFirst(batch.count)
            return batch
        }
        let outcomes = await transact(batch.map(\.work), batch.map(\.readAhead), batch.map(\.readsNothingElse))
        batchSizes.record(batch.count)
        for (job, outcome) in zip(batch, outcomes) {
            job.post(.done(outcome))
        }
        let next = queue.withLock { q -> Job? in
            if let first = q.pending.first { return first }
            q.draining = false
            return nil
        }
        next?.post(.lead)
    }
}

/// What a metric write reads first, known before it runs: its run and the state of the series
/// it writes (`SQLStore.runWithSeriesStates`). On PostgreSQL the works of a batch run one after
/// the other on the connection that holds the write lock, and each waited for that read before
/// it could compute its write: a round trip and a wake-up of the batch's thread per work, with
/// PostgreSQL idle while the work computed, and its writes went out with the next work's read,
/// a statement each. So a batch sends the reads of its metric writes in one statement with the
/// write lock (`locked`) before the first work runs, each work takes its rows when its turn
/// comes, and the works' writes go out together, a few statements for the whole batch
/// (`PostgresSession.readAhead`, `PostgresSession.sendEvery`). Measured with 1,000 writers
/// logging once a second on PostgreSQL 15 (2026-11-28, alternated): 811–911 log-batches/s
/// with p50 0.78–1.12 s when each read and each work's writes were a statement; the offered
/// 1,000/s with p50 7.5–10 ms and p99 60–89 ms this way.
///
/// That is right only while no earlier work of the batch has changed what the read reads. A
/// metric write changes its own run's rows (the run, its series' summaries and segments) and
/// may add metric keys; so only the batch's first works, up to the first work that is not a
/// metric write or writes to a run an earlier one wrote to, are read ahead (`readable`). A key
/// that an earlier work added and the read found missing is looked up again by the work
/// (`internKey` reads before it inserts), so it is never added twice.
public struct SeriesReadAhead: Sendable, Equatable {
    let runID: String
    let keys: [String]

    init(runID: String, keys: [String]) {
        self.runID = runID
        self.keys = keys
    }

    /// The read: PostgreSQL's function of `runWithSeriesStatesSQL`.
    var query: (sql: String, values: [SQLValue]) {
        (Self.call, SQLStore.runWithSeriesStatesArguments(id: runID, keys: keys))
    }

    /// Outside the lock's statement (a work read in turn) `p_after` is 0: the statement starts
    /// after the lock was granted.
    static let call = "SELECT * FROM \(SQLStore.runWithSeriesStatesFunction.name)(0, ?, ?, ?)"

    /// The write lock and every read of `reads` in one statement: the audit head's row, locked
    /// (`PostgresBackend.writeLockQuery`), beside the function's rows for each run, each after
    /// the position (from 1) of the read it answers; with no such rows, the head alone. One
    /// round trip for the lock and the batch's reads instead of one each (postgres-nio sends a
    /// statement only once the one before it has answered), and one statement text. The calls
    /// take the locked head's sequence number, so they run after the lock (see
    /// `SQLStore.runWithSeriesStatesFunction`).
    static func locked(_ reads: [SeriesReadAhead]) -> (sql: String, values: [SQLValue]) {
        // The arguments of `call` (`runWithSeriesStatesArguments`), a column each.
        (lockedCall, [
            .array(.texts(reads.map { textList($0.keys) })),
            .array(.texts(reads.map(\.runID))),
            .integer(Int64(SQLStore.smallSegmentBytes)),
        ])
    }

    /// The columns of `lockedCall`'s rows before a read's own: the head's three, the position.
    static let lockedLeadingColumns = 4

    static let lockedCall = """
        SELECT h.last_seq, h.last_hash, h.signature, f.* FROM (\(SQLStore.auditHeadQuery) FOR UPDATE) h
        LEFT JOIN LATERAL (SELECT u.position, s.* FROM unnest(CAST(? AS text[]), CAST(? AS text[])) WITH ORDINALITY AS u(keys, run_id, position)
            CROSS JOIN LATERAL \(SQLStore.runWithSeriesStatesFunction.name)(h.last_seq, CAST(? AS bigint), u.keys, u.run_id) s) f ON TRUE
        """

    /// The positions of the batch's works that may be read ahead: the leading works that each
    /// announce a read, for runs no earlier work of the batch writes to.
    static func readable(_ readAheads: [SeriesReadAhead?]) -> [Int] {
        var runs: Set<String> = []
        var positions: [Int] = []
        for (position, readAhead) in readAheads.enumerated() {
            guard let readAhead, runs.insert(readAhead.runID).inserted else { break }
            positions.append(position)
        }
        return positions
    }
}

/// What a write reads first, known before it runs (`SQLBackend.write(readAhead:)`): a metric
/// write's run and series (`SeriesReadAhead`), or the experiment a new run goes into. On
/// PostgreSQL a batch reads its leading works' reads in the write lock's statement
/// (`lockedPlan`), each work takes its rows when its turn comes (`SQLSession.readAhead`), and
/// the works' writes go out together.
public enum ReadAhead: Sendable, Equatable {
    case series(SeriesReadAhead)
    /// A new run's experiment: its lifecycle stage and artifact location. Creating a run
    /// changes neither, so any number of a batch's leading creations read ahead, one row per
    /// experiment for all of them.
    case experiment(Int64)

    /// The read as its work asks for it (`SQLSession.readAhead` matches on it).
    var query: (sql: String, values: [SQLValue]) {
        switch self {
        case .series(let read): read.query
        case .experiment(let id): (Self.experimentCall, [.integer(id)])
        }
    }

    static let experimentCall = "SELECT * FROM \(SQLStore.experimentStateFunction.name)(0, ?)"

    /// The write lock and the experiments' rows in one statement, as `SeriesReadAhead.locked`
    /// does for series: the function takes the locked head's sequence number, so it reads
    /// after the lock.
    static let lockedExperimentsCall = """
        SELECT h.last_seq, h.last_hash, h.signature, f.* FROM (\(SQLStore.auditHeadQuery) FOR UPDATE) h
        LEFT JOIN LATERAL (SELECT u.position, e.* FROM unnest(CAST(? AS bigint[])) WITH ORDINALITY AS u(experiment_id, position)
            CROSS JOIN LATERAL \(SQLStore.experimentStateFunction.name)(h.last_seq, u.experiment_id) e) f ON TRUE
        """

    /// The lock's statement for the batch's leading reads of the first work's kind, with each
    /// read as its work asks for it and the position (from 1) of its rows in the answer; nil
    /// when the first work announces no read. Series: `SeriesReadAhead.readable`. Experiments:
    /// every leading work that creates a run, each experiment read once.
    static func lockedPlan(_ readAheads: [ReadAhead?]) -> (sql: String, values: [SQLValue], reads: [(sql: String, values: [SQLValue], position: Int64)])? {
        switch readAheads.first {
        case .series?:
            let series: [SeriesReadAhead?] = readAheads.map { readAhead -> SeriesReadAhead? in
                guard case .series(let read)? = readAhead else { return nil }
                return read
            }
            let reads = SeriesReadAhead.readable(series).map { series[$0]! }
            guard !reads.isEmpty else { return nil }
            let locked = SeriesReadAhead.locked(reads)
            return (locked.sql, locked.values, reads.enumerated().map { ($0.element.query.sql, $0.element.query.values, Int64($0.offset + 1)) })
        case .experiment?:
            var ids: [Int64] = []
            var positions: [Int64: Int64] = [:]
            var reads: [(sql: String, values: [SQLValue], position: Int64)] = []
            for case .experiment(let id)? in readAheads.prefix(while: { if case .experiment? = $0 { true } else { false } }) {
                let position = positions[id] ?? {
                    ids.append(id)
                    positions[id] = Int64(ids.count)
                    return Int64(ids.count)
                }()
                reads.append((experimentCall, [.integer(id)], position))
            }
            return (lockedExperimentsCall, [.array(.integers(ids))], reads)
        case nil, .some(nil):
            return nil
        }
    }
}
