import CairnCore

/// What `cairn run` knows of the run it wraps, to answer `runs/get` while the run is being
/// journaled: its info and start tags, and every param, tag and latest metric the command
/// logged through the relay. A pure value: `apply` each acknowledged write.
public struct RelayRunView: Sendable {
    public var info: RunInfo
    /// The run's experiment as far as it is known: its name (nil when given by id) and its id
    /// (nil while only the name is known and the server was never reached).
    public var experimentName: String?
    public private(set) var knownExperimentID: String?
    public private(set) var params: [String: String] = [:]
    public private(set) var tags: [String: String] = [:]
    public private(set) var latestMetrics: [String: Metric] = [:]
    public private(set) var inputs: [DatasetInput] = []

    public init(run: Run, experimentName: String?) {
        info = run.info
        self.experimentName = experimentName
        knownExperimentID = run.info.experimentID
        for param in run.params { params[param.key] = param.value }
        for tag in run.tags { tags[tag.key] = tag.value }
        for metric in run.metrics { record(metric) }
        inputs = run.inputs
    }

    /// A run known only from its journal header: `runID` is the id handed to the command.
    /// The experiment is `experimentID` when known, else `"0"`; the artifact root follows
    /// MLflow's layout (`mlflow-artifacts:/<experiment>/<run>/artifacts`), so the command's
    /// uploads come back to the relay under that run id.
    public init(runID: String, experimentID: String?, experimentName: String?, runName: String?, userID: String, startTime: Int64, tags: [Tag]) {
        let experiment = experimentID ?? "0"
        self.experimentName = experimentName
        knownExperimentID = experimentID
        let name = runName ?? tags.last(where: { $0.key == SystemTag.runName })?.value ?? ""
        info = RunInfo(runID: runID, experimentID: experiment, runName: name, userID: userID, status: .running, startTime: startTime,
                       endTime: nil, artifactURI: "mlflow-artifacts:/\(experiment)/\(runID)/artifacts", lifecycleStage: .active)
        for tag in tags { self.tags[tag.key] = tag.value }
        if !name.isEmpty { self.tags[SystemTag.runName] = name }
    }

    public mutating func apply(_ operation: RelayOperation) {
        switch operation {
        case .log(let batch):
            for metric in batch.metrics { record(metric) }
            for param in batch.params where params[param.key] == nil { params[param.key] = param.value }
            for tag in batch.tags {
                tags[tag.key] = tag.value
                if tag.key == SystemTag.runName { info.runName = tag.value }
            }
        case .deleteTag(let key):
            tags[key] = nil
        case .logInputs(let datasets):
            for input in datasets where !inputs.contains(input) { inputs.append(input) }
        case .updateRun(let status, let endTime, let runName):
            if let status { info.status = status }
            if let endTime { info.endTime = endTime }
            if let runName {
                info.runName = runName
                tags[SystemTag.runName] = runName
            }
        case .getRun, .getExperiment, .uploadArtifact, .forward:
            break
        }
    }

    /// MLflow's latest value: the point with the largest step, then timestamp, then value.
    private mutating func record(_ metric: Metric) {
        var point = metric
        point.runID = nil
        if let current = latestMetrics[metric.key],
           (current.step, current.timestamp) > (point.step, point.timestamp)
            || ((current.step, current.timestamp) == (point.step, point.timestamp) && !(point.value > current.value)) {
            return
        }
        latestMetrics[metric.key] = point
    }

    /// The `experiments/get(-by-name)` answer for the run's own experiment; nil for another.
    public func experimentReply(id: String?, name: String?) -> [UInt8]? {
        let matches = (name != nil && name == experimentName) || (id != nil && id == knownExperimentID)
        guard matches else { return nil }
        return WireRequests.object { o in
            o.object("experiment") { e in
                e.string("experiment_id", info.experimentID)
                e.string("name", experimentName ?? "")
                e.string("artifact_location", "mlflow-artifacts:/\(info.experimentID)")
                e.string("lifecycle_stage", "active")
            }
        }
    }

    /// The `runs/get` answer, `{"run": {"info": …, "data": …, "inputs": …}}`.
    public func getRunReply() -> [UInt8] {
        WireRequests.object { o in
            o.object("run") { r in
                r.object("info") { i in
                    i.string("run_id", info.runID)
                    i.string("run_uuid", info.runID)
                    i.string("experiment_id", info.experimentID)
                    i.string("run_name", info.runName)
                    i.string("user_id", info.userID)
                    i.string("status", info.status.rawValue)
                    if let start = info.startTime { i.int("start_time", start) }
                    if let end = info.endTime { i.int("end_time", end) }
                    i.string("artifact_uri", info.artifactURI)
                    i.string("lifecycle_stage", info.lifecycleStage.rawValue)
                }
                r.object("data") { d in
                    WireRequests.metrics(&d, latestMetrics.keys.sorted().compactMap { latestMetrics[$0] })
                    WireRequests.keyValues(&d, "params", params.keys.sorted().map { ($0, params[$0]!) })
                    WireRequests.keyValues(&d, "tags", tags.keys.sorted().map { ($0, tags[$0]!) })
                }
                r.object("inputs") { i in
                    WireRequests.datasets(&i, inputs, name: "dataset_inputs")
                }
            }
        }
    }
}
