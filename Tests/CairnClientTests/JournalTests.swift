import CairnCore
import Foundation
import Testing
@testable import CairnClient

private func temporaryFolder() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-journal-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite struct JournalTests {
    @Test func recordsSurviveAWriteAndReadRoundTrip() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let journal = Journal(folder: folder, journalID: "abc")
        let records: [JournalRecord] = [
            .run(journalID: "abc", experimentID: nil, experimentName: "exp \"quoted\"", runName: "r1", startTime: 1234, tags: [Tag("cairn.journal.id", "abc"), Tag("note", "line\nbreak")]),
            .runID("0123456789abcdef0123456789abcdef"),
            .batch(LogBuffer.Batch(metrics: [Metric(key: "loss", value: .nan, timestamp: 5, step: 1), Metric(key: "acc", value: -.infinity, timestamp: 6, step: 2),
                                             Metric(key: "x", value: 0.1, timestamp: 7, step: -3)],
                                   params: [Param("lr", "0.01")], tags: [Tag("t", "v")])),
            .inputs([DatasetInput(tags: [Tag("mlflow.data.context", "input")], dataset: Dataset(name: "d", digest: "sha256:abc", sourceType: "local", source: "{\"uri\": \"/x\"}", profile: "{}"))]),
            .end(status: .failed, endTime: 99),
        ]
        try journal.append(records)
        let read = try Journal.read(journal.fileURL)
        #expect(read.count == records.count)
        #expect(read[0] == records[0])
        #expect(read[1] == records[1])
        if case .batch(let batch) = read[2] {
            #expect(batch.metrics[0].value.isNaN)
            #expect(batch.metrics[1].value == -.infinity)
            #expect(batch.metrics[2] == Metric(key: "x", value: 0.1, timestamp: 7, step: -3))
            #expect(batch.params == [Param("lr", "0.01")])
        } else {
            Issue.record("expected a batch")
        }
        #expect(read[3] == records[3])
        #expect(read[4] == records[4])
    }

    @Test func aTornLastLineIsIgnored() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let journal = Journal(folder: folder, journalID: "torn")
        try journal.append([.runID("r1"), .end(status: .finished, endTime: 1)])
        let handle = try FileHandle(forWritingTo: journal.fileURL)
        handle.seekToEndOfFile()
        handle.write(Data("{\"kind\":\"batch\",\"metr".utf8))
        try handle.close()
        #expect(try Journal.read(journal.fileURL) == [.runID("r1"), .end(status: .finished, endTime: 1)])
    }

    @Test func artifactsAreKeptBesideTheJournalAndRemovedWithIt() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let journal = Journal(folder: folder, journalID: "art")
        try journal.appendArtifact(path: "cairn/stdout.log", contents: Data("hello".utf8))
        let records = try Journal.read(journal.fileURL)
        guard case .artifact(let path, let file)? = records.first else {
            Issue.record("expected an artifact record")
            return
        }
        #expect(path == "cairn/stdout.log")
        #expect(try Data(contentsOf: folder.appendingPathComponent(file)) == Data("hello".utf8))
        #expect(Journal.pending(in: folder) == [journal.fileURL])
        journal.remove()
        #expect(!journal.exists)
        #expect(!FileManager.default.fileExists(atPath: journal.filesFolder.path))
        #expect(Journal.pending(in: folder).isEmpty)
    }

    @Test func aTrackingURIThatIsNotHTTPIsRefusedAtStart() async {
        await #expect(throws: TrackingClientError.self) {
            _ = try await Cairn.startRun(trackingURI: "ftp://example.com", journalFolder: FileManager.default.temporaryDirectory)
        }
        await #expect(throws: TrackingClientError.self) {
            _ = try await Cairn.startRun(trackingURI: "localhost:5000", journalFolder: FileManager.default.temporaryDirectory)
        }
    }

    @Test func theDefaultFolderFollowsCAIRN_JOURNAL_DIR() {
        #expect(Journal.defaultFolder(environment: ["CAIRN_JOURNAL_DIR": "/tmp/j"]).path == "/tmp/j")
        #expect(Journal.defaultFolder(environment: ["HOME": "/home/u"]).path == "/home/u/.cairn/journal")
    }

    @Test func anUnreachableServerStartsAnOfflineRunThatJournalsEverything() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // Port 9 on loopback: nothing listens, the connection is refused at once.
        let run = try await Cairn.startRun(experiment: "offline", runName: "r", trackingURI: "http://127.0.0.1:9", journalFolder: folder, requestTimeout: 2)
        #expect(run.runID == nil)
        #expect(run.isOffline)
        for step in 0..<10 { run.log(metric: "loss", value: Double(step), step: Int64(step)) }
        run.log(param: "lr", value: "0.1")
        let complete = await run.finish(status: .finished, deadline: 3)
        #expect(!complete)
        let records = try Journal.read(run.journal.fileURL)
        guard case .run(let id, _, let name, let runName, _, let tags)? = records.first else {
            Issue.record("the journal must start with the run")
            return
        }
        #expect(id == run.journalID)
        #expect(name == "offline")
        #expect(runName == "r")
        #expect(tags.contains(Tag(journalMarkerTag, run.journalID)))
        let metrics = records.flatMap { record -> [Metric] in
            if case .batch(let b) = record { return b.metrics }
            return []
        }
        #expect(metrics.map(\.step) == Array(0..<10))
        #expect(records.last == .end(status: .finished, endTime: { if case .end(_, let t) = records.last! { return t }; return 0 }()))
    }
}
