/// What a run or an experiment keeps on disk: artifact files and the blobs behind them (a blob
/// is stored once however many paths share it), and metric points with their encoded bytes.
public struct StorageFigures: Sendable, Codable, Equatable {
    public var artifactFiles: Int64 = 0
    /// The sizes of the files, a blob at two paths counted twice: what a download would fetch.
    public var artifactBytes: Int64 = 0
    /// The distinct blobs of these files, each counted once.
    public var blobBytes: Int64 = 0
    /// The blobs no file outside this run (or experiment) uses: what deleting it and `cairn gc` would free.
    public var uniqueBytes: Int64 = 0
    /// `blobBytes − uniqueBytes`: blobs that other runs or experiments use too.
    public var sharedBytes: Int64 = 0
    public var metricPoints: Int64 = 0
    /// The encoded metric segments (the database bytes of the points, without index overhead).
    public var metricBytes: Int64 = 0

    public init() {}
}

public struct RunStorage: Sendable, Codable, Equatable {
    public var runId: String
    public var runName: String
    public var lifecycleStage: String
    public var storage: StorageFigures

    public init(runId: String, runName: String, lifecycleStage: String, storage: StorageFigures) {
        self.runId = runId
        self.runName = runName
        self.lifecycleStage = lifecycleStage
        self.storage = storage
    }
}

/// `GET /api/cairn/v1/storage`: one experiment's storage, with its largest runs.
public struct ExperimentStorage: Sendable, Codable, Equatable {
    public var experimentId: String
    public var name: String
    /// Runs of the experiment, deleted ones included (they hold storage until `cairn gc`).
    public var runCount: Int
    /// Everything under the experiment: its runs, and files that belong to no run (logged models).
    public var storage: StorageFigures
    /// The runs asked for (`run_id`), or the largest by blob plus metric bytes.
    public var runs: [RunStorage]

    public init(experimentId: String, name: String, runCount: Int, storage: StorageFigures, runs: [RunStorage]) {
        self.experimentId = experimentId
        self.name = name
        self.runCount = runCount
        self.storage = storage
        self.runs = runs
    }
}
