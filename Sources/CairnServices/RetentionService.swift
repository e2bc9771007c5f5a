import CairnCore
import CairnStore
import Foundation

/// One experiment's retention plan: which runs its rule keeps (and why) and which it deletes,
/// with the storage those hold.
public struct RetentionExperimentPlan: Sendable {
    public var experimentID: String
    public var name: String
    /// The rule applied: the experiment's `cairn.retention` tag, else the default.
    public var rule: String
    public var kept: Int
    /// Why runs are kept, how many for each reason (a run counts under its first reason).
    public var keptBecause: [(reason: String, runs: Int)]
    public var delete: [RunStorage]
    /// Artifact bytes only the deleted runs reference: what `cairn gc` frees after `apply`.
    public var freedArtifactBytes: Int64
    public var freedBlobs: Int
    /// Encoded metric bytes of the deleted runs (they stay in the database: soft-deleted runs
    /// can be restored, and no purge exists yet).
    public var metricBytes: Int64
}

public struct RetentionPlan: Sendable {
    public var experiments: [RetentionExperimentPlan]
    /// Experiments without a rule (no tag and no default): nothing of theirs is touched.
    public var withoutRule: [String]
}

/// Retention rules (`RetentionPolicy`) turned into a plan and applied: deleting only what the
/// plan names, never a run that is unfinished or that a registered model version comes from.
public struct RetentionService: Sendable {
    let tracking: TrackingService
    let explorer: ExplorerService
    let store: any RetentionStore

    public init(tracking: TrackingService, explorer: ExplorerService, store: any RetentionStore) {
        self.tracking = tracking
        self.explorer = explorer
        self.store = store
    }

    /// `progress` (when given) hears which experiment is being planned.
    public func plan(experimentIDs: [String], defaultRule: String?, progress: ProgressReport? = nil) async throws -> RetentionPlan {
        var experiments: [RetentionExperimentPlan] = []
        let withoutRule = try await self.plan(experimentIDs: experimentIDs, defaultRule: defaultRule, progress: progress) {
            experiments.append($0)
        }
        return RetentionPlan(experiments: experiments, withoutRule: withoutRule)
    }

    /// The plan one experiment at a time: `each` hears every experiment's plan as soon as it is
    /// made, in the order `plan` lists them, and nothing is kept after it, so memory is that of
    /// the largest experiment however many runs the whole plan names (a million-run store).
    /// Returns the experiments without a rule.
    public func plan(experimentIDs: [String], defaultRule: String?, progress: ProgressReport? = nil,
                     each: (RetentionExperimentPlan) throws -> Void) async throws -> [String] {
        if let defaultRule { _ = try RetentionPolicy.parse(defaultRule) }
        var ids = experimentIDs
        if ids.isEmpty { ids = try await explorer.experimentSummaries(viewType: .activeOnly).map(\.experiment.experimentID) }
        let registered = try await store.registeredRunIDs()
        let now = tracking.now()
        var withoutRule: [String] = []
        for (number, id) in ids.enumerated() {
            let experiment = try await tracking.getExperiment(id: id)
            progress?("experiment \(number + 1) of \(ids.count) (\(experiment.name))")
            guard let rule = experiment.tags.last(where: { $0.key == RetentionPolicy.tag })?.value ?? defaultRule else {
                withoutRule.append(id)
                continue
            }
            let policy: RetentionPolicy
            do { policy = try RetentionPolicy.parse(rule) } catch {
                throw CairnError.invalidParameter("Experiment \(id) (\(experiment.name)) has an unreadable \(RetentionPolicy.tag) tag: \(error.message)")
            }
            guard let experimentPK = Int64(id) else { throw CairnError.invalidParameter("Invalid experiment id '\(id)'.") }
            // Only what the rule reads, newest first (the runs' params, tags and metrics stay in the store).
            let metricKeys = policy.keepTop.map(\.metric)
            let rows = try await store.retentionCandidates(experimentID: experimentPK, keepTags: policy.keepTags, metrics: metricKeys)
            // Why each kept run is kept, by its place in `rows` (a run counts under its first reason).
            var reason = [String?](repeating: nil, count: rows.count)
            func keep(_ index: Int, _ why: String) { if reason[index] == nil { reason[index] = why } }
            for (i, row) in rows.enumerated() where row.status == .running || row.status == .scheduled { keep(i, "unfinished") }
            for (i, row) in rows.enumerated() where registered.contains(row.runID) { keep(i, "registered model version") }
            for (i, row) in rows.enumerated() where row.tagged { keep(i, "tagged \(policy.keepTags.joined(separator: " or "))") }
            if let n = policy.keepLast { for i in rows.indices.prefix(n) { keep(i, "newest \(n)") } }
            if let days = policy.keepDays {
                let cutoff = now - Int64(days) * 86_400_000
                for (i, row) in rows.enumerated() where (row.startTime ?? 0) >= cutoff { keep(i, "newer than \(days) days") }
            }
            for top in policy.keepTop {
                let direction = MetricDirection.inferred(from: top.metric)
                let column = metricKeys.firstIndex(of: top.metric) ?? 0
                let scored = rows.indices.compactMap { i -> (Int, Double)? in rows[i].metrics[column].map { (i, $0) } }
                    .sorted { direction.prefers($0.1, over: $1.1) }
                for (i, _) in scored.prefix(top.count) { keep(i, "top \(top.count) by \(top.metric)") }
            }
            let doomed = rows.indices.filter { reason[$0] == nil }.map { rows[$0] }
            var counts: [String: Int] = [:]
            for why in reason { if let why { counts[why, default: 0] += 1 } }
            var entry = RetentionExperimentPlan(experimentID: id, name: experiment.name, rule: rule, kept: rows.count - doomed.count,
                                                keptBecause: counts.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                                                delete: [], freedArtifactBytes: 0, freedBlobs: 0, metricBytes: 0)
            if !doomed.isEmpty {
                let usage = try await explorer.storage(experimentIDs: [id], runIDs: doomed.map(\.runID), largest: nil)
                let byRun = Dictionary((usage.first?.runs ?? []).map { ($0.runId, $0) }, uniquingKeysWith: { a, _ in a })
                entry.delete = doomed.compactMap { byRun[$0.runID] }
                entry.metricBytes = entry.delete.reduce(0) { $0 + $1.storage.metricBytes }
                let folders = doomed.compactMap { ArtifactLocation.proxyPath(fromArtifactURI: $0.artifactURI) }.filter { !$0.isEmpty }
                let freed = try await store.exclusiveArtifactBytes(folders: folders)
                entry.freedArtifactBytes = freed.bytes
                entry.freedBlobs = freed.blobs
            }
            try each(entry)
        }
        return withoutRule
    }

    /// Deletes the runs the plan names (soft delete, as MLflow's; `cairn gc` then frees their
    /// artifacts). Each is tagged `cairn.deleted_by=retention` first, so it is clear afterwards
    /// why it went. Returns the ids deleted; a run that changed since the plan (now running or
    /// registered) is skipped.
    /// Every change is audited under the caller's identity (the CLI's OS user; the scheduled
    /// pass runs as `scheduledIdentity`), each with `via: "retention"`, and a pass that deleted
    /// anything ends with one `retention.apply` event counting what it deleted per experiment.
    public func apply(_ plan: RetentionPlan) async throws -> [String] {
        try await AuditContext.$via.withValue("retention") {
            let deleted = try await applyPlan(plan)
            if !deleted.isEmpty {
                let gone = Set(deleted)
                var perExperiment: [(String, JSONValue)] = []
                for experiment in plan.experiments {
                    let count = experiment.delete.filter { gone.contains($0.runId) }.count
                    if count > 0 { perExperiment.append((experiment.experimentID, .number(String(count)))) }
                }
                try await store.recordAuditEvent(AuditDraft("retention.apply", "retention", details: [
                    "deleted_runs": .number(String(deleted.count)), "experiments": .object(perExperiment),
                ]))
            }
            return deleted
        }
    }

    /// Who the server's own scheduled retention pass acts as: the actor `retention`, from the
    /// address `internal`.
    public static func scheduledIdentity() -> RequestIdentity {
        RequestIdentity(user: "retention", isAuthenticated: false, isAdmin: false, clientAddress: "internal",
                        requestID: "retention-" + UUID().uuidString.lowercased())
    }

    private func applyPlan(_ plan: RetentionPlan) async throws -> [String] {
        let registered = try await store.registeredRunIDs()
        var deleted: [String] = []
        for experiment in plan.experiments {
            for run in experiment.delete {
                let current = try await tracking.getRun(id: run.runId)
                guard current.info.lifecycleStage == .active, current.info.status != .running, current.info.status != .scheduled,
                      !registered.contains(run.runId) else { continue }
                try await tracking.setTag(runID: run.runId, Tag("cairn.deleted_by", "retention"))
                try await tracking.deleteRun(id: run.runId)
                deleted.append(run.runId)
            }
        }
        return deleted
    }
}
