import CairnTestSupport
import Foundation
import Hummingbird
import Testing

/// A random JSON value: right and wrong types, edge numbers, long and odd strings, nesting.
private func randomJSON(_ rng: inout SeededGenerator, depth: Int = 0) -> String {
    let scalars = ["null", "true", "false", "0", "-1", "1e308", "-1e999", "3.5", "9223372036854775808", "\"\"", "\"a\"",
                   "\"0\"", "\"-1\"", "\"NaN\"", "\"../../etc/passwd\"", "\"metrics.m > 0\"", "\"\\u0000\"", "\"é🙂\"",
                   "\"" + String(repeating: "x", count: 300) + "\"", "\"00000000000000000000000000000000\""]
    if depth > 3 || Int.random(in: 0..<3, using: &rng) > 0 { return scalars.randomElement(using: &rng)! }
    if Bool.random(using: &rng) {
        return "[" + (0..<Int.random(in: 0...3, using: &rng)).map { _ in randomJSON(&rng, depth: depth + 1) }.joined(separator: ",") + "]"
    }
    return randomObject(&rng, depth: depth + 1)
}

private let fieldNames = ["experiment_id", "experiment_ids", "run_id", "run_uuid", "name", "key", "value", "timestamp", "step",
                          "metrics", "params", "tags", "filter", "max_results", "order_by", "page_token", "run_view_type",
                          "start_time", "end_time", "status", "artifact_location", "version", "alias", "source", "datasets",
                          "model_id", "new_name", "description", "stage", "path"]

private func randomObject(_ rng: inout SeededGenerator, depth: Int = 0) -> String {
    "{" + (0..<Int.random(in: 0...6, using: &rng)).map { _ in
        "\"\(fieldNames.randomElement(using: &rng)!)\":\(randomJSON(&rng, depth: depth))"
    }.joined(separator: ",") + "}"
}

@Suite("Request decoding fuzz")
struct RequestFuzzTests {
    private static let endpoints: [(HTTPRequest.Method, String)] = [
        (.post, "experiments/create"), (.post, "experiments/search"), (.post, "experiments/update"), (.post, "experiments/set-experiment-tag"),
        (.post, "runs/create"), (.post, "runs/update"), (.post, "runs/log-metric"), (.post, "runs/log-parameter"), (.post, "runs/set-tag"),
        (.post, "runs/log-batch"), (.post, "runs/search"), (.post, "runs/log-inputs"), (.post, "runs/delete"),
        (.post, "registered-models/create"), (.post, "registered-models/search"), (.post, "model-versions/create"),
        (.post, "registered-models/alias"), (.post, "logged-models"), (.post, "logged-models/search"),
    ]

    @Test("Fuzz: random JSON bodies to the MLflow endpoints get an answer below 500, never a crash")
    func fuzzBodies() async throws {
        let iterations = max(200, (Int(ProcessInfo.processInfo.environment["CAIRN_FUZZ_ITERATIONS"] ?? "") ?? 3000) / 6)
        try await withRouteApp { call in
            // A real experiment and run, so that some random requests reach the store.
            let run = try await call(.post, "/api/2.0/mlflow/runs/create", #"{"experiment_id":"0"}"#)
            let runID = ((run.json["run"] as? [String: Any])?["info"] as? [String: Any])?["run_id"] as? String ?? ""
            var rng = SeededGenerator(seed: 0xF022_2026)
            for iteration in 0..<iterations {
                let (method, path) = Self.endpoints.randomElement(using: &rng)!
                var body = randomObject(&rng)
                if Int.random(in: 0..<4, using: &rng) == 0 {
                    body = body.replacingOccurrences(of: "\"00000000000000000000000000000000\"", with: "\"\(runID)\"")
                }
                if Int.random(in: 0..<10, using: &rng) == 0 { body = String(body.dropLast(Int.random(in: 1...3, using: &rng))) }
                let reply = try await call(method, "/api/2.0/mlflow/" + path, body)
                #expect(reply.status < 500, "iteration \(iteration): \(path) \(body) → \(reply.status) \(reply.text)")
                #expect(reply.status == 200 || reply.json["error_code"] is String, "iteration \(iteration): \(path) \(body) → \(reply.text)")
            }
        }
    }
}
