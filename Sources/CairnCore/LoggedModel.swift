/// MLflow 3 logged models: a model logged from a run (or on its own), with its own params,
/// tags and the metrics logged against it.

public enum LoggedModelStatus: String, Sendable, Hashable, CaseIterable {
    case pending = "LOGGED_MODEL_PENDING"
    case ready = "LOGGED_MODEL_READY"
    case uploadFailed = "LOGGED_MODEL_UPLOAD_FAILED"

    /// MLflow's proto numbers: PENDING = 1, READY = 2, UPLOAD_FAILED = 3.
    public init?(number: Int64) {
        switch number {
        case 1: self = .pending
        case 2: self = .ready
        case 3: self = .uploadFailed
        default: return nil
        }
    }
}

/// A metric point as attached to a logged model: which run logged it and on which dataset.
public struct ModelMetric: Sendable, Equatable {
    public var key: String
    public var value: Double
    public var timestamp: Int64
    public var step: Int64
    public var runID: String?
    public var datasetName: String?
    public var datasetDigest: String?

    public init(key: String, value: Double, timestamp: Int64, step: Int64, runID: String?, datasetName: String?, datasetDigest: String?) {
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.step = step
        self.runID = runID
        self.datasetName = datasetName
        self.datasetDigest = datasetDigest
    }

    public static func == (a: ModelMetric, b: ModelMetric) -> Bool {
        a.key == b.key && a.timestamp == b.timestamp && a.step == b.step && a.runID == b.runID
            && a.datasetName == b.datasetName && a.datasetDigest == b.datasetDigest
            && (a.value == b.value || (a.value.isNaN && b.value.isNaN))
    }
}

public struct LoggedModel: Sendable, Equatable {
    public var modelID: String
    public var experimentID: String
    public var name: String
    public var artifactURI: String
    public var creationTimestamp: Int64
    public var lastUpdatedTimestamp: Int64
    public var status: LoggedModelStatus
    public var statusMessage: String?
    public var creatorID: String?
    public var modelType: String?
    public var sourceRunID: String?
    public var lifecycleStage: LifecycleStage
    public var tags: [Tag]
    public var params: [Param]
    public var metrics: [ModelMetric]

    public init(modelID: String, experimentID: String, name: String, artifactURI: String, creationTimestamp: Int64,
                lastUpdatedTimestamp: Int64, status: LoggedModelStatus, statusMessage: String? = nil, creatorID: String? = nil,
                modelType: String? = nil, sourceRunID: String? = nil, lifecycleStage: LifecycleStage = .active,
                tags: [Tag] = [], params: [Param] = [], metrics: [ModelMetric] = []) {
        self.modelID = modelID
        self.experimentID = experimentID
        self.name = name
        self.artifactURI = artifactURI
        self.creationTimestamp = creationTimestamp
        self.lastUpdatedTimestamp = lastUpdatedTimestamp
        self.status = status
        self.statusMessage = statusMessage
        self.creatorID = creatorID
        self.modelType = modelType
        self.sourceRunID = sourceRunID
        self.lifecycleStage = lifecycleStage
        self.tags = tags
        self.params = params
        self.metrics = metrics
    }
}

/// A model a run produced, at a step (`runs/outputs`).
public struct ModelOutput: Sendable, Hashable {
    public var modelID: String
    public var step: Int64

    public init(modelID: String, step: Int64) {
        self.modelID = modelID
        self.step = step
    }
}

/// A dataset to restrict logged-model metrics to (search `datasets`, order_by `dataset_name`).
public struct DatasetFilter: Sendable, Hashable {
    public var name: String
    public var digest: String?

    public init(name: String, digest: String?) {
        self.name = name
        self.digest = digest
    }
}

/// One structured `order_by` entry of a logged-model search.
public struct LoggedModelOrder: Sendable, Hashable {
    public var clause: OrderByClause
    public var dataset: DatasetFilter?

    public init(clause: OrderByClause, dataset: DatasetFilter?) {
        self.clause = clause
        self.dataset = dataset
    }
}
