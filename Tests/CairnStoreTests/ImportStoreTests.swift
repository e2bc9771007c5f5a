import CairnCore
import CairnTestSupport
import Foundation
import Testing
@testable import CairnStore

typealias Tag = CairnCore.Tag

@Suite("Import write path")
struct ImportStoreTests {
    static let runID = "0123456789abcdef0123456789abcdef"

    func experiment(_ id: String = "7", name: String = "imported", stage: LifecycleStage = .active, tags: [Tag] = [Tag("team", "nlp")]) -> Experiment {
        Experiment(experimentID: id, name: name, artifactLocation: "mlflow-artifacts:/\(id)", lifecycleStage: stage,
                   creationTime: 1_700_000_000_000, lastUpdateTime: 1_700_000_000_500, tags: tags)
    }

    func run(stage: LifecycleStage = .active) -> Run {
        let info = RunInfo(runID: Self.runID, experimentID: "7", runName: "ünïcode run", userID: "ada", status: .finished,
                           startTime: 1_700_000_001_000, endTime: 1_700_000_009_000,
                           artifactURI: "mlflow-artifacts:/7/\(Self.runID)/artifacts", lifecycleStage: stage)
        return Run(info: info, params: [Param("lr", "0.01"), Param("long", String(repeating: "x", count: 10_000))],
                   tags: [Tag("mlflow.runName", "ünïcode run"), Tag("mlflow.note.content", "notes ✓")],
                   inputs: [DatasetInput(tags: [Tag("mlflow.data.context", "training")],
                                         dataset: Dataset(name: "iris", digest: "abcd1234", sourceType: "local", source: "{\"uri\": \"x\"}"))],
                   modelOutputs: [ModelOutput(modelID: "m-0123", step: 0)])
    }

    func history() -> [Metric] {
        let special: [Double] = [.nan, .infinity, -.infinity, 1.7976931348623157e308, -0.0, 0.1 + 0.2, Double.leastNonzeroMagnitude]
        var metrics: [Metric] = []
        for i in 0..<3000 {
            let value: Double = i < special.count ? special[i] : 1 / Double(i + 1)
            metrics.append(Metric(key: "loss", value: value, timestamp: 1_700_000_002_000 + Int64(i), step: Int64(i)))
        }
        metrics.append(Metric(key: "acc", value: 0.5, timestamp: 5, step: 0))
        return metrics
    }

    @Test("An imported experiment and run keep their ids, times, lifecycle and exact values", arguments: StoreBackend.allCases)
    func keepsIDsAndValues(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            #expect(try await store.importExperiment(experiment(stage: .deleted)) == .created)
            #expect(try await store.importRun(run(stage: .deleted), history: history()) == .created)
            let e = try await store.fetchExperiment(id: 7)
            #expect(e == experiment(stage: .deleted))
            let r = try await store.fetchRun(id: Self.runID)
            #expect(r.info == run(stage: .deleted).info)
            #expect(Set(r.params) == Set(run().params))
            #expect(Set(r.tags) == Set(run().tags))
            #expect(r.inputs == run().inputs)
            #expect(r.modelOutputs == run().modelOutputs)
            let points = try await store.metricHistory(runID: Self.runID, key: "loss")
            let expected = history().filter { $0.key == "loss" }
            #expect(points.count == expected.count)
            let stored = Dictionary(uniqueKeysWithValues: points.map { ($0.step, $0) })
            for metric in expected {
                let point = try #require(stored[metric.step])
                #expect(point.timestamp == metric.timestamp)
                #expect(point.value.bitPattern == metric.value.bitPattern || (point.value.isNaN && metric.value.isNaN))
            }
            #expect(try await store.metricPointCounts(runID: Self.runID) == ["loss": 3000, "acc": 1])
        }
    }

    @Test("Importing the same entities again changes nothing; differing content is a conflict, never written", arguments: StoreBackend.allCases)
    func idempotentAndConflicts(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.importExperiment(experiment())
            _ = try await store.importRun(run(), history: history())
            #expect(try await store.importExperiment(experiment()) == .unchanged)
            #expect(try await store.importRun(run(), history: history()) == .unchanged)

            guard case .conflict(let differences) = try await store.importExperiment(experiment(name: "renamed")) else {
                Issue.record("a renamed experiment must conflict")
                return
            }
            #expect(differences.contains { $0.contains("renamed") })
            var changed = run()
            changed.params[0] = Param("lr", "0.02")
            changed.info.status = .failed
            guard case .conflict(let runDifferences) = try await store.importRun(changed, history: Array(history().dropLast(10))) else {
                Issue.record("a changed run must conflict")
                return
            }
            #expect(runDifferences.contains { $0.contains("status") })
            #expect(runDifferences.contains { $0.contains("'lr' = '0.02'") })
            #expect(runDifferences.contains { $0.contains("metric 'loss'") })
            // Nothing of the conflicting writes landed.
            #expect(try await store.fetchExperiment(id: 7).name == "imported")
            #expect(try await store.fetchRun(id: Self.runID).info.status == .finished)
            #expect(try await store.metricPointCounts(runID: Self.runID)["loss"] == 3000)
            // Another id under a name the store already uses is a conflict too.
            guard case .conflict = try await store.importExperiment(experiment("8", name: "imported")) else {
                Issue.record("a taken name must conflict")
                return
            }
        }
    }

    @Test("The Default experiment is merged: same name gains tags, another name conflicts", arguments: StoreBackend.allCases)
    func defaultExperimentMerges(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let name = try await store.fetchExperiment(id: 0).name
            #expect(try await store.importExperiment(experiment("0", name: name)) == .merged)
            #expect(try await store.fetchExperiment(id: 0).tags == [Tag("team", "nlp")])
            #expect(try await store.importExperiment(experiment("0", name: name)) == .unchanged)
            guard case .conflict = try await store.importExperiment(experiment("0", name: "Elsewhere")) else {
                Issue.record("a renamed Default experiment must conflict")
                return
            }
            guard case .conflict = try await store.importExperiment(experiment("0", name: name, tags: [Tag("team", "cv")])) else {
                Issue.record("a tag with another value must conflict")
                return
            }
        }
    }

    @Test("Experiments created after an import get ids past the imported ones", arguments: StoreBackend.allCases)
    func idsAdvance(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.importExperiment(experiment("41", name: "forty-one"))
            let created = try await store.createExperiment(name: "after", artifactLocation: nil, tags: [], now: 1)
            #expect(created.experimentID == "42")
            #expect(created.artifactLocation == "mlflow-artifacts:/42")
        }
    }

    @Test("Logged and registered models keep ids, versions, stages, aliases and tags; a second import is a no-op", arguments: StoreBackend.allCases)
    func models(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.importExperiment(experiment())
            let model = LoggedModel(modelID: "m-0123", experimentID: "7", name: "model", artifactURI: "mlflow-artifacts:/7/models/m-0123/artifacts",
                                    creationTimestamp: 10, lastUpdatedTimestamp: 20, status: .ready, creatorID: "ada",
                                    sourceRunID: Self.runID, tags: [Tag("mlflow.modelVersions", "[{\"name\": \"clf\", \"version\": 3}]")],
                                    params: [Param("depth", "3")],
                                    metrics: [ModelMetric(key: "acc", value: .nan, timestamp: 11, step: 0, runID: Self.runID, datasetName: "val", datasetDigest: "d")])
            #expect(try await store.importLoggedModel(model) == .created)
            #expect(try await store.importLoggedModel(model) == .unchanged)
            let loaded = try await store.fetchLoggedModel(id: "m-0123", allowDeleted: false)
            #expect(loaded == model)

            let versions = [
                ModelVersion(name: "clf", version: 2, creationTimestamp: 30, lastUpdatedTimestamp: 31, userID: "ada", currentStage: "Archived",
                             description: "old", source: "runs:/\(Self.runID)/model", runID: Self.runID, runLink: nil, status: "READY",
                             statusMessage: nil, modelID: nil, tags: [], aliases: []),
                ModelVersion(name: "clf", version: 3, creationTimestamp: 40, lastUpdatedTimestamp: 41, userID: "ada", currentStage: "Production",
                             description: "", source: "models:/m-0123", runID: Self.runID, runLink: "http://x", status: "READY",
                             statusMessage: nil, modelID: "m-0123", tags: [Tag("validated", "yes")], aliases: ["champion"]),
            ]
            let registered = RegisteredModel(name: "clf", creationTimestamp: 25, lastUpdatedTimestamp: 45, userID: "ada", description: "a classifier",
                                             tags: [Tag("owner", "ml")], aliases: [("champion", 3)], latestVersions: [])
            #expect(try await store.importRegisteredModel(registered, versions: versions) == .created)
            #expect(try await store.importRegisteredModel(registered, versions: versions) == .unchanged)
            let fetched = try await store.fetchRegisteredModel(name: "clf")
            #expect(fetched.creationTimestamp == 25 && fetched.lastUpdatedTimestamp == 45 && fetched.description == "a classifier")
            #expect(fetched.tags == [Tag("owner", "ml")])
            #expect(try await store.fetchModelVersion(name: "clf", alias: "champion") == versions[1])
            #expect(try await store.fetchModelVersion(name: "clf", version: 2) == versions[0])
            // Versions created later continue after the imported numbers.
            let next = try await store.createModelVersion(NewModelVersion(name: "clf", source: "models:/m-0123", runID: nil, runLink: nil, description: "",
                                                                          modelID: nil, tags: [], userID: "bob"), now: 50)
            #expect(next.version == 4)
            guard case .conflict = try await store.importRegisteredModel(registered, versions: versions) else {
                Issue.record("a registered model with an extra version here must conflict")
                return
            }
        }
    }
}
