import CairnCore

/// Readers for MLflow's protobuf-JSON answers: int64 as number or string, doubles as numbers
/// or the strings "NaN"/"Infinity"/"-Infinity", absent lists as empty.
extension JSONValue {
    public var stringValue: String? {
        switch self {
        case .string(let s): return s
        case .number(let n): return n
        case .bool(let b): return b ? "true" : "false"
        default: return nil
        }
    }

    public var int64Value: Int64? {
        switch self {
        case .number(let n): return Int64(n) ?? Double(n).flatMap { $0.rounded() == $0 ? Int64(exactly: $0) : nil }
        case .string(let s): return Int64(s)
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .number(let n): return Double(n)
        case .string(let s):
            switch s {
            case "NaN": return .nan
            case "Infinity": return .infinity
            case "-Infinity": return -.infinity
            default: return Double(s)
            }
        default: return nil
        }
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var arrayValue: [JSONValue] {
        if case .array(let items) = self { return items }
        return []
    }

    public var objectMembers: [(String, JSONValue)] {
        if case .object(let members) = self { return members }
        return []
    }
}

/// Domain values from MLflow wire objects.
enum WireDecoding {
    static func tags(_ value: JSONValue?) -> [Tag] {
        (value?.arrayValue ?? []).compactMap { item in
            guard let key = item["key"]?.stringValue else { return nil }
            return Tag(key, item["value"]?.stringValue ?? "")
        }
    }

    static func params(_ value: JSONValue?) -> [Param] {
        tags(value).map { Param($0.key, $0.value) }
    }

    static func metric(_ item: JSONValue) -> Metric? {
        guard let key = item["key"]?.stringValue, let value = item["value"]?.doubleValue else { return nil }
        return Metric(key: key, value: value, timestamp: item["timestamp"]?.int64Value ?? 0, step: item["step"]?.int64Value ?? 0,
                      runID: item["run_id"]?.stringValue, modelID: item["model_id"]?.stringValue,
                      datasetName: item["dataset_name"]?.stringValue, datasetDigest: item["dataset_digest"]?.stringValue)
    }

    static func experiment(_ e: JSONValue) -> Experiment {
        Experiment(
            experimentID: e["experiment_id"]?.stringValue ?? "", name: e["name"]?.stringValue ?? "",
            artifactLocation: e["artifact_location"]?.stringValue ?? "",
            lifecycleStage: LifecycleStage(rawValue: e["lifecycle_stage"]?.stringValue ?? "active") ?? .active,
            creationTime: e["creation_time"]?.int64Value ?? 0, lastUpdateTime: e["last_update_time"]?.int64Value ?? 0,
            tags: tags(e["tags"]))
    }

    static func runInfo(_ i: JSONValue) -> RunInfo {
        RunInfo(
            runID: i["run_id"]?.stringValue ?? i["run_uuid"]?.stringValue ?? "", experimentID: i["experiment_id"]?.stringValue ?? "",
            runName: i["run_name"]?.stringValue ?? "", userID: i["user_id"]?.stringValue ?? "",
            status: RunStatus(rawValue: i["status"]?.stringValue ?? "RUNNING") ?? .running,
            startTime: i["start_time"]?.int64Value, endTime: i["end_time"]?.int64Value,
            artifactURI: i["artifact_uri"]?.stringValue ?? "",
            lifecycleStage: LifecycleStage(rawValue: i["lifecycle_stage"]?.stringValue ?? "active") ?? .active)
    }

    static func run(_ r: JSONValue) -> Run {
        let data = r["data"]
        let inputs = (r["inputs"]?["dataset_inputs"]?.arrayValue ?? []).map { input -> DatasetInput in
            let d = input["dataset"]
            return DatasetInput(tags: tags(input["tags"]), dataset: Dataset(
                name: d?["name"]?.stringValue ?? "", digest: d?["digest"]?.stringValue ?? "",
                sourceType: d?["source_type"]?.stringValue ?? "", source: d?["source"]?.stringValue ?? "",
                schema: d?["schema"]?.stringValue, profile: d?["profile"]?.stringValue))
        }
        return Run(info: runInfo(r["info"] ?? .object([])),
                   metrics: (data?["metrics"]?.arrayValue ?? []).compactMap(metric),
                   params: params(data?["params"]), tags: tags(data?["tags"]), inputs: inputs)
    }
}

/// Request bodies in MLflow's wire shapes.
enum WireRequests {
    static func object(_ body: (inout JSONObjectBuilder) -> Void) -> [UInt8] {
        var w = JSONWriter()
        w.object(body)
        return w.bytes
    }

    static func keyValues(_ o: inout JSONObjectBuilder, _ name: String, _ pairs: [(String, String)]) {
        o.array(name, pairs) { w, pair in
            w.object { t in
                t.string("key", pair.0)
                t.string("value", pair.1)
            }
        }
    }

    static func metrics(_ o: inout JSONObjectBuilder, _ metrics: [Metric]) {
        o.array("metrics", metrics) { w, m in
            w.object { p in
                p.string("key", m.key)
                p.double("value", m.value)
                p.int("timestamp", m.timestamp)
                p.int("step", m.step)
                if let modelID = m.modelID { p.string("model_id", modelID) }
                if let datasetName = m.datasetName { p.string("dataset_name", datasetName) }
                if let datasetDigest = m.datasetDigest { p.string("dataset_digest", datasetDigest) }
            }
        }
    }

    static func datasets(_ o: inout JSONObjectBuilder, _ inputs: [DatasetInput], name: String = "datasets") {
        o.array(name, inputs) { w, input in
            w.object { i in
                keyValues(&i, "tags", input.tags.map { ($0.key, $0.value) })
                i.object("dataset") { d in
                    d.string("name", input.dataset.name)
                    d.string("digest", input.dataset.digest)
                    d.string("source_type", input.dataset.sourceType)
                    d.string("source", input.dataset.source)
                    if let schema = input.dataset.schema { d.string("schema", schema) }
                    if let profile = input.dataset.profile { d.string("profile", profile) }
                }
            }
        }
    }
}
