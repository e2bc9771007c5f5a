import CairnCore
import CairnServices

extension AccessControl {
    /// Checks `rule` against the request's fields, then runs `body` with the lists it returns
    /// narrowed to what the caller may read (`VisibleResources`).
    func authorized<T: Sendable>(_ rule: AccessRule, _ fields: RequestFields, _ body: () async throws -> T) async throws -> T {
        guard isEnabled else { return try await body() }
        try await authorize(rule) { name in fields.accessValues(name) }
        guard rule == .signedIn, let identity = RequestIdentity.current, !identity.isAdmin else { return try await body() }
        let visible = VisibleResources(experiments: try await readable(.experiment), registeredModels: try await readable(.registeredModel))
        return try await VisibleResources.$current.withValue(visible) { try await body() }
    }
}

extension RequestFields {
    /// Every value of a field as text, for access rules: a list's items, a scalar's value,
    /// nothing when absent or of another type (the endpoint then refuses it itself).
    func accessValues(_ name: String) -> [String] {
        if name == "run_id", let runID = logBatch?.runID { return [runID] }
        if let list = try? strings(name), !list.isEmpty { return list }
        if let value = try? string(name) { return [value] }
        return []
    }
}
