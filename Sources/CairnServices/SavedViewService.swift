import CairnCore
import CairnStore
import Foundation

/// The rules of saved views: the experiment must exist and be active to be given a view, a
/// name is 1…250 characters, the state is a JSON object of at most 64 KiB (the web UI's
/// columns, order, widths, pins, sort, filter, grouping and panels; the server does not read
/// it further), and an experiment has at most 200 views.
public struct SavedViewService: Sendable {
    public let store: any SavedViewStore
    let tracking: TrackingService

    public static let maxNameLength = 250
    public static let maxStateBytes = 65_536
    public static let maxViewsPerExperiment = 200

    public init(store: any SavedViewStore, tracking: TrackingService) {
        self.store = store
        self.tracking = tracking
    }

    public func listViews(experimentID: String) async throws -> [SavedView] {
        let id = try await experiment(experimentID, forWriting: false)
        return try await store.listSavedViews(experimentID: id)
    }

    public func getView(experimentID: String, viewID: String) async throws -> SavedView {
        let id = try await experiment(experimentID, forWriting: false)
        return try await store.fetchSavedView(experimentID: id, id: viewID)
    }

    public func createView(experimentID: String, name: String, state: String, isDefault: Bool?) async throws -> SavedView {
        let id = try await experiment(experimentID, forWriting: true)
        try Self.validateName(name)
        try Self.validateState(state)
        guard try await store.listSavedViews(experimentID: id).count < Self.maxViewsPerExperiment else {
            throw CairnError.invalidParameter("Experiment \(experimentID) has \(Self.maxViewsPerExperiment) saved views, the most it may have. Delete one first.")
        }
        return try await store.createSavedView(experimentID: id, id: UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""),
                                               SavedViewChange(name: name, state: state, isDefault: isDefault ?? false), now: tracking.now())
    }

    public func updateView(experimentID: String, viewID: String, _ change: SavedViewChange) async throws -> SavedView {
        let id = try await experiment(experimentID, forWriting: true)
        if let name = change.name { try Self.validateName(name) }
        if let state = change.state { try Self.validateState(state) }
        return try await store.updateSavedView(experimentID: id, id: viewID, change, now: tracking.now())
    }

    public func deleteView(experimentID: String, viewID: String) async throws {
        let id = try await experiment(experimentID, forWriting: true)
        try await store.deleteSavedView(experimentID: id, id: viewID)
    }

    /// The experiment's numeric id; unknown → RESOURCE_DOES_NOT_EXIST, deleted → no writes.
    func experiment(_ experimentID: String, forWriting: Bool) async throws -> Int64 {
        let experiment = try await tracking.getExperiment(id: experimentID)
        if forWriting && experiment.lifecycleStage != .active {
            throw CairnError.invalidParameter("Experiment \(experimentID) is deleted: restore it before changing its views.")
        }
        return try Validation.parseExperimentID(experimentID)
    }

    static func validateName(_ name: String) throws {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else {
            throw CairnError.invalidParameter("A view needs a name: give 'name' (1 to \(maxNameLength) characters).")
        }
        guard name.count <= maxNameLength else {
            throw CairnError.invalidParameter("The view name has \(name.count) characters; at most \(maxNameLength) are allowed.")
        }
    }

    static func validateState(_ state: String) throws {
        guard state.utf8.count <= maxStateBytes else {
            throw CairnError.invalidParameter("The view's state has \(state.utf8.count) bytes; at most \(maxStateBytes) are allowed.")
        }
        let parsed: JSONValue
        do { parsed = try JSONValue.parse(state) } catch {
            throw CairnError.invalidParameter("The view's 'state' must be a JSON object, as text: \(error).")
        }
        guard case .object = parsed else {
            throw CairnError.invalidParameter("The view's 'state' must be a JSON object, as text.")
        }
    }
}
