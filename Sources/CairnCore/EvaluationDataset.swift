/// MLflow 3 evaluation datasets (`mlflow.genai.datasets`): named sets of records (inputs,
/// expectations, optional outputs, tags, source) kept for `mlflow.genai.evaluate`, linked to
/// experiments. A record is identified within its dataset by its inputs.
public struct EvaluationDataset: Sendable, Equatable {
    public var datasetID: String
    public var name: String
    public var tags: [Tag]
    /// JSON texts as MLflow keeps them: the record fields' types, and `{"num_records": N}`.
    public var schema: String?
    public var profile: String?
    public var digest: String
    public var createdTime: Int64
    public var lastUpdateTime: Int64
    public var createdBy: String?
    public var lastUpdatedBy: String?
    public var experimentIDs: [String]

    public init(datasetID: String, name: String, tags: [Tag], schema: String?, profile: String?, digest: String, createdTime: Int64,
                lastUpdateTime: Int64, createdBy: String?, lastUpdatedBy: String?, experimentIDs: [String]) {
        self.datasetID = datasetID
        self.name = name
        self.tags = tags
        self.schema = schema
        self.profile = profile
        self.digest = digest
        self.createdTime = createdTime
        self.lastUpdateTime = lastUpdateTime
        self.createdBy = createdBy
        self.lastUpdatedBy = lastUpdatedBy
        self.experimentIDs = experimentIDs
    }
}

/// One record of an evaluation dataset: its JSON object (`inputs`, `expectations`, `outputs`,
/// `tags`, `source`, …) and `inputKey`, the canonical text of its inputs that identifies it.
public struct DatasetRecord: Sendable, Equatable {
    public var recordID: String
    public var inputKey: String
    public var body: JSONValue
    public var createdTime: Int64
    public var lastUpdateTime: Int64

    public init(recordID: String, inputKey: String, body: JSONValue, createdTime: Int64, lastUpdateTime: Int64) {
        self.recordID = recordID
        self.inputKey = inputKey
        self.body = body
        self.createdTime = createdTime
        self.lastUpdateTime = lastUpdateTime
    }
}

extension JSONValue {
    /// The value as JSON text with object keys sorted at every depth (a canonical form: two
    /// equal values have the same text).
    public var canonicalText: String {
        var writer = JSONWriter()
        writer.value(sortedKeys)
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    var sortedKeys: JSONValue {
        switch self {
        case .object(let members): return .object(members.map { ($0.0, $0.1.sortedKeys) }.sorted { $0.0 < $1.0 })
        case .array(let items): return .array(items.map(\.sortedKeys))
        default: return self
        }
    }

    /// The text as written by `JSONWriter`.
    public var text: String {
        var writer = JSONWriter()
        writer.value(self)
        return String(decoding: writer.bytes, as: UTF8.self)
    }
}

/// A `search_datasets` filter: clauses joined by `AND` over `name`, `dataset_id`, `digest`,
/// `created_by`, `last_updated_by` (strings: `= != LIKE ILIKE`), `created_time`,
/// `last_update_time` (integers: `= != < <= > >=`) and `tags.<key>`; evaluated over an
/// experiment's datasets (there are few).
public struct EvaluationDatasetFilter: Sendable {
    public struct Clause: Sendable {
        public var field: String
        public var tag: String?
        public var comparator: FilterComparator
        public var value: FilterValue
    }

    public var clauses: [Clause]
    static let stringFields: Set<String> = ["name", "dataset_id", "digest", "created_by", "last_updated_by"]
    static let numberFields: Set<String> = ["created_time", "last_update_time"]

    public init(_ text: String) throws(CairnError) {
        clauses = []
        var scanner = TraceFilterScanner(text)
        scanner.skipSpace()
        if scanner.atEnd { return }
        while true {
            let (prefix, key) = try scanner.identifier()
            var field = key
            var tag: String?
            if let prefix {
                switch prefix.lowercased() {
                case "tags", "tag": tag = key; field = "tags"
                case "attributes", "attribute", "dataset": break
                default: throw .invalidParameter("Invalid entity type '\(prefix)' in the dataset filter; use name, created_time, last_update_time, tags.<key>, …")
                }
            }
            let comparator = try scanner.comparator()
            let value = try scanner.scalar()
            if Self.numberFields.contains(field) {
                guard case .number = value, [.equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual].contains(comparator) else {
                    throw .invalidParameter("Invalid dataset filter: '\(field)' takes a number and one of =, !=, <, <=, >, >=.")
                }
            } else if Self.stringFields.contains(field) || tag != nil {
                guard case .string = value, [.equal, .notEqual, .like, .ilike].contains(comparator) else {
                    throw .invalidParameter("Invalid dataset filter: '\(tag.map { "tags.\($0)" } ?? field)' takes a quoted string and one of =, !=, LIKE, ILIKE.")
                }
            } else {
                throw .invalidParameter("Invalid dataset filter: unknown field '\(field)'; use name, dataset_id, digest, created_by, last_updated_by, created_time, last_update_time or tags.<key>.")
            }
            clauses.append(Clause(field: field, tag: tag, comparator: comparator, value: value))
            scanner.skipSpace()
            if scanner.atEnd { return }
            guard scanner.keyword("AND") else { throw .invalidParameter("Invalid dataset filter '\(text)': expected AND at position \(scanner.position).") }
        }
    }

    public func matches(_ d: EvaluationDataset) -> Bool {
        clauses.allSatisfy { clause in
            switch clause.value {
            case .number(_, let text):
                let actual = clause.field == "created_time" ? d.createdTime : d.lastUpdateTime
                let wanted = Int64(text) ?? Int64(Double(text) ?? 0)
                return clause.comparator.compares(actual, wanted) ?? (actual >= wanted)
            case .string(let wanted):
                let actual: String?
                switch clause.field {
                case "name": actual = d.name
                case "dataset_id": actual = d.datasetID
                case "digest": actual = d.digest
                case "created_by": actual = d.createdBy
                case "last_updated_by": actual = d.lastUpdatedBy
                default: actual = d.tags.last(where: { $0.key == clause.tag })?.value
                }
                guard let actual else { return false }
                switch clause.comparator {
                case .equal: return actual == wanted
                case .notEqual: return actual != wanted
                case .like: return Self.like(actual, wanted, caseSensitive: true)
                default: return Self.like(actual, wanted, caseSensitive: false)
                }
            default:
                return false
            }
        }
    }

    /// SQL `LIKE`: `%` any run, `_` one character.
    static func like(_ text: String, _ pattern: String, caseSensitive: Bool) -> Bool {
        let t = Array(caseSensitive ? text : text.lowercased())
        let p = Array(caseSensitive ? pattern : pattern.lowercased())
        var ti = 0, pi = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count, p[pi] == "_" || p[pi] == t[ti] {
                ti += 1; pi += 1
            } else if pi < p.count, p[pi] == "%" {
                star = pi; mark = ti; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; ti = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == "%" { pi += 1 }
        return pi == p.count
    }
}
