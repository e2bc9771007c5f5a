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

    /// The fields MLflow keeps in its span columns, and the span's content.
    public struct Row: Sendable, Equatable {
        public var spanID: String
        public var name: String
        public var spanType: String?
        public var status: String
        public var content: String
    }

    public static func row(_ span: JSONValue) -> Row {
        let dict = document(span)
        var spanType: String?
        if case .string(let type)? = decoded(attributes(span)[spanTypeKey]) { spanType = type }
        let code = text(span["status"]?["code"])
        let status = code == "STATUS_CODE_OK" ? "OK" : code == "STATUS_CODE_ERROR" ? "ERROR" : "UNSET"
        return Row(spanID: hex(text(span["span_id"])), name: text(span["name"]), spanType: spanType, status: status,
                   content: pythonJSON(dict))
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
