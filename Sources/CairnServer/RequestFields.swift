import CairnCore

/// The fields of one MLflow request, from a JSON body (POST, PATCH, DELETE) or from the query
/// string (GET, where every value is a string), read by `WireField`'s rule: what protobuf JSON
/// allows is read (int64 as a number or a decimal string, doubles as numbers, numeric strings
/// or "NaN"/"Infinity"/"-Infinity", enums by name or number, `null` as absent), and every other
/// type is refused, never converted: `INVALID_PARAMETER_VALUE` naming the field in MLflow's words.
struct RequestFields: Sendable {
    private enum Source: Sendable {
        case json([(String, JSONValue)])
        case query([String: [String]])
    }

    private let source: Source
    /// Field path prefix for messages, e.g. `metrics[3].`.
    private let path: String
    /// Parameters taken from the URL path (`logged-models/{model_id}`); they win over the body.
    private var pathParameters: [String: String] = [:]
    /// A `runs/log-batch` body already decoded by `LogBatchDecoder`'s fast path; the body's
    /// fields are then not kept a second time.
    private(set) var logBatch: LogBatch?

    init(logBatch: LogBatch) {
        self.source = .json([])
        self.path = ""
        self.logBatch = logBatch
    }

    func with(pathParameters: [String: String]) -> RequestFields {
        var copy = self
        copy.pathParameters = pathParameters
        return copy
    }

    init(json: JSONValue, path: String = "") throws {
        guard case .object(let members) = json else {
            throw CairnError.invalidParameter("Invalid request body\(path.isEmpty ? "" : " at '\(path)'"): expected a JSON object.")
        }
        self.source = .json(members)
        self.path = path
    }

    init(query: [String: [String]]) {
        self.source = .query(query)
        self.path = ""
    }

    private enum Raw {
        case json(JSONValue)
        case text(String)
    }

    private func raw(_ name: String) -> Raw? {
        if let value = pathParameters[name] { return .text(value) }
        switch source {
        case .json(let members):
            guard let value = members.last(where: { $0.0 == name })?.1 else { return nil }
            if case .null = value { return nil }
            return .json(value)
        case .query(let items):
            return items[name]?.last.map(Raw.text)
        }
    }

    /// The field's value as JSON: a query-string or path value is a JSON string, as MLflow
    /// reads it.
    private func value(_ name: String) -> JSONValue? {
        switch raw(name) {
        case nil: return nil
        case .text(let s): return .string(s)
        case .json(let value): return value
        }
    }

    private func invalid(_ name: String, _ value: JSONValue) -> CairnError {
        WireField.invalid(path + name, value)
    }

    func has(_ name: String) -> Bool { raw(name) != nil }

    /// The field as JSON, whatever its type (free-form protobuf fields: maps, `Value`s, and
    /// messages kept as sent, such as an assessment).
    func json(_ name: String) -> JSONValue? { value(name) }

    /// A string field: a number, bool, list or object there is refused, never converted.
    /// `reportedAs` names the field in that error when MLflow names it differently (it calls
    /// `run_uuid` `run_id`).
    func string(_ name: String, reportedAs: String? = nil) throws -> String? {
        try value(name).map { try WireField.string($0, field: path + (reportedAs ?? name)) }
    }

    /// A required string field; the empty string is missing too, as MLflow's `_assert_required`
    /// reads it (protobuf writes an absent string field as "").
    func requiredString(_ name: String) throws -> String {
        guard let value = try string(name), !value.isEmpty else { throw CairnError.missingParameter(path + name) }
        return value
    }

    func int64(_ name: String) throws -> Int64? {
        try value(name).map { try WireField.int64($0, field: path + name) }
    }

    func requiredInt64(_ name: String) throws -> Int64 {
        guard let value = try int64(name) else { throw CairnError.missingParameter(path + name) }
        return value
    }

    func double(_ name: String) throws -> Double? {
        try value(name).map { try WireField.double($0, field: path + name) }
    }

    func requiredDouble(_ name: String) throws -> Double {
        guard let value = try double(name) else { throw CairnError.missingParameter(path + name) }
        return value
    }

    /// A JSON `true`/`false`; in a query string `true` or `false` in any case (MLflow's words).
    func bool(_ name: String) throws -> Bool? {
        switch raw(name) {
        case nil: return nil
        case .text(let s):
            switch s.lowercased() {
            case "true": return true
            case "false": return false
            default: throw CairnError.invalidParameter("Invalid boolean value: \(s), must be 'true' or 'false'.")
            }
        case .json(let value): return try WireField.bool(value, field: path + name)
        }
    }

    /// A repeated string field: a JSON array of strings, or repeated query keys.
    func strings(_ name: String) throws -> [String] {
        switch source {
        case .query(let items):
            return items[name] ?? []
        case .json:
            switch raw(name) {
            case nil: return []
            case .json(.array(let items)):
                return try items.enumerated().map { index, item in try WireField.string(item, field: "\(path)\(name)[\(index)]") }
            case .json(let other): throw invalid(name, other)
            case .text(let s): return [s]
            }
        }
    }

    /// A repeated message field (JSON only): a list of objects.
    func objects(_ name: String) throws -> [RequestFields] {
        switch value(name) {
        case nil: return []
        case .array(let items)?:
            return try items.enumerated().map { index, item in try nested(item, "\(name)[\(index)]") }
        case let other?: throw invalid(name, other)
        }
    }

    func object(_ name: String) throws -> RequestFields? {
        try value(name).map { try nested($0, name) }
    }

    private func nested(_ value: JSONValue, _ name: String) throws -> RequestFields {
        guard case .object = value else { throw invalid(name, value) }
        return try RequestFields(json: value, path: "\(path)\(name).")
    }

    /// An enum given by name (case-insensitive) or by proto number.
    func enumeration<E>(_ name: String, byName: (String) -> E?, byNumber: (Int64) -> E?, expected: String) throws -> E? {
        let text: String
        switch value(name) {
        case nil: return nil
        case .string(let s)?: text = s
        case .number(let n)?: text = n
        case let other?: throw invalid(name, other)
        }
        if let value = byName(text.uppercased()) { return value }
        if let number = Int64(text), let value = byNumber(number) { return value }
        throw CairnError.invalidParameter("Invalid value '\(text)' for parameter '\(path)\(name)' supplied: expected \(expected).")
    }

    func viewType(_ name: String) throws -> ViewType? {
        try enumeration(name, byName: ViewType.init(rawValue:), byNumber: ViewType.init(number:),
                        expected: "one of ACTIVE_ONLY, DELETED_ONLY, ALL")
    }

    func tags(_ name: String = "tags") throws -> [Tag] {
        try objects(name).map { Tag(try $0.requiredString("key"), try $0.string("value") ?? "") }
    }
}
