import CairnCore

/// The tables of a Cairn export (`cairn export`, read back by `cairn import cairn`): their
/// files and columns. README.md ("Export format") documents each column; this is the list both
/// sides use, so the documentation, the writer and the reader cannot drift apart (a test
/// compares the README's tables with it).
public enum ExportFormat {
    public static let formatName = "cairn-export"
    public static let version = 1

    public struct Table: Sendable {
        public let name: String
        public let columns: [ParquetColumn]
        public var file: String { "tables/\(name).parquet" }
    }

    static func text(_ name: String) -> ParquetColumn { ParquetColumn(name, .string) }
    static func optionalText(_ name: String) -> ParquetColumn { ParquetColumn(name, .string, optional: true) }
    static func integer(_ name: String) -> ParquetColumn { ParquetColumn(name, .int64) }
    static func time(_ name: String) -> ParquetColumn { ParquetColumn(name, .timestampMillis) }
    static func optionalTime(_ name: String) -> ParquetColumn { ParquetColumn(name, .timestampMillis, optional: true) }

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
    ])

    /// Every table, in the order they are written and listed in the manifest.
    public static let tables: [Table] = [
        experiments, experimentTags, runs, params, tags, metrics, datasets, datasetInputs, datasetInputTags, runModelInputs,
        runModelOutputs, loggedModels, loggedModelTags, loggedModelParams, loggedModelMetrics, registeredModels, registeredModelTags,
        modelVersions, modelVersionTags, registeredModelAliases, registryEvents, auditEvents,
    ]

    /// Tables an export made before they existed lacks; `import cairn` reads it without them.
    public static let laterTables: Set<String> = [auditEvents.name]
}
