/// A named view of an experiment's runs page, saved on the server so that it can be shared by
/// link: the table's columns, their order, widths and pins, the sort, filter and grouping, and
/// the chart panels. The server keeps `state` as the web UI wrote it (a JSON object, checked
/// and size-limited); at most one view per experiment is its default.
public struct SavedView: Sendable, Equatable {
    public var viewID: String
    public var experimentID: String
    public var name: String
    /// A JSON object, as text.
    public var state: String
    public var isDefault: Bool
    public var creationTime: Int64
    public var lastUpdateTime: Int64

    public init(viewID: String, experimentID: String, name: String, state: String, isDefault: Bool, creationTime: Int64, lastUpdateTime: Int64) {
        self.viewID = viewID
        self.experimentID = experimentID
        self.name = name
        self.state = state
        self.isDefault = isDefault
        self.creationTime = creationTime
        self.lastUpdateTime = lastUpdateTime
    }
}

/// A saved view's fields for create and update (nil: keep).
public struct SavedViewChange: Sendable {
    public var name: String?
    public var state: String?
    public var isDefault: Bool?

    public init(name: String? = nil, state: String? = nil, isDefault: Bool? = nil) {
        self.name = name
        self.state = state
        self.isDefault = isDefault
    }
}
