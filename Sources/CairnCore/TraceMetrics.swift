import Foundation

/// MLflow's trace metrics (`POST /api/3.0/mlflow/traces/metrics`, the client's
/// `query_trace_metrics`): one metric of traces, spans or assessments aggregated over
/// groups (a time bucket and dimensions), as MLflow 3.17.2's SQL store computes them.
public enum TraceMetricView: String, Sendable, CaseIterable {
    case traces = "TRACES"
    case spans = "SPANS"
    case assessments = "ASSESSMENTS"

    /// The proto number (`MetricViewType`).
    public init?(number: Int64) {
        switch number {
        case 1: self = .traces
        case 2: self = .spans
        case 3: self = .assessments
        default: return nil
        }
    }
}

public enum TraceMetricAggregationType: String, Sendable, CaseIterable {
    case count = "COUNT"
    case sum = "SUM"
    case avg = "AVG"
    case percentile = "PERCENTILE"
    case min = "MIN"
    case max = "MAX"

    /// The proto number (`AggregationType`).
    public init?(number: Int64) {
        switch number {
        case 1: self = .count
        case 2: self = .sum
        case 3: self = .avg
        case 4: self = .percentile
        case 5: self = .min
        case 6: self = .max
        default: return nil
        }
    }
}

public struct TraceMetricAggregation: Sendable, Hashable {
    public var type: TraceMetricAggregationType
    /// 0…100, for `PERCENTILE` only.
    public var percentile: Double?

    /// MLflow's checks (`MetricAggregation.__post_init__`), with its words.
    public init(_ type: TraceMetricAggregationType, percentile: Double? = nil) throws(CairnError) {
        if type == .percentile {
            guard let percentile else { throw .invalidParameter("Percentile value is required for PERCENTILE aggregation") }
            guard percentile >= 0, percentile <= 100 else {
                throw .invalidParameter("Percentile value must be between 0 and 100, got \(percentile)")
            }
        } else if percentile != nil {
            throw .invalidParameter("Percentile value is only allowed for PERCENTILE aggregation type, got \(type.rawValue)")
        }
        self.type = type
        self.percentile = percentile
    }

    /// The key of its value in a data point: `COUNT`, `AVG`, `P50.0`.
    public var label: String { type == .percentile ? "P\(percentile ?? 0)" : type.rawValue }
}

/// One filter of a metrics query: `trace.status = 'OK'`, `trace.tag.<key> = 'v'`,
/// `trace.metadata.<key> = 'v'`, `span.name|status|type = 'v'` (spans view) or
/// `assessment.name|type = 'v'` (assessments view); only `=`, one clause per filter.
public struct TraceMetricFilter: Sendable, Hashable {
    public enum Target: Sendable, Hashable {
        case traceStatus
        case traceTag(String)
        case traceMetadata(String)
        case spanName
        case spanStatus
        case spanType
        case assessmentName
        case assessmentType
    }

    public var target: Target
    public var value: String

    static let entities: [(view: String, entities: [(String, Bool)])] = [
        ("trace", [("status", false), ("tag", true), ("metadata", true)]),
        ("span", [("name", false), ("status", false), ("type", false)]),
        ("assessment", [("name", false), ("type", false)]),
    ]

    /// Parses one filter with MLflow's messages (`SearchTraceMetricsUtils`).
    public static func parse(_ text: String) throws(CairnError) -> TraceMetricFilter {
        if text.utf8.count > Limits.maxFilterLength {
            throw .invalidParameter("Invalid filter: it is \(text.utf8.count) bytes long; the limit is \(Limits.maxFilterLength) bytes.")
        }
        var scanner = TraceFilterScanner(text)
        let (prefix, rest) = try scanner.identifier()
        let comparator = try scanner.comparator()
        scanner.skipSpace()
        let valueStart = scanner.position
        let value = try scanner.scalar()
        scanner.skipSpace()
        if !scanner.atEnd {
            let extra = String(text.dropFirst(scanner.position)).split(separator: " ").first.map(String.init) ?? ""
            throw .invalidParameter("Invalid clause(s) in filter string: \(extra)")
        }
        let parts = ([prefix].compactMap { $0 } + [rest]).joined(separator: ".").split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        let message = "Invalid identifier '\(parts.joined(separator: "."))'. Columns should be specified as 'trace.<key>', 'span.<key>', 'assessment.<key>'."
        guard parts.count >= 2 else { throw .invalidParameter(message) }
        let view = parts[0], entity = parts[1], key = parts.count > 2 ? parts[2] : nil
        guard let known = entities.first(where: { $0.view == view }) else {
            throw .invalidParameter("Invalid view type '\(view)'. Valid values are dict_keys(['trace', 'span', 'assessment'])")
        }
        guard let needsKey = known.entities.first(where: { $0.0 == entity })?.1 else {
            throw .invalidParameter("Invalid entity '\(entity)' specified for view type '\(view)'. Valid entities are [\(known.entities.map { "'\($0.0)'" }.joined(separator: ", "))]")
        }
        if needsKey, key == nil {
            throw .invalidParameter("Filtering by \(entity) requires a key, e.g. '\(view).\(entity).<key> = <value>'")
        }
        if !needsKey, key != nil {
            throw .invalidParameter("Filtering by \(entity) does not require a key, use '\(view).\(entity)' instead")
        }
        guard comparator == .equal else {
            throw .invalidParameter("Invalid comparator: '\(comparator.rawValue)', only '=' operator is supported")
        }
        guard case .string(let string) = value else {
            throw .invalidParameter("Expected a quoted string value for \(entity) value (e.g. 'my-value'). Got value \(String(text.dropFirst(valueStart)).trimmingCharacters(in: .whitespaces))")
        }
        let target: Target
        switch (view, entity) {
        case ("trace", "status"): target = .traceStatus
        case ("trace", "tag"): target = .traceTag(key!)
        case ("trace", "metadata"): target = .traceMetadata(key!)
        case ("span", "name"): target = .spanName
        case ("span", "status"): target = .spanStatus
        case ("span", "type"): target = .spanType
        case ("assessment", "name"): target = .assessmentName
        default: target = .assessmentType
        }
        return TraceMetricFilter(target: target, value: string)
    }

    init(target: Target, value: String) {
        self.target = target
        self.value = value
    }

    /// The trace filter clause a trace-level filter is (nil for span and assessment filters).
    var traceClause: TraceFilterClause? {
        switch target {
        case .traceStatus: return TraceFilterClause(.state, .equal, .string(value))
        case .traceTag(let key): return TraceFilterClause(key == TraceKey.traceName ? .name : .tag(key), .equal, .string(value))
        // As MLflow, a run filter also finds traces linked to the run afterwards.
        case .traceMetadata(let key): return TraceFilterClause(key == TraceKey.sourceRun ? .runID : .metadata(key), .equal, .string(value))
        default: return nil
        }
    }
}

/// A validated metrics query.
public struct TraceMetricsQuery: Sendable {
    public var experimentIDs: [Int64]
    public var view: TraceMetricView
    public var metricName: String
    public var aggregations: [TraceMetricAggregation]
    public var dimensions: [String]
    public var filters: [TraceMetricFilter]
    public var timeIntervalSeconds: Int64?
    public var startTime: Int64?
    public var endTime: Int64?
    public var maxResults: Int

    public static let defaultMaxResults = 1000

    struct Metric: Sendable {
        var name: String
        var aggregations: Set<TraceMetricAggregationType>
        var dimensions: [String]
    }

    /// The metrics of each view with the aggregations and dimensions MLflow allows for them.
    static let metrics: [TraceMetricView: [Metric]] = {
        let numeric: Set<TraceMetricAggregationType> = [.sum, .avg, .min, .max, .percentile]
        let spread: Set<TraceMetricAggregationType> = [.avg, .min, .max, .percentile]
        let models = ["span_model_name", "span_model_provider"]
        return [
            .traces: [
                Metric(name: "trace_count", aggregations: [.count], dimensions: ["trace_name", "trace_status"]),
                Metric(name: "session_count", aggregations: [.count], dimensions: []),
                Metric(name: "latency", aggregations: spread, dimensions: ["trace_name"]),
            ] + TraceMetricRecord.tokenKeys.map { Metric(name: $0, aggregations: numeric, dimensions: ["trace_name"]) },
            .spans: [
                Metric(name: "span_count", aggregations: [.count], dimensions: ["span_name", "span_type", "span_status"] + models),
                Metric(name: "latency", aggregations: spread, dimensions: ["span_name", "span_status"]),
            ] + TraceMetricRecord.costKeys.map { Metric(name: $0, aggregations: numeric, dimensions: models) },
            .assessments: [
                Metric(name: "assessment_count", aggregations: [.count], dimensions: ["assessment_name", "assessment_value"]),
                Metric(name: "assessment_value", aggregations: spread, dimensions: ["assessment_name"]),
            ],
        ]
    }()

    /// MLflow's checks (`validate_query_trace_metrics_params`), in its order and words.
    public init(experimentIDs: [Int64], view: TraceMetricView, metricName: String, aggregations: [TraceMetricAggregation], dimensions: [String],
                filters: [TraceMetricFilter], timeIntervalSeconds: Int64?, startTime: Int64?, endTime: Int64?, maxResults: Int) throws(CairnError) {
        let known = Self.metrics[view] ?? []
        guard let metric = known.first(where: { $0.name == metricName }) else {
            throw .invalidParameter("metric_name must be one of [\(known.map { "'\($0.name)'" }.joined(separator: ", "))], got '\(metricName)'")
        }
        let invalid = Set(aggregations.map(\.type)).subtracting(metric.aggregations)
        if !invalid.isEmpty {
            throw .invalidParameter("Found invalid aggregation_type(s): [\(invalid.map { "'\($0.rawValue)'" }.sorted().joined(separator: ", "))]. "
                + "Supported aggregation types: [\(metric.aggregations.map { "'\($0.rawValue)'" }.sorted().joined(separator: ", "))]")
        }
        let invalidDimensions = Set(dimensions).subtracting(metric.dimensions)
        if !invalidDimensions.isEmpty {
            throw .invalidParameter("Found invalid dimension(s): [\(invalidDimensions.sorted().map { "'\($0)'" }.joined(separator: ", "))]. "
                + "Supported dimensions: [\(metric.dimensions.sorted().map { "'\($0)'" }.joined(separator: ", "))]")
        }
        if let timeIntervalSeconds, timeIntervalSeconds != 0, startTime == nil || endTime == nil {
            throw .invalidParameter("start_time_ms and end_time_ms are required if time_interval_seconds is set")
        }
        if let timeIntervalSeconds, timeIntervalSeconds < 0 {
            throw .invalidParameter("Invalid value \(timeIntervalSeconds) for parameter 'time_interval_seconds' supplied: it must be positive.")
        }
        for filter in filters {
            switch filter.target {
            case .spanName, .spanStatus, .spanType:
                if view != .spans { throw .invalidParameter("Filtering by span is only supported for SPANS view type, got \(view.rawValue)") }
            case .assessmentName, .assessmentType:
                if view != .assessments { throw .invalidParameter("Filtering by assessment is only supported for ASSESSMENTS view type, got \(view.rawValue)") }
            default: break
            }
        }
        if maxResults < 0 {
            throw .invalidParameter("Invalid value \(maxResults) for parameter 'max_results' supplied: it must not be negative.")
        }
        self.experimentIDs = experimentIDs
        self.view = view
        self.metricName = metricName
        self.aggregations = aggregations
        self.dimensions = dimensions
        self.filters = filters
        self.timeIntervalSeconds = timeIntervalSeconds == 0 ? nil : timeIntervalSeconds
        self.startTime = startTime
        self.endTime = endTime
        self.maxResults = maxResults
    }

    /// The trace-level filters, as trace filter clauses for the store.
    public var traceClauses: [TraceFilterClause] { filters.compactMap(\.traceClause) }

    /// Span costs are bounded by the span's start time, everything else by its trace's.
    public var boundsTraceTime: Bool { !(view == .spans && TraceMetricRecord.costKeys.contains(metricName)) }
}

/// What the store reads for an assessments query: one per assessment, with its trace's time.
public struct TraceMetricRecord: Sendable {
    public var traceTime: Int64
    public var assessmentName: String
    /// The assessment as stored (JSON).
    public var assessmentBody: String

    public init(traceTime: Int64, assessmentName: String, assessmentBody: String) {
        self.traceTime = traceTime
        self.assessmentName = assessmentName
        self.assessmentBody = assessmentBody
    }

    public static let tokenKeys = ["input_tokens", "output_tokens", "total_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"]
    public static let costKeys = ["input_cost", "output_cost", "total_cost"]
}

/// One group of a metrics query with its aggregates: computed in SQL by the store (traces and
/// spans) or from `TraceMetricRecord`s by `groups(_:)` (assessments).
public struct TraceMetricGroup: Sendable {
    /// The start of its time bucket, in ms (when the query has an interval).
    public var bucket: Int64?
    /// The dimension values, in the query's order.
    public var dimensions: [String]
    /// One per aggregation of the query, in its order; nil when absent (no value to aggregate).
    public var values: [Double?]

    public init(bucket: Int64?, dimensions: [String], values: [Double?]) {
        self.bucket = bucket
        self.dimensions = dimensions
        self.values = values
    }
}

public struct TraceMetricPoint: Sendable, Equatable {
    public var metricName: String
    public var dimensions: [(String, String)]
    public var values: [(String, Double)]

    public static func == (a: TraceMetricPoint, b: TraceMetricPoint) -> Bool {
        a.metricName == b.metricName && a.dimensions.elementsEqual(b.dimensions, by: ==) && a.values.elementsEqual(b.values, by: ==)
    }
}

extension TraceMetricsQuery {
    /// A record's group (time bucket in ms, dimension values) and value.
    struct Fact {
        var bucket: Int64?
        var dimensions: [String]
        var value: Double
    }

    /// The groups of `records` (assessments) with their aggregates; without a time bucket or
    /// dimensions there is one group even when nothing matched (`COUNT` 0, the other
    /// aggregates absent), as an SQL aggregate without GROUP BY.
    public func groups(_ records: [TraceMetricRecord]) -> [TraceMetricGroup] {
        var order: [[String]] = []
        var groups: [[String]: (bucket: Int64?, values: [Double])] = [:]
        for record in records {
            guard let fact = fact(record) else { continue }
            let key = [fact.bucket.map(String.init) ?? ""] + fact.dimensions
            if groups[key] == nil { order.append(key); groups[key] = (fact.bucket, []) }
            groups[key]!.values.append(fact.value)
        }
        if timeIntervalSeconds == nil, dimensions.isEmpty, groups.isEmpty { order.append([""]); groups[[""]] = (nil, []) }
        return order.map { key in
            let group = groups[key]!
            return TraceMetricGroup(bucket: group.bucket, dimensions: Array(key.dropFirst()),
                                    values: aggregations.map { Self.aggregate($0, group.values) })
        }
    }

    /// The data points of `groups`, ordered as MLflow's SQL orders them (time bucket, then
    /// the dimensions in the order asked; text compared bytewise), at most `maxResults`; a
    /// group with no value at all is left out.
    public func points(_ groups: [TraceMetricGroup]) -> [TraceMetricPoint] {
        let ordered = groups.sorted { a, b in
            if a.bucket != b.bucket { return (a.bucket ?? 0) < (b.bucket ?? 0) }
            return a.dimensions.lexicographicallyPrecedes(b.dimensions) { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        }
        var points: [TraceMetricPoint] = []
        for group in ordered.prefix(maxResults) {
            var dims: [(String, String)] = []
            if let bucket = group.bucket { dims.append(("time_bucket", Self.isoTime(bucket))) }
            dims += zip(dimensions, group.dimensions).map { ($0, $1) }
            let values = zip(aggregations, group.values).compactMap { aggregation, value in value.map { (aggregation.label, $0) } }
            if values.isEmpty { continue }
            points.append(TraceMetricPoint(metricName: metricName, dimensions: dims, values: values))
        }
        return points
    }

    /// PERCENTILE_CONT's answer from the two values around the position (numpy's default
    /// linear interpolation): `lower` and `upper` are the values at ranks `⌊position⌋` and
    /// the next (the last rank at the end) of `count` sorted values.
    static func interpolate(_ percentile: Double, lower: Double, upper: Double, count: Int) -> Double {
        let position = percentile / 100 * Double(count - 1)
        return lower + (upper - lower) * (position - position.rounded(.down))
    }

    static func aggregate(_ aggregation: TraceMetricAggregation, _ values: [Double]) -> Double? {
        if aggregation.type == .count { return Double(values.count) }
        guard !values.isEmpty else { return nil }
        switch aggregation.type {
        case .count: return Double(values.count)
        case .sum: return values.reduce(0, +)
        case .avg: return values.reduce(0, +) / Double(values.count)
        case .min: return values.min()
        case .max: return values.max()
        case .percentile: return percentile(aggregation.percentile ?? 0, sorted: values.sorted())
        }
    }

    /// PERCENTILE_CONT of values in ascending order (not empty): linear interpolation between
    /// the closest ranks (numpy's default), `percentile` in 0…100.
    public static func percentile(_ percentile: Double, sorted: [Double]) -> Double {
        let lower = Int((percentile / 100 * Double(sorted.count - 1)).rounded(.down))
        return interpolate(percentile, lower: sorted[lower], upper: sorted[Swift.min(lower + 1, sorted.count - 1)], count: sorted.count)
    }

    /// `2026-11-27T00:00:00+00:00`, as Python's `datetime.isoformat()` writes a UTC time.
    static func isoTime(_ milliseconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.formatOptions = [.withFullDate, .withTime, .withDashSeparatorInDate, .withColonSeparatorInTime]
        // Buckets are whole seconds (the interval is), so there is never a fraction to write.
        return formatter.string(from: Date(timeIntervalSince1970: Double(floorDivide(milliseconds, 1000)))) + "+00:00"
    }

    static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// An assessment's contribution (assessments view): its group and the value aggregated
    /// (nil: left out, as SQL aggregates leave NULL out).
    func fact(_ record: TraceMetricRecord) -> Fact? {
        guard let body = try? JSONValue.parse(record.assessmentBody) else { return nil }
        guard let kind = ["feedback", "expectation", "issue"].first(where: { if case .object? = body[$0] { return true } else { return false } }) else { return nil }
        if case .bool(false)? = body["valid"] { return nil }
        for filter in filters {
            switch filter.target {
            case .assessmentName where record.assessmentName != filter.value: return nil
            case .assessmentType where kind != filter.value: return nil
            default: break
            }
        }
        let assessed = kind == "issue" ? body[kind] : body[kind]?["value"]
        let dims: [String: String?] = ["assessment_name": record.assessmentName, "assessment_value": assessed.map(MLflowSpanDocument.pythonJSON)]
        guard let value = metricName == "assessment_count" ? 0 : Self.assessmentNumber(assessed) else { return nil }
        var values: [String] = []
        for dimension in dimensions {
            guard let dim = dims[dimension] ?? nil else { return nil }
            values.append(dim)
        }
        let bucketMs = timeIntervalSeconds.map { $0 * 1000 }
        return Fact(bucket: bucketMs.map { Self.floorDivide(record.traceTime, $0) * $0 }, dimensions: values, value: value)
    }

    static func number(_ value: JSONValue?) -> Double? {
        guard case .number(let text)? = value, let number = Double(text), number.isFinite else { return nil }
        return number
    }

    /// MLflow's `assessment_aggregate`: a finite number, a bool as 1 or 0, `yes`/`no` as 1 or 0.
    static func assessmentNumber(_ value: JSONValue?) -> Double? {
        switch value {
        case .bool(let b)?: return b ? 1 : 0
        case .number?: return number(value)
        case .string(let s)?:
            switch s.trimmingCharacters(in: .whitespacesAndNewlines).lowercased() {
            case "yes": return 1
            case "no": return 0
            default: return nil
            }
        default: return nil
        }
    }
}
