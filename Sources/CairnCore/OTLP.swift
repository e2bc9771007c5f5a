import Foundation

/// The OpenTelemetry trace data Cairn receives at `POST /v1/traces` (an OTLP
/// `ExportTraceServiceRequest`, protobuf or JSON) and keeps: every field of every span, so that
/// a span reads back exactly as it was sent. Spans are stored and answered in the protobuf JSON
/// form MLflow's `GetTrace` answers (snake_case names, ids in base64, enums by name, 64-bit
/// integers as JSON numbers).
///
/// The protobuf decoder is written by hand for the subset of `opentelemetry/proto/trace/v1`
/// and `common/v1` a trace export uses (a few hundred lines, no generated code and no
/// build plugin); unknown fields are skipped as protobuf requires.
public indirect enum OTLPAnyValue: Sendable, Equatable {
    case string(String)
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case array([OTLPAnyValue])
    case kvlist([OTLPKeyValue])
    case bytes([UInt8])
    /// An `AnyValue` with no member set.
    case empty

    public static func == (a: OTLPAnyValue, b: OTLPAnyValue) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)): return x == y
        case (.bool(let x), .bool(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.double(let x), .double(let y)): return x.bitPattern == y.bitPattern
        case (.array(let x), .array(let y)): return x == y
        case (.kvlist(let x), .kvlist(let y)): return x == y
        case (.bytes(let x), .bytes(let y)): return x == y
        case (.empty, .empty): return true
        default: return false
        }
    }
}

public struct OTLPKeyValue: Sendable, Equatable {
    public var key: String
    public var value: OTLPAnyValue?

    public init(key: String, value: OTLPAnyValue?) {
        self.key = key
        self.value = value
    }
}

public struct OTLPEvent: Sendable, Equatable {
    public var timeUnixNano: UInt64 = 0
    public var name = ""
    public var attributes: [OTLPKeyValue] = []
    public var droppedAttributesCount: UInt32 = 0
}

public struct OTLPLink: Sendable, Equatable {
    public var traceID: [UInt8] = []
    public var spanID: [UInt8] = []
    public var traceState = ""
    public var attributes: [OTLPKeyValue] = []
    public var droppedAttributesCount: UInt32 = 0
    public var flags: UInt32 = 0
}

public struct OTLPSpan: Sendable, Equatable {
    public var traceID: [UInt8] = []
    public var spanID: [UInt8] = []
    public var traceState = ""
    public var parentSpanID: [UInt8] = []
    public var name = ""
    public var kind: Int64 = 0
    public var startTimeUnixNano: UInt64 = 0
    public var endTimeUnixNano: UInt64 = 0
    public var attributes: [OTLPKeyValue] = []
    public var droppedAttributesCount: UInt32 = 0
    public var events: [OTLPEvent] = []
    public var droppedEventsCount: UInt32 = 0
    public var links: [OTLPLink] = []
    public var droppedLinksCount: UInt32 = 0
    /// 0 unset, 1 ok, 2 error.
    public var statusCode: Int64 = 0
    public var statusMessage = ""
    public var flags: UInt32 = 0

    public init() {}

    public var spanIDHex: String { OTLPSpan.hex(spanID) }
    public var isRoot: Bool { parentSpanID.isEmpty }

    public func attribute(_ key: String) -> OTLPAnyValue? {
        attributes.last(where: { $0.key == key })?.value
    }

    /// The MLflow trace this span belongs to: the `mlflow.traceRequestId` attribute MLflow's
    /// client sets, else `tr-` and the OpenTelemetry trace id in hex (as MLflow names traces
    /// from other OpenTelemetry clients).
    public var mlflowTraceID: String {
        if case .string(let id)? = attribute("mlflow.traceRequestId"), !id.isEmpty {
            // MLflow's own spans may carry the id JSON-quoted.
            if id.hasPrefix("\""), id.hasSuffix("\""), id.count >= 2 { return String(id.dropFirst().dropLast()) }
            return id
        }
        return "tr-" + OTLPSpan.hex(traceID)
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static let kindNames = ["SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT",
                            "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"]
    static let statusNames = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"]
}

// MARK: - Protobuf JSON (what GetTrace answers and the store keeps)

extension OTLPSpan {
    /// The span in protobuf JSON with MLflow's conventions; default values are left out.
    public var json: JSONValue {
        var o: [(String, JSONValue)] = []
        if !traceID.isEmpty { o.append(("trace_id", .string(Base64.encode(traceID)))) }
        if !spanID.isEmpty { o.append(("span_id", .string(Base64.encode(spanID)))) }
        if !traceState.isEmpty { o.append(("trace_state", .string(traceState))) }
        if !parentSpanID.isEmpty { o.append(("parent_span_id", .string(Base64.encode(parentSpanID)))) }
        if !name.isEmpty { o.append(("name", .string(name))) }
        if kind != 0 { o.append(("kind", Self.enumJSON(kind, Self.kindNames))) }
        if startTimeUnixNano != 0 { o.append(("start_time_unix_nano", .number(String(startTimeUnixNano)))) }
        if endTimeUnixNano != 0 { o.append(("end_time_unix_nano", .number(String(endTimeUnixNano)))) }
        if !attributes.isEmpty { o.append(("attributes", Self.attributesJSON(attributes))) }
        if droppedAttributesCount != 0 { o.append(("dropped_attributes_count", .number(String(droppedAttributesCount)))) }
        if !events.isEmpty {
            o.append(("events", .array(events.map { e in
                var eo: [(String, JSONValue)] = []
                if e.timeUnixNano != 0 { eo.append(("time_unix_nano", .number(String(e.timeUnixNano)))) }
                if !e.name.isEmpty { eo.append(("name", .string(e.name))) }
                if !e.attributes.isEmpty { eo.append(("attributes", Self.attributesJSON(e.attributes))) }
                if e.droppedAttributesCount != 0 { eo.append(("dropped_attributes_count", .number(String(e.droppedAttributesCount)))) }
                return .object(eo)
            })))
        }
        if droppedEventsCount != 0 { o.append(("dropped_events_count", .number(String(droppedEventsCount)))) }
        if !links.isEmpty {
            o.append(("links", .array(links.map { l in
                var lo: [(String, JSONValue)] = []
                if !l.traceID.isEmpty { lo.append(("trace_id", .string(Base64.encode(l.traceID)))) }
                if !l.spanID.isEmpty { lo.append(("span_id", .string(Base64.encode(l.spanID)))) }
                if !l.traceState.isEmpty { lo.append(("trace_state", .string(l.traceState))) }
                if !l.attributes.isEmpty { lo.append(("attributes", Self.attributesJSON(l.attributes))) }
                if l.droppedAttributesCount != 0 { lo.append(("dropped_attributes_count", .number(String(l.droppedAttributesCount)))) }
                if l.flags != 0 { lo.append(("flags", .number(String(l.flags)))) }
                return .object(lo)
            })))
        }
        if droppedLinksCount != 0 { o.append(("dropped_links_count", .number(String(droppedLinksCount)))) }
        var status: [(String, JSONValue)] = []
        if !statusMessage.isEmpty { status.append(("message", .string(statusMessage))) }
        if statusCode != 0 { status.append(("code", Self.enumJSON(statusCode, Self.statusNames))) }
        o.append(("status", .object(status)))
        if flags != 0 { o.append(("flags", .number(String(flags)))) }
        return .object(o)
    }

    static func enumJSON(_ value: Int64, _ names: [String]) -> JSONValue {
        value >= 0 && value < names.count ? .string(names[Int(value)]) : .number(String(value))
    }

    static func attributesJSON(_ attributes: [OTLPKeyValue]) -> JSONValue {
        .array(attributes.map(keyValueJSON))
    }

    static func keyValueJSON(_ kv: OTLPKeyValue) -> JSONValue {
        var o: [(String, JSONValue)] = []
        if !kv.key.isEmpty { o.append(("key", .string(kv.key))) }
        if let value = kv.value { o.append(("value", anyValueJSON(value))) }
        return .object(o)
    }

    static func anyValueJSON(_ value: OTLPAnyValue) -> JSONValue {
        switch value {
        case .string(let s): return .object([("string_value", .string(s))])
        case .bool(let b): return .object([("bool_value", .bool(b))])
        case .int(let i): return .object([("int_value", .number(String(i)))])
        case .double(let d):
            if d.isNaN { return .object([("double_value", .string("NaN"))]) }
            if d.isInfinite { return .object([("double_value", .string(d > 0 ? "Infinity" : "-Infinity"))]) }
            return .object([("double_value", .number("\(d)"))])
        case .array(let items):
            return .object([("array_value", items.isEmpty ? .object([]) : .object([("values", .array(items.map(anyValueJSON)))]))])
        case .kvlist(let items):
            return .object([("kvlist_value", items.isEmpty ? .object([]) : .object([("values", .array(items.map(keyValueJSON)))]))])
        case .bytes(let b): return .object([("bytes_value", .string(Base64.encode(b)))])
        case .empty: return .object([])
        }
    }
}

// MARK: - Decoding an ExportTraceServiceRequest

/// The spans of one export request, each with the resource attributes of its batch.
public struct OTLPExport: Sendable {
    public var spans: [OTLPSpan] = []
    /// How many `resource_spans` the request held (MLflow refuses a request with none).
    public var resourceSpansCount = 0
}

public enum OTLPDecoder {
    public static func decodeProtobuf(_ bytes: [UInt8]) throws(CairnError) -> OTLPExport {
        var export = OTLPExport()
        var reader = ProtobufReader(bytes[...])
        while let (field, wire) = try reader.nextTag() {
            if field == 1, wire == 2 {
                export.resourceSpansCount += 1
                var rs = ProtobufReader(try reader.lengthDelimited())
                while let (f, w) = try rs.nextTag() {
                    if f == 2, w == 2 {
                        var ss = ProtobufReader(try rs.lengthDelimited())
                        while let (f2, w2) = try ss.nextTag() {
                            if f2 == 2, w2 == 2 {
                                export.spans.append(try span(try ss.lengthDelimited()))
                            } else {
                                try ss.skip(w2)
                            }
                        }
                    } else {
                        try rs.skip(w)
                    }
                }
            } else {
                try reader.skip(wire)
            }
        }
        return export
    }

    static func span(_ bytes: ArraySlice<UInt8>) throws(CairnError) -> OTLPSpan {
        var s = OTLPSpan()
        var r = ProtobufReader(bytes)
        while let (field, wire) = try r.nextTag() {
            switch (field, wire) {
            case (1, 2): s.traceID = Array(try r.lengthDelimited())
            case (2, 2): s.spanID = Array(try r.lengthDelimited())
            case (3, 2): s.traceState = try r.string()
            case (4, 2): s.parentSpanID = Array(try r.lengthDelimited())
            case (5, 2): s.name = try r.string()
            case (6, 0): s.kind = Int64(bitPattern: try r.varint())
            case (7, 1): s.startTimeUnixNano = try r.fixed64()
            case (8, 1): s.endTimeUnixNano = try r.fixed64()
            case (9, 2): s.attributes.append(try keyValue(try r.lengthDelimited()))
            case (10, 0): s.droppedAttributesCount = UInt32(truncatingIfNeeded: try r.varint())
            case (11, 2): s.events.append(try event(try r.lengthDelimited()))
            case (12, 0): s.droppedEventsCount = UInt32(truncatingIfNeeded: try r.varint())
            case (13, 2): s.links.append(try link(try r.lengthDelimited()))
            case (14, 0): s.droppedLinksCount = UInt32(truncatingIfNeeded: try r.varint())
            case (15, 2):
                var st = ProtobufReader(try r.lengthDelimited())
                while let (f, w) = try st.nextTag() {
                    switch (f, w) {
                    case (2, 2): s.statusMessage = try st.string()
                    case (3, 0): s.statusCode = Int64(bitPattern: try st.varint())
                    default: try st.skip(w)
                    }
                }
            case (16, 5): s.flags = try r.fixed32()
            default: try r.skip(wire)
            }
        }
        return s
    }

    static func event(_ bytes: ArraySlice<UInt8>) throws(CairnError) -> OTLPEvent {
        var e = OTLPEvent()
        var r = ProtobufReader(bytes)
        while let (field, wire) = try r.nextTag() {
            switch (field, wire) {
            case (1, 1): e.timeUnixNano = try r.fixed64()
            case (2, 2): e.name = try r.string()
            case (3, 2): e.attributes.append(try keyValue(try r.lengthDelimited()))
            case (4, 0): e.droppedAttributesCount = UInt32(truncatingIfNeeded: try r.varint())
            default: try r.skip(wire)
            }
        }
        return e
    }

    static func link(_ bytes: ArraySlice<UInt8>) throws(CairnError) -> OTLPLink {
        var l = OTLPLink()
        var r = ProtobufReader(bytes)
        while let (field, wire) = try r.nextTag() {
            switch (field, wire) {
            case (1, 2): l.traceID = Array(try r.lengthDelimited())
            case (2, 2): l.spanID = Array(try r.lengthDelimited())
            case (3, 2): l.traceState = try r.string()
            case (4, 2): l.attributes.append(try keyValue(try r.lengthDelimited()))
            case (5, 0): l.droppedAttributesCount = UInt32(truncatingIfNeeded: try r.varint())
            case (6, 5): l.flags = try r.fixed32()
            default: try r.skip(wire)
            }
        }
        return l
    }

    static func keyValue(_ bytes: ArraySlice<UInt8>, depth: Int = 0) throws(CairnError) -> OTLPKeyValue {
        var kv = OTLPKeyValue(key: "", value: nil)
        var r = ProtobufReader(bytes)
        while let (field, wire) = try r.nextTag() {
            switch (field, wire) {
            case (1, 2): kv.key = try r.string()
            case (2, 2): kv.value = try anyValue(try r.lengthDelimited(), depth: depth + 1)
            default: try r.skip(wire)
            }
        }
        return kv
    }

    static func anyValue(_ bytes: ArraySlice<UInt8>, depth: Int) throws(CairnError) -> OTLPAnyValue {
        if depth > 64 { throw ProtobufReader.invalid("attribute values nest deeper than 64 levels") }
        var value = OTLPAnyValue.empty
        var r = ProtobufReader(bytes)
        while let (field, wire) = try r.nextTag() {
            switch (field, wire) {
            case (1, 2): value = .string(try r.string())
            case (2, 0): value = .bool(try r.varint() != 0)
            case (3, 0): value = .int(Int64(bitPattern: try r.varint()))
            case (4, 1): value = .double(Double(bitPattern: try r.fixed64()))
            case (5, 2):
                var items: [OTLPAnyValue] = []
                var ar = ProtobufReader(try r.lengthDelimited())
                while let (f, w) = try ar.nextTag() {
                    if f == 1, w == 2 { items.append(try anyValue(try ar.lengthDelimited(), depth: depth + 1)) } else { try ar.skip(w) }
                }
                value = .array(items)
            case (6, 2):
                var items: [OTLPKeyValue] = []
                var kr = ProtobufReader(try r.lengthDelimited())
                while let (f, w) = try kr.nextTag() {
                    if f == 1, w == 2 { items.append(try keyValue(try kr.lengthDelimited(), depth: depth + 1)) } else { try kr.skip(w) }
                }
                value = .kvlist(items)
            case (7, 2): value = .bytes(Array(try r.lengthDelimited()))
            default: try r.skip(wire)
            }
        }
        return value
    }
}

/// Reads the protobuf wire format: tags, varints, fixed-width and length-delimited fields.
struct ProtobufReader {
    var bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
    }

    static func invalid(_ detail: String) -> CairnError {
        CairnError(.badRequest, "Invalid OpenTelemetry format: \(detail).")
    }

    mutating func nextTag() throws(CairnError) -> (Int, Int)? {
        if bytes.isEmpty { return nil }
        let key = try varint()
        let field = Int(truncatingIfNeeded: key >> 3)
        if field == 0 { throw Self.invalid("a field number 0") }
        return (field, Int(key & 7))
    }

    mutating func varint() throws(CairnError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while let byte = bytes.popFirst() {
            if shift == 63 && byte > 1 { throw Self.invalid("a varint longer than 64 bits") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw Self.invalid("a varint longer than 10 bytes") }
        }
        throw Self.invalid("the message ends inside a varint")
    }

    mutating func fixed64() throws(CairnError) -> UInt64 {
        guard bytes.count >= 8 else { throw Self.invalid("the message ends inside a 64-bit field") }
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(bytes[bytes.startIndex + i]) << (8 * UInt64(i)) }
        bytes.removeFirst(8)
        return value
    }

    mutating func fixed32() throws(CairnError) -> UInt32 {
        guard bytes.count >= 4 else { throw Self.invalid("the message ends inside a 32-bit field") }
        var value: UInt32 = 0
        for i in 0..<4 { value |= UInt32(bytes[bytes.startIndex + i]) << (8 * UInt32(i)) }
        bytes.removeFirst(4)
        return value
    }

    mutating func lengthDelimited() throws(CairnError) -> ArraySlice<UInt8> {
        let length = try varint()
        guard length <= UInt64(bytes.count) else { throw Self.invalid("a field longer than the message") }
        let slice = bytes.prefix(Int(length))
        bytes.removeFirst(Int(length))
        return slice
    }

    mutating func string() throws(CairnError) -> String {
        let slice = try lengthDelimited()
        guard let text = String(validating: slice, as: UTF8.self) else { throw Self.invalid("a string that is not UTF-8") }
        return text
    }

    mutating func skip(_ wire: Int) throws(CairnError) {
        switch wire {
        case 0: _ = try varint()
        case 1: _ = try fixed64()
        case 2: _ = try lengthDelimited()
        case 5: _ = try fixed32()
        default: throw Self.invalid("an unsupported wire type \(wire)")
        }
    }
}

/// Standard base64 with padding, as protobuf JSON writes `bytes` fields.
enum Base64 {
    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
    }

    /// Accepts standard and URL-safe alphabets, with or without padding (protobuf JSON does).
    static func decode(_ text: String) -> [UInt8]? {
        var t = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while t.count % 4 != 0 { t += "=" }
        return Data(base64Encoded: t).map { Array($0) }
    }
}

// MARK: - Decoding OTLP/JSON

extension OTLPDecoder {
    /// An `ExportTraceServiceRequest` in OTLP/JSON: lowerCamelCase names (snake_case accepted
    /// too), trace and span ids in hex, 64-bit integers as numbers or decimal strings, enums
    /// as numbers or names.
    public static func decodeJSON(_ json: JSONValue) throws(CairnError) -> OTLPExport {
        var export = OTLPExport()
        guard case .object = json else { throw ProtobufReader.invalid("the body is not a JSON object") }
        for rs in try list(json, "resourceSpans", "resource_spans") {
            export.resourceSpansCount += 1
            for ss in try list(rs, "scopeSpans", "scope_spans") {
                for s in try list(ss, "spans", "spans") { export.spans.append(try span(json: s)) }
            }
        }
        return export
    }

    static func member(_ object: JSONValue, _ camel: String, _ snake: String) -> JSONValue? {
        if let v = object[camel], v != .null { return v }
        if let v = object[snake], v != .null { return v }
        return nil
    }

    static func list(_ object: JSONValue, _ camel: String, _ snake: String) throws(CairnError) -> [JSONValue] {
        switch member(object, camel, snake) {
        case nil: return []
        case .array(let items)?: return items
        default: throw ProtobufReader.invalid("'\(camel)' is not a list")
        }
    }

    static func text(_ object: JSONValue, _ camel: String, _ snake: String) throws(CairnError) -> String {
        switch member(object, camel, snake) {
        case nil: return ""
        case .string(let s)?: return s
        default: throw ProtobufReader.invalid("'\(camel)' is not a string")
        }
    }

    static func integer(_ object: JSONValue, _ camel: String, _ snake: String, names: [String] = []) throws(CairnError) -> UInt64 {
        switch member(object, camel, snake) {
        case nil: return 0
        case .number(let n)?, .string(let n)?:
            if let v = UInt64(n) { return v }
            if let v = Int64(n) { return UInt64(bitPattern: v) }
            if let index = names.firstIndex(of: n) { return UInt64(index) }
            throw ProtobufReader.invalid("'\(camel)' is not an integer")
        default: throw ProtobufReader.invalid("'\(camel)' is not an integer")
        }
    }

    static func id(_ object: JSONValue, _ camel: String, _ snake: String) throws(CairnError) -> [UInt8] {
        let s = try text(object, camel, snake)
        if s.isEmpty { return [] }
        if s.count % 2 == 0, s.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) || ($0 >= 65 && $0 <= 70) }) {
            var out: [UInt8] = []
            var chars = Array(s.utf8)[...]
            while !chars.isEmpty {
                out.append(UInt8(String(decoding: chars.prefix(2), as: UTF8.self), radix: 16)!)
                chars = chars.dropFirst(2)
            }
            return out
        }
        guard let bytes = Base64.decode(s) else { throw ProtobufReader.invalid("'\(camel)' is neither hex nor base64") }
        return bytes
    }

    static func span(json s: JSONValue) throws(CairnError) -> OTLPSpan {
        var span = OTLPSpan()
        span.traceID = try id(s, "traceId", "trace_id")
        span.spanID = try id(s, "spanId", "span_id")
        span.traceState = try text(s, "traceState", "trace_state")
        span.parentSpanID = try id(s, "parentSpanId", "parent_span_id")
        span.name = try text(s, "name", "name")
        span.kind = Int64(bitPattern: try integer(s, "kind", "kind", names: OTLPSpan.kindNames))
        span.startTimeUnixNano = try integer(s, "startTimeUnixNano", "start_time_unix_nano")
        span.endTimeUnixNano = try integer(s, "endTimeUnixNano", "end_time_unix_nano")
        span.attributes = try attributes(s, depth: 0)
        span.droppedAttributesCount = UInt32(truncatingIfNeeded: try integer(s, "droppedAttributesCount", "dropped_attributes_count"))
        for e in try list(s, "events", "events") {
            var event = OTLPEvent()
            event.timeUnixNano = try integer(e, "timeUnixNano", "time_unix_nano")
            event.name = try text(e, "name", "name")
            event.attributes = try attributes(e, depth: 0)
            event.droppedAttributesCount = UInt32(truncatingIfNeeded: try integer(e, "droppedAttributesCount", "dropped_attributes_count"))
            span.events.append(event)
        }
        span.droppedEventsCount = UInt32(truncatingIfNeeded: try integer(s, "droppedEventsCount", "dropped_events_count"))
        for l in try list(s, "links", "links") {
            var link = OTLPLink()
            link.traceID = try id(l, "traceId", "trace_id")
            link.spanID = try id(l, "spanId", "span_id")
            link.traceState = try text(l, "traceState", "trace_state")
            link.attributes = try attributes(l, depth: 0)
            link.droppedAttributesCount = UInt32(truncatingIfNeeded: try integer(l, "droppedAttributesCount", "dropped_attributes_count"))
            link.flags = UInt32(truncatingIfNeeded: try integer(l, "flags", "flags"))
            span.links.append(link)
        }
        span.droppedLinksCount = UInt32(truncatingIfNeeded: try integer(s, "droppedLinksCount", "dropped_links_count"))
        if let status = member(s, "status", "status") {
            span.statusMessage = try text(status, "message", "message")
            span.statusCode = Int64(bitPattern: try integer(status, "code", "code", names: OTLPSpan.statusNames))
        }
        span.flags = UInt32(truncatingIfNeeded: try integer(s, "flags", "flags"))
        return span
    }

    static func attributes(_ object: JSONValue, depth: Int) throws(CairnError) -> [OTLPKeyValue] {
        var out: [OTLPKeyValue] = []
        for kv in try list(object, "attributes", "attributes") { out.append(try keyValue(json: kv, depth: depth)) }
        return out
    }

    static func keyValue(json kv: JSONValue, depth: Int) throws(CairnError) -> OTLPKeyValue {
        OTLPKeyValue(key: try text(kv, "key", "key"), value: try member(kv, "value", "value").map { v throws(CairnError) in try anyValue(json: v, depth: depth + 1) })
    }

    static func anyValue(json v: JSONValue, depth: Int) throws(CairnError) -> OTLPAnyValue {
        if depth > 64 { throw ProtobufReader.invalid("attribute values nest deeper than 64 levels") }
        if let s = member(v, "stringValue", "string_value") {
            guard case .string(let text) = s else { throw ProtobufReader.invalid("stringValue is not a string") }
            return .string(text)
        }
        if let b = member(v, "boolValue", "bool_value") {
            guard case .bool(let flag) = b else { throw ProtobufReader.invalid("boolValue is not a boolean") }
            return .bool(flag)
        }
        if member(v, "intValue", "int_value") != nil {
            return .int(Int64(bitPattern: try integer(v, "intValue", "int_value")))
        }
        if let d = member(v, "doubleValue", "double_value") {
            switch d {
            case .number(let n), .string(let n):
                switch n {
                case "NaN": return .double(.nan)
                case "Infinity": return .double(.infinity)
                case "-Infinity": return .double(-.infinity)
                default:
                    guard let value = Double(n) else { throw ProtobufReader.invalid("doubleValue is not a number") }
                    return .double(value)
                }
            default: throw ProtobufReader.invalid("doubleValue is not a number")
            }
        }
        if let a = member(v, "arrayValue", "array_value") {
            var items: [OTLPAnyValue] = []
            for item in try list(a, "values", "values") { items.append(try anyValue(json: item, depth: depth + 1)) }
            return .array(items)
        }
        if let k = member(v, "kvlistValue", "kvlist_value") {
            var items: [OTLPKeyValue] = []
            for item in try list(k, "values", "values") { items.append(try keyValue(json: item, depth: depth + 1)) }
            return .kvlist(items)
        }
        if member(v, "bytesValue", "bytes_value") != nil {
            let text = try self.text(v, "bytesValue", "bytes_value")
            guard let bytes = Base64.decode(text) else { throw ProtobufReader.invalid("bytesValue is not base64") }
            return .bytes(bytes)
        }
        return .empty
    }
}
