/// The model registry: named models, their numbered versions, aliases and stages, and the
/// history of every change (which MLflow does not keep).

public struct ModelVersion: Sendable, Equatable {
    public var name: String
    public var version: Int64
    public var creationTimestamp: Int64
    public var lastUpdatedTimestamp: Int64
    public var userID: String
    public var currentStage: String
    public var description: String
    public var source: String
    public var runID: String?
    public var runLink: String?
    public var status: String
    public var statusMessage: String?
    public var modelID: String?
    public var tags: [Tag]
    public var aliases: [String]

    public init(name: String, version: Int64, creationTimestamp: Int64, lastUpdatedTimestamp: Int64, userID: String,
                currentStage: String, description: String, source: String, runID: String?, runLink: String?,
                status: String, statusMessage: String?, modelID: String?, tags: [Tag], aliases: [String]) {
        self.name = name
        self.version = version
        self.creationTimestamp = creationTimestamp
        self.lastUpdatedTimestamp = lastUpdatedTimestamp
        self.userID = userID
        self.currentStage = currentStage
        self.description = description
        self.source = source
        self.runID = runID
        self.runLink = runLink
        self.status = status
        self.statusMessage = statusMessage
        self.modelID = modelID
        self.tags = tags
        self.aliases = aliases
    }
}

public struct RegisteredModel: Sendable, Equatable {
    public var name: String
    public var creationTimestamp: Int64
    public var lastUpdatedTimestamp: Int64
    public var userID: String
    public var description: String
    public var tags: [Tag]
    public var aliases: [(alias: String, version: Int64)]
    /// The newest version in each stage.
    public var latestVersions: [ModelVersion]

    public init(name: String, creationTimestamp: Int64, lastUpdatedTimestamp: Int64, userID: String, description: String,
                tags: [Tag], aliases: [(alias: String, version: Int64)], latestVersions: [ModelVersion]) {
        self.name = name
        self.creationTimestamp = creationTimestamp
        self.lastUpdatedTimestamp = lastUpdatedTimestamp
        self.userID = userID
        self.description = description
        self.tags = tags
        self.aliases = aliases
        self.latestVersions = latestVersions
    }

    public static func == (a: RegisteredModel, b: RegisteredModel) -> Bool {
        a.name == b.name && a.creationTimestamp == b.creationTimestamp && a.lastUpdatedTimestamp == b.lastUpdatedTimestamp
            && a.userID == b.userID && a.description == b.description && a.tags == b.tags
            && a.aliases.map(\.alias) == b.aliases.map(\.alias) && a.aliases.map(\.version) == b.aliases.map(\.version)
            && a.latestVersions == b.latestVersions
    }
}

/// One recorded change of a registered model or one of its versions.
public struct RegistryEvent: Sendable, Equatable {
    public var timestamp: Int64
    public var user: String
    public var action: String
    public var modelName: String
    public var version: Int64?
    /// What changed, as a JSON object (e.g. `{"from": "a", "to": "b"}`).
    public var changes: JSONValue

    public init(timestamp: Int64, user: String, action: String, modelName: String, version: Int64?, changes: JSONValue) {
        self.timestamp = timestamp
        self.user = user
        self.action = action
        self.modelName = modelName
        self.version = version
        self.changes = changes
    }
}

/// MLflow's (deprecated but still called) stages.
public enum ModelStage {
    public static let all = ["None", "Staging", "Production", "Archived"]

    /// Case-insensitive, as MLflow accepts it; nil when unknown.
    public static func canonical(_ text: String) -> String? {
        all.first { $0.lowercased() == text.lowercased() }
    }
}
