/// Domain values of the tracking model: experiments, runs and what is logged to them.
/// MLflow-compatible; no I/O here.

public enum LifecycleStage: String, Sendable, Hashable {
    case active
    case deleted
}

/// Which lifecycle stages a search returns (`run_view_type` / `view_type`).
public enum ViewType: String, Sendable, Hashable, CaseIterable {
    case activeOnly = "ACTIVE_ONLY"
    case deletedOnly = "DELETED_ONLY"
    case all = "ALL"

    public var stages: [LifecycleStage] {
        switch self {
        case .activeOnly: [.active]
        case .deletedOnly: [.deleted]
        case .all: [.active, .deleted]
        }
    }

    /// MLflow's proto numbers: ACTIVE_ONLY = 1, DELETED_ONLY = 2, ALL = 3.
    public init?(number: Int64) {
        switch number {
        case 1: self = .activeOnly
        case 2: self = .deletedOnly
        case 3: self = .all
        default: return nil
        }
    }
}

public enum RunStatus: String, Sendable, Hashable, CaseIterable {
    case running = "RUNNING"
    case scheduled = "SCHEDULED"
    case finished = "FINISHED"
    case failed = "FAILED"
    case killed = "KILLED"

    /// MLflow's proto numbers: RUNNING = 1 … KILLED = 5.
    public init?(number: Int64) {
        switch number {
        case 1: self = .running
        case 2: self = .scheduled
        case 3: self = .finished
        case 4: self = .failed
        case 5: self = .killed
        default: return nil
        }
    }

    public var isTerminal: Bool { self == .finished || self == .failed || self == .killed }
}

public struct Tag: Sendable, Hashable {
    public var key: String
    public var value: String
    public init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }
}

public struct Param: Sendable, Hashable {
    public var key: String
    public var value: String
    public init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }
}

/// One point of a metric series. NaN and ±infinity are kept exactly.
public struct Metric: Sendable, Equatable {
    public var key: String
    public var value: Double
    public var timestamp: Int64
    public var step: Int64
    /// Set when a point is returned for several runs at once.
    public var runID: String?
    /// The logged model and dataset this point evaluates, when the client names them.
    public var modelID: String?
    public var datasetName: String?
    public var datasetDigest: String?

    public init(key: String, value: Double, timestamp: Int64, step: Int64, runID: String? = nil,
                modelID: String? = nil, datasetName: String? = nil, datasetDigest: String? = nil) {
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.step = step
        self.runID = runID
        self.modelID = modelID
        self.datasetName = datasetName
        self.datasetDigest = datasetDigest
    }

    public static func == (a: Metric, b: Metric) -> Bool {
        a.key == b.key && a.timestamp == b.timestamp && a.step == b.step && a.runID == b.runID
            && (a.value == b.value || (a.value.isNaN && b.value.isNaN))
    }

    /// MLflow's "latest value" order: higher step wins, then later timestamp, then larger value
    /// (NaN counts as smaller than any number).
    public func isNewer(than other: Metric) -> Bool {
        Self.isNewer((step, timestamp, value), than: (other.step, other.timestamp, other.value))
    }

    /// `isNewer(than:)` on a point's fields alone: the store compares millions of stored points,
    /// which have no key or run, and building a `Metric` for each (a string and four optionals)
    /// cost more than the comparison.
    @inlinable
    public static func isNewer(_ a: (step: Int64, timestamp: Int64, value: Double), than b: (step: Int64, timestamp: Int64, value: Double)) -> Bool {
        if a.step != b.step { return a.step > b.step }
        if a.timestamp != b.timestamp { return a.timestamp > b.timestamp }
        if a.value.isNaN { return false }
        if b.value.isNaN { return true }
        return a.value > b.value
    }
}

public struct Experiment: Sendable, Equatable {
    public var experimentID: String
    public var name: String
    public var artifactLocation: String
    public var lifecycleStage: LifecycleStage
    public var creationTime: Int64
    public var lastUpdateTime: Int64
    public var tags: [Tag]

    public init(experimentID: String, name: String, artifactLocation: String, lifecycleStage: LifecycleStage,
                creationTime: Int64, lastUpdateTime: Int64, tags: [Tag]) {
        self.experimentID = experimentID
        self.name = name
        self.artifactLocation = artifactLocation
        self.lifecycleStage = lifecycleStage
        self.creationTime = creationTime
        self.lastUpdateTime = lastUpdateTime
        self.tags = tags
    }
}

public struct RunInfo: Sendable, Equatable {
    public var runID: String
    public var experimentID: String
    public var runName: String
    public var userID: String
    public var status: RunStatus
    public var startTime: Int64?
    public var endTime: Int64?
    public var artifactURI: String
    public var lifecycleStage: LifecycleStage

    public init(runID: String, experimentID: String, runName: String, userID: String, status: RunStatus,
                startTime: Int64?, endTime: Int64?, artifactURI: String, lifecycleStage: LifecycleStage) {
        self.runID = runID
        self.experimentID = experimentID
        self.runName = runName
        self.userID = userID
        self.status = status
        self.startTime = startTime
        self.endTime = endTime
        self.artifactURI = artifactURI
        self.lifecycleStage = lifecycleStage
    }
}

public struct Dataset: Sendable, Hashable {
    public var name: String
    public var digest: String
    public var sourceType: String
    public var source: String
    public var schema: String?
    public var profile: String?

    public init(name: String, digest: String, sourceType: String, source: String, schema: String? = nil, profile: String? = nil) {
        self.name = name
        self.digest = digest
        self.sourceType = sourceType
        self.source = source
        self.schema = schema
        self.profile = profile
    }
}

public struct DatasetInput: Sendable, Hashable {
    public var tags: [Tag]
    public var dataset: Dataset

    public init(tags: [Tag], dataset: Dataset) {
        self.tags = tags
        self.dataset = dataset
    }
}

/// A run as returned by reads: `metrics` holds the latest value of each key.
public struct Run: Sendable, Equatable {
    public var info: RunInfo
    public var metrics: [Metric]
    public var params: [Param]
    public var tags: [Tag]
    public var inputs: [DatasetInput]
    /// Logged models the run used (`inputs.model_inputs`) and produced (`outputs.model_outputs`).
    public var modelInputs: [String]
    public var modelOutputs: [ModelOutput]

    public init(info: RunInfo, metrics: [Metric] = [], params: [Param] = [], tags: [Tag] = [], inputs: [DatasetInput] = [],
                modelInputs: [String] = [], modelOutputs: [ModelOutput] = []) {
        self.info = info
        self.metrics = metrics
        self.params = params
        self.tags = tags
        self.inputs = inputs
        self.modelInputs = modelInputs
        self.modelOutputs = modelOutputs
    }
}

/// One page of a search; `nextPageToken` is present only when more rows exist.
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    public var nextPageToken: String?

    public init(items: [Item], nextPageToken: String?) {
        self.items = items
        self.nextPageToken = nextPageToken
    }
}

/// Well-known tag keys that MLflow clients set and Cairn understands.
public enum SystemTag {
    public static let runName = "mlflow.runName"
    public static let user = "mlflow.user"
    public static let parentRunID = "mlflow.parentRunId"
    public static let note = "mlflow.note.content"
    public static let datasetContext = "mlflow.data.context"
    public static let logModelHistory = "mlflow.log-model.history"
}
