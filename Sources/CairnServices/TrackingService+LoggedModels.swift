import CairnCore
import CairnStore
import Foundation

/// Rules for MLflow 3 logged models and the run ↔ model links.
extension TrackingService {
    public static let defaultLoggedModelSearchResults = 50
    public static let maxLoggedModelParamsPerRequest = 100

    public func createLoggedModel(experimentID: String, name: String?, modelType: String?, sourceRunID: String?,
                                  params: [Param], tags: [Tag]) async throws -> LoggedModel {
        let experiment = try await getExperiment(id: experimentID)
        if let name, !name.isEmpty, let bad = name.first(where: { "/:.%\"'".contains($0) }) {
            throw CairnError.invalidParameter("Invalid model name ('\(name)') provided: model names cannot contain '\(bad)' (nor any of / : . % \" '). Use letters, digits, '-' and '_'.")
        }
        try validateModelParams(params)
        for tag in tags { try validateModelTag(tag) }
        let modelID = "m-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let location = experiment.artifactLocation.hasSuffix("/") ? String(experiment.artifactLocation.dropLast()) : experiment.artifactLocation
        let time = now()
        let model = LoggedModel(
            modelID: modelID, experimentID: experiment.experimentID,
            name: name.flatMap { $0.isEmpty ? nil : $0 } ?? RunNameGenerator.make(),
            artifactURI: "\(location)/models/\(modelID)/artifacts", creationTimestamp: time, lastUpdatedTimestamp: time,
            status: .pending, creatorID: tags.last(where: { $0.key == SystemTag.user })?.value,
            modelType: modelType.flatMap { $0.isEmpty ? nil : $0 }, sourceRunID: sourceRunID.flatMap { $0.isEmpty ? nil : $0 },
            tags: tags, params: params)
        return try await store.createLoggedModel(model)
    }

    public func getLoggedModel(id: String, allowDeleted: Bool = false) async throws -> LoggedModel {
        try await store.fetchLoggedModel(id: id, allowDeleted: allowDeleted)
    }

    public func finalizeLoggedModel(id: String, status: LoggedModelStatus) async throws -> LoggedModel {
        try await store.updateLoggedModelStatus(id: id, status: status, statusMessage: nil, now: now())
    }

    public func setLoggedModelTags(id: String, tags: [Tag]) async throws {
        for tag in tags { try validateModelTag(tag) }
        try await store.setLoggedModelTags(id: id, tags: tags, now: now())
    }

    public func deleteLoggedModelTag(id: String, key: String) async throws {
        try await store.deleteLoggedModelTag(id: id, key: key, now: now())
    }

    public func logLoggedModelParams(id: String, params: [Param]) async throws {
        try validateModelParams(params)
        try await store.logLoggedModelParams(id: id, params: params, now: now())
    }

    public func deleteLoggedModel(id: String) async throws {
        try await store.deleteLoggedModel(id: id, now: now())
    }

    /// `orderBy` entries are (field name, ascending, dataset) as the structured MLflow request gives them.
    public func searchLoggedModels(experimentIDs: [String], filter: String?, datasets: [DatasetFilter],
                                   orderBy: [(field: String, ascending: Bool, dataset: DatasetFilter?)],
                                   maxResults: Int64?, pageToken: String?) async throws -> Page<LoggedModel> {
        if experimentIDs.isEmpty { throw CairnError.missingParameter("experiment_ids") }
        let ids = try experimentIDs.map { try Validation.parseExperimentID($0) }
        let limit = try Self.pageSize(maxResults, default: Self.defaultLoggedModelSearchResults, maximum: Limits.maxSearchResults)
        let token = try PageToken.decode(pageToken)
        let parsedFilter = try SearchFilterParser.parse(filter ?? "", for: .loggedModels).map(Self.canonicalModelStatus)
        if orderBy.count > Limits.maxOrderByClauses {
            throw CairnError.invalidParameter(
                "Invalid order_by: it has \(orderBy.count) entries; the limit is \(Limits.maxOrderByClauses). Order by fewer fields.")
        }
        let orders = try orderBy.map { entry in
            let clause = try OrderByParser.parse(entry.field, for: .loggedModels)
            return LoggedModelOrder(clause: OrderByClause(clause.identifier, ascending: entry.ascending), dataset: entry.dataset)
        }
        let search = LoggedModelSearch(experimentIDs: ids, filter: parsedFilter, datasets: datasets, orderBy: orders,
                                       maxResults: limit, offset: token.offset)
        let (items, hasMore) = try await store.searchLoggedModels(search)
        return Page(items: items, nextPageToken: PageToken.next(after: token.offset, pageSize: limit, hasMore: hasMore))
    }

    public func logOutputs(runID: String, outputs: [ModelOutput]) async throws {
        if outputs.isEmpty { throw CairnError.missingParameter("models") }
        try await store.logOutputs(runID: runID, outputs)
    }

    /// The legacy `runs/log-model`: `modelJSON` is an MLmodel description; it is appended to
    /// the run's `mlflow.log-model.history` tag.
    public func logModel(runID: String, modelJSON: String) async throws {
        guard case .object(let members)? = try? JSONValue.parse(modelJSON) else {
            throw CairnError.invalidParameter("Invalid value for parameter 'model_json': expected a JSON object describing the model (MLmodel as JSON).")
        }
        let required = ["artifact_path", "flavors", "utc_time_created", "run_id"]
        let missing = required.filter { key in !members.contains { $0.0 == key } }
        if !missing.isEmpty {
            throw CairnError.invalidParameter("Model json is missing mandatory fields: \(missing). Send the MLmodel description with \(required.joined(separator: ", ")).")
        }
        try await store.appendLogModelHistory(runID: runID, model: .object(members))
    }

    // MARK: Helpers

    /// `status = 'READY'` and `status = 'LOGGED_MODEL_READY'` mean the same.
    static func canonicalModelStatus(_ expression: FilterExpression) -> FilterExpression {
        func canonical(_ text: String) -> String {
            LoggedModelStatus(rawValue: text) != nil ? text : (LoggedModelStatus(rawValue: "LOGGED_MODEL_" + text.uppercased())?.rawValue ?? text)
        }
        switch expression {
        case .comparison(var c):
            guard c.identifier == FilterIdentifier(.attribute, "status"), c.comparator != .like, c.comparator != .ilike else { return expression }
            switch c.value {
            case .string(let s): c.value = .string(canonical(s))
            case .list(let items): c.value = .list(items.map(canonical))
            default: break
            }
            return .comparison(c)
        case .and(let parts): return .and(parts.map(canonicalModelStatus))
        case .or(let parts): return .or(parts.map(canonicalModelStatus))
        case .not(let inner): return .not(canonicalModelStatus(inner))
        }
    }

    private func validateModelParams(_ params: [Param]) throws {
        if params.count > Self.maxLoggedModelParamsPerRequest {
            throw CairnError.invalidParameter("A request can log at most \(Self.maxLoggedModelParamsPerRequest) params to a logged model. Got \(params.count). Split them across requests.")
        }
        try Self.validateParams(params)
    }

    private func validateModelTag(_ tag: Tag) throws {
        try Validation.validateKey(tag.key, kind: "tag")
        try Validation.validateValueLength(tag.value, limit: Limits.maxTagValueLength, kind: "tag", key: tag.key)
    }
}
