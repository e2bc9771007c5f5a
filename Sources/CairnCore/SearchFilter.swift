/// The search-filter language: the AST that the parser produces and the stores translate
/// into SQL with bound parameters.
///
/// It is MLflow's grammar (`clause AND clause …`) extended with `OR`, `NOT` and parentheses.
/// Every MLflow filter keeps its meaning.

/// Which kind of value an identifier names.
public enum FilterEntity: String, Sendable, Hashable {
    case metric, param, tag, attribute, dataset
}

/// `[prefix.]key`, with the prefix resolved to an entity (no prefix = attribute).
public struct FilterIdentifier: Sendable, Hashable, CustomStringConvertible {
    public var entity: FilterEntity
    public var key: String

    public init(_ entity: FilterEntity, _ key: String) {
        self.entity = entity
        self.key = key
    }

    public var description: String { "\(entity.rawValue).\(key)" }
}

public enum FilterComparator: String, Sendable, Hashable, CaseIterable {
    case equal = "="
    case notEqual = "!="
    case less = "<"
    case lessOrEqual = "<="
    case greater = ">"
    case greaterOrEqual = ">="
    case like = "LIKE"
    case ilike = "ILIKE"
    /// A regular expression found anywhere in the value, case-sensitively (trace filters only,
    /// as in MLflow).
    case rlike = "RLIKE"
    case `in` = "IN"
    case notIn = "NOT IN"
    case isNull = "IS NULL"
    case isNotNull = "IS NOT NULL"
}

extension FilterComparator {
    /// `actual <comparator> expected` for `=`, `!=`, `<`, `<=`, `>`, `>=`; nil for the others
    /// (filters evaluated in memory: dataset and experiment filters).
    public func compares<T: Comparable>(_ actual: T, _ expected: T) -> Bool? {
        switch self {
        case .equal: actual == expected
        case .notEqual: actual != expected
        case .less: actual < expected
        case .lessOrEqual: actual <= expected
        case .greater: actual > expected
        case .greaterOrEqual: actual >= expected
        default: nil
        }
    }
}

public enum FilterValue: Sendable, Hashable {
    /// A quoted string.
    case string(String)
    /// An unquoted number; `text` is the literal as written, so integers keep full int64 precision.
    case number(Double, text: String)
    /// A parenthesised list of quoted strings (after `IN` / `NOT IN`).
    case list([String])
    /// No value (after `IS NULL` / `IS NOT NULL`).
    case none
}

public struct FilterComparison: Sendable, Hashable {
    public var identifier: FilterIdentifier
    public var comparator: FilterComparator
    public var value: FilterValue

    public init(_ identifier: FilterIdentifier, _ comparator: FilterComparator, _ value: FilterValue) {
        self.identifier = identifier
        self.comparator = comparator
        self.value = value
    }
}

public indirect enum FilterExpression: Sendable, Hashable {
    case comparison(FilterComparison)
    case and([FilterExpression])
    case or([FilterExpression])
    case not(FilterExpression)
}

/// One `order_by` entry: `<identifier> [ASC|DESC]`.
public struct OrderByClause: Sendable, Hashable {
    public var identifier: FilterIdentifier
    public var ascending: Bool

    public init(_ identifier: FilterIdentifier, ascending: Bool) {
        self.identifier = identifier
        self.ascending = ascending
    }
}

/// What a search is over; each target accepts different identifiers and comparators.
public enum SearchTarget: Sendable, Hashable {
    case runs
    case experiments
    case loggedModels
    case registeredModels
    case modelVersions
}
