import CairnServices
import CairnStore
import CoreMetrics
import Foundation
import Hummingbird
import Prometheus

/// `GET /metrics` in Prometheus's text format: every request by route, method and status with
/// its duration (`RequestMetricsMiddleware`, through swift-metrics into swift-prometheus),
/// how many requests each group-commit transaction carried (`cairn_group_commit_batch_size`),
/// and the store's totals read when scraped (runs by status, experiments, registered models and
/// versions, metric points, artifact files and bytes, kept blob checks, the database's size,
/// pending webhook deliveries).
/// The totals are read from the database, so every replica of a team server reports the same
/// ones; request figures are the replica's own.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    /// One per process: swift-metrics has one backend, set once, before any request metric is
    /// made (so `buildRouter` asks for it before adding the middleware).
    public static let shared = ServerMetrics()

    private init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
            .seconds(2.5), .seconds(5), .seconds(10),
        ]
        factory.valueHistogramBuckets["cairn_group_commit_batch_size"] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
        MetricsSystem.bootstrap(factory)
    }

    /// The text of a scrape: the store's totals as of now, then every metric.
    public func scrape(_ figures: StoreFigures) -> [UInt8] {
        func gauge(_ name: String, _ help: String, _ value: Double, _ labels: [(String, String)] = []) {
            let descriptor = MetricNameDescriptor(namespace: "cairn", metricName: name, unitName: "", helpText: help)
            registry.makeGauge(descriptor: descriptor, labels: labels).set(value)
        }
        func gauge(_ name: String, _ help: String, _ value: Int64, _ labels: [(String, String)] = []) {
            gauge(name, help, Double(value), labels)
        }
        let help = "Active runs of active experiments, by status."
        for status in ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"] {
            gauge("runs", help, figures.runsByStatus[status] ?? 0, [("status", status)])
        }
        gauge("experiments", "Active experiments.", figures.experiments)
        gauge("registered_models", "Registered models.", figures.registeredModels)
        gauge("model_versions", "Model versions not deleted.", figures.modelVersions)
        gauge("metric_points", "Metric points stored.", figures.metricPoints)
        gauge("artifact_files", "Files in the artifact manifest.", figures.artifactFiles)
        gauge("artifact_blobs", "Distinct blobs the manifest references.", figures.blobs)
        gauge("artifact_bytes", "Bytes of the distinct blobs the manifest references.", figures.artifactBytes)
        for result in ["ok", "missing", "damaged"] {
            gauge("blob_checks", "Kept blob checks by their last result (cairn verify, the health report).",
                  figures.blobChecks[result] ?? 0, [("result", result)])
        }
        gauge("database_bytes", "Size of the database on disk.", figures.databaseBytes)
        gauge("webhook_deliveries_pending", "Webhook deliveries waiting to be sent or retried.", figures.pendingWebhookDeliveries)
        let ended = ["FINISHED", "FAILED", "KILLED"].reduce(Int64(0)) { $0 + (figures.runsByStatus[$1] ?? 0) }
        gauge("run_success_ratio", "Finished runs over ended runs (finished, failed, killed); NaN before any run ended.",
              ended == 0 ? .nan : Double(figures.runsByStatus["FINISHED"] ?? 0) / Double(ended))
        gauge("runs_stale", "Running runs that logged nothing for the stale threshold (--stale-after).", figures.staleRuns)
        let total = figures.runsByStatus.values.reduce(0, +)
        gauge("runs_linked", "Active runs with a code version (git commit), a data version (dataset input), or both.", figures.runsWithCode, [("to", "code")])
        gauge("runs_linked", "Active runs with a code version (git commit), a data version (dataset input), or both.", figures.runsWithData, [("to", "data")])
        gauge("runs_linked", "Active runs with a code version (git commit), a data version (dataset input), or both.", figures.runsWithBoth, [("to", "both")])
        gauge("linkage_completeness_ratio", "Active runs linked to both code and data over all active runs; NaN without runs.",
              total == 0 ? .nan : Double(figures.runsWithBoth) / Double(total))
        for result in ["passed", "failed", "overridden"] {
            gauge("promotion_gate_evaluations", "Promotion gate evaluations recorded, by result.", figures.gateEvaluations[result] ?? 0, [("result", result)])
        }
        let gates = figures.gateEvaluations.values.reduce(0, +)
        gauge("promotion_pass_ratio", "Promotion gate evaluations that passed over all of them; NaN before any.",
              gates == 0 ? .nan : Double(figures.gateEvaluations["passed"] ?? 0) / Double(gates))
        for (status, count) in figures.reproduceAttempts.sorted(by: { $0.key < $1.key }) {
            gauge("reproduce_attempts", "Runs made by cairn reproduce, by their cairn.reproduce.status.", count, [("status", status)])
        }
        return registry.emitToBuffer()
    }
}

/// The `/metrics` route.
func addMetricsRoute(_ router: Router<CairnRequestContext>, explorer: ExplorerService) {
    let metrics = ServerMetrics.shared
    router.get("metrics") { _, _ -> Response in
        let text = metrics.scrape(try await explorer.storeFigures())
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: text)))
    }
}
