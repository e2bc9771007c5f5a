import CairnCore
import CairnTestSupport
import Testing
@testable import CairnStore

@Suite("Saved view store")
struct SavedViewStoreTests {
    @Test("Views are created, listed by name, renamed, updated and deleted per experiment", arguments: StoreBackend.allCases)
    func crud(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let exp = Int64(try await store.createExperiment(name: "views", artifactLocation: nil, tags: [], now: 1).experimentID)!
            let other = Int64(try await store.createExperiment(name: "other", artifactLocation: nil, tags: [], now: 1).experimentID)!
            let b = try await store.createSavedView(experimentID: exp, id: "v2", SavedViewChange(name: "b", state: #"{"sort":"metric:acc:desc"}"#), now: 10)
            let a = try await store.createSavedView(experimentID: exp, id: "v1", SavedViewChange(name: "a", state: "{}"), now: 11)
            #expect(b == SavedView(viewID: "v2", experimentID: String(exp), name: "b", state: #"{"sort":"metric:acc:desc"}"#, isDefault: false,
                                   creationTime: 10, lastUpdateTime: 10))
            #expect(try await store.listSavedViews(experimentID: exp).map(\.name) == ["a", "b"])
            #expect(try await store.listSavedViews(experimentID: other).isEmpty)
            // The same name in another experiment is fine; in the same one it is refused and nothing changes.
            _ = try await store.createSavedView(experimentID: other, id: "v3", SavedViewChange(name: "a", state: "{}"), now: 12)
            await #expect(throws: CairnError.self) {
                _ = try await store.createSavedView(experimentID: exp, id: "v4", SavedViewChange(name: "b", state: "{}"), now: 13)
            }
            await #expect(throws: CairnError.self) {
                _ = try await store.updateSavedView(experimentID: exp, id: "v1", SavedViewChange(name: "b"), now: 13)
            }
            #expect(try await store.listSavedViews(experimentID: exp).map(\.viewID) == ["v1", "v2"])

            let renamed = try await store.updateSavedView(experimentID: exp, id: a.viewID, SavedViewChange(name: "c", state: #"{"x":1}"#), now: 20)
            #expect(renamed.name == "c" && renamed.state == #"{"x":1}"# && renamed.creationTime == 11 && renamed.lastUpdateTime == 20)
            // A view is found only through its own experiment.
            await #expect(throws: CairnError.self) { _ = try await store.fetchSavedView(experimentID: other, id: "v1") }
            try await store.deleteSavedView(experimentID: exp, id: "v2")
            await #expect(throws: CairnError.self) { try await store.deleteSavedView(experimentID: exp, id: "v2") }
            #expect(try await store.listSavedViews(experimentID: exp).map(\.name) == ["c"])
        }
    }

    @Test("An experiment has at most one default view: setting one clears the previous default", arguments: StoreBackend.allCases)
    func defaultView(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let exp = Int64(try await store.createExperiment(name: "views", artifactLocation: nil, tags: [], now: 1).experimentID)!
            let other = Int64(try await store.createExperiment(name: "other", artifactLocation: nil, tags: [], now: 1).experimentID)!
            _ = try await store.createSavedView(experimentID: exp, id: "v1", SavedViewChange(name: "one", state: "{}", isDefault: true), now: 1)
            _ = try await store.createSavedView(experimentID: other, id: "o1", SavedViewChange(name: "one", state: "{}", isDefault: true), now: 1)
            _ = try await store.createSavedView(experimentID: exp, id: "v2", SavedViewChange(name: "two", state: "{}", isDefault: true), now: 2)
            #expect(try await store.listSavedViews(experimentID: exp).filter(\.isDefault).map(\.viewID) == ["v2"])
            _ = try await store.updateSavedView(experimentID: exp, id: "v1", SavedViewChange(isDefault: true), now: 3)
            #expect(try await store.listSavedViews(experimentID: exp).filter(\.isDefault).map(\.viewID) == ["v1"])
            _ = try await store.updateSavedView(experimentID: exp, id: "v1", SavedViewChange(isDefault: false), now: 4)
            #expect(try await store.listSavedViews(experimentID: exp).filter(\.isDefault).isEmpty)
            // The other experiment's default is untouched.
            #expect(try await store.listSavedViews(experimentID: other).filter(\.isDefault).map(\.viewID) == ["o1"])
        }
    }
}
