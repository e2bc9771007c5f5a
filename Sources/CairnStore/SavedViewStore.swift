import CairnCore

/// Saved views of experiments' runs pages (`saved_views`). Names are unique per experiment;
/// setting a view as the default clears the experiment's previous default in the same
/// transaction.
public protocol SavedViewStore: Sendable {
    func createSavedView(experimentID: Int64, id: String, _ fields: SavedViewChange, now: Int64) async throws -> SavedView
    /// The experiment's views by name.
    func listSavedViews(experimentID: Int64) async throws -> [SavedView]
    func fetchSavedView(experimentID: Int64, id: String) async throws -> SavedView
    func updateSavedView(experimentID: Int64, id: String, _ change: SavedViewChange, now: Int64) async throws -> SavedView
    func deleteSavedView(experimentID: Int64, id: String) async throws
}
