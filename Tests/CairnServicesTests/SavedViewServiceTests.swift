import CairnCore
import CairnServices
import CairnStore
import CairnTestSupport
import Foundation
import Testing

/// Saved views: the service's rules in front of the store, on both backends.
@Suite("Saved views")
struct SavedViewServiceTests {
    @Test("Bad names and states are refused with INVALID_PARAMETER_VALUE and change nothing", arguments: StoreBackend.allCases)
    func badInput(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let tracking = TrackingService(store: store, now: { 1000 })
            let views = SavedViewService(store: store, tracking: tracking)
            let exp = try await tracking.createExperiment(name: "views-\(UUID().uuidString)", artifactLocation: nil, tags: []).experimentID
            for (name, state) in [("", "{}"), ("  ", "{}"), (String(repeating: "n", count: 251), "{}"), ("ok", "[1]"), ("ok", "{nope"), ("ok", "\"text\""),
                                  ("ok", "{\"a\": \"\(String(repeating: "b", count: 70_000))\"}")] {
                do {
                    _ = try await views.createView(experimentID: exp, name: name, state: state, isDefault: nil)
                    Issue.record("accepted name \(name.prefix(8)) state \(state.prefix(8))")
                } catch let error as CairnError {
                    #expect(error.code == .invalidParameterValue)
                }
            }
            #expect(try await views.listViews(experimentID: exp).isEmpty)
            let made = try await views.createView(experimentID: exp, name: "mine", state: #"{"sort":"metric:acc:desc"}"#, isDefault: true)
            #expect(made.isDefault && made.creationTime == 1000)
            await #expect(throws: CairnError.self) { _ = try await views.updateView(experimentID: exp, viewID: made.viewID, SavedViewChange(state: "[]")) }
            #expect(try await views.getView(experimentID: exp, viewID: made.viewID).state == #"{"sort":"metric:acc:desc"}"#)
        }
    }

    @Test("An unknown experiment is RESOURCE_DOES_NOT_EXIST; a deleted one keeps its views but takes no new ones", arguments: StoreBackend.allCases)
    func experiments(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let tracking = TrackingService(store: store, now: { 1000 })
            let views = SavedViewService(store: store, tracking: tracking)
            do {
                _ = try await views.listViews(experimentID: "987654")
                Issue.record("listed the views of an unknown experiment")
            } catch let error as CairnError {
                #expect(error.code == .resourceDoesNotExist)
            }
            let exp = try await tracking.createExperiment(name: "views-\(UUID().uuidString)", artifactLocation: nil, tags: []).experimentID
            _ = try await views.createView(experimentID: exp, name: "kept", state: "{}", isDefault: nil)
            try await tracking.deleteExperiment(id: exp)
            #expect(try await views.listViews(experimentID: exp).map(\.name) == ["kept"])
            await #expect(throws: CairnError.self) { _ = try await views.createView(experimentID: exp, name: "new", state: "{}", isDefault: nil) }
        }
    }
}
