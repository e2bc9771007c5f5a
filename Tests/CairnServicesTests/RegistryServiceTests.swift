import CairnCore
import CairnServices
import CairnStore
import CairnTestSupport
import Foundation
import Testing

@Suite("Registry service")
struct RegistryServiceTests {
    struct Fixture {
        let tracking: TrackingService
        let registry: RegistryService

        init(_ store: SQLStore) {
            let clock = TestClock()
            tracking = TrackingService(store: store, now: { clock.now() })
            registry = RegistryService(registry: store, tracking: tracking)
        }
    }

    @Test("Versions from models:/ and runs:/ sources resolve their run, model and download URI", arguments: StoreBackend.allCases)
    func versionsAndDownloadURIs(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let f = Fixture(store)
            let run = try await f.tracking.createRun(experimentID: "0", userID: nil, runName: "train", startTime: nil, tags: [])
            let model = try await f.tracking.createLoggedModel(experimentID: "0", name: "model", modelType: nil,
                                                               sourceRunID: run.info.runID, params: [], tags: [])
            _ = try await f.registry.createRegisteredModel(name: "clf", tags: [], description: nil, user: "ana")
            await #expect(throws: CairnError.self) {
                _ = try await f.registry.createModelVersion(name: "clf", source: "models:/\(model.modelID)", runID: nil, runLink: nil,
                                                            description: nil, tags: [], modelID: nil, user: "ana")
            }
            let v1 = try await f.registry.createModelVersion(name: "clf", source: "models:/\(model.modelID)", runID: nil, runLink: nil,
                                                             description: nil, tags: [], modelID: model.modelID, user: "ana")
            #expect(v1.version == 1 && v1.runID == run.info.runID && v1.modelID == model.modelID && v1.status == "READY")
            #expect(try await f.registry.downloadURI(name: "clf", version: "1") == model.artifactURI)
            let linked = try await f.tracking.getLoggedModel(id: model.modelID).tags
            #expect(linked.contains(Tag("mlflow.modelVersions", #"[{"name":"clf","version":1}]"#)))
            await #expect(throws: CairnError.self) {
                _ = try await f.registry.createModelVersion(name: "clf", source: "runs:/\(run.info.runID)/model", runID: nil, runLink: nil,
                                                            description: nil, tags: [], modelID: nil, user: "ana")
            }
            let v2 = try await f.registry.createModelVersion(name: "clf", source: "runs:/\(run.info.runID)/model", runID: run.info.runID,
                                                             runLink: nil, description: nil, tags: [], modelID: nil, user: "ana")
            #expect(v2.version == 2 && v2.runID == run.info.runID)
            #expect(try await f.registry.downloadURI(name: "clf", version: "2") == "runs:/\(run.info.runID)/model")
            try await f.registry.deleteModelVersion(name: "clf", version: "2", user: "ana")
            let v3 = try await f.registry.createModelVersion(name: "clf", source: "s3://bucket/m", runID: nil, runLink: nil,
                                                             description: nil, tags: [], modelID: nil, user: "ana")
            #expect(v3.version == 3)
            for source in ["runs:/\(run.info.runID)/../x", "s3://b/%2E%2E/x", "/tmp/model", "file:///tmp/model", "https://h/m", "C:\\m"] {
                await #expect(throws: CairnError.self) {
                    _ = try await f.registry.createModelVersion(name: "clf", source: source, runID: run.info.runID, runLink: nil,
                                                                description: nil, tags: [], modelID: nil, user: "ana")
                }
            }
            #expect(try await f.registry.getLatestVersions(name: "clf", stages: []).map(\.version) == [3])
        }
    }

    @Test("Versions and logged models may name runs this server does not hold, as in MLflow; lineage says so", arguments: StoreBackend.allCases)
    func runsOfAnotherServer(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let f = Fixture(store)
            let elsewhere = "0123456789abcdef0123456789abcdef"
            _ = try await f.registry.createRegisteredModel(name: "m", tags: [], description: nil, user: "ana")
            let v1 = try await f.registry.createModelVersion(name: "m", source: "runs:/\(elsewhere)/model", runID: elsewhere, runLink: nil,
                                                             description: nil, tags: [], modelID: nil, user: "ana")
            #expect(v1.runID == elsewhere)
            #expect(try await f.registry.downloadURI(name: "m", version: "1") == "runs:/\(elsewhere)/model")
            let lineage = try await f.registry.lineage(name: "m", version: "1")
            #expect(lineage.runID == elsewhere && lineage.run == nil)
            // Another remote source with an unknown run is kept as given too.
            let v2 = try await f.registry.createModelVersion(name: "m", source: "s3://b/k", runID: elsewhere, runLink: nil,
                                                             description: nil, tags: [], modelID: nil, user: "ana")
            #expect(v2.runID == elsewhere)
            // A logged model whose source run is elsewhere; a version from its own artifacts needs no run_id.
            let model = try await f.tracking.createLoggedModel(experimentID: "0", name: "lm", modelType: nil, sourceRunID: elsewhere,
                                                               params: [], tags: [])
            #expect(model.sourceRunID == elsewhere)
            let v3 = try await f.registry.createModelVersion(name: "m", source: model.artifactURI, runID: nil, runLink: nil,
                                                             description: nil, tags: [], modelID: model.modelID, user: "ana")
            #expect(v3.runID == elsewhere && v3.modelID == model.modelID)
            #expect(try await f.registry.downloadURI(name: "m", version: "3") == model.artifactURI)
            // What MLflow still refuses: a runs:/ source naming another run, or sent with a model_id; an
            // mlflow-artifacts: source outside the named model, or in the artifacts of an unknown run.
            let refused: [(String, String?, String?)] = [
                ("runs:/\(elsewhere)/model", nil, nil),
                ("runs:/\(elsewhere)/model", "fedcba9876543210fedcba9876543210", nil),
                ("runs:/\(elsewhere)/model", elsewhere, model.modelID),
                ("mlflow-artifacts:/0/models/m-other/artifacts", nil, model.modelID),
                ("mlflow-artifacts:/0/\(elsewhere)/artifacts/model", elsewhere, nil),
                ("mlflow-artifacts:/0/models/m-0123/artifacts", nil, "m-0123"),
            ]
            for (source, runID, modelID) in refused {
                await #expect(throws: CairnError.self, "\(source)") {
                    _ = try await f.registry.createModelVersion(name: "m", source: source, runID: runID, runLink: nil,
                                                                description: nil, tags: [], modelID: modelID, user: "ana")
                }
            }
            #expect(try await f.registry.getLatestVersions(name: "m", stages: []).map(\.version) == [3])
            // The model page asks which of its versions' runs are held: only those are links.
            let local = try await f.tracking.createRun(experimentID: "0", userID: nil, runName: "here", startTime: nil, tags: [])
            let held = try await f.registry.heldRuns(ids: [elsewhere, local.info.runID, local.info.runID])
            #expect(held.map(\.runID) == [local.info.runID] && held.first?.runName == "here")
            await #expect(throws: CairnError.self) { _ = try await f.registry.heldRuns(ids: (0...1000).map { String(format: "%032x", $0) }) }
        }
    }

    @Test("Alias names follow MLflow's rules", arguments: ["latest", "LATEST", "v1", "V42", "bad alias", "a/b", ""])
    func badAliases(alias: String) async throws {
        try await withSQLiteStore { store in
            let f = Fixture(store)
            _ = try await f.registry.createRegisteredModel(name: "m", tags: [], description: nil, user: "")
            _ = try await f.registry.createModelVersion(name: "m", source: "s3://x", runID: nil, runLink: nil, description: nil, tags: [], modelID: nil, user: "")
            await #expect(throws: CairnError.self) { try await f.registry.setAlias(name: "m", alias: alias, version: "1", user: "") }
            #expect(try await f.registry.getRegisteredModel(name: "m").aliases.isEmpty)
        }
    }

    @Test("Every change to a version is in its history, in order, with the values it set", arguments: StoreBackend.allCases)
    func history(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let f = Fixture(store)
            _ = try await f.registry.createRegisteredModel(name: "m", tags: [], description: nil, user: "ana")
            _ = try await f.registry.createModelVersion(name: "m", source: "s3://x", runID: nil, runLink: nil, description: "first", tags: [], modelID: nil, user: "ana")
            _ = try await f.registry.createModelVersion(name: "m", source: "s3://y", runID: nil, runLink: nil, description: nil, tags: [], modelID: nil, user: "ana")
            try await f.registry.setAlias(name: "m", alias: "champion", version: "1", user: "bo")
            _ = try await f.registry.updateModelVersion(name: "m", version: "1", description: "better", user: "bo")
            try await f.registry.setModelVersionTag(name: "m", version: "1", tag: Tag("validated", "yes"), user: "bo")
            _ = try await f.registry.transitionStage(name: "m", version: "1", stage: "production", archiveExisting: true, user: "bo")
            try await f.registry.setAlias(name: "m", alias: "champion", version: "2", user: "cy")
            let events = try await f.registry.history(name: "m", version: "1")
            #expect(events.map(\.action) == ["create_registered_model", "create", "set_alias", "update_description", "set_tag", "transition_stage", "delete_alias"])
            #expect(events.map(\.user) == ["ana", "ana", "bo", "bo", "bo", "bo", "cy"])
            #expect(events[3].changes["from"] == .string("first") && events[3].changes["to"] == .string("better"))
            #expect(events[5].changes["to"] == .string("Production"))
            #expect(zip(events, events.dropFirst()).allSatisfy { $0.timestamp < $1.timestamp })
            let model = try await f.registry.getRegisteredModel(name: "m")
            #expect(model.aliases.map(\.version) == [2])
            #expect(model.latestVersions.map(\.currentStage).sorted() == ["None", "Production"])
        }
    }

    @Test("Search appends MLflow's prompt clause without losing models that lack the tag; order_by rejects duplicates", arguments: StoreBackend.allCases)
    func search(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let f = Fixture(store)
            for name in ["alpha", "beta", "gamma"] {
                _ = try await f.registry.createRegisteredModel(name: name, tags: name == "gamma" ? [Tag("mlflow.prompt.is_prompt", "true")] : [],
                                                               description: nil, user: "")
            }
            let page = try await f.registry.searchRegisteredModels(
                filter: "name LIKE '%a' AND tags.`mlflow.prompt.is_prompt` != 'true'", maxResults: nil, orderBy: ["name DESC"], pageToken: nil)
            #expect(page.items.map(\.name) == ["beta", "alpha"])
            await #expect(throws: CairnError.self) {
                _ = try await f.registry.searchRegisteredModels(filter: nil, maxResults: nil, orderBy: ["name", "name DESC"], pageToken: nil)
            }
            await #expect(throws: CairnError.self) {
                _ = try await f.registry.searchRegisteredModels(filter: nil, maxResults: 1001, orderBy: [], pageToken: nil)
            }
        }
    }

    @Test("Promotion gates: a failing version is refused with each reason, an override passes, every evaluation is in the history", arguments: StoreBackend.allCases)
    func promotionGates(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let f = Fixture(store)
            func version(acc: Double, finished: Bool) async throws -> String {
                let run = try await f.tracking.createRun(experimentID: "0", userID: nil, runName: nil, startTime: nil, tags: [Tag("cairn.git.commit", "abc")])
                try await f.tracking.logBatch(runID: run.info.runID, metrics: [Metric(key: "val_acc", value: acc, timestamp: 1, step: 0)], params: [], tags: [])
                if finished { _ = try await f.tracking.updateRun(id: run.info.runID, status: .finished, endTime: 2, runName: nil) }
                return String(try await f.registry.createModelVersion(name: "m", source: "runs:/\(run.info.runID)/model", runID: run.info.runID, runLink: nil,
                                                                      description: nil, tags: [], modelID: nil, user: "ana").version)
            }
            _ = try await f.registry.createRegisteredModel(name: "m", tags: [], description: nil, user: "ana")
            await #expect(throws: CairnError.self) {
                try await f.registry.setRegisteredModelTag(name: "m", tag: Tag("cairn.gate", "require=vibes"), user: "ana")
            }
            try await f.registry.setRegisteredModelTag(name: "m", tag: Tag("cairn.gate", "require=code,finished"), user: "ana")
            try await f.registry.setRegisteredModelTag(name: "m", tag: Tag("cairn.gate.prod", "not_worse=val_acc"), user: "ana")
            let first = try await version(acc: 0.9, finished: true)
            try await f.registry.setAlias(name: "m", alias: "prod", version: first, user: "ana")
            let worse = try await version(acc: 0.8, finished: false)
            do {
                try await f.registry.setAlias(name: "m", alias: "prod", version: worse, user: "bo")
                Issue.record("a failing version took the alias")
            } catch let error as CairnError {
                #expect(error.message.contains("finished: status RUNNING"))
                #expect(error.message.contains("not worse on val_acc: val_acc = 0.8 against 0.9 of version 1"))
            }
            #expect(try await f.registry.getVersion(name: "m", alias: "prod").version == 1)
            // Other aliases only have the general gate; stages below Staging are never gated.
            _ = try await f.registry.transitionStage(name: "m", version: worse, stage: "Archived", archiveExisting: false, user: "bo")
            try await f.registry.setModelVersionTag(name: "m", version: worse, tag: Tag("cairn.gate.override", "rollback drill"), user: "bo")
            try await f.registry.setAlias(name: "m", alias: "prod", version: worse, user: "bo")
            #expect(try await f.registry.getVersion(name: "m", alias: "prod").version == 2)
            let actions = try await f.registry.history(name: "m", version: worse).map(\.action)
            #expect(actions.filter { $0.hasPrefix("gate_") } == ["gate_failed", "gate_overridden"])
            #expect(try await f.registry.history(name: "m", version: first).map(\.action).contains("gate_passed"))
        }
    }

    @Test("not_worse with seeded repeats: worse only beyond the seed noise", arguments: StoreBackend.allCases)
    func notWorseUsesRepeats(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let f = Fixture(store)
            /// Three seeds of a configuration; returns the version registered from the last.
            func configuration(_ model: String, _ accs: [Double]) async throws -> String {
                var last = ""
                for (seed, acc) in accs.enumerated() {
                    let run = try await f.tracking.createRun(experimentID: "0", userID: nil, runName: nil, startTime: nil, tags: [])
                    try await f.tracking.logBatch(runID: run.info.runID, metrics: [Metric(key: "val_acc", value: acc, timestamp: 1, step: 0)],
                                                  params: [Param("model", model), Param("seed", String(seed))], tags: [])
                    _ = try await f.tracking.updateRun(id: run.info.runID, status: .finished, endTime: 2, runName: nil)
                    last = run.info.runID
                }
                return String(try await f.registry.createModelVersion(name: "m", source: "runs:/\(last)/model", runID: last, runLink: nil,
                                                                      description: nil, tags: [], modelID: nil, user: "ana").version)
            }
            _ = try await f.registry.createRegisteredModel(name: "m", tags: [Tag("cairn.gate.prod", "not_worse=val_acc")], description: nil, user: "ana")
            let holder = try await configuration("a", [0.90, 0.93, 0.87])
            try await f.registry.setAlias(name: "m", alias: "prod", version: holder, user: "ana")
            // Its last run (0.86) is below the holder's last (0.87), but the groups do not differ beyond noise.
            let similar = try await configuration("b", [0.91, 0.92, 0.86])
            try await f.registry.setAlias(name: "m", alias: "prod", version: similar, user: "ana")
            let passed = try #require(try await f.registry.history(name: "m", version: similar).last { $0.action == "gate_passed" })
            #expect("\(passed.changes)".contains("not worse beyond the seed noise"))
            let clearlyWorse = try await configuration("c", [0.70, 0.71, 0.69])
            await #expect(throws: CairnError.self) { try await f.registry.setAlias(name: "m", alias: "prod", version: clearlyWorse, user: "ana") }
        }
    }
}
