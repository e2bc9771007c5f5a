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
///   cluster-wide advisory lock, so write transactions of all replicas run one at a time, in
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
/// (or `postgres://`), with `sslmode` as libpq spells it. `description` never shows the
/// password.
public struct PostgresLocation: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var sslMode: SSLMode

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
        for item in components.queryItems ?? [] where item.name == "sslmode" {
            switch item.value ?? "" {
            case "disable", "allow": sslMode = .disable
            case "prefer": sslMode = .prefer
            case "require", "verify-ca", "verify-full": sslMode = .require
            default:
                throw CairnError.invalidParameter("Invalid sslmode '\(item.value ?? "")' in the PostgreSQL URI: use disable, prefer or require.")
            }
        }
        self.init(host: host, port: components.port ?? 5432,
                  username: components.user.map { $0.removingPercentEncoding ?? $0 } ?? ProcessInfo.processInfo.environment["PGUSER"] ?? "postgres",
                  password: components.password.map { $0.removingPercentEncoding ?? $0 } ?? ProcessInfo.processInfo.environment["PGPASSWORD"],
                  database: database.removingPercentEncoding ?? database, sslMode: sslMode)
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
/// threads of their own, one connection per thread; the one write batch in flight runs on the
/// task that leads it (see `transact`). The server's event loops are never blocked.
final class PostgresBackend: SQLBackend {
    let location: PostgresLocation
    private let primary: PostgresConnectionPool
    private let replica: PostgresConnectionPool?
    private let threads: NIOThreadPool
    private let writer: GroupCommitWriter
    /// Acknowledged writes of this replica, and the count at which it next refreshes the planner
    /// statistics of the search tables (see `noteWrite`).
    private let writes = Atomic<Int>(0)
    private let nextAnalyze = Atomic<Int>(500)

    var dialect: SQLDialect { .postgres }

    /// The key of the advisory lock every write transaction takes (the bytes of "cairnwr").
    static let writeLockKey: Int64 = 0x63_61_69_72_6e_77_72
    /// The key of the advisory lock held while migrating ("cairnmg").
    static let migrationLockKey: Int64 = 0x63_61_69_72_6e_6d_67

    init(location: PostgresLocation, poolSize: Int, readReplica: PostgresLocation?) throws {
        self.location = location
        let size = max(2, poolSize)
        let configuration = try location.configuration()
        primary = PostgresConnectionPool(name: location.description, configuration: configuration)
        replica = try readReplica.map { PostgresConnectionPool(name: $0.description, configuration: try $0.configuration()) }
        threads = NIOThreadPool(numberOfThreads: size)
        threads.start()
        let primary = self.primary
        let threads = self.threads
        writer = GroupCommitWriter { works in
            // The batch blocks its thread while statements travel to PostgreSQL, whose answers
            // arrive on NIO's event loops. `cairn server` runs tasks on those event loops (Cairn.main),
            // and an event loop must never wait for itself: there the batch moves to the store's
            // threads; elsewhere (the CLI, tests) it runs on the task's own thread.
            guard MultiThreadedEventLoopGroup.currentEventLoop != nil else { return Self.transact(primary, works) }
            do {
                return try await threads.runIfActive { Self.transact(primary, works) }
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

    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        let pool = replica ?? primary
        let location = self.location
        do {
            return try await threads.runIfActive {
                try pool.withConnection(leavingPending: { connection in
                    // Transaction control is pipelined: sent without waiting for its answer (the
                    // connection runs statements in order), so a read costs no extra round trips.
                    // The COMMIT of a read-only transaction that read everything it asked for
                    // changes nothing and cannot fail but with the connection: the answer goes out
                    // without waiting for it, and the connection's next user waits (see the pool).
                    let begun = connection.send("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    do {
                        let session = PostgresSession(connection)
                        let value = try body(session)
                        try session.settle()
                        try begun.wait()
                        return (value, connection.send("COMMIT"))
                    } catch {
                        try? connection.exec("ROLLBACK")
                        throw error
                    }
                })
            }
        } catch {
            throw Self.mapError(error, location: location)
        }
    }

    /// The primary (which every write needs) and the read replica, if any.
    func ping() async throws {
        let location = self.location
        for pool in [primary] + (replica.map { [$0] } ?? []) {
            do {
                try await threads.runIfActive {
                    try pool.withConnection { connection in try connection.exec("SELECT 1") }
                }
            } catch {
                throw Self.mapError(error, location: location)
            }
        }
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        let value: T
        do {
            value = try await writer.write(body)
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

    /// One batch of the group commit: one transaction under the cluster-wide write lock, each
    /// work in its own savepoint (a lone work needs none: its failure rolls back the whole).
    ///
    /// The batch blocks the thread that runs it while the statements travel: the leading task's
    /// own thread in the CLI and the tests, one of the store's threads in `cairn server`, whose
    /// tasks run on the event loops (see `init`). The group commit has one batch in flight at a
    /// time, so writes hold at most one thread.
    private static func transact(_ pool: PostgresConnectionPool, _ works: [GroupCommitWriter.Work]) -> [GroupCommitWriter.Outcome] {
        do {
            return try pool.withConnection { connection -> [GroupCommitWriter.Outcome] in
                do {
                    return try runBatch(connection, works)
                } catch {
                    // Never hand a connection back inside a transaction (ROLLBACK outside one
                    // only warns); a broken connection is dropped by the pool instead.
                    try? connection.exec("ROLLBACK")
                    throw error
                }
            }
        } catch {
            return works.map { _ in .failure(error) }
        }
    }

    /// BEGIN, the lock and the savepoints are pipelined (sent without waiting; the connection
    /// runs them in order); every one of them is checked before the batch is answered, and if
    /// any failed the transaction was aborted, so COMMIT rolled it back and the whole batch
    /// fails: nothing is acknowledged unless everything in it committed.
    private static func runBatch(_ connection: PostgresConnection, _ works: [GroupCommitWriter.Work]) throws -> [GroupCommitWriter.Outcome] {
        var control = [connection.send("BEGIN"), connection.send("SELECT pg_advisory_xact_lock(\(writeLockKey))")]
        let session = PostgresSession(connection, auditChain: AuditChainState())
        // The audit chain's head, read under the lock and pipelined with it: the first work that
        // appends an event takes the answer, which has arrived by then.
        let head = connection.query(PostgresSession.query(SQLStore.auditHeadQuery, [], cache: true), logger: PostgresSession.logger)
        control.append(head.map { _ in })
        session.auditChain?.prefetched = { try head.wait().rows.first.map(PostgresSession.row) }
        var outcomes: [GroupCommitWriter.Outcome] = []
        // A work is done once its deferred statements have answered too.
        func run(_ work: GroupCommitWriter.Work) throws -> any Sendable {
            do {
                let value = try work(session)
                try session.settle()
                return value
            } catch {
                try? session.settle()
                throw error
            }
        }
        if works.count == 1 {
            // A lone work's COMMIT goes out right behind its deferred statements, so the batch
            // waits for their answers and the commit's together (one round trip fewer). If one
            // of them failed, the transaction was aborted and that COMMIT rolled it back.
            let value: any Sendable
            do {
                value = try works[0](session)
            } catch {
                try? session.settle()
                try? connection.exec("ROLLBACK")
                session.auditChain?.forget()
                return [.failure(error)]
            }
            let commit = connection.send("COMMIT")
            do {
                try session.settle()
            } catch {
                _ = try? commit.wait()
                session.auditChain?.forget()
                return [.failure(error)]
            }
            control.append(commit)
            for statement in control { try statement.wait() }
            return [.success(value)]
        } else {
            for work in works {
                control.append(connection.send("SAVEPOINT work"))
                do {
                    let value = try run(work)
                    control.append(connection.send("RELEASE SAVEPOINT work"))
                    outcomes.append(.success(value))
                } catch {
                    // A lost connection cannot roll back to the savepoint: the whole batch then
                    // fails, and nothing was committed.
                    try connection.exec("ROLLBACK TO SAVEPOINT work")
                    control.append(connection.send("RELEASE SAVEPOINT work"))
                    // Its event was rolled back too: the next work reads the head again.
                    session.auditChain?.forget()
                    outcomes.append(.failure(error))
                }
            }
        }
        control.append(connection.send("COMMIT"))
        for statement in control { try statement.wait() }
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
    /// lock migrates, the others wait for it and then find nothing left to do.
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
        try connection.exec("CREATE TABLE IF NOT EXISTS cairn_migrations (identifier TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)")
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
                if migration.identifier == "0009_trace_span_index" { try SQLStore.indexAllSpans(session) }
                try session.execute("INSERT INTO cairn_migrations (identifier, applied_at) VALUES (?, ?)",
                                    [migration.identifier, Int64(Date().timeIntervalSince1970 * 1000)])
                try connection.exec("COMMIT")
            } catch {
                try? connection.exec("ROLLBACK")
                throw error
            }
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
            switch state {
            case "28P01", "28000":
                return CairnError(.invalidState, "PostgreSQL at \(location.host):\(location.port) refused the login of user '\(location.username)': \(message). Check the user and password in --backend-store-uri.", cause: error)
            case "3D000":
                return CairnError(.invalidState, "PostgreSQL at \(location.host):\(location.port) has no database '\(location.database)'. Create it (`CREATE DATABASE \(location.database)`) or name an existing one in --backend-store-uri.", cause: error)
            case "2201B":
                // An RLIKE pattern PostgreSQL's regular expressions refuse (MLflow on PostgreSQL: 400).
                return CairnError(.badRequest, "Invalid regular expression: \(message).", cause: error)
            case "53100":
                return CairnError(.temporarilyUnavailable, "Storage is full: PostgreSQL has no disk space left; nothing of this request was stored. Free space on the database server; Cairn resumes by itself.", cause: error)
            case _ where state.hasPrefix("08") || state.hasPrefix("57P") || state == "40001" || state == "40P01" || state == "55P03":
                return unavailable(location, cause: error)
            default:
                break
            }
            switch error.code {
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed, .sslUnsupported, .failedToAddSSLHandler:
                return unavailable(location, cause: error)
            default:
                return CairnError(.internalError, "The database failed: \(state.isEmpty ? "\(error.code)" : "\(state) \(message)")", cause: error)
            }
        }
        if error is ChannelError || error is IOError || error is NIOConnectionError {
            return unavailable(location, cause: error)
        }
        return CairnError(.internalError, "The database failed: \(error)", cause: error)
    }

    private static func unavailable(_ location: PostgresLocation, cause: any Error) -> CairnError {
        CairnError(.temporarilyUnavailable, "The PostgreSQL database at \(location.host):\(location.port) is unreachable or restarting; nothing of this request was stored. Retry shortly; Cairn reconnects by itself.", cause: cause)
    }
}

/// Connections to one PostgreSQL server, used one at a time each, from the backend's threads.
/// A connection is opened when no idle one is left and dropped when it breaks, so the store
/// recovers by itself once the database is reachable again.
final class PostgresConnectionPool: Sendable {
    let name: String
    private let configuration: PostgresConnection.Configuration
    /// Idle connections, each with the statement it was handed back behind (a read's COMMIT),
    /// whose answer its next user waits for.
    private let idle = Mutex<[(connection: PostgresConnection, pending: EventLoopFuture<Void>?)]>([])
    private let nextID = Atomic<Int>(0)
    private let isClosed = Atomic<Bool>(false)
    private let logger = Logger(label: "cairn.postgres")

    init(name: String, configuration: PostgresConnection.Configuration) {
        self.name = name
        self.configuration = configuration
    }

    /// Runs `body` on a connection (from a thread that may block, never an event loop).
    func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try withConnection(leavingPending: { connection in (try body(connection), nil) })
    }

    /// `withConnection` for a body that ends with a statement whose answer it need not wait
    /// for (`pending`): the connection goes back to the pool at once, and its next user waits
    /// for that answer first (it has almost always arrived by then); if that statement failed,
    /// the connection is dropped.
    func withConnection<T>(leavingPending body: (PostgresConnection) throws -> (T, pending: EventLoopFuture<Void>?)) throws -> T {
        let connection = try acquire()
        do {
            let (value, pending) = try body(connection)
            release(connection, pending: pending)
            return value
        } catch {
            if connection.isClosed {
                connection.closeAndWait()
            } else {
                release(connection, pending: nil)
            }
            throw error
        }
    }

    private func acquire() throws -> PostgresConnection {
        while let (connection, pending) = idle.withLock({ $0.popLast() }) {
            if let pending {
                do {
                    try pending.wait()
                } catch {
                    connection.closeAndWait()
                    continue
                }
            }
            if !connection.isClosed { return connection }
        }
        let id = nextID.add(1, ordering: .relaxed).newValue
        return try PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration,
                                              id: id, logger: logger).wait()
    }

    /// Back to the idle list; once the pool is closed, a connection still out (a background
    /// ANALYZE, say) is closed when it comes back instead.
    private func release(_ connection: PostgresConnection, pending: EventLoopFuture<Void>?) {
        let kept = idle.withLock { all -> Bool in
            guard !isClosed.load(ordering: .acquiring) else { return false }
            all.append((connection, pending))
            return true
        }
        if !kept { connection.closeAndWait() }
    }

    func closeAll() {
        let connections = idle.withLock { all -> [PostgresConnection] in
            isClosed.store(true, ordering: .releasing)
            defer { all.removeAll() }
            return all.map(\.connection)
        }
        for connection in connections { connection.closeAndWait() }
    }
}

/// A PostgreSQL connection as an `SQLSession`: `?` placeholders become `$1…$n` (the rewritten
/// text of the store's fixed statements is kept), values are bound, rows come back as
/// `SQLValue`s by column type.
struct PostgresSession: SQLSession {
    let connection: PostgresConnection
    /// Deferred statements sent and not yet checked (see `runDeferred` and `settle`).
    private let deferred = Deferred()
    let auditChain: AuditChainState?
    static let logger = Logger(label: "cairn.postgres")
    private static let rewritten = Mutex<[String: String]>([:])

    private final class Deferred: Sendable {
        let sent = Mutex<[EventLoopFuture<PostgresQueryResult>]>([])
    }

    init(_ connection: PostgresConnection, auditChain: AuditChainState? = nil) {
        self.connection = connection
        self.auditChain = auditChain
    }

    var dialect: SQLDialect { .postgres }

    @discardableResult
    func run(_ sql: String, _ values: [SQLValue], cache: Bool) throws -> Int {
        let result = try answer(connection.query(Self.query(sql, values, cache: cache), logger: Self.logger))
        return result.metadata.rows ?? 0
    }

    func each(_ sql: String, _ values: [SQLValue], cache: Bool, _ body: (SQLRow) throws -> Void) throws {
        let result = try answer(connection.query(Self.query(sql, values, cache: cache), logger: Self.logger))
        for row in result.rows {
            try body(Self.row(row))
        }
    }

    func runDeferred(_ sql: String, _ values: [SQLValue]) throws {
        let future = connection.query(Self.query(sql, values, cache: true), logger: Self.logger)
        deferred.sent.withLock { $0.append(future) }
    }

    func rows(of queries: [(sql: String, values: [SQLValue])]) throws -> [[SQLRow]] {
        let sent = queries.map { connection.query(Self.query($0.sql, $0.values, cache: true), logger: Self.logger) }
        return try sent.map { future in try answer(future).rows.map(Self.row) }
    }

    /// Each query as one row of one array per column (`packed`), read straight into `SQLRow`s
    /// (`unpack`): one `DataRow` message per query instead of one per row.
    func packedRows(of queries: [PackedQuery]) throws -> [[SQLRow]] {
        let sent = queries.map { connection.query(Self.query(Self.packed($0.sql, columns: $0.columns), $0.values, cache: true), logger: Self.logger) }
        return try zip(sent, queries).map { future, query in
            guard let row = try answer(future).rows.first else { return [] }
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

    /// The one row of `sql`, whose columns are the arrays of several `packed` queries of
    /// `columns` columns each, one after the other, as each query's rows.
    func packedColumns(_ sql: String, _ values: [SQLValue], columns: [Int]) throws -> [[SQLRow]] {
        guard let row = try answer(connection.query(Self.query(sql, values, cache: false), logger: Self.logger)).rows.first else {
            return columns.map { _ in [] }
        }
        return try Self.unpack(row, columns)
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

    /// Waits for the deferred statements sent so far and throws the first one's error. The
    /// work that sent them calls it (through its batch) before it counts as done.
    func settle() throws {
        let sent = deferred.sent.withLock { all in
            defer { all.removeAll() }
            return all
        }
        var firstError: (any Error)?
        for future in sent {
            do { _ = try future.wait() } catch { firstError = firstError ?? error }
        }
        if let firstError { throw firstError }
    }

    /// The answer of a statement sent after the deferred ones. When it failed because a
    /// deferred statement before it had aborted the transaction, the deferred statement's
    /// error is the one to report.
    private func answer(_ future: EventLoopFuture<PostgresQueryResult>) throws -> PostgresQueryResult {
        do {
            return try future.wait()
        } catch {
            try settle()
            throw error
        }
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
            }
        }
        return PostgresQuery(unsafeSQL: numbered(sql, cache: cache), binds: bindings)
    }

    /// `sql` with its `?` placeholders (outside quotes) numbered `$1…$n`.
    static func numbered(_ sql: String, cache: Bool) -> String {
        if cache, let known = rewritten.withLock({ $0[sql] }) { return known }
        var out = ""
        out.reserveCapacity(sql.utf8.count + 16)
        var n = 0
        var quote: Character?
        for ch in sql {
            if let q = quote {
                if ch == q { quote = nil }
                out.append(ch)
            } else if ch == "'" || ch == "\"" {
                quote = ch
                out.append(ch)
            } else if ch == "?" {
                n += 1
                out += "$\(n)"
            } else {
                out.append(ch)
            }
        }
        if cache { rewritten.withLock { $0[sql] = out } }
        return out
    }

    static func row(_ row: PostgresRow) throws -> SQLRow {
        var values: [SQLValue] = []
        for cell in row {
            guard cell.bytes != nil else {
                values.append(.null)
                continue
            }
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
}

extension PostgresConnection {
    /// Runs statements without parameters (transaction control, DDL), one round trip each.
    /// Comments (`--` to the end of a line) are dropped and statements split at `;`: none of
    /// Cairn's own statements contains either inside a literal.
    fileprivate func exec(_ sql: String) throws {
        let code = sql.split(separator: "\n", omittingEmptySubsequences: false)
            .map { line in line.range(of: "--").map { String(line[..<$0.lowerBound]) } ?? String(line) }
            .joined(separator: "\n")
        for statement in code.components(separatedBy: ";") {
            let text = statement.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else { continue }
            _ = try query(PostgresQuery(unsafeSQL: text), logger: Self.execLogger).wait()
        }
    }

    private static let execLogger = Logger(label: "cairn.postgres")

    /// Sends one statement without parameters and answers at once: its answer (or error)
    /// comes with the future, after the statements sent before it.
    fileprivate func send(_ sql: String) -> EventLoopFuture<Void> {
        query(PostgresQuery(unsafeSQL: sql), logger: Self.execLogger).map { _ in }
    }

    /// Closes the connection and waits until it is closed (the driver requires that before a
    /// connection goes away); errors of an already broken connection do not matter here.
    fileprivate func closeAndWait() {
        let closed: EventLoopFuture<Void> = close()
        // Waiting on an event loop would deadlock it; there the close completes on its own.
        guard MultiThreadedEventLoopGroup.currentEventLoop == nil else { return }
        _ = try? closed.wait()
    }
}
