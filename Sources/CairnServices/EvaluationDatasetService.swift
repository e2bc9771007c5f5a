import CairnCore
import CairnStore
import Crypto
import Foundation

/// The rules of MLflow 3 evaluation datasets (`mlflow.genai.datasets`): creation linked to
/// experiments, tags (sent as one JSON object text, as MLflow's API carries them), records
/// merged by their inputs (expectations and tags merged key by key, outputs replaced), the
/// schema, profile and digest kept with the dataset, search and paging.
public struct EvaluationDatasetService: Sendable {
    public let store: any EvaluationDatasetStore
    public let tracking: TrackingService

    public static let defaultSearchResults = 50
    public static let maxSearchResults = 1000
    public static let defaultRecordsPage = 1000
    public static let userTag = "mlflow.user"

    public init(store: any EvaluationDatasetStore, tracking: TrackingService) {
        self.store = store
        self.tracking = tracking
    }

    var now: Int64 { tracking.now() }

    /// A JSON object text of string values (MLflow's wire form of dataset tags and records).
    static func parseObject(_ text: String?, field: String) throws -> [(String, JSONValue)] {
        guard let text, !text.isEmpty else { return [] }
        guard case .object(let members)? = try? JSONValue.parse(text) else {
            throw CairnError.invalidParameter("Invalid value for parameter '\(field)': expected a JSON object in a string.")
        }
        return members
    }

    static func tags(_ text: String?) throws -> [Tag] {
        try parseObject(text, field: "tags").map { key, value in
            switch value {
            case .string(let s): return Tag(key, s)
            case .null: return Tag(key, "")
            default: return Tag(key, value.text)
            }
        }
    }

    public func createDataset(name: String, experimentIDs: [String], tags tagsText: String?) async throws -> EvaluationDataset {
        if name.isEmpty { throw CairnError.missingParameter("name") }
        for id in experimentIDs { _ = try await tracking.getExperiment(id: id) }
        let tags = try Self.tags(tagsText)
        let time = now
        let user = tags.last(where: { $0.key == Self.userTag })?.value
        var dataset = EvaluationDataset(
            datasetID: "d-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased(), name: name, tags: tags,
            schema: nil, profile: nil, digest: "", createdTime: time, lastUpdateTime: time, createdBy: user, lastUpdatedBy: user,
            experimentIDs: experimentIDs)
        dataset.digest = Self.digest(dataset, records: [])
        try await store.createEvaluationDataset(dataset)
        return try await store.fetchEvaluationDataset(id: dataset.datasetID)
    }

    public func getDataset(id: String) async throws -> EvaluationDataset {
        try await store.fetchEvaluationDataset(id: id)
    }

    /// Deleting a dataset that does not exist changes nothing (as MLflow).
    public func deleteDataset(id: String) async throws {
        do {
            try await store.deleteEvaluationDataset(id: id)
        } catch let error as CairnError where error.code == .resourceDoesNotExist {
            return
        }
    }

    public func searchDatasets(experimentIDs: [String], filter: String?, orderBy: [String], maxResults: Int64?, pageToken: String?) async throws -> Page<EvaluationDataset> {
        let limit = Int(maxResults ?? Int64(Self.defaultSearchResults))
        guard limit >= 1, limit <= Self.maxSearchResults else {
            throw CairnError.invalidParameter("Invalid value \(limit) for parameter 'max_results' supplied: it must be between 1 and \(Self.maxSearchResults).")
        }
        let token = try PageToken.decode(pageToken)
        let matcher = try EvaluationDatasetFilter(filter ?? "")
        var ids: [Int64]?
        if !experimentIDs.isEmpty {
            ids = []
            for id in experimentIDs { ids!.append(try Validation.parseExperimentID(id)) }
        }
        var found = try await store.listEvaluationDatasets(experimentIDs: ids).filter(matcher.matches)
        for text in orderBy.reversed() {
            let parts = text.split(separator: " ").map(String.init)
            guard let field = parts.first else { continue }
            let descending = parts.count > 1 && parts[1].uppercased() == "DESC"
            let key: (EvaluationDataset) -> String
            switch field {
            case "name": key = { $0.name }
            case "created_time": key = { String(format: "%020lld", $0.createdTime) }
            case "last_update_time": key = { String(format: "%020lld", $0.lastUpdateTime) }
            case "dataset_id": key = { $0.datasetID }
            default:
                throw CairnError.invalidParameter("Invalid order_by field '\(field)' for datasets; use name, created_time, last_update_time or dataset_id.")
            }
            found = found.enumerated().sorted { a, b in
                let ka = key(a.element), kb = key(b.element)
                return ka == kb ? a.offset < b.offset : (descending ? ka > kb : ka < kb)
            }.map(\.element)
        }
        let page = Array(found.dropFirst(token.offset).prefix(limit))
        let hasMore = found.count > token.offset + limit
        return Page(items: page, nextPageToken: PageToken.next(after: token.offset, pageSize: limit, hasMore: hasMore))
    }

    public func setTags(id: String, tags tagsText: String?) async throws {
        var dataset = try await store.fetchEvaluationDataset(id: id)
        for tag in try Self.tags(tagsText) {
            dataset.tags.removeAll { $0.key == tag.key }
            dataset.tags.append(tag)
        }
        try await store.updateEvaluationDataset(dataset)
    }

    public func deleteTag(id: String, key: String) async throws {
        var dataset = try await store.fetchEvaluationDataset(id: id)
        dataset.tags.removeAll { $0.key == key }
        try await store.updateEvaluationDataset(dataset)
    }

    public func experimentIDs(id: String) async throws -> [String] {
        try await store.fetchEvaluationDataset(id: id).experimentIDs
    }

    public func changeExperiments(id: String, add: [String], remove: [String]) async throws -> EvaluationDataset {
        for experiment in add { _ = try await tracking.getExperiment(id: experiment) }
        var addIDs: [Int64] = []
        for experiment in add { addIDs.append(try Validation.parseExperimentID(experiment)) }
        var removeIDs: [Int64] = []
        for experiment in remove { removeIDs.append(try Validation.parseExperimentID(experiment)) }
        try await store.linkEvaluationDataset(id: id, add: addIDs, remove: removeIDs)
        return try await store.fetchEvaluationDataset(id: id)
    }

    /// Merges records (a JSON list in a string): a record whose inputs are already in the
    /// dataset updates that one, any other is added. Answers (inserted, updated).
    public func upsertRecords(id: String, records text: String) async throws -> (inserted: Int, updated: Int) {
        guard case .array(let items)? = try? JSONValue.parse(text) else {
            throw CairnError.invalidParameter("Invalid value for parameter 'records': expected a JSON list of records in a string.")
        }
        var dataset = try await store.fetchEvaluationDataset(id: id)
        var existing = try await store.evaluationDatasetRecords(id: id)
        var index: [String: Int] = [:]
        for (i, record) in existing.enumerated() { index[record.inputKey] = i }
        let time = now
        var changed: [String: DatasetRecord] = [:]
        var inserted = 0, updated = 0
        var updater: String?
        for item in items {
            guard case .object = item else { throw CairnError.invalidParameter("Invalid record: each record is a JSON object with 'inputs'.") }
            let inputs = item["inputs"] ?? .object([])
            let key = inputs.canonicalText
            let tags = item["tags"]
            if case .string(let user)? = tags?[Self.userTag] { updater = user }
            if let i = index[key] {
                var record = existing[i]
                record.body = Self.merge(record.body, item, time: time, user: updater)
                record.lastUpdateTime = time
                existing[i] = record
                changed[key] = record
                updated += 1
            } else {
                let record = DatasetRecord(recordID: "dr-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased(), inputKey: key,
                                           body: .object([]), createdTime: time, lastUpdateTime: time)
                var created = record
                created.body = Self.newRecordBody(record, datasetID: id, item: item, user: updater)
                index[key] = existing.count
                existing.append(created)
                changed[key] = created
                inserted += 1
            }
        }
        dataset.lastUpdateTime = time
        if let updater { dataset.lastUpdatedBy = updater }
        dataset.schema = Self.schema(existing)
        dataset.profile = JSONValue.object([("num_records", .number(String(existing.count)))]).text
        dataset.digest = Self.digest(dataset, records: existing)
        try await store.saveEvaluationDatasetRecords(existing.filter { changed[$0.inputKey] != nil }, dataset: dataset)
        return (inserted, updated)
    }

    static func newRecordBody(_ record: DatasetRecord, datasetID: String, item: JSONValue, user: String?) -> JSONValue {
        let source = item["source"] ?? .null
        var sourceType: JSONValue = .null
        if case .string? = source["source_type"] { sourceType = source["source_type"]! }
        var out: [(String, JSONValue)] = [
            ("dataset_record_id", .string(record.recordID)), ("dataset_id", .string(datasetID)),
            ("inputs", item["inputs"] ?? .object([])), ("expectations", item["expectations"] ?? .null),
            ("tags", item["tags"] ?? .null), ("source", source), ("source_type", sourceType),
            ("created_time", .number(String(record.createdTime))), ("last_update_time", .number(String(record.lastUpdateTime))),
            ("created_by", user.map(JSONValue.string) ?? .null), ("last_updated_by", user.map(JSONValue.string) ?? .null),
            ("outputs", item["outputs"] ?? .object([])),
        ]
        if case .string? = item["source_id"] { out.append(("source_id", item["source_id"]!)) }
        return .object(out)
    }

    /// MLflow's merge: outputs replaced when given, expectations and tags merged key by key.
    static func merge(_ body: JSONValue, _ item: JSONValue, time: Int64, user: String?) -> JSONValue {
        guard case .object(var members) = body else { return body }
        func set(_ key: String, _ value: JSONValue) {
            if let i = members.firstIndex(where: { $0.0 == key }) { members[i].1 = value } else { members.append((key, value)) }
        }
        func mergeObject(_ key: String) {
            guard case .object(let new)? = item[key], !new.isEmpty else { return }
            var merged: [(String, JSONValue)] = []
            if case .object(let old)? = members.first(where: { $0.0 == key })?.1 { merged = old }
            for (k, v) in new {
                if let i = merged.firstIndex(where: { $0.0 == k }) { merged[i].1 = v } else { merged.append((k, v)) }
            }
            set(key, .object(merged))
        }
        if let outputs = item["outputs"] { set("outputs", outputs) }
        mergeObject("expectations")
        mergeObject("tags")
        set("last_update_time", .number(String(time)))
        if let user { set("last_updated_by", .string(user)) }
        return .object(members)
    }

    static func typeName(_ value: JSONValue) -> String {
        switch value {
        case .string: return "string"
        case .bool: return "boolean"
        case .number(let n): return n.contains(".") || n.contains("e") || n.contains("E") ? "float" : "integer"
        case .array: return "array"
        case .object: return "object"
        case .null: return "null"
        }
    }

    /// The field types of the records' inputs, outputs and expectations, as MLflow describes them.
    static func schema(_ records: [DatasetRecord]) -> String {
        func fields(_ name: String) -> JSONValue {
            var out: [(String, JSONValue)] = []
            for record in records {
                guard case .object(let members)? = record.body[name] else { continue }
                for (key, value) in members where !out.contains(where: { $0.0 == key }) {
                    out.append((key, .string(typeName(value))))
                }
            }
            return .object(out)
        }
        return JSONValue.object([("inputs", fields("inputs")), ("outputs", fields("outputs")), ("expectations", fields("expectations")),
                                 ("version", .string("1.0"))]).text
    }

    /// Eight hex digits of the SHA-256 of the dataset's name and records: it changes whenever a
    /// record does.
    static func digest(_ dataset: EvaluationDataset, records: [DatasetRecord]) -> String {
        var text = dataset.name + "\n" + String(dataset.lastUpdateTime)
        for record in records { text += "\n" + record.body.canonicalText }
        return SHA256.hash(data: Data(text.utf8)).prefix(4).map { String(format: "%02x", $0) }.joined()
    }

    /// One page of records in the order they were added.
    public func records(id: String, maxResults: Int64?, pageToken: String?) async throws -> (records: [DatasetRecord], nextPageToken: String?) {
        let limit = Int(maxResults ?? Int64(Self.defaultRecordsPage))
        guard limit >= 1 else { throw CairnError.invalidParameter("Invalid value \(limit) for parameter 'max_results' supplied.") }
        let token = try PageToken.decode(pageToken)
        let all = try await store.evaluationDatasetRecords(id: id)
        let page = Array(all.dropFirst(token.offset).prefix(limit))
        return (page, PageToken.next(after: token.offset, pageSize: limit, hasMore: all.count > token.offset + limit))
    }
}
