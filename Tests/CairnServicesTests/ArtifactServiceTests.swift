import CairnArtifacts
import CairnCore
import CairnServices
import CairnStore
import CairnTestSupport
import Foundation
import NIOCore
import Testing

@Suite("Artifact service")
struct ArtifactServiceTests {
    struct Fixture {
        let directory: TemporaryDirectory
        let tracking: TrackingService
        let artifacts: ArtifactService
        let blobs: LocalBlobStore

        init() throws {
            directory = try TemporaryDirectory()
            let store = try SQLiteTrackingStore(path: directory.file("cairn.sqlite"))
            blobs = try LocalBlobStore(root: URL(fileURLWithPath: directory.file("artifacts")))
            tracking = TrackingService(store: store)
            artifacts = ArtifactService(index: store, blobs: blobs, tracking: tracking)
        }

        func put(_ path: String, _ text: String) async throws -> ArtifactEntry {
            try await artifacts.upload(path: path, body: ByteBufferChunks([ByteBuffer(string: text)]))
        }

        func root(_ run: Run) -> String { ArtifactService.proxyPath(fromArtifactURI: run.info.artifactURI)! }
    }

    @Test("Uploads round-trip, identical content is stored once, listings show folders and digests")
    func roundTrip() async throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let run = try await f.tracking.createRun(experimentID: "0", userID: nil, runName: "r", startTime: nil, tags: [])
        let root = f.root(run)
        let a = try await f.put("\(root)/data/a.txt", "same")
        let b = try await f.put("\(root)/data/sub/b.txt", "same")
        #expect(a.digest == b.digest)
        #expect(try await f.blobs.allDigests() == [a.digest])
        let entry = try await f.artifacts.entry(path: "\(root)/data/a.txt")
        #expect(entry.size == 4)
        #expect(try await f.blobs.readAll(entry.digest) == Array("same".utf8))
        let listing = try await f.artifacts.list(directory: "\(root)/data")
        #expect(listing.map(\.path) == ["a.txt", "sub"])
        #expect(listing[1].isDirectory && listing[1].size == nil)
        let runListing = try await f.artifacts.listRunArtifacts(runID: run.info.runID, path: "data")
        #expect(runListing.files.map(\.path) == ["data/a.txt", "data/sub"])
        #expect(runListing.files[0].digest == a.digest)
    }

    @Test("A logged model's files list and read below its own artifact location; a folder is not a file")
    func loggedModelArtifacts() async throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let model = try await f.tracking.createLoggedModel(experimentID: "0", name: "model", modelType: nil,
                                                           sourceRunID: "0123456789abcdef0123456789abcdef", params: [], tags: [])
        let root = try #require(ArtifactService.proxyPath(fromArtifactURI: model.artifactURI))
        _ = try await f.put("\(root)/MLmodel", "flavors: {}")
        _ = try await f.put("\(root)/sub/w.bin", "w")
        let top = try await f.artifacts.listLoggedModelArtifacts(modelID: model.modelID, path: nil)
        #expect(top.rootURI == model.artifactURI && top.files.map(\.path) == ["MLmodel", "sub"])
        #expect(try await f.artifacts.listLoggedModelArtifacts(modelID: model.modelID, path: "sub").files.map(\.path) == ["sub/w.bin"])
        #expect(try await f.artifacts.listLoggedModelArtifacts(modelID: model.modelID, path: "MLmodel").files.isEmpty)
        #expect(try await f.artifacts.loggedModelEntry(modelID: model.modelID, path: "sub/w.bin").size == 1)
        let folder = await #expect(throws: CairnError.self) { _ = try await f.artifacts.loggedModelEntry(modelID: model.modelID, path: "sub") }
        #expect(folder?.code == .invalidParameterValue && folder?.message == "Artifact path refers to a directory, not a file: '\(root)/sub'")
        let absent = await #expect(throws: CairnError.self) { _ = try await f.artifacts.loggedModelEntry(modelID: model.modelID, path: "absent") }
        #expect(absent?.code == .resourceDoesNotExist)
        let unknown = await #expect(throws: CairnError.self) { _ = try await f.artifacts.listLoggedModelArtifacts(modelID: "m-0123", path: nil) }
        #expect(unknown?.code == .resourceDoesNotExist)
    }

    @Test("MLflow's web app uploads into a run with MLflow's checks; a refused upload writes nothing")
    func uiUpload() async throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let run = try await f.tracking.createRun(experimentID: "0", userID: nil, runName: "r", startTime: nil, tags: [])
        let id = run.info.runID
        let entry = try await f.artifacts.uploadRunArtifact(runID: id, path: "ui/note.txt", data: ByteBuffer(string: "hello"))
        #expect(entry.path == "\(f.root(run))/ui/note.txt" && entry.size == 5)
        let big = ByteBuffer(repeating: 0x61, count: ArtifactService.maxUIUploadBytes + 1)
        let refused: [(String?, String?, ByteBuffer, String?)] = [
            (nil, "a.txt", ByteBuffer(string: "x"), "Request must specify run_uuid."),
            (id, nil, ByteBuffer(string: "x"), "Request must specify path."),
            (id, "a.txt", ByteBuffer(), "Request must specify data."),
            (id, "big.bin", big, "Artifact size is too large. Max size is 10MB."),
            (id, "../a.txt", ByteBuffer(string: "x"), nil),
            ("0123456789abcdef0123456789abcdef", "a.txt", ByteBuffer(string: "x"), nil),
        ]
        for (runID, path, data, message) in refused {
            let error = await #expect(throws: CairnError.self) { _ = try await f.artifacts.uploadRunArtifact(runID: runID, path: path, data: data) }
            if let message { #expect(error?.message == message) }
        }
        #expect(try await f.artifacts.listRunArtifacts(runID: id, path: nil).files.map(\.path) == ["ui"])
        #expect(try await f.blobs.allDigests().count == 1)
    }

    @Test("Paths that would escape the artifact root are refused and write nothing", arguments: [
        "../x", "a/../../x", "/etc/passwd", "a\\..\\x", "a/\u{0}x", "", "a//b", "./a",
    ])
    func escapes(path: String) async throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        await #expect(throws: CairnError.self) { _ = try await f.put(path, "x") }
        #expect(try await f.blobs.allDigests().isEmpty)
        #expect(try await f.artifacts.list(directory: "").isEmpty)
    }

    @Test("A path is a file or a folder, never both")
    func fileOrFolder() async throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        _ = try await f.put("0/r/artifacts/x", "file")
        await #expect(throws: CairnError.self) { _ = try await f.put("0/r/artifacts/x/y", "under a file") }
        _ = try await f.put("0/r/artifacts/d/y", "in a folder")
        await #expect(throws: CairnError.self) { _ = try await f.put("0/r/artifacts/d", "over a folder") }
        #expect(try await f.artifacts.list(directory: "0/r/artifacts").map(\.path) == ["d", "x"])
    }

    @Test("gc frees a deleted run's unique blobs and keeps shared ones; verify finds damage")
    func gcAndVerify() async throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let kept = try await f.tracking.createRun(experimentID: "0", userID: nil, runName: "kept", startTime: nil, tags: [])
        let gone = try await f.tracking.createRun(experimentID: "0", userID: nil, runName: "gone", startTime: nil, tags: [])
        let shared = try await f.put("\(f.root(kept))/shared.txt", "shared")
        _ = try await f.put("\(f.root(gone))/shared.txt", "shared")
        let unique = try await f.put("\(f.root(gone))/unique.bin", "only in the deleted run")
        try await f.tracking.deleteRun(id: gone.info.runID)
        let preview = try await f.artifacts.collectGarbage(dryRun: true, gracePeriod: 0)
        #expect(preview.removedBlobs.map(\.digest) == [unique.digest])
        #expect(try await f.blobs.allDigests().count == 2)
        let report = try await f.artifacts.collectGarbage(dryRun: false, gracePeriod: 0)
        #expect(report.freedBytes == unique.size)
        #expect(try await f.blobs.allDigests() == [shared.digest])
        #expect(try await f.artifacts.verify().isHealthy)

        let file = try #require(f.blobs.fileURL(for: shared.digest))
        try Data("tampered".utf8).write(to: file)
        let damaged = try await f.artifacts.verify()
        #expect(!damaged.isHealthy)
        #expect(damaged.damaged.map(\.path) == ["\(f.root(kept))/shared.txt"])
        try FileManager.default.removeItem(at: file)
        #expect(try await f.artifacts.verify().missing.map(\.path) == ["\(f.root(kept))/shared.txt"])
    }
}

/// Issue 14: nothing a registered model version or a logged model uses is ever collected,
/// even after the run the files were logged in is deleted. On both store backends.
@Suite("gc keeps what models use")
struct ArtifactGCModelTests {
    struct Fixture {
        let store: SQLStore
        let directory: TemporaryDirectory
        let tracking: TrackingService
        let registry: RegistryService
        let artifacts: ArtifactService
        let blobs: LocalBlobStore

        init(_ store: SQLStore) throws {
            self.store = store
            directory = try TemporaryDirectory()
            blobs = try LocalBlobStore(root: URL(fileURLWithPath: directory.file("artifacts")))
            let clock = TestClock()
            tracking = TrackingService(store: store, now: { clock.now() })
            registry = RegistryService(registry: store, tracking: tracking)
            artifacts = ArtifactService(index: store, blobs: blobs, tracking: tracking)
        }

        /// Uploads each relative path with unique content under `folder`; the entries.
        func put(_ folder: String, _ paths: [String]) async throws -> [ArtifactEntry] {
            var entries: [ArtifactEntry] = []
            for path in paths {
                entries.append(try await artifacts.upload(path: "\(folder)/\(path)", body: ByteBufferChunks([ByteBuffer(string: "\(folder)/\(path) content")])))
            }
            return entries
        }

        func version(_ name: String, _ source: String, runID: String?, modelID: String? = nil) async throws -> ModelVersion {
            try await registry.createModelVersion(name: name, source: source, runID: runID, runLink: nil, description: nil,
                                                  tags: [], modelID: modelID, user: "ana")
        }

        func gc(dryRun: Bool = false) async throws -> ArtifactGCReport {
            try await artifacts.collectGarbage(dryRun: dryRun, gracePeriod: 0)
        }

        /// Runs `body` on a new store of `backend` with one run in experiment 0 and that run's
        /// artifact folder (its proxy path).
        static func withRun(_ backend: StoreBackend, _ body: (Fixture, Run, String) async throws -> Void) async throws {
            try await withStore(backend) { store in
                let f = try Fixture(store)
                defer { f.directory.remove() }
                let run = try await f.tracking.createRun(experimentID: "0", userID: nil, runName: "train", startTime: nil, tags: [])
                try await body(f, run, try #require(ArtifactService.proxyPath(fromArtifactURI: run.info.artifactURI)))
            }
        }
    }

    @Test("A version registered from a deleted run's folder keeps its files and blobs; the run's other files go", arguments: StoreBackend.allCases)
    func registeredVersionsKeepTheirFiles(backend: StoreBackend) async throws {
        try await Fixture.withRun(backend) { f, run, root in
            let runID = run.info.runID
            let model = try await f.put(root, ["model/MLmodel", "model/model.pkl", "model/requirements.txt"])
            let onnx = try await f.put(root, ["onnx/model.onnx"])
            let other = try await f.put(root, ["model-notes.txt", "plots/loss.png"])  // "model-notes.txt" is not under "model"
            _ = try await f.registry.createRegisteredModel(name: "m", tags: [], description: nil, user: "ana")
            // Any stage, any alias: v1 from runs:/ with an alias, v2 from mlflow-artifacts:/ archived.
            _ = try await f.version("m", "runs:/\(runID)/model", runID: runID)
            try await f.registry.setAlias(name: "m", alias: "champion", version: "1", user: "ana")
            _ = try await f.version("m", "\(run.info.artifactURI)/onnx", runID: runID)
            _ = try await f.registry.transitionStage(name: "m", version: "2", stage: "Archived", archiveExisting: false, user: "ana")
            try await f.tracking.deleteRun(id: runID)
            #expect(try await f.artifacts.keptArtifactUsers(runID: runID) == [.modelVersion(name: "m", version: 1), .modelVersion(name: "m", version: 2)])

            let preview = try await f.gc(dryRun: true)
            #expect(preview.removedManifestEntries == other)
            #expect(preview.keptManifestEntries == [KeptArtifacts(runID: runID, entries: model + onnx,
                                                                  users: [.modelVersion(name: "m", version: 1), .modelVersion(name: "m", version: 2)])])
            #expect(Set(preview.removedBlobs.map(\.digest)) == Set(other.map(\.digest)))
            let report = try await f.gc()
            #expect(report.removedManifestEntries == other)
            #expect(report.keptManifestEntries == preview.keptManifestEntries)
            #expect(Set(report.removedBlobs.map(\.digest)) == Set(other.map(\.digest)))
            #expect(Set(try await f.blobs.allDigests()) == Set((model + onnx).map(\.digest)))
            #expect(try await f.artifacts.list(directory: "\(root)/model").map(\.path) == ["MLmodel", "model.pkl", "requirements.txt"])
            #expect(try await f.artifacts.list(directory: root).map(\.path) == ["model", "onnx"])
            #expect(try await f.artifacts.verify().isHealthy)
            // A second gc changes nothing; once the versions are deleted, the files go too.
            #expect(try await f.gc().removedManifestEntries.isEmpty)
            // A version copied from models:/m/1 keeps its files after m version 1 is deleted.
            _ = try await f.registry.createRegisteredModel(name: "copy", tags: [], description: nil, user: "ana")
            _ = try await f.version("copy", "models:/m/1", runID: nil)
            try await f.registry.deleteModelVersion(name: "m", version: "1", user: "ana")
            let afterCopy = try await f.gc()
            #expect(afterCopy.removedManifestEntries.isEmpty)
            #expect(afterCopy.keptManifestEntries.map(\.users) == [[.modelVersion(name: "copy", version: 1), .modelVersion(name: "m", version: 2)]])
            try await f.registry.deleteModelVersion(name: "copy", version: "1", user: "ana")
            let afterV1 = try await f.gc()
            #expect(afterV1.removedManifestEntries == model)
            #expect(afterV1.keptManifestEntries.map(\.entries) == [onnx])
            try await f.registry.deleteModelVersion(name: "m", version: "2", user: "ana")
            #expect(try await f.gc().removedManifestEntries == onnx)
            #expect(try await f.blobs.allDigests().isEmpty)
            #expect(try await f.artifacts.keptArtifactUsers(runID: runID).isEmpty)
        }
    }

    @Test("A version registered between gc --dry-run and gc is safe", arguments: StoreBackend.allCases)
    func versionRegisteredAfterTheDryRun(backend: StoreBackend) async throws {
        try await Fixture.withRun(backend) { f, run, root in
            let model = try await f.put(root, ["model/MLmodel", "model/model.pkl"])
            try await f.tracking.deleteRun(id: run.info.runID)
            #expect(try await f.gc(dryRun: true).removedManifestEntries == model)
            _ = try await f.registry.createRegisteredModel(name: "late", tags: [], description: nil, user: "ana")
            _ = try await f.version("late", "runs:/\(run.info.runID)/model/", runID: run.info.runID)
            let report = try await f.gc()
            #expect(report.removedManifestEntries.isEmpty && report.removedBlobs.isEmpty)
            #expect(report.keptManifestEntries.map(\.users) == [[.modelVersion(name: "late", version: 1)]])
            #expect(Set(try await f.blobs.allDigests()) == Set(model.map(\.digest)))
        }
    }

    @Test("Logged models and versions of logged models keep their files inside a deleted run's folder", arguments: StoreBackend.allCases)
    func loggedModelsKeepTheirFiles(backend: StoreBackend) async throws {
        try await Fixture.withRun(backend) { f, run, root in
            let runID = run.info.runID
            // An experiment whose artifact location lies inside the run's folder: its logged
            // models' files are the run's files too.
            let experiment = try await f.tracking.createExperiment(name: "exported", artifactLocation: "\(run.info.artifactURI)/exported", tags: [])
            let logged = try await f.tracking.createLoggedModel(experimentID: experiment.experimentID, name: "clf", modelType: nil,
                                                                sourceRunID: runID, params: [], tags: [])
            let registeredOnly = try await f.tracking.createLoggedModel(experimentID: experiment.experimentID, name: "reg", modelType: nil,
                                                                        sourceRunID: runID, params: [], tags: [])
            let loggedFiles = try await f.put(try #require(ArtifactService.proxyPath(fromArtifactURI: logged.artifactURI)), ["MLmodel", "model.pkl"])
            let registeredFiles = try await f.put(try #require(ArtifactService.proxyPath(fromArtifactURI: registeredOnly.artifactURI)), ["MLmodel"])
            let other = try await f.put(root, ["metrics.json"])
            _ = try await f.registry.createRegisteredModel(name: "r", tags: [], description: nil, user: "ana")
            _ = try await f.version("r", "models:/\(registeredOnly.modelID)", runID: nil, modelID: registeredOnly.modelID)
            // A deleted logged model's files stay while a version uses them.
            try await f.tracking.deleteLoggedModel(id: registeredOnly.modelID)
            try await f.tracking.deleteRun(id: runID)

            let report = try await f.gc()
            #expect(report.removedManifestEntries == other)
            #expect(report.keptManifestEntries.count == 1)
            let kept = try #require(report.keptManifestEntries.first)
            #expect(kept.runID == runID && Set(kept.entries) == Set(loggedFiles + registeredFiles))
            #expect(Set(kept.users) == [.loggedModel(id: logged.modelID, name: "clf"), .modelVersion(name: "r", version: 1)])
            #expect(Set(try await f.blobs.allDigests()) == Set((loggedFiles + registeredFiles).map(\.digest)))
            #expect(try await f.registry.downloadURI(name: "r", version: "1") == registeredOnly.artifactURI)
        }
    }
}
