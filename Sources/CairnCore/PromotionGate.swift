import Foundation

/// What a model version must show before it may take an alias or a stage: the registered
/// model's tag `cairn.gate` (every alias and stage) and `cairn.gate.<alias or stage>` (that one),
/// each a list of clauses separated by `;`:
///
///     require=code,data,env,seed,finished   the same words as `cairn check`, of the version's run
///     metric=val_auc>=0.9                   a condition on the run's latest value (repeatable)
///     not_worse=val_auc                     not worse than the version that holds the alias or
///                                           stage now, by the metric's direction (repeatable)
///     artifact=model/                       a file, or a folder ending in /, of the run (repeatable)
///
/// A version whose gate fails may still be promoted when it carries the tag
/// `cairn.gate.override` with the reason; the override is recorded in its history.
public struct PromotionGate: Sendable, Equatable {
    public var requirements: [String] = []
    public var metrics: [MetricGate] = []
    public var notWorse: [String] = []
    public var artifacts: [String] = []

    public static let tag = "cairn.gate"
    public static let overrideTag = "cairn.gate.override"

    public init() {}

    /// Whether a registered model tag defines a gate that applies to `target` (an alias or a stage).
    public static func applies(tagKey key: String, to target: String) -> Bool {
        key == tag || key == "\(tag).\(target)"
    }

    /// Whether a registered model tag is a gate definition at all.
    public static func isGateTag(_ key: String) -> Bool {
        (key == tag || key.hasPrefix(tag + ".")) && key != overrideTag
    }

    public static func parse(_ text: String) throws(CairnError) -> PromotionGate {
        var gate = PromotionGate()
        let clauses = text.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !clauses.isEmpty else {
            throw CairnError.invalidParameter("A promotion gate needs at least one clause, e.g. 'require=code,data; metric=val_auc>=0.9; not_worse=val_auc'.")
        }
        for clause in clauses {
            guard let eq = clause.firstIndex(of: "=") else {
                throw CairnError.invalidParameter("Gate clause '\(clause)' has no '='. Write require=…, metric=…, not_worse=… or artifact=….")
            }
            let name = clause[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            let value = clause[clause.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            guard !value.isEmpty else { throw CairnError.invalidParameter("Gate clause '\(clause)' has no value.") }
            switch name {
            case "require":
                for word in value.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !word.isEmpty {
                    guard RunChecks.requirementNames.contains(word) else {
                        throw CairnError.invalidParameter("Unknown requirement '\(word)' in gate clause '\(clause)'. Use any of: \(RunChecks.requirementNames.joined(separator: ", ")).")
                    }
                    if !gate.requirements.contains(word) { gate.requirements.append(word) }
                }
            case "metric":
                guard let metric = MetricGate.parse(value) else {
                    throw CairnError.invalidParameter("Gate clause '\(clause)' is not a metric condition. Write it like metric=val_auc>=0.9 (operators >= <= > < == !=).")
                }
                gate.metrics.append(metric)
            case "not_worse":
                gate.notWorse.append(value.hasPrefix("metrics.") ? String(value.dropFirst(8)) : value)
            case "artifact":
                gate.artifacts.append(value)
            default:
                throw CairnError.invalidParameter("Unknown gate clause '\(name)'. Use require=…, metric=…, not_worse=… or artifact=….")
            }
        }
        return gate
    }

    /// The clauses of several gates together (a model's general gate and its alias's own).
    public mutating func merge(_ other: PromotionGate) {
        for r in other.requirements where !requirements.contains(r) { requirements.append(r) }
        metrics += other.metrics
        for m in other.notWorse where !notWorse.contains(m) { notWorse.append(m) }
        for a in other.artifacts where !artifacts.contains(a) { artifacts.append(a) }
    }
}
