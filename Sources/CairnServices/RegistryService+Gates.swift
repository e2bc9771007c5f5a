import CairnCore
import CairnStore

/// Promotion gates (`PromotionGate`): setting an alias or moving a version to a stage first
/// checks the registered model's gates against the version's run; the evaluation is recorded
/// in the version's history whatever its outcome, and a failure refuses the change with every
/// failed condition named, unless the version carries `cairn.gate.override` with a reason.
extension RegistryService {
    public struct GateEvaluation: Sendable {
        public var findings: [CheckFinding]
        public var overrideReason: String?
        public var passed: Bool { findings.allSatisfy(\.passed) }
    }

    /// nil when the model has no gate for `target`.
    public func evaluateGates(name: String, version: Int64, target: String, kind: String) async throws -> GateEvaluation? {
        let model = try await registry.fetchRegisteredModel(name: name)
        let specs = model.tags.filter { PromotionGate.applies(tagKey: $0.key, to: target) }
        guard !specs.isEmpty else { return nil }
        var gate = PromotionGate()
        for tag in specs {
            do { gate.merge(try PromotionGate.parse(tag.value)) } catch {
                throw CairnError.invalidParameter("The gate tag '\(tag.key)' of registered model '\(name)' cannot be read: \(error.message) Fix the tag.")
            }
        }
        let lineage = try await self.lineage(name: name, version: String(version))
        var findings: [CheckFinding] = []
        guard let run = lineage.run else {
            let why = lineage.runID.map { "its run \($0) is not on this server" } ?? "the version names no run"
            findings.append(CheckFinding(requirement: "run", passed: false, detail: "\(why), so the gate cannot check it"))
            return GateEvaluation(findings: findings, overrideReason: overrideReason(lineage.version))
        }
        var files: [String] = []
        if !gate.artifacts.isEmpty || gate.requirements.contains("env"), let artifacts,
           let folder = ArtifactLocation.proxyPath(fromArtifactURI: run.info.artifactURI) {
            files = try await artifacts.listArtifacts(under: folder).map { String($0.path.dropFirst(folder.isEmpty ? 0 : folder.count + 1)) }
        }
        findings += RunChecks.evaluate(run: run, artifacts: files, requirements: gate.requirements, metricGates: gate.metrics, artifactPaths: gate.artifacts)
        for metric in gate.notWorse {
            findings.append(try await notWorse(metric: metric, candidate: run, name: name, version: version, target: target, kind: kind))
        }
        return GateEvaluation(findings: findings, overrideReason: overrideReason(lineage.version))
    }

    func overrideReason(_ version: ModelVersion) -> String? {
        version.tags.last { $0.key == PromotionGate.overrideTag }.flatMap { $0.value.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0.value }
    }

    /// The candidate's latest value of `metric` against the version that holds the alias or stage now.
    func notWorse(metric: String, candidate: Run, name: String, version: Int64, target: String, kind: String) async throws -> CheckFinding {
        let requirement = "not worse on \(metric)"
        let holder: ModelVersion?
        if kind == "alias" {
            holder = try? await registry.fetchModelVersion(name: name, alias: target)
        } else {
            holder = try await registry.latestModelVersions(name: name, stages: [target]).first
        }
        guard let holder, holder.version != version else {
            return CheckFinding(requirement: requirement, passed: true, detail: "no other version holds \(kind) \(target) now")
        }
        guard let mine = candidate.metrics.first(where: { $0.key == metric })?.value else {
            return CheckFinding(requirement: requirement, passed: false, detail: "the version's run has no metric '\(metric)'")
        }
        let holderRun = try await self.lineage(name: name, version: String(holder.version)).run
        guard let theirs = holderRun?.metrics.first(where: { $0.key == metric })?.value else {
            return CheckFinding(requirement: requirement, passed: true, detail: "version \(holder.version), which holds \(target) now, has no '\(metric)' to compare with")
        }
        let direction = MetricDirection.inferred(from: metric)
        // Several seeded runs of both configurations: worse only when worse beyond the seed noise.
        if let holderRun, let a = try await repeats(of: candidate, metric: metric), let b = try await repeats(of: holderRun, metric: metric),
           a.count >= 2, b.count >= 2 {
            let test = Statistics.welch(treatment: a, baseline: b)
            let worse = test.p.isFinite && test.p < 0.05 && (direction == .maximize ? test.diff < 0 : test.diff > 0)
            return CheckFinding(requirement: requirement, passed: !worse, detail:
                "mean \(metric) over \(a.count) seeded runs of this configuration differs from \(b.count) of version \(holder.version)'s by "
                + "\(test.diff) (95% CI \(test.ciLow) to \(test.ciHigh), Welch p = \(test.p))"
                + (worse ? ": worse beyond the seed noise" : ": not worse beyond the seed noise"))
        }
        let worse = direction.prefers(theirs, over: mine) || (mine.isNaN && !theirs.isNaN)
        return CheckFinding(requirement: requirement, passed: !worse,
                            detail: "\(metric) = \(mine) against \(theirs) of version \(holder.version) (\(direction == .maximize ? "higher" : "lower") is better)")
    }

    /// The finite latest values of `metric` over the finished runs of `run`'s experiment that
    /// share its configuration (every param except seed-like ones, as the statistics group them).
    func repeats(of run: Run, metric: String) async throws -> [Double]? {
        let config = run.params.filter { !StatsService.isSeedLike($0.key, StatsService.defaultSeedParams) }
        guard config.count < run.params.count else { return nil }  // no seed recorded: no repeats to find
        func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
        let clauses = ["attributes.status = 'FINISHED'"] + config.map { "params.`\($0.key)` = \(quoted($0.value))" }
        let page = try await tracking.searchRuns(experimentIDs: [run.info.experimentID], filter: clauses.joined(separator: " AND "),
                                                 viewType: .activeOnly, maxResults: 1000, orderBy: [], pageToken: nil)
        // Runs with extra non-seed params are other configurations.
        let same = page.items.filter { other in
            other.params.filter { !StatsService.isSeedLike($0.key, StatsService.defaultSeedParams) }.count == config.count
        }
        return same.compactMap { $0.metrics.first { $0.key == metric }?.value }.filter(\.isFinite)
    }

    /// Evaluates, records the evaluation in the version's history, and refuses a failed gate
    /// without an override. With accounts on, an override lets the version through only when
    /// the caller may override (MANAGE on the model, or an administrator); otherwise the
    /// evaluation is recorded as failed and the promotion refused with `PERMISSION_DENIED`.
    func enforceGates(name: String, version: Int64, target: String, kind: String, user: String) async throws {
        guard let evaluation = try await evaluateGates(name: name, version: version, target: target, kind: kind) else { return }
        var overrideRefused = false
        if !evaluation.passed, evaluation.overrideReason != nil, let check = tracking.requireGateOverride {
            do { try await check(name) } catch let error as CairnError where error.code == .permissionDenied { overrideRefused = true }
        }
        let overridden = !evaluation.passed && evaluation.overrideReason != nil && !overrideRefused
        let outcome = evaluation.passed ? "passed" : (overridden ? "overridden" : "failed")
        var changes: [(String, JSONValue)] = [
            (kind, .string(target)), ("result", .string(outcome)),
            ("checks", .array(evaluation.findings.map { f in
                .object([("requirement", .string(f.requirement)), ("passed", .bool(f.passed)), ("detail", .string(f.detail))])
            })),
        ]
        if !evaluation.passed, let reason = evaluation.overrideReason {
            changes.append(("override_reason", .string(reason)))
            if overridden { changes.append(("overridden_by", .string(user))) }
            if overrideRefused { changes.append(("override_refused", .string("\(user.isEmpty ? "the caller" : user) may not override: it needs MANAGE on the registered model"))) }
        }
        let webhook: WebhookEvent? = outcome == "failed" ? .gateFailed : outcome == "overridden" ? .gateOverridden : nil
        try await registry.recordRegistryEvent(name: name, version: version, action: "gate_\(outcome)", changes: .object(changes), user: user,
                                               now: tracking.now(), webhook: webhook)
        if overrideRefused { throw Self.overrideDenied(name: name) }
        guard evaluation.passed || overridden else {
            let failed = evaluation.findings.filter { !$0.passed }.map { "\($0.requirement): \($0.detail)" }
            throw CairnError.invalidParameter(
                "Version \(version) of '\(name)' may not take \(kind) '\(target)': its promotion gate failed — \(failed.joined(separator: "; ")). "
                + "Fix the run, or set the version tag \(PromotionGate.overrideTag) to the reason for promoting it anyway (recorded in its history).")
        }
    }

    /// The refusal of an override by someone who may not give one.
    public static func overrideDenied(name: String) -> CairnError {
        CairnError(.permissionDenied, "Permission denied: overriding the promotion gate of '\(name)' (\(PromotionGate.overrideTag)) needs MANAGE on the registered model, or an administrator.")
    }
}
