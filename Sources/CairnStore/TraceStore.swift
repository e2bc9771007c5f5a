import CairnCore

/// The spans one export request brings for one trace, in protobuf JSON.
public struct TraceSpanBatch: Sendable {
    public var traceID: String
    public var spans: [JSONValue]
    /// The session its spans name (`TraceAnalytics.session`): the trace's
    /// `mlflow.trace.session` metadata unless it has one.
    public var session: String?

    public init(traceID: String, spans: [JSONValue], session: String? = nil) {
        self.traceID = traceID
        self.spans = spans
        self.session = session
    }
}

public struct TraceSearch: Sendable {
    public var experimentIDs: [Int64]
    public var clauses: [TraceFilterClause]
    public var orderBy: [TraceOrder]
    public var maxResults: Int
    public var offset: Int

    public init(experimentIDs: [Int64], clauses: [TraceFilterClause], orderBy: [TraceOrder], maxResults: Int, offset: Int) {
        self.experimentIDs = experimentIDs
        self.clauses = clauses
        self.orderBy = orderBy
        self.maxResults = maxResults
        self.offset = offset
    }
}

public struct TraceFilterCounts: Sendable, Equatable {
    public var total: Int64
    public var filter1: Int64
    public var filter2: Int64
    public var joint: Int64

    public init(total: Int64, filter1: Int64, filter2: Int64, joint: Int64) {
        self.total = total
        self.filter1 = filter1
        self.filter2 = filter2
        self.joint = joint
    }
}

/// Persistence of MLflow 3 traces. A trace's spans are one compressed document (a JSON array
/// of protobuf-JSON spans) beside its summary row; spans logged again replace the ones with
/// the same span id. Unknown trace or assessment ids throw `RESOURCE_DOES_NOT_EXIST`.
public protocol TraceStore: Sendable {
    /// Adds spans to their traces, creating a trace that does not exist yet in `experimentID`
    /// with `newTraceTags`. The summary of a trace not yet finalized by `startTrace` follows
    /// its spans (start, duration, the root span's state).
    func logSpans(experimentID: Int64, _ batches: [TraceSpanBatch], newTraceTags: @escaping @Sendable (String) -> [Tag]) async throws
    /// Creates the trace, or replaces its summary, tags given and metadata (spans stay).
    func startTrace(_ info: TraceInfo) async throws -> TraceInfo
    func fetchTraceInfo(id: String) async throws -> TraceInfo
    /// The traces among `ids` that exist, in the order asked, with their spans when `withSpans`.
    func fetchTraces(ids: [String], withSpans: Bool) async throws -> [Trace]
    func searchTraces(_ search: TraceSearch) async throws -> (items: [TraceInfo], hasMore: Bool)
    /// How many traces of the experiments match `base` (all of them when empty), and of those
    /// how many match `filter1`, `filter2` and both (MLflow's filter correlation).
    func countTraces(experimentIDs: [Int64], base: [TraceFilterClause], filter1: [TraceFilterClause], filter2: [TraceFilterClause]) async throws -> TraceFilterCounts
    /// A trace metrics query's groups with their aggregates, over the traces, spans or valid
    /// assessments (by the query's view) of the traces of its experiments that its trace
    /// filters and (unless it bounds span costs by span start) its time range keep.
    func traceMetricGroups(_ query: TraceMetricsQuery) async throws -> [TraceMetricGroup]
    func setTraceTag(id: String, tag: Tag) async throws
    func deleteTraceTag(id: String, key: String) async throws
    /// Deletes the experiment's traces among `ids`, or (when `ids` is nil) its traces older
    /// than `maxTimestamp`, oldest first, at most `maxTraces`. Answers how many it deleted.
    func deleteTraces(experimentID: Int64, ids: [String]?, maxTimestamp: Int64?, maxTraces: Int?) async throws -> Int
    func linkTraces(ids: [String], runID: String) async throws
    func createAssessment(_ assessment: Assessment) async throws
    func fetchAssessment(traceID: String, id: String) async throws -> Assessment
    func updateAssessment(_ assessment: Assessment) async throws
    func deleteAssessment(traceID: String, id: String) async throws
}
