import CairnCore

/// MLflow's experiment search filter evaluated on experiments in memory: what `cairn import
/// mlflow --from-store … --filter F` selects with, where no MLflow server runs the search. The
/// meaning is the stores' (`SearchSQL`): `name`, `experiment_id`, `creation_time`,
/// `last_update_time` and `tags.<key>`; LIKE is case-sensitive, ILIKE not, `%` and `_` are
/// wildcards; a comparison with a missing tag is false.
enum ExperimentFilterMatch {
    static func matches(_ expression: FilterExpression?, _ experiment: Experiment) -> Bool {
        guard let expression else { return true }
        switch expression {
        case .and(let items): return items.allSatisfy { matches($0, experiment) }
        case .or(let items): return items.contains { matches($0, experiment) }
        case .not(let inner): return !matches(inner, experiment)
        case .comparison(let comparison): return matches(comparison, experiment)
        }
    }

    static func matches(_ comparison: FilterComparison, _ experiment: Experiment) -> Bool {
        let actual: String?
        switch (comparison.identifier.entity, comparison.identifier.key) {
        case (.tag, let key): actual = experiment.tags.first { $0.key == key }?.value
        case (.attribute, "name"): actual = experiment.name
        case (.attribute, "experiment_id"): actual = experiment.experimentID
        case (.attribute, "creation_time"): return compare(experiment.creationTime, comparison)
        case (.attribute, "last_update_time"): return compare(experiment.lastUpdateTime, comparison)
        default: return false
        }
        switch (comparison.comparator, comparison.value) {
        case (.isNull, _): return actual == nil
        case (.isNotNull, _): return actual != nil
        case (.in, .list(let values)): return actual.map(values.contains) ?? false
        case (.notIn, .list(let values)): return actual.map { !values.contains($0) } ?? false
        case (let comparator, .string(let expected)):
            guard let actual else { return false }
            switch comparator {
            case .like: return like(Array(actual.unicodeScalars), Array(expected.unicodeScalars))
            case .ilike: return like(Array(actual.lowercased().unicodeScalars), Array(expected.lowercased().unicodeScalars))
            default: return comparator.compares(actual, expected) ?? false
            }
        default: return false
        }
    }

    static func compare(_ actual: Int64, _ comparison: FilterComparison) -> Bool {
        guard case .number(_, let text) = comparison.value, let expected = Int64(text) else { return false }
        return comparison.comparator.compares(actual, expected) ?? false
    }

    /// SQL LIKE: `%` any run of characters, `_` one character.
    static func like(_ text: [Unicode.Scalar], _ pattern: [Unicode.Scalar]) -> Bool {
        var t = 0, p = 0
        var star: Int?
        var mark = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == "_" || (pattern[p] != "%" && pattern[p] == text[t]) {
                t += 1
                p += 1
            } else if p < pattern.count, pattern[p] == "%" {
                star = p
                mark = t
                p += 1
            } else if let s = star {
                p = s + 1
                mark += 1
                t = mark
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == "%" { p += 1 }
        return p == pattern.count
    }
}
