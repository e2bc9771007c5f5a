import CairnClient
import CairnCore
import Foundation
import Testing

/// `cairn run`'s relay and the SDK's attach mode against a real server that is stopped and
/// restarted; no sleeps: each step waits for the previous request's answer.
@Suite(.serialized) struct RunRelayIntegrationTests {
    private func logMetric(_ relay: RunRelay, step: Int) async -> RelayResponse {
        let id = relay.childRunID
        let body = #"{"run_id":"\#(id)","key":"loss","value":\#(Double(step) / 10),"timestamp":\#(1000 + step),"step":\#(step)}"#
        return await relay.handle(RelayRequest(method: "POST", path: "/api/2.0/mlflow/runs/log-metric", contentType: "application/json", body: Array(body.utf8)))
    }

    @Test func aServerDownInTheMiddleJournalsTheRestInOrderAndFinishUploadsItOnce() async throws {
        let data = try TempFolder("cairn-relay-server")
        let journal = try TempFolder("cairn-relay-journal")
        var server = try ServerProcess(data: data)
        let port = server.port
        let client = TrackingClient(trackingURI: server.uri, timeout: 5)
        let run = try await CairnRun.start(client: client, experimentName: "relay-outage", experimentID: nil, runName: "wrapped", tags: [],
                                           journalFolder: URL(fileURLWithPath: journal.path), configuration: LogBuffer.Configuration())
        let runID = try #require(run.runID)
        let relay = RunRelay(run: run, client: client, serverRun: try await client.getRun(id: runID))
        #expect(relay.childRunID == runID)

        #expect(await logMetric(relay, step: 0) == .empty)  // forwarded: the server's own answer
        #expect(try await client.metricHistory(runID: runID, key: "loss").map(\.step) == [0])
        #expect(!relay.isJournaling)

        server.stop()
        #expect(await logMetric(relay, step: 1) == .empty)  // journaled, acknowledged once fsynced
        #expect(relay.isJournaling)
        let get = await relay.handle(RelayRequest(method: "GET", path: "/api/2.0/mlflow/runs/get", query: "run_id=\(runID)"))
        #expect(get.status == 200)
        #expect(try JSONValue.parse(get.body)["run"]?["info"]?["experiment_id"]?.stringValue == relay.experimentID)

        server = try ServerProcess(port: port, data: data)
        #expect(await logMetric(relay, step: 2) == .empty)  // still journaled: it must follow step 1
        #expect(try await client.metricHistory(runID: runID, key: "loss").map(\.step) == [0])

        #expect(await run.finish(status: .finished, deadline: 300), "\(run.problems)")
        let history = try await client.metricHistory(runID: runID, key: "loss")
        #expect(history.map(\.step) == [0, 1, 2])
        #expect(try await client.getRun(id: runID).info.status == .finished)
        #expect(Journal.pending(in: URL(fileURLWithPath: journal.path)).isEmpty)
    }

    @Test func theSDKAttachesToTheRunInMLFLOW_RUN_IDAndLeavesItsEndToTheOwner() async throws {
        let server = try ServerProcess()
        let journal = try TempFolder("cairn-attach-journal")
        let client = TrackingClient(trackingURI: server.uri)
        let experimentID = try await client.createExperiment(name: "attach")
        let owner = try await client.createRun(experimentID: experimentID, runName: "owned", startTime: 1, tags: [])
        let environment = ["MLFLOW_RUN_ID": owner.info.runID, "MLFLOW_TRACKING_URI": server.uri]
        var configuration = LogBuffer.Configuration()
        configuration.flushInterval = 0.05
        let run = try await Cairn.startRun(experiment: "ignored", runName: "ignored", tags: ["framework": "swift"],
                                           journalFolder: URL(fileURLWithPath: journal.path), configuration: configuration, environment: environment)
        #expect(run.runID == owner.info.runID)
        #expect(run.isAttached)
        run.log(param: "lr", value: "0.1")
        for step in 0..<20 { run.log(metric: "loss", value: Double(step), step: step) }
        #expect(await run.finish(status: .failed, deadline: 300))
        let stored = try await client.getRun(id: owner.info.runID)
        #expect(stored.info.status == .running)  // the owner ends it, not the SDK
        #expect(stored.params.contains(Param("lr", "0.1")))
        #expect(stored.tags.contains(Tag("framework", "swift")))
        #expect(try await client.metricHistory(runID: owner.info.runID, key: "loss").count == 20)
        #expect(try await client.searchAllRuns(experimentIDs: [experimentID]).count == 1)
        #expect(try await client.experiment(named: "ignored") == nil)

        let unknown = ["MLFLOW_RUN_ID": "ffffffffffffffffffffffffffffffff", "MLFLOW_TRACKING_URI": server.uri]
        await #expect(throws: TrackingClientError.self) {
            _ = try await Cairn.startRun(journalFolder: URL(fileURLWithPath: journal.path), environment: unknown)
        }
    }

    @Test func swiftTrainingWrappedByCairnRunLogsIntoTheWrappersRun() throws {
        let server = try ServerProcess()
        let folder = try TempFolder()
        let example = packageRoot.appendingPathComponent(".build/debug/CairnExample").path
        let result = try cairn(["run", "--tracking-uri", server.uri, "--experiment", "wrapped-swift", "--system-metrics-interval", "0",
                                "--", example, "40", "not-this-experiment"],
                               in: folder.path, environment: ["CAIRN_JOURNAL_DIR": folder.path + "/journal"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("all logged"))
        let list = try parseJSON(try cairn(["runs", "list", "--json", "--experiment", "wrapped-swift", "--tracking-uri", server.uri]).stdout)
        let runs = list["runs"] as? [[String: Any]] ?? []
        #expect(runs.count == 1)
        let data = runs.first?["data"] as? [String: Any]
        let metrics = Set((data?["metrics"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String })
        #expect(metrics.isSuperset(of: ["loss", "w", "b", "cairn.wall_time_s"]))
        let tags = Dictionary(((data?["tags"] as? [[String: Any]]) ?? []).compactMap { t in (t["key"] as? String).map { ($0, t["value"] as? String ?? "") } }) { a, _ in a }
        #expect(tags["framework"] == "plain-swift")
        #expect(tags["cairn.exit_code"] == "0")
        #expect((runs.first?["info"] as? [String: Any])?["status"] as? String == "FINISHED")
        let other = try cairn(["runs", "list", "--json", "--experiment", "not-this-experiment", "--tracking-uri", server.uri])
        let otherRuns = other.status == 0 ? (try parseJSON(other.stdout))["runs"] as? [Any] ?? [] : []
        #expect(otherRuns.isEmpty)
    }
}
