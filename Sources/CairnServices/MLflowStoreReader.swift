import CairnClient
import CairnCore
import CairnStore
import Foundation

/// Reads an MLflow tracking store directly (`cairn import mlflow --from-store`): its SQL store
/// (`sqlite:///mlflow.db`, `postgresql://…`) or its file store (`./mlruns`), with the artifact
/// files behind its server's `mlflow-artifacts:/` URIs from a local folder (`--artifacts`, the
/// server's `--artifacts-destination`). Artifacts at `file:` and `s3://` locations are read by
/// `ImportService` itself, as for any reader.
public struct MLflowStoreReader: MLflowReader {
    public let tables: any MLflowStoreTables
    /// The folder `mlflow-artifacts:/<path>` URIs are read from, if given.
    public let artifacts: String?

    public init(tables: any MLflowStoreTables, artifacts: String?) {
        self.tables = tables
        self.artifacts = artifacts
    }

    public var uri: String { tables.uri }

    /// All experiments, or those MLflow's experiment search `filter` selects (evaluated here:
    /// `name`, `tags.<key>`, `creation_time`, `last_update_time`).
    public func experiments(filter: String?) async throws -> [Experiment] {
        let all = try await tables.experiments()
        guard let filter, !filter.isEmpty else { return all }
        let expression = try SearchFilterParser.parse(filter, for: .experiments)
        return all.filter { ExperimentFilterMatch.matches(expression, $0) }
    }

    public func experiment(named name: String) async throws -> Experiment? { try await tables.experiment(named: name) }

    public func experiment(id: String) async throws -> Experiment {
        guard let experiment = try await tables.experiment(id: id) else { throw CairnError.notFound("The store \(uri) has no experiment \(id).") }
        return experiment
    }

    public func runs(experimentID: String) async throws -> [Run] { try await tables.runs(experimentID: experimentID) }
    public func metricHistory(runID: String, key: String) async throws -> [Metric] { try await tables.metricHistory(runID: runID, key: key) }

    public func loggedModels(experimentIDs: [String]) async throws -> [LoggedModel] {
        var models: [LoggedModel] = []
        for id in experimentIDs { models += try await tables.loggedModels(experimentID: id) }
        return models
    }

    public func registeredModels() async throws -> [RegisteredModel] { try await tables.registeredModels() }
    public func modelVersions(name: String) async throws -> [ModelVersion] { try await tables.modelVersions(name: name) }

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
