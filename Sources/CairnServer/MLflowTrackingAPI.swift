import CairnCore
import CairnServices
import Hummingbird

/// One JSON endpoint of the MLflow API: methods, path (`:name` segments become fields) and
/// the handler that turns request fields into the reply body.
struct MLflowEndpoint: Sendable {
    typealias Handler = @Sendable (RequestFields) async throws -> [UInt8]
    typealias BodyHandler = @Sendable (RequestFields) async throws -> ResponseBody
    let methods: [String]
    let path: String
    let body: BodyHandler

    /// A reply built whole: the usual case.
    init(methods: [String], path: String, handler: @escaping Handler) {
        self.methods = methods
        self.path = path
        body = { fields in ResponseBody(byteBuffer: ByteBuffer(bytes: try await handler(fields))) }
    }

    /// A reply written in chunks as it is encoded (long answers). Everything that can fail
    /// with an MLflow error must happen before the body is returned.
    init(methods: [String], path: String, body: @escaping BodyHandler) {
        self.methods = methods
        self.path = path
        self.body = body
    }
}

/// The MLflow tracking endpoints: each decodes its fields, calls one service method and
/// encodes the reply. No rules here; those live in `TrackingService`.
struct MLflowTrackingAPI: Sendable {
    let tracking: TrackingService

    typealias Endpoint = MLflowEndpoint

    var endpoints: [Endpoint] {
        [
            Endpoint(methods: ["GET"], path: "experiments/get-by-name", handler: getExperimentByName),
            Endpoint(methods: ["POST"], path: "experiments/create", handler: createExperiment),
            Endpoint(methods: ["GET"], path: "experiments/get", handler: getExperiment),
            Endpoint(methods: ["POST", "GET"], path: "experiments/search", handler: searchExperiments),
            Endpoint(methods: ["POST"], path: "experiments/delete", handler: deleteExperiment),
            Endpoint(methods: ["POST"], path: "experiments/restore", handler: restoreExperiment),
            Endpoint(methods: ["POST"], path: "experiments/update", handler: updateExperiment),
            Endpoint(methods: ["POST"], path: "experiments/set-experiment-tag", handler: setExperimentTag),
            Endpoint(methods: ["POST"], path: "experiments/delete-experiment-tag", handler: deleteExperimentTag),
            Endpoint(methods: ["POST"], path: "runs/create", handler: createRun),
            Endpoint(methods: ["POST"], path: "runs/update", handler: updateRun),
            Endpoint(methods: ["GET"], path: "runs/get", handler: getRun),
            Endpoint(methods: ["POST"], path: "runs/delete", handler: deleteRun),
            Endpoint(methods: ["POST"], path: "runs/restore", handler: restoreRun),
            Endpoint(methods: ["POST"], path: "runs/log-metric", handler: logMetric),
            Endpoint(methods: ["POST"], path: "runs/log-parameter", handler: logParam),
            Endpoint(methods: ["POST"], path: "runs/set-tag", handler: setTag),
            Endpoint(methods: ["POST"], path: "runs/delete-tag", handler: deleteTag),
            Endpoint(methods: ["POST"], path: "runs/log-batch", handler: logBatch),
            Endpoint(methods: ["POST"], path: "runs/log-inputs", handler: logInputs),
            Endpoint(methods: ["POST"], path: "runs/search", handler: searchRuns),
            Endpoint(methods: ["POST"], path: "runs/outputs", handler: logOutputs),
            Endpoint(methods: ["POST"], path: "runs/log-model", handler: logModel),
            Endpoint(methods: ["POST"], path: "logged-models", handler: createLoggedModel),
            Endpoint(methods: ["POST"], path: "logged-models/search", handler: searchLoggedModels),
            Endpoint(methods: ["GET"], path: "logged-models/:model_id", handler: getLoggedModel),
            Endpoint(methods: ["PATCH"], path: "logged-models/:model_id", handler: finalizeLoggedModel),
            Endpoint(methods: ["DELETE"], path: "logged-models/:model_id", handler: deleteLoggedModel),
            Endpoint(methods: ["PATCH"], path: "logged-models/:model_id/tags", handler: setLoggedModelTags),
            Endpoint(methods: ["DELETE"], path: "logged-models/:model_id/tags/:tag_key", handler: deleteLoggedModelTag),
            Endpoint(methods: ["POST"], path: "logged-models/:model_id/params", handler: logLoggedModelParams),
            Endpoint(methods: ["GET"], path: "metrics/get-history", body: getMetricHistory),
            Endpoint(methods: ["GET"], path: "metrics/get-history-bulk-interval", body: getMetricHistoryBulkInterval),
        ]
    }

    /// Routes of MLflow's own web app that MLflow serves under `/ajax-api/2.0/mlflow` only.
    var ajaxEndpoints: [Endpoint] {
        [
            Endpoint(methods: ["GET"], path: "metrics/get-history-bulk", body: getMetricHistoryBulk),
            Endpoint(methods: ["POST"], path: "experiments/search-datasets", handler: searchDatasets),
        ]
    }

    // MARK: Experiments

    func getExperimentByName(_ f: RequestFields) async throws -> [UInt8] {
        let experiment = try await tracking.getExperimentByName(f.requiredString("experiment_name"))
        return WireEncoding.reply { o in
            o.key("experiment")
            WireEncoding.experiment(&o.writer, experiment)
        }
    }

    func createExperiment(_ f: RequestFields) async throws -> [UInt8] {
        let experiment = try await tracking.createExperiment(
            name: f.requiredString("name"), artifactLocation: f.string("artifact_location"), tags: f.tags())
        return WireEncoding.reply { o in o.string("experiment_id", experiment.experimentID) }
    }

    func getExperiment(_ f: RequestFields) async throws -> [UInt8] {
        let experiment = try await tracking.getExperiment(id: f.requiredString("experiment_id"))
        return WireEncoding.reply { o in
            o.key("experiment")
            WireEncoding.experiment(&o.writer, experiment)
        }
    }

    func searchExperiments(_ f: RequestFields) async throws -> [UInt8] {
        let page = try await tracking.searchExperiments(
            filter: f.string("filter"), orderBy: f.strings("order_by"), viewType: f.viewType("view_type"),
            maxResults: f.int64("max_results"), pageToken: f.string("page_token"))
        return WireEncoding.page("experiments", page, WireEncoding.experiment)
    }

    func deleteExperiment(_ f: RequestFields) async throws -> [UInt8] {
        try await tracking.deleteExperiment(id: f.requiredString("experiment_id"))
        return WireEncoding.empty
    }

    func restoreExperiment(_ f: RequestFields) async throws -> [UInt8] {
        try await tracking.restoreExperiment(id: f.requiredString("experiment_id"))
        return WireEncoding.empty
    }

    func updateExperiment(_ f: RequestFields) async throws -> [UInt8] {
        try await tracking.renameExperiment(id: f.requiredString("experiment_id"), newName: f.requiredString("new_name"))
        return WireEncoding.empty
    }

    func setExperimentTag(_ f: RequestFields) async throws -> [UInt8] {
        try await tracking.setExperimentTag(
            id: f.requiredString("experiment_id"), tag: Tag(f.requiredString("key"), f.string("value") ?? ""))
        return WireEncoding.empty
    }

    func deleteExperimentTag(_ f: RequestFields) async throws -> [UInt8] {
        try await tracking.deleteExperimentTag(id: f.requiredString("experiment_id"), key: f.requiredString("key"))
        return WireEncoding.empty
    }

    func searchDatasets(_ f: RequestFields) async throws -> [UInt8] {
        let summaries = try await tracking.searchDatasets(experimentIDs: f.strings("experiment_ids"))
        return WireEncoding.reply { o in
            guard !summaries.isEmpty else { return }
            o.array("dataset_summaries", summaries) { w, summary in
                w.object { d in
                    d.string("experiment_id", summary.experimentID)
                    d.string("name", summary.name)
                    d.string("digest", summary.digest)
                    if let context = summary.context { d.string("context", context) }
                }
            }
        }
    }

    // MARK: Runs

    /// MLflow clients send both `run_id` and the older `run_uuid`.
    private func runID(_ f: RequestFields) throws -> String {
        if let id = try f.string("run_id"), !id.isEmpty { return id }
        if let id = try f.string("run_uuid", reportedAs: "run_id"), !id.isEmpty { return id }
        throw CairnError.missingParameter("run_id")
    }

    func createRun(_ f: RequestFields) async throws -> [UInt8] {
        let run = try await tracking.createRun(
            experimentID: f.string("experiment_id"), userID: f.string("user_id"), runName: f.string("run_name"),
            startTime: f.int64("start_time"), tags: f.tags())
        return WireEncoding.reply { o in
            o.key("run")
            WireEncoding.run(&o.writer, run)
        }
    }

    func updateRun(_ f: RequestFields) async throws -> [UInt8] {
        let status = try f.enumeration("status", byName: RunStatus.init(rawValue:), byNumber: RunStatus.init(number:),
                                       expected: "one of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED")
        let info = try await tracking.updateRun(
            id: runID(f), status: status, endTime: f.int64("end_time"), runName: f.string("run_name"))
        return WireEncoding.reply { o in
            o.key("run_info")
            WireEncoding.runInfo(&o.writer, info)
        }
    }

    func getRun(_ f: RequestFields) async throws -> [UInt8] {
        let run = try await tracking.getRun(id: runID(f))
        return WireEncoding.reply { o in
            o.key("run")
            WireEncoding.run(&o.writer, run)
        }
    }

    func deleteRun(_ f: RequestFields) async throws -> [UInt8] {
        try await tracking.deleteRun(id: runID(f))
        return WireEncoding.empty
    }

    func restoreRun(_ f: RequestFields) async throws -> [UInt8] {
        try await tracking.restoreRun(id: runID(f))
        return WireEncoding.empty
    }

    private static func metric(_ f: RequestFields) throws -> Metric {
        func optional(_ name: String) throws -> String? { try f.string(name).flatMap { $0.isEmpty ? nil : $0 } }
        return Metric(key: try f.requiredString("key"), value: try f.requiredDouble("value"),
                      timestamp: try f.requiredInt64("timestamp"), step: try f.int64("step") ?? 0,
                      modelID: try optional("model_id"), datasetName: try optional("dataset_name"),
                      datasetDigest: try optional("dataset_digest"))
    }

    func logMetric(_ f: RequestFields) async throws -> [UInt8] {
        try await tracking.logMetric(runID: runID(f), Self.metric(f))
        return WireEncoding.empty
    }

    func logParam(_ f: RequestFields) async throws -> [UInt8] {
        try await tracking.logParam(runID: runID(f), Param(f.requiredString("key"), f.string("value") ?? ""))
        return WireEncoding.empty
    }

    func setTag(_ f: RequestFields) async throws -> [UInt8] {
        try await tracking.setTag(runID: runID(f), Tag(f.requiredString("key"), f.string("value") ?? ""))
        return WireEncoding.empty
    }

    func deleteTag(_ f: RequestFields) async throws -> [UInt8] {
        try await tracking.deleteTag(runID: runID(f), key: f.requiredString("key"))
        return WireEncoding.empty
    }

    func logBatch(_ f: RequestFields) async throws -> [UInt8] {
        let batch = try f.logBatch ?? Self.decodeLogBatch(f)
        try await tracking.logBatch(runID: batch.resolvedRunID(), metrics: batch.metrics, params: batch.params, tags: batch.tags)
        return WireEncoding.empty
    }

    /// The general decoding of a log-batch body (the fast path is `LogBatchDecoder`). A param or
    /// tag without `value` has the empty value, as in MLflow (here and in `log-parameter`,
    /// `set-tag`, `set-experiment-tag`).
    static func decodeLogBatch(_ f: RequestFields) throws -> LogBatch {
        LogBatch(
            runID: try f.string("run_id"), runUUID: try f.string("run_uuid", reportedAs: "run_id"),
            metrics: try f.objects("metrics").map(metric),
            params: try f.objects("params").map { Param(try $0.requiredString("key"), try $0.string("value") ?? "") },
            tags: try f.tags())
    }

    func logInputs(_ f: RequestFields) async throws -> [UInt8] {
        let inputs = try f.objects("datasets").map { input -> DatasetInput in
            guard let d = try input.object("dataset") else { throw CairnError.missingParameter("datasets.dataset") }
            let dataset = Dataset(
                name: try d.requiredString("name"), digest: try d.requiredString("digest"),
                sourceType: try d.requiredString("source_type"), source: try d.requiredString("source"),
                schema: try d.string("schema"), profile: try d.string("profile"))
            return DatasetInput(tags: try input.tags(), dataset: dataset)
        }
        let models = try f.objects("models").map { try $0.requiredString("model_id") }
        try await tracking.logInputs(runID: runID(f), datasets: inputs, models: models)
        return WireEncoding.empty
    }

    func logOutputs(_ f: RequestFields) async throws -> [UInt8] {
        let outputs = try f.objects("models").map { ModelOutput(modelID: try $0.requiredString("model_id"), step: try $0.requiredInt64("step")) }
        try await tracking.logOutputs(runID: runID(f), outputs: outputs)
        return WireEncoding.empty
    }

    func logModel(_ f: RequestFields) async throws -> [UInt8] {
        try await tracking.logModel(runID: runID(f), modelJSON: f.requiredString("model_json"))
        return WireEncoding.empty
    }

    // MARK: Logged models

    private func modelReply(_ model: LoggedModel) -> [UInt8] {
        WireEncoding.reply { o in
            o.key("model")
            WireEncoding.loggedModel(&o.writer, model)
        }
    }

    func createLoggedModel(_ f: RequestFields) async throws -> [UInt8] {
        let params = try f.objects("params").map { Param(try $0.requiredString("key"), try $0.string("value") ?? "") }
        let model = try await tracking.createLoggedModel(
            experimentID: f.requiredString("experiment_id"), name: f.string("name"), modelType: f.string("model_type"),
            sourceRunID: f.string("source_run_id"), params: params, tags: f.tags())
        return modelReply(model)
    }

    func getLoggedModel(_ f: RequestFields) async throws -> [UInt8] {
        modelReply(try await tracking.getLoggedModel(id: f.requiredString("model_id"), allowDeleted: f.bool("allow_deleted") ?? false))
    }

    func finalizeLoggedModel(_ f: RequestFields) async throws -> [UInt8] {
        guard let status = try f.enumeration("status", byName: LoggedModelStatus.init(rawValue:), byNumber: LoggedModelStatus.init(number:),
                                             expected: "one of LOGGED_MODEL_READY, LOGGED_MODEL_UPLOAD_FAILED, LOGGED_MODEL_PENDING")
        else { throw CairnError.missingParameter("status") }
        return modelReply(try await tracking.finalizeLoggedModel(id: f.requiredString("model_id"), status: status))
    }

    func deleteLoggedModel(_ f: RequestFields) async throws -> [UInt8] {
        try await tracking.deleteLoggedModel(id: f.requiredString("model_id"))
        return WireEncoding.empty
    }

    func setLoggedModelTags(_ f: RequestFields) async throws -> [UInt8] {
        try await tracking.setLoggedModelTags(id: f.requiredString("model_id"), tags: f.tags())
        return WireEncoding.empty
    }

    func deleteLoggedModelTag(_ f: RequestFields) async throws -> [UInt8] {
        try await tracking.deleteLoggedModelTag(id: f.requiredString("model_id"), key: f.requiredString("tag_key"))
        return WireEncoding.empty
    }

    func logLoggedModelParams(_ f: RequestFields) async throws -> [UInt8] {
        let params = try f.objects("params").map { Param(try $0.requiredString("key"), try $0.string("value") ?? "") }
        try await tracking.logLoggedModelParams(id: f.requiredString("model_id"), params: params)
        return WireEncoding.empty
    }

    func searchLoggedModels(_ f: RequestFields) async throws -> [UInt8] {
        let datasets = try f.objects("datasets").map { DatasetFilter(name: try $0.requiredString("dataset_name"), digest: try $0.string("dataset_digest")) }
        let orderBy = try f.objects("order_by").map { o -> (field: String, ascending: Bool, dataset: DatasetFilter?) in
            let dataset = try o.string("dataset_name").map { DatasetFilter(name: $0, digest: try o.string("dataset_digest")) }
            return (try o.requiredString("field_name"), try o.bool("ascending") ?? true, dataset)
        }
        let page = try await tracking.searchLoggedModels(
            experimentIDs: f.strings("experiment_ids"), filter: f.string("filter"), datasets: datasets, orderBy: orderBy,
            maxResults: f.int64("max_results"), pageToken: f.string("page_token"))
        return WireEncoding.page("models", page, WireEncoding.loggedModel)
    }

    func searchRuns(_ f: RequestFields) async throws -> [UInt8] {
        let viewType = try f.viewType("run_view_type")
        let page = try await tracking.searchRuns(
            experimentIDs: f.strings("experiment_ids"), filter: f.string("filter"), viewType: viewType,
            maxResults: f.int64("max_results"), orderBy: f.strings("order_by"), pageToken: f.string("page_token"))
        return WireEncoding.page("runs", page, WireEncoding.run)
    }

    // MARK: Metric history

    func getMetricHistory(_ f: RequestFields) async throws -> ResponseBody {
        let page = try await tracking.getMetricHistory(
            runID: runID(f), key: f.requiredString("metric_key"), maxResults: f.int64("max_results"), pageToken: f.string("page_token"))
        return try MetricPointsReply.body(key: f.requiredString("metric_key"), [.init(points: page.items[...], runID: nil)],
                                          nextPageToken: page.nextPageToken)
    }

    func getMetricHistoryBulk(_ f: RequestFields) async throws -> ResponseBody {
        let key = try f.string("metric_key")
        let series = try await tracking.getMetricHistoryBulk(runIDs: f.strings("run_id"), key: key, maxResults: f.int64("max_results"))
        return MetricPointsReply.body(key: key ?? "", series.map { .init(points: $0.points[...], runID: $0.runID) })
    }

    func getMetricHistoryBulkInterval(_ f: RequestFields) async throws -> ResponseBody {
        let key = try f.requiredString("metric_key")
        let series = try await tracking.getSampledMetricHistory(
            runIDs: f.strings("run_ids"), key: key,
            startStep: f.int64("start_step"), endStep: f.int64("end_step"), maxResults: f.int64("max_results"))
        return MetricPointsReply.body(key: key, sampled: series)
    }
}
