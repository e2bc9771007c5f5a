import CairnCore

/// The tables of a Cairn export (`cairn export`, read back by `cairn import cairn`): their
/// files and columns. README.md ("Export format") documents each column; this is the list both
/// sides use, so the documentation, the writer and the reader cannot drift apart (a test
/// compares the README's tables with it).
public enum ExportFormat {
    public static let formatName = "cairn-export"
    /// 2 added the traces, evaluation datasets and the audit log; an export of version 1 has none.
    public static let version = 2

    public struct Table: Sendable {
        public let name: String
        public let columns: [ParquetColumn]
        /// The first format version with this table.
        public var since = 1
        public var file: String { "tables/\(name).parquet" }
    }

    static func text(_ name: String) -> ParquetColumn { ParquetColumn(name, .string) }
    static func optionalText(_ name: String) -> ParquetColumn { ParquetColumn(name, .string, optional: true) }
    static func integer(_ name: String) -> ParquetColumn { ParquetColumn(name, .int64) }
    static func time(_ name: String) -> ParquetColumn { ParquetColumn(name, .timestampMillis) }
    static func optionalTime(_ name: String) -> ParquetColumn { ParquetColumn(name, .timestampMillis, optional: true) }
    static func optionalInteger(_ name: String) -> ParquetColumn { ParquetColumn(name, .int64, optional: true) }

    public static let experiments = Table(name: "experiments", columns: [
        integer("experiment_id"), text("name"), text("artifact_location"), text("lifecycle_stage"), time("creation_time"), time("last_update_time"),
    ])
    public static let experimentTags = Table(name: "experiment_tags", columns: [integer("experiment_id"), text("key"), text("value")])
    public static let runs = Table(name: "runs", columns: [
        text("run_id"), integer("experiment_id"), text("run_name"), text("user_id"), text("status"), optionalTime("start_time"),
        optionalTime("end_time"), text("artifact_uri"), text("lifecycle_stage"),
    ])
    public static let params = Table(name: "params", columns: [text("run_id"), text("key"), text("value")])
    public static let tags = Table(name: "tags", columns: [text("run_id"), text("key"), text("value")])
    public static let metrics = Table(name: "metrics", columns: [
        text("run_id"), text("key"), integer("step"), time("timestamp"), ParquetColumn("value", .double),
    ])
    public static let datasets = Table(name: "datasets", columns: [
        integer("experiment_id"), text("name"), text("digest"), text("source_type"), text("source"), optionalText("schema"), optionalText("profile"),
    ])
    public static let datasetInputs = Table(name: "dataset_inputs", columns: [
        text("run_id"), integer("position"), text("dataset_name"), text("dataset_digest"),
    ])
    public static let datasetInputTags = Table(name: "dataset_input_tags", columns: [
        text("run_id"), text("dataset_name"), text("dataset_digest"), text("key"), text("value"),
    ])
    public static let runModelInputs = Table(name: "run_model_inputs", columns: [text("run_id"), text("model_id")])
    public static let runModelOutputs = Table(name: "run_model_outputs", columns: [text("run_id"), text("model_id"), integer("step")])
    public static let loggedModels = Table(name: "logged_models", columns: [
        text("model_id"), integer("experiment_id"), text("name"), text("artifact_uri"), time("creation_timestamp"), time("last_updated_timestamp"),
        text("status"), optionalText("status_message"), optionalText("creator_id"), optionalText("model_type"), optionalText("source_run_id"),
        text("lifecycle_stage"),
    ])
    public static let loggedModelTags = Table(name: "logged_model_tags", columns: [text("model_id"), text("key"), text("value")])
    public static let loggedModelParams = Table(name: "logged_model_params", columns: [text("model_id"), text("key"), text("value")])
    public static let loggedModelMetrics = Table(name: "logged_model_metrics", columns: [
        text("model_id"), text("key"), ParquetColumn("value", .double), time("timestamp"), integer("step"), optionalText("run_id"),
        optionalText("dataset_name"), optionalText("dataset_digest"),
    ])
    public static let registeredModels = Table(name: "registered_models", columns: [
        text("name"), text("description"), text("user_id"), time("creation_timestamp"), time("last_updated_timestamp"),
    ])
    public static let registeredModelTags = Table(name: "registered_model_tags", columns: [text("name"), text("key"), text("value")])
    public static let modelVersions = Table(name: "model_versions", columns: [
        text("name"), integer("version"), time("creation_timestamp"), time("last_updated_timestamp"), text("user_id"), text("current_stage"),
        text("description"), text("source"), optionalText("run_id"), optionalText("run_link"), text("status"), optionalText("status_message"),
        optionalText("model_id"),
    ])
    public static let modelVersionTags = Table(name: "model_version_tags", columns: [text("name"), integer("version"), text("key"), text("value")])
    public static let registeredModelAliases = Table(name: "registered_model_aliases", columns: [text("name"), text("alias"), integer("version")])
    public static let registryEvents = Table(name: "registry_events", columns: [
        text("registered_model"), text("model_name"), ParquetColumn("version", .int64, optional: true), time("timestamp"), text("user"),
        text("action"), text("changes"),
    ])
    /// The audit log (README "Audit log"), every event with its hashes; rows only in an export
    /// of everything (a part of a hash chain cannot be verified).
    public static let auditEvents = Table(name: "audit_events", columns: [
        integer("seq"), time("time"), optionalText("actor"), ParquetColumn("authenticated", .boolean), text("client_address"), text("request_id"),
        text("action"), text("target"), text("digest"), text("details"), text("previous_hash"), text("hash"),
    ], since: 2)

    public static let traces = Table(name: "traces", columns: [
        text("trace_id"), integer("experiment_id"), time("request_time"), optionalInteger("execution_duration"), text("state"),
        optionalText("request_preview"), optionalText("response_preview"), optionalText("client_request_id"),
    ], since: 2)
    public static let traceTags = Table(name: "trace_tags", columns: [text("trace_id"), text("key"), text("value")], since: 2)
    public static let traceMetadata = Table(name: "trace_metadata", columns: [text("trace_id"), text("key"), text("value")], since: 2)
    public static let traceSpans = Table(name: "trace_spans", columns: [text("trace_id"), integer("position"), text("span")], since: 2)
    public static let traceAssessments = Table(name: "trace_assessments", columns: [
        text("trace_id"), text("assessment_id"), text("name"), time("create_time"), time("last_update_time"), text("body"),
    ], since: 2)
    public static let traceRunLinks = Table(name: "trace_run_links", columns: [text("trace_id"), text("run_id")], since: 2)
    public static let evaluationDatasets = Table(name: "evaluation_datasets", columns: [
        text("dataset_id"), text("name"), optionalText("schema"), optionalText("profile"), text("digest"), time("created_time"),
        time("last_update_time"), optionalText("created_by"), optionalText("last_updated_by"),
    ], since: 2)
    public static let evaluationDatasetTags = Table(name: "evaluation_dataset_tags", columns: [text("dataset_id"), text("key"), text("value")], since: 2)
    public static let evaluationDatasetExperiments = Table(name: "evaluation_dataset_experiments", columns: [text("dataset_id"), integer("experiment_id")],
                                                           since: 2)
    public static let evaluationDatasetRecords = Table(name: "evaluation_dataset_records", columns: [
        text("dataset_id"), text("record_id"), text("input_key"), text("body"), time("created_time"), time("last_update_time"),
    ], since: 2)

    /// Every table, in the order they are written and listed in the manifest.
    public static let tables: [Table] = [
        experiments, experimentTags, runs, params, tags, metrics, datasets, datasetInputs, datasetInputTags, runModelInputs,
        runModelOutputs, loggedModels, loggedModelTags, loggedModelParams, loggedModelMetrics, registeredModels, registeredModelTags,
        modelVersions, modelVersionTags, registeredModelAliases, registryEvents, traces, traceTags, traceMetadata, traceSpans,
        traceAssessments, traceRunLinks, evaluationDatasets, evaluationDatasetTags, evaluationDatasetExperiments, evaluationDatasetRecords,
        auditEvents,
    ]
}
