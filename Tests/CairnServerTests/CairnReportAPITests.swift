import CairnArtifacts
import CairnCore
import CairnServer
import CairnServices
import CairnTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Cairn report endpoint")
struct CairnReportAPITests {
    static let api = "/api/2.0/mlflow"

    @Test("The report counts statuses, code and data linkage, checks referenced blobs (keeping the results) and counts reproduce attempts")
    func report() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let services = try openServices(CairnServerConfiguration(dataDirectory: directory.path))
        let app = Application(router: buildRouter(services: services))
        try await app.test(.router) { client in
            func call(_ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil) async throws -> (Int, [String: Any]) {
                try await client.execute(uri: uri, method: method, headers: [.contentType: "application/json"], body: body.map { ByteBuffer(string: $0) }) { response in
                    let object = (try? JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8))) as? [String: Any] ?? [:]
                    return (Int(response.status.code), object)
                }
            }
            func createRun(_ experiment: String, tags: String) async throws -> String {
                let (_, reply) = try await call(.post, "\(Self.api)/runs/create", #"{"experiment_id":"\#(experiment)","start_time":1,"tags":[\#(tags)]}"#)
                return try #require(((reply["run"] as? [String: Any])?["info"] as? [String: Any])?["run_id"] as? String)
            }
            _ = try await call(.post, "\(Self.api)/experiments/create", #"{"name":"a"}"#)
            let linked = try await createRun("1", tags: #"{"key":"cairn.git.commit","value":"abc"}"#)
            _ = try await call(.post, "\(Self.api)/runs/log-inputs", #"{"run_id":"\#(linked)","datasets":[{"dataset":{"name":"d","digest":"sha256:1","source_type":"local","source":"{}"}}]}"#)
            _ = try await call(.post, "\(Self.api)/runs/update", #"{"run_id":"\#(linked)","status":"FINISHED","end_time":2}"#)
            let failed = try await createRun("1", tags: #"{"key":"mlflow.source.git.commit","value":"abc"},{"key":"cairn.reproduce.of","value":"\#(linked)"},{"key":"cairn.reproduce.status","value":"not_reproduced"}"#)
            _ = try await call(.post, "\(Self.api)/runs/update", #"{"run_id":"\#(failed)","status":"FAILED","end_time":2}"#)
            let running = try await createRun("1", tags: "")
            let elsewhere = try await createRun("0", tags: "")
            _ = elsewhere
            for (run, name, content) in [(linked, "model.bin", "weights"), (failed, "log.txt", "oops"), (running, "same.bin", "weights")] {
                let status = try await client.execute(uri: "/api/2.0/mlflow-artifacts/artifacts/1/\(run)/artifacts/\(name)", method: .put,
                                                      body: ByteBuffer(string: content)) { Int($0.status.code) }
                #expect(status == 200)
            }
            let (status, report) = try await call(.get, "/api/cairn/v1/report?experiment_id=1")
            #expect(status == 200)
            #expect(report["experiment_ids"] as? [String] == ["1"])
            let runs = report["runs"] as? [String: Int]
            // The running run started in 1970 and never logged: stale.
            #expect(runs == ["total": 3, "finished": 1, "failed": 1, "killed": 0, "running": 1, "stale": 1, "scheduled": 0])
            #expect(report["success_rate"] as? Double == 0.5)
            #expect(report["linkage"] as? [String: Int] == ["total": 3, "with_code": 2, "with_data": 1, "with_both": 1])
            let artifacts = try #require(report["artifacts"] as? [String: Any])
            #expect(artifacts.filter { $0.key != "oldest_check_time" } as? [String: Int]
                == ["files": 3, "blobs": 2, "verified": 2, "missing": 0, "damaged": 0, "unchecked": 0, "checked_now": 2])
            #expect(artifacts["oldest_check_time"] is Int)
            #expect(report["reproducibility"] as? [String: Int] == ["attempted": 1, "reproduced": 0])

            // Damage one blob on disk: the report keeps its week-old-at-most results and re-hashes
            // nothing; `cairn verify` (which checks every blob) finds it, and the report says so.
            let entry = try #require(try await services.artifacts.index.fetchArtifact(path: "1/\(failed)/artifacts/log.txt"))
            let file = try #require((services.artifacts.blobs as? LocalBlobStore)?.fileURL(for: entry.digest))
            try? FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file.path)
            try Data("tampered".utf8).write(to: file)
            let (_, kept) = try await call(.get, "/api/cairn/v1/report?experiment_id=1")
            #expect((kept["artifacts"] as? [String: Any])?["checked_now"] as? Int == 0)
            #expect((kept["artifacts"] as? [String: Any])?["verified"] as? Int == 2)
            #expect(try await services.artifacts.verify().damaged.map(\.path) == ["1/\(failed)/artifacts/log.txt"])
            let (_, damaged) = try await call(.get, "/api/cairn/v1/report?experiment_id=1")
            let found = try #require(damaged["artifacts"] as? [String: Any])
            #expect(found.filter { $0.key != "oldest_check_time" } as? [String: Int]
                == ["files": 3, "blobs": 2, "verified": 1, "missing": 0, "damaged": 1, "unchecked": 0, "checked_now": 1])

            // No experiment given: every active one; no ended run: a null success rate.
            let (_, all) = try await call(.get, "/api/cairn/v1/report")
            #expect(all["experiment_ids"] as? [String] == ["0", "1"])
            #expect((all["runs"] as? [String: Int])?["total"] == 4)
            _ = try await call(.post, "\(Self.api)/experiments/create", #"{"name":"empty"}"#)
            let (_, empty) = try await call(.get, "/api/cairn/v1/report?experiment_id=2")
            #expect(empty["success_rate"] is NSNull)
            let (missingStatus, missing) = try await call(.get, "/api/cairn/v1/report?experiment_id=99")
            #expect(missingStatus == 404)
            #expect(missing["error_code"] as? String == "RESOURCE_DOES_NOT_EXIST")
        }
    }
}
