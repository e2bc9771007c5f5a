import AsyncHTTPClient
import CairnCore
import Foundation
import NIOCore

/// One file of an artifact tree as the source lists it, relative to the listed root.
public struct SourceArtifact: Sendable, Hashable {
    public var path: String
    public var size: Int64?

    public init(path: String, size: Int64?) {
        self.path = path
        self.size = size
    }
}

/// Reads a running MLflow tracking server (2.x or 3.x) through its REST API, everything
/// `cairn import mlflow` copies: experiments, runs (deleted ones too), whole metric histories
/// (every point, page by page), logged models, registered models and versions, and artifact
/// files through the server's artifact proxy. Credentials as the `mlflow` client takes them:
/// `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD` (Basic, preferred) or
/// `MLFLOW_TRACKING_TOKEN` (Bearer). A failed request is retried a few times when it may
/// succeed later (503, refused connection), as the `mlflow` client does.
public struct MLflowSource: Sendable {
    public let client: TrackingClient
    let authorization: String?

    public init(uri: String, environment: [String: String] = ProcessInfo.processInfo.environment, timeout: TimeInterval = 120) {
        self.client = TrackingClient(trackingURI: uri, timeout: timeout)
        self.authorization = Self.authorization(environment)
    }

    public var uri: String { client.trackingURI }

    static func authorization(_ environment: [String: String]) -> String? {
        if let user = environment["MLFLOW_TRACKING_USERNAME"], !user.isEmpty {
            let password = environment["MLFLOW_TRACKING_PASSWORD"] ?? ""
            return "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
        }
        if let token = environment["MLFLOW_TRACKING_TOKEN"], !token.isEmpty { return "Bearer \(token)" }
        return nil
    }

    // MARK: Transport

    func call(_ method: String, _ path: String, query: [(String, String)] = [], body: [UInt8]? = nil) async throws -> JSONValue {
        let encoded = query.map { "\(Self.formEncode($0.0))=\(Self.formEncode($0.1))" }.joined(separator: "&")
        var attempt = 0
        while true {
            attempt += 1
            do {
                let reply = try await client.exchange(method: method, path: path, encodedQuery: encoded, body: body,
                                                      contentType: body == nil ? nil : "application/json", authorization: authorization)
                guard (200..<300).contains(reply.status) else {
                    let json = try? JSONValue.parse(Array(reply.data))
                    let code = json?["error_code"]?.stringValue ?? (reply.status == 404 ? "ENDPOINT_NOT_FOUND" : "HTTP_\(reply.status)")
                    let message = json?["message"]?.stringValue ?? String(decoding: reply.data.prefix(300), as: UTF8.self)
                    throw TrackingClientError.server(status: reply.status, code: code, message: message)
                }
                guard let json = try? JSONValue.parse(Array(reply.data)) else {
                    throw TrackingClientError.server(status: reply.status, code: "INVALID_REPLY", message: "\(path) did not answer JSON: \(String(decoding: reply.data.prefix(200), as: UTF8.self))")
                }
                return json
            } catch let error as TrackingClientError where error.isRetryable && attempt < Self.attempts {
                try await Task.sleep(for: .milliseconds(200 << attempt))
            }
        }
    }

    static let attempts = 5

    func mlflow(_ method: String, _ endpoint: String, query: [(String, String)] = [], body: [UInt8]? = nil) async throws -> JSONValue {
        try await call(method, "/api/2.0/mlflow/" + endpoint, query: query, body: body)
    }

    static func formEncode(_ text: String) -> String {
        let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// Follows `next_page_token` until the source has no more pages.
    func pages(_ fetch: (String?) async throws -> JSONValue, _ collect: (JSONValue) -> Void) async throws {
        var token: String?
        repeat {
            let reply = try await fetch(token)
            collect(reply)
            token = reply["next_page_token"]?.stringValue
        } while !(token ?? "").isEmpty
    }

    // MARK: Tracking

    /// Every experiment, active and deleted, that `filter` (MLflow's search grammar) selects.
    public func experiments(filter: String?) async throws -> [Experiment] {
        var result: [Experiment] = []
        try await pages({ token in
            try await mlflow("POST", "experiments/search", body: WireRequests.object { o in
                o.int("max_results", 1000)
                o.string("view_type", "ALL")
                if let filter, !filter.isEmpty { o.string("filter", filter) }
                if let token { o.string("page_token", token) }
            })
        }, { reply in result += (reply["experiments"]?.arrayValue ?? []).map(WireDecoding.experiment) })
        return result
    }

    /// The experiment named `name`, or nil.
    public func experiment(named name: String) async throws -> Experiment? {
        do {
            let reply = try await mlflow("GET", "experiments/get-by-name", query: [("experiment_name", name)])
            return reply["experiment"].map(WireDecoding.experiment)
        } catch let error as TrackingClientError where error.isNotFound {
            return nil
        }
    }

    public func experiment(id: String) async throws -> Experiment {
        WireDecoding.experiment(try await mlflow("GET", "experiments/get", query: [("experiment_id", id)])["experiment"] ?? .object([]))
    }

    /// Every run of the experiment, active and deleted, oldest first, with dataset inputs,
    /// model inputs and outputs.
    public func runs(experimentID: String) async throws -> [Run] {
        var result: [Run] = []
        try await pages({ token in
            try await mlflow("POST", "runs/search", body: WireRequests.object { o in
                o.array("experiment_ids", [experimentID]) { w, id in w.string(id) }
                o.int("max_results", 1000)
                o.string("run_view_type", "ALL")
                o.array("order_by", ["attributes.start_time ASC", "attributes.run_id ASC"]) { w, clause in w.string(clause) }
                if let token { o.string("page_token", token) }
            })
        }, { reply in result += (reply["runs"]?.arrayValue ?? []).map(Self.fullRun) })
        return result
    }

    static func fullRun(_ r: JSONValue) -> Run {
        var run = WireDecoding.run(r)
        run.modelInputs = (r["inputs"]?["model_inputs"]?.arrayValue ?? []).compactMap { $0["model_id"]?.stringValue }
        run.modelOutputs = (r["outputs"]?["model_outputs"]?.arrayValue ?? []).compactMap { output in
            output["model_id"]?.stringValue.map { ModelOutput(modelID: $0, step: output["step"]?.int64Value ?? 0) }
        }
        return run
    }

    /// Every point of one series (`get-history`, page by page), in the source's order.
    public func metricHistory(runID: String, key: String) async throws -> [Metric] {
        var result: [Metric] = []
        try await pages({ token in
            var query = [("run_id", runID), ("run_uuid", runID), ("metric_key", key), ("max_results", "25000")]
            if let token { query.append(("page_token", token)) }
            return try await mlflow("GET", "metrics/get-history", query: query)
        }, { reply in result += (reply["metrics"]?.arrayValue ?? []).compactMap(WireDecoding.metric) })
        return result
    }

    /// The logged models of the experiments (MLflow 3; an MLflow 2 server has none: empty).
    public func loggedModels(experimentIDs: [String]) async throws -> [LoggedModel] {
        guard !experimentIDs.isEmpty else { return [] }
        var result: [LoggedModel] = []
        do {
            try await pages({ token in
                try await mlflow("POST", "logged-models/search", body: WireRequests.object { o in
                    o.array("experiment_ids", experimentIDs) { w, id in w.string(id) }
                    o.int("max_results", 50)
                    if let token { o.string("page_token", token) }
                })
            }, { reply in result += (reply["models"]?.arrayValue ?? []).map(Self.loggedModel) })
        } catch TrackingClientError.server(_, "ENDPOINT_NOT_FOUND", _) {
            return []
        }
        return result
    }

    static func loggedModel(_ m: JSONValue) -> LoggedModel {
        let info = m["info"] ?? .object([])
        let data = m["data"]
        let status: LoggedModelStatus = info["status"].flatMap { value in
            value.stringValue.flatMap(LoggedModelStatus.init(rawValue:)) ?? value.int64Value.flatMap(LoggedModelStatus.init(number:))
        } ?? .ready
        return LoggedModel(
            modelID: info["model_id"]?.stringValue ?? "", experimentID: info["experiment_id"]?.stringValue ?? "",
            name: info["name"]?.stringValue ?? "", artifactURI: info["artifact_uri"]?.stringValue ?? "",
            creationTimestamp: info["creation_timestamp_ms"]?.int64Value ?? 0,
            lastUpdatedTimestamp: info["last_updated_timestamp_ms"]?.int64Value ?? 0,
            status: status, statusMessage: info["status_message"]?.stringValue, creatorID: info["creator_id"]?.stringValue,
            modelType: info["model_type"]?.stringValue, sourceRunID: info["source_run_id"]?.stringValue,
            lifecycleStage: LifecycleStage(rawValue: info["lifecycle_stage"]?.stringValue ?? "active") ?? .active,
            tags: WireDecoding.tags(info["tags"]), params: WireDecoding.params(data?["params"]),
            metrics: (data?["metrics"]?.arrayValue ?? []).compactMap { item in
                WireDecoding.metric(item).map {
                    ModelMetric(key: $0.key, value: $0.value, timestamp: $0.timestamp, step: $0.step, runID: $0.runID,
                                datasetName: $0.datasetName, datasetDigest: $0.datasetDigest)
                }
            })
    }

    // MARK: Registry

    /// Every registered model (the `filter` in MLflow's registry search grammar).
    public func registeredModels(filter: String? = nil) async throws -> [RegisteredModel] {
        var result: [RegisteredModel] = []
        try await pages({ token in
            var query = [("max_results", "1000")]
            if let filter, !filter.isEmpty { query.append(("filter", filter)) }
            if let token { query.append(("page_token", token)) }
            return try await mlflow("GET", "registered-models/search", query: query)
        }, { reply in
            result += (reply["registered_models"]?.arrayValue ?? []).map { m in
                RegisteredModel(
                    name: m["name"]?.stringValue ?? "", creationTimestamp: m["creation_timestamp"]?.int64Value ?? 0,
                    lastUpdatedTimestamp: m["last_updated_timestamp"]?.int64Value ?? 0, userID: m["user_id"]?.stringValue ?? "",
                    description: m["description"]?.stringValue ?? "", tags: WireDecoding.tags(m["tags"]),
                    aliases: (m["aliases"]?.arrayValue ?? []).compactMap { a in
                        guard let alias = a["alias"]?.stringValue, let version = a["version"]?.int64Value else { return nil }
                        return (alias, version)
                    },
                    latestVersions: [])
            }
        })
        return result
    }

    /// Every version of the registered model, by number.
    public func modelVersions(name: String) async throws -> [ModelVersion] {
        var result: [ModelVersion] = []
        let quoted = "'" + name.replacingOccurrences(of: "'", with: "\\'") + "'"
        try await pages({ token in
            var query = [("filter", "name = \(quoted)"), ("max_results", "10000")]
            if let token { query.append(("page_token", token)) }
            return try await mlflow("GET", "model-versions/search", query: query)
        }, { reply in
            result += (reply["model_versions"]?.arrayValue ?? []).map { v in
                ModelVersion(
                    name: v["name"]?.stringValue ?? name, version: v["version"]?.int64Value ?? 0,
                    creationTimestamp: v["creation_timestamp"]?.int64Value ?? 0,
                    lastUpdatedTimestamp: v["last_updated_timestamp"]?.int64Value ?? 0, userID: v["user_id"]?.stringValue ?? "",
                    currentStage: v["current_stage"]?.stringValue ?? "None", description: v["description"]?.stringValue ?? "",
                    source: v["source"]?.stringValue ?? "", runID: v["run_id"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 },
                    runLink: v["run_link"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 },
                    status: v["status"]?.stringValue ?? "READY", statusMessage: v["status_message"]?.stringValue,
                    modelID: v["model_id"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }, tags: WireDecoding.tags(v["tags"]),
                    aliases: (v["aliases"]?.arrayValue ?? []).compactMap(\.stringValue))
            }
        })
        return result.sorted { $0.version < $1.version }
    }

    // MARK: Artifacts

    /// The artifact-proxy path (`<experiment>/<run>/artifacts`) of an `mlflow-artifacts:` URI,
    /// or nil for a location the server does not proxy (s3://, file://, …).
    public static func proxyPath(_ artifactURI: String) -> String? {
        guard artifactURI.hasPrefix("mlflow-artifacts:") else { return nil }
        var rest = Substring(artifactURI.dropFirst("mlflow-artifacts:".count))
        if rest.hasPrefix("//") {
            guard let slash = rest.dropFirst(2).firstIndex(of: "/") else { return "" }
            rest = rest[slash...]
        }
        while rest.hasPrefix("/") { rest = rest.dropFirst() }
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        return String(rest)
    }

    /// Every file below the proxy folder `root` (recursive), paths relative to it, with sizes.
    public func listArtifacts(root: String) async throws -> [SourceArtifact] {
        var result: [SourceArtifact] = []
        var folders = [""]
        while let folder = folders.popLast() {
            let full = folder.isEmpty ? root : root + "/" + folder
            let reply = try await call("GET", "/api/2.0/mlflow-artifacts/artifacts", query: [("path", full)])
            for file in reply["files"]?.arrayValue ?? [] {
                guard let name = file["path"]?.stringValue, !name.isEmpty else { continue }
                let base = name.split(separator: "/").last.map(String.init) ?? name
                let relative = folder.isEmpty ? base : folder + "/" + base
                if file["is_dir"]?.boolValue == true {
                    folders.append(relative)
                } else {
                    result.append(SourceArtifact(path: relative, size: file["file_size"]?.int64Value))
                }
            }
        }
        return result.sorted { $0.path < $1.path }
    }

    /// Streams one file of the artifact proxy (`root` + `/` + `path`) to `body`, which gets
    /// the response body as it arrives (never held whole in memory).
    public func withArtifact<T: Sendable>(root: String, path: String, _ body: (HTTPClientResponse.Body) async throws -> T) async throws -> T {
        let full = (root.isEmpty ? path : root + "/" + path).split(separator: "/").map { Self.formEncode(String($0)) }.joined(separator: "/")
        guard let url = URL(string: client.trackingURI + "/api/2.0/mlflow-artifacts/artifacts/" + full) else {
            throw TrackingClientError.unreachable(uri: client.trackingURI, reason: "bad artifact path '\(path)'")
        }
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .GET
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        let response: HTTPClientResponse
        do {
            response = try await sharedHTTPClient.execute(request, timeout: .seconds(3600))
        } catch {
            throw TrackingClientError.unreachable(uri: client.trackingURI, reason: TrackingClient.describe(error, timeout: 3600))
        }
        guard response.status.code == 200 else {
            let data = try await response.body.collect(upTo: 1 << 20)
            let json = try? JSONValue.parse(Array(data.readableBytesView))
            throw TrackingClientError.server(status: Int(response.status.code), code: json?["error_code"]?.stringValue ?? "HTTP_\(response.status.code)",
                                             message: json?["message"]?.stringValue ?? "artifact '\(path)' could not be read")
        }
        return try await body(response.body)
    }
}
