import ArgumentParser
import CairnClient
import CairnCore
import Foundation

/// How CLI commands reach the tracking server: over HTTP, like the mlflow CLI.
struct ClientOptions: ParsableArguments {
    @Option(name: .customLong("tracking-uri"), help: ArgumentHelp("Tracking server (env MLFLOW_TRACKING_URI, default http://127.0.0.1:5000).", valueName: "uri"))
    var trackingURI: String?

    var resolvedURI: String {
        trackingURI ?? TrackingClient.defaultTrackingURI()
    }

    func makeClient(timeout: TimeInterval = 30) -> TrackingClient {
        TrackingClient(trackingURI: resolvedURI, timeout: timeout)
    }
}

/// Turns a client error into `error: …` on standard error and a non-zero exit.
func failure(_ error: any Error, doing what: String) -> ExitCode {
    if let exit = error as? ExitCode { return exit }
    if let client = error as? TrackingClientError {
        switch client {
        case .unreachable, .configuration:
            return fail("\(client).")
        case .server(_, let code, let message) where code == "RESOURCE_DOES_NOT_EXIST":
            return fail("\(what) failed: \(message) Check the id with `cairn runs list` or `cairn experiments list`.")
        case .server(_, _, let message):
            return fail("\(what) failed: \(message)")
        }
    }
    return fail("\(what) failed: \(error).")
}

/// Runs `body`, mapping client errors to readable failures.
func withClientErrors<T>(_ what: String, _ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        throw failure(error, doing: what)
    }
}

/// Resolves `--experiment` values (ids or names) to experiment ids.
func resolveExperiments(_ values: [String], client: TrackingClient) async throws -> [String] {
    var ids: [String] = []
    for value in values {
        if Int64(value) != nil {
            ids.append(value)
        } else if let experiment = try await client.experiment(named: value) {
            ids.append(experiment.experimentID)
        } else {
            throw fail("No experiment named '\(value)'. List them with `cairn experiments list`.")
        }
    }
    return ids
}

/// A plain text table: columns padded to their widest cell.
struct TextTable {
    var headers: [String]
    var rows: [[String]] = []

    init(_ headers: [String]) {
        self.headers = headers
    }

    mutating func add(_ row: [String]) {
        rows.append(row)
    }

    func render() -> String {
        var widths = headers.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        return ([Self.line(headers, widths: widths)] + rows.map { Self.line($0, widths: widths) }).joined(separator: "\n")
    }

    /// One row: each cell but the last padded to its column's width, two spaces between.
    static func line(_ cells: [String], widths: [Int]) -> String {
        cells.enumerated().map { i, cell in
            i == cells.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }
}

func formatTime(_ millis: Int64?) -> String {
    guard let millis else { return "-" }
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
    return formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000)) + "Z"
}

func formatDuration(_ info: RunInfo) -> String {
    guard let start = info.startTime, let end = info.endTime else { return "-" }
    let seconds = Double(end - start) / 1000
    return seconds < 60 ? String(format: "%.1fs", seconds) : String(format: "%.1fm", seconds / 60)
}

func formatNumber(_ value: Double) -> String {
    if value.isNaN || value.isInfinite { return "\(value)" }
    if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
    return String(format: "%.6g", value)
}

/// The run JSON the `--json` outputs print (MLflow's field names).
func runJSON(_ run: Run) -> [String: Any] {
    var info: [String: Any] = [
        "run_id": run.info.runID, "run_name": run.info.runName, "experiment_id": run.info.experimentID,
        "user_id": run.info.userID, "status": run.info.status.rawValue,
        "artifact_uri": run.info.artifactURI, "lifecycle_stage": run.info.lifecycleStage.rawValue,
    ]
    if let start = run.info.startTime { info["start_time"] = start }
    if let end = run.info.endTime { info["end_time"] = end }
    let inputs: [[String: Any]] = run.inputs.map { input in
        [
            "tags": input.tags.map { ["key": $0.key, "value": $0.value] },
            "dataset": ["name": input.dataset.name, "digest": input.dataset.digest,
                        "source_type": input.dataset.sourceType, "source": input.dataset.source],
        ]
    }
    return [
        "info": info,
        "data": [
            "metrics": run.metrics.map { ["key": $0.key, "value": jsonNumber($0.value), "step": $0.step, "timestamp": $0.timestamp] as [String: Any] },
            "params": run.params.map { ["key": $0.key, "value": $0.value] },
            "tags": run.tags.map { ["key": $0.key, "value": $0.value] },
        ] as [String: Any],
        "inputs": ["dataset_inputs": inputs],
    ]
}

func jsonNumber(_ value: Double) -> Any {
    if value.isNaN { return "NaN" }
    if value.isInfinite { return value > 0 ? "Infinity" : "-Infinity" }
    return value
}

extension Run {
    var tagMap: [String: String] { Dictionary(tags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b }) }
    var paramMap: [String: String] { Dictionary(params.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b }) }
    var metricMap: [String: Double] { Dictionary(metrics.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b }) }
}
