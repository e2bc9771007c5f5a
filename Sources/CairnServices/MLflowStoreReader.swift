import CairnClient
import CairnCore
import CairnStore
import Foundation

/// Reads an MLflow SQL store's SQLite file directly (`cairn import mlflow --from-store
/// sqlite:///mlflow.db`), with the artifact files from the folder behind its server's
/// `mlflow-artifacts:/` URIs (`--artifacts`, the server's `--artifacts-destination`).
public struct MLflowSQLStoreReader: MLflowReader {
    public let file: MLflowSQLStoreFile
    /// The folder `mlflow-artifacts:/<path>` URIs are read from, if given.
    public let artifacts: String?

    public init(path: String, artifacts: String?) throws {
        self.file = try MLflowSQLStoreFile(path: path)
        self.artifacts = artifacts
    }

    public var uri: String { "sqlite:///" + file.path }

    public func experiments(filter: String?) async throws -> [Experiment] {
        guard (filter ?? "").isEmpty else {
            throw CairnError.invalidParameter("--filter needs a running MLflow server (--from URL); with --from-store, name the experiments with --experiment.")
        }
        return try file.experiments()
    }

    public func experiment(named name: String) async throws -> Experiment? { try file.experiment(named: name) }

    public func experiment(id: String) async throws -> Experiment {
        guard let experiment = try file.experiment(id: id) else { throw CairnError.notFound("The store \(uri) has no experiment \(id).") }
        return experiment
    }

    public func runs(experimentID: String) async throws -> [Run] { try file.runs(experimentID: experimentID) }
    public func metricHistory(runID: String, key: String) async throws -> [Metric] { try file.metricHistory(runID: runID, key: key) }

    public func loggedModels(experimentIDs: [String]) async throws -> [LoggedModel] {
        try experimentIDs.flatMap { try file.loggedModels(experimentID: $0) }
    }

    public func registeredModels() async throws -> [RegisteredModel] { try file.registeredModels() }
    public func modelVersions(name: String) async throws -> [ModelVersion] { try file.modelVersions(name: name) }

    /// `mlflow-artifacts:` URIs when an artifacts folder is given (the same root the server's
    /// proxy uses, so the import stores the same paths as through `--from`).
    public func artifactRoot(_ artifactURI: String) -> String? {
        guard artifacts != nil else { return nil }
        return MLflowSource.proxyPath(artifactURI)
    }

    public func listArtifacts(root: String) async throws -> [SourceArtifact] {
        guard let artifacts else { return [] }
        return try LocalArtifactFolder(base: artifacts).list(root: root)
    }

    public func withArtifact<T: Sendable>(root: String, path: String, _ body: (ArtifactChunks) async throws -> T) async throws -> T {
        guard let artifacts else { throw CairnError.notFound("No --artifacts folder was given.") }
        return try await body(LocalArtifactFolder(base: artifacts).chunks(root: root, path: path))
    }
}
