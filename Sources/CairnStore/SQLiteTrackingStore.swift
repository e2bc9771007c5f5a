import CairnCore
import Foundation
import GRDB
import NIOPosix
import Synchronization

/// The embedded default store: one SQLite file in WAL mode through a GRDB `DatabasePool`.
///
/// Reads run concurrently on the pool's readers. Writes go through `GroupCommitWriter`, which
/// runs concurrent requests in shared transactions; a request is answered after the commit.
/// How far an answered commit is durable is the `Durability` the store was opened with.
///
/// The one write batch in flight runs on the thread of the task that leads it, through GRDB's
/// synchronous API: skipping the hop to GRDB's writer queue and back saved 10–20 % of the
/// server's CPU per write (create-run 0.43 → 0.385 ms, one-point log-metric 0.42 → 0.335 ms,
/// 1,000-point log-batch 1.25 → 1.0 ms on 2 cores), and a batch is short. Reads stay on GRDB's
/// reader threads: one may take a second (a chart of millions of points), and on the task
/// pool's few threads it would hold back every other request meanwhile.
public final class SQLiteTrackingStore: SQLStore, @unchecked Sendable {
    public let path: String
    public let durability: Durability
    let sqlite: SQLiteBackend

    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    /// Before migrating an existing file, a copy is written next to it (`<path>.backup-<version>`).
    public init(path: String, durability: Durability = .normal) throws {
        self.path = path
        self.durability = durability
        let backend = try SQLiteBackend(path: path, durability: durability)
        self.sqlite = backend
        super.init(backend: backend)
    }

    /// What an acknowledged write survives. In WAL mode SQLite's `synchronous = NORMAL` writes
    /// each commit to the write-ahead log before answering but syncs the log to disk only at
    /// checkpoints; `FULL` also fsyncs the log at every commit.
    public enum Durability: String, Sendable, CaseIterable {
        /// Survives a crash or `kill -9` of the server process (the operating system still
        /// holds the log); the last commits can be lost if the machine itself loses power.
        case normal
        /// Also survives power loss and operating-system crashes: every commit is fsynced
        /// before it is answered (as far as the disk honours fsync).
        case full
    }

    /// Runs `body` while no process has the database at `path` open as a store (a running
    /// server, or a command such as `cairn verify`), holding an exclusive lock that keeps new
    /// ones from opening it meanwhile. `cairn restore` replaces the file this way.
    public static func withExclusiveUse<T>(path: String, _ body: () throws -> T) throws -> T {
        let lock = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lock >= 0 else {
            throw CairnError(.internalError, "Cannot open '\(path).lock': \(String(cString: strerror(errno))).")
        }
        defer { _ = Glibc.close(lock) }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            throw CairnError(.invalidState, "The database '\(path)' is in use by a running `cairn server` or another cairn command. Stop it first, then run this again.")
        }
        return try body()
    }

    /// Closes the database now (a checkpoint folds the write-ahead log into the file) instead
    /// of when the last reference goes away. The store must not be used afterwards.
    public func close() throws {
        try sqlite.close()
    }

    /// Runs a read-only closure on a GRDB reader connection (tests use it to look at plans).
    public func readSQLite<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await sqlite.mapErrors { try await sqlite.pool.read(body) }
    }
}

/// SQLite through GRDB: the pool, the group-commit writer, migrations, and SQLite's own
/// integrity check and backup.
final class SQLiteBackend: SQLBackend {
    let path: String
    let pool: DatabasePool
    private let writer: GroupCommitWriter
    /// A shared `flock` on `<path>.lock`, held while this store is open, so that `cairn restore`
    /// can tell that a server (or another command) is using the database.
    private let useLock: Int32

    var dialect: SQLDialect { .sqlite }

    init(path: String, durability: SQLiteTrackingStore.Durability) throws {
        self.path = path
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        let synchronous = durability == .full ? "FULL" : "NORMAL"
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            // The row checks' triggers call it on every write (SQLiteIntegrity).
            db.add(function: SQLiteIntegrity.rowCheckFunction)
            db.add(function: SQLiteRegexp.function)
            db.add(function: SQLitePercentile.function)
        }
        let lock = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if lock >= 0 { _ = flock(lock, LOCK_SH) }
        self.useLock = lock
        let pool: DatabasePool
        do {
            pool = try Self.openAndMigrate(path: path, configuration: configuration)
        } catch {
            if lock >= 0 { _ = Glibc.close(lock) }
            throw error
        }
        self.pool = pool
        self.writer = GroupCommitWriter { works, _, _ in Self.transact(pool, works) }
    }

    deinit {
        if useLock >= 0 { _ = Glibc.close(useLock) }
    }

    func close() throws {
        _ = try pool.writeWithoutTransaction { try $0.checkpoint(.truncate) }
        try pool.close()
        if useLock >= 0 { _ = flock(useLock, LOCK_UN) }
    }

    /// A read runs on the calling thread, on a reader connection (in a deferred transaction, so
    /// it sees one snapshot), like the writes' batches. GRDB's asynchronous read would send it
    /// to the reader's queue and back: two thread wake-ups per request, more than a small read
    /// costs. `cairn server` runs requests on NIO's event loops (Cairn.main), so a long read
    /// delays the other connections of its loop, as it would delay the tasks of Swift's pool.
    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await mapErrors { try Self.readHere(pool, body) }
    }

    private static func readHere<T>(_ pool: DatabasePool, _ body: (any SQLSession) throws -> T) throws -> T {
        try pool.read { db in try body(GRDBSession(db)) }
    }

    /// The reads on NIO's blocking thread pool (a thread per core), each on a reader connection
    /// of its own. Not child tasks reading on their own threads: in `cairn server` the tasks run
    /// on the event loops, and a child task stays on its parent's loop, so they would read one
    /// after the other.
    func readConcurrently<T: Sendable>(_ bodies: [@Sendable (any SQLSession) throws -> T]) async throws -> [T] {
        let pool = self.pool
        return try await mapErrors {
            try await withThrowingTaskGroup(of: (Int, T).self) { group in
                for (index, body) in bodies.enumerated() {
                    group.addTask { (index, try await NIOThreadPool.singleton.runIfActive { try Self.readHere(pool, body) }) }
                }
                return try await Self.inOrder(&group, count: bodies.count)
            }
        }
    }

    /// `readAhead` is not used: SQLite reads in process, where a read sent early saves nothing.
    func write<T: Sendable>(readAhead: ReadAhead?, readsNothingElse: Bool, _ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await mapErrors { try await writer.write(body) }
    }

    /// One batch of the group commit: one write transaction on the writer connection, each
    /// work in its own savepoint, on the thread of the task that leads the batch.
    private static func transact(_ pool: DatabasePool, _ works: [GroupCommitWriter.Work]) -> [GroupCommitWriter.Outcome] {
        // A full disk inside one request's savepoint makes SQLite roll back the whole shared
        // transaction; the commit then fails with "aborted". Every request of the batch is told
        // the real reason (the disk is full), not the abort that followed from it.
        let diskFull = Mutex<(any Error)?>(nil)
        do {
            return try pool.write { db in
                let session = GRDBSession(db)
                return works.map { work in
                    do {
                        var value: (any Sendable)?
                        try db.inSavepoint {
                            value = try work(session)
                            return .commit
                        }
                        return .success(value!)
                    } catch {
                        if let database = error as? DatabaseError, database.resultCode == .SQLITE_FULL {
                            diskFull.withLock { $0 = $0 ?? database }
                        }
                        return .failure(error)
                    }
                }
            }
        } catch {
            let reason = diskFull.withLock { $0 } ?? error
            return works.map { _ in .failure(reason) }
        }
    }

    func checkIntegrity(progress: ProgressReport?) async throws -> IntegrityReport {
        try await mapErrors {
            try await pool.read { db in
                var report = try SQLiteIntegrity.check(db, progress: progress)
                try SQLStore.checkSegments(GRDBSession(db), into: &report, progress: progress)
                return report
            }
        }
    }

    /// An online, consistent copy of the whole database (SQLite's backup API, from one read
    /// snapshot) into a new file at `destination`.
    func backupDatabase(to destination: String) async throws {
        try await mapErrors {
            let copy = try DatabaseQueue(path: destination)
            try pool.backup(to: copy)
            try copy.close()
        }
    }

    /// Opens the pool and migrates it; a file that is not a Cairn database, one written by a
    /// newer Cairn, or one SQLite cannot read is refused with a one-line `CairnError`.
    private static func openAndMigrate(path: String, configuration: Configuration) throws -> DatabasePool {
        do {
            let existed = FileManager.default.fileExists(atPath: path)
            let pool = try DatabasePool(path: path, configuration: configuration)
            let migrator = SQLiteMigrations.makeMigrator()
            if existed {
                let (applied, tables) = try pool.read { db in
                    (try migrator.appliedIdentifiers(db), try String.fetchAll(db, sql: """
                        SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'grdb_migrations' ORDER BY name
                        """))
                }
                let unknown = applied.subtracting(migrator.migrations)
                if !unknown.isEmpty {
                    throw CairnError(.invalidState, "It was written by a newer version of Cairn (schema \(unknown.sorted().joined(separator: ", ")) is unknown to this one). Run that version, or open a backup made before it.")
                }
                if applied.isEmpty, !tables.isEmpty {
                    throw CairnError(.invalidState, "It is not a Cairn database: it holds tables (\(tables.prefix(5).joined(separator: ", "))\(tables.count > 5 ? ", …" : "")) but no Cairn schema. MLflow's own SQLite database cannot be opened; give a new file or a Cairn database.")
                }
                let pending = migrator.migrations.filter { !applied.contains($0) }
                if !applied.isEmpty, let first = pending.first {
                    // On a large store the copy and the migrations take minutes: say so, once,
                    // before the silence (measured: a 6 GB store with 1,000,000 runs, ~1 minute
                    // to copy and ~5.5 minutes to migrate 0019).
                    let backupPath = "\(path).backup-before-\(first)"
                    FileHandle.standardError.write(Data("""
                        Upgrading the database \(path) (\(pending.count) schema migration\(pending.count == 1 ? "" : "s"): \(pending.joined(separator: ", "))). \
                        A copy of it is written first to \(backupPath). On a large store this takes minutes; do not stop the process.\n
                        """.utf8))
                    let backup = try DatabaseQueue(path: backupPath)
                    try pool.backup(to: backup)
                }
            }
            try migrator.migrate(pool)
            return pool
        } catch let error as DatabaseError {
            // GRDB's description carries the statement, several lines of SQL; the message is enough.
            throw CairnError(.invalidState, "SQLite error \(error.resultCode.rawValue): \(error.message ?? "\(error.resultCode)"). Check that it is a Cairn SQLite file and that its folder is writable.", cause: error)
        }
    }

    func mapErrors<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as CairnError {
            throw error
        } catch let damage as SQLStore.DamagedSegment {
            throw SQLStore.damagedSegmentError(damage)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_FULL
                    || (error.resultCode == .SQLITE_IOERR && (error.message ?? "").contains("No space")) {
            throw CairnError(.temporarilyUnavailable,
                             "Storage is full: the disk holding the database ('\((path as NSString).deletingLastPathComponent)') has no space left; "
                                 + "nothing of this request was stored. Free space on that disk; Cairn resumes by itself, no restart needed.",
                             cause: error)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
            throw CairnError(.temporarilyUnavailable, "The database is busy with another process; retry the request.", cause: error)
        } catch {
            throw CairnError(.internalError, "The database failed: \(error)", cause: error)
        }
    }
}

/// A GRDB connection as an `SQLSession`. Fixed statements stay prepared in GRDB's statement
/// cache; search statements are prepared for one use.
struct GRDBSession: SQLSession {
    let db: Database

    init(_ db: Database) {
        self.db = db
    }

    var dialect: SQLDialect { .sqlite }

    @discardableResult
    func run(_ sql: String, _ values: [SQLValue], cache: Bool) throws -> Int {
        let statement = cache ? try db.cachedStatement(sql: sql) : try db.makeStatement(sql: sql)
        try statement.execute(arguments: Self.arguments(values))
        return db.changesCount
    }

    func each(_ sql: String, _ values: [SQLValue], cache: Bool, _ body: (SQLRow) throws -> Void) throws {
        let statement = cache ? try db.cachedStatement(sql: sql) : try db.makeStatement(sql: sql)
        let cursor = try Row.fetchCursor(statement, arguments: Self.arguments(values))
        while let row = try cursor.next() {
            var values: [SQLValue] = []
            values.reserveCapacity(row.count)
            for value in row.databaseValues {
                switch value.storage {
                case .null: values.append(.null)
                case .int64(let n): values.append(.integer(n))
                case .double(let d): values.append(.real(d))
                case .string(let s): values.append(.text(s))
                case .blob(let data): values.append(.blob([UInt8](data)))
                }
            }
            try body(SQLRow(values))
        }
    }

    func eachBlob(_ sql: String, _ values: [SQLValue], _ body: (UnsafeRawBufferPointer?, Int64, Int64) throws -> Void) throws {
        let cursor = try Row.fetchCursor(try db.cachedStatement(sql: sql), arguments: Self.arguments(values))
        while let row = try cursor.next() {
            let first: Int64 = row[1]
            let second: Int64 = row[2]
            try row.withUnsafeData(atIndex: 0) { data in
                guard let data else { return try body(nil, first, second) }
                try data.withUnsafeBytes { try body($0, first, second) }
            }
        }
    }

    /// Built through GRDB's initializer for optional existentials: its other one, for a
    /// sequence of one concrete type, is not specialized across modules and builds a key path
    /// and looks up type metadata by name on every call (4–5 % of a log-metric's CPU).
    static func arguments(_ values: [SQLValue]) -> StatementArguments {
        StatementArguments(values.map { value -> (any DatabaseValueConvertible)? in
            switch value {
            case .null: return DatabaseValue.null
            case .integer(let n): return n.databaseValue
            case .real(let d): return d.databaseValue
            case .text(let s): return s.databaseValue
            case .blob(let bytes): return Data(bytes).databaseValue
            case .array: preconditionFailure("SQLite binds no arrays: array parameters are PostgreSQL's (SQLValue.array)")
            }
        })
    }
}
