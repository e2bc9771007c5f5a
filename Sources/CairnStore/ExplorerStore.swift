import CairnCore

/// The queries behind the web UI: whole tables, catalogs, counts and chart series in one
/// read each, so a view of thousands of runs needs one request.
public protocol ExplorerStore: Sendable {
    /// Experiments of the view type, by name, each with its run count (active runs) and last activity.
    func experimentSummaries(viewType: ViewType) async throws -> [ExperimentSummary]
    /// The runs the search selects, in its order, with their params, tags and metric summaries.
    func runRows(_ search: RunSearch) async throws -> (items: [RunRow], hasMore: Bool)
    /// The ids of the runs the search selects (its order and page are ignored), for a client
    /// that already holds the rows and only needs to know which ones a filter keeps.
    func runIDs(_ search: RunSearch) async throws -> [String]
    /// Every key used by the active runs of the experiments.
    func columnCatalog(experimentIDs: [Int64]) async throws -> ColumnCatalog
    /// How many of the runs the search selects (its order and page are ignored) have each
    /// value of the param or tag `key`, most common first.
    func groupCounts(_ search: RunSearch, entity: FilterEntity, key: String) async throws -> [GroupCount]
    /// Bucketed series for each run × key that exists; unknown runs and keys contribute nothing.
    func bucketedSeries(_ query: SeriesQuery) async throws -> [BucketedSeries]
}
