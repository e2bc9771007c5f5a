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
    /// A dotted name (`trace.trace_info.trace_location.mlflow_experiment.experiment_id`) walks
    /// nested messages, and lists on the way (`locations.mlflow_experiment.experiment_id`).
    func accessValues(_ name: String) -> [String] {
        if name.contains(".") {
            let path = name.split(separator: ".").map(String.init)
            var values = json(path[0]).map { [$0] } ?? []
            for component in path.dropFirst() {
                values = values.flatMap { value -> [JSONValue] in
                    if case .array(let items) = value { return items.compactMap { $0[component] } }
                    return value[component].map { [$0] } ?? []
                }
            }
            return values.flatMap { value -> [String] in
                switch value {
                case .string(let text), .number(let text): return [text]
                case .array(let items): return items.compactMap { if case .string(let text) = $0 { text } else { nil } }
                default: return []
                }
            }
        }
        if name == "run_id", let runID = logBatch?.runID { return [runID] }
        if let list = try? strings(name), !list.isEmpty { return list }
        if let value = try? string(name) { return [value] }
        return []
    }
}
