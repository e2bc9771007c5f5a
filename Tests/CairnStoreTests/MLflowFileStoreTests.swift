import CairnCore
import CairnTestSupport
import Foundation
import Testing
@testable import CairnStore

/// The reader of an MLflow file store (`mlruns`), on a folder laid out as MLflow 3.17's
/// `FileStore` and registry `FileStore` write it (the files the compat test's real client
/// writes, cut down).
@Suite("MLflow file store")
struct MLflowFileStoreTests {
    static let runID = "0123456789abcdef0123456789abcdef"

    func write(_ root: String, _ files: [String: String]) throws {
        for (path, text) in files {
            let full = root + "/" + path
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: full, atomically: true, encoding: .utf8)
        }
    }

    func makeStore(_ directory: TemporaryDirectory) throws -> String {
        let root = directory.file("mlruns")
        let run = "12/\(Self.runID)"
        try write(root, [
            "12/meta.yaml": """
                artifact_location: file:///tmp/mlruns/12
                creation_time: 1700000000000
                experiment_id: '12'
                last_update_time: 1700000000500
                lifecycle_stage: active
                name: churn ü
                """,
            "12/tags/team": "nlp",
            "\(run)/meta.yaml": """
                artifact_uri: file:///tmp/mlruns/12/\(Self.runID)/artifacts
                end_time: null
                experiment_id: '12'
                lifecycle_stage: deleted
                run_id: \(Self.runID)
                run_name: ünï run
                source_type: 4
                start_time: 1700000001000
                status: 3
                tags: []
                user_id: ada
                """,
            "\(run)/metrics/loss": "1700000002000 nan 0\n1700000002001 inf 1\n1700000002002 -0.0 2\n1700000002003 5e-324 3\n",
            "\(run)/metrics/eval/acc": "1700000002000 0.5 0\n",
            "\(run)/params/lr": "0.01",
            "\(run)/tags/mlflow.note.content": "two\nlines\n",
            "\(run)/inputs/abc/meta.yaml": """
                destination_id: d1
                destination_type: RUN
                source_id: d1
                source_type: DATASET
                tags:
                  mlflow.data.context: training
                """,
            "12/datasets/d1/meta.yaml": """
                digest: b064d295
                name: train
                profile: '{"num_rows": 3}'
                schema: '{"mlflow_colspec": [{"type": "double", "name": "x", "required": true}, {"type":
                  "long", "name": "y", "required": true}]}'
                source: '{"uri": "data/train.csv"}'
                source_type: local
                """,
            "12/models/m-1/meta.yaml": """
                artifact_location: file:///tmp/mlruns/12/models/m-1/artifacts
                creation_timestamp: 1700000003000
                experiment_id: '12'
                last_updated_timestamp: 1700000003500
                model_id: m-1
                model_type: null
                name: model
                source_run_id: \(Self.runID)
                status: 2
                status_message: null
                """,
            "12/models/m-1/metrics/val_acc": "1700000003100 0.9 0 \(Self.runID)\n1700000003200 0.95 1 \(Self.runID)\n",
            ".trash/13/meta.yaml": """
                artifact_location: file:///tmp/mlruns/13
                creation_time: 1700000000000
                experiment_id: '13'
                last_update_time: 1700000000600
                lifecycle_stage: deleted
                name: gone
                """,
            "models/clf/meta.yaml": """
                creation_timestamp: 1700000004000
                description: A classifier ✓
                last_updated_timestamp: 1700000004500
                name: clf
                """,
            "models/clf/aliases/champion": "1",
            "models/clf/tags/owner": "ml-team",
            "models/clf/version-1/meta.yaml": """
                creation_timestamp: 1700000004000
                current_stage: Staging
                description: null
                last_updated_timestamp: 1700000004100
                model_id: m-1
                name: clf
                run_id: \(Self.runID)
                run_link: null
                source: models:/m-1
                status: READY
                user_id: null
                version: 1
                """,
            "models/clf/version-2/meta.yaml": """
                creation_timestamp: 1700000004200
                current_stage: Deleted_Internal
                last_updated_timestamp: 1700000004300
                name: clf
                source: models:/m-1
                status: READY
                version: 2
                """,
        ])
        return root
    }

    @Test("An mlruns folder reads as MLflow's API answers it: lifecycles, values bit for bit, nested keys, datasets, the registry")
    func readsEntitiesAsMLflowAnswersThem() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try MLflowFileStore(root: try makeStore(directory))

        let experiments = try store.experiments()
        #expect(experiments.map(\.experimentID) == ["12", "13"])
        #expect(experiments.map(\.lifecycleStage) == [.active, .deleted])
        #expect(experiments.first?.name == "churn ü")
        #expect(experiments.first?.tags == [Tag("team", "nlp")])
        #expect(try store.experiment(named: "gone")?.experimentID == "13")
        #expect(try store.experiment(id: "99") == nil)

        let runs = try store.runs(experimentID: "12")
        #expect(runs.count == 1)
        let run = try #require(runs.first)
        #expect(run.info.runName == "ünï run" && run.info.status == .finished && run.info.lifecycleStage == .deleted)
        #expect(run.info.endTime == nil && run.info.startTime == 1700000001000)
        #expect(run.metrics.map(\.key) == ["eval/acc", "loss"])
        #expect(run.params == [Param("lr", "0.01")])
        #expect(run.tags == [Tag("mlflow.note.content", "two\nlines\n")])
        #expect(run.inputs.count == 1)
        #expect(run.inputs.first?.dataset.schema == #"{"mlflow_colspec": [{"type": "double", "name": "x", "required": true}, {"type": "long", "name": "y", "required": true}]}"#)
        #expect(run.inputs.first?.tags == [Tag("mlflow.data.context", "training")])

        let history = try store.metricHistory(runID: Self.runID, key: "loss")
        #expect(history.count == 4)
        #expect(history[0].value.isNaN)
        #expect(history[1].value == .infinity)
        #expect(history[2].value.bitPattern == (-0.0).bitPattern)
        #expect(history[3].value.bitPattern == Double.leastNonzeroMagnitude.bitPattern)
        #expect(history.map(\.step) == [0, 1, 2, 3])
        #expect(try store.metricHistory(runID: Self.runID, key: "eval/acc").map(\.value) == [0.5])

        let models = try store.loggedModels(experimentID: "12")
        #expect(models.map(\.modelID) == ["m-1"])
        #expect(models.first?.status == .ready)
        #expect(models.first?.metrics.map(\.value) == [0.95])  // the latest point, as MLflow answers

        let registered = try store.registeredModels()
        #expect(registered.map(\.name) == ["clf"])
        #expect(registered.first?.description == "A classifier ✓")
        #expect(registered.first?.tags == [Tag("owner", "ml-team")])
        #expect(registered.first?.aliases.map(\.alias) == ["champion"])
        let versions = try store.modelVersions(name: "clf")
        #expect(versions.map(\.version) == [1])  // version 2 was deleted
        #expect(versions.first?.aliases == ["champion"])
        #expect(versions.first?.runLink == nil && versions.first?.description == "" && versions.first?.userID == "")
        #expect(versions.first?.currentStage == "Staging")
    }

    @Test("A missing folder, or one without experiment folders, is refused saying which")
    func refusesWhatIsNotAnMLflowFileStore() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        #expect(throws: CairnError.self) { try MLflowFileStore(root: directory.file("absent")) }
        try FileManager.default.createDirectory(atPath: directory.file("plain/sub"), withIntermediateDirectories: true)
        do {
            _ = try MLflowFileStore(root: directory.file("plain"))
            Issue.record("a folder without experiments was accepted")
        } catch let error as CairnError {
            #expect(error.message.contains("not an MLflow file store"))
        }
    }
}
