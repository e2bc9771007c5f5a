import CairnClient
import CairnCore
import Foundation
import Testing

/// `cairn import mlflow` run as the real binary against a real server that speaks the MLflow
/// API (a `cairn server`: the compat suite does the same against a real `mlflow server`).
@Suite struct ImportCommandTests {
    @Test func importsAServerThroughTheMLflowAPIAndASecondImportChangesNothing() async throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let client = TrackingClient(trackingURI: server.uri)
        let experimentID = try await client.createExperiment(name: "imported ü")
        let run = try await client.createRun(experimentID: experimentID, runName: "r", startTime: 1_700_000_000_000, tags: [Tag("mlflow.note.content", "a note")])
        let runID = run.info.runID
        let values: [Double] = [.nan, .infinity, -.infinity, -0.0, 0.1 + 0.2] + (0..<1500).map { 1 / Double($0 + 1) }
        for start in stride(from: 0, to: values.count, by: 900) {
            let metrics = values.indices[start..<min(values.count, start + 900)].map {
                Metric(key: "loss", value: values[$0], timestamp: 1_700_000_000_000 + Int64($0), step: Int64($0))
            }
            try await client.logBatch(runID: runID, metrics: metrics, params: start == 0 ? [Param("lr", "0.1")] : [], tags: [])
        }
        try await client.uploadArtifact(artifactURI: run.info.artifactURI, path: "dir/sub/file.txt", contents: Data("content ✓".utf8))
        try await client.updateRun(id: runID, status: .finished, endTime: 1_700_000_009_000)

        let target = try TempFolder("cairn-import-target")
        let first = try cairn(["import", "mlflow", "--from", server.uri, "--data-dir", target.path])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        #expect(first.stdout.contains("run \(runID) 'r': new, \(values.count) points, 1 files"))
        #expect(first.stdout.contains("OK: everything selected is in this store, as in the source."))

        let again = try cairn(["import", "mlflow", "--from", server.uri, "--data-dir", target.path, "--json"])
        #expect(again.status == 0)
        let report = try parseJSON(again.stdout)
        #expect(report["changed_nothing"] as? Bool == true)
        #expect(report["verified"] as? Bool == true)
        #expect(report["written_points"] as? Int == 0)
        #expect((report["unchanged"] as? [String: Int])?["run"] == 1)

        // The copy, served by a server of its own, answers with the same ids and values.
        let copy = try ServerProcess(data: target)
        defer { copy.stop() }
        let copied = TrackingClient(trackingURI: copy.uri)
        let imported = try await copied.getRun(id: runID)
        #expect(imported.info == run.info.with(status: .finished, endTime: 1_700_000_009_000))
        let history = try await copied.metricHistory(runID: runID, key: "loss").sorted { $0.step < $1.step }
        #expect(history.count == values.count)
        #expect(zip(history, values).allSatisfy { $0.value.bitPattern == $1.bitPattern || ($0.value.isNaN && $1.isNaN) })
        #expect(try await copied.downloadArtifact(artifactURI: imported.info.artifactURI, path: "dir/sub/file.txt") == Data("content ✓".utf8))
    }

    @Test func refusesWhatItCannotReadInOneLine() throws {
        let target = try TempFolder("cairn-import-target")
        let notHTTP = try cairn(["import", "mlflow", "--from", "ftp://host/x", "--data-dir", target.path])
        #expect(notHTTP.status == 1)
        #expect(notHTTP.stderr == "error: --from 'ftp://host/x' is not an http(s) URL of a running MLflow server, e.g. http://mlflow-host:5000.\n")

        // --from-store: each refusal is one line saying what is wrong.
        let notAFile = target.path + "/absent.db"
        let plain = target.path + "/plain"
        try FileManager.default.createDirectory(atPath: plain, withIntermediateDirectories: true)
        let cases: [([String], String)] = [
            ([], "Name the MLflow source"),
            (["--from", "http://h:5000", "--from-store", "sqlite:///x.db"], "exclusive"),
            (["--from-store", "sqlite:///" + notAFile], "There is no file '\(notAFile)'"),
            (["--from-store", "mysql://u:s3cret@db:3306/mlflow"], "MySQL stores are not read directly"),
            (["--from-store", "postgresql://u:s3cret@127.0.0.1:1/mlflow"], "127.0.0.1"),
            (["--from-store", target.path + "/absent-mlruns"], "There is no folder"),
            (["--from-store", plain], "not an MLflow file store"),
        ]
        for (arguments, expected) in cases {
            let refused = try cairn(["import", "mlflow"] + arguments + ["--data-dir", target.path])
            #expect(refused.status == 1, "\(arguments)")
            #expect(refused.stderr.hasPrefix("error: ") && refused.stderr.contains(expected) && refused.stderr.filter { $0 == "\n" }.count == 1,
                    "\(arguments): \(refused.stderr)")
            #expect(!refused.stderr.contains("s3cret"))
        }
    }
}

private extension RunInfo {
    func with(status: RunStatus, endTime: Int64) -> RunInfo {
        var info = self
        info.status = status
        info.endTime = endTime
        return info
    }
}
