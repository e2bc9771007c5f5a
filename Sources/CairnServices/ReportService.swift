import CairnArtifacts
import CairnCore
import CairnStore
import Foundation

/// The health figures of `GET /api/cairn/v1/report` and `cairn report`.
public struct HealthReport: Sendable, Equatable {
    public var experimentIDs: [String] = []
    public var total = 0
    public var finished = 0
    public var failed = 0
    public var killed = 0
    public var running = 0
    /// Running runs with no activity for the stale threshold (`StaleRuns`).
    public var stale = 0
    public var scheduled = 0
    public var withCode = 0
    public var withData = 0
    public var withBoth = 0
    public var files = 0
    public var blobs = 0
    /// The referenced blobs by their last check: passed, missing, damaged, or not checked yet
    /// (see `ReportService.verifyBudgetBytes`).
    public var verified = 0
    public var missing = 0
    public var damaged = 0
    public var unchecked = 0
    /// Blobs this report re-hashed, and when the oldest result it counts was checked.
    public var checkedNow = 0
    public var oldestCheck: Int64?
    public var reproduceAttempted = 0
    public var reproduced = 0
    /// Audit completeness (the share of changes with an audit event, actor known), over the
    /// whole store: the audit log is not per experiment.
    public var audit: AuditCompleteness?

    /// finished / (finished + failed + killed); nil when no run has ended.
    public var successRate: Double? {
        let ended = finished + failed + killed
        return ended == 0 ? nil : Double(finished) / Double(ended)
    }

    public init() {}
}

/// Computes the health figures the experiment-tracking literature asks teams to watch: run
/// success rate, linkage completeness (code and data references), artifact integrity (the
/// blobs the runs reference, re-hashed) and reproducibility (`cairn reproduce` attempts).
///
/// Artifact integrity comes from kept results (`BlobCheck`): a report re-hashes only the blobs
/// never checked, those whose last result was not `ok`, and those checked more than
/// `reverifyAfter` ago, oldest first and at most `verifyBudgetBytes` of them per report; so a
/// report over terabytes of artifacts costs a bounded read, and successive reports (or
/// `cairn verify`, which checks everything) cover the rest.
public struct ReportService: Sendable {
    public let tracking: TrackingService
    public let artifacts: ArtifactService
    /// Milliseconds after which a passed check is due again (default 7 days).
    public var reverifyAfter: Int64
    /// Bytes re-hashed per report at most (at least one blob is, when any is due).
    public var verifyBudgetBytes: Int64
    /// A running run with no activity for this long counts as stale.
    public var staleAfterMillis: Int64

    public init(tracking: TrackingService, artifacts: ArtifactService,
                reverifyAfter: Int64 = 7 * 24 * 3_600_000, verifyBudgetBytes: Int64 = 64 << 20, staleAfterMillis: Int64 = StaleRuns.defaultAfterMillis) {
        self.staleAfterMillis = staleAfterMillis
        self.tracking = tracking
        self.artifacts = artifacts
        self.reverifyAfter = reverifyAfter
        self.verifyBudgetBytes = verifyBudgetBytes
    }

    /// Over the active runs of `experimentIDs` (every active experiment when empty).
    public func report(experimentIDs requested: [String]) async throws -> HealthReport {
        var ids = requested
        if ids.isEmpty {
            var token: String?
            repeat {
                let page = try await tracking.searchExperiments(filter: nil, orderBy: ["experiment_id ASC"], viewType: .activeOnly, maxResults: 50_000, pageToken: token)
                ids += page.items.map(\.experimentID)
                token = page.nextPageToken
            } while token != nil
        } else {
            for id in ids { _ = try await tracking.getExperiment(id: id) }
        }
        var report = HealthReport()
        report.experimentIDs = ids
        var digests: [String: Int64] = [:]
        // runs/search accepts at most 100 experiments per call in MLflow; chunk to stay portable.
        for chunk in stride(from: 0, to: ids.count, by: 100).map({ Array(ids[$0..<min($0 + 100, ids.count)]) }) {
            var token: String?
            repeat {
                let page = try await tracking.searchRuns(experimentIDs: chunk, filter: nil, viewType: .activeOnly, maxResults: 50_000, orderBy: [], pageToken: token)
                for run in page.items {
                    try await count(run, into: &report, digests: &digests)
                }
                token = page.nextPageToken
            } while token != nil
        }
        try await checkBlobs(digests, into: &report)
        report.audit = try await tracking.store.auditCompleteness()
        return report
    }

    /// Counts the blobs `sizes` names by their last check, after re-hashing those due (within
    /// the budget) and keeping the new results.
    private func checkBlobs(_ sizes: [String: Int64], into report: inout HealthReport) async throws {
        let known = try await artifacts.index.blobChecks(Array(sizes.keys))
        let now = tracking.now()
        let due = sizes.keys.filter { digest in
            guard let check = known[digest] else { return true }
            return check.result != .ok || now - check.checkedAt >= reverifyAfter
        }.sorted { (known[$0]?.checkedAt ?? .min, $0) < (known[$1]?.checkedAt ?? .min, $1) }
        var fresh: [String: BlobCheck] = [:]
        var spent: Int64 = 0
        for digest in due {
            let size = sizes[digest] ?? 0
            if !fresh.isEmpty, spent + size > verifyBudgetBytes { break }
            fresh[digest] = BlobCheck(try await artifacts.blobs.verify(digest), at: now)
            spent += size
        }
        try await artifacts.index.recordBlobChecks(fresh)
        report.checkedNow = fresh.count
        for digest in sizes.keys {
            report.blobs += 1
            guard let check = fresh[digest] ?? known[digest] else {
                report.unchecked += 1
                continue
            }
            switch check.result {
            case .ok: report.verified += 1
            case .missing: report.missing += 1
            case .damaged: report.damaged += 1
            }
            report.oldestCheck = min(report.oldestCheck ?? check.checkedAt, check.checkedAt)
        }
    }

    private func count(_ run: Run, into report: inout HealthReport, digests: inout [String: Int64]) async throws {
        report.total += 1
        switch run.info.status {
        case .finished: report.finished += 1
        case .failed: report.failed += 1
        case .killed: report.killed += 1
        case .running:
            report.running += 1
            let last = StaleRuns.lastActivity(startTime: run.info.startTime, metricTimestamps: run.metrics.map(\.timestamp))
            if StaleRuns.isStale(status: .running, lastActivity: last, now: tracking.now(), afterMillis: staleAfterMillis) { report.stale += 1 }
        case .scheduled: report.scheduled += 1
        }
        let tags = Dictionary(run.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        let hasCode = !(tags["mlflow.source.git.commit"] ?? "").isEmpty || !(tags["cairn.git.commit"] ?? "").isEmpty
        let hasData = !run.inputs.isEmpty
        if hasCode { report.withCode += 1 }
        if hasData { report.withData += 1 }
        if hasCode && hasData { report.withBoth += 1 }
        if tags["cairn.reproduce.of"] != nil, let status = tags["cairn.reproduce.status"] {
            report.reproduceAttempted += 1
            if status == "reproduced" { report.reproduced += 1 }
        }
        if let folder = ArtifactService.proxyPath(fromArtifactURI: run.info.artifactURI), !folder.isEmpty {
            for entry in try await artifacts.index.listArtifacts(under: folder) {
                report.files += 1
                digests[entry.digest] = entry.size
            }
        }
    }
}
