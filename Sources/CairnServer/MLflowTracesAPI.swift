import CairnCore
import CairnServices
import Hummingbird

/// MLflow 3's trace endpoints: the v3 ones under `/api/3.0/mlflow` (StartTraceV3, get, batch
/// get, search, assessments), the ones the client still calls under `/api/2.0/mlflow` (tags,
/// delete, link to a run, and the v2 trace-info read it falls back to), and OTLP span ingest at
/// `POST /v1/traces`. Each decodes, calls one `TraceService` method and encodes.
struct MLflowTracesAPI: Sendable {
    let traces: TraceService

    /// Under `/api/2.0/mlflow` and `/ajax-api/2.0/mlflow`.
    var v2Endpoints: [MLflowEndpoint] {
        [
            MLflowEndpoint(methods: ["PATCH"], path: "traces/:trace_id/tags", handler: setTag),
            MLflowEndpoint(methods: ["DELETE"], path: "traces/:trace_id/tags", handler: deleteTag),
            MLflowEndpoint(methods: ["POST"], path: "traces/delete-traces", handler: deleteTraces),
            MLflowEndpoint(methods: ["POST"], path: "traces/link-to-run", handler: linkToRun),
            MLflowEndpoint(methods: ["POST"], path: "traces/link-prompts", handler: linkPrompts),
            MLflowEndpoint(methods: ["GET"], path: "traces/:trace_id/info", handler: getTraceInfoV2),
            MLflowEndpoint(methods: ["POST"], path: "traces", handler: startTraceV2),
            MLflowEndpoint(methods: ["PATCH"], path: "traces/:trace_id", handler: endTraceV2),
            MLflowEndpoint(methods: ["GET"], path: "traces", handler: searchV2),
        ]
    }

    /// Under `/api/3.0/mlflow` and `/ajax-api/3.0/mlflow`.
    var v3Endpoints: [MLflowEndpoint] {
        [
            MLflowEndpoint(methods: ["POST"], path: "traces", handler: startTrace),
            MLflowEndpoint(methods: ["GET"], path: "traces/get", handler: getTrace),
            MLflowEndpoint(methods: ["GET"], path: "traces/batchGet", handler: batchGet),
            MLflowEndpoint(methods: ["GET"], path: "traces/batchGetInfos", handler: batchGetInfos),
            MLflowEndpoint(methods: ["POST"], path: "traces/search", handler: search),
            MLflowEndpoint(methods: ["POST"], path: "traces/calculate-filter-correlation", handler: filterCorrelation),
            MLflowEndpoint(methods: ["POST"], path: "traces/metrics", handler: queryMetrics),
            MLflowEndpoint(methods: ["GET"], path: "traces/:trace_id", handler: getTraceInfo),
            MLflowEndpoint(methods: ["PATCH"], path: "traces/:trace_id/tags", handler: setTag),
            MLflowEndpoint(methods: ["DELETE"], path: "traces/:trace_id/tags", handler: deleteTag),
            MLflowEndpoint(methods: ["POST"], path: "traces/:trace_id/assessments", handler: createAssessment),
            MLflowEndpoint(methods: ["GET"], path: "traces/:trace_id/assessments/:assessment_id", handler: getAssessment),
            MLflowEndpoint(methods: ["PATCH"], path: "traces/:trace_id/assessments/:assessment_id", handler: updateAssessment),
            MLflowEndpoint(methods: ["DELETE"], path: "traces/:trace_id/assessments/:assessment_id", handler: deleteAssessment),
        ]
    }

    // MARK: Handlers

    func startTrace(_ f: RequestFields) async throws -> [UInt8] {
        guard let trace = try f.object("trace") else { throw CairnError.missingParameter("trace") }
        guard let info = try trace.object("trace_info") else { throw CairnError.missingParameter("trace_info") }
        let stored = try await traces.startTrace(try Self.traceInfo(info))
        return WireEncoding.reply { o in o.object("trace") { t in t.key("trace_info"); Self.traceInfo(&t.writer, stored) } }
    }

    func getTraceInfo(_ f: RequestFields) async throws -> [UInt8] {
        let info = try await traces.getTraceInfo(id: f.requiredString("trace_id"))
        return WireEncoding.reply { o in o.object("trace") { t in t.key("trace_info"); Self.traceInfo(&t.writer, info) } }
    }

    /// MLflow's v2 `GetTraceInfo` (`traces/{request_id}/info`), which old clients call.
    func getTraceInfoV2(_ f: RequestFields) async throws -> [UInt8] {
        Self.traceInfoV2Reply(try await traces.getTraceInfo(id: f.requiredString("trace_id")))
    }

    /// MLflow's v2 `StartTrace`.
    func startTraceV2(_ f: RequestFields) async throws -> [UInt8] {
        Self.traceInfoV2Reply(try await traces.startTraceV2(
            experimentID: f.requiredString("experiment_id"), timestamp: f.int64("timestamp_ms"),
            metadata: f.tags("request_metadata"), tags: f.tags()))
    }

    /// MLflow's v2 `EndTrace` (`PATCH traces/{request_id}`).
    func endTraceV2(_ f: RequestFields) async throws -> [UInt8] {
        let state = try f.enumeration("status", byName: TraceState.init(name:), byNumber: { TraceState(name: String($0)) },
                                      expected: "one of OK, ERROR, IN_PROGRESS, TRACE_STATUS_UNSPECIFIED")
        return Self.traceInfoV2Reply(try await traces.endTraceV2(
            id: f.requiredString("trace_id"), timestamp: f.int64("timestamp_ms"), state: state,
            metadata: f.tags("request_metadata"), tags: f.tags()))
    }

    /// MLflow's v2 `SearchTraces` (`GET traces`).
    func searchV2(_ f: RequestFields) async throws -> [UInt8] {
        let page = try await traces.searchTraces(experimentIDs: f.strings("experiment_ids"), filter: f.string("filter"), orderBy: f.strings("order_by"),
                                                 maxResults: f.int64("max_results"), pageToken: f.string("page_token"))
        return WireEncoding.page("traces", page, Self.traceInfoV2)
    }

    static func traceInfoV2Reply(_ info: TraceInfo) -> [UInt8] {
        WireEncoding.reply { o in o.key("trace_info"); traceInfoV2(&o.writer, info) }
    }

    static func traceInfoV2(_ w: inout JSONWriter, _ info: TraceInfo) {
        w.object { t in
            t.string("request_id", info.traceID)
            t.string("experiment_id", info.experimentID)
            t.int("timestamp_ms", info.requestTime)
            if let d = info.executionDuration { t.int("execution_time_ms", d) }
            t.string("status", info.state == .unspecified ? "TRACE_STATUS_UNSPECIFIED" : info.state.rawValue)
            keyValues(&t, "request_metadata", info.metadata)
            keyValues(&t, "tags", info.tags)
        }
    }

    func getTrace(_ f: RequestFields) async throws -> [UInt8] {
        let trace = try await traces.getTrace(id: f.requiredString("trace_id"), allowPartial: try f.bool("allow_partial") ?? false)
        return WireEncoding.reply { o in o.key("trace"); Self.trace(&o.writer, trace) }
    }

    func batchGet(_ f: RequestFields) async throws -> [UInt8] {
        let found = try await traces.batchGetTraces(ids: f.strings("trace_ids"), withSpans: true)
        return WireEncoding.reply { o in o.array("traces", found, Self.trace) }
    }

    func batchGetInfos(_ f: RequestFields) async throws -> [UInt8] {
        let found = try await traces.batchGetTraces(ids: f.strings("trace_ids"), withSpans: false)
        return WireEncoding.reply { o in o.array("trace_infos", found.map(\.info), Self.traceInfo) }
    }

    func search(_ f: RequestFields) async throws -> [UInt8] {
        var experimentIDs: [String] = []
        for location in try f.objects("locations") {
            if let experiment = try location.object("mlflow_experiment"), let id = try experiment.string("experiment_id") {
                experimentIDs.append(id)
            }
        }
        // MLflow's v2 field, still accepted.
        experimentIDs += try f.strings("experiment_ids")
        let page = try await traces.searchTraces(experimentIDs: experimentIDs, filter: f.string("filter"), orderBy: f.strings("order_by"),
                                                 maxResults: f.int64("max_results"), pageToken: f.string("page_token"))
        return WireEncoding.page("traces", page, Self.traceInfo)
    }

    func filterCorrelation(_ f: RequestFields) async throws -> [UInt8] {
        let (counts, npmi, smoothed) = try await traces.filterCorrelation(
            experimentIDs: f.strings("experiment_ids"), filter1: f.string("filter_string1"), filter2: f.string("filter_string2"),
            baseFilter: f.string("base_filter"))
        return WireEncoding.reply { o in
            // Undefined (NaN) values are left out, as MLflow leaves them.
            if !npmi.isNaN { o.key("npmi"); o.writer.value(.number("\(npmi)")) }
            if !smoothed.isNaN { o.key("npmi_smoothed"); o.writer.value(.number("\(smoothed)")) }
            o.int("filter1_count", counts.filter1)
            o.int("filter2_count", counts.filter2)
            o.int("joint_count", counts.joint)
            o.int("total_count", counts.total)
        }
    }

    func queryMetrics(_ f: RequestFields) async throws -> [UInt8] {
        // `page_token` is read and ignored, as MLflow does: every answer is one page.
        _ = try f.string("page_token")
        let view = try f.enumeration("view_type", byName: TraceMetricView.init(rawValue:), byNumber: TraceMetricView.init(number:),
                                     expected: "one of TRACES, SPANS, ASSESSMENTS")
        let aggregations = f.has("aggregations") ? try f.objects("aggregations").map { a in
            guard let type = try a.enumeration("aggregation_type", byName: TraceMetricAggregationType.init(rawValue:), byNumber: TraceMetricAggregationType.init(number:),
                                               expected: "one of COUNT, SUM, AVG, PERCENTILE, MIN, MAX") else { throw CairnError.missingParameter("aggregation_type") }
            return (type: type, percentile: try a.double("percentile_value"))
        } : nil
        let points = try await traces.queryTraceMetrics(
            experimentIDs: f.strings("experiment_ids"), view: view, metricName: f.string("metric_name"), aggregations: aggregations,
            dimensions: f.strings("dimensions"), filters: f.strings("filters"), timeIntervalSeconds: f.int64("time_interval_seconds"),
            startTime: f.int64("start_time_ms"), endTime: f.int64("end_time_ms"), maxResults: f.int64("max_results"))
        return WireEncoding.reply { o in
            o.array("data_points", points) { w, point in
                w.object { p in
                    p.string("metric_name", point.metricName)
                    if !point.dimensions.isEmpty { p.object("dimensions") { d in for (key, value) in point.dimensions { d.string(key, value) } } }
                    p.object("values") { v in for (key, value) in point.values { v.double(key, value) } }
                }
            }
        }
    }

    func setTag(_ f: RequestFields) async throws -> [UInt8] {
        try await traces.setTraceTag(id: f.requiredString("trace_id"), key: f.string("key") ?? "", value: f.string("value") ?? "")
        return WireEncoding.empty
    }

    func deleteTag(_ f: RequestFields) async throws -> [UInt8] {
        try await traces.deleteTraceTag(id: f.requiredString("trace_id"), key: f.string("key") ?? "")
        return WireEncoding.empty
    }

    func deleteTraces(_ f: RequestFields) async throws -> [UInt8] {
        let count = try await traces.deleteTraces(experimentID: f.requiredString("experiment_id"), maxTimestamp: f.int64("max_timestamp_millis"),
                                                  maxTraces: f.int64("max_traces"), traceIDs: f.strings("request_ids") + f.strings("trace_ids"))
        return WireEncoding.reply { o in o.int("traces_deleted", Int64(count)) }
    }

    func linkToRun(_ f: RequestFields) async throws -> [UInt8] {
        try await traces.linkTracesToRun(traceIDs: f.strings("trace_ids"), runID: f.string("run_id") ?? "")
        return WireEncoding.empty
    }

    func linkPrompts(_ f: RequestFields) async throws -> [UInt8] {
        let prompts = try f.objects("prompt_versions").map { (name: try $0.requiredString("name"), version: try $0.requiredString("version")) }
        try await traces.linkPrompts(traceID: f.requiredString("trace_id"), prompts: prompts)
        return WireEncoding.empty
    }

    func createAssessment(_ f: RequestFields) async throws -> [UInt8] {
        guard let body = f.json("assessment") else { throw CairnError.missingParameter("assessment") }
        let assessment = try await traces.createAssessment(traceID: f.requiredString("trace_id"), body: body)
        return Self.assessmentReply(assessment)
    }

    func getAssessment(_ f: RequestFields) async throws -> [UInt8] {
        Self.assessmentReply(try await traces.getAssessment(traceID: f.requiredString("trace_id"), id: f.requiredString("assessment_id")))
    }

    func updateAssessment(_ f: RequestFields) async throws -> [UInt8] {
        guard let body = f.json("assessment") else { throw CairnError.missingParameter("assessment") }
        let assessment = try await traces.updateAssessment(traceID: f.requiredString("trace_id"), id: f.requiredString("assessment_id"),
                                                           body: body, updateMask: f.string("update_mask") ?? "")
        return Self.assessmentReply(assessment)
    }

    func deleteAssessment(_ f: RequestFields) async throws -> [UInt8] {
        try await traces.deleteAssessment(traceID: f.requiredString("trace_id"), id: f.requiredString("assessment_id"))
        return WireEncoding.empty
    }

    // MARK: Wire forms

    static func assessmentReply(_ assessment: Assessment) -> [UInt8] {
        WireEncoding.reply { o in o.key("assessment"); o.writer.value(assessment.body) }
    }

    /// A v3 `TraceInfo` from its protobuf JSON.
    static func traceInfo(_ f: RequestFields) throws -> TraceInfo {
        let id = try f.requiredString("trace_id")
        var experimentID = ""
        if let location = try f.object("trace_location"), let experiment = try location.object("mlflow_experiment") {
            experimentID = try experiment.string("experiment_id") ?? ""
        }
        if experimentID.isEmpty { throw CairnError.missingParameter("trace_location.mlflow_experiment.experiment_id") }
        guard let time = try f.string("request_time") else { throw CairnError.missingParameter("request_time") }
        guard let requestTime = ProtoTime.millis(timestamp: time) else {
            throw CairnError.invalidParameter("Invalid value '\(time)' for parameter 'request_time': expected an RFC 3339 timestamp such as 2026-01-31T12:00:00.000Z.")
        }
        var duration: Int64?
        if let text = try f.string("execution_duration") {
            guard let millis = ProtoTime.millis(duration: text) else {
                throw CairnError.invalidParameter("Invalid value '\(text)' for parameter 'execution_duration': expected a duration such as 1.5s.")
            }
            duration = millis
        }
        let state = try f.enumeration("state", byName: TraceState.init(name:), byNumber: { TraceState(name: String($0)) },
                                      expected: "one of OK, ERROR, IN_PROGRESS, STATE_UNSPECIFIED") ?? .unspecified
        return TraceInfo(traceID: id, experimentID: experimentID, requestTime: requestTime, executionDuration: duration, state: state,
                         requestPreview: try f.string("request_preview"), responsePreview: try f.string("response_preview"),
                         clientRequestID: try f.string("client_request_id"),
                         metadata: try stringMap(f, "trace_metadata"), tags: try stringMap(f, "tags"))
    }

    /// A protobuf `map<string, string>` in JSON: an object of strings.
    static func stringMap(_ f: RequestFields, _ name: String) throws -> [Tag] {
        switch f.json(name) {
        case nil: return []
        case .object(let members)?:
            return try members.map { key, value in
                guard case .string(let s) = value else { throw WireField.invalid("\(name).\(key)", value) }
                return Tag(key, s)
            }
        case let other?: throw WireField.invalid(name, other)
        }
    }

    static func keyValues(_ o: inout JSONObjectBuilder, _ name: String, _ entries: [Tag]) {
        o.array(name, entries) { w, tag in w.object { e in e.string("key", tag.key); e.string("value", tag.value) } }
    }

    static func traceInfo(_ w: inout JSONWriter, _ info: TraceInfo) {
        w.object { o in
            o.string("trace_id", info.traceID)
            if let id = info.clientRequestID { o.string("client_request_id", id) }
            o.object("trace_location") { l in
                l.string("type", "MLFLOW_EXPERIMENT")
                l.object("mlflow_experiment") { e in e.string("experiment_id", info.experimentID) }
            }
            o.string("request_time", ProtoTime.timestamp(millis: info.requestTime))
            if let d = info.executionDuration { o.string("execution_duration", ProtoTime.duration(millis: d)) }
            o.string("state", info.state.rawValue)
            map(&o, "trace_metadata", info.metadata)
            o.array("assessments", info.assessments) { w, a in w.value(a.body) }
            map(&o, "tags", info.tags)
            if let p = info.requestPreview { o.string("request_preview", p) }
            if let p = info.responsePreview { o.string("response_preview", p) }
        }
    }

    static func map(_ o: inout JSONObjectBuilder, _ name: String, _ entries: [Tag]) {
        guard !entries.isEmpty else { return }
        o.object(name) { m in for entry in entries { m.string(entry.key, entry.value) } }
    }

    static func trace(_ w: inout JSONWriter, _ trace: Trace) {
        w.object { o in
            o.key("trace_info")
            traceInfo(&o.writer, trace.info)
            o.array("spans", trace.spans) { w, span in w.value(span) }
        }
    }
}
