import CairnCore

/// The fields of one MLflow request, from a JSON body (POST, PATCH, DELETE) or from the query
/// string (GET), read with protobuf-JSON leniency: int64 as a number or a decimal string,
/// doubles as numbers or "NaN"/"Infinity"/"-Infinity", enums by name or number, `null` as absent.
/// Every wrong type is an `INVALID_PARAMETER_VALUE` naming the field.
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

    private func invalid(_ name: String, _ shown: String, _ expected: String) -> CairnError {
        .invalidParameter("Invalid value \(shown) for parameter '\(path)\(name)' supplied: expected \(expected).")
    }

    private static func show(_ value: JSONValue) -> String {
        var writer = JSONWriter()
        writer.value(value)
        let text = writer.string
        return text.count > 80 ? String(text.prefix(80)) + "…" : text
    }

    func has(_ name: String) -> Bool { raw(name) != nil }

    func string(_ name: String) throws -> String? {
        switch raw(name) {
        case nil: return nil
        case .text(let s): return s
        case .json(.string(let s)): return s
        case .json(.number(let n)): return n
        case .json(.bool(let b)): return b ? "true" : "false"
        case .json(let other): throw invalid(name, Self.show(other), "a string")
        }
    }

    /// A required field that must be a JSON string (not a number or bool), e.g. a name.
    func requiredText(_ name: String) throws -> String {
        if case .json(let value)? = raw(name), !isString(value) {
            throw invalid(name, Self.show(value), "a string")
        }
        return try requiredString(name)
    }

    private func isString(_ value: JSONValue) -> Bool {
        if case .string = value { return true }
        return false
    }

    func requiredString(_ name: String) throws -> String {
        guard let value = try string(name) else { throw CairnError.missingParameter(path + name) }
        return value
    }

    func int64(_ name: String) throws -> Int64? {
        let text: String
        switch raw(name) {
        case nil: return nil
        case .text(let s): text = s
        case .json(.string(let s)): text = s
        case .json(.number(let n)): text = n
        case .json(let other): throw invalid(name, Self.show(other), "an integer")
        }
        if let value = Int64(text) { return value }
        if let d = Double(text), d.rounded() == d, abs(d) < 9.2e18 { return Int64(d) }
        throw invalid(name, "'\(text)'", "an integer")
    }

    func requiredInt64(_ name: String) throws -> Int64 {
        guard let value = try int64(name) else { throw CairnError.missingParameter(path + name) }
        return value
    }

    func double(_ name: String) throws -> Double? {
        let text: String
        switch raw(name) {
        case nil: return nil
        case .text(let s): text = s
        case .json(.string(let s)): text = s
        case .json(.number(let n)): text = n
        case .json(let other): throw invalid(name, Self.show(other), "a number")
        }
        switch text {
        case "NaN", "nan": return .nan
        case "Infinity", "inf": return .infinity
        case "-Infinity", "-inf": return -.infinity
        default:
            guard let value = Double(text), value.isFinite else { throw invalid(name, "'\(text)'", "a number") }
            return value
        }
    }

    func requiredDouble(_ name: String) throws -> Double {
        guard let value = try double(name) else { throw CairnError.missingParameter(path + name) }
        return value
    }

    func bool(_ name: String) throws -> Bool? {
        switch raw(name) {
        case nil: return nil
        case .json(.bool(let b)): return b
        case .text(let s), .json(.string(let s)):
            switch s.lowercased() {
            case "true", "1": return true
            case "false", "0": return false
            default: throw invalid(name, "'\(s)'", "true or false")
            }
        case .json(let other): throw invalid(name, Self.show(other), "true or false")
        }
    }

    /// A repeated string field: a JSON array, or repeated query keys.
    func strings(_ name: String) throws -> [String] {
        switch source {
        case .query(let items):
            return items[name] ?? []
        case .json:
            switch raw(name) {
            case nil: return []
            case .json(.array(let items)):
                return try items.enumerated().map { index, item in
                    switch item {
                    case .string(let s): return s
                    case .number(let n): return n
                    default: throw invalid("\(name)[\(index)]", Self.show(item), "a string")
                    }
                }
            case .json(.string(let s)): return [s]
            case .json(let other): throw invalid(name, Self.show(other), "a list of strings")
            case .text(let s): return [s]
            }
        }
    }

    /// A repeated message field (JSON only).
    func objects(_ name: String) throws -> [RequestFields] {
        switch raw(name) {
        case nil: return []
        case .json(.array(let items)):
            return try items.enumerated().map { index, item in
                try RequestFields(json: item, path: "\(path)\(name)[\(index)].")
            }
        case .json(let other): throw invalid(name, Self.show(other), "a list of objects")
        case .text(let s): throw invalid(name, "'\(s)'", "a list of objects")
        }
    }

    func object(_ name: String) throws -> RequestFields? {
        switch raw(name) {
        case nil: return nil
        case .json(let value): return try RequestFields(json: value, path: "\(path)\(name).")
        case .text(let s): throw invalid(name, "'\(s)'", "an object")
        }
    }

    /// An enum given by name (case-insensitive) or by proto number.
    func enumeration<E>(_ name: String, byName: (String) -> E?, byNumber: (Int64) -> E?, expected: String) throws -> E? {
        guard let text = try string(name) else { return nil }
        if let value = byName(text.uppercased()) { return value }
        if let number = Int64(text), let value = byNumber(number) { return value }
        throw invalid(name, "'\(text)'", expected)
    }

    func viewType(_ name: String) throws -> ViewType? {
        try enumeration(name, byName: ViewType.init(rawValue:), byNumber: ViewType.init(number:),
                        expected: "one of ACTIVE_ONLY, DELETED_ONLY, ALL")
    }

    func tags(_ name: String = "tags") throws -> [Tag] {
        try objects(name).map { Tag(try $0.requiredString("key"), try $0.string("value") ?? "") }
    }
}
