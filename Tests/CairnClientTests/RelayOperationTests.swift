import CairnCore
import Foundation
import Testing
@testable import CairnClient

private let ours: Set<String> = ["0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"]
private let id = "0123456789abcdef0123456789abcdef"

private func post(_ endpoint: String, _ json: String) -> RelayRequest {
    RelayRequest(method: "POST", path: "/api/2.0/mlflow/" + endpoint, contentType: "application/json", body: Array(json.utf8))
}

private func parse(_ request: RelayRequest) throws -> RelayOperation {
    try RelayOperation.parse(request, runIDs: ours, now: 777)
}

@Suite struct RelayOperationTests {
    @Test func theClientsSingleWritesBecomeBatchesOfTheWrappedRun() throws {
        #expect(try parse(post("runs/log-metric", #"{"run_uuid":"\#(id)","run_id":"\#(id)","key":"loss","value":0.5,"timestamp":12,"step":3}"#))
                == .log(LogBuffer.Batch(metrics: [Metric(key: "loss", value: 0.5, timestamp: 12, step: 3)])))
        let nan = try parse(post("runs/log-metric", #"{"run_id":"\#(id)","key":"loss","value":"NaN","timestamp":12,"step":3}"#))
        guard case .log(let batch) = nan else { Issue.record("expected a log"); return }
        #expect(batch.metrics.first?.value.isNaN == true)
        #expect(try parse(post("runs/log-parameter", #"{"run_id":"\#(id)","key":"lr","value":"0.1"}"#)) == .log(LogBuffer.Batch(params: [Param("lr", "0.1")])))
        #expect(try parse(post("runs/set-tag", #"{"run_id":"\#(id)","key":"k","value":"v"}"#)) == .log(LogBuffer.Batch(tags: [Tag("k", "v")])))
        let ajax = RelayRequest(method: "POST", path: "/ajax-api/2.0/mlflow/runs/set-tag", body: Array(#"{"run_id":"\#(id)","key":"k","value":"v"}"#.utf8))
        #expect(try parse(ajax) == .log(LogBuffer.Batch(tags: [Tag("k", "v")])))
        #expect(try parse(post("runs/delete-tag", #"{"run_id":"\#(id)","key":"k"}"#)) == .deleteTag(key: "k"))
        // A metric without a timestamp gets `now`.
        #expect(try parse(post("runs/log-metric", #"{"run_id":"\#(id)","key":"m","value":1}"#))
                == .log(LogBuffer.Batch(metrics: [Metric(key: "m", value: 1, timestamp: 777, step: 0)])))
    }

    @Test func logBatchKeepsEveryEntryAndTheModelAndDatasetOfAMetric() throws {
        let body = #"{"run_id":"\#(id)","metrics":[{"key":"a","value":1,"timestamp":5,"step":0,"run_id":"\#(id)","model_id":"m-1","dataset_name":"d","dataset_digest":"x"},{"key":"a","value":2,"timestamp":6,"step":1}],"params":[{"key":"p","value":"1"}],"tags":[{"key":"t","value":"v"}]}"#
        guard case .log(let batch) = try parse(post("runs/log-batch", body)) else { Issue.record("expected a log"); return }
        #expect(batch.metrics.map(\.step) == [0, 1])
        #expect(batch.metrics[0].runID == nil)
        #expect(batch.metrics[0].modelID == "m-1" && batch.metrics[0].datasetName == "d" && batch.metrics[0].datasetDigest == "x")
        #expect(batch.params == [Param("p", "1")])
        #expect(batch.tags == [Tag("t", "v")])
    }

    @Test func runsGetUpdateAndInputsOfTheWrappedRunAreRecognised() throws {
        #expect(try parse(RelayRequest(method: "GET", path: "/api/2.0/mlflow/runs/get", query: "run_uuid=\(id)&run_id=\(id)")) == .getRun)
        #expect(try parse(RelayRequest(method: "GET", path: "/api/2.0/mlflow/runs/get", query: "run_id=ffffffffffffffffffffffffffffffff")) == .forward)
        #expect(try parse(post("runs/update", #"{"run_id":"\#(id)","status":"FINISHED","end_time":9}"#)) == .updateRun(status: .finished, endTime: 9, runName: nil))
        let inputs = #"{"run_id":"\#(id)","datasets":[{"tags":[{"key":"mlflow.data.context","value":"train"}],"dataset":{"name":"d","digest":"abc","source_type":"local","source":"{}"}}]}"#
        #expect(try parse(post("runs/log-inputs", inputs))
                == .logInputs([DatasetInput(tags: [Tag("mlflow.data.context", "train")], dataset: Dataset(name: "d", digest: "abc", sourceType: "local", source: "{}"))]))
    }

    @Test func anArtifactUploadUnderTheRunGivesThePathRelativeToItsRoot() throws {
        let put = { (path: String) in try parse(RelayRequest(method: "PUT", path: "/api/2.0/mlflow-artifacts/artifacts/" + path, body: [1, 2])) }
        #expect(try put("1/\(id)/artifacts/model/weights.bin") == .uploadArtifact(path: "model/weights.bin"))
        #expect(try put("custom/location/\(id)/artifacts/dir%20with%20space/na%C3%AFve.txt") == .uploadArtifact(path: "dir with space/naïve.txt"))
        #expect(try put("1/models/m-1/artifacts/MLmodel") == .forward)
        #expect(try put("1/\(id)/artifacts/../escape") == .forward)
        #expect(try parse(RelayRequest(method: "GET", path: "/api/2.0/mlflow-artifacts/artifacts/1/\(id)/artifacts/x")) == .forward)
    }

    @Test func everythingElseIsForwardedUnread() throws {
        #expect(try parse(post("runs/log-metric", #"{"run_id":"ffffffffffffffffffffffffffffffff","key":"m","value":1}"#)) == .forward)
        #expect(try parse(post("experiments/create", #"{"name":"x"}"#)) == .forward)
        #expect(try parse(post("runs/search", "not even json")) == .forward)
        #expect(try parse(RelayRequest(method: "GET", path: "/health")) == .forward)
        #expect(try parse(RelayRequest(method: "GET", path: "/api/2.0/mlflow/experiments/get-by-name", query: "experiment_name=a%20b"))
                == .getExperiment(id: nil, name: "a b"))
    }

    @Test func aMalformedWriteOfTheWrappedRunSaysWhatIsWrong() {
        #expect(throws: RelayRequestError("Missing value for required parameter 'key'. See the API docs for more information about request parameters.")) {
            try parse(post("runs/log-parameter", #"{"run_id":"\#(id)","value":"1"}"#))
        }
        #expect(throws: RelayRequestError.self) { try parse(post("runs/log-metric", #"{"run_id":"\#(id)","key":"m","value":"abc"}"#)) }
        #expect(throws: RelayRequestError.self) { try parse(post("runs/log-batch", "{\"run_id\": ")) }
        #expect(throws: RelayRequestError.self) { try parse(post("runs/update", #"{"run_id":"\#(id)","status":"DONE"}"#)) }
    }

    @Test func aWrongJSONTypeIsRefusedAsTheServerRefusesItNeverConverted() {
        let hint = "See the API docs for more information about request parameters."
        #expect(throws: RelayRequestError("Invalid value 5 for parameter 'value' supplied:  Hint: Value was of type 'int'. \(hint)")) {
            try parse(post("runs/log-parameter", #"{"run_id":"\#(id)","key":"p","value":5}"#))
        }
        #expect(throws: RelayRequestError("Invalid value true for parameter 'key' supplied:  Hint: Value was of type 'bool'. \(hint)")) {
            try parse(post("runs/set-tag", #"{"run_id":"\#(id)","key":true,"value":"v"}"#))
        }
        #expect(throws: RelayRequestError("Invalid value 1.5 for parameter 'metrics[0].step' supplied:  Hint: Value was of type 'float'. \(hint)")) {
            try parse(post("runs/log-batch", #"{"run_id":"\#(id)","metrics":[{"key":"m","value":1,"timestamp":1,"step":1.5}]}"#))
        }
        #expect(throws: RelayRequestError("Invalid value {} for parameter 'tags' supplied:  Hint: Value was of type 'dict'. \(hint)")) {
            try parse(post("runs/log-batch", #"{"run_id":"\#(id)","tags":{}}"#))
        }
    }

    @Test func decimalStringsInNumberFieldsAreRead() throws {
        #expect(try parse(post("runs/log-metric", #"{"run_id":"\#(id)","key":"m","value":"2.5","timestamp":"12","step":"3"}"#))
                == .log(LogBuffer.Batch(metrics: [Metric(key: "m", value: 2.5, timestamp: 12, step: 3)])))
    }

    @Test func theOfflineViewAnswersRunsGetWithWhatWasLogged() throws {
        var view = RelayRunView(runID: id, experimentID: nil, experimentName: "mnist", runName: nil, userID: "ann", startTime: 100,
                                tags: [Tag("mlflow.runName", "first"), Tag(journalMarkerTag, id)])
        view.apply(.log(LogBuffer.Batch(metrics: [Metric(key: "loss", value: 2, timestamp: 1, step: 1), Metric(key: "loss", value: 1, timestamp: 2, step: 0)],
                                        params: [Param("lr", "0.1")], tags: [Tag("t", "v")])))
        view.apply(.log(LogBuffer.Batch(params: [Param("lr", "0.2")])))  // params are write-once
        view.apply(.deleteTag(key: "t"))
        let reply = try JSONValue.parse(view.getRunReply())
        let info = try #require(reply["run"]?["info"])
        #expect(info["run_id"]?.stringValue == id)
        #expect(info["experiment_id"]?.stringValue == "0")
        #expect(info["run_name"]?.stringValue == "first")
        #expect(info["status"]?.stringValue == "RUNNING")
        #expect(info["artifact_uri"]?.stringValue == "mlflow-artifacts:/0/\(id)/artifacts")
        let run = WireDecoding.run(reply["run"]!)
        #expect(run.metrics.map(\.value) == [2])  // the latest is the largest step
        #expect(run.params == [Param("lr", "0.1")])
        #expect(!run.tags.contains { $0.key == "t" })
        // mlflow.set_experiment(<the run's experiment>) is answered too; another experiment is not.
        let experiment = try JSONValue.parse(try #require(view.experimentReply(id: nil, name: "mnist")))["experiment"]
        #expect(experiment?["experiment_id"]?.stringValue == "0")
        #expect(experiment?["lifecycle_stage"]?.stringValue == "active")
        #expect(view.experimentReply(id: nil, name: "other") == nil)
        #expect(view.experimentReply(id: "0", name: nil) == nil)  // "0" is only a stand-in here
    }
}
