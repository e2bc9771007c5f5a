import AsyncHTTPClient
import CairnCore
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// What went wrong talking to a tracking server.
public enum TrackingClientError: Error, CustomStringConvertible, Sendable {
    /// No answer: refused connection, time-out, DNS failure.
    case unreachable(uri: String, reason: String)
    /// The server answered with an error (`{"error_code": ..., "message": ...}`).
    case server(status: Int, code: String, message: String)
    /// The client's own settings cannot be used (a TLS file named by a variable); what to fix.
    case configuration(String)

    /// Whether sending the same request later may succeed (MLflow's client retries the same set).
    public var isRetryable: Bool {
        switch self {
        case .unreachable: return true
        case .server(let status, _, _): return [408, 429, 500, 502, 503, 504].contains(status)
        case .configuration: return false
        }
    }

    public var isNotFound: Bool {
        if case .server(_, let code, _) = self { return code == "RESOURCE_DOES_NOT_EXIST" }
        return false
    }

    public var description: String {
        switch self {
        case .unreachable(let uri, let reason):
            return "The tracking server at \(uri) is unreachable (\(reason)). Start it with `cairn server`, or point --tracking-uri / MLFLOW_TRACKING_URI at a running one"
        case .server(let status, let code, let message):
            return "The server answered \(status) \(code): \(message)"
        case .configuration(let message):
            return message
        }
    }
}

/// One HTTP client for the process. It lives as long as the process (so it is never shut
/// down) and does not retry a refused connection until the deadline, which is what
/// AsyncHTTPClient's default does: an unreachable server is reported at once, and retrying is
/// the caller's policy.
let sharedHTTPClient: HTTPClient = {
    var configuration = HTTPClient.Configuration()
    configuration.connectionPool.retryConnectionEstablishment = false
    configuration.timeout.connect = .seconds(10)
    if case .success(let tls?) = environmentTLS { configuration.tlsConfiguration = tls }
    return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
}()

/// TLS as the `mlflow` client sets it up from its variables: `MLFLOW_TRACKING_SERVER_CERT_PATH`,
/// a PEM bundle of the certificate authorities to trust instead of the system's (a private CA or a
/// self-signed server); `MLFLOW_TRACKING_CLIENT_CERT_PATH`, a PEM file with a client certificate
/// and its key; `MLFLOW_TRACKING_INSECURE_TLS=true`, no verification at all. Nil: the defaults.
/// A file that cannot be read is an error every request reports (`TrackingClient.exchange`).
let environmentTLS: Result<TLSConfiguration?, TrackingClientError> = TrackingClient.tlsConfiguration(ProcessInfo.processInfo.environment)

/// A small client of the MLflow REST API (and Cairn's `/api/cairn/v1` additions) over
/// AsyncHTTPClient (http and https). Every call is one HTTP request, never retried here: retrying is the caller's
/// policy (`LogBuffer` for logging, none for interactive commands).
public struct TrackingClient: Sendable {
    public let trackingURI: String
    let timeout: TimeInterval

    /// `trackingURI` like `http://127.0.0.1:5000` (a path prefix is kept).
    public init(trackingURI: String, timeout: TimeInterval = 30) {
        var uri = trackingURI
        while uri.hasSuffix("/") { uri.removeLast() }
        self.trackingURI = uri
        self.timeout = timeout
    }

    /// The tracking URI from the environment (`MLFLOW_TRACKING_URI`), else the default server.
    public static func defaultTrackingURI(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let uri = environment["MLFLOW_TRACKING_URI"], !uri.isEmpty { return uri }
        return "http://127.0.0.1:5000"
    }

    /// The credentials the `mlflow` client reads, as it reads them: Basic from
    /// `MLFLOW_TRACKING_USERNAME` and `MLFLOW_TRACKING_PASSWORD` when both are set, else a Bearer
    /// `MLFLOW_TRACKING_TOKEN`; nil without either.
    public static func environmentAuthorization(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let user = environment["MLFLOW_TRACKING_USERNAME"], !user.isEmpty,
           let password = environment["MLFLOW_TRACKING_PASSWORD"], !password.isEmpty {
            return "Basic " + Data((user + ":" + password).utf8).base64EncodedString()
        }
        if let token = environment["MLFLOW_TRACKING_TOKEN"], !token.isEmpty { return "Bearer \(token)" }
        return nil
    }

    /// The TLS configuration the variables ask for (see `environmentTLS`), nil for the defaults.
    static func tlsConfiguration(_ environment: [String: String]) -> Result<TLSConfiguration?, TrackingClientError> {
        let caPath = environment["MLFLOW_TRACKING_SERVER_CERT_PATH"].flatMap { $0.isEmpty ? nil : $0 }
        let clientPath = environment["MLFLOW_TRACKING_CLIENT_CERT_PATH"].flatMap { $0.isEmpty ? nil : $0 }
        let insecure = environment["MLFLOW_TRACKING_INSECURE_TLS"]?.lowercased() == "true"
        guard caPath != nil || clientPath != nil || insecure else { return .success(nil) }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caPath {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caPath))
            } catch {
                return .failure(.configuration("MLFLOW_TRACKING_SERVER_CERT_PATH='\(caPath)' is not a readable PEM file of certificates (\(error)); point it at the CA bundle that signed the server's certificate"))
            }
        }
        if let clientPath {
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(clientPath).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: clientPath, format: .pem))
            } catch {
                return .failure(.configuration("MLFLOW_TRACKING_CLIENT_CERT_PATH='\(clientPath)' must be a PEM file with the client certificate and its key (\(error))"))
            }
        }
        if insecure { tls.certificateVerification = .none }
        return .success(tls)
    }

    // MARK: Transport

    func send(method: String, path: String, query: [(String, String)] = [], body: [UInt8]? = nil, contentType: String = "application/json") async throws -> (status: Int, data: Data) {
        let encodedQuery = query.map { "\(formEncode($0.0))=\(formEncode($0.1))" }.joined(separator: "&")
        let reply = try await exchange(method: method, path: path, encodedQuery: encodedQuery, body: body, contentType: contentType, authorization: nil)
        return (reply.status, reply.data)
    }

    /// One HTTP request: `path` and `encodedQuery` are appended to the tracking URI as they are.
    /// `authorization` replaces the one `MLFLOW_TRACKING_TOKEN` would add.
    func exchange(method: String, path: String, encodedQuery: String, body: [UInt8]?, contentType: String?, authorization: String?) async throws -> (status: Int, contentType: String?, data: Data) {
        var components = URLComponents(string: trackingURI + path)
        if !encodedQuery.isEmpty { components?.percentEncodedQuery = encodedQuery }
        guard let url = components?.url else {
            throw TrackingClientError.unreachable(uri: trackingURI, reason: "'\(trackingURI + path)' is not a valid http(s) URL")
        }
        if case .failure(let error) = environmentTLS, url.scheme == "https" { throw error }
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = HTTPMethod(rawValue: method)
        if let body {
            request.body = .bytes(body)
            if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        }
        if let authorization = authorization ?? Self.environmentAuthorization() {
            request.headers.add(name: "Authorization", value: authorization)
        }
        do {
            let response = try await sharedHTTPClient.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
            let bytes = try await response.body.collect(upTo: Self.maxReplyBytes)
            return (Int(response.status.code), response.headers.first(name: "Content-Type"), Data(bytes.readableBytesView))
        } catch {
            throw TrackingClientError.unreachable(uri: trackingURI, reason: Self.describe(error, timeout: timeout))
        }
    }

    /// Sends a request of the command `cairn run` wraps as it came (method, path, query, body,
    /// content type, credentials) and returns the server's answer, whatever its status.
    public func forward(_ request: RelayRequest) async throws -> RelayResponse {
        let hasBody = !["GET", "HEAD"].contains(request.method) || !request.body.isEmpty
        let reply = try await exchange(method: request.method, path: request.path, encodedQuery: request.query, body: hasBody ? request.body : nil,
                                       contentType: request.contentType, authorization: request.authorization)
        return RelayResponse(status: reply.status, contentType: reply.contentType ?? "application/octet-stream", body: Array(reply.data))
    }

    /// Replies larger than this are refused (a whole-run history page is far smaller).
    static let maxReplyBytes = 1 << 30

    /// A transport failure in words a user can act on.
    static func describe(_ error: any Error, timeout: TimeInterval) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout:
                return "no answer within \(Int(timeout)) s"
            case .remoteConnectionClosed:
                return "the connection was closed before the answer"
            default:
                break
            }
        }
        let text = String(describing: error)
        if text.contains("connectionRefused") || text.contains("Connection refused") || text.contains("ECONNREFUSED") {
            return "connection refused"
        }
        if error is NIOSSLError || text.contains("CERTIFICATE_VERIFY_FAILED") {
            return "its TLS certificate is not trusted: \(text). For a private CA or a self-signed certificate, set MLFLOW_TRACKING_SERVER_CERT_PATH to the PEM file of the CA that signed it"
        }
        return text
    }

    /// One JSON call; a non-2xx answer becomes `TrackingClientError.server`.
    public func call(_ method: String, _ path: String, query: [(String, String)] = [], body: [UInt8]? = nil) async throws -> JSONValue {
        let data = try await callData(method, path, query: query, body: body)
        return (try? JSONValue.parse(Array(data))) ?? .object([])
    }

    /// One call whose answer body is returned as it came; a non-2xx answer becomes `TrackingClientError.server`.
    public func callData(_ method: String, _ path: String, query: [(String, String)] = [], body: [UInt8]? = nil) async throws -> Data {
        let (status, data) = try await send(method: method, path: path, query: query, body: body)
        guard (200..<300).contains(status) else {
            let json = try? JSONValue.parse(Array(data))
            let code = json?["error_code"]?.stringValue ?? (status == 404 ? "ENDPOINT_NOT_FOUND" : "HTTP_\(status)")
            let message = json?["message"]?.stringValue ?? String(decoding: data.prefix(300), as: UTF8.self)
            throw TrackingClientError.server(status: status, code: code, message: message)
        }
        return data
    }

    /// A Cairn endpoint's JSON answer decoded as `T` (snake_case keys).
    public func cairn<T: Decodable>(_ type: T.Type, _ endpoint: String, query: [(String, String)]) async throws -> T {
        let data = try await callData("GET", "/api/cairn/v1/" + endpoint, query: query)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(T.self, from: data)
    }

    func mlflow(_ method: String, _ endpoint: String, query: [(String, String)] = [], body: [UInt8]? = nil) async throws -> JSONValue {
        try await call(method, "/api/2.0/mlflow/" + endpoint, query: query, body: body)
    }

    // MARK: Experiments

    /// The experiment named `name`, or nil when there is none.
    public func experiment(named name: String) async throws -> Experiment? {
        do {
            let reply = try await mlflow("GET", "experiments/get-by-name", query: [("experiment_name", name)])
            return reply["experiment"].map(WireDecoding.experiment)
        } catch let error as TrackingClientError where error.isNotFound {
            return nil
        }
    }

    public func experiment(id: String) async throws -> Experiment {
        let reply = try await mlflow("GET", "experiments/get", query: [("experiment_id", id)])
        return WireDecoding.experiment(reply["experiment"] ?? .object([]))
    }

    public func createExperiment(name: String) async throws -> String {
        let reply = try await mlflow("POST", "experiments/create", body: WireRequests.object { $0.string("name", name) })
        return reply["experiment_id"]?.stringValue ?? ""
    }

    /// The id of the experiment named `name`, created if missing (a creation race is tolerated).
    public func experimentID(forName name: String) async throws -> String {
        if let existing = try await experiment(named: name) { return existing.experimentID }
        do {
            return try await createExperiment(name: name)
        } catch TrackingClientError.server(_, "RESOURCE_ALREADY_EXISTS", _) {
            if let existing = try await experiment(named: name) { return existing.experimentID }
            throw TrackingClientError.server(status: 404, code: "RESOURCE_DOES_NOT_EXIST", message: "Experiment '\(name)' vanished while it was being created.")
        }
    }

    /// Every active experiment (all pages).
    public func searchExperiments(viewType: String = "ACTIVE_ONLY") async throws -> [Experiment] {
        var result: [Experiment] = []
        var token: String?
        repeat {
            let reply = try await mlflow("POST", "experiments/search", body: WireRequests.object { o in
                o.int("max_results", 1000)
                o.string("view_type", viewType)
                if let token { o.string("page_token", token) }
            })
            result += (reply["experiments"]?.arrayValue ?? []).map(WireDecoding.experiment)
            token = reply["next_page_token"]?.stringValue
        } while !(token ?? "").isEmpty
        return result
    }

    // MARK: Runs

    public func createRun(experimentID: String, runName: String?, startTime: Int64, tags: [Tag], userID: String? = nil) async throws -> Run {
        let reply = try await mlflow("POST", "runs/create", body: WireRequests.object { o in
            o.string("experiment_id", experimentID)
            if let runName { o.string("run_name", runName) }
            if let userID { o.string("user_id", userID) }
            o.int("start_time", startTime)
            WireRequests.keyValues(&o, "tags", tags.map { ($0.key, $0.value) })
        })
        return WireDecoding.run(reply["run"] ?? .object([]))
    }

    public func getRun(id: String) async throws -> Run {
        let reply = try await mlflow("GET", "runs/get", query: [("run_id", id)])
        return WireDecoding.run(reply["run"] ?? .object([]))
    }

    public func updateRun(id: String, status: RunStatus, endTime: Int64?) async throws {
        _ = try await mlflow("POST", "runs/update", body: WireRequests.object { o in
            o.string("run_id", id)
            o.string("status", status.rawValue)
            if let endTime { o.int("end_time", endTime) }
        })
    }

    public func logBatch(runID: String, metrics: [Metric], params: [Param], tags: [Tag]) async throws {
        _ = try await mlflow("POST", "runs/log-batch", body: WireRequests.object { o in
            o.string("run_id", runID)
            WireRequests.metrics(&o, metrics)
            WireRequests.keyValues(&o, "params", params.map { ($0.key, $0.value) })
            WireRequests.keyValues(&o, "tags", tags.map { ($0.key, $0.value) })
        })
    }

    public func deleteTag(runID: String, key: String) async throws {
        _ = try await mlflow("POST", "runs/delete-tag", body: WireRequests.object { o in
            o.string("run_id", runID)
            o.string("key", key)
        })
    }

    public func logInputs(runID: String, datasets: [DatasetInput]) async throws {
        _ = try await mlflow("POST", "runs/log-inputs", body: WireRequests.object { o in
            o.string("run_id", runID)
            WireRequests.datasets(&o, datasets)
        })
    }

    /// One page of a run search.
    public func searchRuns(experimentIDs: [String], filter: String? = nil, orderBy: [String] = [], maxResults: Int = 1000, pageToken: String? = nil, viewType: String = "ACTIVE_ONLY") async throws -> (runs: [Run], nextPageToken: String?) {
        let reply = try await mlflow("POST", "runs/search", body: WireRequests.object { o in
            o.array("experiment_ids", experimentIDs) { w, id in w.string(id) }
            if let filter, !filter.isEmpty { o.string("filter", filter) }
            o.array("order_by", orderBy) { w, clause in w.string(clause) }
            o.int("max_results", Int64(maxResults))
            o.string("run_view_type", viewType)
            if let pageToken { o.string("page_token", pageToken) }
        })
        let token = reply["next_page_token"]?.stringValue
        return ((reply["runs"]?.arrayValue ?? []).map(WireDecoding.run), (token ?? "").isEmpty ? nil : token)
    }

    /// Every run matching, following page tokens up to `limit` runs.
    public func searchAllRuns(experimentIDs: [String], filter: String? = nil, orderBy: [String] = [], limit: Int = 100_000, viewType: String = "ACTIVE_ONLY") async throws -> [Run] {
        var runs: [Run] = []
        var token: String?
        repeat {
            let page = try await searchRuns(experimentIDs: experimentIDs, filter: filter, orderBy: orderBy,
                                            maxResults: min(1000, limit - runs.count), pageToken: token, viewType: viewType)
            runs += page.runs
            token = page.nextPageToken
        } while token != nil && runs.count < limit
        return runs
    }

    public func metricHistory(runID: String, key: String) async throws -> [Metric] {
        var result: [Metric] = []
        var token: String?
        repeat {
            var query = [("run_id", runID), ("metric_key", key), ("max_results", "25000")]
            if let token { query.append(("page_token", token)) }
            let reply = try await mlflow("GET", "metrics/get-history", query: query)
            result += (reply["metrics"]?.arrayValue ?? []).compactMap(WireDecoding.metric)
            token = reply["next_page_token"]?.stringValue
        } while !(token ?? "").isEmpty
        return result
    }

    // MARK: Artifacts

    /// `mlflow-artifacts:/1/<run>/artifacts` + `relative` → the proxy path.
    static func proxyURLPath(artifactURI: String, relative: String) throws -> String {
        guard artifactURI.hasPrefix("mlflow-artifacts:") else {
            throw TrackingClientError.server(status: 400, code: "INVALID_PARAMETER_VALUE", message: "The run's artifact location '\(artifactURI)' is not served by the tracking server; only mlflow-artifacts:/ locations are supported.")
        }
        var rest = Substring(artifactURI.dropFirst("mlflow-artifacts:".count))
        if rest.hasPrefix("//"), let slash = rest.dropFirst(2).firstIndex(of: "/") { rest = rest[slash...] }
        while rest.hasPrefix("/") { rest = rest.dropFirst() }
        let path = relative.isEmpty ? String(rest) : String(rest) + "/" + relative
        return "/api/2.0/mlflow-artifacts/artifacts/" + path.split(separator: "/").map { percentEncodePathSegment(String($0)) }.joined(separator: "/")
    }

    public func uploadArtifact(artifactURI: String, path: String, contents: Data) async throws {
        let urlPath = try Self.proxyURLPath(artifactURI: artifactURI, relative: path)
        let (status, data) = try await send(method: "PUT", path: urlPath, body: Array(contents), contentType: "application/octet-stream")
        guard (200..<300).contains(status) else {
            let json = try? JSONValue.parse(Array(data))
            throw TrackingClientError.server(status: status, code: json?["error_code"]?.stringValue ?? "HTTP_\(status)",
                                             message: json?["message"]?.stringValue ?? "artifact upload of '\(path)' failed")
        }
    }

    public func downloadArtifact(artifactURI: String, path: String) async throws -> Data {
        let urlPath = try Self.proxyURLPath(artifactURI: artifactURI, relative: path)
        let (status, data) = try await send(method: "GET", path: urlPath)
        guard (200..<300).contains(status) else {
            let json = try? JSONValue.parse(Array(data))
            throw TrackingClientError.server(status: status, code: json?["error_code"]?.stringValue ?? "HTTP_\(status)",
                                             message: json?["message"]?.stringValue ?? "artifact '\(path)' could not be read")
        }
        return data
    }

    /// Every file below `path` of the run's artifacts (recursive), paths relative to the run root.
    public func listArtifacts(runID: String, path: String = "") async throws -> [(path: String, size: Int64)] {
        var query = [("run_id", runID)]
        if !path.isEmpty { query.append(("path", path)) }
        let reply = try await mlflow("GET", "artifacts/list", query: query)
        var result: [(path: String, size: Int64)] = []
        for file in reply["files"]?.arrayValue ?? [] {
            guard let filePath = file["path"]?.stringValue else { continue }
            if file["is_dir"]?.boolValue == true {
                result += try await listArtifacts(runID: runID, path: filePath)
            } else {
                result.append((filePath, file["file_size"]?.int64Value ?? 0))
            }
        }
        return result
    }

    // MARK: Cairn API

    /// `GET /api/cairn/v1/report`: the raw JSON answer.
    public func report(experimentIDs: [String]) async throws -> JSONValue {
        try await call("GET", "/api/cairn/v1/report", query: experimentIDs.map { ("experiment_id", $0) })
    }
}

private func formEncode(_ text: String) -> String {
    let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
}

private func percentEncodePathSegment(_ text: String) -> String {
    let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
}
