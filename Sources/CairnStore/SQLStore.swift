import CairnCore
import Foundation
import Synchronization

/// How the shared store reaches its database. A backend owns the connections and runs
/// closures written against `SQLSession`: reads on a consistent snapshot, writes through group
/// commit (acknowledged only once committed). It maps its driver's errors to `CairnError`
/// (an unreachable or full database is `TEMPORARILY_UNAVAILABLE`, answered as 503).
public protocol SQLBackend: Sendable {
    var dialect: SQLDialect { get }
    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T
    /// Answers the rows of independent reads, all on one snapshot: for a read whose statements
    /// are known before it starts, which a backend that talks to a server sends together
    /// without a thread of its own (PostgreSQL: one hand-over, one statement without a
    /// transaction around it).
    func readStatements(_ queries: [(sql: String, values: [SQLValue])]) async throws -> [[SQLRow]]
    /// Runs a write through group commit. `readAhead` names what the write reads first, when
    /// known before it runs: a backend that talks to a server may send that read before the
    /// write's turn in its batch comes (see `ReadAhead`). `readsNothingElse`: the write usually
    /// reads nothing but that (its other statements need no answer), so a backend may run it
    /// without a thread that waits (PostgreSQL: `PostgresBackend.aloneFromTask`).
    func write<T: Sendable>(readAhead: ReadAhead?, readsNothingElse: Bool, _ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T
    /// Recomputes every checksum the store keeps and checks the database's own structure.
    func checkIntegrity(progress: ProgressReport?) async throws -> IntegrityReport
    /// An online, consistent copy of the whole database at `destination`.
    func backupDatabase(to destination: String) async throws
    /// Answers once the database answers a trivial query (every server it reads or writes).
    func ping() async throws
    /// Runs the reads at the same time, each on a connection and a thread of its own (each sees
    /// its own snapshot), and answers in their order: for a read big enough to use every core.
    func readConcurrently<T: Sendable>(_ bodies: [@Sendable (any SQLSession) throws -> T]) async throws -> [T]
}

extension SQLBackend {
    public func write<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await write(readAhead: nil, readsNothingElse: false, body)
    }

    public func ping() async throws {
        _ = try await read { db in try db.value(Int.self, "SELECT 1") }
    }

    public func readStatements(_ queries: [(sql: String, values: [SQLValue])]) async throws -> [[SQLRow]] {
        try await read { db in try db.rows(of: queries) }
    }

    /// Each read in a child task: enough where `read` itself hands the work to a thread pool
    /// (PostgreSQL); SQLite reads on the calling thread and has its own.
    public func readConcurrently<T: Sendable>(_ bodies: [@Sendable (any SQLSession) throws -> T]) async throws -> [T] {
        try await withThrowingTaskGroup(of: (Int, T).self) { group in
            for (index, body) in bodies.enumerated() {
                group.addTask { (index, try await read(body)) }
            }
            return try await Self.inOrder(&group, count: bodies.count)
        }
    }

    static func inOrder<T>(_ group: inout ThrowingTaskGroup<(Int, T), any Error>, count: Int) async throws -> [T] {
        var results = [T?](repeating: nil, count: count)
        for try await (index, value) in group { results[index] = value }
        return results.map { $0! }
    }
}

/// The tracking, registry, explorer and artifact-manifest store, written once against
/// `SQLSession` and run on either backend: `SQLiteTrackingStore` (one file, the default) or
/// `PostgresTrackingStore` (a shared PostgreSQL database for several server replicas).
/// Everything that differs between the two lives in their `SQLBackend` and `SQLDialect`.
///
/// A class (not final) only so each backend's store can add what is particular to it (opening
/// a file, a connection pool); every stored property is a `let` of a Sendable type.
public class SQLStore: TrackingStore, @unchecked Sendable {
    let backend: any SQLBackend
    let searchSQL: SearchSQL
    /// Signs the audit chain's head (`useAuditKey`); nil leaves the head unsigned.
    let auditKey = Mutex<AuditKey?>(nil)

    init(backend: any SQLBackend) {
        self.backend = backend
        self.searchSQL = SearchSQL(backend.dialect)
    }

    public var dialect: SQLDialect { backend.dialect }

    /// Throws `TEMPORARILY_UNAVAILABLE` when the database does not answer (for `/health`).
    public func ping() async throws {
        try await backend.ping()
    }

    /// Runs a read-only closure on one snapshot of the database.
    public func read<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await backend.read(body)
    }

    /// Runs a change and appends its audit event in the same work (so in the same transaction):
    /// `audit` describes the change from the work's result (a create names the new id), or
    /// answers nil when the work changed nothing. The request's identity is read here, on the
    /// caller's task, because the work runs on the group commit's task.
    func write<T: Sendable>(readAhead: ReadAhead? = nil, readsNothingElse: Bool = false, audit: @escaping @Sendable (T) -> AuditDraft?,
                            _ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        let identity = RequestIdentity.current
        let via = AuditContext.via
        let key = auditKey.withLock { $0 }
        return try await backend.write(readAhead: readAhead, readsNothingElse: readsNothingElse) { db in
            let value = try body(db)
            if var draft = audit(value) {
                if let via { draft.details["via"] = .string(via) }
                try Self.appendAuditEvent(db, draft, identity: identity, key: key)
            }
            return value
        }
    }

    /// A change whose audit event is known before it runs.
    func write<T: Sendable>(_ action: String, _ target: String, details: [String: JSONValue] = [:], digest: [UInt8]? = nil,
                            _ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        let draft = AuditDraft(action, target, details: details, digest: digest)
        return try await write(audit: { _ in draft }, body)
    }

    /// A write that changes nothing a user made or can see as theirs (delivery bookkeeping,
    /// the last check of a blob), so it appends no audit event.
    func writeUnaudited<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await backend.write(body)
    }

    /// Uses `key` to sign the audit chain's head from now on.
    public func useAuditKey(_ key: AuditKey?) {
        auditKey.withLock { $0 = key }
    }

    public func checkIntegrity(progress: ProgressReport?) async throws -> IntegrityReport {
        try await backend.checkIntegrity(progress: progress)
    }

    public func backupDatabase(to destination: String) async throws {
        try await backend.backupDatabase(to: destination)
    }

    // MARK: - Experiments

    public func createExperiment(name: String, artifactLocation: String?, tags: [Tag], now: Int64) async throws -> Experiment {
        try await write(audit: { (created: Experiment) in
            AuditDraft("experiment.create", "experiment:\(created.experimentID)",
                       details: ["name": .string(created.name), "artifact_location": .string(created.artifactLocation), "tags": .int(tags.count)])
        }) { db in
            if try db.value(Bool.self, "SELECT 1 FROM experiments WHERE name = ?", [name]) == true {
                throw CairnError.alreadyExists("Experiment(name=\(name)) already exists. Choose another name, or use the existing experiment (an experiment's name stays taken while it is deleted).")
            }
            let nextID = try db.value(Int64.self, "SELECT COALESCE(MAX(experiment_id), 0) + 1 FROM experiments") ?? 1
            let location = artifactLocation.flatMap { $0.isEmpty ? nil : $0 } ?? "mlflow-artifacts:/\(nextID)"
            try db.execute("""
                    INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
                    VALUES (?, ?, ?, 'active', ?, ?)
                    """, [nextID, name, location, now, now])
            for tag in tags {
                try db.execute("INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?) ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value", [nextID, tag.key, tag.value])
            }
            return try Self.loadExperiment(db, id: nextID)
        }
    }

    public func fetchExperiment(id: Int64) async throws -> Experiment {
        try await read { db in try Self.loadExperiment(db, id: id) }
    }

    public func fetchExperiment(name: String) async throws -> Experiment? {
        try await read { db in
            guard let id = try db.value(Int64.self, "SELECT experiment_id FROM experiments WHERE name = ?", [name]) else {
                return nil
            }
            return try Self.loadExperiment(db, id: id)
        }
    }

    public func renameExperiment(id: Int64, newName: String, now: Int64) async throws {
        try await write("experiment.rename", "experiment:\(id)", details: ["new_name": .string(newName)]) { db in
            try Self.requireActive(Self.loadExperiment(db, id: id))
            if let other = try db.value(Int64.self, "SELECT experiment_id FROM experiments WHERE name = ?", [newName]), other != id {
                throw CairnError.alreadyExists("Experiment(name=\(newName)) already exists. Choose another name.")
            }
            try db.execute("UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?", [newName, now, id])
        }
    }

    public func setExperimentLifecycle(id: Int64, stage: LifecycleStage, now: Int64) async throws {
        try await write(stage == .deleted ? "experiment.delete" : "experiment.restore", "experiment:\(id)") { db in
            _ = try Self.loadExperiment(db, id: id)
            try db.execute("UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE experiment_id = ?", [stage.rawValue, now, id])
            switch stage {
            case .deleted:
                try db.execute("UPDATE runs SET lifecycle_stage = 'deleted', deleted_with_experiment = 1, deleted_time = ? WHERE experiment_id = ? AND lifecycle_stage = 'active'", [now, id])
            case .active:
                // A purged run stays deleted: its data is gone.
                try db.execute("UPDATE runs SET lifecycle_stage = 'active', deleted_with_experiment = 0, deleted_time = NULL WHERE experiment_id = ? AND deleted_with_experiment = 1 AND purged_time IS NULL", [id])
            }
        }
    }

    public func setExperimentTag(id: Int64, tag: Tag, now: Int64) async throws {
        try await write("experiment.tag.set", "experiment:\(id)", details: ["key": .string(tag.key)], digest: Self.tagDigest(tag)) { db in
            try Self.requireActive(Self.loadExperiment(db, id: id))
            try db.execute("INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?) ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value", [id, tag.key, tag.value])
            try db.execute("UPDATE experiments SET last_update_time = ? WHERE experiment_id = ?", [now, id])
        }
    }

    public func deleteExperimentTag(id: Int64, key: String, now: Int64) async throws {
        try await write("experiment.tag.delete", "experiment:\(id)", details: ["key": .string(key)]) { db in
            try Self.requireActive(Self.loadExperiment(db, id: id))
            if (try db.execute("DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?", [id, key])) == 0 {
                throw CairnError.notFound("No tag with name: \(key) in experiment with id \(id)")
            }
            try db.execute("UPDATE experiments SET last_update_time = ? WHERE experiment_id = ?", [now, id])
        }
    }

    public func searchExperiments(_ search: ExperimentSearch) async throws -> (items: [Experiment], hasMore: Bool) {
        let query = try searchSQL.experimentQuery(search)
        return try await read { db in
            var ids = try db.values(Int64.self, query)
            let hasMore = ids.count > search.maxResults
            if hasMore { ids.removeLast() }
            return (try ids.map { try Self.loadExperiment(db, id: $0) }, hasMore)
        }
    }

    /// The digest of a tag's key and value (the value stays out of the event's details).
    static func tagDigest(_ tag: Tag) -> [UInt8] {
        tagsDigest([tag])
    }

    static func tagsDigest(_ tags: [Tag]) -> [UInt8] {
        var hasher = AuditHasher()
        for tag in tags {
            hasher.add(tag.key)
            hasher.add(tag.value)
        }
        return hasher.finalize()
    }

    static func requireActive(_ experiment: Experiment) throws {
        if experiment.lifecycleStage != .active {
            throw CairnError.invalidParameter("The experiment \(experiment.experimentID) must be in the 'active' state to be changed, but it is deleted. Restore it first.")
        }
    }

    static func noSuchExperiment(_ id: Int64) -> CairnError {
        CairnError.notFound("No Experiment with id=\(id) exists. List experiments to find the right id.")
    }

    static func loadExperiment(_ db: any SQLSession, id: Int64) throws -> Experiment {
        guard let row = try db.row("SELECT name, artifact_location, lifecycle_stage, creation_time, last_update_time FROM experiments WHERE experiment_id = ?", [id])
        else {
            throw noSuchExperiment(id)
        }
        let tags = try db.rows("SELECT key, value FROM experiment_tags WHERE experiment_id = ? ORDER BY key", [id])
            .map { Tag($0[0], $0[1]) }
        return Experiment(
            experimentID: String(id), name: row[0], artifactLocation: row[1],
            lifecycleStage: LifecycleStage(rawValue: row[2]) ?? .active,
            creationTime: row[3], lastUpdateTime: row[4], tags: tags)
    }
}
