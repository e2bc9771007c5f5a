import Foundation
import NIOCore
import Testing
@testable import CairnLoad

private func json(_ request: LoadRequest) throws -> [String: Any] {
    let body = try #require(request.body)
    return try #require(try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any])
}

@Suite struct WorkloadTests {
    @Test func aLogBatchHoldsTrackbenchsThousandPointsStepByStepKeyByKey() throws {
        let workload = LogBatches(runIDs: ["run0", "run1"], keys: (0..<10).map { "m\($0)" }, stepsPerRequest: 100, timestamp: 1_700_000_000_000, seed: 7)
        let request = workload.request(connection: 1, operation: 3)
        #expect(request.method == .POST)
        #expect(request.uri == "/api/2.0/mlflow/runs/log-batch")
        let body = try json(request)
        #expect(body["run_id"] as? String == "run1")
        let metrics = try #require(body["metrics"] as? [[String: Any]])
        #expect(metrics.count == 1000)
        #expect(metrics[0]["key"] as? String == "m0" && metrics[0]["step"] as? Int == 300)
        #expect(metrics[9]["key"] as? String == "m9" && metrics[9]["step"] as? Int == 300)
        #expect(metrics[10]["key"] as? String == "m0" && metrics[10]["step"] as? Int == 301)
        #expect(metrics[999]["step"] as? Int == 399)
        #expect(metrics.allSatisfy { ($0["timestamp"] as? Int) == 1_700_000_000_003 })
        #expect(metrics.allSatisfy { (($0["value"] as? Double) ?? -1) >= 0 && (($0["value"] as? Double) ?? 1) < 1 })
        // The same connection, operation and seed give the same body.
        #expect(workload.request(connection: 1, operation: 3).body == request.body)
    }

    @Test func aLogMetricIsOnePointOfLossAtItsStep() throws {
        let body = try json(LogMetrics(runIDs: ["r"], timestamp: 1000).request(connection: 0, operation: 4))
        #expect(body["run_id"] as? String == "r")
        #expect(body["key"] as? String == "loss")
        #expect(body["value"] as? Double == 0.2)
        #expect(body["timestamp"] as? Int == 1004)
        #expect(body["step"] as? Int == 4)
    }

    @Test func runsAreNamedAcrossConnectionsAndCarryTheirTags() throws {
        let create = CreateRuns(experimentID: "5", namePrefix: "r", connections: 4, keepsBodies: false)
        let body = try json(create.request(connection: 2, operation: 3))
        #expect(body["experiment_id"] as? String == "5")
        #expect(body["run_name"] as? String == "r14")
        #expect(body["start_time"] is Int)
        let populate = PopulateRuns(experimentID: "5", connections: 4, seed: 1)
        let tags = try #require(try json(populate.request(connection: 1, operation: 0))["tags"] as? [[String: String]])
        #expect(tags == [["key": "team", "value": "b"]])
    }

    @Test func populatingFollowsTheCreatedRunWithItsParamsMetricsAndTags() throws {
        let populate = PopulateRuns(experimentID: "5", connections: 1, seed: 1)
        let answer = ByteBuffer(string: #"{"run": {"info": {"run_id": "abc123"}}}"#)
        let next = try #require(populate.followUp(connection: 0, operation: 7, after: answer))
        let body = try json(next)
        #expect(next.uri == "/api/2.0/mlflow/runs/log-batch")
        #expect(body["run_id"] as? String == "abc123")
        #expect((body["params"] as? [[String: String]])?.map { $0["key"] } == ["lr", "batch_size", "optimizer", "layers", "seed"])
        #expect((body["metrics"] as? [[String: Any]])?.count == 5)
        #expect((body["tags"] as? [[String: String]])?.first == ["key": "dataset", "value": "ds-7"])
        #expect(populate.followUp(connection: 0, operation: 0, after: ByteBuffer(string: "{}")) == nil)
    }

    @Test func historyReadsFollowThePageTokenUntilThereIsNone() throws {
        let read = ReadHistory(runID: "r 1", key: "loss", maxResults: 25_000)
        #expect(read.request(connection: 0, operation: 0).uri == "/api/2.0/mlflow/metrics/get-history?run_id=r%201&metric_key=loss&max_results=25000")
        let next = try #require(read.followUp(connection: 0, operation: 0, after: ByteBuffer(string: #"{"metrics": [], "next_page_token": "a+b="}"#)))
        #expect(next.uri.hasSuffix("&page_token=a%2Bb%3D"))
        #expect(read.followUp(connection: 0, operation: 0, after: ByteBuffer(string: #"{"metrics": []}"#)) == nil)
        #expect(read.followUp(connection: 0, operation: 0, after: ByteBuffer(string: #"{"metrics": [], "next_page_token": null}"#)) == nil)
        #expect(MLflowAPI.lastString(named: "next_page_token", in: ByteBuffer(string: "{\"metrics\": [{\"key\": \"loss\"}],\n \"next_page_token\" :  \"eyJvIjogMn0=\"}")) == "eyJvIjogMn0=")
        #expect(ReadBulkInterval(runID: "r", key: "loss", maxResults: 320).request(connection: 0, operation: 0).uri
            == "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids=r&metric_key=loss&max_results=320")
    }

    @Test func theSearchesAreTrackbenchs() throws {
        let filtered = try json(SearchRuns.filtered(experimentID: "3").request(connection: 0, operation: 0))
        #expect(filtered["filter"] as? String == "metrics.acc > 0.5 and params.lr = '0.01'")
        #expect(filtered["order_by"] as? [String] == ["metrics.acc DESC"])
        #expect(filtered["max_results"] as? Int == 100)
        let unfiltered = try json(SearchRuns.unfiltered(experimentID: "3").request(connection: 0, operation: 0))
        #expect(unfiltered["max_results"] as? Int == 1000)
        #expect(unfiltered["experiment_ids"] as? [String] == ["3"])
    }

    @Test func namesWithQuotesAndControlCharactersStayValidJSON() throws {
        let body = try json(MLflowAPI.createExperiment(name: "a \"b\" \\ c\n\u{1}"))
        #expect(body["name"] as? String == "a \"b\" \\ c\n\u{1}")
    }

    @Test func fixedCountsAreSharedEvenlyOverConnections() {
        #expect(split(10, over: 4) == [3, 3, 2, 2])
        #expect(split(3, over: 5) == [1, 1, 1, 0, 0])
        #expect(split(0, over: 2) == [0, 0])
    }

    @Test func errorsAreNamedByStatusAndMLflowCode() {
        #expect(LoadHandler.describe(status: 400, body: #"{"error_code": "INVALID_PARAMETER_VALUE", "message": "x"}"#) == "400 INVALID_PARAMETER_VALUE")
        #expect(LoadHandler.describe(status: 502, body: "Bad gateway") == "502")
        #expect(LoadHandler.endpoint(of: "/api/2.0/mlflow/metrics/get-history?run_id=x") == "/api/2.0/mlflow/metrics/get-history")
        var result = ConnectionResult()
        result.record(error: "503", endpoint: "/a", message: "busy")
        result.record(error: "503", endpoint: "/a", message: "busy again")
        result.record(error: "transport", endpoint: "/a", message: "reset")
        #expect(result.failed == 3)
        #expect(result.errors == [LoadError(endpoint: "/a", status: "503", count: 2, sample: "busy"),
                                  LoadError(endpoint: "/a", status: "transport", count: 1, sample: "reset")])
    }

    @Test func theNoopServerAnswersLikeThePythonOne() throws {
        #expect(NoopHandler.answer(to: "/health") == "OK")
        #expect(NoopHandler.answer(to: "/api/2.0/mlflow/experiments/create") == #"{"experiment_id": "1"}"#)
        let run = NoopHandler.answer(to: "/api/2.0/mlflow/runs/create")
        #expect(MLflowAPI.field(["run", "info", "run_id"], in: ByteBuffer(string: run))?.count == 32)
        #expect(NoopHandler.answer(to: "/api/2.0/mlflow/experiments/search?max_results=1") == #"{"experiments": []}"#)
        #expect(NoopHandler.answer(to: "/api/2.0/mlflow/runs/log-batch") == "{}")
    }
}
