import CairnCore
import Crypto
import Foundation

extension SQLStore: ArtifactIndex {
    public func recordArtifact(_ entry: ArtifactEntry, now: Int64) async throws {
        let (low, high) = Self.folderBounds(entry.path)
        var ancestors: [String] = []
        var parts = entry.path.split(separator: "/").dropLast()
        while !parts.isEmpty {
            ancestors.append(parts.joined(separator: "/"))
            parts = parts.dropLast()
        }
        let ancestorPaths = ancestors
        let details: [String: JSONValue] = ["path": .string(entry.path), "size": .int(entry.size), "sha256": .string(entry.digest)]
        try await write("artifact.upload", "artifact:\(entry.path)", details: details) { db in
            if try db.value(Bool.self, "SELECT 1 FROM artifact_files WHERE path > ? AND path < ? LIMIT 1", [low, high]) == true {
                throw CairnError.invalidParameter("Invalid path '\(entry.path)': it is a folder of artifacts; upload files inside it, not over it.")
            }
            for ancestor in ancestorPaths
            where try db.value(Bool.self, "SELECT 1 FROM artifact_files WHERE path = ?", [ancestor]) == true {
                throw CairnError.invalidParameter("Invalid path '\(entry.path)': '\(ancestor)' is a file, so it cannot hold other artifacts.")
            }
            try db.execute("INSERT INTO artifact_files (path, digest, size, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET digest = excluded.digest, size = excluded.size, created_at = excluded.created_at", [entry.path, entry.digest, entry.size, now])
        }
    }

    public func fetchArtifact(path: String) async throws -> ArtifactEntry? {
        try await read { db in
            try db.row("SELECT path, digest, size FROM artifact_files WHERE path = ?", [path])
                .map { ArtifactEntry(path: $0[0], digest: $0[1], size: $0[2]) }
        }
    }

    /// Paths below `directory` sort between `directory/` and `directory0` ('0' follows '/').
    static func folderBounds(_ directory: String) -> (String, String) {
        directory.isEmpty ? ("", "\u{10FFFF}") : (directory + "/", directory + "0")
    }

    public func listArtifacts(under directory: String) async throws -> [ArtifactEntry] {
        let (low, high) = Self.folderBounds(directory)
        return try await read { db in
            try db.rows("SELECT path, digest, size FROM artifact_files WHERE path > ? AND path < ? ORDER BY path", [low, high])
                .map { ArtifactEntry(path: $0[0], digest: $0[1], size: $0[2]) }
        }
    }

    public func deleteArtifacts(at path: String) async throws -> [ArtifactEntry] {
        let (low, high) = Self.folderBounds(path)
        return try await write(audit: { (deleted: [ArtifactEntry]) in
            deleted.isEmpty ? nil : AuditDraft("artifact.delete", "artifact:\(path)", details: Self.artifactDetails(deleted))
        }) { db in
            let rows = try db.rows("""
                SELECT path, digest, size FROM artifact_files WHERE path = ? OR (path > ? AND path < ?) ORDER BY path
                """, [path, low, high])
            try db.execute("DELETE FROM artifact_files WHERE path = ? OR (path > ? AND path < ?)", [path, low, high])
            return rows.map { ArtifactEntry(path: $0[0], digest: $0[1], size: $0[2]) }
        }
    }

    public func referencedDigests() async throws -> Set<String> {
        try await read { db in Set(try db.values(String.self, "SELECT DISTINCT digest FROM artifact_files")) }
    }

    public func forgetDeletedRunArtifacts(dryRun: Bool) async throws -> DeletedRunArtifacts {
        let work: @Sendable (any SQLSession) throws -> DeletedRunArtifacts = { db in try Self.forgetDeletedRunArtifacts(db, dryRun: dryRun) }
        if dryRun { return try await read(work) }
        return try await write(audit: { (result: DeletedRunArtifacts) in
            result.forgotten.isEmpty ? nil : AuditDraft("gc.forget_deleted_run_artifacts", "artifacts", details: Self.artifactDetails(result.forgotten))
        }, work)
    }

    /// How many files, their total size and the first few paths, and a digest of every
    /// (path, sha256) among them.
    static func artifactDetails(_ entries: [ArtifactEntry]) -> [String: JSONValue] {
        var text = ""
        for entry in entries { text += "\(entry.path)\u{0}\(entry.digest)\u{0}" }
        return [
            "files": .int(entries.count), "bytes": .int(entries.reduce(Int64(0)) { $0 + Int64($1.size) }),
            "paths": .array(entries.prefix(5).map { .string($0.path) }),
            "files_sha256": .string(AuditChain.hex(SHA256.hash(data: Array(text.utf8)))),
        ]
    }

    /// The one decision of what `cairn gc` forgets: read and applied in the caller's transaction
    /// (a write one, unless `dryRun`), so no version registered before it commits is missed.
    static func forgetDeletedRunArtifacts(_ db: any SQLSession, dryRun: Bool) throws -> DeletedRunArtifacts {
        var result = DeletedRunArtifacts()
        var uses: [ArtifactUse]?
        for run in try db.rows("SELECT run_id, artifact_uri FROM runs WHERE lifecycle_stage = 'deleted' ORDER BY run_pk") {
            guard let folder = ArtifactLocation.proxyPath(fromArtifactURI: run[1]) else { continue }
            let (low, high) = folderBounds(folder)
            let entries = try db.rows("SELECT path, digest, size FROM artifact_files WHERE path > ? AND path < ? ORDER BY path", [low, high])
                .map { ArtifactEntry(path: $0[0], digest: $0[1], size: $0[2]) }
            if entries.isEmpty { continue }
            if uses == nil { uses = try ArtifactUse.all(db) }
            let relevant = (uses ?? []).filter { $0.overlaps(folder) }
            if relevant.isEmpty {
                result.forgotten += entries
                if !dryRun { try db.execute("DELETE FROM artifact_files WHERE path > ? AND path < ?", [low, high]) }
                continue
            }
            var kept = KeptArtifacts(runID: run[0], entries: [], users: [])
            for entry in entries {
                let users = relevant.filter { ArtifactLocation.path(entry.path, isAtOrUnder: $0.location) }.map(\.user)
                if users.isEmpty {
                    result.forgotten.append(entry)
                    if !dryRun { try db.execute("DELETE FROM artifact_files WHERE path = ?", [entry.path]) }
                } else {
                    kept.entries.append(entry)
                    for user in users where !kept.users.contains(user) { kept.users.append(user) }
                }
            }
            if !kept.entries.isEmpty { result.kept.append(kept) }
        }
        return result
    }

    public func blobChecks(_ digests: [String]) async throws -> [String: BlobCheck] {
        guard !digests.isEmpty else { return [:] }
        return try await read { db in
            var checks: [String: BlobCheck] = [:]
            try db.each("SELECT digest, result, checked_at FROM blob_checks WHERE \(db.dialect.inTextList("digest"))",
                        [.text(textList(digests))], cache: true) { row in
                if let result = BlobCheck.Result(rawValue: row[1]) {
                    checks[row[0]] = BlobCheck(result: result, checkedAt: row[2])
                }
            }
            return checks
        }
    }

    public func recordBlobChecks(_ checks: [String: BlobCheck]) async throws {
        guard !checks.isEmpty else { return }
        let rows: [[SQLValue]] = checks.sorted { $0.key < $1.key }.map { [.text($0.key), .text($0.value.result.rawValue), .integer($0.value.checkedAt)] }
        // The last check of each blob is bookkeeping of `verify`, not a change to anyone's data.
        try await writeUnaudited { db in
            // A blob found missing or damaged that was not already known so: announce it once.
            let bad = checks.filter { $0.value.result != .ok }
            var known: [String: String] = [:]
            if !bad.isEmpty {
                try db.each("SELECT digest, result FROM blob_checks WHERE \(db.dialect.inTextList("digest"))",
                            [.text(textList(Array(bad.keys)))], cache: true) { row in known[row[0]] = row[1] }
            }
            try Self.insertRows(db, "INSERT INTO blob_checks (digest, result, checked_at) VALUES ", rows,
                                suffix: " ON CONFLICT (digest) DO UPDATE SET result = excluded.result, checked_at = excluded.checked_at")
            for (digest, check) in bad.sorted(by: { $0.key < $1.key }) where known[digest] != check.result.rawValue {
                let paths = try db.values(String.self, "SELECT path FROM artifact_files WHERE digest = ? ORDER BY path LIMIT 20", [digest])
                try Self.enqueueWebhookEvent(db, .artifactDamaged, data: .object([
                    ("sha256", .string(digest)), ("result", .string(check.result.rawValue)), ("checked_at", .number(String(check.checkedAt))),
                    ("paths", .array(paths.map { .string($0) })),
                ]), now: check.checkedAt)
            }
        }
    }

    public func artifactUsers(runID: String) async throws -> [ArtifactUser] {
        try await read { db in
            guard let uri = try db.value(String.self, "SELECT artifact_uri FROM runs WHERE run_id = ?", [runID]),
                  let folder = ArtifactLocation.proxyPath(fromArtifactURI: uri) else { return [] }
            var users: [ArtifactUser] = []
            for use in try ArtifactUse.all(db) where use.overlaps(folder) && !users.contains(use.user) {
                // Only a use that has files of this run: the narrower of the two locations.
                let location = ArtifactLocation.path(use.location, isAtOrUnder: folder) ? use.location : folder
                let (low, high) = Self.folderBounds(location)
                if try db.value(Bool.self, "SELECT 1 FROM artifact_files WHERE path = ? OR (path > ? AND path < ?) LIMIT 1",
                                [location, low, high]) == true {
                    users.append(use.user)
                }
            }
            return users
        }
    }
}

/// A location in the artifact root (a proxy path, file or folder) that a model version or a
/// logged model uses.
struct ArtifactUse {
    var location: String
    var user: ArtifactUser

    /// Whether this use and the folder share files: one lies at or under the other.
    func overlaps(_ folder: String) -> Bool {
        ArtifactLocation.path(location, isAtOrUnder: folder) || ArtifactLocation.path(folder, isAtOrUnder: location)
    }

    /// Every use, read in `db`'s transaction: each active logged model's artifact location, and
    /// for each model version that is not deleted, the locations its source resolves to
    /// (`runs:/<run>/<path>` → that run's artifact folder + path, `mlflow-artifacts:/<path>` →
    /// the path, `models:/m-<id>` → the logged model's location, `models:/<name>/<version>` →
    /// that version's locations), plus its `model_id`'s location.
    static func all(_ db: any SQLSession) throws -> [ArtifactUse] {
        var models: [String: (name: String, location: String?)] = [:]
        var uses: [ArtifactUse] = []
        for row in try db.rows("SELECT model_id, name, artifact_uri, lifecycle_stage FROM logged_models ORDER BY model_pk") {
            let id: String = row[0], name: String = row[1], location = ArtifactLocation.proxyPath(fromArtifactURI: row[2])
            models[id] = (name, location)
            if let location, (row[3] as String) == LifecycleStage.active.rawValue {
                uses.append(ArtifactUse(location: location, user: .loggedModel(id: id, name: name)))
            }
        }
        var resolver = SourceResolver(db: db, loggedModelLocations: models.compactMapValues(\.location))
        for row in try db.rows("""
            SELECT r.name, v.version, v.source, v.model_id, v.deleted FROM model_versions v
            JOIN registered_models r ON r.model_pk = v.model_pk ORDER BY r.name, v.version
            """) {
            let key = SourceResolver.Key(name: row[0], version: row[1])
            resolver.versions[key] = SourceResolver.Version(source: row[2], modelID: row[3])
            if (row[4] as Int64) == 0 { resolver.live.append(key) }
        }
        for key in resolver.live {
            var seen: Set<SourceResolver.Key> = [key]
            for location in try resolver.locations(of: key, seen: &seen) {
                uses.append(ArtifactUse(location: location, user: .modelVersion(name: key.name, version: key.version)))
            }
        }
        return uses
    }
}

/// Resolves model version sources to the proxy paths of the files they name.
private struct SourceResolver {
    struct Key: Hashable { var name: String; var version: Int64 }
    struct Version { var source: String; var modelID: String? }

    let db: any SQLSession
    let loggedModelLocations: [String: String]
    var versions: [Key: Version] = [:]
    var live: [Key] = []
    var runFolders: [String: String?] = [:]

    init(db: any SQLSession, loggedModelLocations: [String: String]) {
        self.db = db
        self.loggedModelLocations = loggedModelLocations
    }

    mutating func locations(of key: Key, seen: inout Set<Key>) throws -> [String] {
        guard let version = versions[key] else { return [] }
        var found: [String] = []
        if let modelID = version.modelID, let location = loggedModelLocations[modelID] { found.append(location) }
        let source = version.source
        if let modelID = ArtifactLocation.loggedModelID(inSource: source) {
            if let location = loggedModelLocations[modelID] { found.append(location) }
        } else if source.hasPrefix("models:/") {
            let parts = source.dropFirst("models:/".count).split(separator: "/")
            if parts.count == 2, let number = Int64(parts[1]) {
                let other = Key(name: String(parts[0]), version: number)
                if seen.insert(other).inserted { found += try locations(of: other, seen: &seen) }
            }
        } else if let (runID, path) = ArtifactLocation.runSource(source) {
            if let folder = try runFolder(runID) { found += Self.spellings(path.isEmpty ? folder : folder + "/" + path) }
        } else if let path = ArtifactLocation.proxyPath(fromArtifactURI: source) {
            found += Self.spellings(path)
        }
        return found
    }

    mutating func runFolder(_ runID: String) throws -> String? {
        if let known = runFolders[runID] { return known }
        let folder = try db.value(String.self, "SELECT artifact_uri FROM runs WHERE run_id = ?", [runID])
            .flatMap(ArtifactLocation.proxyPath(fromArtifactURI:))
        runFolders[runID] = folder
        return folder
    }

    /// A source as written and, when it differs, percent-decoded (either may name the files).
    static func spellings(_ path: String) -> [String] {
        let decoded = path.removingPercentEncoding ?? path
        return decoded == path ? [path] : [path, decoded]
    }
}
