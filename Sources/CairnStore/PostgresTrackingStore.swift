import CairnCore
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization

/// The team store: the same data model and queries as SQLite (`SQLStore`), in one PostgreSQL
/// database that several `cairn server` replicas share. A replica keeps no state of its own:
/// every answer is read from, and every acknowledged write committed to, the database.
///
/// - Writes go through group commit as on SQLite: concurrent requests of one replica share a
///   transaction (each in its own savepoint). Each write transaction first takes one
///   cluster-wide lock (the audit head's row, `writeLockQuery`), so write transactions of all
///   replicas run one at a time, in
///   the same serial order SQLite gives; that keeps every rule that reads before it writes
///   (next experiment id, write-once params, version numbers, name checks) exact across
///   replicas, with no retry loops. Reads never wait for it.
/// - Reads run in a read-only `REPEATABLE READ` transaction: one consistent snapshot per
///   request, which includes every write acknowledged before the request began on any replica.
/// - Statements are sent with bound parameters through the extended protocol; the SQL text
///   never contains a value.
public final class PostgresTrackingStore: SQLStore, @unchecked Sendable {
    public let location: PostgresLocation
    let postgres: PostgresBackend

    /// Connects, checks the database, applies pending migrations (one replica at a time, under
    /// an advisory lock) and opens a pool of up to `poolSize` connections. A `readReplica`
    /// serves read-only requests (see `SQLBackend` and the README on what may lag).
    public init(location: PostgresLocation, poolSize: Int = 10, readReplica: PostgresLocation? = nil) throws {
        self.location = location
        let backend = try PostgresBackend(location: location, poolSize: poolSize, readReplica: readReplica)
        self.postgres = backend
        super.init(backend: backend)
    }

    /// Closes every connection and stops the store's threads.
    public func shutdown() {
        postgres.shutdown()
    }
}

/// Where a PostgreSQL database is: parsed from `postgresql://user:password@host:port/db`
/// (or `postgres://`), with `sslmode` as libpq spells it and `statement_cache_size` (how many
/// named prepared statements each connection keeps, as asyncpg and pgx name it; 0 for poolers
/// that do not keep them). `description` never shows the password.
public struct PostgresLocation: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var sslMode: SSLMode
    public var statementCacheSize = Self.defaultStatementCacheSize
    public static let defaultStatementCacheSize = 100

    public enum SSLMode: String, Sendable {
        case disable, prefer, require
    }

    public init(host: String, port: Int = 5432, username: String, password: String?, database: String, sslMode: SSLMode = .prefer) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.sslMode = sslMode
    }

    /// Whether `uri` names a PostgreSQL database (`postgresql://` or `postgres://`, with or
    /// without a driver suffix such as MLflow's `postgresql+psycopg2://`).
    public static func isPostgres(_ uri: String) -> Bool {
        let scheme = uri.prefix { $0 != ":" }.lowercased()
        return scheme == "postgresql" || scheme == "postgres" || scheme.hasPrefix("postgresql+") || scheme.hasPrefix("postgres+")
    }

    /// Parses a database URI; a malformed one is refused with a message that shows the
    /// expected form (and never the password).
    public init(uri: String) throws {
        let form = "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        guard Self.isPostgres(uri), let components = URLComponents(string: Self.withPlainScheme(uri)) else {
            throw CairnError.invalidParameter("Invalid PostgreSQL URI '\(Self.redacted(uri))': expected \(form).")
        }
        guard let host = components.host, !host.isEmpty else {
            throw CairnError.invalidParameter("The PostgreSQL URI '\(Self.redacted(uri))' names no host: expected \(form).")
        }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else {
            throw CairnError.invalidParameter("The PostgreSQL URI '\(Self.redacted(uri))' names no database: expected \(form).")
        }
        var sslMode = SSLMode.prefer
        var statementCacheSize = Self.defaultStatementCacheSize
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                switch item.value ?? "" {
                case "disable", "allow": sslMode = .disable
                case "prefer": sslMode = .prefer
                case "require", "verify-ca", "verify-full": sslMode = .require
                default:
                    throw CairnError.invalidParameter("Invalid sslmode '\(item.value ?? "")' in the PostgreSQL URI: use disable, prefer or require.")
                }
            case "statement_cache_size":
                guard let size = Int(item.value ?? ""), (0...10_000).contains(size) else {
                    throw CairnError.invalidParameter("Invalid statement_cache_size '\(item.value ?? "")' in the PostgreSQL URI: use a number from 0 (no named prepared statements, for PgBouncer in transaction mode) to 10000; the default is \(Self.defaultStatementCacheSize).")
                }
                statementCacheSize = size
            default:
                break
            }
        }
        self.init(host: host, port: components.port ?? 5432,
                  username: components.user.map { $0.removingPercentEncoding ?? $0 } ?? ProcessInfo.processInfo.environment["PGUSER"] ?? "postgres",
                  password: components.password.map { $0.removingPercentEncoding ?? $0 } ?? ProcessInfo.processInfo.environment["PGPASSWORD"],
                  database: database.removingPercentEncoding ?? database, sslMode: sslMode)
        self.statementCacheSize = statementCacheSize
    }

    public var description: String {
        "postgresql://\(username)\(password == nil ? "" : ":***")@\(host):\(port)/\(database)"
    }

    /// As `description`: a dump of the value (`String(reflecting:)`) never shows the password either.
    public var debugDescription: String { description }

    /// `uri` with any password replaced by `***`, for messages about a URI that did not parse.
    public static func redacted(_ uri: String) -> String {
        guard let at = uri.lastIndex(of: "@"), let schemeEnd = uri.range(of: "://")?.upperBound, schemeEnd < at else { return uri }
        let credentials = uri[schemeEnd..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return uri }
        return String(uri[..<colon]) + ":***" + String(uri[at...])
    }

    private static func withPlainScheme(_ uri: String) -> String {
        guard let range = uri.range(of: "://") else { return uri }
        return "postgresql" + uri[range.lowerBound...]
    }

    func configuration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch sslMode {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
        case .require: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
        var configuration = PostgresConnection.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.connectTimeout = .seconds(10)
        return configuration
    }
}

/// PostgreSQL through postgres-nio. The store's queries are synchronous closures (the same
/// ones SQLite runs on GRDB's threads), waiting on the driver's futures: reads run on a pool of
/// threads of their own, one connection per thread, and so does the one write batch in flight
/// (see `transact`). Neither the server's event loops nor Swift's cooperative threads block.
final class PostgresBackend: SQLBackend {
    let location: PostgresLocation
    private let primary: PostgresConnectionPool
    private let replica: PostgresConnectionPool?
    private let threads: NIOThreadPool
    private let writer: GroupCommitWriter
    private let history: BatchHistory
    /// Acknowledged writes of this replica, and the count at which it next refreshes the planner
    /// statistics of the search tables (see `noteWrite`).
    private let writes = Atomic<Int>(0)
    private let nextAnalyze = Atomic<Int>(500)

    var dialect: SQLDialect { .postgres }

    /// What every write transaction runs first, right after `BEGIN`: it locks the audit log's
    /// one head row (which the first migration creates and nothing deletes) and reads it. The
    /// row lock is the cluster-wide write lock: write transactions of all replicas queue on it
    /// and run one after the other. Each later statement of the transaction (`READ COMMITTED`)
    /// sees every write committed before the lock was granted.
    static let writeLockQuery = SQLStore.auditHeadQuery + " FOR UPDATE"
    /// The key of the advisory lock held while migrating ("cairnmg").
    static let migrationLockKey: Int64 = 0x63_61_69_72_6e_6d_67

    init(location: PostgresLocation, poolSize: Int, readReplica: PostgresLocation?) throws {
        self.location = location
        let size = max(2, poolSize)
        let configuration = try location.configuration()
        // Each of the store's threads uses one connection at a time, and reads sent from a
        // task (`readStatements`) share the same connections: at most `size` per server.
        primary = PostgresConnectionPool(name: location.description, configuration: configuration, limit: size,
                                         statementCacheSize: location.statementCacheSize)
        replica = try readReplica.map {
            PostgresConnectionPool(name: $0.description, configuration: try $0.configuration(), limit: size, statementCacheSize: $0.statementCacheSize)
        }
        threads = NIOThreadPool(numberOfThreads: size)
        threads.start()
        let primary = self.primary
        let threads = self.threads
        let history = BatchHistory()
        self.history = history
        writer = GroupCommitWriter { works, readAheads, readsNothingElse in
            // A write alone in its batch that reads nothing but what comes with the lock runs
            // from the task, waiting for no thread (`aloneFromTask`).
            if works.count == 1, let readAhead = readAheads[0], readsNothingElse[0],
               let outcome = await Self.aloneFromTask(primary, works[0], readAhead, history) {
                return [outcome]
            }
            // The batch blocks its thread while statements travel to PostgreSQL, whose answers
            // arrive on NIO's event loops, so it runs on one of the store's threads: `cairn
            // server` runs tasks on those event loops (Cairn.main), and an event loop must never
            // wait for itself; elsewhere (the CLI, tests) a task's thread is one of Swift's few
            // cooperative threads (one per core), and a batch waiting there for a lock another
            // replica holds would leave nothing to run the task that releases it.
            do {
                return try await Self.onStoreThread(threads) { Self.transact(primary, works, readAheads, history) }
            } catch {
                return works.map { _ in .failure(error) }
            }
        }
        do {
            try primary.withConnection { connection in try Self.migrate(connection, location: location) }
        } catch {
            shutdown()
            throw Self.mapError(error, location: location)
        }
    }

    func shutdown() {
        primary.closeAll()
        replica?.closeAll()
        try? threads.syncShutdownGracefully()
    }

    deinit {
        primary.closeAll()
        replica?.closeAll()
    }

    /// Runs `body` on one of the store's threads. A caller on an event loop (a request's task
    /// in `cairn server`) resumes on that event loop: resumed from the store's thread, Swift
    /// would hand the task to whichever event loop NIO's global executor picks next, whose
    /// wake-up then hops back to the connection's loop to write the reply (two wake-ups where
    /// one does).
    static func onStoreThread<T: Sendable>(_ threads: NIOThreadPool, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        guard let loop = MultiThreadedEventLoopGroup.currentEventLoop else { return try await threads.runIfActive(body) }
        return try await threads.runIfActive(eventLoop: loop, body).get()
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        let pool = replica ?? primary
        let location = self.location
        do {
            return try await Self.onStoreThread(threads) {
                try pool.withSession(readOnly: true) { session in
                    // Transaction control is queued: BEGIN goes out with the first query and
                    // answers with it. The COMMIT of a read-only transaction that read everything
                    // it asked for changes nothing and cannot fail but with the connection: it goes
                    // out without waiting for its answer, which the connection's next session
                    // collects (see the pool).
                    let begun = session.queue("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    session.collectWithNextWait(begun)
                    do {
                        let value = try body(session)
                        try session.settle()
                        _ = try session.collected(begun)
                        let commit = session.queue("COMMIT")
                        session.send()
                        session.prepareNamedStatements()
                        return (value, commit)
                    } catch {
                        try? session.settle()
                        try? session.connection.exec("ROLLBACK")
                        throw error
                    }
                }
            }
        } catch {
            throw Self.mapError(error, location: location)
        }
    }

    /// Independent reads on one snapshot without a thread of the store's: the statements go
    /// out from the caller's task in one hand-over and the task resumes when all have answered,
    /// on the caller's event loop. One statement runs alone (it sees one snapshot by itself);
    /// several run inside a read-only transaction whose BEGIN goes out with them and whose
    /// COMMIT the connection's next session collects, as in `read`.
    func readStatements(_ queries: [(sql: String, values: [SQLValue])]) async throws -> [[SQLRow]] {
        try await answers(queries.map { ($0.sql, $0.values, true) }) { try $0.rows.map(PostgresSession.row) }
    }

    /// The rows of one statement of packed queries of `columns` columns each (one row of
    /// arrays, `PostgresSession.packed`), sent as `readStatements` sends it; `cache`: its text
    /// is fixed, so the connection may run it by name.
    func readPacked(_ sql: String, _ values: [SQLValue], columns: [Int], cache: Bool) async throws -> [[SQLRow]] {
        try await answers([(sql, values, cache)]) { answer in
            guard let row = answer.rows.first else { return columns.map { _ in [] } }
            return try PostgresSession.unpack(row, columns)
        }[0]
    }

    /// `readStatements`' answers, each made into a value by `take`.
    private func answers<T: Sendable>(_ queries: [(sql: String, values: [SQLValue], cache: Bool)],
                                      _ take: @escaping @Sendable (PostgresAnswer) throws -> T) async throws -> [T] {
        let pool = replica ?? primary
        do {
            return try await pool.withSession { session -> (Result<[T], any Error>, pending: EventLoopFuture<PostgresAnswer>?) in
                let begun = queries.count > 1 ? session.queue("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") : nil
                let reads = session.queueReads(queries)
                let outcomes = try await session.exchange(begun.map { [$0] + reads } ?? reads)
                let rows = Result {
                    if begun != nil { _ = try outcomes[0].get() }
                    return try outcomes.dropFirst(begun == nil ? 0 : 1).map { try take($0.get()) }
                }
                // A transaction that failed is aborted, and its COMMIT rolls it back.
                let commit = begun.map { _ in session.queue("COMMIT") }
                session.send()
                if case .success = rows { session.prepareNamedStatements() }
                return (rows, commit)
            }.get()
        } catch {
            throw Self.mapError(error, location: location)
        }
    }

    /// The primary (which every write needs) and the read replica, if any.
    func ping() async throws {
        let location = self.location
        for pool in [primary] + (replica.map { [$0] } ?? []) {
            do {
                try await Self.onStoreThread(threads) {
                    try pool.withConnection { connection in try connection.exec("SELECT 1") }
                }
            } catch {
                throw Self.mapError(error, location: location)
            }
        }
    }

    func write<T: Sendable>(readAhead: ReadAhead?, readsNothingElse: Bool, _ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        let value: T
        do {
            value = try await writer.write(readAhead: readAhead, readsNothingElse: readsNothingElse, body)
        } catch {
            throw Self.mapError(error, location: location)
        }
        noteWrite()
        return value
    }

    /// The tables whose statistics the run search plans depend on.
    static let searchTables = "experiments, runs, run_params, run_tags, latest_metrics, metric_keys"

    /// PostgreSQL plans from statistics that autovacuum refreshes only a minute or more after
    /// a table changed; a search right after many runs were logged would be planned for empty
    /// tables (a nested loop over every run: 28 ms instead of 1 ms for 1,000 runs). So after 500
    /// acknowledged writes, then 1,000, 2,000, 4,000… (a few times in a replica's life; autovacuum
    /// keeps them current after that), the replica runs `ANALYZE` on the search tables in the
    /// background. It takes no lock that reads or writes wait for; a failure only leaves the
    /// statistics as they were.
    private func noteWrite() {
        let count = writes.add(1, ordering: .relaxed).newValue
        let due = nextAnalyze.load(ordering: .relaxed)
        guard count >= due, nextAnalyze.compareExchange(expected: due, desired: due * 2, ordering: .relaxed).exchanged else { return }
        let pool = primary
        let threads = self.threads
        Task.detached(priority: .background) {
            _ = try? await threads.runIfActive {
                try pool.withConnection { connection in try connection.exec("ANALYZE \(Self.searchTables)") }
            }
        }
    }

    /// One batch of the group commit: one transaction under the cluster-wide write lock.
    ///
    /// The works first run one after the other with nothing between them (`inOneGo`). With
    /// several works, a savepoint around each would cost two more statements, i.e. two more
    /// round trips under the write lock, and a wait per work to learn whether its statements
    /// failed. When one of several works fails there, nothing was committed, and the batch runs
    /// again with each work in its own savepoint (`workByWork`), so that only the failed work's
    /// changes are rolled back; after a batch in which a work failed, the next batch of several
    /// starts that way.
    ///
    /// The batch blocks the thread that runs it while the statements travel: one of the store's
    /// threads (see `init`). The group commit has one batch in flight at a time, so writes hold
    /// at most one thread.
    private static func transact(_ pool: PostgresConnectionPool, _ works: [GroupCommitWriter.Work], _ readAheads: [ReadAhead?],
                                 _ history: BatchHistory) -> [GroupCommitWriter.Outcome] {
        var outcomes: [GroupCommitWriter.Outcome]?
        if works.count == 1 || !history.lastFailed.load(ordering: .relaxed) {
            do {
                switch try pool.withSession(auditChain: AuditChainState(), { session in (try inOneGo(session, works, readAheads, history), pending: nil) }) {
                case .committed(let values): outcomes = values.map { .success($0) }
                case .failed(let error): if works.count == 1 { outcomes = [.failure(error)] }
                }
            } catch {
                // The COMMIT was sent and its answer lost: whether it committed is unknown, so
                // the works must not run again.
                return works.map { _ in .failure(error) }
            }
        }
        if outcomes == nil {
            do {
                outcomes = try pool.withSession(auditChain: AuditChainState()) { session in
                    do {
                        return (try workByWork(session, works), pending: nil)
                    } catch {
                        // Never hand a connection back inside a transaction (ROLLBACK outside one
                        // only warns); a broken connection is dropped by the pool instead.
                        try? session.settle()
                        try? session.connection.exec("ROLLBACK")
                        throw error
                    }
                }
            } catch {
                return works.map { _ in .failure(error) }
            }
        }
        let answered = outcomes ?? []
        history.lastFailed.store(answered.contains { if case .failure = $0 { true } else { false } }, ordering: .relaxed)
        return answered
    }

    /// A batch of one write whose reads all come with the write lock (`readsNothingElse`), run
    /// from the task that leads the group commit instead of on one of the store's threads: the
    /// task sends `BEGIN` with the lock's statement (the audit head and the write's read) and
    /// awaits that answer, runs the work on its own thread with every other statement queued
    /// (the session must not wait: `PostgresSession.withoutWaits`), then sends the work's
    /// statements with the `COMMIT` and awaits their answers. No thread sleeps and wakes for
    /// PostgreSQL: 2 waits of a task instead of a hop to a store thread, 2 waits of it and a hop
    /// back. Answers nil when the work did need an answer of its own (a metric key never seen
    /// before, steps logged again, an unusual path): its transaction is then rolled back, and
    /// the caller runs the batch on a thread as any other.
    static func aloneFromTask(_ pool: PostgresConnectionPool, _ work: @escaping GroupCommitWriter.Work, _ readAhead: ReadAhead,
                              _ history: BatchHistory) async -> GroupCommitWriter.Outcome? {
        let outcome: GroupCommitWriter.Outcome?
        do {
            outcome = try await pool.withSession(auditChain: AuditChainState(), readOnly: false) { session -> (GroupCommitWriter.Outcome?, pending: EventLoopFuture<PostgresAnswer>?) in
                var control = begin(session, reading: ReadAhead.lockedPlan([readAhead]))
                for case .failure(let error) in try await session.exchange(control) {
                    return (.failure(error), pending: session.queueAndSend("ROLLBACK"))
                }
                let value: any Sendable
                do {
                    value = try session.withoutWaits { try work(session) }
                } catch {
                    // Whatever the work queued goes out before the ROLLBACK, which undoes it.
                    let rollback = session.queue("ROLLBACK")
                    _ = try await session.exchange(session.takeDeferred() + session.untakenReadAheads() + [rollback])
                    return (error is PostgresSession.WouldWait ? nil : .failure(error), pending: nil)
                }
                history.readAheadsTaken.add(session.readAheadsTaken, ordering: .relaxed)
                control.append(session.queue("COMMIT"))
                // As in `inOneGo`: a statement of the work that failed aborted the transaction,
                // and its COMMIT rolled it back.
                let deferred = session.takeDeferred() + session.untakenReadAheads()
                let outcomes = try await session.exchange(deferred + control)
                for case .failure(let error) in outcomes.prefix(deferred.count) { return (.failure(error), pending: nil) }
                for outcome in outcomes.dropFirst(deferred.count) { _ = try outcome.get() }
                return (.success(value), pending: nil)
            }
        } catch {
            // The COMMIT was sent and its answer lost (or the connection failed before the
            // work ran): the work must not run again.
            outcome = .failure(error)
        }
        if let outcome {
            history.fromTask.add(1, ordering: .relaxed)
            history.lastFailed.store({ if case .failure = outcome { true } else { false } }(), ordering: .relaxed)
        } else {
            history.backToThread.add(1, ordering: .relaxed)
        }
        return outcome
    }

    /// Whether a work of the group commit's last batch failed.
    final class BatchHistory: Sendable {
        let lastFailed = Atomic<Bool>(false)
        /// How many reads batches sent ahead and their works took (`ReadAhead`).
        let readAheadsTaken = Atomic<Int>(0)
        /// How many statements the batches of several works sent, from BEGIN to COMMIT.
        let statementsSent = Atomic<Int>(0)
        /// Writes run from the task (`aloneFromTask`), and those that needed a wait there and
        /// ran again on a thread.
        let fromTask = Atomic<Int>(0)
        let backToThread = Atomic<Int>(0)
    }

    /// One batch of exactly these works, as the group commit runs it (for tests: the group
    /// commit's own batches depend on which requests meet).
    func commitBatch(_ works: [GroupCommitWriter.Work], readAheads: [ReadAhead?] = []) async throws -> [GroupCommitWriter.Outcome] {
        let primary = self.primary
        let history = self.history
        let announced = readAheads + Array(repeating: nil, count: max(0, works.count - readAheads.count))
        return try await threads.runIfActive { Self.transact(primary, works, announced, history) }
    }

    /// How many reads sent ahead of their works the works took, since the store opened.
    var readAheadsTaken: Int { history.readAheadsTaken.load(ordering: .relaxed) }

    /// How many writes ran from their task (`aloneFromTask`) and how many of them ran again on
    /// a thread, since the store opened.
    var writesFromTask: (ran: Int, backToThread: Int) {
        (history.fromTask.load(ordering: .relaxed), history.backToThread.load(ordering: .relaxed))
    }

    /// How many statements batches of several works sent in one go, since the store opened.
    var batchStatementsSent: Int { history.statementsSent.load(ordering: .relaxed) }

    /// Whether the next batch of several works starts with a savepoint per work.
    var startsWithSavepoints: Bool { history.lastFailed.load(ordering: .relaxed) }

    /// The write lock and the audit chain's head in one statement, queued behind `BEGIN`:
    /// locking the head's row waits for the write transaction that holds it (on any replica) to
    /// end, then reads the row as that one committed it. Its answer comes back with the first
    /// work's first wait; the first work that appends an event takes it. Answers the two
    /// statements' futures, which the batch checks with its COMMIT's.
    ///
    /// Queued is not pipelined on the wire: postgres-nio sends a statement only once the one
    /// before it has answered, so every statement is a round trip between an event loop and the
    /// database (the batch's thread just does not wake up for it). What a write costs here is
    /// its number of statements, which is why the lock and the head are one statement and an
    /// audit event and its head update another.
    ///
    /// With `plan` (the reads of the batch's leading works, `ReadAhead.lockedPlan`), the lock's
    /// statement is also their read, and the works take their rows from its answer.
    private static func begin(_ session: PostgresSession,
                              reading plan: (sql: String, values: [SQLValue], reads: [(sql: String, values: [SQLValue], position: Int64)])? = nil)
        -> [EventLoopFuture<PostgresAnswer>] {
        let begun = session.queue("BEGIN")
        let head: EventLoopFuture<PostgresAnswer>
        if let plan {
            head = session.queue([PostgresSession.query(plan.sql, plan.values, cache: true)])[0]
            session.readAhead(head, leadingColumns: SeriesReadAhead.lockedLeadingColumns, reads: plan.reads)
        } else {
            head = session.queue([PostgresSession.query(writeLockQuery, [], cache: true)])[0]
        }
        session.collectWithNextWait(head)
        session.auditChain?.prefetched = { try session.collected(head).rows.first.map(PostgresSession.row) }
        return [begun, head]
    }

    enum OneGo {
        /// Every work's value, all committed.
        case committed([any Sendable])
        /// A work failed (this is its error) and nothing was committed.
        case failed(any Error)
    }

    /// Every work of the batch in one transaction without savepoints: the statements of a work
    /// whose answers it does not need go out with the next work's first read, and the last
    /// work's right before the COMMIT, whose answer the batch waits for with theirs. When a
    /// work throws, the transaction is rolled back. When one of those statements failed, the
    /// transaction was aborted and the COMMIT rolled it back; when one never answered (the
    /// connection was lost), the COMMIT was never sent (postgres-nio sends a statement only
    /// after the one before it has answered). Throws only when the COMMIT's own answer did not
    /// come back, when whether the batch committed is unknown.
    ///
    /// The reads the batch's leading metric writes start with go in the lock's statement, before
    /// the first work runs (`ReadAhead`): the first work waits for it, the others find
    /// their rows there, and the writes of the works read ahead go out together. The workByWork
    /// re-run reads everything when its turn comes.
    private static func inOneGo(_ session: PostgresSession, _ works: [GroupCommitWriter.Work], _ readAheads: [ReadAhead?],
                                _ history: BatchHistory) throws -> OneGo {
        var control = begin(session, reading: ReadAhead.lockedPlan(readAheads))
        var values: [any Sendable] = []
        values.reserveCapacity(works.count)
        do {
            for work in works {
                values.append(try work(session))
                // The writes of the works so far go out once they fill a statement, so that
                // PostgreSQL runs them while the next works compute.
                if session.queuedStatements >= PostgresSession.sendEvery { session.send() }
            }
            history.readAheadsTaken.add(session.readAheadsTaken, ordering: .relaxed)
        } catch {
            try? session.settle()
            try? session.connection.exec("ROLLBACK")
            return .failed(error)
        }
        control.append(session.queue("COMMIT"))
        // A read sent ahead that no work took (none should be left) is checked like a deferred
        // write: had it failed, PostgreSQL would have aborted the transaction, and its COMMIT
        // would roll back without an error.
        let deferred = session.takeDeferred() + session.untakenReadAheads()
        let outcomes = session.exchange(deferred + control)
        if works.count > 1 { history.statementsSent.add(session.statementsSent, ordering: .relaxed) }
        for case .failure(let error) in outcomes.prefix(deferred.count) { return .failed(error) }
        for outcome in outcomes.dropFirst(deferred.count) { _ = try outcome.get() }
        return .committed(values)
    }

    /// Each work in its own savepoint, so a failed one rolls back only its own changes. BEGIN,
    /// the lock and the savepoints are queued without waiting for their answers (the
    /// connection runs them in order); every one of them is checked before the batch is
    /// answered, and if any failed the transaction was aborted, so COMMIT rolled it back and the
    /// whole batch fails: nothing is acknowledged unless everything in it committed.
    private static func workByWork(_ session: PostgresSession, _ works: [GroupCommitWriter.Work]) throws -> [GroupCommitWriter.Outcome] {
        let connection = session.connection
        var control = begin(session)
        var outcomes: [GroupCommitWriter.Outcome] = []
        for work in works {
            control.append(session.queue("SAVEPOINT work"))
            do {
                let value = try work(session)
                try session.settle()
                control.append(session.queue("RELEASE SAVEPOINT work"))
                outcomes.append(.success(value))
            } catch {
                try? session.settle()
                // A lost connection cannot roll back to the savepoint: the whole batch then
                // fails, and nothing was committed.
                try connection.exec("ROLLBACK TO SAVEPOINT work")
                control.append(session.queue("RELEASE SAVEPOINT work"))
                // Its event was rolled back too: the next work reads the head again.
                session.auditChain?.forget()
                outcomes.append(.failure(error))
            }
        }
        control.append(session.queue("COMMIT"))
        for outcome in session.exchange(control) { _ = try outcome.get() }
        return outcomes
    }

    func checkIntegrity(progress: ProgressReport?) async throws -> IntegrityReport {
        try await read { session in
            var report = IntegrityReport()
            progress?("counting rows")
            for table in SQLStore.metadataTables {
                report.checkedRows += try session.value(Int.self, "SELECT CAST(COUNT(*) AS BIGINT) FROM \(table)") ?? 0
            }
            try SQLStore.checkSegments(session, into: &report, progress: progress)
            return report
        }
    }

    func backupDatabase(to destination: String) async throws {
        throw CairnError(.invalidState, "`cairn backup` copies a SQLite database; a PostgreSQL database (\(location)) is backed up with PostgreSQL's own tools: `pg_dump --format=custom` for a copy, or continuous archiving for point-in-time recovery. Artifacts in S3 are kept by the bucket's versioning or replication.")
    }

    /// Applies the pending migrations, one replica at a time: the first to take the migration
    /// lock migrates, the others wait for it and then find nothing left to do. Then, under the
    /// same lock, makes the functions derived from the store's statements that this build calls
    /// if the database does not have them yet (`SQLStore.runWithSeriesStatesFunction`).
    private static func migrate(_ connection: PostgresConnection, location: PostgresLocation) throws {
        try connection.exec("SELECT pg_advisory_lock(\(migrationLockKey))")
        defer { try? connection.exec("SELECT pg_advisory_unlock(\(migrationLockKey))") }
        let session = PostgresSession(connection)
        let tables = try session.values(String.self, """
            SELECT CAST(table_name AS TEXT) FROM information_schema.tables
            WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name
            """)
        if !tables.isEmpty, !tables.contains("cairn_migrations") {
            throw CairnError(.invalidState, "The database \(location) is not a Cairn database: it holds tables (\(tables.prefix(5).joined(separator: ", "))\(tables.count > 5 ? ", …" : "")) but no Cairn schema. MLflow's own database cannot be used; create an empty database for Cairn (`CREATE DATABASE cairn`) and import MLflow's data with `cairn store copy`.")
        }
        // Only when missing: PostgreSQL checks the right to create in the schema even when the
        // table exists, and a role that may only read and write the tables starts a version
        // whose schema is in place (see `mapError`, 42501).
        if !tables.contains("cairn_migrations") {
            try connection.exec("CREATE TABLE cairn_migrations (identifier TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        }
        let applied = Set(try session.values(String.self, "SELECT identifier FROM cairn_migrations"))
        let known = Set(PostgresMigrations.all.map(\.identifier))
        let unknown = applied.subtracting(known)
        if !unknown.isEmpty {
            throw CairnError(.invalidState, "The database \(location) was written by a newer version of Cairn (schema \(unknown.sorted().joined(separator: ", ")) is unknown to this one). Run that version.")
        }
        for migration in PostgresMigrations.all where !applied.contains(migration.identifier) {
            try connection.exec("BEGIN")
            do {
                try connection.exec(migration.sql)
                // The stored spans are indexed once the index has all its columns (0009 made it with fewer).
                if migration.identifier == "0013_trace_span_metrics" { try SQLStore.indexAllSpans(session) }
                try session.execute("INSERT INTO cairn_migrations (identifier, applied_at) VALUES (?, ?)",
                                    [migration.identifier, Int64(Date().timeIntervalSince1970 * 1000)])
                try connection.exec("COMMIT")
            } catch {
                try? connection.exec("ROLLBACK")
                throw error
            }
        }
        // Functions derived from the store's statements, named by a digest of their definition:
        // made once by the first replica of a build, kept while older replicas may call theirs.
        for function in [SQLStore.runWithSeriesStatesFunction, SQLStore.experimentStateFunction, SQLStore.loadRunsFunction] {
            let exists = try session.value(Bool.self, """
                SELECT TRUE FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = current_schema() AND p.proname = ?
                """, [function.name]) ?? false
            if !exists { try connection.exec(function.sql) }
        }
    }

    /// The driver's errors as `CairnError`: an unreachable, restarting or full database is
    /// `TEMPORARILY_UNAVAILABLE` (503; the request changed nothing and can be retried); a
    /// refused login names what to fix.
    static func mapError(_ error: any Error, location: PostgresLocation) -> CairnError {
        if let error = error as? CairnError { return error }
        if let damage = error as? SQLStore.DamagedSegment { return SQLStore.damagedSegmentError(damage) }
        if let error = error as? PSQLError {
            let state = error.serverInfo?[.sqlState] ?? ""
            let message = error.serverInfo?[.message] ?? ""
            if let known = serverError(state: state, message: message, cause: error, location: location) { return known }
            switch error.code {
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed, .sslUnsupported, .failedToAddSSLHandler:
                return unavailable(location, cause: error)
            default:
                return CairnError(.internalError, "The database failed: \(state.isEmpty ? "\(error.code)" : "\(state) \(message)")", cause: error)
            }
        }
        // A named statement's answer comes through the driver's older API, whose errors these are.
        if let error = error as? PostgresError {
            switch error {
            case .server(let response):
                let state = response.fields[.sqlState] ?? "", message = response.fields[.message] ?? ""
                return serverError(state: state, message: message, cause: error, location: location)
                    ?? CairnError(.internalError, "The database failed: \(state) \(message)", cause: error)
            case .connectionClosed:
                return unavailable(location, cause: error)
            case .protocol:
                break
            }
        }
        if error is ChannelError || error is IOError || error is NIOConnectionError {
            return unavailable(location, cause: error)
        }
        return CairnError(.internalError, "The database failed: \(error)", cause: error)
    }

    /// The error PostgreSQL answered with (its SQLSTATE and message) as `CairnError`, where
    /// the state says more than that the database failed.
    private static func serverError(state: String, message: String, cause error: any Error, location: PostgresLocation) -> CairnError? {
        switch state {
        case "28P01", "28000":
            return CairnError(.invalidState, "PostgreSQL at \(location.host):\(location.port) refused the login of user '\(location.username)': \(message). Check the user and password in --backend-store-uri.", cause: error)
        case "3D000":
            return CairnError(.invalidState, "PostgreSQL at \(location.host):\(location.port) has no database '\(location.database)'. Create it (`CREATE DATABASE \(location.database)`) or name an existing one in --backend-store-uri.", cause: error)
        case "42501":
            // Missing rights: to read or write a table, or, at the first start of a version, to
            // create its tables and functions in the schema.
            return CairnError(.internalError, "PostgreSQL refused user '\(location.username)' in database '\(location.database)': \(message). "
                + "Cairn's user must read and write every table of its schema (`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO \(location.username)` "
                + "and `GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO \(location.username)`), and the first start of each Cairn version creates its new tables and "
                + "functions: start that version once as the database's owner, or `GRANT CREATE ON SCHEMA public TO \(location.username)`.", cause: error)
        case "2201B":
            // An RLIKE pattern PostgreSQL's regular expressions refuse (MLflow on PostgreSQL: 400).
            return CairnError(.badRequest, "Invalid regular expression: \(message).", cause: error)
        case "53100":
            return CairnError(.temporarilyUnavailable, "Storage is full: PostgreSQL has no disk space left; nothing of this request was stored. Free space on the database server; Cairn resumes by itself.", cause: error)
        case _ where state.hasPrefix("08") || state.hasPrefix("57P") || state == "40001" || state == "40P01" || state == "55P03":
            return unavailable(location, cause: error)
        default:
            return nil
        }
    }

    private static func unavailable(_ location: PostgresLocation, cause: any Error) -> CairnError {
        CairnError(.temporarilyUnavailable, "The PostgreSQL database at \(location.host):\(location.port) is unreachable or restarting; nothing of this request was stored. Retry shortly; Cairn reconnects by itself.", cause: cause)
    }
}

/// A statement's answer: its rows and, for a statement run by text, how many rows it changed.
struct PostgresAnswer: Sendable {
    let rows: [PostgresRow]
    let affectedRows: Int?
}

/// The named prepared statements of one connection, which its read-only sessions run.
///
/// PostgreSQL parses, analyses and plans a statement sent as text every time it runs. A named
/// statement is parsed and analysed once per connection, and after its fifth run PostgreSQL
/// keeps a generic plan when that plan's estimate is no dearer than the plans made for each
/// run's values (`plan_cache_mode = auto`). So a read of fixed text (`cache`: the store's own
/// statements, not the ones built per request) that a read-only session sends for the second
/// time on a connection is prepared once the session is over (after its COMMIT, outside any
/// transaction: a failure there changes nothing and fails no read), and the connection's later
/// sessions run it by name. The texts bind the same types as the statements sent as text
/// (`PostgresSession.typeName`).
///
/// Statements built per request (run searches, the explorer's queries) keep running as text,
/// planned for their values: a generic plan is made without the values, and for a filtered run
/// search on 10,000 runs (`metrics.acc > 0.5 and params.lr = '0.01'`) it started from the param,
/// estimated to match one run (it matched 2,513), and sorted, where the plan for the values
/// walks the metric's index in order: 9.7 against 7.7 ms, and worse the more runs match.
/// (Asking the connections for plans made for the values instead, `plan_cache_mode =
/// force_custom_plan`, also re-planned every statement of the PL/pgSQL triggers each write
/// fires: the 1,000 writers' p99 went from 43–58 to 615–808 ms.) Writes keep running as text:
/// their batches coalesce into statements whose texts vary, and a write needs the count of rows
/// it changed, which a named statement's answer lacks.
///
/// At most `capacity` statements per connection (the URI's `statement_cache_size`, 0 turns
/// naming off, as connection poolers that do not keep a connection's prepared statements need,
/// such as PgBouncer in transaction mode before 1.21); the least recently used are closed to
/// make room for new ones.
final class NamedStatements: Sendable {
    let capacity: Int
    /// Texts longer than this run as text (long lists of values vary).
    static let longestText = 32_768

    private struct State {
        var ready: [String: (statement: PreparedQuery, used: UInt64)] = [:]
        /// Texts seen once; cleared when it grows past a bound.
        var seen = Set<String>()
        var wanted: [String] = []
        /// Texts whose preparation went out and has not answered yet.
        var preparing: [String: EventLoopFuture<PreparedQuery>] = [:]
        /// Texts PostgreSQL refused to prepare, not tried again on this connection.
        var refused = Set<String>()
        /// Statements that failed, to close with the next work.
        var failed: [PreparedQuery] = []
        var clock: UInt64 = 0
    }
    private let state = Mutex<State>(State())

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// A statement prepared on the connection, or one whose preparation went out before this
    /// session's statements and has not answered yet (which they then wait for).
    enum Found {
        case ready(PreparedQuery)
        case preparing(EventLoopFuture<PreparedQuery>)
    }

    /// The statement prepared or being prepared for `text`, if any. Otherwise notes that it was
    /// sent: a text sent the second time is prepared after the session (`takeWork`).
    func lookup(_ text: String) -> Found? {
        guard capacity > 0 else { return nil }
        return state.withLock { state in
            state.clock += 1
            if let known = state.ready[text] {
                state.ready[text]?.used = state.clock
                return .ready(known.statement)
            }
            if let preparing = state.preparing[text] { return .preparing(preparing) }
            guard !state.refused.contains(text), !state.wanted.contains(text) else { return nil }
            if state.seen.remove(text) != nil {
                state.wanted.append(text)
            } else {
                if state.seen.count >= 4 * capacity { state.seen.removeAll() }
                state.seen.insert(text)
            }
            return nil
        }
    }

    /// The texts to prepare now, each with the promise of its statement (on `loop`, the
    /// connection's), and the statements to close to make room for them (the least recently
    /// used). Called at the end of a session: no statement of the connection is in use.
    func takeWork(on loop: any EventLoop) -> (prepare: [(text: String, promise: EventLoopPromise<PreparedQuery>)], close: [PreparedQuery]) {
        state.withLock { state in
            let prepare = state.wanted.prefix(capacity).map { (text: $0, promise: loop.makePromise(of: PreparedQuery.self)) }
            state.wanted.removeAll()
            for (text, promise) in prepare { state.preparing[text] = promise.futureResult }
            var close = state.failed
            state.failed.removeAll()
            let excess = state.ready.count + state.preparing.count - capacity
            if excess > 0 {
                let oldest = state.ready.sorted { $0.value.used < $1.value.used }.prefix(excess)
                for (text, _) in oldest { state.ready[text] = nil }
                close += oldest.map(\.value.statement)
            }
            return (prepare, close)
        }
    }

    /// The outcome of preparing `text`.
    func prepared(_ text: String, _ outcome: Result<PreparedQuery, any Error>) {
        state.withLock { state in
            state.preparing[text] = nil
            switch outcome {
            case .success(let statement):
                state.clock += 1
                state.ready[text] = (statement, state.clock)
            case .failure:
                if state.refused.count < capacity { state.refused.insert(text) }
            }
        }
    }

    /// Drops `text`'s statement (it failed) from those the sessions run.
    func forget(_ text: String) {
        state.withLock { state in
            if let failed = state.ready.removeValue(forKey: text) {
                state.seen.insert(text)
                state.failed.append(failed.statement)
            }
        }
    }
}

/// Connections to one PostgreSQL server, used one at a time each, from the backend's threads
/// or from tasks (`PostgresBackend.readStatements`). A connection is opened when no idle one
/// is left and fewer than `limit` are open, and dropped when it breaks, so the store recovers
/// by itself once the database is reachable again.
final class PostgresConnectionPool: Sendable {
    let name: String
    private let configuration: PostgresConnection.Configuration
    /// How many connections the pool opens at most; a session that finds every one in use
    /// waits for one to come back (a thread blocks, a task suspends).
    let limit: Int
    private typealias Idle = (connection: PostgresConnection, pending: EventLoopFuture<PostgresAnswer>?, named: NamedStatements)
    /// A session waiting for a connection.
    private enum Waiter {
        case thread(DispatchSemaphore)
        case task(CheckedContinuation<Void, Never>)

        func wake() {
            switch self {
            case .thread(let semaphore): semaphore.signal()
            case .task(let continuation): continuation.resume()
            }
        }
    }
    private struct State {
        /// Idle connections, each with the statement it was handed back behind (a read's
        /// COMMIT), whose answer its next user collects first.
        var idle: [Idle] = []
        /// Connections open or being opened.
        var open = 0
        var waiters: [Waiter] = []
    }
    private let state = Mutex<State>(State())
    private let nextID = Atomic<Int>(0)
    private let isClosed = Atomic<Bool>(false)
    private let logger = Logger(label: "cairn.postgres")

    /// How many named statements each connection keeps (`NamedStatements`).
    let statementCacheSize: Int

    init(name: String, configuration: PostgresConnection.Configuration, limit: Int = .max,
         statementCacheSize: Int = PostgresLocation.defaultStatementCacheSize) {
        self.name = name
        self.configuration = configuration
        self.limit = limit
        self.statementCacheSize = statementCacheSize
    }

    /// Runs `body` on a connection (from a thread that may block, never an event loop).
    func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try withSession { session in
            // Not through the session: the connection's statement left pending is waited for here.
            _ = session.exchange([])
            return (try body(session.connection), nil)
        }
    }

    /// Runs `body` with a session on a connection. A body may end with a statement whose
    /// answer it need not wait for (`pending`, a read's COMMIT): the connection goes back to
    /// the pool at once, and its next session collects that answer with its first wait (it
    /// has almost always arrived by then). A statement that failed there leaves the connection
    /// broken, which the next statements on it report.
    ///
    /// A read-only session (`readOnly`) runs the reads of fixed text that sessions sent on this
    /// connection before as named prepared statements (`NamedStatements`).
    func withSession<T>(auditChain: AuditChainState? = nil, readOnly: Bool = false,
                        _ body: (PostgresSession) throws -> (T, pending: EventLoopFuture<PostgresAnswer>?)) throws -> T {
        let (connection, leftPending, named) = try acquire()
        let session = PostgresSession(connection, auditChain: auditChain, named: readOnly ? named : nil)
        if let leftPending { session.collectWithNextWait(leftPending) }
        do {
            let (value, pending) = try body(session)
            release(connection, pending: pending, named: named)
            return value
        } catch {
            if connection.isClosed {
                connection.closeAndWait()
                dropped()
            } else {
                release(connection, pending: nil, named: named)
            }
            throw error
        }
    }

    /// `withSession` for a caller that must not block a thread (a task): `body` sends its
    /// statements and awaits their answers (`PostgresSession.exchange(_:) async`). A read-only
    /// session.
    func withSession<T>(auditChain: AuditChainState? = nil, readOnly: Bool = true,
                        _ body: (PostgresSession) async throws -> (T, pending: EventLoopFuture<PostgresAnswer>?)) async throws -> T {
        let (connection, leftPending, named) = try await acquire()
        let session = PostgresSession(connection, auditChain: auditChain, named: readOnly ? named : nil)
        if let leftPending { session.collectWithNextWait(leftPending) }
        do {
            let (value, pending) = try await body(session)
            release(connection, pending: pending, named: named)
            return value
        } catch {
            if connection.isClosed {
                try? await connection.close()
                dropped()
            } else {
                release(connection, pending: nil, named: named)
            }
            throw error
        }
    }

    private enum Step {
        case take(Idle)
        /// A connection to open, counted as open already.
        case open
        case wait
    }

    /// An idle connection, or room to open one, or neither (then wait: `waits`).
    private func next() -> Step {
        state.withLock { state in
            while let idle = state.idle.popLast() {
                if !idle.connection.isClosed { return .take(idle) }
                state.open -= 1
            }
            if state.open < limit {
                state.open += 1
                return .open
            }
            return .wait
        }
    }

    /// Keeps `waiter` to wake when a connection comes back or closes, unless one is there
    /// or may be opened now (then answers false: look again).
    private func waits(_ waiter: Waiter) -> Bool {
        state.withLock { state in
            guard state.idle.isEmpty, state.open >= limit else { return false }
            state.waiters.append(waiter)
            return true
        }
    }

    /// A connection closed or never opened: room for another.
    private func dropped() {
        state.withLock { state in
            state.open -= 1
            return state.waiters.isEmpty ? nil : state.waiters.removeFirst()
        }?.wake()
    }

    private func acquire() throws -> Idle {
        while true {
            switch next() {
            case .take(let idle): return idle
            case .wait:
                let semaphore = DispatchSemaphore(value: 0)
                if waits(.thread(semaphore)) { semaphore.wait() }
            case .open:
                do {
                    return try open().wait()
                } catch {
                    dropped()
                    throw error
                }
            }
        }
    }

    private func acquire() async throws -> Idle {
        while true {
            switch next() {
            case .take(let idle): return idle
            case .wait:
                await withCheckedContinuation { continuation in
                    if !waits(.task(continuation)) { continuation.resume() }
                }
                continue
            case .open:
                do {
                    return try await open().get()
                } catch {
                    dropped()
                    throw error
                }
            }
        }
    }

    /// A new connection with the session's settings (`sessionSettings`); closed again if they fail.
    private func open() -> EventLoopFuture<Idle> {
        let id = nextID.add(1, ordering: .relaxed).newValue
        let capacity = statementCacheSize
        let logger = self.logger
        return PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration, id: id, logger: logger)
            .flatMap { connection in
                connection.query(PostgresQuery(unsafeSQL: Self.sessionSettings), logger: logger)
                    .map { _ in (connection, nil, NamedStatements(capacity: capacity)) }
                    .flatMapError { error in connection.close().flatMapThrowing { throw error } }
            }
    }

    /// Set on each new connection. JIT compilation is off: it starts once a plan's estimated
    /// cost passes `jit_above_cost`, which Cairn's longest reads do (a million-point series, a
    /// search sorting a million runs), and then spends up to a second compiling code that
    /// runs for less (on `bench/scale`'s 1 M-run store: a search across every run 3.65 →
    /// 1.35 s, a 1 M-point history 326 → 207 ms). Sent as a statement rather than as a
    /// startup parameter, which poolers such as PgBouncer refuse.
    static let sessionSettings = "SET jit = off"

    /// Back to the idle list, waking a session waiting for a connection; once the pool is
    /// closed, a connection still out (a background ANALYZE, say) is closed when it comes back
    /// instead.
    private func release(_ connection: PostgresConnection, pending: EventLoopFuture<PostgresAnswer>?, named: NamedStatements) {
        guard !isClosed.load(ordering: .acquiring) else {
            connection.closeAndWait()
            dropped()
            return
        }
        state.withLock { state in
            state.idle.append((connection, pending, named))
            return state.waiters.isEmpty ? nil : state.waiters.removeFirst()
        }?.wake()
    }

    func closeAll() {
        let (connections, waiters) = state.withLock { state in
            isClosed.store(true, ordering: .releasing)
            defer {
                state.open -= state.idle.count
                state.idle.removeAll()
                state.waiters.removeAll()
            }
            return (state.idle.map(\.connection), state.waiters)
        }
        for connection in connections { connection.closeAndWait() }
        for waiter in waiters { waiter.wake() }
    }
}

/// A PostgreSQL connection as an `SQLSession`: `?` placeholders become `$1…$n` (the rewritten
/// text of the store's fixed statements is kept), values are bound, rows come back as
/// `SQLValue`s by column type.
///
/// The session talks to the connection's event loop as seldom as it can, because each time
/// costs a thread wake-up on both sides: statements whose answer is not needed yet are queued
/// here (`queue`, `runDeferred`) and handed over together with the next statement that is
/// waited for, and one wait collects every answer it needs (`exchange`). A caller thread that
/// called postgres-nio directly would hop to the event loop for each statement sent and for
/// each future it waits on, done or not.
struct PostgresSession: SQLSession {
    let connection: PostgresConnection
    private let state = State()
    let auditChain: AuditChainState?
    /// The connection's named statements, in a read-only session (`NamedStatements`).
    let named: NamedStatements?
    static let logger = Logger(label: "cairn.postgres")
    private static let rewritten = Mutex<[String: String]>([:])

    private final class State: Sendable {
        /// Statements queued and not handed to the connection yet, in order.
        let outbox = Mutex<[Outgoing]>([])
        /// Deferred statements queued or sent and not yet checked (see `settle`).
        let deferred = Mutex<[EventLoopFuture<PostgresAnswer>]>([])
        /// Statements whose answers the next wait collects too (see `collectWithNextWait`), and
        /// the answers collected so far.
        let riders = Mutex<[EventLoopFuture<PostgresAnswer>]>([])
        let collected = Mutex<[(future: EventLoopFuture<PostgresAnswer>, result: Result<PostgresAnswer, any Error>)]>([])
        /// Reads sent ahead of the works that need them (`readAhead`) as one statement.
        let readAheads = Mutex<ReadAheads>(ReadAheads())
        /// Statements handed to the connection (after coalescing).
        let sent = Atomic<Int>(0)
        /// While false, a wait for an answer not yet collected fails with `WouldWait`.
        let mayWait = Atomic<Bool>(true)
    }

    /// The reads sent ahead of a batch's works: one statement for all of them, whose rows
    /// start with the position (from 1) of the read they belong to.
    private struct ReadAheads: Sendable {
        /// The reads not taken yet, in the batch's order, each with its position.
        var pending: [(sql: String, values: [SQLValue], position: Int64)] = []
        var answer: EventLoopFuture<PostgresAnswer>?
        /// The columns of each row before the read's own; the last of them is the position.
        var leadingColumns = 1
        /// The answer's rows and, by position, which of them answer that read, once a work
        /// waited for it. Each work decodes only its own rows, when it takes them.
        var rows: (all: [PostgresRow], byPosition: [Int64: [Int]])?
        var taken = 0
    }

    /// A queued statement: ready to send, or an independent write that may go out as one
    /// statement with the independent writes queued next to it (`coalesced`).
    private struct Outgoing: Sendable {
        var query: Statement?
        var independent: (sql: String, values: [SQLValue])?
        /// The write an independent one reads first (`runDeferredIndependent(first:then:_:)`).
        var first: (sql: String, values: [SQLValue])?
        /// An independent write that a later one of the same text replaces (`runDeferredReplaceable`).
        var replaceable = false
        let promise: EventLoopPromise<PostgresAnswer>
    }

    /// A statement as it goes to the connection: its text, or a named statement prepared
    /// before on this connection with the values to run it with.
    enum Statement: Sendable {
        case unnamed(PostgresQuery)
        case named(PreparedQuery, [PostgresData], text: String, NamedStatements)
        /// A named statement whose preparation has not answered yet: it goes out once it has,
        /// as text (`fallback`) if PostgreSQL refused it.
        case namedOncePrepared(EventLoopFuture<PreparedQuery>, [PostgresData], fallback: PostgresQuery, text: String, NamedStatements)
    }

    init(_ connection: PostgresConnection, auditChain: AuditChainState? = nil, named: NamedStatements? = nil) {
        self.connection = connection
        self.auditChain = auditChain
        self.named = named
    }

    var dialect: SQLDialect { .postgres }

    func runDeferredIndependent(_ sql: String, _ values: [SQLValue]) throws {
        let promise = connection.eventLoop.makePromise(of: PostgresAnswer.self)
        state.outbox.withLock { $0.append(Outgoing(independent: (sql, values), promise: promise)) }
        state.deferred.withLock { $0.append(promise.futureResult) }
    }

    func runDeferredIndependent(first: (sql: String, values: [SQLValue]), then sql: String, _ values: [SQLValue]) throws {
        let promise = connection.eventLoop.makePromise(of: PostgresAnswer.self)
        state.outbox.withLock { $0.append(Outgoing(independent: (sql, values), first: first, promise: promise)) }
        state.deferred.withLock { $0.append(promise.futureResult) }
    }

    /// The same write of a work before, still unsent, is dropped: its answer is this one's.
    /// Within a batch whose works' writes go out together (`readAhead`), each work moves the
    /// audit head, and one statement must not update a row twice (PostgreSQL would keep one
    /// of the updates, which one is not defined).
    func runDeferredReplaceable(_ sql: String, _ values: [SQLValue]) throws {
        let promise = connection.eventLoop.makePromise(of: PostgresAnswer.self)
        state.outbox.withLock { outbox in
            if let earlier = outbox.lastIndex(where: { $0.replaceable && $0.independent?.sql == sql }) {
                promise.futureResult.cascade(to: outbox.remove(at: earlier).promise)
            }
            outbox.append(Outgoing(independent: (sql, values), replaceable: true, promise: promise))
        }
        state.deferred.withLock { $0.append(promise.futureResult) }
    }

    /// A batch whose works send their writes together hands them to the connection once this
    /// many statements wait (`inOneGo`), so that PostgreSQL runs them while the next works
    /// compute instead of all at the end. Measured with 1,000 writers on PostgreSQL 15
    /// (2026-11-28, alternated): at one log-batch per writer a second, p99 60–89 ms this way
    /// against 199 ms and 1.27 s with everything sent at the end; back to back, 1,365–1,516
    /// log-batches/s against 1,078–1,201 (8 statements: 1,112–1,307; 64: 1,064–1,361).
    static let sendEvery = 16
    /// At most this many independent writes go as one statement (`coalesced`).
    static let maxCoalescedParts = 64

    /// The outbox as the statements to send, each with the promises its answer fulfils: runs
    /// of independent writes become one statement each, `WITH w0 AS (…), w1 AS (…) last`
    /// (PostgreSQL runs every part once, on one snapshot, whether or not it is referenced). A
    /// write with a first write of its own (`runDeferredIndependent(first:then:_:)`) is two
    /// parts, `w1f AS (first), w1 AS (write)`, the write naming its first part for `{first}`.
    private static func coalesced(_ outbox: [Outgoing]) -> [(statement: Statement, promises: [EventLoopPromise<PostgresAnswer>])] {
        var statements: [(statement: Statement, promises: [EventLoopPromise<PostgresAnswer>])] = []
        var run: [(sql: String, values: [SQLValue], first: (sql: String, values: [SQLValue])?, promise: EventLoopPromise<PostgresAnswer>)] = []
        func endRun() {
            guard !run.isEmpty else { return }
            var parts: [String] = []
            var values: [SQLValue] = []
            var last = ""
            for (index, part) in run.enumerated() {
                var sql = part.sql
                if let first = part.first {
                    parts.append("w\(index)f AS (\(first.sql))")
                    values += first.values
                    sql = sql.replacingOccurrences(of: "{first}", with: "w\(index)f")
                }
                values += part.values
                if index == run.count - 1 { last = sql } else { parts.append("w\(index) AS (\(sql))") }
            }
            let sql = parts.isEmpty ? last : "WITH " + parts.joined(separator: ", ") + " " + last
            // Shapes that recur (a log-metric's) keep their rewritten text; long ones vary.
            statements.append((.unnamed(query(sql, values, cache: run.count == 1 || sql.utf8.count <= 4096)), run.map(\.promise)))
            run.removeAll()
        }
        var boundValues = 0
        for item in outbox {
            if let independent = item.independent {
                // Well under the protocol's 65,535 parameters of one statement, and parts few
                // enough for PostgreSQL to plan quickly (a batch's works send theirs together).
                let count = independent.values.count + (item.first?.values.count ?? 0)
                if boundValues + count > 30_000 || run.count == maxCoalescedParts { endRun(); boundValues = 0 }
                run.append((independent.sql, independent.values, item.first, item.promise))
                boundValues += count
            } else if let query = item.query {
                endRun()
                boundValues = 0
                statements.append((query, [item.promise]))
            }
        }
        endRun()
        return statements
    }

    @discardableResult
    func run(_ sql: String, _ values: [SQLValue], cache: Bool) throws -> Int {
        let result = try answers(queue([Self.query(sql, values, cache: cache)]))[0]
        return result.affectedRows ?? 0
    }

    func each(_ sql: String, _ values: [SQLValue], cache: Bool, _ body: (SQLRow) throws -> Void) throws {
        let result = try answers(queueReads([(sql, values, cache)]))[0]
        for row in result.rows {
            try body(Self.row(row))
        }
    }

    /// Hands over each segment where the driver holds it (a slice of the answer's buffer), its
    /// steps decoded as integers: no copy of the bytes and no row of values per segment.
    func eachBlob(_ sql: String, _ values: [SQLValue], _ body: (UnsafeRawBufferPointer?, Int64, Int64) throws -> Void) throws {
        let result = try answers(queueReads([(sql, values, true)]))[0]
        for row in result.rows {
            var cells = row.makeIterator()
            guard let blob = cells.next(), let low = cells.next(), let high = cells.next() else {
                throw CairnError(.internalError, "PostgreSQL answered a segment row of fewer than three columns.")
            }
            let minStep = try Self.binary(low).decode(Int64.self), maxStep = try Self.binary(high).decode(Int64.self)
            guard blob.bytes != nil else {
                try body(nil, minStep, maxStep)
                continue
            }
            try blob.decode(ByteBuffer.self).withUnsafeReadableBytes { try body($0, minStep, maxStep) }
        }
    }

    func runDeferred(_ sql: String, _ values: [SQLValue]) throws {
        let future = queue([Self.query(sql, values, cache: true)])[0]
        state.deferred.withLock { $0.append(future) }
    }

    func rows(of queries: [(sql: String, values: [SQLValue])]) throws -> [[SQLRow]] {
        let sent = queueReads(queries.map { ($0.sql, $0.values, true) })
        return try answers(sent).map { result in try result.rows.map(Self.row) }
    }

    /// Takes `answer`, a queued statement whose rows answer `reads` (`ReadAhead.lockedPlan`):
    /// each row's first `leadingColumns` columns end with the position (from 1) of the rows of
    /// a read (NULL: a row of no read; several reads may share one position), its other
    /// columns are that read's row.
    /// `readAhead(_:_:)` hands each work its rows. The first work waits for the answer; the
    /// later ones find their rows there and send nothing, so their writes go out together, as
    /// few statements as `coalesced` makes of them.
    func readAhead(_ answer: EventLoopFuture<PostgresAnswer>, leadingColumns: Int, reads: [(sql: String, values: [SQLValue], position: Int64)]) {
        guard !reads.isEmpty else { return }
        state.readAheads.withLock { ahead in
            ahead = ReadAheads(taken: ahead.taken)
            ahead.pending = reads
            ahead.answer = answer
            ahead.leadingColumns = leadingColumns
        }
    }

    func readAhead(_ sql: String, _ values: [SQLValue]) throws -> [SQLRow]? {
        let taken = state.readAheads.withLock { ahead -> (position: Int64, answer: EventLoopFuture<PostgresAnswer>?, leading: Int)? in
            // The works take their reads in the batch's order: the first one pending is theirs.
            func matches(_ entry: (sql: String, values: [SQLValue], position: Int64)) -> Bool {
                entry.sql == sql && entry.values == values
            }
            guard let index = ahead.pending.first.map(matches) == true ? 0 : ahead.pending.firstIndex(where: matches) else { return nil }
            ahead.taken += 1
            return (ahead.pending.remove(at: index).position, ahead.answer, ahead.leadingColumns)
        }
        guard let taken else { return nil }
        var rows = state.readAheads.withLock { $0.rows }
        if rows == nil {
            guard let answer = taken.answer else { return nil }
            // Collected already when the batch awaited the lock's statement (`aloneFromTask`).
            let all = try (knownAnswer(answer) ?? answers([answer])[0]).rows
            var byPosition: [Int64: [Int]] = [:]
            for (index, row) in all.enumerated() {
                var cells = row.makeIterator()
                for _ in 1..<taken.leading { _ = cells.next() }
                guard let cell = cells.next() else {
                    throw CairnError(.internalError, "PostgreSQL answered a read sent ahead without its position.")
                }
                guard let position = try cell.decode(Int64?.self) else { continue }
                byPosition[position, default: []].append(index)
            }
            rows = (all, byPosition)
            state.readAheads.withLock { $0.rows = rows }
        }
        guard let rows else { return nil }
        return try (rows.byPosition[taken.position] ?? []).map { index in
            SQLRow(Array(try Self.row(rows.all[index]).values.dropFirst(taken.leading)))
        }
    }

    /// The reads sent ahead that no work waited for, which the caller now owns.
    func untakenReadAheads() -> [EventLoopFuture<PostgresAnswer>] {
        state.readAheads.withLock { ahead in
            defer { ahead = ReadAheads(taken: ahead.taken) }
            guard ahead.rows == nil, let answer = ahead.answer else { return [] }
            return [answer]
        }
    }

    /// How many reads sent ahead were taken by this session's works.
    var readAheadsTaken: Int { state.readAheads.withLock { $0.taken } }

    /// Statements queued and not sent yet.
    var queuedStatements: Int { state.outbox.withLock { $0.count } }

    /// How many statements this session handed to its connection.
    var statementsSent: Int { state.sent.load(ordering: .relaxed) }

    /// Queues statements without sending them: they go to the connection, in order, with the
    /// next wait (or `flush`).
    func queue(_ queries: [PostgresQuery]) -> [EventLoopFuture<PostgresAnswer>] {
        queue(queries.map(Statement.unnamed))
    }

    private func queue(_ statements: [Statement]) -> [EventLoopFuture<PostgresAnswer>] {
        let loop = connection.eventLoop
        let promises = statements.map { _ in loop.makePromise(of: PostgresAnswer.self) }
        state.outbox.withLock { $0.append(contentsOf: zip(statements, promises).map { Outgoing(query: $0, promise: $1) }) }
        return promises.map(\.futureResult)
    }

    /// Queues reads: in a read-only session, each of fixed text (`cache`) by name where this
    /// connection has prepared it (`NamedStatements`), which also learns which to prepare next.
    func queueReads(_ reads: [(sql: String, values: [SQLValue], cache: Bool)]) -> [EventLoopFuture<PostgresAnswer>] {
        guard let named else { return queue(reads.map { Self.query($0.sql, $0.values, cache: $0.cache) }) }
        return queue(reads.map { read -> Statement in
            guard read.cache, read.sql.utf8.count <= NamedStatements.longestText else { return .unnamed(Self.query(read.sql, read.values, cache: read.cache)) }
            let types = read.values.map(Self.typeName)
            let text = Self.numbered(read.sql, casts: types, cache: read.cache)
            switch named.lookup(text) {
            case .ready(let prepared): return .named(prepared, read.values.map(Self.data), text: text, named)
            case .preparing(let preparing):
                return .namedOncePrepared(preparing, read.values.map(Self.data), fallback: Self.query(read.sql, read.values, cache: read.cache),
                                          text: text, named)
            case nil: return .unnamed(Self.query(read.sql, read.values, cache: read.cache))
            }
        })
    }

    /// After the session's last statement: prepares the statements it learnt it should and
    /// closes the ones they replace (`NamedStatements.takeWork`), outside any transaction, so
    /// that neither changes what the session did. Nothing waits for their answers; the
    /// connection runs its next session's statements after them.
    func prepareNamedStatements() {
        guard let named else { return }
        let connection = self.connection
        let (prepare, close) = named.takeWork(on: connection.eventLoop)
        guard !prepare.isEmpty || !close.isEmpty else { return }
        for (text, promise) in prepare { promise.futureResult.whenComplete { named.prepared(text, $0) } }
        connection.eventLoop.execute {
            for statement in close { _ = statement.deallocate() }
            for (text, promise) in prepare { connection.prepare(query: text).cascade(to: promise) }
        }
    }

    /// One statement without parameters (transaction control), queued.
    func queue(_ sql: String) -> EventLoopFuture<PostgresAnswer> {
        queue([PostgresQuery(unsafeSQL: sql)])[0]
    }

    /// `future`'s answer is collected by the next wait, whatever that waits for, and kept for
    /// `collected(_:)`: the audit head, read with the write lock, comes back with the work's
    /// first answer instead of costing a wait of its own.
    func collectWithNextWait(_ future: EventLoopFuture<PostgresAnswer>) {
        state.riders.withLock { $0.append(future) }
    }

    /// The answer of a statement given to `collectWithNextWait`, waiting for it if no wait
    /// has collected it yet.
    func collected(_ future: EventLoopFuture<PostgresAnswer>) throws -> PostgresAnswer {
        if let known = try knownAnswer(future) { return known }
        state.riders.withLock { $0.removeAll { $0 === future } }
        return try exchange([future])[0].get()
    }

    /// The answer of `future` if a wait collected it already (`collectWithNextWait`).
    private func knownAnswer(_ future: EventLoopFuture<PostgresAnswer>) throws -> PostgresAnswer? {
        try state.collected.withLock { $0.first { $0.future === future }?.result }?.get()
    }

    /// Each query as one row of one array per column (`packed`), read straight into `SQLRow`s
    /// (`unpack`): one `DataRow` message per query instead of one per row.
    func packedRows(of queries: [PackedQuery]) throws -> [[SQLRow]] {
        let results = try answers(queueReads(queries.map { (Self.packed($0.sql, columns: $0.columns), $0.values, true) }))
        return try zip(results, queries).map { result, query in
            guard let row = result.rows.first else { return [] }
            return try Self.unpack(row, [query.columns])[0]
        }
    }


    /// `sql` (a `SELECT` of `columns` columns) as one row of one array per column, each in the
    /// query's row order (the aggregate reads a subquery that is only projected, which keeps
    /// its order). No rows: one row of NULLs.
    static func packed(_ sql: String, columns: Int) -> String {
        let names = (0..<columns).map { "c\($0)" }
        return "SELECT \(names.map { "array_agg(\($0))" }.joined(separator: ", ")) FROM (\(sql)) s(\(names.joined(separator: ", ")))"
    }

    /// The rows of packed queries of `columns` columns each from `row`'s arrays (`packed`).
    static func unpack(_ row: PostgresRow, _ columns: [Int]) throws -> [[SQLRow]] {
        var arrays: [[SQLValue]] = []
        for cell in row {
            guard var bytes = cell.bytes else {
                arrays.append([])
                continue
            }
            arrays.append(try elements(&bytes))
        }
        guard arrays.count == columns.reduce(0, +) else {
            throw CairnError(.internalError, "PostgreSQL answered \(arrays.count) packed columns where \(columns.reduce(0, +)) were asked for.")
        }
        var result: [[SQLRow]] = []
        var first = 0
        for width in columns {
            let group = arrays[first..<first + width]
            let count = group.first?.count ?? 0
            guard group.allSatisfy({ $0.count == count }) else {
                throw CairnError(.internalError, "PostgreSQL answered packed columns of different lengths.")
            }
            var rows: [SQLRow] = []
            rows.reserveCapacity(count)
            for i in 0..<count {
                rows.append(SQLRow(group.map { $0[i] }))
            }
            result.append(rows)
            first += width
        }
        return result
    }

    /// The elements of a one-dimensional array in PostgreSQL's binary form (`array_send`): the
    /// header (dimensions, a flag, the element type, the length and lower bound), then per
    /// element its length (-1 for NULL) and value.
    static func elements(_ buffer: inout ByteBuffer) throws -> [SQLValue] {
        func malformed() -> CairnError { CairnError(.internalError, "PostgreSQL answered a malformed array.") }
        guard let dimensions = buffer.readInteger(as: Int32.self), buffer.readInteger(as: Int32.self) != nil,
              let type = buffer.readInteger(as: UInt32.self) else { throw malformed() }
        guard dimensions == 1 else {
            if dimensions == 0 { return [] }
            throw malformed()
        }
        guard let count = buffer.readInteger(as: Int32.self), buffer.readInteger(as: Int32.self) != nil, count >= 0 else { throw malformed() }
        var values: [SQLValue] = []
        values.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let length = buffer.readInteger(as: Int32.self) else { throw malformed() }
            guard length >= 0 else {
                values.append(.null)
                continue
            }
            guard let value = elementValue(type: type, length: Int(length), &buffer) else {
                throw CairnError(.internalError, "PostgreSQL answered an array of type \(type), which the store does not read packed.")
            }
            values.append(value)
        }
        return values
    }

    /// One element of an array (`elements`), by its type's OID: the types `row` reads, but
    /// `numeric`, which the store's packed queries never answer.
    private static func elementValue(type: UInt32, length: Int, _ buffer: inout ByteBuffer) -> SQLValue? {
        switch (type, length) {
        case (20, 8): return buffer.readInteger(as: Int64.self).map(SQLValue.integer)
        case (23, 4): return buffer.readInteger(as: Int32.self).map { .integer(Int64($0)) }
        case (21, 2): return buffer.readInteger(as: Int16.self).map { .integer(Int64($0)) }
        case (26, 4): return buffer.readInteger(as: UInt32.self).map { .integer(Int64($0)) }
        case (701, 8): return buffer.readInteger(as: UInt64.self).map { .real(Double(bitPattern: $0)) }
        case (700, 4): return buffer.readInteger(as: UInt32.self).map { .real(Double(Float(bitPattern: $0))) }
        case (16, 1): return buffer.readInteger(as: UInt8.self).map { .integer($0 == 0 ? 0 : 1) }
        case (17, _): return buffer.readBytes(length: length).map(SQLValue.blob)
        case (25, _), (1043, _), (1042, _), (19, _): return buffer.readString(length: length).map(SQLValue.text)
        default: return nil
        }
    }

    /// Waits for the deferred statements queued so far and throws the first one's error. The
    /// work that queued them calls it (through its batch) before it counts as done.
    func settle() throws {
        try checkDeferred(exchange(takeDeferred()))
    }

    /// The deferred statements not yet checked, which the caller now owns.
    func takeDeferred() -> [EventLoopFuture<PostgresAnswer>] {
        state.deferred.withLock { all in
            defer { all.removeAll() }
            return all
        }
    }

    /// Throws the first error among answers of deferred statements.
    func checkDeferred(_ outcomes: [Result<PostgresAnswer, any Error>]) throws {
        for outcome in outcomes {
            if case .failure(let error) = outcome { throw error }
        }
    }

    /// The answers of `futures`, each statement's own error included. When one failed because
    /// a deferred statement before it had aborted the transaction, the deferred statement's
    /// error is the one to report.
    private func answers(_ futures: [EventLoopFuture<PostgresAnswer>]) throws -> [PostgresAnswer] {
        let outcomes = exchange(futures)
        if outcomes.contains(where: { if case .failure = $0 { true } else { false } }) { try settle() }
        return try outcomes.map { try $0.get() }
    }

    /// Hands the queued statements to the connection without waiting for any answer.
    func send() {
        let outbox = Self.coalesced(state.outbox.withLock { all in
            defer { all.removeAll() }
            return all
        })
        guard !outbox.isEmpty else { return }
        state.sent.add(outbox.count, ordering: .relaxed)
        let connection = self.connection
        connection.eventLoop.execute { Self.hand(outbox, to: connection) }
    }

    /// Sends coalesced statements in their order; on the connection's event loop. A named
    /// statement whose preparation has not answered yet goes out once it has, and the
    /// statements after it wait for it to go out.
    private static func hand(_ outbox: [(statement: Statement, promises: [EventLoopPromise<PostgresAnswer>])], to connection: PostgresConnection) {
        var gate: EventLoopFuture<Void>?
        for (statement, promises) in outbox {
            var ready = gate
            if case .namedOncePrepared(let preparing, _, _, _, _) = statement {
                let prepared = preparing.map { _ in () }.recover { _ in () }
                ready = ready.map { $0.flatMap { prepared } } ?? prepared
            }
            let answer = ready.map { $0.flatMap { send(statement, to: connection) } } ?? send(statement, to: connection)
            gate = ready
            for promise in promises { answer.cascade(to: promise) }
        }
    }

    private static func run(_ prepared: PreparedQuery, _ values: [PostgresData], text: String, _ named: NamedStatements) -> EventLoopFuture<PostgresAnswer> {
        let answer = prepared.execute(values).map { PostgresAnswer(rows: $0, affectedRows: nil) }
        // One that failed is prepared anew when next wanted (a schema change that altered its
        // result's columns makes PostgreSQL refuse to run it).
        answer.whenFailure { _ in named.forget(text) }
        return answer
    }

    private static func send(_ statement: Statement, to connection: PostgresConnection) -> EventLoopFuture<PostgresAnswer> {
        switch statement {
        case .unnamed(let query):
            return connection.query(query, logger: logger).map { PostgresAnswer(rows: $0.rows, affectedRows: $0.metadata.rows) }
        case .named(let prepared, let values, let text, let named):
            return run(prepared, values, text: text, named)
        case .namedOncePrepared(let preparing, let values, let fallback, let text, let named):
            // Answered by now (`hand` waits for it).
            return preparing.map { Optional($0) }.recover { _ in nil }.flatMap { prepared in
                guard let prepared else { return send(.unnamed(fallback), to: connection) }
                return run(prepared, values, text: text, named)
            }
        }
    }

    /// Hands the queued statements to the connection and waits until `futures` (and the
    /// riders) have answered: one hop to the event loop and one wake-up of this thread,
    /// however many statements go out and come back.
    func exchange(_ futures: [EventLoopFuture<PostgresAnswer>]) -> [Result<PostgresAnswer, any Error>] {
        if !state.mayWait.load(ordering: .relaxed) { return futures.map { _ in .failure(WouldWait()) } }
        precondition(!connection.eventLoop.inEventLoop, "A PostgreSQL session must not wait on its connection's event loop.")
        guard let (all, riders) = handOver(futures) else { return [] }
        let done = DispatchSemaphore(value: 0)
        let outcomes = Mutex<[Result<PostgresAnswer, any Error>]>([])
        all.whenSuccess { results in
            outcomes.withLock { $0 = results }
            done.signal()
        }
        done.wait()
        return collect(outcomes.withLock { $0 }, riders: riders)
    }

    /// A wait the session may not make (`withoutWaits`): nothing was sent for it.
    struct WouldWait: Error {}

    /// Runs `body`, in which the session sends nothing and waits for nothing: a statement that
    /// needs an answer not yet collected throws `WouldWait` instead (on a task's thread, where
    /// blocking is not allowed). Statements whose answers are not needed are queued as usual.
    func withoutWaits<T>(_ body: () throws -> T) rethrows -> T {
        state.mayWait.store(false, ordering: .relaxed)
        defer { state.mayWait.store(true, ordering: .relaxed) }
        return try body()
    }

    /// Queues `sql` (transaction control) and hands the queue to the connection; the answer's
    /// future, which the connection's next session collects.
    func queueAndSend(_ sql: String) -> EventLoopFuture<PostgresAnswer> {
        let future = queue(sql)
        send()
        return future
    }

    /// `exchange` for a caller that must not block a thread (a task): the same single hop to
    /// the event loop, and the caller's task resumes where it waits (on its own event loop
    /// when it runs on one, as a request's task in `cairn server` does).
    func exchange(_ futures: [EventLoopFuture<PostgresAnswer>]) async throws -> [Result<PostgresAnswer, any Error>] {
        guard let (all, riders) = handOver(futures) else { return [] }
        let results: [Result<PostgresAnswer, any Error>]
        if let loop = MultiThreadedEventLoopGroup.currentEventLoop {
            results = try await all.hop(to: loop).get()
        } else {
            results = try await all.get()
        }
        return collect(results, riders: riders)
    }

    /// Hands the queued statements to the connection (one hop to its event loop) and answers
    /// the future of the riders' and `futures`' outcomes, which never fails; nil when there is
    /// nothing to send or wait for.
    private func handOver(_ futures: [EventLoopFuture<PostgresAnswer>])
        -> (all: EventLoopFuture<[Result<PostgresAnswer, any Error>]>, riders: [EventLoopFuture<PostgresAnswer>])? {
        let outbox = Self.coalesced(state.outbox.withLock { all in
            defer { all.removeAll() }
            return all
        })
        let riders = state.riders.withLock { all in
            defer { all.removeAll() }
            return all
        }
        if futures.isEmpty, riders.isEmpty, outbox.isEmpty { return nil }
        state.sent.add(outbox.count, ordering: .relaxed)
        let awaited = riders + futures
        let connection = self.connection
        let loop = connection.eventLoop
        let all = loop.makePromise(of: [Result<PostgresAnswer, any Error>].self)
        loop.execute {
            Self.hand(outbox, to: connection)
            EventLoopFuture.whenAllComplete(awaited, on: loop).cascade(to: all)
        }
        return (all.futureResult, riders)
    }

    /// Keeps the riders' outcomes for `collected(_:)` and answers the others'.
    private func collect(_ results: [Result<PostgresAnswer, any Error>], riders: [EventLoopFuture<PostgresAnswer>]) -> [Result<PostgresAnswer, any Error>] {
        if !riders.isEmpty {
            state.collected.withLock { known in
                for (rider, result) in zip(riders, results) { known.append((rider, result)) }
            }
        }
        return Array(results.dropFirst(riders.count))
    }

    static func query(_ sql: String, _ values: [SQLValue], cache: Bool) -> PostgresQuery {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .null: bindings.appendNull()
            case .integer(let n): bindings.append(n)
            case .real(let d): bindings.append(d)
            case .text(let s): bindings.append(s)
            case .blob(let bytes): bindings.append(ByteBuffer(bytes: bytes))
            case .array(.integers(let column)): bindings.append(column)
            case .array(.reals(let column)): bindings.append(column)
            case .array(.blobs(let column)): bindings.append(column.map { ByteBuffer(bytes: $0) })
            case .array(.texts(let column)): bindings.append(column)
            }
        }
        return PostgresQuery(unsafeSQL: numbered(sql, cache: cache), binds: bindings)
    }

    /// The type a value is bound as (the driver declares it in the statement's Parse), for the
    /// text of a named statement, which PostgreSQL prepares without declared types; nil for
    /// NULL, whose type PostgreSQL infers as it does for the unnamed statement.
    static func typeName(_ value: SQLValue) -> String? {
        switch value {
        case .null: nil
        case .integer: "int8"
        case .real: "float8"
        case .text: "text"
        case .blob: "bytea"
        case .array(.integers): "int8[]"
        case .array(.reals): "float8[]"
        case .array(.blobs): "bytea[]"
        case .array(.texts): "text[]"
        }
    }

    /// A value for a named statement's Bind, in the binary form and of the type `query` binds it with.
    static func data(_ value: SQLValue) -> PostgresData {
        func encoded<T: PostgresEncodable>(_ value: T) -> PostgresData {
            var buffer = ByteBuffer()
            // Integers, floats, strings, bytes and arrays of them encode without failing.
            try? value.encode(into: &buffer, context: .default)
            return PostgresData(type: T.psqlType, formatCode: .binary, value: buffer)
        }
        switch value {
        case .null: return PostgresData(type: .null, formatCode: .binary, value: nil)
        case .integer(let n): return encoded(n)
        case .real(let d): return encoded(d)
        case .text(let s): return encoded(s)
        case .blob(let bytes): return encoded(ByteBuffer(bytes: bytes))
        case .array(.integers(let column)): return encoded(column)
        case .array(.reals(let column)): return encoded(column)
        case .array(.blobs(let column)): return encoded(column.map { ByteBuffer(bytes: $0) })
        case .array(.texts(let column)): return encoded(column)
        }
    }

    /// `sql` with its `?` placeholders (outside quotes) numbered `$1…$n`; with `casts`, each
    /// placeholder whose cast is not nil followed by it (`$1::int8`).
    static func numbered(_ sql: String, casts: [String?]? = nil, cache: Bool) -> String {
        let key = casts.map { sql + "\u{0}" + $0.map { $0 ?? "" }.joined(separator: ",") } ?? sql
        if cache, let known = rewritten.withLock({ $0[key] }) { return known }
        // Byte by byte: the quotes and `?` are ASCII, which UTF-8 never uses inside another
        // character. (A batch's coalesced writes run to hundreds of kilobytes.)
        var out: [UInt8] = []
        out.reserveCapacity(sql.utf8.count + sql.utf8.count / 8)
        var n = 0
        var quote: UInt8?
        for byte in sql.utf8 {
            if let q = quote {
                if byte == q { quote = nil }
                out.append(byte)
            } else if byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\"") {
                quote = byte
                out.append(byte)
            } else if byte == UInt8(ascii: "?") {
                n += 1
                out.append(UInt8(ascii: "$"))
                out.append(contentsOf: String(n).utf8)
                if let casts, n <= casts.count, let cast = casts[n - 1] {
                    out.append(contentsOf: "::".utf8)
                    out.append(contentsOf: cast.utf8)
                }
            } else {
                out.append(byte)
            }
        }
        let text = String(decoding: out, as: UTF8.self)
        if cache { rewritten.withLock { $0[key] = text } }
        return text
    }

    static func row(_ row: PostgresRow) throws -> SQLRow {
        var values: [SQLValue] = []
        values.reserveCapacity(row.count)
        for cell in row {
            guard let bytes = cell.bytes else {
                values.append(.null)
                continue
            }
            if let value = fixedWidth(bytes, cell.dataType) {
                values.append(value)
                continue
            }
            let cell = binary(cell)
            switch cell.dataType {
            case .int2, .int4, .int8, .oid:
                values.append(.integer(try cell.decode(Int64.self)))
            case .float4, .float8:
                values.append(.real(try cell.decode(Double.self)))
            case .bool:
                values.append(.integer(try cell.decode(Bool.self) ? 1 : 0))
            case .bytea:
                var buffer = try cell.decode(ByteBuffer.self)
                values.append(.blob(buffer.readBytes(length: buffer.readableBytes) ?? []))
            case .numeric:
                // SUM over integers; the store's own queries never need more than Int64/Double.
                let number = try cell.decode(Decimal.self)
                let whole = NSDecimalNumber(decimal: number)
                values.append(number == Decimal(whole.int64Value) ? .integer(whole.int64Value) : .real(whole.doubleValue))
            default:
                values.append(.text(try cell.decode(String.self)))
            }
        }
        return SQLRow(values)
    }

    /// `cell` as it is: binary. postgres-nio asks PostgreSQL for every result column in binary
    /// form (its Bind), but the rows of a named statement carry the formats of the statement's
    /// Describe, which PostgreSQL answers as text before any Bind chose one.
    static func binary(_ cell: PostgresCell) -> PostgresCell {
        guard cell.format != .binary else { return cell }
        return PostgresCell(bytes: cell.bytes, dataType: cell.dataType, format: .binary, columnName: cell.columnName, columnIndex: cell.columnIndex)
    }

    /// The integers and floats of a (binary) row, read straight from their big-endian bytes: the
    /// driver's generic `decode` cost more than the rest of a row's reading on long scans
    /// (`cairn verify`). Nil for other types and for a width the type does not have (which
    /// `decode` then reports).
    static func fixedWidth(_ bytes: ByteBuffer, _ type: PostgresDataType) -> SQLValue? {
        switch (type, bytes.readableBytes) {
        case (.int8, 8): return bytes.getInteger(at: bytes.readerIndex, as: Int64.self).map { .integer($0) }
        case (.int4, 4): return bytes.getInteger(at: bytes.readerIndex, as: Int32.self).map { .integer(Int64($0)) }
        case (.int2, 2): return bytes.getInteger(at: bytes.readerIndex, as: Int16.self).map { .integer(Int64($0)) }
        case (.float8, 8): return bytes.getInteger(at: bytes.readerIndex, as: UInt64.self).map { .real(Double(bitPattern: $0)) }
        case (.float4, 4): return bytes.getInteger(at: bytes.readerIndex, as: UInt32.self).map { .real(Double(Float(bitPattern: $0))) }
        default: return nil
        }
    }
}

extension PostgresConnection {
    /// Runs statements without parameters (transaction control, DDL), one round trip each.
    /// Comments (`--` to the end of a line) are dropped and statements split at `;` outside
    /// `$$`-quoted bodies (a function's): none of Cairn's own statements contains either inside
    /// a literal.
    fileprivate func exec(_ sql: String) throws {
        let code = sql.split(separator: "\n", omittingEmptySubsequences: false)
            .map { line in line.range(of: "--").map { String(line[..<$0.lowerBound]) } ?? String(line) }
            .joined(separator: "\n")
        var statements: [String] = []
        var current = ""
        for (index, part) in code.components(separatedBy: "$$").enumerated() {
            if index > 0 { current += "$$" }
            if index % 2 == 1 {
                current += part
                continue
            }
            let pieces = part.components(separatedBy: ";")
            current += pieces[0]
            for piece in pieces.dropFirst() {
                statements.append(current)
                current = piece
            }
        }
        statements.append(current)
        for statement in statements {
            let text = statement.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else { continue }
            _ = try query(PostgresQuery(unsafeSQL: text), logger: Self.execLogger).wait()
        }
    }

    private static let execLogger = Logger(label: "cairn.postgres")

    /// Closes the connection and waits until it is closed (the driver requires that before a
    /// connection goes away); errors of an already broken connection do not matter here.
    fileprivate func closeAndWait() {
        let closed: EventLoopFuture<Void> = close()
        // Waiting on an event loop would deadlock it; there the close completes on its own.
        guard MultiThreadedEventLoopGroup.currentEventLoop == nil else { return }
        _ = try? closed.wait()
    }
}
