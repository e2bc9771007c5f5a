import CairnArtifacts
import CairnCore
import CairnServices
import CairnStore
import CairnTestSupport
import Foundation
import NIOCore
import Testing

@Suite("Backup, restore and garbage collection of partial uploads")
struct BackupServiceTests {
    private func services(_ folder: String) throws -> (TrackingService, ArtifactService, BackupService, SQLiteTrackingStore) {
        let store = try SQLiteTrackingStore(path: folder + "/cairn.sqlite")
        let blobs = try LocalBlobStore(root: URL(fileURLWithPath: folder + "/artifacts"))
        let tracking = TrackingService(store: store)
        return (tracking, ArtifactService(index: store, blobs: blobs, tracking: tracking), BackupService(store: store, index: store, blobs: blobs), store)
    }

    @Test("A backup taken while the store is open restores the same runs, metrics and artifacts; restore refuses while in use and keeps the old file")
    func backupAndRestore() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let data = directory.file("data")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let run: Run
        let root: String
        do {
            let (tracking, artifacts, backup, store) = try services(data)
            run = try await tracking.createRun(experimentID: "0", userID: "u", runName: "kept", startTime: 1, tags: [])
            try await tracking.logBatch(runID: run.info.runID, metrics: (0..<100).map { Metric(key: "loss", value: Double($0), timestamp: 1, step: Int64($0)) },
                                        params: [Param("lr", "0.1")], tags: [])
            root = ArtifactService.proxyPath(fromArtifactURI: run.info.artifactURI)!
            _ = try await artifacts.upload(path: "\(root)/model.bin", body: ByteBufferChunks([ByteBuffer(string: "weights")]))

            let report = try await backup.backup(to: directory.file("backup"), includeArtifacts: true)
            #expect(report.integrity.isHealthy && report.copiedBlobs == 1 && report.unreadableBlobs.isEmpty)
            await #expect(throws: CairnError.self) { _ = try await backup.backup(to: directory.file("backup"), includeArtifacts: true) }

            // Changes after the backup, then restore: the backup's state comes back.
            try await tracking.deleteRun(id: run.info.runID)
            await #expect(throws: CairnError.self) {
                _ = try await BackupService.restore(from: directory.file("backup"), databasePath: data + "/cairn.sqlite",
                                                    artifacts: LocalBlobStore(root: URL(fileURLWithPath: data + "/artifacts")), replace: true)
            }
            try store.close()
        }
        try FileManager.default.removeItem(atPath: data + "/artifacts")
        await #expect(throws: CairnError.self) {
            _ = try await BackupService.restore(from: directory.file("backup"), databasePath: data + "/cairn.sqlite",
                                                artifacts: LocalBlobStore(root: URL(fileURLWithPath: data + "/artifacts")), replace: false)
        }
        let restored = try await BackupService.restore(from: directory.file("backup"), databasePath: data + "/cairn.sqlite",
                                                       artifacts: LocalBlobStore(root: URL(fileURLWithPath: data + "/artifacts")), replace: true)
        #expect(restored.integrity.isHealthy && restored.copiedBlobs == 1)
        let names = try FileManager.default.contentsOfDirectory(atPath: data)
        #expect(names.contains { $0.hasPrefix("cairn.sqlite.before-restore-") })

        let (tracking2, artifacts2, _, _) = try services(data)
        let back = try await tracking2.getRun(id: run.info.runID)
        #expect(back.info.lifecycleStage == .active)
        #expect(try await tracking2.getMetricHistory(runID: run.info.runID, key: "loss", maxResults: nil, pageToken: nil).items.count == 100)
        let entry = try await artifacts2.entry(path: "\(root)/model.bin")
        #expect(entry.size == 7)
        #expect(try await artifacts2.blobs.readAll(entry.digest) == Array("weights".utf8))
    }

    @Test("gc removes a partial upload whose writer died, never one whose writer is alive, and only after the grace period")
    func abandonedTempFiles() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (_, artifacts, _, _) = try services(directory.path)
        let tmp = directory.file("artifacts/tmp")
        let dead = tmp + "/upload-dead.tmp", alive = tmp + "/upload-alive.tmp", fresh = tmp + "/upload-fresh.tmp"
        for path in [dead, alive, fresh] { try Data(repeating: 7, count: 1000).write(to: URL(fileURLWithPath: path)) }
        let old = Date().addingTimeInterval(-3600)
        for path in [dead, alive] { try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: path) }
        // The fresh file's time is set ahead, so that a test stalled on a busy machine cannot
        // age it past the one-minute grace period before gc looks at it.
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(600)], ofItemAtPath: fresh)
        // A live writer holds an exclusive lock on its temp file, as LocalBlobStore.write does.
        let writer = open(alive, O_WRONLY)
        #expect(writer >= 0 && flock(writer, LOCK_EX) == 0)
        defer { _ = close(writer) }

        let dry = try await artifacts.collectGarbage(dryRun: true)
        #expect(dry.removedTempFiles.map(\.name) == ["tmp/upload-dead.tmp"])
        #expect(FileManager.default.fileExists(atPath: dead))
        let report = try await artifacts.collectGarbage(dryRun: false)
        #expect(report.removedTempFiles == [AbandonedTempFile(name: "tmp/upload-dead.tmp", size: 1000)])
        #expect(!FileManager.default.fileExists(atPath: dead))
        #expect(FileManager.default.fileExists(atPath: alive) && FileManager.default.fileExists(atPath: fresh))
    }
}
