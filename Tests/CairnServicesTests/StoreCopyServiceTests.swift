import CairnArtifacts
import CairnCore
import CairnServices
import CairnTestSupport
import Foundation
import NIOCore
import Testing
@testable import CairnStore

/// The services over one store and blob folder, as the server builds them.
struct Stack {
    let store: SQLStore
    let blobs: LocalBlobStore
    let tracking: TrackingService
    let registry: RegistryService
    let artifacts: ArtifactService

    init(store: SQLStore, blobs: String) throws {
        self.store = store
        self.blobs = try LocalBlobStore(root: URL(fileURLWithPath: blobs))
        tracking = TrackingService(store: store)
        registry = RegistryService(registry: store, tracking: tracking)
        artifacts = ArtifactService(index: store, blobs: self.blobs, tracking: tracking)
    }
}

/// Every kind of data the store keeps, through the services.
func fill(_ s: Stack) async throws {
    let experiment = try await s.tracking.createExperiment(name: "copy-me", artifactLocation: nil, tags: [Tag("team", "vision")])
    try await s.tracking.setExperimentTag(id: "0", tag: Tag("note", "the default one"))
    var runs: [String] = []
    for i in 0..<3 {
        let run = try await s.tracking.createRun(experimentID: experiment.experimentID, userID: "ada", runName: "run-\(i)",
                                                 startTime: 1000 + Int64(i), tags: [Tag("k", "v\(i)")])
        let id = run.info.runID
        runs.append(id)
        try await s.tracking.logBatch(runID: id, metrics: (0..<40).map { Metric(key: "loss", value: 1 / Double($0 + 1), timestamp: 10 + Int64($0), step: Int64($0)) },
                                      params: [Param("lr", "0.0\(i + 1)"), Param("seed", "\(i)")], tags: [Tag("mlflow.note.content", "ünïcode ✓ \(i)")])
        try await s.tracking.logBatch(runID: id, metrics: [Metric(key: "loss", value: .nan, timestamp: 100, step: 20),
                                                           Metric(key: "odd", value: .infinity, timestamp: 101, step: 0),
                                                           Metric(key: "odd", value: -.infinity, timestamp: 102, step: 1),
                                                           Metric(key: "odd", value: -0.0, timestamp: 103, step: 1)],
                                      params: [], tags: [])
        try await s.tracking.logInputs(runID: id, datasets: [
            DatasetInput(tags: [Tag("mlflow.data.context", "train")],
                         dataset: Dataset(name: "mnist", digest: "d\(i % 2)", sourceType: "local", source: "/data/mnist", schema: "{\"x\": 1}")),
        ])
        _ = try await s.tracking.updateRun(id: id, status: .finished, endTime: 5000 + Int64(i), runName: nil)
    }
    try await s.tracking.deleteRun(id: runs[2])
    let gone = try await s.tracking.createExperiment(name: "gone", artifactLocation: nil, tags: [])
    _ = try await s.tracking.createRun(experimentID: gone.experimentID, userID: "bob", runName: "lonely", startTime: 7, tags: [])
    try await s.tracking.deleteExperiment(id: gone.experimentID)

    let model = try await s.tracking.createLoggedModel(experimentID: experiment.experimentID, name: "net", modelType: "torch", sourceRunID: runs[0],
                                                       params: [Param("layers", "3")], tags: [Tag("stage", "eval")])
    try await s.tracking.logBatch(runID: runs[0], metrics: [
        Metric(key: "val_acc", value: 0.9, timestamp: 5, step: 1, modelID: model.modelID, datasetName: "mnist", datasetDigest: "d0"),
        Metric(key: "val_acc", value: 0.95, timestamp: 6, step: 2, modelID: model.modelID),
    ], params: [], tags: [])
    _ = try await s.tracking.finalizeLoggedModel(id: model.modelID, status: .ready)
    try await s.tracking.logOutputs(runID: runs[0], outputs: [ModelOutput(modelID: model.modelID, step: 2)])
    try await s.tracking.logInputs(runID: runs[1], datasets: [], models: [model.modelID])

    _ = try await s.registry.createRegisteredModel(name: "classifier", tags: [Tag("owner", "ada")], description: "digits", user: "ada")
    _ = try await s.registry.createModelVersion(name: "classifier", source: "runs:/\(runs[0])/model", runID: runs[0], runLink: nil,
                                                description: "first", tags: [Tag("q", "1")], modelID: nil, user: "ada")
    _ = try await s.registry.createModelVersion(name: "classifier", source: "models:/\(model.modelID)", runID: nil, runLink: nil,
                                                description: nil, tags: [], modelID: model.modelID, user: "bob")
    try await s.registry.setAlias(name: "classifier", alias: "champion", version: "1", user: "ada")
    _ = try await s.registry.transitionStage(name: "classifier", version: "2", stage: "Staging", archiveExisting: false, user: "bob")
    try await s.registry.setModelVersionTag(name: "classifier", version: "2", tag: Tag("checked", "yes"), user: "bob")

    for (i, id) in runs.prefix(2).enumerated() {
        let root = ArtifactService.proxyPath(fromArtifactURI: try await s.tracking.getRun(id: id).info.artifactURI)!
        _ = try await s.artifacts.upload(path: "\(root)/model.bin", body: ByteBufferChunks([ByteBuffer(string: "the same weights")]))
        _ = try await s.artifacts.upload(path: "\(root)/logs/out.txt", body: ByteBufferChunks([ByteBuffer(string: "log of run \(i)")]))
    }
}

/// Everything the store answers about its data, read through the services.
private struct Snapshot: Equatable {
    var experiments: [Experiment] = []
    var runs: [Run] = []
    var histories: [String: [MetricPoint]] = [:]
    var loggedModels: [LoggedModel] = []
    var registeredModels: [RegisteredModel] = []
    var versions: [ModelVersion] = []
    var champion: ModelVersion?
    var events: [[RegistryEvent]] = []
    var artifacts: [ArtifactEntry] = []
}

private func snapshot(_ s: Stack) async throws -> Snapshot {
    var snap = Snapshot()
    snap.experiments = try await s.tracking.searchExperiments(filter: nil, orderBy: ["name"], viewType: .all, maxResults: 1000, pageToken: nil).items
    let ids = snap.experiments.map(\.experimentID)
    snap.runs = try await s.tracking.searchRuns(experimentIDs: ids, filter: nil, viewType: .all, maxResults: 1000, orderBy: [], pageToken: nil).items
    for run in snap.runs {
        for metric in run.metrics {
            snap.histories["\(run.info.runID)/\(metric.key)"] = try await s.tracking.getMetricHistory(runID: run.info.runID, key: metric.key, maxResults: nil, pageToken: nil).items
        }
    }
    snap.loggedModels = try await s.tracking.searchLoggedModels(experimentIDs: ids, filter: nil, datasets: [], orderBy: [], maxResults: 100, pageToken: nil).items
    snap.registeredModels = try await s.registry.searchRegisteredModels(filter: nil, maxResults: 100, orderBy: [], pageToken: nil).items
    snap.versions = try await s.registry.searchModelVersions(filter: nil, maxResults: 100, orderBy: [], pageToken: nil).items
    snap.champion = try await s.registry.getVersion(name: "classifier", alias: "champion")
    for version in snap.versions {
        snap.events.append(try await s.registry.history(name: version.name, version: String(version.version)))
    }
    snap.artifacts = try await s.store.listArtifacts(under: "")
    return snap
}

/// A source data folder filled with `fill`, and a new PostgreSQL database for the target.
private func withSourceAndTarget(_ body: (Stack, PostgresTrackingStore, TemporaryDirectory) async throws -> Void) async throws {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let source = try Stack(store: try SQLiteTrackingStore(path: directory.file("cairn.sqlite")), blobs: directory.file("artifacts"))
    try await fill(source)
    try await withPostgresStore(poolSize: 2) { target in
        try await body(source, target, directory)
    }
}

private func copier(_ source: Stack, _ target: SQLStore, blobs: LocalBlobStore?, batchSize: Int = 500) -> StoreCopyService {
    StoreCopyService(source: source.store, target: target, sourceBlobs: source.blobs, targetBlobs: blobs, batchSize: batchSize,
                     sourceName: "source", targetName: "target")
}

private struct Stop: Error {}

/// Expects the copy to fail with a `CairnError` whose message holds every one of `parts`.
private func expectRefusal(of service: StoreCopyService, saying parts: [String]) async {
    await #expect {
        _ = try await service.copy()
    } throws: { error in
        let message = (error as? CairnError)?.message ?? ""
        return parts.allSatisfy { message.contains($0) }
    }
}

@Suite("cairn store copy: SQLite into PostgreSQL")
struct StoreCopyServiceTests {
    @Test("The copy tables cover every table and column of the schema, on both backends", arguments: StoreBackend.allCases)
    func tablesCoverTheSchema(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let schema = try await store.schemaColumns()
            #expect(Set(schema.keys) == Set(SQLStore.copyTables.map(\.name)))
            for table in SQLStore.copyTables {
                #expect(schema[table.name] == table.columns, "\(table.name)")
            }
        }
    }

    @Test("Every entity reads back the same from the copy, artifacts included; the comparison matches; new rows get new keys")
    func copiesEverything() async throws {
        try await withSourceAndTarget { source, target, directory in
            let targetStack = try Stack(store: target, blobs: directory.file("team-artifacts"))
            let service = copier(source, target, blobs: targetStack.blobs, batchSize: 7)
            let report = try await service.copy()
            #expect(!report.resumed && report.copiesArtifacts)
            #expect(report.copiedBlobs == 3 && report.presentBlobs == 0 && report.unreadableBlobs.isEmpty)
            #expect(report.readRows == report.writtenRows)
            let comparisons = try await service.compare()
            #expect(comparisons.count == SQLStore.copyTables.count)
            let differing = comparisons.filter { !$0.matches }
            #expect(differing.isEmpty, "\(differing)")
            #expect(comparisons.first { $0.table == "metric_segments" }!.sourceRows >= 6)
            #expect(try await service.missingTargetBlobs() == [])

            let before = try await snapshot(source)
            let after = try await snapshot(targetStack)
            #expect(before.runs.count == 4 && before.histories.count >= 6 && before.loggedModels.count == 1 && before.artifacts.count == 4)
            #expect(after == before)
            let loss = try #require(after.histories.first { $0.key.hasSuffix("/loss") }?.value)
            #expect(loss.count == 41 && loss.contains { $0.value.isNaN })
            let odd = try #require(after.histories.first { $0.key.hasSuffix("/odd") }?.value)
            #expect(odd.map(\.value.bitPattern) == [Double.infinity, -.infinity, -0.0].map(\.bitPattern))
            let entry = try await targetStack.artifacts.entry(path: after.artifacts[0].path)
            var read = 0
            for try await chunk in try await targetStack.artifacts.read(entry) { read += chunk.readableBytes }
            #expect(read == Int(entry.size))

            // The key generators were moved past the copied keys: the server's next rows fit in.
            let run = try await targetStack.tracking.createRun(experimentID: "1", userID: "eve", runName: "after", startTime: 9, tags: [])
            try await targetStack.tracking.logBatch(runID: run.info.runID, metrics: [Metric(key: "brand-new", value: 1, timestamp: 1, step: 0)], params: [], tags: [])
            try await targetStack.tracking.logInputs(runID: run.info.runID, datasets: [DatasetInput(tags: [], dataset: Dataset(name: "new", digest: "n", sourceType: "s", source: "s"))])
            _ = try await targetStack.tracking.createLoggedModel(experimentID: "1", name: "later", modelType: nil, sourceRunID: nil, params: [], tags: [])
            _ = try await targetStack.registry.createRegisteredModel(name: "other", tags: [], description: nil, user: "eve")
            #expect(try await targetStack.tracking.getRun(id: run.info.runID).metrics.map(\.key) == ["brand-new"])
        }
    }

    @Test("Copying twice changes nothing: the second copy writes no row and no blob")
    func copyingTwiceChangesNothing() async throws {
        try await withSourceAndTarget { source, target, directory in
            let blobs = try LocalBlobStore(root: URL(fileURLWithPath: directory.file("team-artifacts")))
            let service = copier(source, target, blobs: blobs)
            let first = try await service.copy()
            let comparisons = try await service.compare()
            let second = try await service.copy()
            #expect(second.resumed && second.readRows == first.readRows)
            #expect(second.writtenRows == 0)
            #expect(second.copiedBlobs == 0 && second.presentBlobs == 3)
            #expect(try await service.compare() == comparisons)
        }
    }

    @Test("A copy stopped after some batches is resumed by running it again, without duplicates")
    func interruptedCopyResumes() async throws {
        try await withSourceAndTarget { source, target, directory in
            let blobs = try LocalBlobStore(root: URL(fileURLWithPath: directory.file("team-artifacts")))
            let service = copier(source, target, blobs: blobs, batchSize: 3)
            for stopAfter in [4, 15] {
                await #expect(throws: Stop.self) {
                    _ = try await service.copy(afterBatch: { if $0 == stopAfter { throw Stop() } })
                }
            }
            let partial = try await service.compare()
            #expect(partial.contains { !$0.matches })
            let resumed = try await service.copy()
            #expect(resumed.resumed)
            #expect(resumed.writtenRows < resumed.readRows)
            let differing = try await service.compare().filter { !$0.matches }
            #expect(differing.isEmpty, "\(differing)")
            #expect(try await snapshot(try Stack(store: target, blobs: directory.file("team-artifacts"))) == snapshot(source))
            #expect(try await service.copy().writtenRows == 0)
        }
    }

    @Test("A target holding other data is refused and left as it was")
    func foreignTargetIsRefused() async throws {
        try await withSourceAndTarget { source, target, directory in
            let other = try Stack(store: target, blobs: directory.file("team-artifacts"))
            _ = try await other.tracking.createRun(experimentID: "0", userID: "eve", runName: "theirs", startTime: 1, tags: [])
            let before = try await SQLStore.copyTables.asyncMap { try await target.countRows($0) }
            let service = copier(source, target, blobs: nil)
            await expectRefusal(of: service, saying: ["not a copy of source", "runs row", "Nothing was changed"])
            #expect(try await SQLStore.copyTables.asyncMap { try await target.countRows($0) } == before)
        }
    }

    @Test("A damaged metric segment in the source is refused before anything is copied")
    func damagedSegmentIsRefused() async throws {
        try await withSourceAndTarget { source, target, _ in
            _ = try await source.store.writeUnaudited { db in
                // Flip one bit past the segment's header: its CRC-32C no longer matches.
                guard let row = try db.row("SELECT run_pk, key_id, seq, points FROM metric_segments ORDER BY run_pk, key_id, seq LIMIT 1") else { throw Stop() }
                var bytes: [UInt8] = row[3]
                bytes[bytes.count - 1] ^= 0x10
                try db.execute("UPDATE metric_segments SET points = ? WHERE run_pk = ? AND key_id = ? AND seq = ?",
                               [bytes, row[0] as Int64, row[1] as Int64, row[2] as Int64])
            }
            let service = copier(source, target, blobs: nil)
            await expectRefusal(of: service, saying: ["damaged metric data", "nothing was copied", "cairn verify"])
            #expect(try await target.countRows(SQLStore.copyTables.first { $0.name == "runs" }!) == 0)
        }
    }
}

extension Sequence {
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}
