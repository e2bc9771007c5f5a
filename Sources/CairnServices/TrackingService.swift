import CairnCore
import CairnStore
import Foundation

/// The tracking rules: validation, defaults and lifecycle for experiments, runs and metrics.
/// Routes call one method each; the store only persists what this type has decided.
public struct TrackingService: Sendable {
    public let store: any TrackingStore
    /// Milliseconds since 1970; injected so tests control time.
    public let now: @Sendable () -> Int64
    /// Called after a run reached FINISHED, FAILED or KILLED (e.g. to check its experiment's budget).
    public var onRunEnded: (@Sendable (RunInfo) async -> Void)?
    /// Called after an experiment (by id) or a registered model (by name) is created, with
    /// the creator still in `RequestIdentity.current`: accounts give the creator MANAGE.
    public var onResourceCreated: (@Sendable (ResourceType, String) async throws -> Void)?
    /// Called after a registered model is renamed (new name) or deleted (nil), so the grants
    /// on the old name follow it or go: a new model of a deleted one's name starts with none.
    public var onRegisteredModelRenamed: (@Sendable (String, String?) async throws -> Void)?
    /// Called before the caller sets or removes a promotion gate override (`cairn.gate.override`)
    /// of the registered model named, and before an override lets a version through: with
    /// accounts on it refuses anyone without MANAGE on the model who is not an administrator.
    public var requireGateOverride: (@Sendable (String) async throws -> Void)?
    /// Called after metrics were logged to a run (alert rules, `MetricAlertWatch`).
    public var onMetricsLogged: (@Sendable (String, [Metric]) async -> Void)?
    /// Called after an experiment's alert rules (`cairn.alert`) were set or removed.
    public var onAlertRulesChanged: (@Sendable () -> Void)?

    public init(store: any TrackingStore, now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }) {
        self.store = store
        self.now = now
    }

    // MARK: - Experiments

    /// Recomputes every checksum the store keeps (`cairn verify`).
    public func checkIntegrity(progress: ProgressReport? = nil) async throws -> IntegrityReport {
        try await store.checkIntegrity(progress: progress)
    }

    public func createExperiment(name: String, artifactLocation: String?, tags: [Tag]) async throws -> Experiment {
        try Validation.validateExperimentName(name)
        for tag in tags { try validateExperimentTag(tag) }
        var location = artifactLocation.flatMap { $0.isEmpty ? nil : $0 }
        if let given = location {
            if given.hasPrefix("runs:") {
                throw CairnError.invalidParameter("Artifact location cannot be a runs:/ URI. Given: '\(given)'")
            }
            location = ArtifactLocation.resolvingRelativePath(given, against: FileManager.default.currentDirectoryPath)
        }
        let experiment = try await store.createExperiment(name: name, artifactLocation: location, tags: tags, now: now())
        try await onResourceCreated?(.experiment, experiment.experimentID)
        if tags.contains(where: { $0.key == MetricAlert.tag }) { onAlertRulesChanged?() }
        return experiment
    }

    public func getExperiment(id: String) async throws -> Experiment {
        try await store.fetchExperiment(id: Validation.parseExperimentID(id))
    }

    public func getExperimentByName(_ name: String) async throws -> Experiment {
        guard let experiment = try await store.fetchExperiment(name: name) else {
            throw CairnError.notFound("Could not find experiment with name '\(name)'. Create it first (mlflow.set_experiment creates it for you).")
        }
        return experiment
    }

    public func searchExperiments(filter: String?, orderBy: [String], viewType: ViewType?, maxResults: Int64?, pageToken: String?) async throws -> Page<Experiment> {
        let limit = try Self.pageSize(maxResults, default: nil, maximum: Limits.maxSearchResults)
        let token = try PageToken.decode(pageToken)
        let search = ExperimentSearch(
            filter: try SearchFilterParser.parse(filter ?? "", for: .experiments),
            orderBy: try OrderByParser.parse(orderBy, for: .experiments),
            viewType: viewType ?? .activeOnly, maxResults: limit, offset: token.offset)
        let (items, hasMore) = try await store.searchExperiments(search)
        return Page(items: items.filter { VisibleResources.experiment($0.experimentID) },
                    nextPageToken: PageToken.next(after: token.offset, pageSize: limit, hasMore: hasMore))
    }

    public func renameExperiment(id: String, newName: String) async throws {
        try Validation.validateExperimentName(newName, parameter: "new_name")
        try await store.renameExperiment(id: Validation.parseExperimentID(id), newName: newName, now: now())
    }

    public func deleteExperiment(id: String) async throws {
        let experimentID = try Validation.parseExperimentID(id)
        if experimentID == 0 {
            throw CairnError.invalidParameter("The default experiment (id 0) cannot be deleted.")
        }
        try await store.setExperimentLifecycle(id: experimentID, stage: .deleted, now: now())
    }

    public func restoreExperiment(id: String) async throws {
        try await store.setExperimentLifecycle(id: Validation.parseExperimentID(id), stage: .active, now: now())
    }

    public func setExperimentTag(id: String, tag: Tag) async throws {
        try validateExperimentTag(tag)
        try await store.setExperimentTag(id: Validation.parseExperimentID(id), tag: tag, now: now())
        if tag.key == MetricAlert.tag { onAlertRulesChanged?() }
    }

    public func deleteExperimentTag(id: String, key: String) async throws {
        try await store.deleteExperimentTag(id: Validation.parseExperimentID(id), key: key, now: now())
        if key == MetricAlert.tag { onAlertRulesChanged?() }
    }

    private func validateExperimentTag(_ tag: Tag) throws {
        try Validation.validateKey(tag.key, kind: "tag")
        try Validation.validateValueLength(tag.value, limit: Limits.maxExperimentTagValueLength, kind: "experiment tag", key: tag.key)
        if tag.key == MetricAlert.tag { _ = try MetricAlert.parse(tag.value) }
    }

    // MARK: - Runs

    public func createRun(experimentID: String?, userID: String?, runName: String?, startTime: Int64?, tags: [Tag]) async throws -> Run {
        let experiment = (experimentID?.isEmpty ?? true) ? "0" : experimentID!
        _ = try Validation.parseExperimentID(experiment)
        for tag in tags { try validateRunTag(tag) }
        if let startTime { try Validation.validateTimestamp(startTime, parameter: "start_time") }
        let tagName = tags.last(where: { $0.key == SystemTag.runName })?.value
        if let runName, !runName.isEmpty, let tagName, tagName != runName {
            throw CairnError.invalidParameter("Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values (run_name='\(runName)', mlflow.runName='\(tagName)'). Give the name once.")
        }
        let name = [runName, tagName].compactMap { $0 }.first(where: { !$0.isEmpty }) ?? RunNameGenerator.make()
        var allTags = tags.filter { $0.key != SystemTag.runName }
        allTags.append(Tag(SystemTag.runName, name))
        var user = userID ?? tags.last(where: { $0.key == SystemTag.user })?.value ?? ""
        // With accounts on, the signed-in user is the truth, whatever the client claims.
        if let identity = RequestIdentity.current, identity.isAuthenticated, let signedIn = identity.user {
            user = signedIn
            allTags = allTags.filter { $0.key != SystemTag.user } + [Tag(SystemTag.user, signedIn)]
        }
        let runID = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let info = RunInfo(
            runID: runID, experimentID: experiment, runName: name, userID: user, status: .running,
            startTime: startTime ?? now(), endTime: nil, artifactURI: "", lifecycleStage: .active)
        return try await store.createRun(NewRun(info: info, tags: allTags) { location in
            "\(location.hasSuffix("/") ? String(location.dropLast()) : location)/\(runID)/artifacts"
        })
    }

    public func getRun(id: String) async throws -> Run {
        return try await store.fetchRun(id: id)
    }

    public func getRunInfo(id: String) async throws -> RunInfo {
        try await store.fetchRunInfo(id: id)
    }

    public func updateRun(id: String, status: RunStatus?, endTime: Int64?, runName: String?) async throws -> RunInfo {
        if let endTime { try Validation.validateTimestamp(endTime, parameter: "end_time") }
        let info = try await store.updateRun(id: id, status: status, endTime: endTime, runName: runName.flatMap { $0.isEmpty ? nil : $0 }, now: now())
        if let onRunEnded, let status, status == .finished || status == .failed || status == .killed { await onRunEnded(info) }
        return info
    }

    public func deleteRun(id: String) async throws {
        try await store.setRunLifecycle(id: id, stage: .deleted, now: now())
    }

    public func restoreRun(id: String) async throws {
        try await store.setRunLifecycle(id: id, stage: .active, now: now())
    }

    public func logMetric(runID: String, _ metric: Metric) async throws {
        try await logBatch(runID: runID, metrics: [metric], params: [], tags: [])
    }

    public func logParam(runID: String, _ param: Param) async throws {
        try await logBatch(runID: runID, metrics: [], params: [param], tags: [])
    }

    public func setTag(runID: String, _ tag: Tag) async throws {
        try await logBatch(runID: runID, metrics: [], params: [], tags: [tag])
    }

    public func deleteTag(runID: String, key: String) async throws {
        try Self.refuseClaimedUser(Tag(key, ""))
        try await store.deleteTag(runID: runID, key: key)
    }

    /// Writes metrics, params and tags all or nothing, within MLflow's batch limits.
    public func logBatch(runID: String, metrics: [Metric], params: [Param], tags: [Tag]) async throws {
        if metrics.count > Limits.maxMetricsPerBatch {
            throw CairnError.invalidParameter("A batch logging request can contain at most \(Limits.maxMetricsPerBatch) metrics. Got \(metrics.count) metrics. Please split up metrics across multiple requests and try again.")
        }
        if params.count > Limits.maxParamsPerBatch {
            throw CairnError.invalidParameter("A batch logging request can contain at most \(Limits.maxParamsPerBatch) params. Got \(params.count) params. Please split up params across multiple requests and try again.")
        }
        if tags.count > Limits.maxTagsPerBatch {
            throw CairnError.invalidParameter("A batch logging request can contain at most \(Limits.maxTagsPerBatch) tags. Got \(tags.count) tags. Please split up tags across multiple requests and try again.")
        }
        let total = metrics.count + params.count + tags.count
        if total > Limits.maxEntitiesPerBatch {
            throw CairnError.invalidParameter("A batch logging request can contain at most \(Limits.maxEntitiesPerBatch) metrics, params and tags in total. Got \(total). Please split up the request and try again.")
        }
        var keys = KeySlots()
        for metric in metrics {
            if keys.slot(metric.key).isNew {
                try Validation.validateKey(metric.key, kind: "metric")
            }
            try Validation.validateTimestamp(metric.timestamp, parameter: "timestamp")
            if let name = metric.datasetName {
                try Validation.validateValueLength(name, limit: Limits.maxDatasetNameLength, kind: "metric", key: "dataset_name")
            }
            if let digest = metric.datasetDigest {
                try Validation.validateValueLength(digest, limit: Limits.maxDatasetDigestLength, kind: "metric", key: "dataset_digest")
            }
        }
        try Self.validateParams(params)
        for tag in tags {
            try validateRunTag(tag)
            try Self.refuseClaimedUser(tag)
        }
        try await store.logRunWrites(runID: runID, RunWrites(metrics: metrics, params: params, tags: tags))
        if !metrics.isEmpty, let onMetricsLogged { await onMetricsLogged(runID, metrics) }
    }

    /// Records the datasets and logged models a run used.
    public func logInputs(runID: String, datasets: [DatasetInput], models: [String] = []) async throws {
        for input in datasets {
            let d = input.dataset
            try Self.requireNonEmpty(d.name, "dataset.name")
            try Self.requireNonEmpty(d.digest, "dataset.digest")
            try Self.requireNonEmpty(d.sourceType, "dataset.source_type")
            try Self.requireNonEmpty(d.source, "dataset.source")
            try Validation.validateValueLength(d.name, limit: Limits.maxDatasetNameLength, kind: "dataset", key: "name")
            try Validation.validateValueLength(d.digest, limit: Limits.maxDatasetDigestLength, kind: "dataset", key: "digest")
            try Validation.validateValueLength(d.source, limit: Limits.maxDatasetSourceLength, kind: "dataset", key: "source")
            try Validation.validateValueLength(d.schema ?? "", limit: Limits.maxDatasetSchemaLength, kind: "dataset", key: "schema")
            try Validation.validateValueLength(d.profile ?? "", limit: Limits.maxDatasetProfileLength, kind: "dataset", key: "profile")
            for tag in input.tags {
                try Self.requireNonEmpty(tag.key, "input tag key")
                try Validation.validateValueLength(tag.key, limit: Limits.maxInputTagKeyLength, kind: "input tag key", key: tag.key)
                try Validation.validateValueLength(tag.value, limit: Limits.maxInputTagValueLength, kind: "input tag", key: tag.key)
            }
        }
        try await store.logInputs(runID: runID, datasets, models: models)
    }

    public func searchRuns(experimentIDs: [String], filter: String?, viewType: ViewType?, maxResults: Int64?, orderBy: [String], pageToken: String?) async throws -> Page<Run> {
        let ids = try experimentIDs.map { try Validation.parseExperimentID($0) }
        let limit = try Self.pageSize(maxResults, default: Limits.defaultRunSearchResults, maximum: Limits.maxSearchResults)
        let token = try PageToken.decode(pageToken)
        let search = RunSearch(
            experimentIDs: ids,
            filter: try SearchFilterParser.parse(filter ?? "", for: .runs),
            orderBy: try OrderByParser.parse(orderBy, for: .runs),
            viewType: viewType ?? .activeOnly, maxResults: limit, offset: token.offset)
        let (items, hasMore) = try await store.searchRuns(search)
        return Page(items: items, nextPageToken: PageToken.next(after: token.offset, pageSize: limit, hasMore: hasMore))
    }

    // MARK: - Metric history

    /// One page of a series' points, in MLflow's order (timestamp, step, value).
    public func getMetricHistory(runID: String, key: String, maxResults: Int64?, pageToken: String?) async throws -> Page<MetricPoint> {
        if key.isEmpty { throw CairnError.missingParameter("metric_key") }
        let token = try PageToken.decode(pageToken)
        guard let maxResults, maxResults > 0 else {
            // The whole series, usually: handed over as it is, not copied (24 MB at 1 M points).
            let all = try await store.metricHistory(runID: runID, key: key)
            return Page(items: token.offset == 0 ? all : Array(all.dropFirst(token.offset)), nextPageToken: nil)
        }
        // MLflow's client pages by 25,000: a page reads only its own segments when the token
        // says the series was in history order at its present size (`ordered`) and where the
        // page begins among its segments (`mark`).
        let size = Int(min(maxResults, Int64(Int32.max)))
        let page = try await store.metricHistoryPage(runID: runID, key: key, offset: token.offset, limit: size,
                                                     ordered: token.ordered, mark: token.mark)
        let start = min(token.offset, page.total)
        let hasMore = start + page.points.count < page.total
        let next = hasMore ? PageToken(offset: start + size, ordered: page.inOrder ? page.total : nil, mark: page.next).encoded : nil
        return Page(items: page.points, nextPageToken: next)
    }

    /// The points of one metric of several runs for MLflow's own web app (its ajax-only
    /// `get-history-bulk`): runs in id order, each run's points in history order, at most
    /// `maxResults` (25,000 at most) in all; a run this server does not hold has none, as in MLflow.
    public func getMetricHistoryBulk(runIDs: [String], key: String?, maxResults: Int64?) async throws -> [(runID: String, points: [MetricPoint])] {
        if runIDs.isEmpty { throw CairnError.invalidParameter("GetMetricHistoryBulk request must specify at least one run_id.") }
        if runIDs.count > 100 {
            throw CairnError.invalidParameter("GetMetricHistoryBulk request cannot specify more than 100 run_ids. Received \(runIDs.count) run_ids.")
        }
        guard let key else { throw CairnError.invalidParameter("GetMetricHistoryBulk request must specify a metric_key.") }
        var left = Int(min(max(maxResults ?? 25_000, 0), 25_000))
        var result: [(runID: String, points: [MetricPoint])] = []
        for runID in runIDs.sorted() where left > 0 {
            let points: [MetricPoint]
            do {
                points = try await store.metricHistory(runID: runID, key: key)
            } catch let error as CairnError where error.code == .resourceDoesNotExist {
                continue
            }
            result.append((runID, Array(points.prefix(left))))
            left -= min(points.count, left)
        }
        return result
    }

    /// The datasets runs of these experiments used, for MLflow's own web app (its ajax-only
    /// `experiments/search-datasets`), with MLflow's limits: 1 to 20 experiments, 1000 summaries.
    public func searchDatasets(experimentIDs: [String]) async throws -> [DatasetSummary] {
        if experimentIDs.isEmpty { throw CairnError.invalidParameter("SearchDatasets request must specify at least one experiment_id.") }
        if experimentIDs.count > 20 {
            throw CairnError.invalidParameter("SearchDatasets request cannot specify more than 20 experiment_ids. Received \(experimentIDs.count) experiment_ids.")
        }
        return try await store.searchDatasetSummaries(experimentIDs: experimentIDs.map(Validation.parseExperimentID), limit: 1000)
    }

    public func getSampledMetricHistory(runIDs: [String], key: String, startStep: Int64?, endStep: Int64?, maxResults: Int64?) async throws -> [SampledSeries] {
        // MLflow's checks and words, in its order.
        if key.isEmpty { throw CairnError.missingParameter("metric_key") }
        if runIDs.isEmpty { throw CairnError.missingParameter("run_ids") }
        if runIDs.count > 100 {
            throw CairnError.invalidParameter("GetMetricHistoryBulkInterval request must specify at most 100 run_ids. Received \(runIDs.count) run_ids. See the API docs for more information about request parameters.")
        }
        if (startStep == nil) != (endStep == nil) {
            throw CairnError.invalidParameter("If either start step or end step are specified, both must be specified.")
        }
        if let startStep, let endStep, startStep > endStep {
            throw CairnError.invalidParameter("end_step must be greater than start_step. Found start_step=\(startStep) and end_step=\(endStep).")
        }
        let points = maxResults ?? Int64(Limits.defaultSampledPoints)
        guard points >= 1, points <= Int64(Limits.maxSampledPoints) else {
            throw CairnError.invalidParameter("max_results must be between 1 and \(Limits.maxSampledPoints). See the API docs for more information about request parameters.")
        }
        return try await store.sampledMetricHistory(runIDs: runIDs, key: key, startStep: startStep, endStep: endStep, maxPoints: Int(points))
    }

    // MARK: - Helpers

    /// `max_results` checked in the words of MLflow's tracking store, or of its registry store
    /// (`registry`); where there is no default (experiments), an absent value is MLflow's 0.
    static func pageSize(_ requested: Int64?, default defaultValue: Int?, maximum: Int, registry: Bool = false) throws -> Int {
        let value = requested ?? defaultValue.map(Int64.init) ?? 0
        guard value >= 1 else {
            throw CairnError.invalidParameter(registry
                ? "Invalid value for max_results. It must be a positive integer, but got \(value)"
                : "Invalid value \(value) for parameter 'max_results' supplied. It must be a positive integer")
        }
        guard value <= Int64(maximum) else {
            throw CairnError.invalidParameter(registry
                ? "Invalid value for request parameter max_results. It must be at most \(maximum), but got value \(value)"
                : "Invalid value \(value) for parameter 'max_results' supplied. It must be at most \(maximum)")
        }
        return Int(value)
    }

    /// Keys and values within limits, and each key once per request (as MLflow requires, even
    /// with equal values).
    static func validateParams(_ params: [Param]) throws {
        var seen = Set<String>()
        for param in params {
            try Validation.validateKey(param.key, kind: "param")
            try Validation.validateValueLength(param.value, limit: Limits.maxParamValueLength, kind: "param", key: param.key)
            if !seen.insert(param.key).inserted {
                throw CairnError.invalidParameter("Duplicate parameter keys have been submitted: '\(param.key)' appears more than once in one request. Please ensure the request contains only one param value per param key.")
            }
        }
    }

    static func requireNonEmpty(_ value: String, _ name: String) throws {
        if value.isEmpty { throw CairnError.missingParameter(name) }
    }

    /// With accounts on, a run's `mlflow.user` is the name of whoever created it: a later tag
    /// that says otherwise (or deletes it) is refused, not stored.
    static func refuseClaimedUser(_ tag: Tag) throws {
        guard tag.key == SystemTag.user, let identity = RequestIdentity.current, identity.isAuthenticated,
              let user = identity.user, tag.value != user else { return }
        throw CairnError.invalidParameter("The tag mlflow.user names the signed-in user on a server with accounts ('\(user)'); it cannot be set to another name or deleted.")
    }

    private func validateRunTag(_ tag: Tag) throws {
        try Validation.validateKey(tag.key, kind: "tag")
        try Validation.validateValueLength(tag.value, limit: Limits.maxTagValueLength, kind: "tag", key: tag.key)
    }
}
