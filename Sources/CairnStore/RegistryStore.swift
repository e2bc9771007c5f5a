import CairnCore

public struct RegistrySearch: Sendable {
    public var filter: FilterExpression?
    public var orderBy: [OrderByClause]
    public var maxResults: Int
    public var offset: Int

    public init(filter: FilterExpression?, orderBy: [OrderByClause], maxResults: Int, offset: Int) {
        self.filter = filter
        self.orderBy = orderBy
        self.maxResults = maxResults
        self.offset = offset
    }
}

/// A model version as the service has decided it, before it has a number.
public struct NewModelVersion: Sendable {
    public var name: String
    public var source: String
    public var runID: String?
    public var runLink: String?
    public var description: String
    public var modelID: String?
    public var tags: [Tag]
    public var userID: String

    public init(name: String, source: String, runID: String?, runLink: String?, description: String, modelID: String?, tags: [Tag], userID: String) {
        self.name = name
        self.source = source
        self.runID = runID
        self.runLink = runLink
        self.description = description
        self.modelID = modelID
        self.tags = tags
        self.userID = userID
    }
}

/// Persistence of the model registry. Every write also appends its `RegistryEvent`s (who,
/// when, what changed) in the same transaction, so the history can never miss a change.
/// Unknown names and versions throw `RESOURCE_DOES_NOT_EXIST`.
public protocol RegistryStore: Sendable {
    func createRegisteredModel(name: String, description: String, tags: [Tag], user: String, now: Int64) async throws -> RegisteredModel
    func fetchRegisteredModel(name: String) async throws -> RegisteredModel
    func renameRegisteredModel(name: String, newName: String, user: String, now: Int64) async throws -> RegisteredModel
    func updateRegisteredModel(name: String, description: String, user: String, now: Int64) async throws -> RegisteredModel
    func deleteRegisteredModel(name: String, user: String, now: Int64) async throws
    func setRegisteredModelTag(name: String, tag: Tag, user: String, now: Int64) async throws
    func deleteRegisteredModelTag(name: String, key: String, user: String, now: Int64) async throws
    func searchRegisteredModels(_ search: RegistrySearch) async throws -> (items: [RegisteredModel], hasMore: Bool)

    func createModelVersion(_ version: NewModelVersion, now: Int64) async throws -> ModelVersion
    func fetchModelVersion(name: String, version: Int64) async throws -> ModelVersion
    func updateModelVersion(name: String, version: Int64, description: String, user: String, now: Int64) async throws -> ModelVersion
    func deleteModelVersion(name: String, version: Int64, user: String, now: Int64) async throws
    func setModelVersionTag(name: String, version: Int64, tag: Tag, user: String, now: Int64) async throws
    func deleteModelVersionTag(name: String, version: Int64, key: String, user: String, now: Int64) async throws
    func transitionModelVersionStage(name: String, version: Int64, stage: String, archiveExisting: Bool, user: String, now: Int64) async throws -> ModelVersion
    func searchModelVersions(_ search: RegistrySearch) async throws -> (items: [ModelVersion], hasMore: Bool)
    /// The newest version in each of `stages` (every stage when empty).
    func latestModelVersions(name: String, stages: [String]) async throws -> [ModelVersion]

    func setRegisteredModelAlias(name: String, alias: String, version: Int64, user: String, now: Int64) async throws
    func deleteRegisteredModelAlias(name: String, alias: String, user: String, now: Int64) async throws
    func fetchModelVersion(name: String, alias: String) async throws -> ModelVersion

    /// The recorded changes of one version (and of its model while it existed), oldest first.
    func registryHistory(name: String, version: Int64) async throws -> [RegistryEvent]
    /// Records an event of a version's history on its own (e.g. a promotion gate's evaluation,
    /// kept even when the promotion it judged is refused), and queues `webhook` (with the same
    /// changes plus the model's name and version) in the same transaction.
    func recordRegistryEvent(name: String, version: Int64, action: String, changes: JSONValue, user: String, now: Int64, webhook: WebhookEvent?) async throws
}
