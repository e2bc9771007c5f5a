import CairnCore
import Foundation
import NIOCore

/// The MLflow REST calls of ../shared/bench/trackbench.py, with the same bodies (keys, steps,
/// batch shapes, names, filters), so figures of the two tools are comparable.
enum MLflowAPI {
    static let prefix = "/api/2.0/mlflow"
    static let ajaxPrefix = "/ajax-api/2.0/mlflow"

    static func post(_ path: String, _ body: String) -> LoadRequest {
        LoadRequest(method: .POST, uri: prefix + path, body: ByteBuffer(string: body))
    }

    /// A JSON string literal (quotes and escapes) for `text`.
    static func quoted(_ text: String) -> String {
        var writer = JSONWriter(capacity: text.utf8.count + 2)
        writer.string(text)
        return writer.string
    }

    static func keyValues(_ pairs: [(String, String)]) -> String {
        "[" + pairs.map { "{\"key\": \(quoted($0.0)), \"value\": \(quoted($0.1))}" }.joined(separator: ", ") + "]"
    }

    static func createExperiment(name: String) -> LoadRequest {
        post("/experiments/create", "{\"name\": \(quoted(name))}")
    }

    static func createRun(experimentID: String, name: String, startTime: Int64, tags: [(String, String)] = []) -> LoadRequest {
        var body = "{\"experiment_id\": \(quoted(experimentID)), \"start_time\": \(startTime), \"run_name\": \(quoted(name))"
        if !tags.isEmpty { body += ", \"tags\": \(keyValues(tags))" }
        return post("/runs/create", body + "}")
    }

    /// trackbench's metric_batch_body: for each step, one point per key, in that order.
    static func logBatch(runID: String, keys: [String], steps: Range<Int>, timestamp: Int64, random: inout SplitMix64) -> LoadRequest {
        var json = JSONWriter(capacity: 64 + steps.count * keys.count * 80)
        json.raw("{\"run_id\": ")
        json.string(runID)
        json.raw(", \"metrics\": [")
        var first = true
        for step in steps {
            for key in keys {
                if !first { json.raw(", ") }
                first = false
                json.raw("{\"key\": ")
                json.string(key)
                json.raw(", \"value\": ")
                json.double(random.nextUnit())
                json.raw(", \"timestamp\": ")
                json.int(timestamp)
                json.raw(", \"step\": ")
                json.int(Int64(step))
                json.raw("}")
            }
        }
        json.raw("]}")
        return LoadRequest(method: .POST, uri: prefix + "/runs/log-batch", body: ByteBuffer(bytes: json.bytes))
    }

    static func logMetric(runID: String, key: String, value: Double, timestamp: Int64, step: Int) -> LoadRequest {
        post("/runs/log-metric", "{\"run_id\": \(quoted(runID)), \"key\": \(quoted(key)), \"value\": \(value), \"timestamp\": \(timestamp), \"step\": \(step)}")
    }

    static func query(_ items: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return items.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)" }.joined(separator: "&")
    }

    static func getHistory(runID: String, key: String, maxResults: Int?, pageToken: String?) -> LoadRequest {
        var items = [("run_id", runID), ("metric_key", key)]
        if let maxResults { items.append(("max_results", String(maxResults))) }
        if let pageToken { items.append(("page_token", pageToken)) }
        return LoadRequest(method: .GET, uri: prefix + "/metrics/get-history?" + query(items), body: nil)
    }

    static func bulkInterval(runID: String, key: String, maxResults: Int) -> LoadRequest {
        LoadRequest(method: .GET, uri: ajaxPrefix + "/metrics/get-history-bulk-interval?"
            + query([("run_ids", runID), ("metric_key", key), ("max_results", String(maxResults))]), body: nil)
    }

    /// A string field of a JSON answer, e.g. `experiment_id`, or `run.info.run_id` as ["run", "info", "run_id"].
    static func field(_ path: [String], in body: ByteBuffer) -> String? {
        guard var current = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) else { return nil }
        for key in path {
            guard let object = current as? [String: Any], let next = object[key] else { return nil }
            current = next
        }
        return current as? String
    }

    /// The string value of the last `"name": "..."` in a JSON answer, found without parsing the
    /// rest (a 25,000-point history page is megabytes; its page token is one field). Nil when absent
    /// or not a plain string (escapes are not expected in tokens).
    static func lastString(named name: String, in body: ByteBuffer) -> String? {
        let needle = Array("\"\(name)\"".utf8)
        return body.withUnsafeReadableBytes { bytes -> String? in
            // From the end: the token follows the points in the answers of both servers.
            var at = bytes.count - needle.count
            while at >= 0, !needle.indices.allSatisfy({ bytes[at + $0] == needle[$0] }) { at -= 1 }
            guard at >= 0 else { return nil }
            var index = at + needle.count
            func skipSpaces() { while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A { index += 1 } }
            skipSpaces()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
            index += 1
            skipSpaces()
            guard index < bytes.count, bytes[index] == 0x22 else { return nil }
            let start = index + 1
            var end = start
            while end < bytes.count, bytes[end] != 0x22, bytes[end] != 0x5C { end += 1 }
            guard end < bytes.count, bytes[end] == 0x22 else { return nil }
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        }
    }

    static func nowMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

extension SplitMix64 {
    /// A value in [0, 1) with 53 random bits.
    mutating func nextUnit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

// MARK: - workloads

/// experiments/create once (one connection, one operation).
struct CreateExperiment: Workload {
    var name: String
    var keepsBodies: Bool { true }
    func request(connection: Int, operation: Int) -> LoadRequest { MLflowAPI.createExperiment(name: name) }
}

/// runs/create, run names as trackbench's ("r<i>", "ingest-<i>"), numbered across connections.
struct CreateRuns: Workload {
    var experimentID: String
    var namePrefix: String
    var connections: Int
    var keepsBodies: Bool
    func request(connection: Int, operation: Int) -> LoadRequest {
        MLflowAPI.createRun(experimentID: experimentID, name: "\(namePrefix)\(operation * connections + connection)",
                            startTime: MLflowAPI.nowMilliseconds())
    }
}

/// runs/log-batch: each connection logs to its own run; operation i holds steps
/// [i × steps, (i+1) × steps) × keys (s2: 10 keys × 100 steps = 1,000 points; writers: 10 keys × 1 step).
struct LogBatches: Workload {
    var runIDs: [String]
    var keys: [String]
    var stepsPerRequest: Int
    var timestamp: Int64
    var seed: UInt64
    func request(connection: Int, operation: Int) -> LoadRequest {
        var random = SplitMix64(seed: seed &+ UInt64(connection) &* 1_000_003 &+ UInt64(operation))
        let first = operation * stepsPerRequest
        return MLflowAPI.logBatch(runID: runIDs[connection % runIDs.count], keys: keys, steps: first..<(first + stepsPerRequest),
                                  timestamp: timestamp + Int64(operation), random: &random)
    }
}

/// runs/log-metric, one point per request (s3): "loss" = 1 / (i + 1) at step i.
struct LogMetrics: Workload {
    var runIDs: [String]
    var timestamp: Int64
    func request(connection: Int, operation: Int) -> LoadRequest {
        MLflowAPI.logMetric(runID: runIDs[connection % runIDs.count], key: "loss", value: 1.0 / Double(operation + 1),
                            timestamp: timestamp + Int64(operation), step: operation)
    }
}

/// metrics/get-history of one series, following next_page_token: one operation is the whole read.
struct ReadHistory: Workload {
    var runID: String
    var key: String
    var maxResults: Int?
    func request(connection: Int, operation: Int) -> LoadRequest {
        MLflowAPI.getHistory(runID: runID, key: key, maxResults: maxResults, pageToken: nil)
    }
    func followUp(connection: Int, operation: Int, after body: ByteBuffer) -> LoadRequest? {
        guard let token = MLflowAPI.lastString(named: "next_page_token", in: body), !token.isEmpty else { return nil }
        return MLflowAPI.getHistory(runID: runID, key: key, maxResults: maxResults, pageToken: token)
    }
}

/// get-history-bulk-interval (the chart's sampled read), as trackbench calls it on the ajax prefix.
struct ReadBulkInterval: Workload {
    var runID: String
    var key: String
    var maxResults: Int
    func request(connection: Int, operation: Int) -> LoadRequest {
        MLflowAPI.bulkInterval(runID: runID, key: key, maxResults: maxResults)
    }
}

/// s5's population: a run (tag "team") and then one log-batch with 5 params, 5 metrics and 2 tags,
/// as trackbench's populate(); one operation is both requests.
struct PopulateRuns: Workload {
    static let learningRates = ["0.1", "0.01", "0.001", "0.0001"]
    var experimentID: String
    var connections: Int
    var seed: UInt64

    private func index(_ connection: Int, _ operation: Int) -> Int { operation * connections + connection }

    func request(connection: Int, operation: Int) -> LoadRequest {
        let i = index(connection, operation)
        return MLflowAPI.createRun(experimentID: experimentID, name: "run-\(i)", startTime: MLflowAPI.nowMilliseconds(),
                                   tags: [("team", ["a", "b", "c"][i % 3])])
    }

    func followUp(connection: Int, operation: Int, after body: ByteBuffer) -> LoadRequest? {
        guard let runID = MLflowAPI.field(["run", "info", "run_id"], in: body) else { return nil }
        return Self.populateBatch(runID: runID, index: index(connection, operation), seed: seed)
    }

    static func populateBatch(runID: String, index i: Int, seed: UInt64) -> LoadRequest {
        var random = SplitMix64(seed: seed &+ UInt64(i))
        let learningRate = learningRates[Int(random.next() % 4)]
        let accuracy = random.nextUnit()
        let timestamp = MLflowAPI.nowMilliseconds()
        let params = MLflowAPI.keyValues([("lr", learningRate), ("batch_size", String([16, 32, 64, 128][i % 4])),
                                          ("optimizer", ["adam", "sgd"][i % 2]), ("layers", String(2 + i % 6)), ("seed", String(i))])
        let values: [(String, Double)] = [("acc", accuracy), ("loss", 1 - accuracy), ("f1", random.nextUnit()),
                                          ("precision", random.nextUnit()), ("recall", random.nextUnit())]
        let metrics = values.map { "{\"key\": \"\($0.0)\", \"value\": \($0.1), \"timestamp\": \(timestamp), \"step\": 10}" }
        let tags = MLflowAPI.keyValues([("dataset", "ds-\(i % 10)"), ("stage", ["dev", "prod"][i % 2])])
        return MLflowAPI.post("/runs/log-batch",
                              "{\"run_id\": \(MLflowAPI.quoted(runID)), \"params\": \(params), \"metrics\": [\(metrics.joined(separator: ", "))], \"tags\": \(tags)}")
    }
}

/// runs/search with a fixed body (s5: filtered + ordered max 100, unfiltered by start time max 1000).
struct SearchRuns: Workload {
    var body: String
    func request(connection: Int, operation: Int) -> LoadRequest { MLflowAPI.post("/runs/search", body) }

    static func filtered(experimentID: String) -> SearchRuns {
        SearchRuns(body: "{\"experiment_ids\": [\(MLflowAPI.quoted(experimentID))], \"filter\": \"metrics.acc > 0.5 and params.lr = '0.01'\", "
            + "\"order_by\": [\"metrics.acc DESC\"], \"max_results\": 100, \"run_view_type\": \"ACTIVE_ONLY\"}")
    }

    static func unfiltered(experimentID: String) -> SearchRuns {
        SearchRuns(body: "{\"experiment_ids\": [\(MLflowAPI.quoted(experimentID))], \"order_by\": [\"attributes.start_time DESC\"], "
            + "\"max_results\": 1000, \"run_view_type\": \"ACTIVE_ONLY\"}")
    }
}
