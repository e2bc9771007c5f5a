import CairnCore
import CairnServer
import CairnServices
import CairnStore
import CairnTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Route-level tests through the same router `cairn server` uses, on a real SQLite file.
@Suite("MLflow routes")
struct MLflowRoutesTests {
    typealias Reply = RouteReply

    func withApp(_ body: @escaping @Sendable (_ call: @escaping @Sendable (HTTPRequest.Method, String, String?) async throws -> Reply) async throws -> Void) async throws {
        try await withRouteApp(body)
    }

    static let api = "/api/2.0/mlflow"

    /// A new run in the Default experiment; its id.
    static func newRun(_ call: @Sendable (HTTPRequest.Method, String, String?) async throws -> RouteReply) async throws -> String {
        let created = try await call(.post, "\(api)/runs/create", #"{"experiment_id":"0"}"#)
        return try #require(((created.json["run"] as? [String: Any])?["info"] as? [String: Any])?["run_id"] as? String)
    }

    @Test("Create, get and get-by-name an experiment; an absent name is a 404 RESOURCE_DOES_NOT_EXIST")
    func experiments() async throws {
        try await withApp { call in
            let created = try await call(.post, "\(Self.api)/experiments/create", #"{"name":"exp one","tags":[{"key":"k","value":"v"}]}"#)
            #expect(created.status == 200)
            #expect(created.json["experiment_id"] as? String == "1")
            let got = try await call(.get, "\(Self.api)/experiments/get-by-name?experiment_name=exp%20one", nil)
            let experiment = got.json["experiment"] as? [String: Any]
            #expect(experiment?["name"] as? String == "exp one")
            #expect(experiment?["artifact_location"] as? String == "mlflow-artifacts:/1")
            let missing = try await call(.get, "\(Self.api)/experiments/get-by-name?experiment_name=nope", nil)
            #expect(missing.status == 404)
            #expect(missing.json["error_code"] as? String == "RESOURCE_DOES_NOT_EXIST")
            let duplicate = try await call(.post, "\(Self.api)/experiments/create", #"{"name":"exp one"}"#)
            #expect(duplicate.status == 400)
            #expect(duplicate.json["error_code"] as? String == "RESOURCE_ALREADY_EXISTS")
            let ajax = try await call(.get, "/ajax-api/2.0/mlflow/experiments/get?experiment_id=1", nil)
            #expect(ajax.status == 200)
            let bad = try await call(.get, "\(Self.api)/experiments/get?experiment_id=abc", nil)
            #expect(bad.status == 400)
            #expect(bad.json["error_code"] as? String == "INVALID_PARAMETER_VALUE")
        }
    }

    @Test("Runs: create, log NaN and infinities, read them back in protobuf JSON")
    func runsAndNonFinite() async throws {
        try await withApp { call in
            let created = try await call(.post, "\(Self.api)/runs/create", #"{"experiment_id":"0","start_time":"1700000000000","run_name":"r1"}"#)
            let info = (created.json["run"] as? [String: Any])?["info"] as? [String: Any]
            let id = try #require(info?["run_id"] as? String)
            #expect(id.count == 32)
            #expect(info?["artifact_uri"] as? String == "mlflow-artifacts:/0/\(id)/artifacts")
            #expect(info?["start_time"] as? Int == 1_700_000_000_000)
            #expect(info?["end_time"] == nil)
            let batch = """
                {"run_id":"\(id)","metrics":[{"key":"a","value":"NaN","timestamp":1,"step":0},
                 {"key":"b","value":"Infinity","timestamp":1},{"key":"c","value":"-Infinity","timestamp":1}],
                 "params":[{"key":"lr","value":"0.1"}]}
                """
            #expect(try await call(.post, "\(Self.api)/runs/log-batch", batch).text == "{}")
            let got = try await call(.get, "\(Self.api)/runs/get?run_id=\(id)", nil)
            #expect(got.text.contains(#""value":"NaN""#))
            #expect(got.text.contains(#""value":"Infinity""#))
            #expect(got.text.contains(#""value":"-Infinity""#))
            #expect(!got.text.contains("null"))
        }
    }

    @Test("Bad requests are answered with MLflow errors and change nothing")
    func badInput() async throws {
        try await withApp { call in
            let id = try await Self.newRun(call)
            let metrics = (0...1000).map { #"{"key":"m","value":1,"timestamp":1,"step":\#($0)}"# }.joined(separator: ",")
            let tooMany = try await call(.post, "\(Self.api)/runs/log-batch", #"{"run_id":"\#(id)","metrics":[\#(metrics)]}"#)
            #expect(tooMany.status == 400)
            #expect(tooMany.json["error_code"] as? String == "INVALID_PARAMETER_VALUE")
            let badKey = try await call(.post, "\(Self.api)/runs/log-batch",
                                        #"{"run_id":"\#(id)","metrics":[{"key":"ok","value":1,"timestamp":1},{"key":"bad!","value":1,"timestamp":1}]}"#)
            #expect(badKey.status == 400)
            let noTimestamp = try await call(.post, "\(Self.api)/runs/log-metric", #"{"run_id":"\#(id)","key":"m","value":1}"#)
            #expect(noTimestamp.status == 400)
            #expect((noTimestamp.json["message"] as? String)?.contains("timestamp") == true)
            let wrongType = try await call(.post, "\(Self.api)/runs/log-metric", #"{"run_id":"\#(id)","key":"m","value":1,"timestamp":1,"step":1.5}"#)
            #expect(wrongType.status == 400)
            #expect((wrongType.json["message"] as? String)?.contains("'step'") == true)
            let malformed = try await call(.post, "\(Self.api)/runs/log-metric", #"{"run_id": "#)
            #expect(malformed.status == 400)
            #expect(malformed.json["error_code"] as? String == "INVALID_PARAMETER_VALUE")
            let run = try await call(.get, "\(Self.api)/runs/get?run_id=\(id)", nil)
            #expect(((run.json["run"] as? [String: Any])?["data"] as? [String: Any])?["metrics"] == nil)
            let unknown = try await call(.get, "\(Self.api)/runs/get?run_id=0123456789abcdef0123456789abcdef", nil)
            #expect(unknown.status == 404)
            #expect(unknown.json["error_code"] as? String == "RESOURCE_DOES_NOT_EXIST")
            let route = try await call(.post, "\(Self.api)/nope", "{}")
            #expect(route.status == 404)
            #expect(route.json["error_code"] as? String == "ENDPOINT_NOT_FOUND")
            let token = try await call(.post, "\(Self.api)/runs/search", #"{"experiment_ids":["0"],"page_token":"garbage!"}"#)
            #expect(token.status == 400)
            let filter = try await call(.post, "\(Self.api)/runs/search", #"{"experiment_ids":["0"],"filter":"metrics.acc >"}"#)
            #expect(filter.status == 400)
            #expect(filter.json["error_code"] as? String == "INVALID_PARAMETER_VALUE")
        }
    }

    @Test("A field of the wrong JSON type is a 400 naming it in MLflow's words, on every route; nothing is converted or written")
    func wrongTypes() async throws {
        try await withApp { call in
            let id = try await Self.newRun(call)
            let hint = "See the API docs for more information about request parameters."
            let refused: [(String, String, String)] = [
                ("experiments/create", #"{"name":123}"#, "Invalid value 123 for parameter 'name' supplied:  Hint: Value was of type 'int'. \(hint)"),
                ("experiments/create", #"{"name":"x-typed","artifact_location":9.0}"#,
                 "Invalid value 9.0 for parameter 'artifact_location' supplied:  Hint: Value was of type 'float'. \(hint)"),
                ("runs/log-metric", #"{"run_id":31,"key":"m","value":1,"timestamp":1}"#,
                 "Invalid value 31 for parameter 'run_id' supplied:  Hint: Value was of type 'int'. \(hint)"),
                ("runs/set-tag", #"{"run_uuid":31,"key":"t","value":"v"}"#,
                 "Invalid value 31 for parameter 'run_id' supplied:  Hint: Value was of type 'int'. \(hint)"),
                ("runs/log-metric", #"{"run_id":"\#(id)","key":5,"value":1,"timestamp":1}"#,
                 "Invalid value 5 for parameter 'key' supplied:  Hint: Value was of type 'int'. \(hint)"),
                ("runs/log-metric", #"{"run_id":"\#(id)","key":"m","value":1,"timestamp":1,"step":"x"}"#,
                 #"Invalid value "x" for parameter 'step' supplied:  Hint: Value was of type 'str'. "# + hint),
                ("runs/log-parameter", #"{"run_id":"\#(id)","key":"p","value":true}"#,
                 "Invalid value true for parameter 'value' supplied:  Hint: Value was of type 'bool'. \(hint)"),
                ("runs/set-tag", #"{"run_id":"\#(id)","key":"t","value":["v"]}"#,
                 #"Invalid value ["v"] for parameter 'value' supplied:  Hint: Value was of type 'list'. "# + hint),
                ("runs/log-batch", #"{"run_id":"\#(id)","params":[{"key":"p","value":5}]}"#,
                 "Invalid value 5 for parameter 'params[0].value' supplied:  Hint: Value was of type 'int'. \(hint)"),
                ("runs/log-batch", #"{"run_id":"\#(id)","metrics":[{"key":"m","value":"x","timestamp":1}]}"#,
                 #"Invalid value "x" for parameter 'metrics[0].value' supplied:  Hint: Value was of type 'str'. "# + hint),
                ("runs/search", #"{"experiment_ids":[0]}"#,
                 "Invalid value 0 for parameter 'experiment_ids[0]' supplied:  Hint: Value was of type 'int'. \(hint)"),
                ("registered-models/create", #"{"name":{}}"#,
                 "Invalid value {} for parameter 'name' supplied:  Hint: Value was of type 'dict'. \(hint)"),
            ]
            for (route, body, message) in refused {
                let reply = try await call(.post, "\(Self.api)/\(route)", body)
                #expect(reply.status == 400, "\(route) \(body)")
                #expect(reply.json["error_code"] as? String == "INVALID_PARAMETER_VALUE")
                #expect(reply.json["message"] as? String == message, "\(route) \(body)")
            }
            // Decimal strings in number fields are protobuf JSON, and read.
            let strings = try await call(.post, "\(Self.api)/runs/log-metric", #"{"run_id":"\#(id)","key":"s","value":"2.5","timestamp":"7","step":"3"}"#)
            #expect(strings.status == 200)
            let run = try await call(.get, "\(Self.api)/runs/get?run_id=\(id)", nil)
            let data = (run.json["run"] as? [String: Any])?["data"] as? [String: Any]
            let metrics = data?["metrics"] as? [[String: Any]]
            #expect(metrics?.count == 1 && metrics?.first?["step"] as? Int == 3 && metrics?.first?["value"] as? Double == 2.5)
            let tags = (data?["tags"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String }
            #expect(data?["params"] == nil && !tags.contains("t"))
            let experiments = try await call(.get, "\(Self.api)/experiments/get-by-name?experiment_name=123", nil)
            #expect(experiments.status == 404)
            // A query-string bool is true or false.
            let flag = try await call(.get, "\(Self.api)/logged-models/m-0123?allow_deleted=yes", nil)
            #expect(flag.status == 400)
            #expect(flag.json["message"] as? String == "Invalid boolean value: yes, must be 'true' or 'false'.")
        }
    }

    @Test("MLflow's web app routes: upload-artifact refuses 10 MB and more in MLflow's words and writes nothing; ui-telemetry is off")
    func webAppRoutes() async throws {
        try await withApp { call in
            let id = try await Self.newRun(call)
            let upload = "/ajax-api/2.0/mlflow/upload-artifact?run_uuid=\(id)&path="
            let small = try await call(.post, upload + "a.txt", "hello")
            #expect(small.status == 200 && small.text.isEmpty)
            let big = try await call(.post, upload + "big.bin", String(repeating: "x", count: 10 * 1024 * 1024 + 1))
            #expect(big.status == 400)
            #expect(big.json["error_code"] as? String == "INVALID_PARAMETER_VALUE")
            #expect(big.json["message"] as? String == "Artifact size is too large. Max size is 10MB.")
            let listing = try await call(.get, "\(Self.api)/artifacts/list?run_id=\(id)", nil)
            #expect((listing.json["files"] as? [[String: Any]])?.compactMap { $0["path"] as? String } == ["a.txt"])
            let telemetry = try await call(.get, "/ajax-api/3.0/mlflow/ui-telemetry", nil)
            #expect(telemetry.json["disable_ui_telemetry"] as? Bool == true && telemetry.json["ui_rollout_percentage"] as? Int == 0)
            let records = try await call(.post, "/ajax-api/3.0/mlflow/ui-telemetry", #"{"records":[{"e":1}]}"#)
            #expect(records.json["status"] as? String == "disabled")
        }
    }

    @Test("An empty required string is missing, named at any depth, on the fast log-batch path too; nothing is written")
    func emptyRequiredStrings() async throws {
        try await withApp { call in
            let id = try await Self.newRun(call)
            let hint = "See the API docs for more information about request parameters."
            let cases: [(String, String, String)] = [
                ("runs/log-parameter", #"{"run_id":"\#(id)","key":"","value":"v"}"#, "key"),
                ("runs/log-batch", #"{"run_id":"\#(id)","params":[{"key":"","value":"v"}]}"#, "params[0].key"),
                ("runs/log-batch", #"{"run_id":"\#(id)","metrics":[{"key":"m","value":1,"timestamp":1},{"key":"","value":1,"timestamp":1}]}"#, "metrics[1].key"),
                ("runs/log-batch", #"{"run_id":"\#(id)","tags":[{"key":"","value":"v"}]}"#, "tags[0].key"),
                ("experiments/update", #"{"experiment_id":"0"}"#, "new_name"),
            ]
            for (route, body, field) in cases {
                let reply = try await call(.post, "\(Self.api)/\(route)", body)
                #expect(reply.status == 400, "\(body)")
                #expect(reply.json["message"] as? String == "Missing value for required parameter '\(field)'. \(hint)", "\(body)")
            }
            let run = try await call(.get, "\(Self.api)/runs/get?run_id=\(id)", nil)
            let data = (run.json["run"] as? [String: Any])?["data"] as? [String: Any]
            #expect(data?["metrics"] == nil && data?["params"] == nil)
        }
    }

    @Test("get-history-bulk-interval checks its fields in MLflow's words")
    func bulkIntervalChecks() async throws {
        try await withApp { call in
            let id = try await Self.newRun(call)
            let route = "\(Self.api)/metrics/get-history-bulk-interval?run_ids=\(id)"
            let hint = "See the API docs for more information about request parameters."
            let cases = [
                ("&metric_key=", "Missing value for required parameter 'metric_key'. \(hint)"),
                ("", "Missing value for required parameter 'metric_key'. \(hint)"),
                ("&metric_key=m&start_step=5", "If either start step or end step are specified, both must be specified."),
                ("&metric_key=m&start_step=5&end_step=2", "end_step must be greater than start_step. Found start_step=5 and end_step=2."),
                ("&metric_key=m&max_results=0", "max_results must be between 1 and 2500. \(hint)"),
            ]
            for (query, message) in cases {
                let reply = try await call(.get, route + query, nil)
                #expect(reply.status == 400, "\(query)")
                #expect(reply.json["message"] as? String == message, "\(query)")
            }
            let history = try await call(.get, "\(Self.api)/metrics/get-history?run_id=\(id)&metric_key=", nil)
            #expect(history.status == 400)
            #expect(history.json["message"] as? String == "Missing value for required parameter 'metric_key'. \(hint)")
        }
    }

    @Test("MLflow's web app helpers answer under /ajax-api only, as in MLflow")
    func ajaxHelpers() async throws {
        try await withApp { call in
            let id = try await Self.newRun(call)
            _ = try await call(.post, "\(Self.api)/runs/log-batch", #"{"run_id":"\#(id)","metrics":[{"key":"m","value":"NaN","timestamp":1,"step":0},{"key":"m","value":2,"timestamp":2,"step":1}]}"#)
            let bulk = try await call(.get, "/ajax-api/2.0/mlflow/metrics/get-history-bulk?run_id=\(id)&run_id=0123456789abcdef0123456789abcdef&metric_key=m", nil)
            #expect(bulk.status == 200)
            #expect(bulk.text == #"{"metrics":[{"key":"m","value":"NaN","timestamp":1,"step":0,"run_id":"\#(id)"},{"key":"m","value":2.0,"timestamp":2,"step":1,"run_id":"\#(id)"}]}"#)
            #expect(try await call(.get, "\(Self.api)/metrics/get-history-bulk?run_id=\(id)&metric_key=m", nil).status == 404)
            let datasets = try await call(.post, "/ajax-api/2.0/mlflow/experiments/search-datasets", #"{"experiment_ids":["0"]}"#)
            #expect(datasets.status == 200 && datasets.text == "{}")
            let none = try await call(.get, "/get-artifact?run_uuid=\(id)&path=absent.txt", nil)
            #expect(none.status == 404 && none.json["error_code"] as? String == "RESOURCE_DOES_NOT_EXIST")
            #expect(try await call(.get, "/get-artifact?run_uuid=\(id)", nil).status == 400)
        }
    }

    @Test("A log-batch body over 1 MiB is a 413 with an MLflow error body, and writes nothing")
    func bodyLimit() async throws {
        try await withApp { call in
            let id = try await Self.newRun(call)
            let padding = String(repeating: "x", count: 1_100_000)
            let big = try await call(.post, "\(Self.api)/runs/log-batch", #"{"run_id":"\#(id)","tags":[{"key":"t","value":"\#(padding)"}]}"#)
            #expect(big.status == 413)
            #expect(big.json["error_code"] as? String == "INVALID_PARAMETER_VALUE")
            let run = try await call(.get, "\(Self.api)/runs/get?run_id=\(id)", nil)
            #expect(!run.text.contains("xxxx"))
        }
    }

    @Test("A long history is written in chunks and comes back whole, exact and in order; pages cover it once")
    func longHistoryInChunks() async throws {
        try await withApp { call in
            let id = try await Self.newRun(call)
            // A long key and long values: about 330 bytes a point, so 3,000 points span many 64 KiB chunks.
            let key = "validation/" + String(repeating: "k", count: 230)
            func value(_ step: Int) -> String { step % 997 == 5 ? #""NaN""# : "\(Double(step) / 3 - 1e-7)" }
            for batch in 0..<3 {
                let metrics = (batch * 1000..<(batch + 1) * 1000).map {
                    #"{"key":"\#(key)","value":\#(value($0)),"timestamp":\#(1_700_000_000_000 + $0),"step":\#($0)}"#
                }
                #expect(try await call(.post, "\(Self.api)/runs/log-batch", #"{"run_id":"\#(id)","metrics":[\#(metrics.joined(separator: ","))]}"#).status == 200)
            }
            let whole = try await call(.get, "\(Self.api)/metrics/get-history?run_id=\(id)&metric_key=\(key)", nil)
            #expect(whole.status == 200)
            #expect(whole.text.utf8.count > 3 * 64 * 1024)
            let points = try #require(whole.json["metrics"] as? [[String: Any]])
            #expect(points.count == 3000)
            #expect(whole.json["next_page_token"] == nil)
            for (step, point) in points.enumerated() {
                #expect(point["step"] as? Int == step)
                #expect(point["timestamp"] as? Int == 1_700_000_000_000 + step)
                #expect(point["key"] as? String == key)
            }
            // Values compared as text parsed by Swift: JSONSerialization rounds some doubles.
            let values = whole.text.matches(of: /"value":([^,]+),"timestamp"/).map { String($0.output.1) }
            #expect(values.count == 3000)
            let wrong = values.enumerated().filter { step, text in
                step % 997 == 5 ? text != #""NaN""# : Double(text) != Double(step) / 3 - 1e-7
            }
            #expect(wrong.isEmpty, "\(wrong.count) values differ, first: \(wrong.first.map { "\($0)" } ?? "")")
            var steps: [Int] = []
            var token: String?
            repeat {
                let page = try await call(.get, "\(Self.api)/metrics/get-history?run_id=\(id)&metric_key=\(key)&max_results=1100"
                                          + (token.map { "&page_token=\($0)" } ?? ""), nil)
                steps += (page.json["metrics"] as? [[String: Any]] ?? []).compactMap { $0["step"] as? Int }
                token = page.json["next_page_token"] as? String
            } while token != nil && steps.count < 10_000
            #expect(steps.count == 3000 && steps == Array(0..<3000), "pages gave \(steps.count) steps")
            let none = try await call(.get, "\(Self.api)/metrics/get-history?run_id=\(id)&metric_key=absent", nil)
            #expect(none.text == #"{"metrics":[]}"#)
            let unknown = try await call(.get, "\(Self.api)/metrics/get-history?run_id=\(String(repeating: "0", count: 32))&metric_key=\(key)", nil)
            #expect(unknown.status == 404)
            #expect(unknown.json["error_code"] as? String == "RESOURCE_DOES_NOT_EXIST")
        }
    }

    @Test("Health, version and server-info answer")
    func operational() async throws {
        try await withApp { call in
            #expect(try await call(.get, "/health", nil).text == "OK")
            #expect(try await call(.get, "/version", nil).text == mlflowCompatibleVersion)
            let info = try await call(.get, "/api/3.0/mlflow/server-info", nil)
            #expect(info.json["store_type"] as? String == "SqlStore")
        }
    }
}

@Suite("Server start-up")
struct ServerStartupTests {
    @Test("An unusable data directory is refused with a message naming the path")
    func unusableDataDirectory() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.file("plain-file")
        #expect(FileManager.default.createFile(atPath: file, contents: Data("x".utf8)))
        let configuration = CairnServerConfiguration(dataDirectory: file + "/data")
        #expect {
            _ = try openTrackingStore(configuration)
        } throws: { error in
            "\(error)".contains("'\(file)' is a file, not a folder")
        }
    }

    @Test("The backend store URI accepts sqlite URIs and plain paths, and refuses other schemes")
    func backendStoreURI() throws {
        var configuration = CairnServerConfiguration(dataDirectory: "/d")
        #expect(try configuration.databasePath() == "/d/cairn.sqlite")
        configuration.backendStoreURI = "sqlite:////abs/x.sqlite"
        #expect(try configuration.databasePath() == "/abs/x.sqlite")
        configuration.backendStoreURI = "sqlite:///rel/x.sqlite"
        #expect(try configuration.databasePath() == "rel/x.sqlite")
        configuration.backendStoreURI = "rel/y.sqlite"
        #expect(try configuration.databasePath() == "rel/y.sqlite")
        configuration.backendStoreURI = "postgresql://h/db"
        #expect(throws: ConfigurationError.self) { try configuration.databasePath() }
        configuration.backendStoreURI = "sqlite:///"
        #expect(throws: ConfigurationError.self) { try configuration.databasePath() }
    }
}
