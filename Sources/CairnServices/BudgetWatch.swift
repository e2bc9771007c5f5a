import CairnCore
import CairnStore

/// Announces an experiment whose compute cost passed its `cairn.budget`: checked when one of its
/// runs ends (the moment its cost is known), sent once as `budget_policy.exceeded`, and marked
/// with the experiment tag `cairn.budget.exceeded_at` (remove the tag to be told again).
public struct BudgetWatch: Sendable {
    let explorer: ExplorerService
    let store: any WebhookStore
    let now: @Sendable () -> Int64

    public init(explorer: ExplorerService, store: any WebhookStore, now: @escaping @Sendable () -> Int64) {
        self.explorer = explorer
        self.store = store
        self.now = now
    }

    /// Never throws: a failed check must not fail the run update that triggered it.
    public func runEnded(_ run: RunInfo) async {
        guard explorer.costModel != nil,
              let cost = try? await explorer.cost(experimentIDs: [run.experimentID]).first, cost.overBudget,
              let budget = cost.budget, let id = Int64(run.experimentID) else { return }
        _ = try? await store.markBudgetExceeded(experimentID: id, data: .object([
            ("experiment_id", .string(cost.experimentId)), ("experiment_name", .string(cost.name)),
            ("budget", .number(String(budget))), ("total", .number(String(cost.total))), ("currency", .string(cost.currency)),
            ("run_id", .string(run.runID)),
        ]), now: now())
    }
}
