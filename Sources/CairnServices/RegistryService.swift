import CairnCore
import CairnStore
import Foundation

/// Lineage of a model version: the logged model it was registered from and the run that
/// produced it (with that run's datasets and code version tags).
public struct ModelVersionLineage: Sendable {
    public var version: ModelVersion
    public var loggedModel: LoggedModel?
    public var run: Run?
}

/// The model registry's rules: names, sources, aliases, stages, limits. Every change is
/// recorded with who, when and what by the store, in the same transaction.
public struct RegistryService: Sendable {
    public let registry: any RegistryStore
    public let tracking: TrackingService

    public static let maxTagValueLength = 100_000
    public static let defaultModelSearchResults = 100
    public static let maxModelSearchResults = 1000
    public static let defaultVersionSearchResults = 200_000
    public static let maxVersionSearchResults = 200_000

    public init(registry: any RegistryStore, tracking: TrackingService) {
        self.registry = registry
        self.tracking = tracking
    }

    private var now: Int64 { tracking.now() }

    // MARK: Registered models

    public func createRegisteredModel(name: String, tags: [Tag], description: String?, user: String) async throws -> RegisteredModel {
        try Self.validateName(name)
        for tag in tags { try Self.validateTag(tag) }
        return try await registry.createRegisteredModel(name: name, description: description ?? "", tags: tags, user: user, now: now)
    }

    public func getRegisteredModel(name: String) async throws -> RegisteredModel {
        try await registry.fetchRegisteredModel(name: name)
    }

    public func renameRegisteredModel(name: String, newName: String, user: String) async throws -> RegisteredModel {
        try Self.validateName(newName)
        return try await registry.renameRegisteredModel(name: name, newName: newName, user: user, now: now)
    }

    public func updateRegisteredModel(name: String, description: String?, user: String) async throws -> RegisteredModel {
        guard let description else { return try await registry.fetchRegisteredModel(name: name) }
        return try await registry.updateRegisteredModel(name: name, description: description, user: user, now: now)
    }

    public func deleteRegisteredModel(name: String, user: String) async throws {
        try await registry.deleteRegisteredModel(name: name, user: user, now: now)
    }

    public func setRegisteredModelTag(name: String, tag: Tag, user: String) async throws {
        try Self.validateTag(tag)
        try await registry.setRegisteredModelTag(name: name, tag: tag, user: user, now: now)
    }

    public func deleteRegisteredModelTag(name: String, key: String, user: String) async throws {
        try await registry.deleteRegisteredModelTag(name: name, key: key, user: user, now: now)
    }

    public func searchRegisteredModels(filter: String?, maxResults: Int64?, orderBy: [String], pageToken: String?) async throws -> Page<RegisteredModel> {
        let limit = try TrackingService.pageSize(maxResults, default: Self.defaultModelSearchResults, maximum: Self.maxModelSearchResults, what: "registered models")
        let token = try PageToken.decode(pageToken)
        let order = try Self.orderBy(orderBy, for: .registeredModels)
        let search = RegistrySearch(filter: try SearchFilterParser.parse(filter ?? "", for: .registeredModels), orderBy: order,
                                    maxResults: limit, offset: token.offset)
        let (items, hasMore) = try await registry.searchRegisteredModels(search)
        return Page(items: items, nextPageToken: PageToken.next(after: token.offset, pageSize: limit, hasMore: hasMore))
    }

    public func getLatestVersions(name: String, stages: [String]) async throws -> [ModelVersion] {
        let canonical = try stages.map { try Self.stage($0) }
        return try await registry.latestModelVersions(name: name, stages: canonical)
    }

    // MARK: Versions

    public func createModelVersion(name: String, source: String, runID: String?, runLink: String?, description: String?,
                                   tags: [Tag], modelID: String?, user: String) async throws -> ModelVersion {
        try Self.validateName(name)
        if source.isEmpty { throw CairnError.missingParameter("source") }
        if source.split(separator: "/", omittingEmptySubsequences: false).contains("..") {
            throw CairnError.invalidParameter("Invalid model version source: '\(source)'. The source may not contain '..' segments.")
        }
        for tag in tags { try Self.validateTag(tag) }
        var runID = runID.flatMap { $0.isEmpty ? nil : $0 }
        var modelID = modelID.flatMap { $0.isEmpty ? nil : $0 }
        if let loggedModelID = Self.loggedModelID(inSource: source) {
            let model = try await tracking.getLoggedModel(id: loggedModelID)
            modelID = model.modelID
            runID = runID ?? model.sourceRunID
        } else if let (sourceRun, _) = Self.runSource(source) {
            if let runID, runID != sourceRun {
                throw CairnError.invalidParameter("Invalid model version source: '\(source)' names run \(sourceRun), but run_id is \(runID). Give the run that produced the model.")
            }
            runID = sourceRun
        }
        if let runID { _ = try await tracking.getRun(id: runID) }
        if let modelID { _ = try await tracking.getLoggedModel(id: modelID) }
        return try await registry.createModelVersion(NewModelVersion(
            name: name, source: source, runID: runID, runLink: runLink.flatMap { $0.isEmpty ? nil : $0 },
            description: description ?? "", modelID: modelID, tags: tags, userID: user), now: now)
    }

    public func getModelVersion(name: String, version: String) async throws -> ModelVersion {
        try await registry.fetchModelVersion(name: name, version: Self.versionNumber(version))
    }

    public func updateModelVersion(name: String, version: String, description: String?, user: String) async throws -> ModelVersion {
        let number = try Self.versionNumber(version)
        guard let description else { return try await registry.fetchModelVersion(name: name, version: number) }
        return try await registry.updateModelVersion(name: name, version: number, description: description, user: user, now: now)
    }

    public func deleteModelVersion(name: String, version: String, user: String) async throws {
        try await registry.deleteModelVersion(name: name, version: Self.versionNumber(version), user: user, now: now)
    }

    public func setModelVersionTag(name: String, version: String, tag: Tag, user: String) async throws {
        try Self.validateTag(tag)
        try await registry.setModelVersionTag(name: name, version: Self.versionNumber(version), tag: tag, user: user, now: now)
    }

    public func deleteModelVersionTag(name: String, version: String, key: String, user: String) async throws {
        try await registry.deleteModelVersionTag(name: name, version: Self.versionNumber(version), key: key, user: user, now: now)
    }

    public func transitionStage(name: String, version: String, stage: String, archiveExisting: Bool, user: String) async throws -> ModelVersion {
        try await registry.transitionModelVersionStage(name: name, version: Self.versionNumber(version), stage: Self.stage(stage),
                                                       archiveExisting: archiveExisting, user: user, now: now)
    }

    public func searchModelVersions(filter: String?, maxResults: Int64?, orderBy: [String], pageToken: String?) async throws -> Page<ModelVersion> {
        let limit = try TrackingService.pageSize(maxResults, default: Self.defaultVersionSearchResults, maximum: Self.maxVersionSearchResults, what: "model versions")
        let token = try PageToken.decode(pageToken)
        let order = try Self.orderBy(orderBy, for: .modelVersions)
        let search = RegistrySearch(filter: try SearchFilterParser.parse(filter ?? "", for: .modelVersions), orderBy: order,
                                    maxResults: limit, offset: token.offset)
        let (items, hasMore) = try await registry.searchModelVersions(search)
        return Page(items: items, nextPageToken: PageToken.next(after: token.offset, pageSize: limit, hasMore: hasMore))
    }

    /// Where the version's files are: a `models:/m-<id>` source resolves to that logged model's
    /// artifacts, `runs:/<run>/<path>` to the run's artifact folder, anything else is itself.
    public func downloadURI(name: String, version: String) async throws -> String {
        let mv = try await getModelVersion(name: name, version: version)
        if let modelID = Self.loggedModelID(inSource: mv.source) {
            return try await tracking.getLoggedModel(id: modelID, allowDeleted: true).artifactURI
        }
        if let (runID, path) = Self.runSource(mv.source) {
            let run = try await tracking.getRun(id: runID)
            return path.isEmpty ? run.info.artifactURI : run.info.artifactURI + "/" + path
        }
        return mv.source
    }

    // MARK: Aliases

    public func setAlias(name: String, alias: String, version: String, user: String) async throws {
        try Self.validateAlias(alias)
        try await registry.setRegisteredModelAlias(name: name, alias: alias, version: Self.versionNumber(version), user: user, now: now)
    }

    public func deleteAlias(name: String, alias: String, user: String) async throws {
        try await registry.deleteRegisteredModelAlias(name: name, alias: alias, user: user, now: now)
    }

    public func getVersion(name: String, alias: String) async throws -> ModelVersion {
        try await registry.fetchModelVersion(name: name, alias: alias)
    }

    // MARK: History and lineage

    public func history(name: String, version: String) async throws -> [RegistryEvent] {
        let number = try Self.versionNumber(version)
        _ = try await registry.fetchModelVersion(name: name, version: number)
        return try await registry.registryHistory(name: name, version: number)
    }

    public func lineage(name: String, version: String) async throws -> ModelVersionLineage {
        let mv = try await getModelVersion(name: name, version: version)
        var lineage = ModelVersionLineage(version: mv, loggedModel: nil, run: nil)
        if let modelID = mv.modelID {
            lineage.loggedModel = try? await tracking.getLoggedModel(id: modelID, allowDeleted: true)
        }
        if let runID = mv.runID ?? lineage.loggedModel?.sourceRunID {
            lineage.run = try? await tracking.getRun(id: runID)
        }
        return lineage
    }

    // MARK: Rules

    static func validateName(_ name: String) throws {
        if name.isEmpty { throw CairnError.missingParameter("name") }
        if name.contains("/") || name.contains(":") || name == "." || name == ".." {
            throw CairnError.invalidParameter("Invalid model name: '\(name)'. Registered model names cannot contain '/' or ':' and cannot be '.' or '..'.")
        }
        if name.count > 256 {
            throw CairnError.invalidParameter("Invalid model name: it has \(name.count) characters, the limit is 256.")
        }
    }

    static func validateTag(_ tag: Tag) throws {
        if tag.key.isEmpty { throw CairnError.missingParameter("key") }
        try Validation.validateValueLength(tag.key, limit: Limits.maxKeyLength, kind: "tag key", key: tag.key)
        try Validation.validateValueLength(tag.value, limit: maxTagValueLength, kind: "tag", key: tag.key)
    }

    /// MLflow's alias rule: `^[\w\-]*$`, at most 255 characters, not `latest` and not `v<digits>`
    /// (those would be ambiguous in `models:/name@alias` and `models:/name/latest`).
    static func validateAlias(_ alias: String) throws {
        if alias.isEmpty { throw CairnError.missingParameter("alias") }
        let valid = alias.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil || $0 == "_" || $0 == "-" }
        if !valid || alias.count > 255 {
            throw CairnError.invalidParameter("Invalid alias name: '\(alias)'. Alias names may only contain alphanumerics, underscores (_) and dashes (-), at most 255 characters.")
        }
        if alias.lowercased() == "latest" {
            throw CairnError.invalidParameter("'\(alias)' alias name (case insensitive) is reserved: models:/name/latest already means the newest version.")
        }
        if alias.lowercased().hasPrefix("v"), alias.count > 1, alias.dropFirst().allSatisfy(\.isNumber) {
            throw CairnError.invalidParameter("Version alias name '\(alias)' is reserved: it reads as a version number. Choose another alias.")
        }
    }

    static func versionNumber(_ text: String) throws -> Int64 {
        guard let number = Int64(text), number >= 1 else {
            throw CairnError.invalidParameter("Invalid model version number '\(text)': version numbers are positive integers.")
        }
        return number
    }

    static func stage(_ text: String) throws -> String {
        guard let stage = ModelStage.canonical(text) else {
            throw CairnError.invalidParameter("Invalid Model Version stage: \(text). Value must be one of \(ModelStage.all.joined(separator: ", ")).")
        }
        return stage
    }

    static func orderBy(_ clauses: [String], for target: SearchTarget) throws -> [OrderByClause] {
        let parsed = try clauses.map { try OrderByParser.parse($0, for: target) }
        var seen = Set<String>()
        for clause in parsed where !seen.insert(clause.identifier.key).inserted {
            throw CairnError.invalidParameter("`order_by` contains duplicate fields: \(clauses). Give each field once.")
        }
        return parsed
    }

    /// `models:/m-<id>` (possibly with a trailing path) → `m-<id>`.
    static func loggedModelID(inSource source: String) -> String? {
        guard source.hasPrefix("models:/m-") else { return nil }
        return String(source.dropFirst("models:/".count).split(separator: "/").first ?? "")
    }

    /// `runs:/<run>/<path>` → (run, path).
    static func runSource(_ source: String) -> (String, String)? {
        guard source.hasPrefix("runs:/") else { return nil }
        let rest = source.dropFirst("runs:/".count).drop(while: { $0 == "/" })
        let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let run = parts.first, !run.isEmpty else { return nil }
        return (String(run), parts.count > 1 ? String(parts[1]).trimmingCharacters(in: CharacterSet(charactersIn: "/")) : "")
    }
}
