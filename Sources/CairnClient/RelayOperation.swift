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
        let f = BodyFields(body)
        switch endpoint {
        case "runs/log-metric":
            return .log(LogBuffer.Batch(metrics: [try f.metric(now: now)]))
        case "runs/log-parameter":
            return .log(LogBuffer.Batch(params: [Param(try f.required("key"), try f.required("value"))]))
        case "runs/set-tag":
            return .log(LogBuffer.Batch(tags: [Tag(try f.required("key"), try f.required("value"))]))
        case "runs/delete-tag":
            return .deleteTag(key: try f.required("key"))
        case "runs/log-batch":
            var metrics: [Metric] = []
            for item in try f.objects("metrics") { metrics.append(try item.metric(now: now)) }
            var params: [Param] = []
            for item in try f.objects("params") { params.append(Param(try item.required("key"), try item.required("value"))) }
            var tags: [Tag] = []
            for item in try f.objects("tags") { tags.append(Tag(try item.required("key"), try item.string("value") ?? "")) }
            return .log(LogBuffer.Batch(metrics: metrics, params: params, tags: tags))
        case "runs/log-inputs":
            return .logInputs(WireDecoding.run(.object([("inputs", .object([("dataset_inputs", body["datasets"] ?? .array([]))]))])).inputs)
        default: // runs/update
            var status: RunStatus?
            if let text = try f.string("status") {
                guard let value = RunStatus(rawValue: text) else {
                    throw RelayRequestError("Invalid run status '\(text)'. Use RUNNING, SCHEDULED, FINISHED, FAILED or KILLED.")
                }
                status = value
            }
            return .updateRun(status: status, endTime: try f.int64("end_time"), runName: try f.string("run_name"))
        }
    }

    /// The fields of a write body of the wrapped run, read with the server's type rule
    /// (`WireField`): a wrong JSON type is refused here as the server would refuse it.
    private struct BodyFields {
        let body: JSONValue
        let path: String

        init(_ body: JSONValue, path: String = "") {
            self.body = body
            self.path = path
        }

        private func read<T>(_ name: String, _ rule: (JSONValue, String) throws(CairnError) -> T) throws(RelayRequestError) -> T? {
            guard let value = body[name], value != .null else { return nil }
            do throws(CairnError) { return try rule(value, path + name) } catch { throw RelayRequestError(error.message) }
        }

        func string(_ name: String) throws(RelayRequestError) -> String? { try read(name, WireField.string) }
        func int64(_ name: String) throws(RelayRequestError) -> Int64? { try read(name, WireField.int64) }

        func required(_ name: String) throws(RelayRequestError) -> String {
            guard let value = try string(name) else { throw RelayRequestError(CairnError.missingParameter(path + name).message) }
            return value
        }

        func objects(_ name: String) throws(RelayRequestError) -> [BodyFields] {
            guard let value = body[name], value != .null else { return [] }
            guard case .array(let items) = value else { throw RelayRequestError(WireField.invalid(path + name, value).message) }
            var fields: [BodyFields] = []
            for (index, item) in items.enumerated() {
                guard case .object = item else { throw RelayRequestError(WireField.invalid("\(path)\(name)[\(index)]", item).message) }
                fields.append(BodyFields(item, path: "\(path)\(name)[\(index)]."))
            }
            return fields
        }

        /// A metric; one sent without a timestamp gets `now`.
        func metric(now: Int64) throws(RelayRequestError) -> Metric {
            let key = try required("key")
            guard let value = try read("value", WireField.double) else {
                throw RelayRequestError(CairnError.missingParameter(path + "value").message)
            }
            return Metric(key: key, value: value, timestamp: try int64("timestamp") ?? now, step: try int64("step") ?? 0,
                          modelID: try string("model_id"), datasetName: try string("dataset_name"), datasetDigest: try string("dataset_digest"))
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
