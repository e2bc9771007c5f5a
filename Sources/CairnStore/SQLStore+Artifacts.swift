import CairnCore

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
        try await write { db in
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
        return try await write { db in
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

    public func deletedRunArtifactURIs() async throws -> [String] {
        try await read { db in
            try db.values(String.self, "SELECT artifact_uri FROM runs WHERE lifecycle_stage = 'deleted' ORDER BY run_pk")
        }
    }
}
