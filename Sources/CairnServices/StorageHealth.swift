import Foundation

/// Whether the disks holding the database and the artifacts have room left: `/health` answers
/// 503 with the reason while one is full, and 200 again as soon as space returns (no restart).
public struct StorageHealth: Sendable {
    /// What each watched folder holds ("database", "artifacts") and where it is.
    public let watched: [(what: String, path: String)]
    /// Below this many free bytes a disk counts as full (SQLite needs room for its log).
    public let minimumFreeBytes: Int64

    public init(watched: [(what: String, path: String)], minimumFreeBytes: Int64 = 1 << 20) {
        self.watched = watched
        self.minimumFreeBytes = minimumFreeBytes
    }

    /// One sentence per full disk; empty when all have room.
    public func problems() -> [String] {
        var seen = Set<UInt>()
        var problems: [String] = []
        for (what, path) in watched {
            var stats = statvfs()
            guard statvfs(path, &stats) == 0, seen.insert(UInt(stats.f_fsid)).inserted else { continue }
            let free = Int64(stats.f_bavail) * Int64(stats.f_frsize)
            if free < minimumFreeBytes {
                problems.append("storage full: the disk holding the \(what) ('\(path)') has \(free) bytes free; writes are refused until space is freed")
            }
        }
        return problems
    }
}
