/// Values behind the web UI's views: whole run tables, column catalogs, grouped counts and
/// downsampled multi-run series (the Cairn API under `/api/cairn/v1/`).

/// One metric of one run as a table shows it: MLflow's latest value plus the series' extremes.
public struct MetricSummary: Sendable, Equatable {
    public var key: String
    public var latest: Double
    public var step: Int64
    public var timestamp: Int64
    /// Smallest and largest non-NaN value; nil when every point is NaN.
    public var min: Double?
    public var max: Double?
    public var count: Int64
    /// The smallest and largest step of any point (nil when the store did not say).
    public var minStep: Int64?
    public var maxStep: Int64?

    public init(key: String, latest: Double, step: Int64, timestamp: Int64, min: Double?, max: Double?, count: Int64,
                minStep: Int64? = nil, maxStep: Int64? = nil) {
        self.key = key
        self.latest = latest
        self.step = step
        self.timestamp = timestamp
        self.min = min
        self.max = max
        self.count = count
        self.minStep = minStep
        self.maxStep = maxStep
    }
}

/// A run as one row of the runs table: attributes, every param, tag and metric summary.
public struct RunRow: Sendable {
    public var info: RunInfo
    public var params: [Param]
    public var tags: [Tag]
    public var metrics: [MetricSummary]

    public init(info: RunInfo, params: [Param] = [], tags: [Tag] = [], metrics: [MetricSummary] = []) {
        self.info = info
        self.params = params
        self.tags = tags
        self.metrics = metrics
    }
}

/// Every param, metric and tag key used by the runs of some experiments, sorted.
public struct ColumnCatalog: Sendable, Equatable {
    public var params: [String]
    public var metrics: [String]
    public var tags: [String]

    public init(params: [String], metrics: [String], tags: [String]) {
        self.params = params
        self.metrics = metrics
        self.tags = tags
    }
}

/// How many runs share one value of a param or tag; `value` is nil for runs without the key.
public struct GroupCount: Sendable, Equatable {
    public var value: String?
    public var count: Int

    public init(value: String?, count: Int) {
        self.value = value
        self.count = count
    }
}

/// An experiment with how many runs it has and when something last happened in it.
public struct ExperimentSummary: Sendable {
    public var experiment: Experiment
    public var runCount: Int
    /// The latest of the experiment's update time and its runs' start and end times (ms).
    public var lastActivity: Int64

    public init(experiment: Experiment, runCount: Int, lastActivity: Int64) {
        self.experiment = experiment
        self.runCount = runCount
        self.lastActivity = lastActivity
    }
}

/// The x-axis of a chart: the step, the wall-clock time (ms since 1970), or the time since the
/// series' first point (ms).
public enum MetricAxis: String, Sendable, CaseIterable {
    case step
    case time
    case relative
}

/// One pixel column of a chart: the points whose x falls in it, reduced to their minimum,
/// maximum and last value (the one with the highest x, then timestamp), so spikes stay visible.
public struct MetricBucket: Sendable, Equatable {
    /// The x of the bucket's first and last point.
    public var firstX: Int64
    public var lastX: Int64
    public var min: Double
    public var max: Double
    public var last: Double
    public var count: Int

    public init(firstX: Int64, lastX: Int64, min: Double, max: Double, last: Double, count: Int) {
        self.firstX = firstX
        self.lastX = lastX
        self.min = min
        self.max = max
        self.last = last
        self.count = count
    }
}

/// One run's series of one key, bucketed over an x range.
public struct BucketedSeries: Sendable {
    public var runID: String
    public var key: String
    /// Points of the series inside the requested range.
    public var pointCount: Int
    public var buckets: [MetricBucket]

    public init(runID: String, key: String, pointCount: Int, buckets: [MetricBucket]) {
        self.runID = runID
        self.key = key
        self.pointCount = pointCount
        self.buckets = buckets
    }
}

/// A request for bucketed series: `runIDs` × `keys` over `[minX, maxX]` (inclusive, in the
/// axis' unit; nil means the series' own end), cut into `buckets` equal columns.
public struct SeriesQuery: Sendable {
    public var runIDs: [String]
    public var keys: [String]
    public var axis: MetricAxis
    public var minX: Int64?
    public var maxX: Int64?
    public var buckets: Int

    public init(runIDs: [String], keys: [String], axis: MetricAxis, minX: Int64?, maxX: Int64?, buckets: Int) {
        self.runIDs = runIDs
        self.keys = keys
        self.axis = axis
        self.minX = minX
        self.maxX = maxX
        self.buckets = buckets
    }
}
