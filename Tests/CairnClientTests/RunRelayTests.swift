import CairnCore
import Foundation
import Testing
@testable import CairnClient

/// The relay with the server unreachable from the start (loopback port 9: refused at once):
/// everything the command writes is journaled, in order, and acknowledged only then.
@Suite struct RunRelayTests {
    private func offlineRelay(folder: URL) async throws -> RunRelay {
        let client = TrackingClient(trackingURI: "http://127.0.0.1:9", timeout: 2)
        let run = try await CairnRun.start(client: client, experimentName: "offline", experimentID: nil, runName: "wrapped",
                                           tags: [Tag(SystemTag.user, "ann")], journalFolder: folder, configuration: LogBuffer.Configuration())
        return RunRelay(run: run, client: client, serverRun: nil)
    }

    private func post(_ relay: RunRelay, _ endpoint: String, _ json: String) async -> RelayResponse {
        await relay.handle(RelayRequest(method: "POST", path: "/api/2.0/mlflow/" + endpoint, contentType: "application/json", body: Array(json.utf8)))
    }

    @Test func aRunNeverCreatedIsJournaledUnderItsJournalIDInTheCommandsOrder() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-relay-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let relay = try await offlineRelay(folder: folder)
        let id = relay.childRunID
        #expect(id == relay.run.journalID && id.count == 32)
        #expect(relay.isJournaling)
        #expect(relay.experimentID == nil)

        let get = await relay.handle(RelayRequest(method: "GET", path: "/api/2.0/mlflow/runs/get", query: "run_uuid=\(id)&run_id=\(id)"))
        #expect(get.status == 200)
        let info = try JSONValue.parse(get.body)["run"]?["info"]
        #expect(info?["run_id"]?.stringValue == id)
        #expect(info?["run_name"]?.stringValue == "wrapped")
        #expect(info?["user_id"]?.stringValue == "ann")

        #expect(await post(relay, "runs/log-parameter", #"{"run_id":"\#(id)","key":"lr","value":"0.1"}"#) == .empty)
        for step in 0..<3 {
            #expect(await post(relay, "runs/log-metric", #"{"run_id":"\#(id)","key":"loss","value":\#(step),"timestamp":\#(100 + step),"step":\#(step)}"#) == .empty)
        }
        #expect(await post(relay, "runs/set-tag", #"{"run_id":"\#(id)","key":"phase","value":"train"}"#) == .empty)
        #expect(await post(relay, "runs/delete-tag", #"{"run_id":"\#(id)","key":"phase"}"#) == .empty)
        let artifact = RelayRequest(method: "PUT", path: "/api/2.0/mlflow-artifacts/artifacts/0/\(id)/artifacts/out/model.txt", body: Array("weights".utf8))
        #expect(await relay.handle(artifact) == .empty)
        // The command's own end status is not journaled: cairn run records the end.
        #expect(await post(relay, "runs/update", #"{"run_id":"\#(id)","status":"FINISHED","end_time":5}"#) == .empty)

        let records = try Journal.read(relay.run.journal.fileURL)
        guard case .run(let journalID, _, _, _, _, _)? = records.first else {
            Issue.record("the journal starts with the run")
            return
        }
        #expect(journalID == id)
        let rest = Array(records.dropFirst())
        #expect(rest.count == 7)
        #expect(rest[0] == .batch(LogBuffer.Batch(params: [Param("lr", "0.1")])))
        #expect(rest[1...3].map { record -> Int64 in if case .batch(let b) = record { return b.metrics[0].step }; return -1 } == [0, 1, 2])
        #expect(rest[4] == .batch(LogBuffer.Batch(tags: [Tag("phase", "train")])))
        #expect(rest[5] == .deleteTag("phase"))
        guard case .artifact(let path, let file) = rest[6] else {
            Issue.record("expected the artifact last")
            return
        }
        #expect(path == "out/model.txt")
        #expect(try Data(contentsOf: folder.appendingPathComponent(file)) == Data("weights".utf8))
    }

    @Test func badInputIsRefusedAndNothingIsJournaled() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-relay-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let relay = try await offlineRelay(folder: folder)
        let before = try Journal.read(relay.run.journal.fileURL).count
        let reply = await post(relay, "runs/log-parameter", #"{"run_id":"\#(relay.childRunID)","key":"lr"}"#)
        #expect(reply.status == 400)
        #expect(try JSONValue.parse(reply.body)["error_code"]?.stringValue == "INVALID_PARAMETER_VALUE")
        #expect(try Journal.read(relay.run.journal.fileURL).count == before)
        // Another request, with the server down, gets MLflow's error JSON at once.
        let other = await post(relay, "experiments/create", #"{"name":"x"}"#)
        #expect(other.status == 503)
        #expect(try JSONValue.parse(other.body)["error_code"]?.stringValue == "TEMPORARILY_UNAVAILABLE")
    }
}
