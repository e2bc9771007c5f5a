import CairnCore
import GRDB

extension SQLiteTrackingStore: ArtifactIndex {
    public func recordArtifact(_ entry: ArtifactEntry, now: Int64) async throws {
        let (low, high) = Self.folderBounds(entry.path)
        var ancestors: [String] = []
        var parts = entry.path.split(separator: "/").dropLast()
        while !parts.isEmpty {
            ancestors.append(parts.joined(separator: "/"))
            parts = parts.dropLast()
        }
        let ancestorPaths = ancestors
        try await write { db in
            if try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM artifact_files WHERE path > ? AND path < ? LIMIT 1"), arguments: [low, high]) == true {
                throw CairnError.invalidParameter("Invalid path '\(entry.path)': it is a folder of artifacts; upload files inside it, not over it.")
            }
            for ancestor in ancestorPaths
            where try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM artifact_files WHERE path = ?"), arguments: [ancestor]) == true {
                throw CairnError.invalidParameter("Invalid path '\(entry.path)': '\(ancestor)' is a file, so it cannot hold other artifacts.")
            }
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO artifact_files (path, digest, size, created_at) VALUES (?, ?, ?, ?)").execute(arguments: [entry.path, entry.digest, entry.size, now])
        }
    }

    public func fetchArtifact(path: String) async throws -> ArtifactEntry? {
        try await read { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT path, digest, size FROM artifact_files WHERE path = ?"), arguments: [path])
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
            try Row.fetchAll(db.cachedStatement(sql: "SELECT path, digest, size FROM artifact_files WHERE path > ? AND path < ? ORDER BY path"),
                             arguments: [low, high])
                .map { ArtifactEntry(path: $0[0], digest: $0[1], size: $0[2]) }
        }
    }

    public func deleteArtifacts(at path: String) async throws -> [ArtifactEntry] {
        let (low, high) = Self.folderBounds(path)
        return try await write { db in
            let rows = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT path, digest, size FROM artifact_files WHERE path = ? OR (path > ? AND path < ?) ORDER BY path
                """), arguments: [path, low, high])
            try db.cachedStatement(sql: "DELETE FROM artifact_files WHERE path = ? OR (path > ? AND path < ?)").execute(arguments: [path, low, high])
            return rows.map { ArtifactEntry(path: $0[0], digest: $0[1], size: $0[2]) }
        }
    }

    public func referencedDigests() async throws -> Set<String> {
        try await read { db in Set(try String.fetchAll(db.cachedStatement(sql: "SELECT DISTINCT digest FROM artifact_files"))) }
    }

    public func deletedRunArtifactURIs() async throws -> [String] {
        try await read { db in
            try String.fetchAll(db.cachedStatement(sql: "SELECT artifact_uri FROM runs WHERE lifecycle_stage = 'deleted' ORDER BY run_pk"))
        }
    }
}
