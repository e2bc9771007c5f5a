import Foundation

/// MLflow's trace filter correlation (`traces/calculate-filter-correlation`): the normalized
/// pointwise mutual information of two filters over a set of traces, unsmoothed (NaN when a
/// filter matches nothing, -1 when they never match together) and smoothed with Jeffreys'
/// prior (0.5 added to each cell), as `mlflow.store.analytics.trace_correlation` computes it.
public enum TraceCorrelation {
    public static let jeffreysPrior = 0.5

    public static func npmi(joint: Int64, filter1: Int64, filter2: Int64, total: Int64) -> (npmi: Double, smoothed: Double) {
        if total <= 0 || filter1 == 0 || filter2 == 0 { return (.nan, .nan) }
        let n11 = Double(joint), n10 = Double(filter1 - joint), n01 = Double(filter2 - joint)
        let n00 = Double(total - filter1 - filter2 + joint)
        if min(n11, n10, n01, n00) < 0 { return (.nan, .nan) }
        let plain = joint == 0 ? -1.0 : core(n11, n10, n01, n00, smoothing: 0)
        return (plain, core(n11, n10, n01, n00, smoothing: jeffreysPrior))
    }

    static func core(_ n11: Double, _ n10: Double, _ n01: Double, _ n00: Double, smoothing: Double) -> Double {
        let a = n11 + smoothing, b = n10 + smoothing, c = n01 + smoothing, d = n00 + smoothing
        let total = a + b + c + d, n1 = a + b, n2 = a + c
        if n1 <= 0 || n2 <= 0 || a <= 0 { return .nan }
        if n10 == 0 && n01 == 0 && n00 == 0 { return 1 }
        let pmi = (log(a) + log(total)) - (log(n1) + log(n2))
        let npmi = pmi / -(log(a) - log(total))
        return max(-1, min(1, npmi))
    }
}
