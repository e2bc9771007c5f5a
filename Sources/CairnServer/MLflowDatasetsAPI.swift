import CairnCore
import CairnServices

/// MLflow 3's evaluation dataset endpoints (`/api/3.0/mlflow/datasets…`, what
/// `mlflow.genai.datasets` calls). Tags and records travel as JSON texts inside the JSON, as
/// MLflow's messages carry them.
struct MLflowDatasetsAPI: Sendable {
    let datasets: EvaluationDatasetService

    var endpoints: [MLflowEndpoint] {
        [
            MLflowEndpoint(methods: ["POST"], path: "datasets/create", handler: create),
            MLflowEndpoint(methods: ["POST"], path: "datasets/search", handler: search),
            MLflowEndpoint(methods: ["GET"], path: "datasets/:dataset_id", handler: get),
            MLflowEndpoint(methods: ["DELETE"], path: "datasets/:dataset_id", handler: delete),
            MLflowEndpoint(methods: ["POST"], path: "datasets/:dataset_id/records", handler: upsertRecords),
            MLflowEndpoint(methods: ["GET"], path: "datasets/:dataset_id/records", handler: records),
            MLflowEndpoint(methods: ["PATCH"], path: "datasets/:dataset_id/tags", handler: setTags),
            MLflowEndpoint(methods: ["DELETE"], path: "datasets/:dataset_id/tags/:key", handler: deleteTag),
            MLflowEndpoint(methods: ["GET"], path: "datasets/:dataset_id/experiment-ids", handler: experimentIDs),
            MLflowEndpoint(methods: ["POST"], path: "datasets/:dataset_id/add-experiments", handler: addExperiments),
            MLflowEndpoint(methods: ["POST"], path: "datasets/:dataset_id/remove-experiments", handler: removeExperiments),
        ]
    }

    func create(_ f: RequestFields) async throws -> [UInt8] {
        Self.reply(try await datasets.createDataset(name: f.string("name") ?? "", experimentIDs: f.strings("experiment_ids"), tags: f.string("tags")))
    }

    func get(_ f: RequestFields) async throws -> [UInt8] {
        Self.reply(try await datasets.getDataset(id: f.requiredString("dataset_id")))
    }

    func delete(_ f: RequestFields) async throws -> [UInt8] {
        try await datasets.deleteDataset(id: f.requiredString("dataset_id"))
        return WireEncoding.empty
    }

    func search(_ f: RequestFields) async throws -> [UInt8] {
        let page = try await datasets.searchDatasets(experimentIDs: f.strings("experiment_ids"), filter: f.string("filter_string"),
                                                     orderBy: f.strings("order_by"), maxResults: f.int64("max_results"), pageToken: f.string("page_token"))
        return WireEncoding.page("datasets", page, Self.dataset)
    }

    func upsertRecords(_ f: RequestFields) async throws -> [UInt8] {
        let (inserted, updated) = try await datasets.upsertRecords(id: f.requiredString("dataset_id"), records: f.requiredString("records"))
        return WireEncoding.reply { o in
            o.int("inserted_count", Int64(inserted))
            o.int("updated_count", Int64(updated))
        }
    }

    func records(_ f: RequestFields) async throws -> [UInt8] {
        let page = try await datasets.records(id: f.requiredString("dataset_id"), maxResults: f.int64("max_results"), pageToken: f.string("page_token"))
        return WireEncoding.reply { o in
            o.string("records", JSONValue.array(page.records.map(\.body)).text)
            if let token = page.nextPageToken { o.string("next_page_token", token) }
        }
    }

    func setTags(_ f: RequestFields) async throws -> [UInt8] {
        try await datasets.setTags(id: f.requiredString("dataset_id"), tags: f.string("tags"))
        return WireEncoding.empty
    }

    func deleteTag(_ f: RequestFields) async throws -> [UInt8] {
        try await datasets.deleteTag(id: f.requiredString("dataset_id"), key: f.requiredString("key"))
        return WireEncoding.empty
    }

    func experimentIDs(_ f: RequestFields) async throws -> [UInt8] {
        let ids = try await datasets.experimentIDs(id: f.requiredString("dataset_id"))
        return WireEncoding.reply { o in o.array("experiment_ids", ids) { w, id in w.string(id) } }
    }

    func addExperiments(_ f: RequestFields) async throws -> [UInt8] {
        Self.reply(try await datasets.changeExperiments(id: f.requiredString("dataset_id"), add: f.strings("experiment_ids"), remove: []))
    }

    func removeExperiments(_ f: RequestFields) async throws -> [UInt8] {
        Self.reply(try await datasets.changeExperiments(id: f.requiredString("dataset_id"), add: [], remove: f.strings("experiment_ids")))
    }

    static func reply(_ dataset: EvaluationDataset) -> [UInt8] {
        WireEncoding.reply { o in o.key("dataset"); Self.dataset(&o.writer, dataset) }
    }

    static func dataset(_ w: inout JSONWriter, _ d: EvaluationDataset) {
        w.object { o in
            o.string("dataset_id", d.datasetID)
            o.string("name", d.name)
            o.string("tags", JSONValue.object(d.tags.map { ($0.key, JSONValue.string($0.value)) }).text)
            if let schema = d.schema { o.string("schema", schema) }
            if let profile = d.profile { o.string("profile", profile) }
            o.string("digest", d.digest)
            o.int("created_time", d.createdTime)
            o.int("last_update_time", d.lastUpdateTime)
            if let user = d.createdBy { o.string("created_by", user) }
            if let user = d.lastUpdatedBy { o.string("last_updated_by", user) }
            o.array("experiment_ids", d.experimentIDs) { w, id in w.string(id) }
        }
    }
}
