import CairnCore

/// An MLflow tracking store read directly, not through a server: its SQL store (a SQLite file or
/// a PostgreSQL database, `MLflowSQLStore`) or its file store (an
/// `mlruns` folder, `MLflowFileStore`). Each answers the entities as MLflow's REST API answers
/// them for a server on that store, so an import through any of them gives the same result.
public protocol MLflowStoreTables: Sendable {
    /// The store as shown in messages (never with a password).
    var uri: String { get }
    /// Every experiment, active and deleted, by id.
    func experiments() async throws -> [Experiment]
    func experiment(named name: String) async throws -> Experiment?
    func experiment(id: String) async throws -> Experiment?
    /// Every run of the experiment, active and deleted, by start time then id; `metrics` holds
    /// one point per series (its keys name the series to read).
    func runs(experimentID: String) async throws -> [Run]
    /// Every point of one series.
    func metricHistory(runID: String, key: String) async throws -> [Metric]
    /// The logged models of the experiment, deleted ones left out.
    func loggedModels(experimentID: String) async throws -> [LoggedModel]
    /// Every registered model with its tags and aliases, by name.
    func registeredModels() async throws -> [RegisteredModel]
    /// Every version of the registered model, by number.
    func modelVersions(name: String) async throws -> [ModelVersion]
}

extension MLflowSQLStore: MLflowStoreTables {}

extension MLflowFileStore: MLflowStoreTables {
    public var uri: String { root }
}
