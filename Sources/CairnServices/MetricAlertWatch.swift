import CairnCore
import CairnStore
import Foundation
import Synchronization

/// Checks logged metric values against their experiment's alert rules (`MetricAlert`, the
/// experiment tag `cairn.alert`) and fires `metric.threshold_crossed` once per run and rule.
///
/// Kept off the cost of the log path: the rules of every experiment are read in one query and
/// kept for `refreshMillis` (a change of the tag on this replica clears them at once; another
/// replica's change is seen within that time); a batch whose keys have no rule anywhere costs a
/// dictionary look-up per key and nothing else. Only a point that meets a rule reads the run's
/// experiment (then kept: runs never move) and, the first time, writes.
public final class MetricAlertWatch: Sendable {
    let store: any WebhookStore
    let runs: any TrackingStore
    let now: @Sendable () -> Int64
    let refreshMillis: Int64

    private struct Rules {
        /// Experiment id → its rules; empty when no experiment has any.
        var byExperiment: [String: [MetricAlert]] = [:]
        /// Every metric key some rule names, to pass over the rest at once.
        var keys: Set<String> = []
        var loadedAt: Int64 = .min
    }
    private let rules = Mutex(Rules())
    /// Run id → experiment id, of runs that logged a point meeting some rule.
    private let experiments = Mutex<[String: String]>([:])
    /// (run id, rule text) pairs already fired, so a run that keeps crossing writes nothing more
    /// until the rules are next read.
    private let fired = Mutex<Set<String>>([])
    static let memoryLimit = 100_000

    public init(store: any WebhookStore, runs: any TrackingStore, now: @escaping @Sendable () -> Int64, refreshMillis: Int64 = 10_000) {
        self.store = store
        self.runs = runs
        self.now = now
        self.refreshMillis = refreshMillis
    }

    /// Forget the cached rules (the `cairn.alert` tag of an experiment changed here).
    public func rulesChanged() {
        rules.withLock { $0.loadedAt = .min }
    }

    /// Never throws: a failed check must not fail the log request that triggered it.
    public func logged(runID: String, metrics: [Metric]) async {
        guard !metrics.isEmpty, let current = try? await currentRules(), !current.keys.isEmpty else { return }
        let candidates = metrics.filter { current.keys.contains($0.key) }
        guard !candidates.isEmpty else { return }
        guard let experimentID = try? await experiment(ofRun: runID), let rules = current.byExperiment[experimentID] else { return }
        for rule in rules {
            let key = runID + "\u{0}" + rule.text
            if fired.withLock({ $0.contains(key) }) { continue }
            guard let point = candidates.first(where: { $0.key == rule.condition.key && rule.fires(value: $0.value, step: $0.step) }) else { continue }
            let data: JSONValue = .object([
                ("run_id", .string(runID)), ("experiment_id", .string(experimentID)), ("rule", .string(rule.text)),
                ("metric", .string(point.key)), ("value", point.value.isFinite ? .number(String(point.value)) : .string(String(point.value))), ("step", .number(String(point.step))),
                ("timestamp", .number(String(point.timestamp))),
            ])
            guard (try? await store.markAlertFired(runID: runID, rule: rule.text, data: data, now: now())) != nil else { continue }
            fired.withLock { set in
                if set.count >= Self.memoryLimit { set.removeAll() }
                set.insert(key)
            }
        }
    }

    private func currentRules() async throws -> Rules {
        let time = now()
        let cached = rules.withLock { $0 }
        if cached.loadedAt != .min, time - cached.loadedAt < refreshMillis, time >= cached.loadedAt { return cached }
        var fresh = Rules(loadedAt: time)
        for (experimentID, text) in try await store.alertRuleTags() {
            // A tag set before rules were checked, or written around the API, is skipped.
            guard let parsed = try? MetricAlert.parse(text) else { continue }
            fresh.byExperiment[experimentID] = parsed
            for rule in parsed { fresh.keys.insert(rule.condition.key) }
        }
        rules.withLock { $0 = fresh }
        // Re-armed rules (a rule taken out of a run's `cairn.alert.fired`) fire again from here.
        fired.withLock { $0.removeAll() }
        return fresh
    }

    private func experiment(ofRun runID: String) async throws -> String {
        if let known = experiments.withLock({ $0[runID] }) { return known }
        let id = try await runs.fetchRunInfo(id: runID).experimentID
        experiments.withLock { map in
            if map.count >= Self.memoryLimit { map.removeAll() }
            map[runID] = id
        }
        return id
    }
}
