import CairnCore
import CairnStore

/// MLflow's protobuf-JSON shapes of Cairn's domain values: proto field names, int64 as
/// numbers, non-finite doubles as strings, empty lists omitted, never `null`.
enum WireEncoding {
    static func tags(_ o: inout JSONObjectBuilder, _ tags: [Tag], name: String = "tags") {
        o.array(name, tags) { w, tag in
            w.object { t in
                t.string("key", tag.key)
                t.string("value", tag.value)
            }
        }
    }

    static func params(_ o: inout JSONObjectBuilder, _ params: [Param]) {
        o.array("params", params) { w, param in
            w.object { p in
                p.string("key", param.key)
                p.string("value", param.value)
            }
        }
    }

    static func experiment(_ w: inout JSONWriter, _ e: Experiment) {
        w.object { o in experimentFields(&o, e) }
    }

    /// The members of an experiment object, for replies that add their own members to it.
    static func experimentFields(_ o: inout JSONObjectBuilder, _ e: Experiment) {
        o.string("experiment_id", e.experimentID)
        o.string("name", e.name)
        o.string("artifact_location", e.artifactLocation)
        o.string("lifecycle_stage", e.lifecycleStage.rawValue)
        o.int("last_update_time", e.lastUpdateTime)
        o.int("creation_time", e.creationTime)
        tags(&o, e.tags)
    }

    static func runInfo(_ w: inout JSONWriter, _ info: RunInfo) {
        w.object { o in
            o.string("run_id", info.runID)
            o.string("run_uuid", info.runID)
            o.string("run_name", info.runName)
            o.string("experiment_id", info.experimentID)
            o.string("user_id", info.userID)
            o.string("status", info.status.rawValue)
            if let start = info.startTime { o.int("start_time", start) }
            if let end = info.endTime { o.int("end_time", end) }
            o.string("artifact_uri", info.artifactURI)
            o.string("lifecycle_stage", info.lifecycleStage.rawValue)
        }
    }

    static func metric(_ w: inout JSONWriter, _ m: Metric) {
        w.object { o in
            o.string("key", m.key)
            o.double("value", m.value)
            o.int("timestamp", m.timestamp)
            o.int("step", m.step)
            if let runID = m.runID { o.string("run_id", runID) }
        }
    }

    static func run(_ w: inout JSONWriter, _ run: Run) {
        w.object { o in
            o.key("info")
            runInfo(&o.writer, run.info)
            o.object("data") { d in
                d.array("metrics", run.metrics) { w, m in metric(&w, m) }
                params(&d, run.params)
                tags(&d, run.tags)
            }
            o.object("outputs") { out in
                out.array("model_outputs", run.modelOutputs) { w, output in
                    w.object { x in
                        x.string("model_id", output.modelID)
                        x.int("step", output.step)
                    }
                }
            }
            o.object("inputs") { i in
                i.array("model_inputs", run.modelInputs) { w, modelID in
                    w.object { x in x.string("model_id", modelID) }
                }
                i.array("dataset_inputs", run.inputs) { w, input in
                    w.object { x in
                        tags(&x, input.tags)
                        x.object("dataset") { d in
                            d.string("name", input.dataset.name)
                            d.string("digest", input.dataset.digest)
                            d.string("source_type", input.dataset.sourceType)
                            d.string("source", input.dataset.source)
                            if let schema = input.dataset.schema { d.string("schema", schema) }
                            if let profile = input.dataset.profile { d.string("profile", profile) }
                        }
                    }
                }
            }
        }
    }

    static func loggedModel(_ w: inout JSONWriter, _ m: LoggedModel) {
        w.object { o in
            o.object("info") { i in
                i.string("model_id", m.modelID)
                i.string("experiment_id", m.experimentID)
                i.string("name", m.name)
                i.int("creation_timestamp_ms", m.creationTimestamp)
                i.int("last_updated_timestamp_ms", m.lastUpdatedTimestamp)
                i.string("artifact_uri", m.artifactURI)
                i.string("status", m.status.rawValue)
                // creator_id is an int64 user id in MLflow's proto; Cairn has no numeric user ids yet.
                i.string("model_type", m.modelType ?? "")
                i.string("source_run_id", m.sourceRunID ?? "")
                if let message = m.statusMessage { i.string("status_message", message) }
                tags(&i, m.tags)
            }
            o.object("data") { d in
                params(&d, m.params)
                d.array("metrics", m.metrics) { w, metric in
                    w.object { x in
                        x.string("key", metric.key)
                        x.double("value", metric.value)
                        x.int("timestamp", metric.timestamp)
                        x.int("step", metric.step)
                        if let run = metric.runID { x.string("run_id", run) }
                        if let name = metric.datasetName { x.string("dataset_name", name) }
                        if let digest = metric.datasetDigest { x.string("dataset_digest", digest) }
                        x.string("model_id", m.modelID)
                    }
                }
            }
        }
    }

    static func modelVersion(_ w: inout JSONWriter, _ v: ModelVersion) {
        w.object { o in
            o.string("name", v.name)
            o.string("version", String(v.version))
            o.int("creation_timestamp", v.creationTimestamp)
            o.int("last_updated_timestamp", v.lastUpdatedTimestamp)
            if !v.userID.isEmpty { o.string("user_id", v.userID) }
            o.string("current_stage", v.currentStage)
            o.string("description", v.description)
            o.string("source", v.source)
            o.string("run_id", v.runID ?? "")
            o.string("status", v.status)
            if let message = v.statusMessage { o.string("status_message", message) }
            tags(&o, v.tags)
            o.string("run_link", v.runLink ?? "")
            o.array("aliases", v.aliases) { w, alias in w.string(alias) }
            if let model = v.modelID { o.string("model_id", model) }
        }
    }

    static func registeredModel(_ w: inout JSONWriter, _ m: RegisteredModel) {
        w.object { o in
            o.string("name", m.name)
            o.int("creation_timestamp", m.creationTimestamp)
            o.int("last_updated_timestamp", m.lastUpdatedTimestamp)
            if !m.userID.isEmpty { o.string("user_id", m.userID) }
            if !m.description.isEmpty { o.string("description", m.description) }
            o.array("latest_versions", m.latestVersions) { w, v in modelVersion(&w, v) }
            tags(&o, m.tags)
            o.array("aliases", m.aliases.map { $0 }) { w, alias in
                w.object { a in
                    a.string("alias", alias.alias)
                    a.string("version", String(alias.version))
                }
            }
        }
    }

    /// A search reply: `{"<name>": [...], "next_page_token": …}`, each part omitted when empty.
    static func page<Item>(_ name: String, _ page: Page<Item>, _ encode: (inout JSONWriter, Item) -> Void) -> [UInt8] {
        reply { o in
            o.array(name, page.items, encode)
            if let token = page.nextPageToken { o.string("next_page_token", token) }
        }
    }

    /// `{}`: the reply of writes without a payload.
    static let empty: [UInt8] = Array("{}".utf8)

    static func reply(_ body: (inout JSONObjectBuilder) throws -> Void) rethrows -> [UInt8] {
        var w = JSONWriter()
        try w.object(body)
        return w.bytes
    }
}
