import CairnCore
import Foundation
import GRDB

/// The embedded default store: one SQLite file in WAL mode through a GRDB `DatabasePool`.
///
/// Reads run concurrently on the pool's readers. Writes go through `GroupCommitWriter`, which
/// runs concurrent requests in shared transactions; a request is answered after the commit.
/// How far an answered commit is durable is the `Durability` the store was opened with.
public final class SQLiteTrackingStore: TrackingStore {
    public let path: String
    public let durability: Durability
    let pool: DatabasePool
    let writer: GroupCommitWriter
    /// A shared `flock` on `<path>.lock`, held while this store is open, so that `cairn restore`
    /// can tell that a server (or another command) is using the database.
    private let useLock: Int32

    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    /// Before migrating an existing file, a copy is written next to it (`<path>.backup-<version>`).
    public init(path: String, durability: Durability = .normal) throws {
        self.path = path
        self.durability = durability
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        let synchronous = durability == .full ? "FULL" : "NORMAL"
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            // The row checks' triggers call it on every write (SQLiteIntegrity).
            db.add(function: SQLiteIntegrity.rowCheckFunction)
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
        self.writer = GroupCommitWriter(pool: pool)
    }

    deinit {
        if useLock >= 0 { _ = Glibc.close(useLock) }
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
        _ = try pool.writeWithoutTransaction { try $0.checkpoint(.truncate) }
        try pool.close()
        if useLock >= 0 { _ = flock(useLock, LOCK_UN) }
    }

    /// An online, consistent copy of the whole database (SQLite's backup API, from one read
    /// snapshot) into a new file at `destination`.
    public func backupDatabase(to destination: String) async throws {
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
                    let backup = try DatabaseQueue(path: "\(path).backup-before-\(first)")
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

    /// Runs a read-only closure on a reader connection (tests use it to look at plans).
    public func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await mapErrors { try await pool.read(body) }
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await mapErrors { try await writer.write(body) }
    }

    private func mapErrors<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as CairnError {
            throw error
        } catch let damage as DamagedSegment {
            throw CairnError(.internalError,
                             "A stored metric segment is damaged (\(damage.detail)); nothing was changed. "
                                 + "Run `cairn verify` to list all damage, then restore from a backup (`cairn restore`).")
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

    // MARK: - Experiments

    public func createExperiment(name: String, artifactLocation: String?, tags: [Tag], now: Int64) async throws -> Experiment {
        try await write { db in
            if try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM experiments WHERE name = ?"), arguments: [name]) == true {
                throw CairnError.alreadyExists("Experiment(name=\(name)) already exists. Choose another name, or use the existing experiment (an experiment's name stays taken while it is deleted).")
            }
            let nextID = try Int64.fetchOne(db.cachedStatement(sql: "SELECT COALESCE(MAX(experiment_id), 0) + 1 FROM experiments")) ?? 1
            let location = artifactLocation.flatMap { $0.isEmpty ? nil : $0 } ?? "mlflow-artifacts:/\(nextID)"
            try db.cachedStatement(sql: """
                    INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
                    VALUES (?, ?, ?, 'active', ?, ?)
                    """).execute(arguments: [nextID, name, location, now, now])
            for tag in tags {
                try db.cachedStatement(sql: "INSERT OR REPLACE INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?)").execute(arguments: [nextID, tag.key, tag.value])
            }
            return try Self.loadExperiment(db, id: nextID)
        }
    }

    public func fetchExperiment(id: Int64) async throws -> Experiment {
        try await read { db in try Self.loadExperiment(db, id: id) }
    }

    public func fetchExperiment(name: String) async throws -> Experiment? {
        try await read { db in
            guard let id = try Int64.fetchOne(db.cachedStatement(sql: "SELECT experiment_id FROM experiments WHERE name = ?"), arguments: [name]) else {
                return nil
            }
            return try Self.loadExperiment(db, id: id)
        }
    }

    public func renameExperiment(id: Int64, newName: String, now: Int64) async throws {
        try await write { db in
            try Self.requireActive(Self.loadExperiment(db, id: id))
            if let other = try Int64.fetchOne(db.cachedStatement(sql: "SELECT experiment_id FROM experiments WHERE name = ?"), arguments: [newName]), other != id {
                throw CairnError.alreadyExists("Experiment(name=\(newName)) already exists. Choose another name.")
            }
            try db.cachedStatement(sql: "UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?").execute(arguments: [newName, now, id])
        }
    }

    public func setExperimentLifecycle(id: Int64, stage: LifecycleStage, now: Int64) async throws {
        try await write { db in
            _ = try Self.loadExperiment(db, id: id)
            try db.cachedStatement(sql: "UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE experiment_id = ?").execute(arguments: [stage.rawValue, now, id])
            switch stage {
            case .deleted:
                try db.cachedStatement(sql: "UPDATE runs SET lifecycle_stage = 'deleted', deleted_with_experiment = 1 WHERE experiment_id = ? AND lifecycle_stage = 'active'").execute(arguments: [id])
            case .active:
                try db.cachedStatement(sql: "UPDATE runs SET lifecycle_stage = 'active', deleted_with_experiment = 0 WHERE experiment_id = ? AND deleted_with_experiment = 1").execute(arguments: [id])
            }
        }
    }

    public func setExperimentTag(id: Int64, tag: Tag, now: Int64) async throws {
        try await write { db in
            try Self.requireActive(Self.loadExperiment(db, id: id))
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?)").execute(arguments: [id, tag.key, tag.value])
            try db.cachedStatement(sql: "UPDATE experiments SET last_update_time = ? WHERE experiment_id = ?").execute(arguments: [now, id])
        }
    }

    public func deleteExperimentTag(id: Int64, key: String, now: Int64) async throws {
        try await write { db in
            try Self.requireActive(Self.loadExperiment(db, id: id))
            try db.cachedStatement(sql: "DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?").execute(arguments: [id, key])
            if db.changesCount == 0 {
                throw CairnError.notFound("No tag with key '\(key)' on experiment \(id).")
            }
            try db.cachedStatement(sql: "UPDATE experiments SET last_update_time = ? WHERE experiment_id = ?").execute(arguments: [now, id])
        }
    }

    public func searchExperiments(_ search: ExperimentSearch) async throws -> (items: [Experiment], hasMore: Bool) {
        let query = try SQLiteSearchSQL.experimentQuery(search)
        return try await read { db in
            var ids = try Int64.fetchAll(db, sql: query.sql, arguments: query.arguments)
            let hasMore = ids.count > search.maxResults
            if hasMore { ids.removeLast() }
            return (try ids.map { try Self.loadExperiment(db, id: $0) }, hasMore)
        }
    }

    static func requireActive(_ experiment: Experiment) throws {
        if experiment.lifecycleStage != .active {
            throw CairnError.invalidParameter("The experiment \(experiment.experimentID) must be in the 'active' state to be changed, but it is deleted. Restore it first.")
        }
    }

    static func loadExperiment(_ db: Database, id: Int64) throws -> Experiment {
        guard let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT name, artifact_location, lifecycle_stage, creation_time, last_update_time FROM experiments WHERE experiment_id = ?"),
            arguments: [id])
        else {
            throw CairnError.notFound("No experiment with id \(id) exists. List experiments to find the right id.")
        }
        let tags = try Row.fetchAll(db.cachedStatement(sql: "SELECT key, value FROM experiment_tags WHERE experiment_id = ? ORDER BY key"), arguments: [id])
            .map { Tag($0[0], $0[1]) }
        return Experiment(
            experimentID: String(id), name: row[0], artifactLocation: row[1],
            lifecycleStage: LifecycleStage(rawValue: row[2]) ?? .active,
            creationTime: row[3], lastUpdateTime: row[4], tags: tags)
    }
}
