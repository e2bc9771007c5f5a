import CairnClient
import CairnCore
import Foundation
import Testing

/// The Swift SDK against a real server that is stopped mid-run and restarted.
@Suite(.serialized) struct SDKIntegrationTests {
    /// Waits until `condition` holds; the SDK works in the background. The bound only protects
    /// against a hang: it is far above what a loaded machine needs, so it never decides the test.
    private func eventually(_ seconds: Double = 300, _ condition: () async -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if await condition() { return true }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return await condition()
    }

    @Test func aServerStoppedMidRunLosesNothingAndDuplicatesNothing() async throws {
        let data = try TempFolder("cairn-sdk-server")
        let journal = try TempFolder("cairn-sdk-journal")
        var server = try ServerProcess(data: data)
        let port = server.port
        var configuration = LogBuffer.Configuration()
        configuration.flushInterval = 0.05
        configuration.maxAttempts = 3
        configuration.initialBackoff = 0.05
        let run = try await Cairn.startRun(experiment: "sdk-outage", runName: "outage", trackingURI: server.uri,
                                       journalFolder: URL(fileURLWithPath: journal.path), configuration: configuration, requestTimeout: 60)
        let runID = try #require(run.runID)
        run.log(param: "lr", value: "0.1")
        for step in 0..<500 { run.log(metric: "loss", value: 1 / Double(step + 1), step: Int64(step)) }
        let client = TrackingClient(trackingURI: server.uri)
        // Wait until the first part has reached the server, then stop it.
        #expect(await eventually { (try? await client.metricHistory(runID: runID, key: "loss").count) == 500 })
        server.stop()
        for step in 500..<1000 { run.log(metric: "loss", value: 1 / Double(step + 1), step: Int64(step)) }
        run.set(tag: "phase", value: "during-outage")
        // The SDK retries, then goes offline and journals; the training loop never waited.
        #expect(await eventually { run.isOffline })
        server = try ServerProcess(port: port, data: data)
        for step in 1000..<1500 { run.log(metric: "loss", value: 1 / Double(step + 1), step: Int64(step)) }
        let complete = await run.finish(status: .finished, deadline: 300)
        #expect(complete, "finish should upload the journal once the server is back: \(run.problems)")

        let history = try await client.metricHistory(runID: runID, key: "loss")
        #expect(history.count == 1500)
        #expect(Set(history.map(\.step)).count == 1500)
        let stored = try await client.getRun(id: runID)
        #expect(stored.info.status == .finished)
        #expect(stored.tags.contains(Tag("phase", "during-outage")))
        #expect(stored.params.contains(Param("lr", "0.1")))
        let runs = try await client.searchAllRuns(experimentIDs: [stored.info.experimentID])
        #expect(runs.count == 1)
        #expect(Journal.pending(in: URL(fileURLWithPath: journal.path)).isEmpty)
    }

    @Test func aSyncFindsARunWhoseCreationAnswerWasLostAndReplaysWithoutDuplicates() async throws {
        let server = try ServerProcess()
        let folder = try TempFolder("cairn-sync-lost")
        let client = TrackingClient(trackingURI: server.uri)
        let experimentID = try await client.createExperiment(name: "lost-answer")
        // The server created the run, but the answer never reached the journal.
        let marker = Tag(journalMarkerTag, "j-lost")
        let created = try await client.createRun(experimentID: experimentID, runName: "r", startTime: 1, tags: [marker])
        try await client.logBatch(runID: created.info.runID, metrics: [Metric(key: "m", value: 1, timestamp: 10, step: 0)], params: [Param("p", "1")], tags: [])
        let journal = Journal(folder: URL(fileURLWithPath: folder.path), journalID: "j-lost")
        try journal.append([
            .run(journalID: "j-lost", experimentID: experimentID, experimentName: nil, runName: "r", startTime: 1, tags: [marker]),
            .batch(LogBuffer.Batch(metrics: [Metric(key: "m", value: 1, timestamp: 10, step: 0), Metric(key: "m", value: 2, timestamp: 11, step: 1)],
                                   params: [Param("p", "1")], tags: [Tag("t", "v")])),
            .end(status: .finished, endTime: 20),
        ])
        let sync = JournalSync(client: client)
        let first = try await sync.sync(file: journal.fileURL)
        #expect(first.runID == created.info.runID)
        #expect(!first.createdRun)
        #expect(first.refused.isEmpty)
        // Replaying the same journal again (a sync interrupted before it removed the file).
        try journal.append([
            .run(journalID: "j-lost", experimentID: experimentID, experimentName: nil, runName: "r", startTime: 1, tags: [marker]),
            .batch(LogBuffer.Batch(metrics: [Metric(key: "m", value: 2, timestamp: 11, step: 1)], params: [Param("p", "1")], tags: [])),
        ])
        let second = try await sync.sync(file: journal.fileURL)
        #expect(second.runID == created.info.runID)
        let history = try await client.metricHistory(runID: created.info.runID, key: "m")
        #expect(history.map(\.step) == [0, 1])
        let runs = try await client.searchAllRuns(experimentIDs: [experimentID])
        #expect(runs.count == 1)
        #expect(runs.first?.info.status == .finished)
    }

    @Test func theExampleTrainingLoopLogsItsRun() throws {
        let server = try ServerProcess()
        let example = packageRoot.appendingPathComponent(".build/debug/CairnExample").path
        let result = try runProgram(example, ["50", "example-test"], environment: ["MLFLOW_TRACKING_URI": server.uri])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("all logged"))
        let list = try parseJSON(try cairn(["runs", "list", "--json", "--experiment", "example-test", "--tracking-uri", server.uri]).stdout)
        let runs = list["runs"] as? [[String: Any]] ?? []
        #expect(runs.count == 1)
        let metrics = (runs.first?["data"] as? [String: Any])?["metrics"] as? [[String: Any]] ?? []
        #expect(Set(metrics.compactMap { $0["key"] as? String }) == ["loss", "w", "b"])
    }
}

