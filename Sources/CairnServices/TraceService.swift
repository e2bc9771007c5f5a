import CairnCore
import CairnStore
import Foundation

/// The rules of MLflow 3 tracing: OTLP span ingest, the trace summaries the client sends at
/// the end of a trace (StartTraceV3), search, tags, deletes, links to runs and assessments.
/// Routes decode and call one method; the store only persists what this type has decided.
public struct TraceService: Sendable {
    public let store: any TraceStore
    public let tracking: TrackingService

    public static let defaultSearchResults = 100
    public static let maxSearchResults = 500
    public static let maxTraceIDsPerRequest = 1000
    /// An OTLP body after gzip never inflates past this.
    public static let maxSpanRequestBytes = 64 * 1024 * 1024

    public init(store: any TraceStore, tracking: TrackingService) {
        self.store = store
        self.tracking = tracking
    }

    var now: Int64 { tracking.now() }

    // MARK: Ingest

    /// `POST /v1/traces`: spans of one or more traces for experiment `experimentID`, each
    /// trace created when its first span arrives. With `runID`, the traces whose root span is
    /// among them are linked to that run.
    public func logSpans(experimentID: String, _ export: OTLPExport, runID: String? = nil) async throws {
        guard export.resourceSpansCount > 0 else {
            throw CairnError(.badRequest, "Invalid OpenTelemetry format - no spans found")
        }
        guard !export.spans.isEmpty else { return }
        let experiment = try await activeExperiment(experimentID)
        var order: [String] = []
        var spansByTrace: [String: [JSONValue]] = [:]
        for span in export.spans {
            let id = span.mlflowTraceID
            if spansByTrace[id] == nil { order.append(id) }
            // MLflow's store adds its own attributes (type, inputs, outputs, token usage, model)
            // to spans of other conventions as it stores them.
            spansByTrace[id, default: []].append(OTelSpanTranslation.translated(span).json)
        }
        let location = experiment.artifactLocation
        try await store.logSpans(
            experimentID: Int64(experiment.experimentID) ?? 0,
            order.map { TraceSpanBatch(traceID: $0, spans: spansByTrace[$0]!, session: TraceAnalytics.session(spansByTrace[$0]!)) },
            newTraceTags: { id in [Tag(TraceKey.artifactLocation, Self.artifactLocation(location, traceID: id))] })
        if let runID, !runID.isEmpty {
            let completed = Set(export.spans.filter(\.isRoot).map(\.mlflowTraceID))
            if !completed.isEmpty { try await store.linkTraces(ids: order.filter(completed.contains), runID: runID) }
        }
    }

    static func artifactLocation(_ experimentLocation: String, traceID: String) -> String {
        (experimentLocation.hasSuffix("/") ? String(experimentLocation.dropLast()) : experimentLocation) + "/traces/\(traceID)/artifacts"
    }

    func activeExperiment(_ id: String) async throws -> Experiment {
        let experiment = try await tracking.getExperiment(id: id)
        if experiment.lifecycleStage != .active {
            throw CairnError.invalidParameter("The experiment \(id) must be in the 'active' state, but it is deleted. Restore it first.")
        }
        return experiment
    }

    /// StartTraceV3: the client's summary of a finished trace (its spans came by OTLP).
    public func startTrace(_ info: TraceInfo) async throws -> TraceInfo {
        try Self.validateTraceID(info.traceID)
        let experiment = try await activeExperiment(info.experimentID)
        var info = info
        for tag in info.tags { try Self.validateTag(tag) }
        info.tags.append(Tag(TraceKey.artifactLocation, Self.artifactLocation(experiment.artifactLocation, traceID: info.traceID)))
        info.metadata.removeAll { $0.key == TraceKey.infoFinalized }
        info.metadata.append(Tag(TraceKey.infoFinalized, "true"))
        info.metadata = Self.storedMetadata(info.metadata)
        return try await store.startTrace(info)
    }

    /// Metadata as MLflow's SQL store keeps it: token usage and cost (columns there) reduced
    /// to the form MLflow answers them in, or dropped when nothing in them is usable.
    static func storedMetadata(_ metadata: [Tag]) -> [Tag] {
        metadata.compactMap { entry in
            guard TraceAnalytics.isReserved(entry.key) else { return entry }
            return TraceAnalytics.stored(entry.key, entry.value).map { Tag(entry.key, $0) }
        }
    }

    /// MLflow's v2 StartTrace (clients before 3.3, and newer ones against old servers): the
    /// server names the trace (32 hex digits, as MLflow's v2 ids) and it is in progress until
    /// `endTraceV2`.
    public func startTraceV2(experimentID: String, timestamp: Int64?, metadata: [Tag], tags: [Tag]) async throws -> TraceInfo {
        let id = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let experiment = try await activeExperiment(experimentID)
        for tag in tags { try Self.validateTag(tag) }
        let info = TraceInfo(traceID: id, experimentID: experiment.experimentID, requestTime: timestamp ?? now, executionDuration: nil,
                             state: .inProgress, metadata: Self.storedMetadata(metadata),
                             tags: tags + [Tag(TraceKey.artifactLocation, Self.artifactLocation(experiment.artifactLocation, traceID: id))])
        return try await store.startTrace(info)
    }

    /// MLflow's v2 EndTrace: the end time, state, and more metadata and tags.
    public func endTraceV2(id: String, timestamp: Int64?, state: TraceState?, metadata: [Tag], tags: [Tag]) async throws -> TraceInfo {
        var info = try await getTraceInfo(id: id)
        for tag in tags { try Self.validateTag(tag) }
        if let timestamp { info.executionDuration = max(0, timestamp - info.requestTime) }
        if let state { info.state = state }
        for entry in metadata {
            info.metadata.removeAll { $0.key == entry.key }
            info.metadata.append(entry)
        }
        info.tags = tags
        info.metadata = Self.storedMetadata(info.metadata)
        return try await store.startTrace(info)
    }

    static func validateTraceID(_ id: String) throws {
        if id.isEmpty { throw CairnError.missingParameter("trace_id") }
        if id.count > 128 || id.contains("/") {
            throw CairnError.invalidParameter("Invalid trace ID '\(id.prefix(64))': at most 128 characters, no '/'.")
        }
    }

    static func validateTag(_ tag: Tag) throws {
        if tag.key.isEmpty { throw CairnError.missingParameter("key") }
        if tag.key.count > Limits.maxKeyLength {
            throw CairnError.invalidParameter("Trace tag key '\(tag.key.prefix(40))…' has \(tag.key.count) characters; the limit is \(Limits.maxKeyLength).")
        }
        if tag.value.utf8.count > 8000 {
            throw CairnError.invalidParameter("Trace tag '\(tag.key)' has a value of \(tag.value.utf8.count) bytes; the limit is 8000.")
        }
    }

    // MARK: Read

    public func getTraceInfo(id: String) async throws -> TraceInfo {
        do {
            return try await store.fetchTraceInfo(id: id)
        } catch let error as CairnError where error.code == .resourceDoesNotExist {
            throw CairnError.notFound("Trace with ID '\(id)' not found.")
        }
    }

    /// The whole trace. Unless `allowPartial`, a trace whose spans have not all arrived yet
    /// (fewer than the client counted in `mlflow.trace.sizeStats`) is "not fully exported".
    public func getTrace(id: String, allowPartial: Bool) async throws -> Trace {
        guard let trace = try await store.fetchTraces(ids: [id], withSpans: true).first else {
            throw CairnError.notFound("Trace with ID \(id) is not found.")
        }
        if !allowPartial, let expected = Self.expectedSpanCount(trace.info), trace.spans.count < expected {
            throw CairnError.notFound("Trace with ID \(id) is not fully exported yet, please try again later.")
        }
        return trace
    }

    static func expectedSpanCount(_ info: TraceInfo) -> Int? {
        guard let stats = info.metadata("mlflow.trace.sizeStats"), let json = try? JSONValue.parse(stats),
              case .number(let n)? = json["num_spans"] else { return nil }
        return Int(n)
    }

    public func batchGetTraces(ids: [String], withSpans: Bool) async throws -> [Trace] {
        if ids.count > Self.maxTraceIDsPerRequest {
            throw CairnError.invalidParameter("At most \(Self.maxTraceIDsPerRequest) trace IDs may be fetched at once; \(ids.count) were given.")
        }
        return try await store.fetchTraces(ids: ids, withSpans: withSpans)
    }

    public func searchTraces(experimentIDs: [String], filter: String?, orderBy: [String], maxResults: Int64?, pageToken: String?) async throws -> Page<TraceInfo> {
        if experimentIDs.isEmpty { throw CairnError.missingParameter("locations") }
        let limit = maxResults ?? Int64(Self.defaultSearchResults)
        guard limit >= 1, limit <= Int64(Self.maxSearchResults) else {
            throw CairnError.invalidParameter("Invalid value \(limit) for parameter 'max_results' supplied: it must be between 1 and \(Self.maxSearchResults).")
        }
        let token = try PageToken.decode(pageToken)
        var ids: [Int64] = []
        for id in experimentIDs { ids.append(try Validation.parseExperimentID(id)) }
        let search = TraceSearch(
            experimentIDs: ids, clauses: try TraceFilterParser.parse(filter ?? ""),
            orderBy: try orderBy.map { text throws(CairnError) in try TraceFilterParser.parseOrder(text) },
            maxResults: Int(limit), offset: token.offset)
        let (items, hasMore) = try await store.searchTraces(search)
        return Page(items: items, nextPageToken: PageToken.next(after: token.offset, pageSize: Int(limit), hasMore: hasMore))
    }

    /// MLflow's `calculate_trace_filter_correlation`: the counts of traces matching each filter
    /// and both (within `baseFilter` when given), and their NPMI.
    public func filterCorrelation(experimentIDs: [String], filter1: String?, filter2: String?, baseFilter: String?) async throws
        -> (counts: TraceFilterCounts, npmi: Double, smoothed: Double) {
        if experimentIDs.isEmpty { throw CairnError.missingParameter("experiment_ids") }
        guard let filter1 else { throw CairnError.missingParameter("filter_string1") }
        guard let filter2 else { throw CairnError.missingParameter("filter_string2") }
        var ids: [Int64] = []
        for id in experimentIDs { ids.append(try Validation.parseExperimentID(id)) }
        let counts = try await store.countTraces(experimentIDs: ids, base: try TraceFilterParser.parse(baseFilter ?? ""),
                                                 filter1: try TraceFilterParser.parse(filter1), filter2: try TraceFilterParser.parse(filter2))
        let (npmi, smoothed) = TraceCorrelation.npmi(joint: counts.joint, filter1: counts.filter1, filter2: counts.filter2, total: counts.total)
        return (counts, npmi, smoothed)
    }

    /// MLflow's `query_trace_metrics` (`POST traces/metrics`): checks the request as MLflow
    /// does, with its words, then aggregates what the store reads. An experiment that does not
    /// exist has no traces (MLflow answers it the same way).
    public func queryTraceMetrics(experimentIDs: [String], view: TraceMetricView?, metricName: String?,
                                  aggregations: [(type: TraceMetricAggregationType, percentile: Double?)]?, dimensions: [String], filters: [String],
                                  timeIntervalSeconds: Int64?, startTime: Int64?, endTime: Int64?, maxResults: Int64?) async throws -> [TraceMetricPoint] {
        if experimentIDs.isEmpty { throw CairnError.missingParameter("experiment_ids") }
        guard let view else { throw CairnError.missingParameter("view_type") }
        guard let metricName, !metricName.isEmpty else { throw CairnError.missingParameter("metric_name") }
        guard let aggregations else { throw CairnError.missingParameter("aggregations") }
        if aggregations.isEmpty {
            // MLflow: a 400 BAD_REQUEST from its SQL layer ("Query contains no columns…").
            throw CairnError(.badRequest, "No aggregation was given: name at least one in 'aggregations' (e.g. {\"aggregation_type\": \"COUNT\"}).")
        }
        let checked = try aggregations.map { item throws(CairnError) in try TraceMetricAggregation(item.type, percentile: item.percentile) }
        var ids: [Int64] = []
        for id in experimentIDs { ids.append(try Validation.parseExperimentID(id)) }
        let query = try TraceMetricsQuery(
            experimentIDs: ids, view: view, metricName: metricName, aggregations: checked, dimensions: dimensions,
            filters: try filters.map { text throws(CairnError) in try TraceMetricFilter.parse(text) },
            timeIntervalSeconds: timeIntervalSeconds, startTime: startTime, endTime: endTime,
            maxResults: Int(clamping: maxResults ?? Int64(TraceMetricsQuery.defaultMaxResults)))
        return query.points(try await store.traceMetricGroups(query))
    }

    // MARK: Manage

    public func setTraceTag(id: String, key: String, value: String) async throws {
        let tag = Tag(key, value)
        try Self.validateTag(tag)
        try await store.setTraceTag(id: id, tag: tag)
    }

    public func deleteTraceTag(id: String, key: String) async throws {
        if key.isEmpty { throw CairnError.missingParameter("key") }
        try await store.deleteTraceTag(id: id, key: key)
    }

    public func deleteTraces(experimentID: String, maxTimestamp: Int64?, maxTraces: Int64?, traceIDs: [String]) async throws -> Int {
        let experiment = try Validation.parseExperimentID(experimentID)
        if maxTimestamp == nil, traceIDs.isEmpty {
            throw CairnError.invalidParameter("Either `max_timestamp_millis` or `trace_ids` must be specified.")
        }
        if maxTimestamp != nil, !traceIDs.isEmpty {
            throw CairnError.invalidParameter("Only one of `max_timestamp_millis` and `trace_ids` can be specified.")
        }
        if let maxTraces, maxTraces <= 0 {
            throw CairnError.invalidParameter("`max_traces` must be a positive integer, received \(maxTraces).")
        }
        return try await store.deleteTraces(experimentID: experiment, ids: traceIDs.isEmpty ? nil : traceIDs, maxTimestamp: maxTimestamp,
                                            maxTraces: maxTraces.map { Int($0) })
    }

    public func linkTracesToRun(traceIDs: [String], runID: String) async throws {
        if runID.isEmpty { throw CairnError.missingParameter("run_id") }
        if traceIDs.count > 100 {
            throw CairnError.invalidParameter("Cannot link more than 100 traces to a run in a single request. Provided \(traceIDs.count) traces.")
        }
        let known = try await store.fetchTraces(ids: traceIDs, withSpans: false).map(\.info.traceID)
        try await store.linkTraces(ids: known, runID: runID)
    }

    /// Links prompt versions to a trace, kept (without duplicates) in its tag
    /// `mlflow.linkedPrompts` as a JSON list of `{"name", "version"}`.
    public func linkPrompts(traceID: String, prompts: [(name: String, version: String)]) async throws {
        if prompts.isEmpty { throw CairnError.missingParameter("prompt_versions") }
        let info = try await getTraceInfo(id: traceID)
        var linked: [JSONValue] = []
        if let text = info.tag(TraceKey.linkedPrompts), case .array(let items)? = try? JSONValue.parse(text) { linked = items }
        for prompt in prompts {
            let entry = JSONValue.object([("name", .string(prompt.name)), ("version", .string(prompt.version))])
            if !linked.contains(entry) { linked.append(entry) }
        }
        try await store.setTraceTag(id: traceID, tag: Tag(TraceKey.linkedPrompts, JSONValue.array(linked).text))
    }

    // MARK: Assessments

    /// Fields the server owns: the client's values are replaced.
    static let ownedAssessmentFields: Set<String> = ["assessment_id", "trace_id", "create_time", "last_update_time", "valid"]

    public func createAssessment(traceID: String, body: JSONValue) async throws -> Assessment {
        guard case .object(let members) = body else { throw CairnError.missingParameter("assessment") }
        let hasValue = members.contains { ($0.0 == "feedback" || $0.0 == "expectation") && $0.1 != .null }
        if !hasValue { throw CairnError.invalidParameter("Unknown assessment type: None") }
        _ = try await getTraceInfo(id: traceID)
        let time = now
        let id = "a-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let created = Self.time(members, "create_time") ?? time
        let updated = Self.time(members, "last_update_time") ?? created
        var out: [(String, JSONValue)] = [("assessment_id", .string(id))]
        var name = ""
        if case .string(let n)? = body["assessment_name"] { name = n }
        out.append(("assessment_name", .string(name)))
        out.append(("trace_id", .string(traceID)))
        if body["source"] == nil { out.append(("source", .object([("source_type", .string("SOURCE_TYPE_UNSPECIFIED"))]))) }
        for (key, value) in members where !Self.ownedAssessmentFields.contains(key) && key != "assessment_name" && value != .null {
            out.append((key, value))
        }
        out.insert(("create_time", .string(ProtoTime.timestamp(millis: created))), at: min(out.count, 4))
        out.insert(("last_update_time", .string(ProtoTime.timestamp(millis: updated))), at: min(out.count, 5))
        out.append(("valid", .bool(true)))
        let assessment = Assessment(assessmentID: id, traceID: traceID, name: name, createTime: created, lastUpdateTime: updated, body: .object(out))
        try await store.createAssessment(assessment)
        if let overridden = assessment.overrides, var old = try? await store.fetchAssessment(traceID: traceID, id: overridden) {
            old.body = Self.setting(old.body, "valid", .bool(false))
            try await store.updateAssessment(old)
        }
        return assessment
    }

    static func time(_ members: [(String, JSONValue)], _ key: String) -> Int64? {
        guard case .string(let text)? = members.last(where: { $0.0 == key })?.1 else { return nil }
        return ProtoTime.millis(timestamp: text)
    }

    static func setting(_ body: JSONValue, _ key: String, _ value: JSONValue?) -> JSONValue {
        guard case .object(var members) = body else { return body }
        if let index = members.firstIndex(where: { $0.0 == key }) {
            if let value { members[index].1 = value } else { members.remove(at: index) }
        } else if let value {
            members.append((key, value))
        }
        return .object(members)
    }

    public func getAssessment(traceID: String, id: String) async throws -> Assessment {
        try await store.fetchAssessment(traceID: traceID, id: id)
    }

    /// Replaces the fields `updateMask` names (protobuf field mask: camelCase or snake_case,
    /// comma-separated) with the request's values.
    public func updateAssessment(traceID: String, id: String, body: JSONValue, updateMask: String) async throws -> Assessment {
        var assessment = try await store.fetchAssessment(traceID: traceID, id: id)
        let fields = updateMask.split(separator: ",").map { Self.snakeCase(String($0).trimmingCharacters(in: .whitespaces)) }
        if fields.isEmpty { throw CairnError.missingParameter("update_mask") }
        for field in fields {
            if Self.ownedAssessmentFields.contains(field) {
                throw CairnError.invalidParameter("The field '\(field)' of an assessment cannot be updated.")
            }
            let value = body[field].flatMap { $0 == .null ? nil : $0 }
            if field == "feedback" || field == "expectation" {
                // One value kind at a time.
                assessment.body = Self.setting(assessment.body, field == "feedback" ? "expectation" : "feedback", nil)
            }
            assessment.body = Self.setting(assessment.body, field, value)
            if field == "assessment_name", case .string(let name)? = value { assessment.name = name }
        }
        assessment.lastUpdateTime = now
        assessment.body = Self.setting(assessment.body, "last_update_time", .string(ProtoTime.timestamp(millis: assessment.lastUpdateTime)))
        try await store.updateAssessment(assessment)
        return assessment
    }

    static func snakeCase(_ name: String) -> String {
        var out = ""
        for c in name {
            if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
        }
        return out
    }

    /// Deleting an assessment that overrode another makes the other valid again. Deleting one
    /// that does not exist changes nothing (as MLflow).
    public func deleteAssessment(traceID: String, id: String) async throws {
        _ = try await getTraceInfo(id: traceID)
        guard let assessment = try? await store.fetchAssessment(traceID: traceID, id: id) else { return }
        try await store.deleteAssessment(traceID: traceID, id: id)
        if let overridden = assessment.overrides, var old = try? await store.fetchAssessment(traceID: traceID, id: overridden) {
            old.body = Self.setting(old.body, "valid", .bool(true))
            try await store.updateAssessment(old)
        }
    }
}
