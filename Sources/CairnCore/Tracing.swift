import Foundation

/// MLflow 3 traces: what one request to an LLM application did, as a tree of spans, with its
/// summary (`TraceInfo`) searchable by state, time, tags, metadata and run.
public enum TraceState: String, Sendable, CaseIterable {
    case unspecified = "STATE_UNSPECIFIED"
    case ok = "OK"
    case error = "ERROR"
    case inProgress = "IN_PROGRESS"

    /// By name (MLflow's v2 `status` names too) or proto number.
    public init?(name: String) {
        switch name.uppercased() {
        case "OK": self = .ok
        case "ERROR": self = .error
        case "IN_PROGRESS": self = .inProgress
        case "STATE_UNSPECIFIED", "TRACE_STATUS_UNSPECIFIED": self = .unspecified
        case "0": self = .unspecified
        case "1": self = .ok
        case "2": self = .error
        case "3": self = .inProgress
        default: return nil
        }
    }
}

/// Trace tag and metadata keys with a meaning to MLflow.
public enum TraceKey {
    public static let traceName = "mlflow.traceName"
    public static let spansLocation = "mlflow.trace.spansLocation"
    public static let artifactLocation = "mlflow.artifactLocation"
    public static let sourceRun = "mlflow.sourceRun"
    public static let infoFinalized = "mlflow.trace.infoFinalized"
    public static let tokenUsage = "mlflow.trace.tokenUsage"
    public static let traceUser = "mlflow.trace.user"
    public static let traceSession = "mlflow.trace.session"
    public static let cost = "mlflow.trace.cost"
    public static let linkedPrompts = "mlflow.linkedPrompts"
    /// `spansLocation`'s value: spans are kept by the tracking server, not as artifact files.
    public static let trackingStore = "TRACKING_STORE"
}

public struct TraceInfo: Sendable, Equatable {
    public var traceID: String
    public var experimentID: String
    /// Milliseconds since the epoch.
    public var requestTime: Int64
    /// Milliseconds; nil while unknown.
    public var executionDuration: Int64?
    public var state: TraceState
    public var requestPreview: String?
    public var responsePreview: String?
    public var clientRequestID: String?
    public var metadata: [Tag]
    public var tags: [Tag]
    public var assessments: [Assessment]

    public init(traceID: String, experimentID: String, requestTime: Int64, executionDuration: Int64?, state: TraceState,
                requestPreview: String? = nil, responsePreview: String? = nil, clientRequestID: String? = nil,
                metadata: [Tag] = [], tags: [Tag] = [], assessments: [Assessment] = []) {
        self.traceID = traceID
        self.experimentID = experimentID
        self.requestTime = requestTime
        self.executionDuration = executionDuration
        self.state = state
        self.requestPreview = requestPreview
        self.responsePreview = responsePreview
        self.clientRequestID = clientRequestID
        self.metadata = metadata
        self.tags = tags
        self.assessments = assessments
    }

    public func tag(_ key: String) -> String? { tags.last(where: { $0.key == key })?.value }
    public func metadata(_ key: String) -> String? { metadata.last(where: { $0.key == key })?.value }
}

/// A trace with its spans, each in protobuf JSON (see `OTLPSpan.json`).
public struct Trace: Sendable {
    public var info: TraceInfo
    public var spans: [JSONValue]

    public init(info: TraceInfo, spans: [JSONValue]) {
        self.info = info
        self.spans = spans
    }
}

/// Feedback or an expectation on a trace (`mlflow.log_feedback`, `log_expectation`). The
/// body is the assessment's protobuf JSON object as the client sent it, with the fields the
/// server owns (id, trace id, times, `valid`) set by the service.
public struct Assessment: Sendable, Equatable {
    public var assessmentID: String
    public var traceID: String
    public var name: String
    public var createTime: Int64
    public var lastUpdateTime: Int64
    public var body: JSONValue

    public init(assessmentID: String, traceID: String, name: String, createTime: Int64, lastUpdateTime: Int64, body: JSONValue) {
        self.assessmentID = assessmentID
        self.traceID = traceID
        self.name = name
        self.createTime = createTime
        self.lastUpdateTime = lastUpdateTime
        self.body = body
    }

    /// The id of the assessment this one overrides, if any.
    public var overrides: String? {
        if case .string(let id)? = body["overrides"], !id.isEmpty { return id }
        return nil
    }
}

/// What a stored span contributes to its trace's summary, read from its protobuf JSON.
public struct SpanSummary: Sendable {
    public var spanID: String
    public var isRoot: Bool
    public var startNanos: UInt64
    public var endNanos: UInt64
    public var statusCode: String

    public init(json: JSONValue) {
        func text(_ key: String) -> String? {
            if case .string(let s)? = json[key] { return s }
            return nil
        }
        func number(_ key: String) -> UInt64 {
            switch json[key] {
            case .number(let n)?, .string(let n)?: return UInt64(n) ?? 0
            default: return 0
            }
        }
        spanID = text("span_id") ?? ""
        isRoot = (text("parent_span_id") ?? "").isEmpty
        startNanos = number("start_time_unix_nano")
        endNanos = number("end_time_unix_nano")
        if case .string(let code)? = json["status"]?["code"] { statusCode = code } else { statusCode = "STATUS_CODE_UNSET" }
    }
}

/// Protobuf JSON's `Timestamp` and `Duration` texts, as MLflow's v3 trace messages carry
/// `request_time` and `execution_duration`.
public enum ProtoTime {
    /// `2026-11-26T18:00:33.715Z` (no fraction when whole seconds).
    public static func timestamp(millis: Int64) -> String {
        let seconds = millis >= 0 ? millis / 1000 : (millis - 999) / 1000
        let fraction = millis - seconds * 1000
        let date = Date(timeIntervalSince1970: TimeInterval(seconds))
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let base = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
        return fraction == 0 ? base + "Z" : base + String(format: ".%03dZ", Int(fraction))
    }

    /// Milliseconds from an RFC 3339 timestamp (fraction of up to 9 digits, `Z` or an offset).
    public static func millis(timestamp text: String) -> Int64? {
        let chars = Array(text.utf8)
        guard chars.count >= 20 else { return nil }
        func int(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= chars.count else { return nil }
            return Int(String(decoding: chars[range], as: UTF8.self))
        }
        guard let year = int(0..<4), chars[4] == 45, let month = int(5..<7), chars[7] == 45, let day = int(8..<10),
              chars[10] == 84 || chars[10] == 116, let hour = int(11..<13), chars[13] == 58, let minute = int(14..<16),
              chars[16] == 58, let second = int(17..<19) else { return nil }
        var index = 19
        var fractionMillis = 0
        if index < chars.count, chars[index] == 46 {
            index += 1
            var digits = 0
            var value = 0
            while index < chars.count, chars[index] >= 48, chars[index] <= 57 {
                if digits < 3 { value = value * 10 + Int(chars[index] - 48) }
                digits += 1
                index += 1
            }
            guard digits > 0, digits <= 9 else { return nil }
            for _ in digits..<3 where digits < 3 { value *= 10 }
            fractionMillis = value
        }
        var offsetSeconds = 0
        guard index < chars.count else { return nil }
        if chars[index] == 90 || chars[index] == 122 {
            index += 1
        } else if chars[index] == 43 || chars[index] == 45 {
            guard let oh = int(index + 1..<index + 3), chars.count > index + 3, chars[index + 3] == 58,
                  let om = int(index + 4..<index + 6) else { return nil }
            offsetSeconds = (oh * 3600 + om * 60) * (chars[index] == 45 ? -1 : 1)
            index += 6
        } else {
            return nil
        }
        guard index == chars.count, (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        guard let date = calendar.date(from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second)) else { return nil }
        return (Int64(date.timeIntervalSince1970) - Int64(offsetSeconds)) * 1000 + Int64(fractionMillis)
    }

    /// `0.464s`, `1s`, `0s`.
    public static func duration(millis: Int64) -> String {
        let sign = millis < 0 ? "-" : ""
        let m = abs(millis)
        return m % 1000 == 0 ? "\(sign)\(m / 1000)s" : sign + String(format: "%lld.%03llds", m / 1000, m % 1000)
    }

    /// Milliseconds from `1.5s`, `0.000001s`, `-2s` (truncated to whole milliseconds).
    public static func millis(duration text: String) -> Int64? {
        guard text.hasSuffix("s") else { return nil }
        var body = Substring(text.dropLast())
        var negative = false
        if body.hasPrefix("-") { negative = true; body = body.dropFirst() }
        let parts = body.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = Int64(parts[0]), whole >= 0 else { return nil }
        var millis = whole * 1000
        if parts.count == 2 {
            let frac = parts[1]
            guard !frac.isEmpty, frac.count <= 9, frac.allSatisfy(\.isNumber) else { return nil }
            let padded = (frac + "000").prefix(3)
            millis += Int64(padded)!
        }
        return negative ? -millis : millis
    }
}

/// A trace's summary as its spans give it, before the client's own summary arrives: it
/// starts with its first span, lasts until its last span ends, and has the state of its root
/// span (ERROR when the root span failed, else OK; IN_PROGRESS while there is no root span).
public struct TraceSummary: Sendable, Equatable {
    public var requestTime: Int64
    public var executionDuration: Int64?
    public var state: TraceState

    public init?(_ spans: [SpanSummary]) {
        guard let first = spans.map(\.startNanos).min() else { return nil }
        requestTime = Int64(first / 1_000_000)
        let ends = spans.map(\.endNanos).filter { $0 > 0 }
        executionDuration = ends.max().map { Int64($0 / 1_000_000) - Int64(first / 1_000_000) }
        if let root = spans.first(where: \.isRoot) {
            state = root.statusCode == "STATUS_CODE_ERROR" ? .error : .ok
        } else {
            state = .inProgress
        }
    }
}
