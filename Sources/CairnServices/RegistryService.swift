import CairnCore
import CairnStore
import Foundation

/// Lineage of a model version: the logged model it was registered from and the run that
/// produced it (with that run's datasets and code version tags).
public struct ModelVersionLineage: Sendable {
    public var version: ModelVersion
    public var loggedModel: LoggedModel?
    /// The producing run's id: the version's, else its logged model's source run.
    public var runID: String?
    /// That run, when this server holds it; MLflow lets a version (and a logged model) name a
    /// run of another server, so nil with a `runID` means "not on this server".
    public var run: Run?
}

/// The model registry's rules: names, sources, aliases, stages, limits. Every change is
/// recorded with who, when and what by the store, in the same transaction.
public struct RegistryService: Sendable {
    public let registry: any RegistryStore
    public let tracking: TrackingService
    /// The artifact manifest, for gates that require artifacts (nil: such gates fail).
    public let artifacts: (any ArtifactIndex)?

    public static let maxTagValueLength = 100_000
    public static let defaultModelSearchResults = 100
    public static let maxModelSearchResults = 1000
    public static let defaultVersionSearchResults = 200_000
    public static let maxVersionSearchResults = 200_000

    public init(registry: any RegistryStore, tracking: TrackingService, artifacts: (any ArtifactIndex)? = nil) {
        self.registry = registry
        self.tracking = tracking
        self.artifacts = artifacts
    }

    private var now: Int64 { tracking.now() }

    // MARK: Registered models

    public func createRegisteredModel(name: String, tags: [Tag], description: String?, user: String) async throws -> RegisteredModel {
        try Self.validateName(name)
        for tag in tags { try Self.validateTag(tag) }
        let model = try await registry.createRegisteredModel(name: name, description: description ?? "", tags: tags, user: user, now: now)
        try await tracking.onResourceCreated?(.registeredModel, model.name)
        return model
    }

    public func getRegisteredModel(name: String) async throws -> RegisteredModel {
        try Self.validateName(name)
        return try await registry.fetchRegisteredModel(name: name)
    }

    public func renameRegisteredModel(name: String, newName: String, user: String) async throws -> RegisteredModel {
        try Self.validateName(newName)
        let model = try await registry.renameRegisteredModel(name: name, newName: newName, user: user, now: now)
        try await tracking.onRegisteredModelRenamed?(name, newName)
        return model
    }

    public func updateRegisteredModel(name: String, description: String?, user: String) async throws -> RegisteredModel {
        guard let description else { return try await registry.fetchRegisteredModel(name: name) }
        return try await registry.updateRegisteredModel(name: name, description: description, user: user, now: now)
    }

    public func deleteRegisteredModel(name: String, user: String) async throws {
        try await registry.deleteRegisteredModel(name: name, user: user, now: now)
        try await tracking.onRegisteredModelRenamed?(name, nil)
    }

    public func setRegisteredModelTag(name: String, tag: Tag, user: String) async throws {
        try Self.validateTag(tag)
        if PromotionGate.isGateTag(tag.key) {
            do { _ = try PromotionGate.parse(tag.value) } catch {
                throw CairnError.invalidParameter("Tag '\(tag.key)' is a promotion gate and its value cannot be read: \(error.message)")
            }
        }
        try await registry.setRegisteredModelTag(name: name, tag: tag, user: user, now: now)
    }

    public func deleteRegisteredModelTag(name: String, key: String, user: String) async throws {
        try await registry.deleteRegisteredModelTag(name: name, key: key, user: user, now: now)
    }

    public func searchRegisteredModels(filter: String?, maxResults: Int64?, orderBy: [String], pageToken: String?) async throws -> Page<RegisteredModel> {
        let limit = try TrackingService.pageSize(maxResults, default: Self.defaultModelSearchResults, maximum: Self.maxModelSearchResults, registry: true)
        let token = try PageToken.decode(pageToken)
        let order = try Self.orderBy(orderBy, for: .registeredModels)
        let search = RegistrySearch(filter: Self.hidingPrompts(try SearchFilterParser.parse(filter ?? "", for: .registeredModels)),
                                    orderBy: order, maxResults: limit, offset: token.offset)
        let (items, hasMore) = try await registry.searchRegisteredModels(search)
        return Page(items: items.filter { VisibleResources.registeredModel($0.name) }, nextPageToken: PageToken.next(after: token.offset, pageSize: limit, hasMore: hasMore))
    }

    public func getLatestVersions(name: String, stages: [String]) async throws -> [ModelVersion] {
        let canonical = try stages.map { try Self.stage($0) }
        return try await registry.latestModelVersions(name: name, stages: canonical)
    }

    // MARK: Versions

    public func createModelVersion(name: String, source: String, runID: String?, runLink: String?, description: String?,
                                   tags: [Tag], modelID: String?, user: String) async throws -> ModelVersion {
        try Self.validateName(name)
        for tag in tags { try Self.validateTag(tag) }
        if tags.contains(where: { $0.key == PromotionGate.overrideTag }) { try await tracking.requireGateOverride?(name) }
        let resolved = try await resolveSource(source, runID: runID.flatMap { $0.isEmpty ? nil : $0 },
                                               modelID: modelID.flatMap { $0.isEmpty ? nil : $0 })
        return try await registry.createModelVersion(NewModelVersion(
            name: name, source: source, runID: resolved.runID, runLink: runLink.flatMap { $0.isEmpty ? nil : $0 },
            description: description ?? "", modelID: resolved.modelID, tags: tags, userID: user), now: now)
    }

    /// MLflow's source rules: `models:/m-<id>` names the logged model (and `model_id` must
    /// match); `models:/<name>/<version>` copies that version's run; a `runs:/<run>/…` source
    /// needs `run_id` to name the same run, which may live on another server (nothing is
    /// looked up, and no `model_id` may come with it); an `mlflow-artifacts:/…` source must lie
    /// inside the artifacts of the logged model `model_id` or, without one, of the run
    /// `run_id`; other remote URIs (`s3://…`) are kept as given. Local paths, `file:` and
    /// `http(s):` sources and any `..` segment are refused.
    func resolveSource(_ source: String, runID: String?, modelID: String?) async throws -> (runID: String?, modelID: String?) {
        if source.isEmpty { throw CairnError.missingParameter("source") }
        let decoded = source.removingPercentEncoding ?? source
        for text in [source, decoded] where text.split(separator: "/", omittingEmptySubsequences: false).contains("..") {
            throw CairnError.invalidParameter("Invalid model version source: '\(source)'. The source may not contain '..' segments.")
        }
        guard let scheme = ArtifactLocation.scheme(of: source) else {
            throw CairnError.invalidParameter("Invalid model version source: '\(source)'. Local paths are not allowed: register a models:/, runs:/ or remote (s3://, gs://, …) source.")
        }
        switch scheme {
        case "file", "http", "https":
            throw CairnError.invalidParameter("Invalid model version source: '\(source)'. \(scheme): sources are not allowed: register a models:/, runs:/ or remote storage source.")
        case "models":
            if let sourceModel = Self.loggedModelID(inSource: source) {
                guard let modelID, modelID == sourceModel else {
                    throw CairnError.invalidParameter("Invalid model version source: '\(source)' names logged model \(sourceModel); send model_id=\(sourceModel) with it.")
                }
                let model = try await tracking.getLoggedModel(id: sourceModel)
                return (runID ?? model.sourceRunID, sourceModel)
            }
            let parts = source.dropFirst("models:/".count).split(separator: "/")
            guard parts.count == 2 else {
                throw CairnError.invalidParameter("Invalid model version source: '\(source)'. Use models:/m-<id> or models:/<name>/<version>.")
            }
            let other = try await getModelVersion(name: String(parts[0]), version: String(parts[1]))
            return (runID ?? other.runID, modelID ?? other.modelID)
        case "runs":
            if modelID != nil { throw Self.sourceOutside(source, "model_id") }
            guard let (sourceRun, _) = Self.runSource(source), let runID, runID == sourceRun else {
                throw Self.sourceOutside(source, "run_id")
            }
            return (runID, nil)
        case "mlflow-artifacts":
            if let modelID {
                let model = try await sourceHolder(source, "model_id") { try await tracking.getLoggedModel(id: modelID) }
                guard Self.uri(source, isWithin: model.artifactURI) else { throw Self.sourceOutside(source, "model_id") }
                return (runID ?? model.sourceRunID, modelID)
            }
            guard let runID else { throw Self.sourceOutside(source, "run_id") }
            let run = try await sourceHolder(source, "run_id") { try await tracking.getRun(id: runID) }
            guard Self.uri(source, isWithin: run.info.artifactURI) else { throw Self.sourceOutside(source, "run_id") }
            return (runID, nil)
        default:
            if runID == nil, let modelID { return (try await tracking.getLoggedModel(id: modelID).sourceRunID, modelID) }
            return (runID, modelID)
        }
    }

    /// MLflow's answer to a source that the named run or logged model does not hold.
    static func sourceOutside(_ source: String, _ field: String) -> CairnError {
        .invalidParameter("Invalid model version source: '\(source)'. The \(field) request parameter must identify the resource that contains the source.")
    }

    /// The run or logged model that must hold an `mlflow-artifacts:` source; an unknown one is
    /// MLflow's `sourceOutside` error, not a 404.
    private func sourceHolder<T>(_ source: String, _ field: String, _ fetch: () async throws -> T) async throws -> T {
        guard let holder = try await Self.ifHeld(fetch) else { throw Self.sourceOutside(source, field) }
        return holder
    }

    static func uri(_ uri: String, isWithin root: String) -> Bool {
        uri == root || uri.hasPrefix(root.hasSuffix("/") ? root : root + "/")
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
        if tag.key == PromotionGate.overrideTag { try await tracking.requireGateOverride?(name) }
        try await registry.setModelVersionTag(name: name, version: Self.versionNumber(version), tag: tag, user: user, now: now)
    }

    public func deleteModelVersionTag(name: String, version: String, key: String, user: String) async throws {
        if key == PromotionGate.overrideTag { try await tracking.requireGateOverride?(name) }
        try await registry.deleteModelVersionTag(name: name, version: Self.versionNumber(version), key: key, user: user, now: now)
    }

    public func transitionStage(name: String, version: String, stage: String, archiveExisting: Bool, user: String) async throws -> ModelVersion {
        let target = try Self.stage(stage)
        if archiveExisting, target != "Staging", target != "Production" {
            throw CairnError.invalidParameter("archive_existing_versions can only be used when moving a version to Staging or Production, not \(target).")
        }
        let number = try Self.versionNumber(version)
        if target == "Staging" || target == "Production" {
            try await enforceGates(name: name, version: number, target: target, kind: "stage", user: user)
        }
        return try await registry.transitionModelVersionStage(name: name, version: number, stage: target,
                                                              archiveExisting: archiveExisting, user: user, now: now)
    }

    public func searchModelVersions(filter: String?, maxResults: Int64?, orderBy: [String], pageToken: String?) async throws -> Page<ModelVersion> {
        let limit = try TrackingService.pageSize(maxResults, default: Self.defaultVersionSearchResults, maximum: Self.maxVersionSearchResults, registry: true)
        let token = try PageToken.decode(pageToken)
        let order = try Self.orderBy(orderBy, for: .modelVersions)
        let search = RegistrySearch(filter: try SearchFilterParser.parse(filter ?? "", for: .modelVersions), orderBy: order,
                                    maxResults: limit, offset: token.offset)
        let (items, hasMore) = try await registry.searchModelVersions(search)
        return Page(items: items.filter { VisibleResources.registeredModel($0.name) }, nextPageToken: PageToken.next(after: token.offset, pageSize: limit, hasMore: hasMore))
    }

    /// Where the version's files are, as MLflow answers it: a `models:/m-<id>` source resolves
    /// to that logged model's artifacts, `models:/<name>/<version>` to that version's location;
    /// every other source (`runs:/…` included, which the client resolves itself) is returned as is.
    public func downloadURI(name: String, version: String) async throws -> String {
        let mv = try await getModelVersion(name: name, version: version)
        if let modelID = Self.loggedModelID(inSource: mv.source) {
            return try await tracking.getLoggedModel(id: modelID, allowDeleted: true).artifactURI
        }
        if mv.source.hasPrefix("models:/") {
            let parts = mv.source.dropFirst("models:/".count).split(separator: "/")
            if parts.count == 2, !(parts[0] == Substring(name) && parts[1] == Substring(version)) {
                return try await downloadURI(name: String(parts[0]), version: String(parts[1]))
            }
        }
        return mv.source
    }

    // MARK: Aliases

    public func setAlias(name: String, alias: String, version: String, user: String) async throws {
        try Self.validateAlias(alias)
        let number = try Self.versionNumber(version)
        try await enforceGates(name: name, version: number, target: alias, kind: "alias", user: user)
        try await registry.setRegisteredModelAlias(name: name, alias: alias, version: number, user: user, now: now)
    }

    public func deleteAlias(name: String, alias: String, user: String) async throws {
        try Self.validateAliasCharacters(alias)
        try await registry.deleteRegisteredModelAlias(name: name, alias: alias, user: user, now: now)
    }

    /// `latest` reads as the newest version, as in MLflow.
    public func getVersion(name: String, alias: String) async throws -> ModelVersion {
        try Self.validateAliasCharacters(alias)
        return try await registry.fetchModelVersion(name: name, alias: alias)
    }

    // MARK: History and lineage

    public func history(name: String, version: String) async throws -> [RegistryEvent] {
        let number = try Self.versionNumber(version)
        _ = try await registry.fetchModelVersion(name: name, version: number)
        return try await registry.registryHistory(name: name, version: number)
    }

    public func lineage(name: String, version: String) async throws -> ModelVersionLineage {
        let mv = try await getModelVersion(name: name, version: version)
        var lineage = ModelVersionLineage(version: mv, loggedModel: nil, runID: nil, run: nil)
        if let modelID = mv.modelID {
            lineage.loggedModel = try await Self.ifHeld { try await tracking.getLoggedModel(id: modelID, allowDeleted: true) }
        }
        lineage.runID = mv.runID ?? lineage.loggedModel?.sourceRunID
        if let runID = lineage.runID {
            lineage.run = try await Self.ifHeld { try await tracking.getRun(id: runID) }
        }
        return lineage
    }

    /// The runs among `runIDs` that this server holds (deleted ones too), for pages that show
    /// the runs versions name: MLflow lets a version name a run of another server.
    public func heldRuns(ids runIDs: [String]) async throws -> [RunInfo] {
        if runIDs.count > 1000 {
            throw CairnError.invalidParameter("At most 1000 run_ids may be asked at once; \(runIDs.count) were given.")
        }
        var held: [RunInfo] = []
        for id in Set(runIDs).sorted() {
            // With accounts on, a run in an experiment the caller may not read is left out.
            if let run = try await Self.ifHeld({ try await tracking.getRunInfo(id: id) }), VisibleResources.experiment(run.experimentID) {
                held.append(run)
            }
        }
        return held
    }

    /// The value `fetch` reads, or nil when this server does not hold it (any other failure is
    /// thrown: a database error must not read as "not on this server").
    static func ifHeld<T>(_ fetch: () async throws -> T) async throws -> T? {
        do {
            return try await fetch()
        } catch let error as CairnError where error.code == .resourceDoesNotExist {
            return nil
        }
    }

    // MARK: Rules

    static func validateName(_ name: String) throws {
        if name.trimmingCharacters(in: .whitespaces).isEmpty { throw CairnError.missingParameter("name") }
        if name.contains("/") || name.contains(":") || name == "." || name == ".." {
            throw CairnError.invalidParameter("Invalid model name: '\(name)'. Registered model names cannot contain '/' or ':' and cannot be '.' or '..'.")
        }
        if name.count > 256 {
            throw CairnError.invalidParameter("Invalid model name: it has \(name.count) characters, the limit is 256.")
        }
    }

    static func validateTag(_ tag: Tag) throws {
        if tag.key.isEmpty { throw CairnError.missingParameter("key") }
        try Validation.validateKey(tag.key, kind: "tag")
        try Validation.validateValueLength(tag.value, limit: maxTagValueLength, kind: "tag", key: tag.key)
    }

    /// MLflow's alias rule: `^[\w\-]*$`, at most 255 characters, not `latest` and not `v<digits>`
    /// (those would be ambiguous in `models:/name@alias` and `models:/name/latest`).
    static func validateAliasCharacters(_ alias: String) throws {
        if alias.isEmpty { throw CairnError.missingParameter("alias") }
        let valid = alias.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil || $0 == "_" || $0 == "-" }
        if !valid {
            throw CairnError.invalidParameter("Invalid alias name: '\(alias)'. Names may only contain alphanumerics, underscores (_), and dashes (-).")
        }
        if alias.count > 255 {
            throw CairnError.invalidParameter("'Registered model alias name' exceeds the maximum length of 255 characters.")
        }
    }

    static func validateAlias(_ alias: String) throws {
        try validateAliasCharacters(alias)
        if alias.lowercased() == "latest" {
            throw CairnError.invalidParameter("'\(alias)' alias name (case insensitive) is reserved: models:/name/latest already means the newest version.")
        }
        if alias.lowercased().hasPrefix("v"), alias.count > 1, alias.dropFirst().allSatisfy(\.isNumber) {
            throw CairnError.invalidParameter("Version alias name '\(alias)' is reserved: it reads as a version number. Choose another alias.")
        }
    }

    static let promptTag = "mlflow.prompt.is_prompt"

    /// Prompts live in the same tables but are not models: a search that does not ask about
    /// the prompt tag gets `tags.mlflow.prompt.is_prompt != 'true'` added, as MLflow does.
    static func hidingPrompts(_ filter: FilterExpression?) -> FilterExpression {
        func mentionsPrompt(_ e: FilterExpression) -> Bool {
            switch e {
            case .comparison(let c): return c.identifier == FilterIdentifier(.tag, promptTag)
            case .and(let parts), .or(let parts): return parts.contains(where: mentionsPrompt)
            case .not(let inner): return mentionsPrompt(inner)
            }
        }
        let notPrompt = FilterExpression.comparison(FilterComparison(FilterIdentifier(.tag, promptTag), .notEqual, .string("true")))
        guard let filter else { return notPrompt }
        return mentionsPrompt(filter) ? filter : .and([filter, notPrompt])
    }

    static func versionNumber(_ text: String) throws -> Int64 {
        guard let number = Int64(text), number >= 1 else {
            throw CairnError.invalidParameter("Parameter 'version' must be an integer, got '\(text)'.")
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
        let parsed = try OrderByParser.parse(clauses, for: target)
        var seen = Set<String>()
        for clause in parsed where !seen.insert(clause.identifier.key).inserted {
            throw CairnError.invalidParameter("`order_by` contains duplicate fields: \(clauses). Give each field once.")
        }
        return parsed
    }

    /// `models:/m-<id>` (possibly with a trailing path) → `m-<id>`.
    static func loggedModelID(inSource source: String) -> String? { ArtifactLocation.loggedModelID(inSource: source) }

    /// `runs:/<run>/<path>` → (run, path).
    static func runSource(_ source: String) -> (String, String)? { ArtifactLocation.runSource(source) }
}
