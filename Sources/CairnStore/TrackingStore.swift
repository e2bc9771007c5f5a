import CairnCore

/// A new run as the service has decided it (id, name and times already chosen).
public struct NewRun: Sendable {
    public var info: RunInfo
    public var tags: [Tag]
    /// When set, the run's artifact URI made from its experiment's artifact location, read in
    /// the same transaction that creates the run (instead of `info.artifactURI`).
    public var artifactURI: (@Sendable (_ experimentArtifactLocation: String) -> String)?

    public init(info: RunInfo, tags: [Tag], artifactURI: (@Sendable (_ experimentArtifactLocation: String) -> String)? = nil) {
        self.info = info
        self.tags = tags
        self.artifactURI = artifactURI
    }
}

/// What one `log-batch` (or single log call) writes, all or nothing.
/// One run's sampled points of a metric (see `MetricSampler`), in step order.
public struct SampledSeries: Sendable {
    public var runID: String
    public var points: [MetricPoint]

    public init(runID: String, points: [MetricPoint]) {
        self.runID = runID
        self.points = points
    }
}

/// One page of a series' history (`TrackingStore.metricHistoryPage`).
public struct MetricHistoryPage: Sendable {
    public var points: [MetricPoint]
    /// The points of the whole series.
    public var total: Int
    /// Whether the series' stored order is history order (then later pages can seek).
    public var inOrder: Bool
    /// Where the page after this one begins among the segments, when the series is in order.
    public var next: SegmentMark?

    public init(points: [MetricPoint], total: Int, inOrder: Bool, next: SegmentMark? = nil) {
        self.points = points
        self.total = total
        self.inOrder = inOrder
        self.next = next
    }
}

public struct RunWrites: Sendable {
    public var metrics: [Metric]
    public var params: [Param]
    public var tags: [Tag]

    public init(metrics: [Metric] = [], params: [Param] = [], tags: [Tag] = []) {
        self.metrics = metrics
        self.params = params
        self.tags = tags
    }
}

public struct RunSearch: Sendable {
    public var experimentIDs: [Int64]
    public var filter: FilterExpression?
    public var orderBy: [OrderByClause]
    public var viewType: ViewType
    public var maxResults: Int
    public var offset: Int

    public init(experimentIDs: [Int64], filter: FilterExpression?, orderBy: [OrderByClause], viewType: ViewType, maxResults: Int, offset: Int) {
        self.experimentIDs = experimentIDs
        self.filter = filter
        self.orderBy = orderBy
        self.viewType = viewType
        self.maxResults = maxResults
        self.offset = offset
    }
}

public struct ExperimentSearch: Sendable {
    public var filter: FilterExpression?
    public var orderBy: [OrderByClause]
    public var viewType: ViewType
    public var maxResults: Int
    public var offset: Int

    public init(filter: FilterExpression?, orderBy: [OrderByClause], viewType: ViewType, maxResults: Int, offset: Int) {
        self.filter = filter
        self.orderBy = orderBy
        self.viewType = viewType
        self.maxResults = maxResults
        self.offset = offset
    }
}

public struct LoggedModelSearch: Sendable {
    public var experimentIDs: [Int64]
    public var filter: FilterExpression?
    /// Restricts which metric points `metrics.<key>` in the filter looks at.
    public var datasets: [DatasetFilter]
    public var orderBy: [LoggedModelOrder]
    public var maxResults: Int
    public var offset: Int

    public init(experimentIDs: [Int64], filter: FilterExpression?, datasets: [DatasetFilter], orderBy: [LoggedModelOrder], maxResults: Int, offset: Int) {
        self.experimentIDs = experimentIDs
        self.filter = filter
        self.datasets = datasets
        self.orderBy = orderBy
        self.maxResults = maxResults
        self.offset = offset
    }
}

/// Persistence of the tracking model. Stores only persist and query; the rules live in the
/// services. Every write is atomic and acknowledged only after it is committed. Unknown ids
/// throw `RESOURCE_DOES_NOT_EXIST`; conflicts (a changed param, a taken name) throw the
/// matching `CairnError`, and then nothing was written.
public protocol TrackingStore: AuditStore {
    // Experiments
    func createExperiment(name: String, artifactLocation: String?, tags: [Tag], now: Int64) async throws -> Experiment
    func fetchExperiment(id: Int64) async throws -> Experiment
    func fetchExperiment(name: String) async throws -> Experiment?
    func searchExperiments(_ search: ExperimentSearch) async throws -> (items: [Experiment], hasMore: Bool)
    func renameExperiment(id: Int64, newName: String, now: Int64) async throws
    /// Deleting marks the experiment's active runs deleted too; restoring brings back the runs
    /// that were deleted with it.
    func setExperimentLifecycle(id: Int64, stage: LifecycleStage, now: Int64) async throws
    func setExperimentTag(id: Int64, tag: Tag, now: Int64) async throws
    func deleteExperimentTag(id: Int64, key: String, now: Int64) async throws

    // Runs
    func createRun(_ run: NewRun) async throws -> Run
    func fetchRun(id: String) async throws -> Run
    func fetchRunInfo(id: String) async throws -> RunInfo
    func updateRun(id: String, status: RunStatus?, endTime: Int64?, runName: String?, now: Int64) async throws -> RunInfo
    func setRunLifecycle(id: String, stage: LifecycleStage, now: Int64) async throws
    func logRunWrites(runID: String, _ writes: RunWrites) async throws
    func deleteTag(runID: String, key: String) async throws
    /// Records datasets and logged models a run used; re-logged ones are kept once.
    func logInputs(runID: String, _ inputs: [DatasetInput], models: [String]) async throws
    func logOutputs(runID: String, _ outputs: [ModelOutput]) async throws
    /// Each (experiment, dataset name, digest, context tag) that runs of these experiments
    /// used, once, at most `limit` of them (MLflow web app's `search-datasets`).
    func searchDatasetSummaries(experimentIDs: [Int64], limit: Int) async throws -> [DatasetSummary]
    /// Appends one model description (a JSON object) to the run's `mlflow.log-model.history` tag.
    func appendLogModelHistory(runID: String, model: JSONValue) async throws
    func searchRuns(_ search: RunSearch) async throws -> (items: [Run], hasMore: Bool)

    // Logged models
    func createLoggedModel(_ model: LoggedModel) async throws -> LoggedModel
    func fetchLoggedModel(id: String, allowDeleted: Bool) async throws -> LoggedModel
    func updateLoggedModelStatus(id: String, status: LoggedModelStatus, statusMessage: String?, now: Int64) async throws -> LoggedModel
    func setLoggedModelTags(id: String, tags: [Tag], now: Int64) async throws
    func deleteLoggedModelTag(id: String, key: String, now: Int64) async throws
    func logLoggedModelParams(id: String, params: [Param], now: Int64) async throws
    func deleteLoggedModel(id: String, now: Int64) async throws
    func searchLoggedModels(_ search: LoggedModelSearch) async throws -> (items: [LoggedModel], hasMore: Bool)

    // Metric series
    /// Every point of one series, ordered by (timestamp, step, value) as MLflow does.
    func metricHistory(runID: String, key: String) async throws -> [MetricPoint]
    /// At most `limit` points of one series from `offset` in that order, the series' size, and
    /// whether its stored order is already history order. `ordered`: the size the series had when
    /// an earlier page found it in history order; while it still has that size, `mark` (where the
    /// page begins among the segments, from that earlier page) lets only the segments holding this
    /// page be read.
    func metricHistoryPage(runID: String, key: String, offset: Int, limit: Int, ordered: Int?, mark: SegmentMark?) async throws -> MetricHistoryPage
    /// A deterministic sample of one series per run for charts: per step bucket the minimum,
    /// maximum and last point, plus the first point, at most `maxPoints` per run. Unknown runs
    /// contribute nothing.
    func sampledMetricHistory(runIDs: [String], key: String, startStep: Int64?, endStep: Int64?, maxPoints: Int) async throws -> [SampledSeries]

    // Integrity and backup (`cairn verify`, `cairn backup`)
    /// Recomputes every checksum the store keeps and checks the database's own structure,
    /// telling `progress` (when given) what it is checking and how far it got.
    func checkIntegrity(progress: ProgressReport?) async throws -> IntegrityReport
    /// An online, consistent copy of the whole database into a new file at `destination`.
    func backupDatabase(to destination: String) async throws
}

/// What a long pass over the whole store (`cairn verify`, `gc`, `retention plan`) is doing
/// and how far it got, one line at a time. Called from the store's threads.
public typealias ProgressReport = @Sendable (String) -> Void

extension TrackingStore {
    /// `checkIntegrity(progress:)` without progress lines.
    public func checkIntegrity() async throws -> IntegrityReport {
        try await checkIntegrity(progress: nil)
    }
}

/// One dataset as runs of an experiment used it, with the context they gave it (`training`, …).
public struct DatasetSummary: Sendable, Equatable {
    public var experimentID: String
    public var name: String
    public var digest: String
    public var context: String?

    public init(experimentID: String, name: String, digest: String, context: String?) {
        self.experimentID = experimentID
        self.name = name
        self.digest = digest
        self.context = context
    }
}
