import CairnCore
import Foundation
import Testing
@testable import CairnClient

@Suite struct MLflowSourceTests {
    @Test("Credentials come from the variables the mlflow client reads; Basic wins over a token")
    func credentials() {
        #expect(MLflowSource.authorization([:]) == nil)
        #expect(MLflowSource.authorization(["MLFLOW_TRACKING_TOKEN": "t0k"]) == "Bearer t0k")
        let basic = "Basic " + Data("ada:s3cr:t".utf8).base64EncodedString()
        #expect(MLflowSource.authorization(["MLFLOW_TRACKING_USERNAME": "ada", "MLFLOW_TRACKING_PASSWORD": "s3cr:t"]) == basic)
        #expect(MLflowSource.authorization(["MLFLOW_TRACKING_USERNAME": "ada", "MLFLOW_TRACKING_PASSWORD": "s3cr:t", "MLFLOW_TRACKING_TOKEN": "t0k"]) == basic)
    }

    @Test("Only mlflow-artifacts: locations map to the artifact proxy, host and slashes dropped")
    func proxyPaths() {
        #expect(MLflowSource.proxyPath("mlflow-artifacts:/3/abc/artifacts") == "3/abc/artifacts")
        #expect(MLflowSource.proxyPath("mlflow-artifacts://host:5000/3/models/m-1/artifacts/") == "3/models/m-1/artifacts")
        #expect(MLflowSource.proxyPath("mlflow-artifacts:") == "")
        #expect(MLflowSource.proxyPath("s3://bucket/3/abc/artifacts") == nil)
        #expect(MLflowSource.proxyPath("file:///tmp/mlruns/3/abc/artifacts") == nil)
    }

    @Test("A run's model inputs and outputs are read with the rest of it")
    func runWithModels() throws {
        let json = try JSONValue.parse(Array("""
            {"info": {"run_id": "r1", "experiment_id": "2", "status": "FINISHED", "lifecycle_stage": "deleted"},
             "data": {"metrics": [{"key": "m", "value": "NaN", "timestamp": 1, "step": 2}]},
             "inputs": {"model_inputs": [{"model_id": "m-in"}]},
             "outputs": {"model_outputs": [{"model_id": "m-out", "step": "4"}]}}
            """.utf8))
        let run = MLflowSource.fullRun(json)
        #expect(run.info.lifecycleStage == .deleted)
        #expect(run.metrics.first?.value.isNaN == true)
        #expect(run.modelInputs == ["m-in"])
        #expect(run.modelOutputs == [ModelOutput(modelID: "m-out", step: 4)])
    }
}
