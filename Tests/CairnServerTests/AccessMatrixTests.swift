import CairnCore
@testable import CairnServer
import CairnServices
import CairnTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Every JSON endpoint the router mounts (MLflow 2.0 and 3.0, the UI's ajax routes, Cairn's API)
/// with the artifact proxy and the trace download, called by every kind of caller with accounts on: nobody, a user with
/// no grant, READ, EDIT, MANAGE, an administrator, an expired token, a revoked token and a
/// read-only token of a manager. Each answer must be what the endpoint's rule says: 401
/// `UNAUTHENTICATED` without usable credentials, 403 `PERMISSION_DENIED` below the level (404 for
/// an unreadable experiment looked up by name), anything but those at or above it; and a refused
/// request must change nothing: the audit log, which records every change, gains only the
/// refusal itself (`auth.sign_in_failed`, `access.denied`).
@Suite("Access matrix: every route × every kind of caller")
struct AccessMatrixTests {
    /// What a rule asks of a caller in this world (every resource named exists and belongs to
    /// the one experiment the users are granted on).
    enum Need: Equatable {
        case open, signedIn, admin
        case level(Permission)
        /// READ on an experiment named in the request: refused as "not found".
        case readByName
    }

    static func need(_ rule: AccessRule) -> Need {
        switch rule {
        case .open: return .open
        case .signedIn: return .signedIn
        case .admin: return .admin
        case .experimentName(let level, _): return level == .read ? .readByName : .level(level)
        case .experiment(let level, _), .run(let level, _), .registeredModel(let level, _), .loggedModel(let level, _),
             .artifactPath(let level, _), .trace(let level, _), .dataset(let level, _), .experimentsNamed(let level, _):
            return .level(level)
        case .storeWide: return .level(.read)
        case .all(let rules):
            let needs = rules.map(need)
            if needs.contains(.admin) { return .admin }
            let highest = needs.compactMap { if case .level(let p) = $0 { p } else { nil } }.max { $0.rank < $1.rank }
            if let highest { return .level(highest) }
            if needs.contains(.readByName) { return .readByName }
            return needs.contains(.signedIn) ? .signedIn : .open
        }
    }

    enum Caller: String, CaseIterable {
        case anonymous, noGrant, read, edit, manage, admin, expiredToken, revokedToken, readOnlyToken

        /// nil: the caller cannot sign in (401 everywhere but open routes).
        var level: Permission?? {
            switch self {
            case .anonymous, .expiredToken, .revokedToken: return .none
            case .noGrant: return .some(nil)
            case .read, .readOnlyToken: return .some(.read)
            case .edit: return .some(.edit)
            case .manage: return .some(.manage)
            case .admin: return .some(.manage)
            }
        }
    }

    /// The status class a caller must get for a need: 401, 403, 404 (hidden), or nil for "not
    /// refused" (any status but 401 and 403: bodies here are not always valid).
    static func expected(_ need: Need, _ caller: Caller) -> Int? {
        guard case .some(let granted) = caller.level else { return need == .open ? nil : 401 }
        if caller == .admin { return nil }
        switch need {
        case .open, .signedIn: return nil
        case .admin: return 403
        case .readByName: return granted?.canRead == true ? nil : 404
        case .level(let level):
            if caller == .readOnlyToken && level.rank > Permission.read.rank { return 403 }
            return (granted?.allows(level) ?? false) ? nil : 403
        }
    }

    /// A change a caller is allowed to make may delete or rename the world's resources; it is
    /// not sent (the compat suite's matrix checks allowed changes on representative routes).
    static func isDestructive(_ method: String, _ path: String) -> Bool {
        method == "DELETE" || ["delete", "restore", "rename", "purge", "remove", "update-admin"].contains { path.contains($0) }
    }

    @Test("Only creations and filtered lists are open to every signed-in user; every other route needs a grant or administrator rights")
    func signedInRoutes() {
        let open = [("mlflow", AccessRules.mlflow), ("v3", AccessRules.mlflowV3), ("cairn", AccessRules.cairn)].flatMap { name, table in
            table.filter { $0.value == .signedIn || $0.value == .open }.map { "\(name) \($0.key)" }
        }
        #expect(Set(open) == [
            // Creations: the creator then manages what they made.
            "mlflow POST experiments/create", "mlflow POST registered-models/create",
            // Lists filtered to what the caller may read (VisibleResources).
            "mlflow POST experiments/search", "mlflow GET experiments/search", "mlflow GET registered-models/search",
            "mlflow GET model-versions/search", "cairn GET experiments", "cairn GET model-versions/runs",
            // What the caller may do on the resources named (the UI hides what would be refused).
            "cairn GET permissions",
        ])
    }

    @Test("Every route answers every kind of caller as its access rule says, and a refused request changes nothing")
    func matrix() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var configuration = CairnServerConfiguration(dataDirectory: directory.path)
        configuration.auth = AuthSettings(isEnabled: true, defaultPermission: .noPermissions)
        // Hundreds of refused tokens from one address: not slowed down here (AccountServiceTests test that).
        configuration.auth.freeFailedSignIns = (.max, .max)
        configuration.bcryptCost = 4
        configuration.webhooksAllowPrivate = true
        let services = try openServices(configuration)
        let accounts = services.accounts
        let password = "matrix-password-1"
        _ = try await accounts.createUser(name: "root", password: password, isAdmin: true)
        for name in ["nogrant", "reader", "editor", "manager"] { _ = try await accounts.createUser(name: name, password: password) }
        let app = Application(router: buildRouter(services: services))

        try await app.test(.router) { client in
            func basic(_ user: String) -> String { "Basic " + Data("\(user):\(password)".utf8).base64EncodedString() }
            func send(_ method: String, _ uri: String, _ body: String?, _ authorization: String?) async throws -> (Int, [String: Any]) {
                var headers: HTTPFields = [.contentType: "application/json"]
                if let authorization { headers[.authorization] = authorization }
                return try await client.execute(uri: uri, method: HTTPRequest.Method(method)!, headers: headers,
                                                body: body.map { ByteBuffer(string: $0) }) { response in
                    let object = (try? JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8))) as? [String: Any] ?? [:]
                    return (Int(response.status.code), object)
                }
            }
            let admin = basic("root")
            func create(_ method: String, _ uri: String, _ body: String) async throws -> [String: Any] {
                let (status, reply) = try await send(method, uri, body, admin)
                #expect(status == 200, "\(uri): \(reply)")
                return reply
            }

            // The world: one experiment with a run, a registered model with a version, a logged
            // model, a trace with an assessment, an evaluation dataset and a saved view.
            let v2 = "/api/2.0/mlflow", v3 = "/api/3.0/mlflow"
            let experiment = try #require(try await create("POST", "\(v2)/experiments/create", #"{"name":"matrix"}"#)["experiment_id"] as? String)
            let created = try await create("POST", "\(v2)/runs/create", #"{"experiment_id":"\#(experiment)"}"#)
            let run = try #require(((created["run"] as? [String: Any])?["info"] as? [String: Any])?["run_id"] as? String)
            _ = try await create("POST", "\(v2)/registered-models/create", #"{"name":"matrix-model"}"#)
            _ = try await create("POST", "\(v2)/model-versions/create", #"{"name":"matrix-model","source":"runs:/\#(run)/model","run_id":"\#(run)"}"#)
            let logged = try await create("POST", "\(v2)/logged-models", #"{"experiment_id":"\#(experiment)","name":"lm"}"#)
            let loggedModel = try #require(((logged["model"] as? [String: Any])?["info"] as? [String: Any])?["model_id"] as? String)
            let trace = "tr-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            _ = try await create("POST", "\(v3)/traces", #"""
                {"trace":{"trace_info":{"trace_id":"\#(trace)","trace_location":{"type":"MLFLOW_EXPERIMENT","mlflow_experiment":{"experiment_id":"\#(experiment)"}},"request_time":"2026-01-01T00:00:00Z","state":"OK"}}}
                """#)
            let assessment = try await create("POST", "\(v3)/traces/\(trace)/assessments", #"""
                {"assessment":{"trace_id":"\#(trace)","assessment_name":"quality","source":{"source_type":"HUMAN","source_id":"root"},"feedback":{"value":1}}}
                """#)
            let assessmentID = try #require((assessment["assessment"] as? [String: Any])?["assessment_id"] as? String)
            let dataset = try await create("POST", "\(v3)/datasets/create", #"{"name":"matrix-ds","experiment_ids":["\#(experiment)"]}"#)
            let datasetID = try #require((dataset["dataset"] as? [String: Any])?["dataset_id"] as? String)
            let view = try await create("POST", "/api/cairn/v1/experiments/\(experiment)/views", #"{"name":"v","state":"{}"}"#)
            let viewID = try #require((view["view"] as? [String: Any])?["view_id"] as? String)
            let webhook = try await create("POST", "\(v2)/webhooks", #"{"name":"w","url":"http://127.0.0.1:9/hook","events":[{"entity":"registered_model","action":"created"}]}"#)
            let webhookID = try #require((webhook["webhook"] as? [String: Any])?["webhook_id"] as? String)

            for (user, level) in [("reader", Permission.read), ("editor", .edit), ("manager", .manage)] {
                try await accounts.setGrant(PermissionGrant(user: user, resourceType: .experiment, resourceID: experiment, permission: level))
                try await accounts.setGrant(PermissionGrant(user: user, resourceType: .registeredModel, resourceID: "matrix-model", permission: level))
            }
            let expired = try await accounts.createToken(user: "editor", name: "expired", expiresAfterMillis: 1, readOnly: false).secret
            let revoked = try await accounts.createToken(user: "editor", name: "revoked", expiresAfterMillis: nil, readOnly: false)
            _ = try await accounts.revokeToken(id: revoked.token.id)
            let readOnly = try await accounts.createToken(user: "manager", name: "ro", expiresAfterMillis: nil, readOnly: true).secret
            try await Task.sleep(for: .milliseconds(20))  // past the expired token's own 1 ms lifetime

            let authorization: [Caller: String?] = [
                .anonymous: nil, .noGrant: basic("nogrant"), .read: basic("reader"), .edit: basic("editor"), .manage: basic("manager"),
                .admin: admin, .expiredToken: "Bearer " + expired, .revokedToken: "Bearer " + revoked.secret, .readOnlyToken: "Bearer " + readOnly,
            ]
            let pathValues = [
                "experiment_id": experiment, "run_id": run, "trace_id": trace, "assessment_id": assessmentID, "dataset_id": datasetID,
                "view_id": viewID, "model_id": loggedModel, "webhook_id": webhookID, "key": "k", "tag_key": "k",
            ]
            // Every field a rule reads, naming the world's resources.
            let scalars = [
                "experiment_id": experiment, "run_id": run, "run_uuid": run, "name": "matrix-model", "model_id": loggedModel,
                "trace_id": trace, "dataset_id": datasetID, "experiment_name": "matrix", "key": "k", "value": "v", "version": "1",
                "alias": "a", "path": "\(experiment)/\(run)/artifacts",
            ]
            let lists = ["experiment_ids": [experiment], "run_ids": [run], "trace_ids": [trace]]
            var json = scalars.map { "\"\($0.key)\":\"\($0.value)\"" } + lists.map { "\"\($0.key)\":[\"\($0.value[0])\"]" }
            json.append(#""locations":[{"mlflow_experiment":{"experiment_id":"\#(experiment)"}}]"#)
            json.append(#""trace":{"trace_info":{"trace_id":"\#(trace)","trace_location":{"mlflow_experiment":{"experiment_id":"\#(experiment)"}},"request_time":"2026-01-01T00:00:00Z","state":"OK"}}"#)
            let body = "{" + json.joined(separator: ",") + "}"
            let query = (scalars.map { "\($0.key)=\($0.value)" } + lists.map { "\($0.key)=\($0.value[0])" }).joined(separator: "&")
                .addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed)!

            var routes: [(method: String, uri: String, need: Need)] = []
            for group in endpointGroups(services: services) {
                for endpoint in group.endpoints {
                    let path = endpoint.path.split(separator: "/").map { $0.hasPrefix(":") ? pathValues[String($0.dropFirst())] ?? "x" : String($0) }
                        .joined(separator: "/")
                    for method in endpoint.methods {
                        let need = Self.need(AccessRules.rule(group.rules, method: method, path: endpoint.path))
                        routes += group.prefixes.map { (method, "/\($0)/\(path)", need) }
                    }
                }
            }
            // The artifact proxy, checked by the experiment at the head of its path.
            let proxy = "/api/2.0/mlflow-artifacts/artifacts/\(experiment)/\(run)/artifacts/m.txt"
            routes += [("GET", proxy, .level(.read)), ("PUT", proxy, .level(.edit)), ("DELETE", proxy, .level(.manage)),
                       ("GET", "/api/2.0/mlflow-artifacts/artifacts?path=\(experiment)/\(run)", .level(.read)),
                       // A trace's spans as the web app downloads them.
                       ("GET", "/ajax-api/2.0/mlflow/get-trace-artifact?request_id=\(trace)", .level(.read)),
                       ("GET", "/ajax-api/3.0/mlflow/get-trace-artifact?request_id=\(trace)", .level(.read))]
            #expect(routes.count > 200, "the router mounts every API twice or more: \(routes.count) routes")

            func auditEvents() async throws -> Int {
                let (status, reply) = try await send("GET", "/api/cairn/v1/audit?max_results=1", nil, admin)
                #expect(status == 200)
                return ((reply["events"] as? [[String: Any]])?.first?["seq"] as? Int) ?? 0
            }
            var failures: [String] = []
            var refused = 0
            for caller in Caller.allCases {
                for route in routes {
                    let expected = Self.expected(route.need, caller)
                    if expected == nil && Self.isDestructive(route.method, route.uri) { continue }
                    let hasBody = route.method != "GET"
                    let uri = hasBody || route.uri.contains("?") ? route.uri : route.uri + "?" + query
                    if let trace = ProcessInfo.processInfo.environment["CAIRN_MATRIX_TRACE"] {
                        try? "\(caller) \(route.method) \(uri)\n".write(toFile: trace, atomically: true, encoding: .utf8)
                    }
                    let before = expected != nil ? try await auditEvents() : 0
                    let (status, reply) = try await send(route.method, uri, hasBody ? body : nil, authorization[caller]!)
                    let code = reply["error_code"] as? String
                    if let expected {
                        refused += 1
                        let wanted = [401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "RESOURCE_DOES_NOT_EXIST"][expected]
                        if status != expected || code != wanted {
                            failures.append("\(caller) \(route.method) \(route.uri): \(status) \(code ?? "-"), expected \(expected)")
                        }
                        // Refused sign-ins and refused requests are events of their own; nothing else may be recorded.
                        let after = try await auditEvents()
                        var actions: [String] = []
                        if after != before {
                            let (_, page) = try await send("GET", "/api/cairn/v1/audit?max_results=\(after - before)", nil, admin)
                            actions = (page["events"] as? [[String: Any]] ?? []).compactMap { $0["action"] as? String }
                        }
                        if actions.contains(where: { !$0.hasPrefix("auth.") && $0 != "access.denied" }) {
                            failures.append("\(caller) \(route.method) \(route.uri): refused, yet recorded \(actions)")
                        }
                        if expected == 403 && !actions.contains("access.denied") {
                            failures.append("\(caller) \(route.method) \(route.uri): refused without an access.denied event")
                        }
                    } else if status == 401 || status == 403 {
                        failures.append("\(caller) \(route.method) \(route.uri): \(status) \(code ?? "-"), expected to be let through")
                    }
                }
            }
            #expect(refused > 500)
            #expect(failures.isEmpty, "\(failures.count) answers differ:\n\(failures.prefix(60).joined(separator: "\n"))")
        }
    }
}
