import CairnCore
import Foundation

/// One HTTP request the wrapped command sent to `cairn run`'s local MLflow endpoint.
public struct RelayRequest: Sendable {
    /// `GET`, `POST`, `PUT`, …
    public var method: String
    /// The path as sent (percent-encoded), e.g. `/api/2.0/mlflow/runs/log-metric`.
    public var path: String
    /// The query string as sent, without `?` (empty when none).
    public var query: String
    public var contentType: String?
    public var authorization: String?
    public var body: [UInt8]

    public init(method: String, path: String, query: String = "", contentType: String? = nil, authorization: String? = nil, body: [UInt8] = []) {
        self.method = method.uppercased()
        self.path = path
        self.query = query
        self.contentType = contentType
        self.authorization = authorization
        self.body = body
    }
}

/// The answer the wrapped command gets.
public struct RelayResponse: Sendable, Equatable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]

    public init(status: Int, contentType: String = "application/json", body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    /// `{}`: what MLflow answers to a write.
    public static let empty = RelayResponse(status: 200, body: Array("{}".utf8))

    /// MLflow's error JSON, `{"error_code": …, "message": …}`.
    public static func error(status: Int, code: String, message: String) -> RelayResponse {
        RelayResponse(status: status, body: WireRequests.object { o in
            o.string("error_code", code)
            o.string("message", message)
        })
    }
}

/// A request that cannot be understood: answered 400 `INVALID_PARAMETER_VALUE`, nothing recorded.
public struct RelayRequestError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
    init(_ message: String) { self.message = message }
}

/// What a request to the local endpoint asks of the wrapped run. A pure reading of the
/// request (no I/O): `RunRelay` decides whether it goes to the server or to the journal.
/// Requests about anything else (other runs, experiments, searches, the registry, logged
/// models) are `.forward`: sent to the server unchanged.
public enum RelayOperation: Sendable, Equatable {
    /// `log-metric`, `log-parameter`, `set-tag`, `log-batch` on the wrapped run.
    case log(LogBuffer.Batch)
    case deleteTag(key: String)
    case logInputs([DatasetInput])
    /// `runs/update` of the wrapped run.
    case updateRun(status: RunStatus?, endTime: Int64?, runName: String?)
    /// `runs/get` of the wrapped run.
    case getRun
    /// `PUT` of a file under the wrapped run's artifact root; `path` is relative to it.
    case uploadArtifact(path: String)
    /// `experiments/get` (by id) or `experiments/get-by-name`: forwarded, but answered locally
    /// for the wrapped run's experiment when the server is down (`mlflow.set_experiment`).
    case getExperiment(id: String?, name: String?)
    case forward

    /// Whether the operation changes the wrapped run (and so may have to be journaled).
    public var isWrite: Bool {
        switch self {
        case .log, .deleteTag, .logInputs, .updateRun, .uploadArtifact: return true
        case .getRun, .getExperiment, .forward: return false
        }
    }

    static let apiPrefixes = ["/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/"]
    static let artifactsPrefixes = ["/api/2.0/mlflow-artifacts/artifacts/", "/ajax-api/2.0/mlflow-artifacts/artifacts/"]

    /// Reads `request`. `runIDs` are the ids the wrapped run is known by (the id handed to the
    /// command and, once known, the server's); `now` (ms) stamps a metric sent without a timestamp.
    public static func parse(_ request: RelayRequest, runIDs: Set<String>, now: Int64) throws(RelayRequestError) -> RelayOperation {
        if request.method == "PUT", let rest = strip(request.path, artifactsPrefixes) {
            return artifactOperation(rest, runIDs: runIDs)
        }
        guard let endpoint = strip(request.path, apiPrefixes) else { return .forward }
        switch (request.method, endpoint) {
        case ("GET", "runs/get"):
            let query = parseQuery(request.query)
            guard let id = query["run_id"] ?? query["run_uuid"], runIDs.contains(id) else { return .forward }
            return .getRun
        case ("GET", "experiments/get"):
            return .getExperiment(id: parseQuery(request.query)["experiment_id"], name: nil)
        case ("GET", "experiments/get-by-name"):
            return .getExperiment(id: nil, name: parseQuery(request.query)["experiment_name"])
        case ("POST", "runs/log-metric"), ("POST", "runs/log-parameter"), ("POST", "runs/set-tag"), ("POST", "runs/delete-tag"),
             ("POST", "runs/log-batch"), ("POST", "runs/log-inputs"), ("POST", "runs/update"):
            let body = try json(request.body)
            guard let id = body["run_id"]?.stringValue ?? body["run_uuid"]?.stringValue, runIDs.contains(id) else { return .forward }
            return try runWrite(endpoint, body, now: now)
        default:
            return .forward
        }
    }

    private static func runWrite(_ endpoint: String, _ body: JSONValue, now: Int64) throws(RelayRequestError) -> RelayOperation {
        switch endpoint {
        case "runs/log-metric":
            let key = try required(body, "key")
            guard let value = body["value"]?.doubleValue else {
                throw RelayRequestError("Missing or non-numeric value for required parameter 'value' of metric '\(key)'.")
            }
            let metric = Metric(key: key, value: value, timestamp: body["timestamp"]?.int64Value ?? now, step: body["step"]?.int64Value ?? 0,
                                modelID: body["model_id"]?.stringValue, datasetName: body["dataset_name"]?.stringValue,
                                datasetDigest: body["dataset_digest"]?.stringValue)
            return .log(LogBuffer.Batch(metrics: [metric]))
        case "runs/log-parameter":
            return .log(LogBuffer.Batch(params: [Param(try required(body, "key"), try required(body, "value"))]))
        case "runs/set-tag":
            return .log(LogBuffer.Batch(tags: [Tag(try required(body, "key"), try required(body, "value"))]))
        case "runs/delete-tag":
            return .deleteTag(key: try required(body, "key"))
        case "runs/log-batch":
            var metrics: [Metric] = []
            for item in body["metrics"]?.arrayValue ?? [] {
                guard var metric = WireDecoding.metric(item) else {
                    throw RelayRequestError("A metric in log-batch lacks its 'key' or a numeric 'value'.")
                }
                metric.runID = nil
                if item["timestamp"] == nil { metric.timestamp = now }
                metrics.append(metric)
            }
            let params = WireDecoding.params(body["params"]), tags = WireDecoding.tags(body["tags"])
            if let bad = (body["params"]?.arrayValue ?? []).first(where: { $0["key"]?.stringValue == nil || $0["value"] == nil }) {
                throw RelayRequestError("A param in log-batch lacks its 'key' or 'value': \(bad).")
            }
            return .log(LogBuffer.Batch(metrics: metrics, params: params, tags: tags))
        case "runs/log-inputs":
            return .logInputs(WireDecoding.run(.object([("inputs", .object([("dataset_inputs", body["datasets"] ?? .array([]))]))])).inputs)
        default: // runs/update
            var status: RunStatus?
            if let text = body["status"]?.stringValue {
                guard let value = RunStatus(rawValue: text) else {
                    throw RelayRequestError("Invalid run status '\(text)'. Use RUNNING, SCHEDULED, FINISHED, FAILED or KILLED.")
                }
                status = value
            }
            return .updateRun(status: status, endTime: body["end_time"]?.int64Value, runName: body["run_name"]?.stringValue)
        }
    }

    /// `<experiment location…>/<run id>/artifacts/<relative path>`: the run's artifact root is
    /// the experiment's location followed by the run id and `artifacts`.
    private static func artifactOperation(_ rest: String, runIDs: Set<String>) -> RelayOperation {
        let segments = rest.split(separator: "/", omittingEmptySubsequences: true).map { String($0).removingPercentEncoding ?? String($0) }
        guard segments.count >= 3 else { return .forward }
        for index in 0..<(segments.count - 2) where runIDs.contains(segments[index]) && segments[index + 1] == "artifacts" {
            let relative = segments[(index + 2)...]
            if relative.contains(where: { $0 == ".." || $0 == "." }) { return .forward }  // the server refuses it with its own error
            return .uploadArtifact(path: relative.joined(separator: "/"))
        }
        return .forward
    }

    private static func strip(_ path: String, _ prefixes: [String]) -> String? {
        for prefix in prefixes where path.hasPrefix(prefix) { return String(path.dropFirst(prefix.count)) }
        return nil
    }

    private static func json(_ body: [UInt8]) throws(RelayRequestError) -> JSONValue {
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return .object([]) }
        let value: JSONValue
        do {
            value = try JSONValue.parse(body)
        } catch {
            throw RelayRequestError("Malformed JSON in the request body: \(error.description). Send a JSON object with Content-Type: application/json.")
        }
        guard case .object = value else {
            throw RelayRequestError("The request body is not a JSON object. Send a JSON object with Content-Type: application/json.")
        }
        return value
    }

    private static func required(_ body: JSONValue, _ name: String) throws(RelayRequestError) -> String {
        guard let value = body[name]?.stringValue else { throw RelayRequestError("Missing value for required parameter '\(name)'.") }
        return value
    }

    /// `application/x-www-form-urlencoded`: the last value of each key.
    static func parseQuery(_ query: String) -> [String: String] {
        var result: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String { let t = s.replacingOccurrences(of: "+", with: " "); return t.removingPercentEncoding ?? t }
            result[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return result
    }
}
