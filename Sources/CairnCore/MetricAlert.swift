import Foundation

/// Metric-threshold alerts of an experiment: the experiment tag `cairn.alert`, a list of rules
/// separated by `;`, each a metric condition as promotion gates write them, optionally from a
/// step on:
///
///     metric=val_loss>2.0                    any logged value of val_loss above 2.0
///     metric=accuracy<0.5 after step 100     a value below 0.5 logged at step 100 or later
///     val_loss>2.0                           the same as metric=val_loss>2.0
///
/// A rule fires once per run: the first logged point that meets it sends the webhook event
/// `metric.threshold_crossed`, and the run's tag `cairn.alert.fired` lists the rules that fired
/// (remove a rule from it, or the tag, to be told again). NaN meets no condition but `!=`.
public struct MetricAlert: Sendable, Equatable {
    public var condition: MetricGate
    /// Only points at this step or later count.
    public var afterStep: Int64?

    public static let tag = "cairn.alert"
    /// The run tag that lists the rules that fired for the run, separated by `; `.
    public static let firedTag = "cairn.alert.fired"

    public init(condition: MetricGate, afterStep: Int64? = nil) {
        self.condition = condition
        self.afterStep = afterStep
    }

    /// The rule as written back (the same text for the same rule, whatever the spacing).
    public var text: String {
        let cond = "\(condition.key)\(condition.op)\(Self.number(condition.threshold))"
        return afterStep.map { "\(cond) after step \($0)" } ?? cond
    }

    /// Whether a point meets the rule.
    public func fires(value: Double, step: Int64) -> Bool {
        if let afterStep, step < afterStep { return false }
        return condition.holds(for: value)
    }

    public static func parse(_ text: String) throws(CairnError) -> [MetricAlert] {
        let clauses = text.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !clauses.isEmpty else {
            throw CairnError.invalidParameter("An alert rule needs at least one clause, e.g. 'metric=val_loss>2.0; metric=accuracy<0.5 after step 100'.")
        }
        var rules: [MetricAlert] = []
        for clause in clauses {
            var body = clause
            if body.lowercased().hasPrefix("metric=") { body = body.dropFirst("metric=".count).trimmingCharacters(in: .whitespaces) }
            var afterStep: Int64?
            if let range = body.range(of: " after step ", options: .caseInsensitive) {
                let stepText = body[range.upperBound...].trimmingCharacters(in: .whitespaces)
                guard let step = Int64(stepText), step >= 0 else {
                    throw CairnError.invalidParameter("Alert clause '\(clause)': 'after step' needs a whole number of 0 or more, e.g. 'accuracy<0.5 after step 100'.")
                }
                afterStep = step
                body = String(body[..<range.lowerBound])
            }
            guard let condition = MetricGate.parse(body), condition.threshold.isFinite || condition.op == "!=" else {
                throw CairnError.invalidParameter("Alert clause '\(clause)' is not a metric condition. Write it like metric=val_loss>2.0 or metric=accuracy<0.5 after step 100 (operators >= <= > < == !=).")
            }
            let rule = MetricAlert(condition: condition, afterStep: afterStep)
            if !rules.contains(where: { $0.text == rule.text }) { rules.append(rule) }
        }
        return rules
    }

    /// The rules listed in a run's `cairn.alert.fired` tag.
    public static func fired(inTag value: String?) -> Set<String> {
        Set((value ?? "").split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}
