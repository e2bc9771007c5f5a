import CairnCore
import CairnServer
import CairnServices
import CairnTestSupport
import Foundation
import Testing

@Suite("Audit API and the audit key")
struct CairnAuditAPITests {
    static let api = "/api/2.0/mlflow"

    @Test("Requests leave events with their request id and client address; the API filters and pages them; the report has the SLI")
    func auditEndpoint() async throws {
        try await withRouteApp { call in
            func get(_ uri: String) async throws -> (Int, [String: Any]) {
                let reply = try await call(.get, uri, nil)
                return (reply.status, reply.json)
            }
            _ = try await call(.post, "\(Self.api)/experiments/create", #"{"name":"a"}"#)
            let created = try await call(.post, "\(Self.api)/runs/create", #"{"experiment_id":"1","start_time":1}"#).json
            let runID = try #require(((created["run"] as? [String: Any])?["info"] as? [String: Any])?["run_id"] as? String)
            _ = try await call(.post, "\(Self.api)/runs/log-batch",
                               #"{"run_id":"\#(runID)","metrics":[{"key":"m","value":1,"timestamp":1,"step":0},{"key":"m","value":2,"timestamp":1,"step":1}]}"#)
            // A refused change leaves no event.
            #expect(try await call(.post, "\(Self.api)/experiments/create", #"{"name":"a"}"#).status == 400)

            let (status, page) = try await get("/api/cairn/v1/audit?max_results=2")
            #expect(status == 200)
            let events = try #require(page["events"] as? [[String: Any]])
            #expect(events.map { $0["action"] as? String } == ["run.metrics.log", "run.create"])
            #expect(events.allSatisfy { ($0["request_id"] as? String)?.isEmpty == false && $0["actor"] is NSNull })
            #expect((events[0]["details"] as? [String: Any])?["points"] as? Int == 2)
            let token = try #require(page["next_page_token"] as? String)
            let (_, next) = try await get("/api/cairn/v1/audit?max_results=2&page_token=\(token)")
            #expect((next["events"] as? [[String: Any]])?.map { $0["action"] as? String } == ["experiment.create"])
            #expect(next["next_page_token"] == nil)
            let (_, filtered) = try await get("/api/cairn/v1/audit?target=run:\(runID)&action=run.*")
            #expect((filtered["events"] as? [[String: Any]])?.count == 2)
            let (bad, error) = try await get("/api/cairn/v1/audit?page_token=nope")
            #expect(bad == 400 && error["error_code"] as? String == "INVALID_PARAMETER_VALUE")

            let (_, report) = try await get("/api/cairn/v1/report")
            let audit = try #require(report["audit"] as? [String: Any])
            // The run says it started in 1970, before the log began: only the experiment is counted.
            #expect(audit["counted_changes"] as? Int == 1 && audit["changes_with_event"] as? Int == 1)
            #expect(audit["events"] as? Int == 3 && audit["events_with_actor"] as? Int == 0)
            #expect(audit["coverage"] as? Double == 1 && audit["sli"] as? Double == 0)
        }
    }

    @Test("PostgreSQL refuses to start without an audit key file, saying why; a key file too short is refused")
    func keyRules() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var configuration = CairnServerConfiguration(dataDirectory: directory.path, backendStoreURI: "postgresql://cairn@127.0.0.1:1/cairn")
        #expect {
            _ = try configuration.auditKey()
        } throws: { error in
            let message = (error as? ConfigurationError)?.message ?? ""
            return message.contains("--audit-key-file") && message.contains("same key")
        }
        configuration.auditKeyRequired = false
        #expect(try configuration.auditKey() == nil)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: directory.file("short.key")))
        configuration.auditKeyFile = directory.file("short.key")
        #expect(throws: ConfigurationError.self) { _ = try configuration.auditKey() }
        configuration.auditKeyFile = directory.file("missing.key")
        #expect(throws: ConfigurationError.self) { _ = try configuration.auditKey() }
    }
}
