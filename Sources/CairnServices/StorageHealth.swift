import CairnCore
import Foundation
import Synchronization

/// Whether Cairn can store what it is sent: the disks holding the database and the artifacts
/// have room left, and the database server and object store (when there are) answer. `/health`
/// answers 503 with the reasons while one is not, and 200 again as soon as it is (no restart),
/// so a load balancer sends requests only to replicas that can serve them.
public struct StorageHealth: Sendable {
    /// What each watched folder holds ("database", "artifacts") and where it is.
    public let watched: [(what: String, path: String)]
    /// Below this many free bytes a disk counts as full (SQLite needs room for its log).
    public let minimumFreeBytes: Int64
    /// Services that must answer, each with what it is ("database", "object store").
    public let probes: [(what: String, check: @Sendable () async throws -> Void)]
    /// How long a probe's answer is reused, so that frequent health checks cost the database
    /// and the object store at most one request each per interval.
    public let probeInterval: Duration
    private let cache = ProbeCache()

    private final class ProbeCache: Sendable {
        let last = Mutex<(at: ContinuousClock.Instant, problems: [String])?>(nil)
    }

    public init(watched: [(what: String, path: String)], minimumFreeBytes: Int64 = 1 << 20,
                probes: [(what: String, check: @Sendable () async throws -> Void)] = [], probeInterval: Duration = .seconds(2)) {
        self.watched = watched
        self.minimumFreeBytes = minimumFreeBytes
        self.probes = probes
        self.probeInterval = probeInterval
    }

    /// One sentence per problem; empty when all is well.
    public func problems() async -> [String] {
        diskProblems() + (await probeProblems())
    }

    func diskProblems() -> [String] {
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

    func probeProblems() async -> [String] {
        guard !probes.isEmpty else { return [] }
        let now = ContinuousClock.now
        if let last = cache.last.withLock({ $0 }), now - last.at < probeInterval { return last.problems }
        var problems: [String] = []
        for (what, check) in probes {
            do {
                try await check()
            } catch let error as CairnError {
                problems.append("\(what) unavailable: \(error.message)")
            } catch {
                problems.append("\(what) unavailable: \(error)")
            }
        }
        cache.last.withLock { $0 = (now, problems) }
        return problems
    }
}
