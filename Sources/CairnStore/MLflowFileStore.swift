import CairnCore
import Foundation
import func Yams.load

/// An MLflow file store (an `mlruns` folder: `meta.yaml` files, one file per param, tag and
/// metric history, the registry under `models/`), read as it is: what `cairn import mlflow
/// --from-store ./mlruns` reads. Answers the entities as MLflow's REST API answers them for a
/// server on the same folder (statuses from their numbers, history lines in file order, the
/// registry's aliases from `aliases/`), so an import through it equals one through that server.
public struct MLflowFileStore: Sendable {
    public let root: String

    /// Opens the folder; a missing folder, or one that is not an MLflow file store, throws a
    /// `CairnError` that says which.
    public init(root: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CairnError.notFound("There is no folder '\(root)'.")
        }
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        let hasExperiment = (try? Self.experimentFolders(self.root))?.isEmpty == false
        guard hasExperiment else {
            throw CairnError.invalidParameter("'\(root)' is a folder but not an MLflow file store (no experiment folder with a meta.yaml in it; give the mlruns folder itself).")
        }
    }

    // MARK: - Files

    static func subfolders(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { name in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: path + "/" + name, isDirectory: &isDirectory) && isDirectory.boolValue
        }.sorted()
    }

    /// The experiment folders, active (`<root>/<id>`) then deleted (`<root>/.trash/<id>`).
    static func experimentFolders(_ root: String) throws -> [String] {
        let active = subfolders(root).filter { $0 != ".trash" && $0 != "models" }.map { root + "/" + $0 }
        let deleted = subfolders(root + "/.trash").map { root + "/.trash/" + $0 }
        return (active + deleted).filter { FileManager.default.fileExists(atPath: $0 + "/meta.yaml") }
    }

    /// A `meta.yaml` as a dictionary (nil when absent or empty).
    static func meta(_ folder: String) throws -> [String: Any]? {
        let path = folder + "/meta.yaml"
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        do {
            return dictionary(try Yams.load(yaml: text))
        } catch {
            throw CairnError.invalidParameter("'\(path)' is not valid YAML (\(error)).")
        }
    }

    /// A YAML mapping (Yams answers `[AnyHashable: Any]`) with its keys as text.
    static func dictionary(_ value: Any?) -> [String: Any]? {
        guard let mapping = value as? [AnyHashable: Any] else { return value as? [String: Any] }
        return Dictionary(mapping.map { (String(describing: $0.key.base), $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    static func string(_ value: Any?) -> String? {
        switch value {
        case let text as String: text
        case let number as Int: String(number)
        case let number as Int64: String(number)
        case let number as Double: String(number)
        case let flag as Bool: flag ? "true" : "false"
        default: nil
        }
    }

    static func integer(_ value: Any?) -> Int64? {
        switch value {
        case let number as Int: Int64(number)
        case let number as Int64: number
        case let text as String: Int64(text)
        case let number as Double: Int64(exactly: number)
        default: nil
        }
    }

    /// The files below `folder` (recursive: MLflow keeps a key with `/` as nested folders),
    /// as keys relative to it, each with its text.
    static func keyedFiles(_ folder: String) throws -> [(key: String, text: String)] {
        guard let walker = FileManager.default.enumerator(atPath: folder) else { return [] }
        var keys: [String] = []
        while let relative = walker.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: folder + "/" + relative, isDirectory: &isDirectory), !isDirectory.boolValue {
                keys.append(relative)
            }
        }
        return try keys.sorted().map { ($0, try String(contentsOfFile: folder + "/" + $0, encoding: .utf8)) }
    }

    static func tags(_ folder: String) throws -> [Tag] {
        try keyedFiles(folder).map { Tag($0.key, $0.text) }
    }

    static func lifecycle(_ value: Any?) -> LifecycleStage {
        LifecycleStage(rawValue: string(value) ?? "active") ?? .active
    }

    // MARK: - Experiments

    func experiment(folder: String) throws -> Experiment? {
        guard let meta = try Self.meta(folder), let id = Self.string(meta["experiment_id"]) else { return nil }
        // MLflow ignores an experiment whose folder name and recorded id differ.
        guard (folder as NSString).lastPathComponent == id else { return nil }
        return Experiment(
            experimentID: id, name: Self.string(meta["name"]) ?? "", artifactLocation: Self.string(meta["artifact_location"]) ?? "",
            lifecycleStage: folder.contains("/.trash/") ? .deleted : Self.lifecycle(meta["lifecycle_stage"]),
            creationTime: Self.integer(meta["creation_time"]) ?? 0, lastUpdateTime: Self.integer(meta["last_update_time"]) ?? 0,
            tags: try Self.tags(folder + "/tags"))
    }

    /// Every experiment, active and deleted, by id.
    public func experiments() throws -> [Experiment] {
        try Self.experimentFolders(root).compactMap { try experiment(folder: $0) }
            .sorted { (Int64($0.experimentID) ?? .max, $0.experimentID) < (Int64($1.experimentID) ?? .max, $1.experimentID) }
    }

    public func experiment(named name: String) throws -> Experiment? {
        try experiments().first { $0.name == name }
    }

    public func experiment(id: String) throws -> Experiment? {
        try experimentFolder(id).flatMap { try experiment(folder: $0) }
    }

    func experimentFolder(_ id: String) throws -> String? {
        guard !id.isEmpty, !id.contains("/"), id != ".", id != ".." else { return nil }
        return [root + "/" + id, root + "/.trash/" + id].first { FileManager.default.fileExists(atPath: $0 + "/meta.yaml") }
    }

    // MARK: - Runs

    /// The folders of an experiment that are not runs.
    static let reservedFolders: Set = ["tags", "datasets", "traces", "models"]

    /// Every run of the experiment, active and deleted, by start time then id; `metrics` holds
    /// one point per series (its keys name the series, as MLflow's latest values do).
    public func runs(experimentID: String) throws -> [Run] {
        guard let folder = try experimentFolder(experimentID) else { return [] }
        var runs: [Run] = []
        for name in Self.subfolders(folder) where !Self.reservedFolders.contains(name) {
            let runFolder = folder + "/" + name
            guard let meta = try Self.meta(runFolder), let runID = Self.string(meta["run_id"] ?? meta["run_uuid"]),
                  Self.string(meta["experiment_id"]) == experimentID else { continue }
            let tags = try Self.tags(runFolder + "/tags")
            let status = Self.integer(meta["status"]).flatMap(RunStatus.init(number:))
                ?? Self.string(meta["status"]).flatMap(RunStatus.init(rawValue:)) ?? .running
            let info = RunInfo(
                runID: runID, experimentID: experimentID,
                runName: Self.string(meta["run_name"]) ?? tags.first { $0.key == "mlflow.runName" }?.value ?? "",
                userID: Self.string(meta["user_id"]) ?? "", status: status,
                startTime: Self.integer(meta["start_time"]), endTime: Self.integer(meta["end_time"]),
                artifactURI: Self.string(meta["artifact_uri"]) ?? "", lifecycleStage: Self.lifecycle(meta["lifecycle_stage"]))
            let keys = try Self.keyedFiles(runFolder + "/metrics").map(\.key)
            var run = Run(info: info, metrics: keys.map { Metric(key: $0, value: 0, timestamp: 0, step: 0) },
                          params: try Self.keyedFiles(runFolder + "/params").map { Param($0.key, $0.text) }, tags: tags)
            let datasets = folder + "/datasets"
            for input in Self.subfolders(runFolder + "/inputs") {
                guard let vertex = try Self.meta(runFolder + "/inputs/" + input), let source = Self.string(vertex["source_id"]) else { continue }
                switch Self.string(vertex["source_type"]) {
                case "DATASET":
                    guard let dataset = try Self.meta(datasets + "/" + source) else { continue }
                    let inputTags = (Self.dictionary(vertex["tags"]) ?? [:]).map { Tag($0.key, Self.string($0.value) ?? "") }
                    run.inputs.append(DatasetInput(
                        tags: inputTags.sorted { $0.key < $1.key },
                        dataset: Dataset(name: Self.string(dataset["name"]) ?? "", digest: Self.string(dataset["digest"]) ?? "",
                                         sourceType: Self.string(dataset["source_type"]) ?? "", source: Self.string(dataset["source"]) ?? "",
                                         schema: Self.string(dataset["schema"]), profile: Self.string(dataset["profile"]))))
                case "MODEL_INPUT":
                    run.modelInputs.append(source)
                default: continue
                }
            }
            run.inputs.sort { ($0.dataset.name, $0.dataset.digest) < ($1.dataset.name, $1.dataset.digest) }
            run.modelInputs.sort()
            for output in Self.subfolders(runFolder + "/outputs") {
                guard let vertex = try Self.meta(runFolder + "/outputs/" + output), let model = Self.string(vertex["destination_id"]) else { continue }
                run.modelOutputs.append(ModelOutput(modelID: model, step: Self.integer(vertex["step"]) ?? 0))
            }
            run.modelOutputs.sort { $0.modelID < $1.modelID }
            runs.append(run)
        }
        return runs.sorted { ($0.info.startTime ?? 0, $0.info.runID) < ($1.info.startTime ?? 0, $1.info.runID) }
    }

    /// The folder of a run, found in its experiment folders (active or deleted).
    func runFolder(_ runID: String) throws -> String? {
        guard !runID.isEmpty, !runID.contains("/"), runID != ".", runID != ".." else { return nil }
        return try Self.experimentFolders(root).map { $0 + "/" + runID }.first { FileManager.default.fileExists(atPath: $0 + "/meta.yaml") }
    }

    /// Every point of one series, in the order of its file's lines (`timestamp value [step]`),
    /// values as Python wrote them (`nan`, `inf`, `-0.0`, `5e-324` read back bit for bit).
    public func metricHistory(runID: String, key: String) throws -> [Metric] {
        guard let folder = try runFolder(runID) else { return [] }
        let path = folder + "/metrics/" + key
        guard !key.split(separator: "/").contains(".."), FileManager.default.fileExists(atPath: path) else { return [] }
        return try String(contentsOfFile: path, encoding: .utf8).split(whereSeparator: \.isNewline).compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count >= 2, let timestamp = Int64(parts[0]), let value = Double(parts[1]) else {
                if line.allSatisfy(\.isWhitespace) { return nil }
                throw CairnError.invalidParameter("The metric file '\(path)' has a line that is not 'timestamp value step': '\(line)'.")
            }
            return Metric(key: key, value: value, timestamp: timestamp, step: parts.count >= 3 ? Int64(parts[2]) ?? 0 : 0)
        }
    }

    // MARK: - Logged models

    /// The logged models of the experiment, deleted ones left out as MLflow's search leaves
    /// them out; each metric file's latest point per dataset, as MLflow answers them.
    public func loggedModels(experimentID: String) throws -> [LoggedModel] {
        guard let folder = try experimentFolder(experimentID) else { return [] }
        var models: [LoggedModel] = []
        for name in Self.subfolders(folder + "/models") {
            let modelFolder = folder + "/models/" + name
            guard let meta = try Self.meta(modelFolder), let id = Self.string(meta["model_id"]),
                  Self.lifecycle(meta["lifecycle_stage"]) != .deleted else { continue }
            var metrics: [ModelMetric] = []
            for file in try Self.keyedFiles(modelFolder + "/metrics") {
                var latest: [String: ModelMetric] = [:]
                var order: [String] = []
                for line in file.text.split(whereSeparator: \.isNewline) {
                    let parts = line.split(separator: " ").map(String.init)
                    guard parts.count >= 4, let timestamp = Int64(parts[0]), let value = Double(parts[1]), let step = Int64(parts[2]) else { continue }
                    let metric = ModelMetric(key: file.key, value: value, timestamp: timestamp, step: step, runID: parts[3],
                                             datasetName: parts.count >= 6 ? parts[4] : nil, datasetDigest: parts.count >= 6 ? parts[5] : nil)
                    let group = (metric.datasetName ?? "") + "\u{0}" + (metric.datasetDigest ?? "")
                    if let seen = latest[group] {
                        if (metric.step, metric.timestamp) > (seen.step, seen.timestamp) || ((metric.step, metric.timestamp) == (seen.step, seen.timestamp) && metric.value > seen.value) {
                            latest[group] = metric
                        }
                    } else {
                        latest[group] = metric
                        order.append(group)
                    }
                }
                metrics += order.compactMap { latest[$0] }
            }
            models.append(LoggedModel(
                modelID: id, experimentID: experimentID, name: Self.string(meta["name"]) ?? "",
                artifactURI: Self.string(meta["artifact_location"]) ?? "",
                creationTimestamp: Self.integer(meta["creation_timestamp"]) ?? 0,
                lastUpdatedTimestamp: Self.integer(meta["last_updated_timestamp"]) ?? 0,
                status: Self.integer(meta["status"]).flatMap(LoggedModelStatus.init(number:))
                    ?? Self.string(meta["status"]).flatMap(LoggedModelStatus.init(rawValue:)) ?? .ready,
                statusMessage: Self.string(meta["status_message"]), creatorID: nil, modelType: Self.string(meta["model_type"]),
                sourceRunID: Self.string(meta["source_run_id"]), lifecycleStage: .active,
                tags: try Self.tags(modelFolder + "/tags"),
                params: try Self.keyedFiles(modelFolder + "/params").map { Param($0.key, $0.text) },
                metrics: metrics.sorted { ($0.key, $0.timestamp, $0.step, $0.runID ?? "") < ($1.key, $1.timestamp, $1.step, $1.runID ?? "") }))
        }
        return models.sorted { ($0.creationTimestamp, $0.modelID) < ($1.creationTimestamp, $1.modelID) }
    }

    // MARK: - Registry

    var registry: String { root + "/models" }

    /// A registered model's aliases (`aliases/<alias>` holds the version number).
    func aliases(_ name: String) throws -> [(alias: String, version: Int64)] {
        try Self.keyedFiles(registry + "/" + name + "/aliases").compactMap { file in
            Int64(file.text.trimmingCharacters(in: .whitespacesAndNewlines)).map { (alias: file.key, version: $0) }
        }
    }

    /// Every registered model with its tags and aliases, by name.
    public func registeredModels() throws -> [RegisteredModel] {
        try Self.subfolders(registry).compactMap { folder -> RegisteredModel? in
            guard let meta = try Self.meta(registry + "/" + folder) else { return nil }
            let name = Self.string(meta["name"]) ?? folder
            return RegisteredModel(
                name: name, creationTimestamp: Self.integer(meta["creation_timestamp"]) ?? 0,
                lastUpdatedTimestamp: Self.integer(meta["last_updated_timestamp"]) ?? 0, userID: "",
                description: Self.string(meta["description"]) ?? "", tags: try Self.tags(registry + "/" + folder + "/tags"),
                aliases: try aliases(folder), latestVersions: [])
        }.sorted { $0.name < $1.name }
    }

    /// Every version of the registered model, by number, with tags and aliases; versions MLflow
    /// deleted (stage `Deleted_Internal`) left out, as its API leaves them out.
    public func modelVersions(name: String) throws -> [ModelVersion] {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else { return [] }
        let folder = registry + "/" + name
        let aliases = try aliases(name)
        return try Self.subfolders(folder).filter { $0.hasPrefix("version-") }.compactMap { versionFolder -> ModelVersion? in
            guard let meta = try Self.meta(folder + "/" + versionFolder), let version = Self.integer(meta["version"]) else { return nil }
            let stage = Self.string(meta["current_stage"]) ?? "None"
            guard stage != "Deleted_Internal" else { return nil }
            let nonEmpty: (Any?) -> String? = { Self.string($0).flatMap { $0.isEmpty ? nil : $0 } }
            return ModelVersion(
                name: name, version: version, creationTimestamp: Self.integer(meta["creation_timestamp"]) ?? 0,
                lastUpdatedTimestamp: Self.integer(meta["last_updated_timestamp"]) ?? 0, userID: Self.string(meta["user_id"]) ?? "",
                currentStage: stage, description: Self.string(meta["description"]) ?? "",
                source: Self.string(meta["source"]) ?? "", runID: nonEmpty(meta["run_id"]), runLink: nonEmpty(meta["run_link"]),
                status: Self.string(meta["status"]) ?? "READY", statusMessage: Self.string(meta["status_message"]), modelID: nil,
                tags: try Self.tags(folder + "/" + versionFolder + "/tags"),
                aliases: aliases.filter { $0.version == version }.map(\.alias))
        }.sorted { $0.version < $1.version }
    }
}
