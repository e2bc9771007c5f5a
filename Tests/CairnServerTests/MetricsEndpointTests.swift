import CairnServer
import CairnTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Prometheus metrics endpoint")
struct MetricsEndpointTests {
    @Test("/metrics answers the Prometheus text format: requests by route and status with durations, and the store's totals")
    func scrape() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let services = try openServices(CairnServerConfiguration(dataDirectory: directory.path))
        let app = Application(router: buildRouter(services: services))
        try await app.test(.router) { client in
            // Started and last logged at 1 ms after the epoch: a stale run.
            let create = #"{"experiment_id":"0","start_time":1}"#
            let runID = try await client.execute(uri: "/api/2.0/mlflow/runs/create", method: .post, headers: [.contentType: "application/json"],
                                                 body: ByteBuffer(string: create)) { response in
                let object = try JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any]
                return ((object?["run"] as? [String: Any])?["info"] as? [String: Any])?["run_id"] as? String
            }
            let id = try #require(runID)
            let metric = #"{"run_id":"\#(id)","key":"loss","value":1.5,"timestamp":1,"step":0}"#
            try await client.execute(uri: "/api/2.0/mlflow/runs/log-metric", method: .post, headers: [.contentType: "application/json"],
                                     body: ByteBuffer(string: metric)) { #expect($0.status == .ok) }
            try await client.execute(uri: "/api/2.0/mlflow/runs/get?run_id=0123456789abcdef0123456789abcdef", method: .get) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/plain; version=0.0.4; charset=utf-8")
                let text = String(buffer: response.body)
                for line in ["cairn_runs{status=\"RUNNING\"} 1.0", "cairn_experiments 1.0", "cairn_metric_points 1.0",
                             "# TYPE cairn_database_bytes gauge", "cairn_webhook_deliveries_pending 0.0",
                             "# TYPE http_server_request_duration histogram", "# TYPE cairn_group_commit_batch_size histogram",
                             "cairn_runs_stale 1.0", "cairn_runs_linked{to=\"both\"} 0.0", "cairn_linkage_completeness_ratio 0.0",
                             "cairn_promotion_gate_evaluations{result=\"failed\"} 0.0", "cairn_promotion_pass_ratio nan"] {
                    #expect(text.contains(line), "\(line)")
                }
                // Every request is counted under its route and final status, errors included.
                #expect(text.contains(#"http_route="/api/2.0/mlflow/runs/log-metric",http_request_method="POST",http_response_status_code="200""#))
                #expect(text.contains(#"http_route="/api/2.0/mlflow/runs/get",http_request_method="GET",http_response_status_code="404""#))
            }
        }
    }
}
