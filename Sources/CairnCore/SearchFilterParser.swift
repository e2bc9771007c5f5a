/// Parses MLflow search filters (extended with `OR`, `NOT` and parentheses) and `order_by`
/// clauses into the AST in SearchFilter.swift, then checks them against what the search
/// target accepts.
///
/// Grammar (keywords case-insensitive; precedence NOT > AND > OR):
///
///     filter     := or EOF
///     or         := and ("OR" and)*
///     and        := unary ("AND" unary)*
///     unary      := "NOT" unary | "(" or ")" | clause
///     clause     := identifier comparator value
///                 | identifier ("IN" | "NOT" "IN") "(" string ("," string)* ")"
///                 | identifier "IS" ["NOT"] "NULL"
///     comparator := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">=" | "LIKE" | "ILIKE"
///     value      := 'string' | "string" | number
public enum SearchFilterParser {
    /// nil for an empty / all-whitespace filter.
    public static func parse(_ text: String, for target: SearchTarget) throws(CairnError) -> FilterExpression? {
        if text.utf8.count > Limits.maxFilterLength {
            throw .invalidParameter(
                "Invalid filter: it is \(text.utf8.count) bytes long; the limit is \(Limits.maxFilterLength) bytes. "
                    + "Narrow the search with fewer clauses, or use IN lists instead of many ORs.")
        }
        var parser = FilterSyntaxParser(text)
        guard let tree = try parser.parseFilter() else { return nil }
        let validator = FilterValidator(target: target, scanner: parser.scanner)
        return try validator.validate(tree)
    }
}

public enum OrderByParser {
    /// A whole `order_by` list: at most `Limits.maxOrderByClauses` entries, each parsed as below.
    public static func parse(_ list: [String], for target: SearchTarget) throws(CairnError) -> [OrderByClause] {
        if list.count > Limits.maxOrderByClauses {
            throw .invalidParameter(
                "Invalid order_by: it has \(list.count) entries; the limit is \(Limits.maxOrderByClauses). "
                    + "Order by fewer columns.")
        }
        var clauses: [OrderByClause] = []
        for text in list { clauses.append(try parse(text, for: target)) }
        return clauses
    }

    public static func parse(_ text: String, for target: SearchTarget) throws(CairnError) -> OrderByClause {
        if text.utf8.count > Limits.maxKeyLength + 64 {
            throw .invalidParameter(
                "Invalid order_by clause '\(text.prefix(60))…': it is \(text.utf8.count) bytes long; "
                    + "a clause is a column name of at most \(Limits.maxKeyLength) characters and ASC or DESC.")
        }
        var scanner = FilterScanner(text, errorPrefix: "Invalid order_by clause '\(text)'")
        scanner.skipWhitespace()
        guard !scanner.atEnd else {
            throw scanner.error("the clause is empty; expected '<column> [ASC|DESC]'")
        }
        let identifier = try scanner.scanIdentifier(
            expectation: "expected a column such as metrics.loss or start_time")
        var ascending = true
        scanner.skipWhitespace()
        if !scanner.atEnd {
            if scanner.matchKeyword("ASC") {
                ascending = true
            } else if scanner.matchKeyword("DESC") {
                ascending = false
            } else {
                throw scanner.error(
                    "expected ASC or DESC after '\(identifier.text)' at "
                        + "\(scanner.position(scanner.pos))\(scanner.found(at: scanner.pos))")
            }
            scanner.skipWhitespace()
            if !scanner.atEnd {
                throw scanner.error(
                    "unexpected '\(scanner.tokenText(at: scanner.pos) ?? "")' at "
                        + "\(scanner.position(scanner.pos)); expected the end of the clause")
            }
        }
        let validator = FilterValidator(target: target, scanner: scanner)
        return OrderByClause(try validator.orderByIdentifier(identifier), ascending: ascending)
    }
}

// MARK: - Syntax

/// A parsed clause with the source positions that validation errors point at.
struct RawClause {
    var identifier: ScannedIdentifier
    var comparator: FilterComparator
    /// The comparator as written (`<>` stays `<>`), upper-cased for keywords.
    var comparatorText: String
    var comparatorPosition: Int
    var value: FilterValue
    var valuePosition: Int
}

indirect enum RawFilterNode {
    case clause(RawClause)
    case and([RawFilterNode])
    case or([RawFilterNode])
    case not(RawFilterNode)
}

struct FilterSyntaxParser {
    var scanner: FilterScanner
    /// How many `(` and `NOT` enclose the current position. Bounded (`Limits.maxFilterNesting`)
    /// so that no input makes this recursive-descent parser, the validator or the SQL compiler
    /// (all recursive over the nesting only; AND/OR chains are flat lists) use more than a fixed
    /// stack, and the SQL stays inside the database parser's own stack.
    private var depth = 0
    /// Clauses parsed so far, bounded by `Limits.maxFilterClauses` (the database's expression depth).
    private var clauseCount = 0

    init(_ text: String) {
        // Error messages quote the filter; a long one is cut so the message stays readable.
        let quoted = text.count > 200 ? String(text.prefix(200)) + "…" : text
        scanner = FilterScanner(text, errorPrefix: "Invalid filter '\(quoted)'")
    }

    private var pos: Int { scanner.pos }

    private func at(_ index: Int) -> String { scanner.position(index) }

    mutating func parseFilter() throws(CairnError) -> RawFilterNode? {
        scanner.skipWhitespace()
        if scanner.atEnd { return nil }
        let tree = try parseOr(expectation: "expected a clause")
        scanner.skipWhitespace()
        if let c = scanner.current {
            if c == ")" {
                throw scanner.error("unbalanced parentheses: unexpected ')' at \(at(pos))")
            }
            throw scanner.error(
                "unexpected '\(scanner.tokenText(at: pos) ?? "")' at \(at(pos)); "
                    + "expected AND, OR or the end of the filter")
        }
        return tree
    }

    private mutating func parseOr(expectation: String) throws(CairnError) -> RawFilterNode {
        var items = [try parseAnd(expectation: expectation)]
        while scanner.matchKeyword("OR") {
            items.append(try parseAnd(expectation: "expected a clause after 'OR'"))
        }
        if items.count == 1 { return items[0] }
        return .or(items.flatMap { item -> [RawFilterNode] in
            if case .or(let inner) = item { return inner }
            return [item]
        })
    }

    private mutating func parseAnd(expectation: String) throws(CairnError) -> RawFilterNode {
        var items = [try parseUnary(expectation: expectation)]
        while scanner.matchKeyword("AND") {
            items.append(try parseUnary(expectation: "expected a clause after 'AND'"))
        }
        if items.count == 1 { return items[0] }
        return .and(items.flatMap { item -> [RawFilterNode] in
            if case .and(let inner) = item { return inner }
            return [item]
        })
    }

    private mutating func enterNesting(at index: Int) throws(CairnError) {
        depth += 1
        if depth > Limits.maxFilterNesting {
            throw scanner.error(
                "parentheses and NOT are nested more than \(Limits.maxFilterNesting) deep at \(at(index)); "
                    + "the limit is \(Limits.maxFilterNesting)")
        }
    }

    private mutating func parseUnary(expectation: String) throws(CairnError) -> RawFilterNode {
        scanner.skipWhitespace()
        let start = pos
        if scanner.matchKeyword("NOT") {
            try enterNesting(at: start)
            defer { depth -= 1 }
            return .not(try parseUnary(expectation: "expected a clause after 'NOT'"))
        }
        if scanner.current == "(" {
            try enterNesting(at: start)
            defer { depth -= 1 }
            let open = pos
            scanner.pos += 1
            scanner.skipWhitespace()
            if scanner.current == ")" {
                throw scanner.error("empty parentheses at \(at(open))")
            }
            let inner = try parseOr(expectation: "expected a clause after '('")
            scanner.skipWhitespace()
            guard scanner.current == ")" else {
                if scanner.atEnd {
                    throw scanner.error(
                        "unbalanced parentheses: the '(' at \(at(open)) is never closed; "
                            + "expected ')' at \(at(pos))")
                }
                throw scanner.error(
                    "unexpected '\(scanner.tokenText(at: pos) ?? "")' at \(at(pos)); "
                        + "expected AND, OR or ')' to close the '(' at \(at(open))")
            }
            scanner.pos += 1
            return inner
        }
        return .clause(try parseClause(expectation: expectation))
    }

    private mutating func parseClause(expectation: String) throws(CairnError) -> RawClause {
        scanner.skipWhitespace()
        clauseCount += 1
        if clauseCount > Limits.maxFilterClauses {
            throw scanner.error(
                "it has more than \(Limits.maxFilterClauses) clauses (the limit); "
                    + "combine values with IN ('a', 'b', …) or narrow the search")
        }
        let word = FilterScanner.keywordForm(scanner.peekWord())
        if word == "AND" || word == "OR" {
            throw scanner.error("\(expectation) at \(at(pos)), found '\(scanner.peekWord())'")
        }
        let identifier = try scanner.scanIdentifier(expectation: expectation)
        let (comparator, comparatorText, comparatorPosition) = try parseComparator(after: identifier)
        let valuePosition: Int
        let value: FilterValue
        switch comparator {
        case .isNull, .isNotNull:
            valuePosition = comparatorPosition
            value = .none
        case .in, .notIn:
            scanner.skipWhitespace()
            valuePosition = pos
            value = .list(try parseList(after: comparatorText))
        default:
            scanner.skipWhitespace()
            valuePosition = pos
            value = try parseScalar(after: comparatorText)
        }
        return RawClause(
            identifier: identifier, comparator: comparator, comparatorText: comparatorText,
            comparatorPosition: comparatorPosition, value: value, valuePosition: valuePosition)
    }

    private static let comparatorList = "=, !=, <>, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL or IS NOT NULL"

    private mutating func parseComparator(
        after identifier: ScannedIdentifier
    ) throws(CairnError) -> (FilterComparator, String, Int) {
        scanner.skipWhitespace()
        let start = pos
        guard let c = scanner.current else {
            throw scanner.error("expected a comparator after '\(identifier.text)' at \(at(pos))")
        }
        if FilterScanner.isOperatorChar(c) {
            var end = pos
            while let d = scanner.char(at: end), FilterScanner.isOperatorChar(d) { end += 1 }
            let op = scanner.text(from: pos, to: end)
            let comparator: FilterComparator? = switch op {
            case "=": .equal
            case "!=", "<>": .notEqual
            case "<": .less
            case "<=": .lessOrEqual
            case ">": .greater
            case ">=": .greaterOrEqual
            default: nil
            }
            guard let comparator else {
                throw scanner.error(
                    "unknown comparator '\(op)' at \(at(start)); expected one of \(Self.comparatorList)")
            }
            scanner.pos = end
            return (comparator, op, start)
        }
        guard FilterScanner.isWordChar(c) else {
            throw scanner.error(
                "expected a comparator after '\(identifier.text)' at \(at(pos))\(scanner.found(at: pos))")
        }
        let word = scanner.scanWord()
        switch FilterScanner.keywordForm(word) {
        case "LIKE":
            return (.like, "LIKE", start)
        case "ILIKE":
            return (.ilike, "ILIKE", start)
        case "IN":
            return (.in, "IN", start)
        case "NOT":
            guard scanner.matchKeyword("IN") else {
                throw scanner.error(
                    "expected IN after 'NOT' at \(at(pos))\(scanner.found(at: pos)) "
                        + "(the only comparator starting with NOT is NOT IN)")
            }
            return (.notIn, "NOT IN", start)
        case "IS":
            if scanner.matchKeyword("NULL") { return (.isNull, "IS NULL", start) }
            if scanner.matchKeyword("NOT") {
                if scanner.matchKeyword("NULL") { return (.isNotNull, "IS NOT NULL", start) }
                throw scanner.error("expected NULL after 'IS NOT' at \(at(pos))\(scanner.found(at: pos))")
            }
            throw scanner.error("expected NULL or NOT NULL after 'IS' at \(at(pos))\(scanner.found(at: pos))")
        default:
            throw scanner.error(
                "unknown comparator '\(word)' after '\(identifier.text)' at \(at(start)); "
                    + "expected one of \(Self.comparatorList)")
        }
    }

    /// A quoted string or an unquoted number.
    private mutating func parseScalar(after comparator: String) throws(CairnError) -> FilterValue {
        guard let c = scanner.current else {
            throw scanner.error("expected a value after '\(comparator)' at \(at(pos))")
        }
        if FilterScanner.isStringQuote(c) {
            return .string(try scanner.scanQuoted(what: "string"))
        }
        if scanner.atNumberStart, let number = try scanner.scanNumber() {
            return .number(number.value, text: number.text)
        }
        if FilterScanner.isWordChar(c), scanner.peekWord().contains(where: { $0.isLetter || $0.isNumber }) {
            throw scanner.error(
                "unquoted value '\(scanner.peekWord())' after '\(comparator)' at \(at(pos)); "
                    + "put string values in single or double quotes")
        }
        throw scanner.error("expected a value after '\(comparator)' at \(at(pos))\(scanner.found(at: pos))")
    }

    /// `( 'a', "b", … )` after IN / NOT IN.
    private mutating func parseList(after comparator: String) throws(CairnError) -> [String] {
        guard scanner.current == "(" else {
            throw scanner.error(
                "expected a parenthesised list of quoted strings after '\(comparator)' at "
                    + "\(at(pos))\(scanner.found(at: pos))")
        }
        let open = pos
        scanner.pos += 1
        scanner.skipWhitespace()
        if scanner.current == ")" {
            throw scanner.error("empty list after '\(comparator)' at \(at(open))")
        }
        var items: [String] = []
        while true {
            scanner.skipWhitespace()
            guard let c = scanner.current, FilterScanner.isStringQuote(c) else {
                if scanner.atEnd {
                    throw scanner.error(
                        "unterminated list: the '(' at \(at(open)) is never closed; "
                            + "expected a quoted string at \(at(pos))")
                }
                throw scanner.error(
                    "expected a quoted string in the list after '\(comparator)' at "
                        + "\(at(pos))\(scanner.found(at: pos))")
            }
            if items.count == Limits.maxFilterListItems {
                throw scanner.error(
                    "the list after '\(comparator)' at \(at(open)) has more than \(Limits.maxFilterListItems) items (the limit)")
            }
            items.append(try scanner.scanQuoted(what: "string"))
            scanner.skipWhitespace()
            switch scanner.current {
            case ",":
                scanner.pos += 1
            case ")":
                scanner.pos += 1
                return items
            case nil:
                throw scanner.error(
                    "unterminated list: the '(' at \(at(open)) is never closed; expected ')' at \(at(pos))")
            default:
                throw scanner.error(
                    "expected ',' or ')' in the list after '\(comparator)' at \(at(pos))\(scanner.found(at: pos))")
            }
        }
    }
}

// MARK: - Validation

/// Checks parsed clauses against what a search target accepts and canonicalises attribute keys.
struct FilterValidator {
    let target: SearchTarget
    let scanner: FilterScanner

    private func at(_ index: Int) -> String { scanner.position(index) }

    // Comparator sets.
    private static let numeric: [FilterComparator] = [.equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual]
    private static let keyValue: [FilterComparator] = [.equal, .notEqual, .like, .ilike, .isNull, .isNotNull]
    private static let string: [FilterComparator] = [.equal, .notEqual, .like, .ilike]
    private static let stringOrList: [FilterComparator] = [.equal, .notEqual, .like, .ilike, .in, .notIn]
    private static let equalityOrList: [FilterComparator] = [.equal, .notEqual, .in, .notIn]

    /// What kind of value an attribute holds and which comparators it takes.
    private enum AttributeKind {
        case string([FilterComparator])
        case integer
    }

    // Runs.
    private static let runAttributeAliases: [String: String] = [
        "run_id": "run_id",
        "run_name": "run_name", "run name": "run_name", "Run name": "run_name", "Run Name": "run_name",
        "status": "status",
        "user_id": "user_id",
        "artifact_uri": "artifact_uri",
        "lifecycle_stage": "lifecycle_stage",
        "start_time": "start_time", "created": "start_time", "Created": "start_time",
        "end_time": "end_time",
    ]
    private static let runAttributeKinds: [String: AttributeKind] = [
        "run_id": .string(stringOrList),
        "run_name": .string(string),
        "status": .string(string),
        "user_id": .string(string),
        "artifact_uri": .string(string),
        "lifecycle_stage": .string(string),
        "start_time": .integer,
        "end_time": .integer,
    ]
    private static let runOrderByAttributes: Set<String> = [
        "start_time", "end_time", "run_id", "run_name", "status", "user_id", "artifact_uri", "experiment_id",
    ]
    private static let datasetKeys: [String] = ["name", "digest", "context"]

    // Experiments.
    private static let experimentAttributeKinds: [String: AttributeKind] = [
        "name": .string(stringOrList),
        "experiment_id": .string(equalityOrList),
        "creation_time": .integer,
        "last_update_time": .integer,
    ]

    // Logged models (MLflow 3).
    private static let loggedModelAttributeAliases: [String: String] = [
        "name": "name", "model_id": "model_id", "model_type": "model_type", "status": "status",
        "source_run_id": "source_run_id", "experiment_id": "experiment_id",
        "creation_timestamp": "creation_timestamp", "creation_time": "creation_timestamp",
        "last_updated_timestamp": "last_updated_timestamp", "last_updated_time": "last_updated_timestamp",
    ]
    private static let loggedModelAttributeKinds: [String: AttributeKind] = [
        "name": .string(stringOrList),
        "model_id": .string(stringOrList),
        "model_type": .string(stringOrList),
        "status": .string(stringOrList),
        "source_run_id": .string(stringOrList),
        "experiment_id": .string(equalityOrList),
        "creation_timestamp": .integer,
        "last_updated_timestamp": .integer,
    ]

    // Model registry.
    private static let registeredModelAttributeKinds: [String: AttributeKind] = [
        "name": .string(stringOrList),
    ]
    private static let modelVersionAttributeAliases: [String: String] = [
        "name": "name", "run_id": "run_id", "source_path": "source_path", "version_number": "version_number",
    ]
    private static let modelVersionAttributeKinds: [String: AttributeKind] = [
        "name": .string(stringOrList),
        "run_id": .string(stringOrList),
        "source_path": .string(stringOrList),
        "version_number": .integer,
    ]
    private static let registeredModelOrderAliases: [String: String] = [
        "name": "name", "timestamp": "last_updated_timestamp", "last_updated_timestamp": "last_updated_timestamp",
    ]
    private static let modelVersionOrderAliases: [String: String] = [
        "name": "name", "version_number": "version_number", "creation_timestamp": "creation_timestamp",
        "last_updated_timestamp": "last_updated_timestamp", "timestamp": "last_updated_timestamp",
    ]

    private static func names(_ comparators: [FilterComparator]) -> String {
        comparators.map(\.rawValue).joined(separator: ", ")
    }

    // MARK: Filters

    func validate(_ node: RawFilterNode) throws(CairnError) -> FilterExpression {
        switch node {
        case .clause(let clause):
            return .comparison(try validate(clause))
        case .and(let items):
            var out: [FilterExpression] = []
            for item in items { out.append(try validate(item)) }
            return .and(out)
        case .or(let items):
            var out: [FilterExpression] = []
            for item in items { out.append(try validate(item)) }
            return .or(out)
        case .not(let inner):
            return .not(try validate(inner))
        }
    }

    func validate(_ clause: RawClause) throws(CairnError) -> FilterComparison {
        let id = clause.identifier
        switch (target, id.entity) {
        case (.runs, .metric), (.loggedModels, .metric):
            try require(clause, in: Self.numeric, for: "metric '\(id.key)'")
            try requireNumber(clause, for: "metric '\(id.key)'", integer: false)
            return FilterComparison(FilterIdentifier(.metric, id.key), clause.comparator, clause.value)

        case (.runs, .param), (.runs, .tag), (.experiments, .tag), (.loggedModels, .param), (.loggedModels, .tag),
             (.registeredModels, .tag), (.modelVersions, .tag):
            let what = id.entity == .param ? "parameter '\(id.key)'" : "tag '\(id.key)'"
            try require(clause, in: Self.keyValue, for: what)
            try requireString(clause, for: what)
            return FilterComparison(FilterIdentifier(id.entity, id.key), clause.comparator, clause.value)

        case (.runs, .attribute):
            guard let key = Self.runAttributeAliases[id.key], let kind = Self.runAttributeKinds[key] else {
                let valid = Self.runAttributeKinds.keys.sorted().joined(separator: ", ")
                throw scanner.error(
                    "unknown attribute '\(id.key)' at \(at(id.position)); valid attributes are \(valid)")
            }
            return try validateAttribute(clause, key: key, kind: kind)

        case (.runs, .dataset):
            guard Self.datasetKeys.contains(id.key) else {
                throw scanner.error(
                    "unknown dataset field '\(id.key)' at \(at(id.position)); "
                        + "valid fields are \(Self.datasetKeys.joined(separator: ", "))")
            }
            let what = "dataset field '\(id.key)'"
            try require(clause, in: Self.stringOrList, for: what)
            try requireString(clause, for: what)
            return FilterComparison(FilterIdentifier(.dataset, id.key), clause.comparator, clause.value)

        case (.experiments, .attribute):
            guard let kind = Self.experimentAttributeKinds[id.key] else {
                let valid = Self.experimentAttributeKinds.keys.sorted().joined(separator: ", ")
                throw scanner.error(
                    "unknown experiment attribute '\(id.key)' at \(at(id.position)); valid attributes are \(valid)")
            }
            return try validateAttribute(clause, key: id.key, kind: kind)

        case (.loggedModels, .attribute):
            guard let key = Self.loggedModelAttributeAliases[id.key], let kind = Self.loggedModelAttributeKinds[key] else {
                let valid = Self.loggedModelAttributeKinds.keys.sorted().joined(separator: ", ")
                throw scanner.error(
                    "unknown logged model attribute '\(id.key)' at \(at(id.position)); valid attributes are \(valid)")
            }
            return try validateAttribute(clause, key: key, kind: kind)

        case (.registeredModels, .attribute):
            guard let kind = Self.registeredModelAttributeKinds[id.key] else {
                throw scanner.error(
                    "unknown registered model attribute '\(id.key)' at \(at(id.position)); registered models are filtered by name and tags.<key>")
            }
            return try validateAttribute(clause, key: id.key, kind: kind)

        case (.modelVersions, .attribute):
            guard let key = Self.modelVersionAttributeAliases[id.key], let kind = Self.modelVersionAttributeKinds[key] else {
                let valid = Self.modelVersionAttributeKinds.keys.sorted().joined(separator: ", ")
                throw scanner.error(
                    "unknown model version attribute '\(id.key)' at \(at(id.position)); valid attributes are \(valid)")
            }
            return try validateAttribute(clause, key: key, kind: kind)

        case (.registeredModels, _), (.modelVersions, _):
            throw scanner.error(
                "the model registry cannot be filtered by '\(id.text)' at \(at(id.position)); use its attributes or tags.<key>")

        case (.loggedModels, .dataset):
            throw scanner.error(
                "logged models cannot be filtered by '\(id.text)' at \(at(id.position)); "
                    + "pass datasets in the request's 'datasets' field instead")

        case (.experiments, .metric), (.experiments, .param), (.experiments, .dataset):
            throw scanner.error(
                "experiments cannot be filtered by '\(id.text)' at \(at(id.position)); "
                    + "only attributes (name, experiment_id, creation_time, last_update_time) and tags are supported")
        }
    }

    private func validateAttribute(_ clause: RawClause, key: String, kind: AttributeKind) throws(CairnError) -> FilterComparison {
        let what = "attribute '\(key)'"
        switch kind {
        case .string(let comparators):
            try require(clause, in: comparators, for: what)
            try requireString(clause, for: what)
        case .integer:
            try require(clause, in: Self.numeric, for: what)
            try requireNumber(clause, for: what, integer: true)
        }
        return FilterComparison(FilterIdentifier(.attribute, key), clause.comparator, clause.value)
    }

    private func require(_ clause: RawClause, in allowed: [FilterComparator], for what: String) throws(CairnError) {
        guard allowed.contains(clause.comparator) else {
            throw scanner.error(
                "comparator '\(clause.comparatorText)' at \(at(clause.comparatorPosition)) is not supported for "
                    + "\(what); use one of \(Self.names(allowed))")
        }
    }

    /// Values for string comparisons must be quoted strings (IN lists and IS NULL are fine as parsed).
    private func requireString(_ clause: RawClause, for what: String) throws(CairnError) {
        if case .number(_, let text) = clause.value {
            throw scanner.error(
                "the value for \(what) must be a quoted string, found the number \(text) at "
                    + "\(at(clause.valuePosition)); write \(clause.identifier.text) \(clause.comparatorText) '\(text)'")
        }
    }

    private func requireNumber(_ clause: RawClause, for what: String, integer: Bool) throws(CairnError) {
        switch clause.value {
        case .number(_, let text):
            if integer, Int64(text) == nil {
                throw scanner.error(
                    "expected an integer for \(what) at \(at(clause.valuePosition)), found '\(text)'")
            }
        case .string(let text):
            throw scanner.error(
                "expected a number for \(what) at \(at(clause.valuePosition)), found the quoted string '\(text)'; "
                    + "write numbers without quotes")
        case .list, .none:
            // The allowed comparators never produce these.
            throw scanner.error("expected a number for \(what) at \(at(clause.valuePosition))")
        }
    }

    // MARK: order_by

    func orderByIdentifier(_ id: ScannedIdentifier) throws(CairnError) -> FilterIdentifier {
        switch (target, id.entity) {
        case (.runs, .metric), (.runs, .param), (.runs, .tag):
            return FilterIdentifier(id.entity, id.key)
        case (.runs, .attribute):
            if let key = Self.runAttributeAliases[id.key] ?? (id.key == "experiment_id" ? "experiment_id" : nil),
               Self.runOrderByAttributes.contains(key) {
                return FilterIdentifier(.attribute, key)
            }
            throw scanner.error(
                "cannot order runs by attribute '\(id.key)' at \(at(id.position)); valid attributes are "
                    + Self.runOrderByAttributes.sorted().joined(separator: ", "))
        case (.experiments, .attribute):
            if Self.experimentAttributeKinds[id.key] != nil {
                return FilterIdentifier(.attribute, id.key)
            }
            throw scanner.error(
                "cannot order experiments by '\(id.key)' at \(at(id.position)); valid columns are "
                    + Self.experimentAttributeKinds.keys.sorted().joined(separator: ", "))
        case (.registeredModels, .attribute):
            if let key = Self.registeredModelOrderAliases[id.key] { return FilterIdentifier(.attribute, key) }
            throw scanner.error(
                "cannot order registered models by '\(id.key)' at \(at(id.position)); valid fields are name, timestamp and last_updated_timestamp")
        case (.modelVersions, .attribute):
            if let key = Self.modelVersionOrderAliases[id.key] { return FilterIdentifier(.attribute, key) }
            throw scanner.error(
                "cannot order model versions by '\(id.key)' at \(at(id.position)); valid fields are name, version_number, creation_timestamp and last_updated_timestamp")
        case (.registeredModels, _), (.modelVersions, _):
            throw scanner.error("cannot order the model registry by '\(id.text)' at \(at(id.position)); use an attribute")
        case (.loggedModels, .metric):
            return FilterIdentifier(.metric, id.key)
        case (.loggedModels, .attribute):
            if let key = Self.loggedModelAttributeAliases[id.key] {
                return FilterIdentifier(.attribute, key)
            }
            throw scanner.error(
                "cannot order logged models by '\(id.key)' at \(at(id.position)); valid fields are "
                    + Self.loggedModelAttributeKinds.keys.sorted().joined(separator: ", ") + " and metrics.<key>")
        case (.loggedModels, _):
            throw scanner.error(
                "cannot order logged models by '\(id.text)' at \(at(id.position)); valid fields are "
                    + Self.loggedModelAttributeKinds.keys.sorted().joined(separator: ", ") + " and metrics.<key>")
        case (.runs, .dataset):
            throw scanner.error(
                "cannot order runs by '\(id.text)' at \(at(id.position)); use metrics.<key>, params.<key>, "
                    + "tags.<key> or an attribute")
        case (.experiments, _):
            throw scanner.error(
                "cannot order experiments by '\(id.text)' at \(at(id.position)); valid columns are "
                    + Self.experimentAttributeKinds.keys.sorted().joined(separator: ", "))
        }
    }
}
