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
