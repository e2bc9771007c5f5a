import CairnCore
import CairnServices

/// The MLflow model registry endpoints, plus Cairn's history and lineage of a version.
struct MLflowRegistryAPI: Sendable {
    let registry: RegistryService

    /// The signed-in user (auth on) for the registry's history; empty without accounts.
    private var user: String { RequestIdentity.current?.user ?? "" }

    var endpoints: [MLflowEndpoint] {
        [
            MLflowEndpoint(methods: ["POST"], path: "registered-models/create", handler: createRegisteredModel),
            MLflowEndpoint(methods: ["GET"], path: "registered-models/get", handler: getRegisteredModel),
            MLflowEndpoint(methods: ["POST"], path: "registered-models/rename", handler: renameRegisteredModel),
            MLflowEndpoint(methods: ["PATCH"], path: "registered-models/update", handler: updateRegisteredModel),
            MLflowEndpoint(methods: ["DELETE"], path: "registered-models/delete", handler: deleteRegisteredModel),
            MLflowEndpoint(methods: ["GET"], path: "registered-models/search", handler: searchRegisteredModels),
            MLflowEndpoint(methods: ["POST", "GET"], path: "registered-models/get-latest-versions", handler: getLatestVersions),
            MLflowEndpoint(methods: ["POST"], path: "registered-models/set-tag", handler: setRegisteredModelTag),
            MLflowEndpoint(methods: ["DELETE"], path: "registered-models/delete-tag", handler: deleteRegisteredModelTag),
            MLflowEndpoint(methods: ["POST"], path: "registered-models/alias", handler: setAlias),
            MLflowEndpoint(methods: ["DELETE"], path: "registered-models/alias", handler: deleteAlias),
            MLflowEndpoint(methods: ["GET"], path: "registered-models/alias", handler: getByAlias),
            MLflowEndpoint(methods: ["POST"], path: "model-versions/create", handler: createModelVersion),
            MLflowEndpoint(methods: ["GET"], path: "model-versions/get", handler: getModelVersion),
            MLflowEndpoint(methods: ["PATCH"], path: "model-versions/update", handler: updateModelVersion),
            MLflowEndpoint(methods: ["DELETE"], path: "model-versions/delete", handler: deleteModelVersion),
            MLflowEndpoint(methods: ["POST"], path: "model-versions/set-tag", handler: setModelVersionTag),
            MLflowEndpoint(methods: ["DELETE"], path: "model-versions/delete-tag", handler: deleteModelVersionTag),
            MLflowEndpoint(methods: ["POST"], path: "model-versions/transition-stage", handler: transitionStage),
            MLflowEndpoint(methods: ["GET"], path: "model-versions/search", handler: searchModelVersions),
            MLflowEndpoint(methods: ["GET"], path: "model-versions/get-download-uri", handler: getDownloadURI),
        ]
    }

    /// Under `/api/cairn/v1/`.
    var cairnEndpoints: [MLflowEndpoint] {
        [
            MLflowEndpoint(methods: ["GET"], path: "model-versions/history", handler: history),
            MLflowEndpoint(methods: ["GET"], path: "model-versions/lineage", handler: lineage),
            MLflowEndpoint(methods: ["GET"], path: "model-versions/runs", handler: heldRuns),
        ]
    }

    private func modelReply(_ model: RegisteredModel) -> [UInt8] {
        WireEncoding.reply { o in
            o.key("registered_model")
            WireEncoding.registeredModel(&o.writer, model)
        }
    }

    private func versionReply(_ version: ModelVersion) -> [UInt8] {
        WireEncoding.reply { o in
            o.key("model_version")
            WireEncoding.modelVersion(&o.writer, version)
        }
    }

    // MARK: Registered models

    func createRegisteredModel(_ f: RequestFields) async throws -> [UInt8] {
        modelReply(try await registry.createRegisteredModel(
            name: f.requiredString("name"), tags: f.tags(), description: f.string("description"), user: user))
    }

    func getRegisteredModel(_ f: RequestFields) async throws -> [UInt8] {
        modelReply(try await registry.getRegisteredModel(name: f.requiredString("name")))
    }

    func renameRegisteredModel(_ f: RequestFields) async throws -> [UInt8] {
        modelReply(try await registry.renameRegisteredModel(name: f.requiredString("name"), newName: f.requiredString("new_name"), user: user))
    }

    func updateRegisteredModel(_ f: RequestFields) async throws -> [UInt8] {
        modelReply(try await registry.updateRegisteredModel(name: f.requiredString("name"), description: f.string("description"), user: user))
    }

    func deleteRegisteredModel(_ f: RequestFields) async throws -> [UInt8] {
        try await registry.deleteRegisteredModel(name: f.requiredString("name"), user: user)
        return WireEncoding.empty
    }

    func searchRegisteredModels(_ f: RequestFields) async throws -> [UInt8] {
        let page = try await registry.searchRegisteredModels(
            filter: f.string("filter"), maxResults: f.int64("max_results"), orderBy: f.strings("order_by"), pageToken: f.string("page_token"))
        return WireEncoding.page("registered_models", page, WireEncoding.registeredModel)
    }

    func getLatestVersions(_ f: RequestFields) async throws -> [UInt8] {
        let versions = try await registry.getLatestVersions(name: f.requiredString("name"), stages: f.strings("stages"))
        return WireEncoding.reply { o in
            o.array("model_versions", versions) { w, v in WireEncoding.modelVersion(&w, v) }
        }
    }

    func setRegisteredModelTag(_ f: RequestFields) async throws -> [UInt8] {
        try await registry.setRegisteredModelTag(name: f.requiredString("name"), tag: Tag(f.requiredString("key"), f.string("value") ?? ""), user: user)
        return WireEncoding.empty
    }

    func deleteRegisteredModelTag(_ f: RequestFields) async throws -> [UInt8] {
        try await registry.deleteRegisteredModelTag(name: f.requiredString("name"), key: f.requiredString("key"), user: user)
        return WireEncoding.empty
    }

    func setAlias(_ f: RequestFields) async throws -> [UInt8] {
        try await registry.setAlias(name: f.requiredString("name"), alias: f.requiredString("alias"), version: f.requiredString("version"), user: user)
        return WireEncoding.empty
    }

    func deleteAlias(_ f: RequestFields) async throws -> [UInt8] {
        try await registry.deleteAlias(name: f.requiredString("name"), alias: f.requiredString("alias"), user: user)
        return WireEncoding.empty
    }

    func getByAlias(_ f: RequestFields) async throws -> [UInt8] {
        versionReply(try await registry.getVersion(name: f.requiredString("name"), alias: f.requiredString("alias")))
    }

    // MARK: Versions

    func createModelVersion(_ f: RequestFields) async throws -> [UInt8] {
        versionReply(try await registry.createModelVersion(
            name: f.requiredString("name"), source: f.requiredString("source"), runID: f.string("run_id"),
            runLink: f.string("run_link"), description: f.string("description"), tags: f.tags(),
            modelID: f.string("model_id"), user: user))
    }

    func getModelVersion(_ f: RequestFields) async throws -> [UInt8] {
        versionReply(try await registry.getModelVersion(name: f.requiredString("name"), version: f.requiredString("version")))
    }

    func updateModelVersion(_ f: RequestFields) async throws -> [UInt8] {
        versionReply(try await registry.updateModelVersion(
            name: f.requiredString("name"), version: f.requiredString("version"), description: f.string("description"), user: user))
    }

    func deleteModelVersion(_ f: RequestFields) async throws -> [UInt8] {
        try await registry.deleteModelVersion(name: f.requiredString("name"), version: f.requiredString("version"), user: user)
        return WireEncoding.empty
    }

    func setModelVersionTag(_ f: RequestFields) async throws -> [UInt8] {
        try await registry.setModelVersionTag(
            name: f.requiredString("name"), version: f.requiredString("version"), tag: Tag(f.requiredString("key"), f.string("value") ?? ""), user: user)
        return WireEncoding.empty
    }

    func deleteModelVersionTag(_ f: RequestFields) async throws -> [UInt8] {
        try await registry.deleteModelVersionTag(name: f.requiredString("name"), version: f.requiredString("version"), key: f.requiredString("key"), user: user)
        return WireEncoding.empty
    }

    func transitionStage(_ f: RequestFields) async throws -> [UInt8] {
        versionReply(try await registry.transitionStage(
            name: f.requiredString("name"), version: f.requiredString("version"), stage: f.requiredString("stage"),
            archiveExisting: f.bool("archive_existing_versions") ?? false, user: user))
    }

    func searchModelVersions(_ f: RequestFields) async throws -> [UInt8] {
        let page = try await registry.searchModelVersions(
            filter: f.string("filter"), maxResults: f.int64("max_results"), orderBy: f.strings("order_by"), pageToken: f.string("page_token"))
        return WireEncoding.page("model_versions", page, WireEncoding.modelVersion)
    }

    func getDownloadURI(_ f: RequestFields) async throws -> [UInt8] {
        let uri = try await registry.downloadURI(name: f.requiredString("name"), version: f.requiredString("version"))
        return WireEncoding.reply { o in o.string("artifact_uri", uri) }
    }

    // MARK: Cairn: history and lineage

    func history(_ f: RequestFields) async throws -> [UInt8] {
        let events = try await registry.history(name: f.requiredString("name"), version: f.requiredString("version"))
        return WireEncoding.reply { o in
            o.key("events")
            o.writer.array(events) { w, event in
                w.object { e in
                    e.int("timestamp", event.timestamp)
                    e.string("user", event.user)
                    e.string("action", event.action)
                    e.string("name", event.modelName)
                    if let version = event.version { e.string("version", String(version)) }
                    e.key("changes")
                    e.writer.value(event.changes)
                }
            }
        }
    }

    /// Which of the runs named by `run_ids` this server holds, with where they live.
    func heldRuns(_ f: RequestFields) async throws -> [UInt8] {
        let runs = try await registry.heldRuns(ids: f.strings("run_ids"))
        // No runs held: `{}`, as MLflow omits an empty list.
        return WireEncoding.reply { o in
            o.array("runs", runs) { w, info in
                w.object { r in
                    r.string("run_id", info.runID)
                    r.string("experiment_id", info.experimentID)
                    r.string("run_name", info.runName)
                    r.string("lifecycle_stage", info.lifecycleStage.rawValue)
                }
            }
        }
    }

    func lineage(_ f: RequestFields) async throws -> [UInt8] {
        let lineage = try await registry.lineage(name: f.requiredString("name"), version: f.requiredString("version"))
        return WireEncoding.reply { o in
            o.key("model_version")
            WireEncoding.modelVersion(&o.writer, lineage.version)
            if let model = lineage.loggedModel {
                o.key("logged_model")
                WireEncoding.loggedModel(&o.writer, model)
            }
            if let runID = lineage.runID {
                o.string("run_id", runID)
                o.bool("run_is_local", lineage.run != nil)
            }
            if let run = lineage.run {
                o.key("run")
                WireEncoding.run(&o.writer, run)
            }
        }
    }
}
