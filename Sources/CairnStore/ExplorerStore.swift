import CairnCore

/// The queries behind the web UI: whole tables, catalogs, counts and chart series in one
/// read each, so a view of thousands of runs needs one request.
public protocol ExplorerStore: Sendable {
    /// Experiments of the view type, by name, each with its run count (active runs) and last activity.
    func experimentSummaries(viewType: ViewType) async throws -> [ExperimentSummary]
    /// Totals over the whole store, for `/metrics` (one snapshot; each a scan of its table).
    /// A running run whose last activity is before `staleBefore` counts as stale.
    func storeFigures(staleBefore: Int64) async throws -> StoreFigures
    /// The runs the search selects, in its order, with their params, tags and metric summaries.
    func runRows(_ search: RunSearch) async throws -> (items: [RunRow], hasMore: Bool)
    /// The ids of the runs the search selects (its order and page are ignored), for a client
    /// that already holds the rows and only needs to know which ones a filter keeps.
    func runIDs(_ search: RunSearch) async throws -> [String]
    /// How many runs the search selects (its order and page are ignored).
    func runCount(_ search: RunSearch) async throws -> Int
    /// Every key used by the active runs of the experiments.
    func columnCatalog(experimentIDs: [Int64]) async throws -> ColumnCatalog
    /// How many of the runs the search selects (its order and page are ignored) have each
    /// value of the param or tag `key`, most common first.
    func groupCounts(_ search: RunSearch, entity: FilterEntity, key: String) async throws -> [GroupCount]
    /// Bucketed series for each run × key that exists; unknown runs and keys contribute nothing.
    func bucketedSeries(_ query: SeriesQuery) async throws -> [BucketedSeries]
    /// The overview's figures over `since ..< until` (see `SQLStore.dashboardFigures`).
    func dashboardFigures(since: Int64, until: Int64, experimentIDs: [Int64]?) async throws
        -> (runsByDay: [(day: Int64, status: String, count: Int64)], gatesByDay: [(day: Int64, action: String, count: Int64)],
            bytesByDay: [(day: Int64, bytes: Int64)], bytesBefore: Int64, failures: [RunInfo], running: [RunRow])
    /// The `cairn reproduce` runs started in `since ..< until` (start, end, `cairn.reproduce.status`)
    /// and the audit events per UTC day (all, and those whose actor is known).
    func dashboardReproductionsAndAudit(since: Int64, until: Int64, experimentIDs: [Int64]?) async throws
        -> (reproductions: [(start: Int64, end: Int64?, status: String)], auditByDay: [(day: Int64, events: Int64, withActor: Int64)])
    /// What the cost model prices, per active run of the active experiments (or of
    /// `experimentIDs`): its status, the latest `cairn.wall_time_s` and `cairn.cpu_time_s`, and
    /// the tag `cairn.host.gpus`. One query; no other metric, param or tag is read.
    func costInputs(experimentIDs: [Int64]?) async throws -> [RunCostInput]
    /// Storage per experiment (all runs, deleted ones too, each with its own figures); unknown ids are left out.
    func storageUsage(experimentIDs: [Int64]) async throws -> [ExperimentStorage]
    /// The datasets each run logged as inputs (name and digest, in logging order); runs without any are left out.
    func runDatasets(runIDs: [String]) async throws -> [String: [(name: String, digest: String)]]
}

/// Totals over the whole store: what an operator watches grow.
public struct StoreFigures: Sendable, Equatable {
    /// Active runs of active experiments, by status (`RUNNING`, `FINISHED`, …).
    public var runsByStatus: [String: Int64] = [:]
    public var experiments: Int64 = 0
    public var registeredModels: Int64 = 0
    public var modelVersions: Int64 = 0
    public var metricPoints: Int64 = 0
    public var artifactFiles: Int64 = 0
    /// Bytes of the distinct blobs the manifest references (shared content counted once).
    public var artifactBytes: Int64 = 0
    public var blobs: Int64 = 0
    /// Kept blob checks by result (`ok`, `missing`, `damaged`).
    public var blobChecks: [String: Int64] = [:]
    /// The database's size on disk (SQLite's pages; PostgreSQL's `pg_database_size`).
    public var databaseBytes: Int64 = 0
    /// Webhook deliveries waiting to be sent (or retried).
    public var pendingWebhookDeliveries: Int64 = 0
    /// Running runs silent since before the stale threshold (newest metric, else start).
    public var staleRuns: Int64 = 0
    /// Active runs of active experiments with a git commit tag, with a dataset input, with both.
    public var runsWithCode: Int64 = 0
    public var runsWithData: Int64 = 0
    public var runsWithBoth: Int64 = 0
    /// Promotion gate evaluations recorded, by result (`passed`, `failed`, `overridden`).
    public var gateEvaluations: [String: Int64] = [:]
    /// Runs tagged by `cairn reproduce`, by `cairn.reproduce.status`.
    public var reproduceAttempts: [String: Int64] = [:]

    public init() {}
}

/// One run as the cost model sees it (`ExplorerStore.costInputs`).
public struct RunCostInput: Sendable, Equatable {
    public var experimentID: String
    public var status: RunStatus
    /// NaN when the latest value is NaN; nil when the run has no such metric.
    public var wallSeconds: Double?
    public var cpuSeconds: Double?
    public var gpus: String?

    public init(experimentID: String, status: RunStatus, wallSeconds: Double?, cpuSeconds: Double?, gpus: String?) {
        self.experimentID = experimentID
        self.status = status
        self.wallSeconds = wallSeconds
        self.cpuSeconds = cpuSeconds
        self.gpus = gpus
    }
}
