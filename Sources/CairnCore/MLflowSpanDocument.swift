import Foundation

/// A span as MLflow's `Span.to_dict()` writes it, made from the span's stored protobuf JSON
/// exactly as MLflow's server makes it (`Span.from_otel_proto`): attribute values decoded and
/// each dumped as JSON text, `mlflow.traceRequestId` set from the trace id, events with decoded
/// attributes, links named by MLflow trace id and hex span id. It is what
/// `/get-trace-artifact` answers (`{"spans": [...]}`) and the `content` that MLflow's
/// `span.content`, `text` and `span.attributes.<key>` filters match, written as Python's
/// `json.dumps` writes it (`MLflowSpanDocument.pythonJSON`).
public enum MLflowSpanDocument {
    public static let requestIDKey = "mlflow.traceRequestId"
    public static let spanTypeKey = "mlflow.spanType"

    public static let modelKey = "mlflow.llm.model"
    public static let modelProviderKey = "mlflow.llm.provider"
    public static let costKey = "mlflow.llm.cost"
    public static let tokenUsageKey = "mlflow.chat.tokenUsage"

    /// The fields MLflow keeps in its span columns (those the trace metrics aggregate
    /// included), and the span's content.
    public struct Row: Sendable, Equatable {
        public var spanID: String
        public var name: String
        public var spanType: String?
        public var status: String
        public var content: String
        public var startNanos: Int64?
        public var endNanos: Int64?
        /// `mlflow.llm.model` and `.provider`, at most 500 characters (MLflow's bound).
        public var modelName: String?
        public var modelProvider: String?
        /// The finite numbers of `mlflow.llm.cost`, in `TraceAnalytics.costKeys` order.
        public var costs: [Double?]
    }

    public static func row(_ span: JSONValue) -> Row {
        let dict = document(span)
        let attrs = attributes(span)
        var spanType: String?
        if case .string(let type)? = decoded(attrs[spanTypeKey]) { spanType = type }
        let code = text(span["status"]?["code"])
        let status = code == "STATUS_CODE_OK" ? "OK" : code == "STATUS_CODE_ERROR" ? "ERROR" : "UNSET"
        func model(_ key: String) -> String? {
            // MLflow's `bounded_model_dimension(_try_parse_json_string(value))`.
            guard let value = decoded(attrs[key]) else { return nil }
            if case .string(let inner) = value {
                // A name the client already dumped to JSON text (`"gpt-4o"`) is read once more,
                // as MLflow's `sanitize_attributes` reads it.
                if case .string(let name)? = try? JSONValue.parse(Array(inner.utf8)) { return String(name.prefix(500)) }
                return String(inner.prefix(500))
            }
            return String(pythonJSON(value).prefix(500))
        }
        let cost = objectAttribute(attrs[costKey])
        return Row(spanID: hex(text(span["span_id"])), name: text(span["name"]), spanType: spanType, status: status,
                   content: pythonJSON(dict), startNanos: Int64(number(span["start_time_unix_nano"])),
                   endNanos: Int64(number(span["end_time_unix_nano"])), modelName: model(modelKey), modelProvider: model(modelProviderKey),
                   costs: TraceAnalytics.costKeys.map { key in
                       guard case .number(let text)? = cost?[key], let value = Double(text), value.isFinite else { return nil }
                       return value
                   })
    }

    /// An attribute holding a JSON object, as MLflow's store reads it: the object itself, or
    /// a string holding one (a value the client already dumped to JSON); nil otherwise.
    public static func objectAttribute(_ any: JSONValue?) -> JSONValue? {
        switch decoded(any) {
        case .object(let members)?: return .object(members)
        case .string(let text)?:
            if case .object(let members)? = try? JSONValue.parse(Array(text.utf8)) { return .object(members) }
            return nil
        default: return nil
        }
    }

    /// `Span.to_dict()` of the span.
    public static func document(_ span: JSONValue) -> JSONValue {
        var attrs: [(String, JSONValue)] = []
        var index: [String: Int] = [:]
        for (key, value) in attributeList(span["attributes"]) {
            let dumped = JSONValue.string(pythonJSON(decoded(value) ?? .null))
            if let i = index[key] { attrs[i].1 = dumped } else { index[key] = attrs.count; attrs.append((key, dumped)) }
        }
        let requestID = JSONValue.string(pythonJSON(.string("tr-" + hex(text(span["trace_id"])))))
        if let i = index[requestIDKey] { attrs[i].1 = requestID } else { attrs.append((requestIDKey, requestID)) }
        let parent = text(span["parent_span_id"])
        let message = text(span["status"]?["message"])
        let code = text(span["status"]?["code"])
        return .object([
            ("trace_id", .string(text(span["trace_id"]))),
            ("span_id", .string(text(span["span_id"]))),
            ("parent_span_id", parent.isEmpty ? .null : .string(parent)),
            ("name", .string(text(span["name"]))),
            ("start_time_unix_nano", .number(number(span["start_time_unix_nano"]))),
            ("end_time_unix_nano", .number(number(span["end_time_unix_nano"]))),
            ("events", .array(list(span["events"]).map { event in
                .object([
                    ("name", .string(text(event["name"]))),
                    ("time_unix_nano", .number(number(event["time_unix_nano"]))),
                    ("attributes", .object(attributeList(event["attributes"]).map { ($0.0, decoded($0.1) ?? .null) })),
                ])
            })),
            ("status", .object([("code", .string(code.isEmpty ? "STATUS_CODE_UNSET" : code)), ("message", .string(message))])),
            ("attributes", .object(attrs)),
            ("links", .array(list(span["links"]).map { link in
                let linkAttributes = attributeList(link["attributes"])
                return .object([
                    ("trace_id", .string("tr-" + hex(text(link["trace_id"])))),
                    ("span_id", .string(hex(text(link["span_id"])))),
                    ("attributes", linkAttributes.isEmpty ? .null : .object(linkAttributes.map { ($0.0, decoded($0.1) ?? .null) })),
                ])
            })),
        ])
    }

    static func text(_ value: JSONValue?) -> String {
        if case .string(let s)? = value { return s }
        return ""
    }

    static func number(_ value: JSONValue?) -> String {
        switch value {
        case .number(let n)?: return n
        case .string(let s)? where UInt64(s) != nil: return s
        default: return "0"
        }
    }

    static func list(_ value: JSONValue?) -> [JSONValue] {
        if case .array(let items)? = value { return items }
        return []
    }

    static func attributeList(_ value: JSONValue?) -> [(String, JSONValue)] {
        list(value).map { (text($0["key"]), $0["value"] ?? .object([])) }
    }

    static func attributes(_ span: JSONValue) -> [String: JSONValue] {
        Dictionary(attributeList(span["attributes"]), uniquingKeysWith: { _, b in b })
    }

    /// An OTLP `AnyValue` (protobuf JSON) as the plain value MLflow decodes it to; nil when unset.
    static func decoded(_ any: JSONValue?) -> JSONValue? {
        guard case .object(let members)? = any, let (kind, value) = members.first else { return nil }
        switch kind {
        case "string_value", "stringValue", "bool_value", "boolValue": return value
        case "int_value", "intValue":
            if case .string(let s) = value { return .number(s) }
            return value
        case "double_value", "doubleValue":
            if case .string(let s) = value { return .number(s == "Infinity" ? "Infinity" : s == "-Infinity" ? "-Infinity" : "NaN") }
            if case .number(let n) = value, !n.contains("."), !n.contains("e"), !n.contains("E") { return .number(n + ".0") }
            return value
        case "bytes_value", "bytesValue": return value
        case "array_value", "arrayValue": return .array(list(value["values"]).map { decoded($0) ?? .null })
        case "kvlist_value", "kvlistValue": return .object(attributeList(value["values"]).map { ($0.0, decoded($0.1) ?? .null) })
        default: return nil
        }
    }

    /// Lower-case hex of a base64 id (OTLP's protobuf JSON), as MLflow names ids.
    static func hex(_ base64: String) -> String {
        guard let bytes = Base64.decode(base64) else { return "" }
        return OTLPSpan.hex(bytes)
    }

    /// `value` as Python's `json.dumps(value, ensure_ascii=False)` writes it: `", "` and
    /// `": "` separators, only `"`, `\` and control characters escaped.
    public static func pythonJSON(_ value: JSONValue) -> String {
        var out = ""
        write(value, to: &out)
        return out
    }

    static func write(_ value: JSONValue, to out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n
        case .string(let s): writeString(s, to: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += ", " }
                write(item, to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, (key, item)) in members.enumerated() {
                if i > 0 { out += ", " }
                writeString(key, to: &out)
                out += ": "
                write(item, to: &out)
            }
            out += "}"
        }
    }

    static func writeString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
