import Foundation

/// MLflow's trace search filter (`mlflow.search_traces(filter_string=…)`): clauses joined by
/// `AND`, each `field comparator value`, where a field is an attribute (`status`/`state`,
/// `timestamp_ms`, `execution_time_ms`, `end_time_ms`, `name`, `run_id`, …, optionally
/// prefixed `attribute.`, `attributes.`, `attr.` or `trace.`), `tags.<key>` or
/// `metadata.<key>` (also `request_metadata.<key>`), `span.<field>` (a span of the trace
/// matches; all span clauses of one filter must hold for the same span), `feedback.<name>`,
/// `expectation.<name>` and `issue.id`; keys may be quoted with backticks.
public enum TraceField: Sendable, Hashable {
    case state
    case timestamp
    case executionTime
    /// `request_time + execution_duration`.
    case endTime
    case experimentID
    case name
    case runID
    case traceID
    case clientRequestID
    case tag(String)
    case metadata(String)
    /// `prompt = 'name/version'`: the trace is linked to that prompt version.
    case prompt
    case span(SpanField)
    /// A valid assessment of that kind (`feedback`, `expectation`, `issue`) and name.
    case assessment(AssessmentKind, String)

    public var isNumeric: Bool { self == .timestamp || self == .executionTime || self == .endTime }
}

/// What a `span.` clause compares: MLflow's span columns, and its `content` (the span as
/// MLflow's JSON, `MLflowSpanDocument`) for `span.content`, `text` and `span.attributes.<key>`.
public enum SpanField: Sendable, Hashable {
    case name
    case type
    case status
    case content
    /// `span.attributes.<key>`: MLflow matches `"<key>"` followed by the pattern anywhere in
    /// the span's content.
    case attribute(String)
}

public enum AssessmentKind: String, Sendable, Hashable {
    case feedback
    case expectation
    case issue
}

public struct TraceFilterClause: Sendable, Hashable {
    public var field: TraceField
    public var comparator: FilterComparator
    public var value: FilterValue

    public init(_ field: TraceField, _ comparator: FilterComparator, _ value: FilterValue) {
        self.field = field
        self.comparator = comparator
        self.value = value
    }
}

public struct TraceOrder: Sendable, Hashable {
    public var field: TraceField
    public var ascending: Bool

    public init(_ field: TraceField, ascending: Bool) {
        self.field = field
        self.ascending = ascending
    }
}

public enum TraceFilterParser {
    /// MLflow's names (its `SearchTraceUtils.VALID_SEARCH_ATTRIBUTE_KEYS`); `text` is the
    /// spans' content and `prompt` a linked prompt version, as in MLflow.
    static let attributeNames: [String: TraceField] = [
        "status": .state,
        "timestamp_ms": .timestamp, "timestamp": .timestamp,
        "execution_time_ms": .executionTime, "execution_time": .executionTime,
        "end_time_ms": .endTime, "end_time": .endTime,
        "name": .name, "run_id": .runID, "request_id": .traceID,
        "client_request_id": .clientRequestID,
        "prompt": .prompt, "text": .span(.content),
    ]
    /// `order_by` also takes `experiment_id`.
    static let orderNames: [String: TraceField] = attributeNames.filter { !["client_request_id", "prompt", "text"].contains($0.key) }
        .merging(["experiment_id": .experimentID]) { a, _ in a }
    static let attributePrefixes: Set<String> = ["attribute", "attributes", "attr", "trace"]
    static let stringComparators: [FilterComparator] = [.equal, .notEqual, .like, .ilike, .rlike, .in, .notIn]
    static let keyValueComparators: [FilterComparator] = [.equal, .notEqual, .like, .ilike, .rlike, .isNull, .isNotNull]
    static let numericComparators: [FilterComparator] = [.equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual]
    static let assessmentComparators: [FilterComparator] = [.notEqual, .equal, .greater, .greaterOrEqual, .less, .lessOrEqual, .like, .ilike, .rlike, .isNull, .isNotNull]
    static let numericAssessmentComparators: [FilterComparator] = [.greater, .greaterOrEqual, .less, .lessOrEqual]
    static let spanFields: [String: SpanField] = ["name": .name, "type": .type, "status": .status]

    static func error(_ filter: String, _ detail: String) -> CairnError {
        .invalidParameter("Invalid filter '\(filter.count > 200 ? String(filter.prefix(200)) + "…" : filter)': \(detail).")
    }

    /// The clauses of `text` (all must hold); empty for an empty filter.
    public static func parse(_ text: String) throws(CairnError) -> [TraceFilterClause] {
        if text.utf8.count > Limits.maxFilterLength {
            throw .invalidParameter("Invalid filter: it is \(text.utf8.count) bytes long; the limit is \(Limits.maxFilterLength) bytes.")
        }
        var scanner = TraceFilterScanner(text)
        var clauses: [TraceFilterClause] = []
        scanner.skipSpace()
        if scanner.atEnd { return [] }
        while true {
            let (prefix, key) = try scanner.identifier()
            let field = try Self.field(prefix: prefix, key: key, filter: text)
            let comparator = try scanner.comparator()
            let value: FilterValue
            if comparator == .isNull || comparator == .isNotNull {
                value = .none
            } else if comparator == .in || comparator == .notIn {
                value = .list(try scanner.list())
            } else {
                // MLflow keeps a regular expression's backslashes as written (`'\d+'`).
                value = try scanner.scalar(raw: comparator == .rlike)
            }
            try check(field, comparator, value, filter: text)
            clauses.append(TraceFilterClause(field, comparator, value))
            if clauses.count > Limits.maxFilterClauses {
                throw error(text, "it has more than \(Limits.maxFilterClauses) clauses")
            }
            scanner.skipSpace()
            if scanner.atEnd { return clauses }
            guard scanner.keyword("AND") else {
                throw error(text, "expected AND or the end of the filter at position \(scanner.position)")
            }
        }
    }

    static func field(prefix: String?, key: String, filter: String) throws(CairnError) -> TraceField {
        guard let prefix else {
            // A keyword to MLflow's SQL parser (sqlparse): `trace.text` is the way to say it.
            if key.lowercased() == "text" { throw .invalidParameter("Invalid clause(s) in filter string: '\(key)'") }
            return try attribute(key, filter: filter)
        }
        switch prefix.lowercased() {
        case let p where attributePrefixes.contains(p):
            return try attribute(key, filter: filter)
        case "tag", "tags": return .tag(key)
        case "metadata", "request_metadata": return .metadata(key)
        case "span":
            if let field = spanFields[key] { return .span(field) }
            if key == "content" { return .span(.content) }
            if key.hasPrefix("attributes.") {
                let name = String(key.dropFirst("attributes.".count))
                guard !name.isEmpty else { throw .invalidParameter("Span attribute name cannot be empty after 'attributes.'") }
                return .span(.attribute(name))
            }
            throw .invalidParameter("Invalid span attribute '\(key)'. Supported attributes: name, status, type, attributes.<attribute_name>.")
        case "feedback", "expectation":
            guard !key.isEmpty else { throw .invalidParameter("Assessment field name cannot be empty") }
            return .assessment(AssessmentKind(rawValue: prefix.lowercased())!, key)
        case "issue":
            return .assessment(.issue, key)
        default:
            throw .invalidParameter("Invalid entity type '\(prefix)'. Valid values are attribute, attributes, trace, tag, tags, metadata, request_metadata, span, feedback, expectation and issue.")
        }
    }

    static func attribute(_ key: String, filter: String) throws(CairnError) -> TraceField {
        guard let field = attributeNames[key] else {
            throw .invalidParameter("Invalid attribute key '\(key)' specified. Valid keys are \(attributeNames.keys.sorted().joined(separator: ", ")).")
        }
        return field
    }

    static func check(_ field: TraceField, _ comparator: FilterComparator, _ value: FilterValue, filter: String) throws(CairnError) {
        if comparator == .rlike, case .string(let pattern) = value, (try? NSRegularExpression(pattern: pattern)) == nil {
            // MLflow on PostgreSQL refuses it (400); its SQLite store would match nothing.
            throw CairnError(.badRequest, "Invalid regular expression '\(pattern)' in filter '\(filter)': it does not compile.")
        }
        if field.isNumeric {
            guard numericComparators.contains(comparator) else {
                throw error(filter, "comparator '\(comparator.rawValue)' is not supported for a numeric attribute; use one of =, !=, <, <=, >, >=")
            }
            guard case .number(_, let text) = value, Int64(text) != nil else {
                throw error(filter, "the value for a numeric attribute must be an integer")
            }
        } else if case .assessment(let kind, let name) = field {
            try checkAssessment(kind, name, comparator, value)
        } else if case .span(let spanField) = field {
            let label: String
            switch spanField {
            case .name: label = "name"
            case .type: label = "type"
            case .status: label = "status"
            case .content: label = "content"
            case .attribute(let key): label = "attributes.\(key)"
            }
            let allowed = spanField == .content ? [FilterComparator.like, .ilike] : stringComparators
            guard allowed.contains(comparator) else {
                throw .invalidParameter("span.\(label) comparator '\(comparator.rawValue)' not one of '\(allowed.map(\.rawValue).joined(separator: ", "))'")
            }
            if case .number(_, let text) = value {
                throw .invalidParameter("Expected a quoted string value for span (e.g. 'my-value'). Got value \(text)")
            }
            if case .attribute = spanField, comparator == .in || comparator == .notIn {
                // MLflow's SQL layer refuses the list it builds here.
                throw CairnError(.badRequest, "span.\(label) cannot be compared with a list (\(comparator.rawValue)): use =, !=, LIKE or ILIKE.")
            }
        } else if case .metadata(let key) = field, TraceAnalytics.isReserved(key),
                  ![FilterComparator.equal, .notEqual, .isNull, .isNotNull].contains(comparator) {
            // MLflow keeps token usage and cost in columns and compares them only whole.
            throw .invalidParameter("Comparator '\(comparator.rawValue)' is not supported for reserved metadata '\(key)'. Only '=', '!=', 'IS NULL', and 'IS NOT NULL' are supported.")
        } else if field == .prompt {
            guard comparator == .equal else {
                throw .invalidParameter("Invalid comparator '\(comparator.rawValue)' for prompts filter. Only '=' is supported with format: prompt = \"name/version\"")
            }
            guard case .string(let text) = value, text.filter({ $0 == "/" }).count == 1 else {
                throw .invalidParameter("Invalid prompts filter value '\(value.literal)'. Expected format: prompt = \"name/version\"")
            }
        } else {
            let allowed: [FilterComparator]
            switch field {
            case .tag, .metadata: allowed = keyValueComparators
            default: allowed = stringComparators
            }
            guard allowed.contains(comparator) else {
                throw .invalidParameter("Invalid comparator '\(comparator.rawValue)' not one of \(allowed.map(\.rawValue).joined(separator: ", ")).")
            }
            if case .number(_, let text) = value {
                throw .invalidParameter("Expected a quoted string value (e.g. 'my-value'). Got value \(text)")
            }
        }
    }

    static func checkAssessment(_ kind: AssessmentKind, _ name: String, _ comparator: FilterComparator, _ value: FilterValue) throws(CairnError) {
        if kind == .issue {
            guard comparator == .equal else { throw .invalidParameter("issue.\(name) comparator '\(comparator.rawValue)' not one of '='") }
            guard case .string = value else { throw .invalidParameter("Expected a quoted string value for issue (e.g. 'my-value'). Got value \(value.literal)") }
            return
        }
        guard assessmentComparators.contains(comparator) else {
            throw .invalidParameter("assessment.\(name) comparator '\(comparator.rawValue)' not one of '\(assessmentComparators.map(\.rawValue).joined(separator: ", "))'")
        }
        if comparator == .isNull || comparator == .isNotNull { return }
        let numeric = numericAssessmentComparators.contains(comparator)
        switch value {
        case .number where numeric, .string where !numeric: return
        default:
            throw .invalidParameter(numeric
                ? "Expected a numeric value for \(kind.rawValue) when using comparator '\(comparator.rawValue)'. Got value \(value.literal)"
                : "Expected a quoted string value for \(kind.rawValue) (e.g. 'my-value'). Got value \(value.literal)")
        }
    }

    /// One `order_by` entry: `field [ASC|DESC]`.
    public static func parseOrder(_ text: String) throws(CairnError) -> TraceOrder {
        var scanner = TraceFilterScanner(text)
        scanner.skipSpace()
        let (prefix, key) = try scanner.identifier()
        let attribute = prefix.map { attributePrefixes.contains($0.lowercased()) } ?? true
        let field: TraceField
        if attribute {
            guard let known = orderNames[key] else {
                throw .invalidParameter("Invalid attribute key '\(key)' specified. Valid keys are \(orderNames.keys.sorted().joined(separator: ", ")).")
            }
            field = known
        } else {
            field = try Self.field(prefix: prefix, key: key, filter: text)
            switch field {
            case .metadata(let key) where TraceAnalytics.isReserved(key):
                throw .invalidParameter("Ordering by reserved metadata '\(key)' is not supported because it is represented by multiple columns.")
            case .tag, .metadata: break
            default: throw .invalidParameter("Invalid identifier type '\(prefix!.lowercased())'")
            }
        }
        scanner.skipSpace()
        var ascending = true
        if scanner.keyword("DESC") { ascending = false } else if scanner.keyword("ASC") { ascending = true }
        scanner.skipSpace()
        guard scanner.atEnd else { throw .invalidParameter("Invalid order_by clause '\(text)': expected '<field> [ASC|DESC]'.") }
        return TraceOrder(field, ascending: ascending)
    }
}

extension FilterValue {
    /// The value as written in a filter (for messages, as MLflow quotes it).
    var literal: String {
        switch self {
        case .string(let s): return "'\(s)'"
        case .number(_, let text): return text
        case .list(let items): return "(" + items.map { "'\($0)'" }.joined(separator: ", ") + ")"
        case .none: return ""
        }
    }
}

struct TraceFilterScanner {
    let text: String
    let chars: [Character]
    var index = 0

    init(_ text: String) {
        self.text = text
        self.chars = Array(text)
    }

    var atEnd: Bool { index >= chars.count }
    var position: Int { index }

    func error(_ detail: String) -> CairnError { TraceFilterParser.error(text, detail) }

    mutating func skipSpace() {
        while index < chars.count, chars[index].isWhitespace { index += 1 }
    }

    mutating func keyword(_ word: String) -> Bool {
        skipSpace()
        let end = index + word.count
        guard end <= chars.count, String(chars[index..<end]).uppercased() == word else { return false }
        if end < chars.count, chars[end].isLetter || chars[end].isNumber || chars[end] == "_" { return false }
        index = end
        return true
    }

    static func isWordCharacter(_ c: Character) -> Bool { c.isLetter || c.isNumber || c == "_" || c == "-" || c == ":" }

    /// `word`, `prefix.key`, `prefix.key.with.dots`, `` prefix.`quoted key` ``.
    mutating func identifier() throws(CairnError) -> (String?, String) {
        skipSpace()
        func segment(_ s: inout TraceFilterScanner) throws(CairnError) -> String {
            if s.index < s.chars.count, s.chars[s.index] == "`" || s.chars[s.index] == "\"" {
                let quote = s.chars[s.index]
                s.index += 1
                let start = s.index
                while s.index < s.chars.count, s.chars[s.index] != quote { s.index += 1 }
                guard s.index < s.chars.count else { throw s.error("unterminated quoted name") }
                let word = String(s.chars[start..<s.index])
                s.index += 1
                return word
            }
            let start = s.index
            while s.index < s.chars.count, Self.isWordCharacter(s.chars[s.index]) || s.chars[s.index] == "." { s.index += 1 }
            guard s.index > start else { throw s.error("expected a field name at position \(start)") }
            let word = String(s.chars[start..<s.index])
            // `span.attributes.`quoted key``
            if word.hasSuffix("."), s.index < s.chars.count, s.chars[s.index] == "`" { return word + (try segment(&s)) }
            return word
        }
        if index < chars.count, chars[index] == "`" { return (nil, try segment(&self)) }
        let start = index
        while index < chars.count, Self.isWordCharacter(chars[index]) { index += 1 }
        guard index > start else { throw error("expected a field name at position \(start)") }
        let first = String(chars[start..<index])
        guard index < chars.count, chars[index] == "." else { return (nil, first) }
        index += 1
        return (first, try segment(&self))
    }

    mutating func comparator() throws(CairnError) -> FilterComparator {
        skipSpace()
        for (symbol, comparator) in [("!=", FilterComparator.notEqual), ("<>", .notEqual), ("<=", .lessOrEqual), (">=", .greaterOrEqual),
                                     ("=", .equal), ("<", .less), (">", .greater)] {
            let end = index + symbol.count
            if end <= chars.count, String(chars[index..<end]) == symbol {
                index = end
                return comparator
            }
        }
        if keyword("LIKE") { return .like }
        if keyword("ILIKE") { return .ilike }
        if keyword("RLIKE") { return .rlike }
        if keyword("IN") { return .in }
        if keyword("NOT") {
            if keyword("IN") { return .notIn }
        }
        if keyword("IS") {
            if keyword("NULL") { return .isNull }
            if keyword("NOT"), keyword("NULL") { return .isNotNull }
        }
        throw error("expected a comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, RLIKE, IN, NOT IN) at position \(index)")
    }

    /// A quoted string; a backslash escapes the next character, or with `raw` is kept with it.
    mutating func quoted(raw: Bool = false) throws(CairnError) -> String? {
        skipSpace()
        guard index < chars.count, chars[index] == "'" || chars[index] == "\"" else { return nil }
        let quote = chars[index]
        index += 1
        var out = ""
        while index < chars.count {
            let c = chars[index]
            if c == "\\", index + 1 < chars.count {
                if raw { out.append(c) }
                out.append(chars[index + 1])
                index += 2
                continue
            }
            if c == quote {
                index += 1
                return out
            }
            out.append(c)
            index += 1
        }
        throw error("unterminated string")
    }

    mutating func scalar(raw: Bool = false) throws(CairnError) -> FilterValue {
        if let s = try quoted(raw: raw) { return .string(s) }
        skipSpace()
        let start = index
        while index < chars.count, chars[index].isNumber || "+-.eE".contains(chars[index]) { index += 1 }
        let literal = String(chars[start..<index])
        guard !literal.isEmpty, let number = Double(literal) else {
            throw error("expected a quoted string or a number at position \(start)")
        }
        return .number(number, text: literal)
    }

    mutating func list() throws(CairnError) -> [String] {
        skipSpace()
        guard index < chars.count, chars[index] == "(" else { throw error("expected '(' after IN at position \(index)") }
        index += 1
        var items: [String] = []
        while true {
            guard let item = try quoted() else { throw error("expected a quoted string in the IN list at position \(index)") }
            items.append(item)
            skipSpace()
            guard index < chars.count else { throw error("unterminated IN list") }
            if chars[index] == "," { index += 1; continue }
            if chars[index] == ")" { index += 1; return items }
            throw error("expected ',' or ')' in the IN list at position \(index)")
        }
    }
}
