import CairnCore

/// What the caller of a listing may read, set for the request by the access check when
/// accounts are on and the caller is not an administrator; nil (everything) otherwise. The
/// services' searches drop what is not in it, so a page may hold fewer items than asked for
/// while its next-page token stays right.
public struct VisibleResources: Sendable {
    public var experiments: AccessControl.ReadableSet?
    public var registeredModels: AccessControl.ReadableSet?

    public init(experiments: AccessControl.ReadableSet?, registeredModels: AccessControl.ReadableSet?) {
        self.experiments = experiments
        self.registeredModels = registeredModels
    }

    @TaskLocal public static var current: VisibleResources?

    /// True when the caller may see the experiment `id`.
    public static func experiment(_ id: String) -> Bool {
        current?.experiments?.contains(id) ?? true
    }

    /// True when the caller may see the registered model `name`.
    public static func registeredModel(_ name: String) -> Bool {
        current?.registeredModels?.contains(name) ?? true
    }
}
