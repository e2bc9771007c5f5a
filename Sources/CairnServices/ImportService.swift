import AsyncHTTPClient
import CairnArtifacts
import CairnClient
import CairnCore
import CairnStore
import Foundation

/// What `cairn import mlflow` copies.
public struct ImportSelection: Sendable {
    /// Experiment names (or ids); empty = every experiment the filter selects.
    public var experiments: [String]
    /// MLflow's experiment search filter (`name LIKE 'prod-%'`, `tags.team = 'nlp'`).
    public var filter: String?

    public init(experiments: [String] = [], filter: String? = nil) {
        self.experiments = experiments
        self.filter = filter
    }

    public var isEverything: Bool { experiments.isEmpty && (filter ?? "").isEmpty }
}

/// One entity done, for the progress display.
public struct ImportEvent: Sendable {
    public enum Kind: String, Sendable {
        case experiment, run, loggedModel = "logged model", registeredModel = "registered model", trace, evaluationDataset = "evaluation dataset"
        case auditEvent = "audit event"
    }
    public let kind: Kind
    public let id: String
    public let name: String
    public let outcome: ImportOutcome
    public let points: Int
    public let files: Int
    public let bytes: Int64
}

/// Something of the source Cairn cannot hold as it is, so it was not imported.
public struct Unrepresentable: Sendable, Hashable {
    public let what: String
    public let reason: String
}

/// An entity the target already holds with other content: left as it is.
public struct ImportConflict: Sendable {
    public let what: String
    public let differences: [String]
}

/// Source and target figures of one kind, compared after the import.
public struct ImportCheck: Sendable, Equatable {
    public let what: String
    public let source: Int64
    public let target: Int64
    public var matches: Bool { source == target }
}

public struct ImportReport: Sendable {
    public var created: [ImportEvent.Kind: Int] = [:]
    public var unchanged: [ImportEvent.Kind: Int] = [:]
    public var merged: [ImportEvent.Kind: Int] = [:]
    public var conflicts: [ImportConflict] = []
    public var unrepresentable: [Unrepresentable] = []
    /// Metric points written (0 for runs already there).
    public var writtenPoints = 0
    /// Artifact files and bytes downloaded and stored; files already there as they are.
    public var writtenFiles = 0
    public var writtenBytes: Int64 = 0
    public var presentFiles = 0
    /// The closing comparison.
    public var checks: [ImportCheck] = []
    /// Files whose stored size or blob does not match the source's listing.
    public var artifactMismatches: [String] = []

    public var changedNothing: Bool { created.values.allSatisfy { $0 == 0 } && merged.values.allSatisfy { $0 == 0 } && writtenFiles == 0 }
    public var verified: Bool { checks.allSatisfy(\.matches) && artifactMismatches.isEmpty }
}

/// `cairn import mlflow`: copies experiments, runs (whole metric histories), logged models,
/// registered models and artifact files from MLflow (a running server, or its SQL or file store
/// read directly: any `MLflowReader`) into this store, keeping
/// every id, time and lifecycle as recorded there.
///
/// Each entity is one transaction of the store's import write path (`SQLStore.importRun`, …),
/// which compares with what the store holds: absent → written, identical → left alone,
/// different → reported as a conflict, never overwritten. An artifact file is stored (blob
/// first, manifest row after) unless its path is already there with the same size. So an
/// import that was interrupted, even by kill -9, is resumed by running it again, and a second
/// run after a complete one writes nothing. The closing verification re-reads the target and
/// compares counts, metric point counts and artifact sizes with what the source answered.
public struct ImportService: Sendable {
    public let source: any MLflowReader
    public let store: SQLStore
    public let blobs: any BlobStore
    public let now: @Sendable () -> Int64

    public init(source: any MLflowReader, store: SQLStore, blobs: any BlobStore, now: @escaping @Sendable () -> Int64) {
        self.source = source
        self.store = store
        self.blobs = blobs
        self.now = now
    }

    /// The source's figures, gathered while importing, for the closing comparison.
    struct Expected {
        var runIDs: [String] = []
        var points: [String: [String: Int]] = [:]
        var params: [String: Int] = [:]
        var tags: [String: Int] = [:]
        var files: [String: SourceArtifact] = [:]
        var loggedModels: [String] = []
        var versions: [String: [Int64]] = [:]
    }

    public func importAll(_ selection: ImportSelection, progress: @Sendable (ImportEvent) -> Void = { _ in }) async throws -> ImportReport {
        try await AuditContext.$via.withValue("import mlflow") { try await importEverything(selection, progress: progress) }
    }

    private func importEverything(_ selection: ImportSelection, progress: @Sendable (ImportEvent) -> Void) async throws -> ImportReport {
        var report = ImportReport()
        var expected = Expected()
        let experiments = try await selectExperiments(selection)
        var importedRuns = Set<String>()
        var importedModels = Set<String>()
        // Artifact locations moved into Cairn (a `file:` folder → `mlflow-artifacts:/<root>`),
        // so model versions whose source lies below one point at the copy.
        var rewrites: [String: String] = [:]
        for experiment in experiments {
            guard Int64(experiment.experimentID) != nil else {
                report.unrepresentable.append(Unrepresentable(what: "experiment \(experiment.experimentID) '\(experiment.name)'",
                                                              reason: "its id is not an integer; Cairn's experiment ids are"))
                continue
            }
            let outcome = try await store.importExperiment(experiment)
            record(outcome, .experiment, "experiment \(experiment.experimentID) '\(experiment.name)'", into: &report)
            progress(ImportEvent(kind: .experiment, id: experiment.experimentID, name: experiment.name, outcome: outcome, points: 0, files: 0, bytes: 0))
            if case .conflict = outcome { continue }

            for var model in try await source.loggedModels(experimentIDs: [experiment.experimentID]) {
                let origin = artifactOrigin(model.artifactURI, root: "\(experiment.experimentID)/models/\(model.modelID)/artifacts")
                if let moved = origin?.movedURI {
                    rewrites[model.artifactURI] = moved
                    model.artifactURI = moved
                }
                let outcome = try await store.importLoggedModel(model)
                record(outcome, .loggedModel, "logged model \(model.modelID) '\(model.name)'", into: &report)
                var files = 0
                var bytes: Int64 = 0
                if case .conflict = outcome {} else {
                    importedModels.insert(model.modelID)
                    expected.loggedModels.append(model.modelID)
                    (files, bytes) = try await copyArtifacts(of: "logged model \(model.modelID)", uri: model.artifactURI, origin: origin, into: &report, expected: &expected)
                }
                progress(ImportEvent(kind: .loggedModel, id: model.modelID, name: model.name, outcome: outcome, points: 0, files: files, bytes: bytes))
            }

            let runs = try await source.runs(experimentID: experiment.experimentID)
            var histories: [String: [Metric]] = [:]
            for (index, var run) in runs.enumerated() {
                // The histories of the next few runs are read from the source together (it
                // answers one request at a time per connection); runs are written in order.
                if index % Self.prefetchedRuns == 0 {
                    histories = try await fetchHistories(Array(runs[index..<min(runs.count, index + Self.prefetchedRuns)]))
                }
                let history = histories.removeValue(forKey: run.info.runID) ?? []
                run.metrics = []
                let origin = artifactOrigin(run.info.artifactURI, root: "\(experiment.experimentID)/\(run.info.runID)/artifacts")
                if let moved = origin?.movedURI {
                    rewrites[run.info.artifactURI] = moved
                    run.info.artifactURI = moved
                }
                let outcome = try await store.importRun(run, history: history)
                let points = SQLStore.distinctPointCounts(history)
                record(outcome, .run, "run \(run.info.runID) '\(run.info.runName)'", into: &report)
                var files = 0
                var bytes: Int64 = 0
                if case .conflict = outcome {} else {
                    importedRuns.insert(run.info.runID)
                    expected.runIDs.append(run.info.runID)
                    if outcome == .created { report.writtenPoints += points.values.reduce(0, +) }
                    expected.points[run.info.runID] = points
                    expected.params[run.info.runID] = run.params.count
                    expected.tags[run.info.runID] = run.tags.count
                    (files, bytes) = try await copyArtifacts(of: "run \(run.info.runID)", uri: run.info.artifactURI, origin: origin, into: &report, expected: &expected)
                }
                progress(ImportEvent(kind: .run, id: run.info.runID, name: run.info.runName, outcome: outcome, points: history.count, files: files, bytes: bytes))
            }
        }

        for model in try await source.registeredModels() {
            let versions = try await source.modelVersions(name: model.name).map { Self.movingSource(of: $0, by: rewrites) }
            if !selection.isEverything {
                // A selection takes the registered models with a version from what it imported.
                let linked = versions.contains { v in
                    let sourceModel = v.source.hasPrefix("models:/m-") ? String(v.source.dropFirst("models:/".count)) : nil
                    return v.runID.map(importedRuns.contains) == true || v.modelID.map(importedModels.contains) == true
                        || sourceModel.map(importedModels.contains) == true
                }
                if !linked { continue }
            }
            let outcome = try await store.importRegisteredModel(model, versions: versions)
            record(outcome, .registeredModel, "registered model '\(model.name)'", into: &report)
            if case .conflict = outcome {} else { expected.versions[model.name] = versions.map(\.version) }
            progress(ImportEvent(kind: .registeredModel, id: model.name, name: model.name, outcome: outcome, points: 0, files: 0, bytes: 0))
        }

        try await verify(expected, into: &report)
        return report
    }

    /// Runs whose histories are read from the source at the same time.
    static let prefetchedRuns = 8

    /// Every point of every series of `runs`, by run id, read concurrently.
    func fetchHistories(_ runs: [Run]) async throws -> [String: [Metric]] {
        let source = self.source
        return try await withThrowingTaskGroup(of: (String, [Metric]).self) { group in
            for run in runs {
                let keys = Set(run.metrics.map(\.key)).sorted()
                let runID = run.info.runID
                group.addTask {
                    var history: [Metric] = []
                    for key in keys { history += try await source.metricHistory(runID: runID, key: key) }
                    return (runID, history)
                }
            }
            var result: [String: [Metric]] = [:]
            for try await (runID, history) in group { result[runID] = history }
            return result
        }
    }

    func selectExperiments(_ selection: ImportSelection) async throws -> [Experiment] {
        var result: [Experiment] = []
        if selection.experiments.isEmpty {
            result = try await source.experiments(filter: selection.filter)
        } else {
            for wanted in selection.experiments {
                if let experiment = try await source.experiment(named: wanted) {
                    result.append(experiment)
                } else if Int64(wanted) != nil, let experiment = try? await source.experiment(id: wanted) {
                    result.append(experiment)
                } else {
                    throw CairnError.notFound("The source \(source.uri) has no experiment named '\(wanted)'. List its experiments with `mlflow experiments search` or leave out --experiment to import them all.")
                }
            }
            if let filter = selection.filter, !filter.isEmpty {
                let allowed = Set(try await source.experiments(filter: filter).map(\.experimentID))
                result = result.filter { allowed.contains($0.experimentID) }
            }
        }
        var seen = Set<String>()
        return result.filter { seen.insert($0.experimentID).inserted }
            .sorted { (Int64($0.experimentID) ?? .max, $0.experimentID) < (Int64($1.experimentID) ?? .max, $1.experimentID) }
    }

    func record(_ outcome: ImportOutcome, _ kind: ImportEvent.Kind, _ what: String, into report: inout ImportReport) {
        switch outcome {
        case .created: report.created[kind, default: 0] += 1
        case .unchanged: report.unchanged[kind, default: 0] += 1
        case .merged: report.merged[kind, default: 0] += 1
        case .conflict(let differences): report.conflicts.append(ImportConflict(what: what, differences: differences))
        }
    }

    /// Where the files of an artifact location are read: through the reader (its artifact proxy
    /// or `--artifacts` folder: the manifest root is the URI's path), from a folder on this
    /// machine (a `file:` location) or from S3 (an `s3://` location, with the AWS_* and
    /// MLFLOW_S3_ENDPOINT_URL variables); the latter two are stored under `root`, the path
    /// Cairn's proxy serves for the entity, whose URI becomes `mlflow-artifacts:/<root>`. Nil
    /// when none applies (listed as not imported).
    func artifactOrigin(_ uri: String, root: String) -> ArtifactOrigin? {
        if let proxied = source.artifactRoot(uri), !proxied.isEmpty { return .source(root: proxied) }
        if let folder = Self.localFolder(uri) { return .folder(path: folder, root: root) }
        if ArtifactLocation.scheme(of: uri) == "s3", let bucket = try? S3SourceFolder(uri: uri, environment: ProcessInfo.processInfo.environment) {
            return .s3(bucket, root: root)
        }
        return nil
    }

    /// The local folder a `file:` URI (or an absolute path) names, if it is one on this machine
    /// (or was, before MLflow's file store moved it to its `.trash`).
    static func localFolder(_ uri: String) -> String? {
        let path: String?
        switch ArtifactLocation.scheme(of: uri) {
        case nil: path = uri.hasPrefix("/") ? uri : nil
        case "file":
            let url = URL(string: uri)
            path = (url?.host ?? "").isEmpty || url?.host == "localhost" ? url?.path : nil
        default: path = nil
        }
        guard let path, !path.isEmpty else { return nil }
        func isFolder(_ candidate: String) -> Bool {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory) && isDirectory.boolValue
        }
        if isFolder(path) { return path }
        // MLflow's file store moves a deleted experiment's folder into `<mlruns>/.trash/` and
        // leaves its runs' artifact URIs as they were.
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        for cut in stride(from: parts.count - 1, to: 0, by: -1) {
            let base = parts[..<cut].joined(separator: "/")
            guard isFolder(base + "/.trash") else { continue }
            let moved = base + "/.trash/" + parts[cut...].joined(separator: "/")
            if isFolder(moved) { return moved }
        }
        return nil
    }

    /// A version whose source lies in a moved artifact location, pointed at the copy.
    static func movingSource(of version: ModelVersion, by rewrites: [String: String]) -> ModelVersion {
        var version = version
        for (from, to) in rewrites where ArtifactLocation.path(version.source, isAtOrUnder: from) {
            version.source = to + version.source.dropFirst(from.count)
            break
        }
        return version
    }

    /// Copies the files of an artifact location into the blob store and the manifest
    /// (same paths: Cairn serves `mlflow-artifacts:/<p>` from manifest path `<p>`); files
    /// already stored with the same size are left alone. Answers the files and bytes written.
    func copyArtifacts(of owner: String, uri: String, origin: ArtifactOrigin?, into report: inout ImportReport, expected: inout Expected) async throws -> (Int, Int64) {
        guard let origin else {
            if !uri.isEmpty {
                report.unrepresentable.append(Unrepresentable(what: "the artifacts of \(owner)",
                                                              reason: "they are at '\(uri)', which the source does not serve through its artifact proxy (mlflow-artifacts:/…)\(source is MLflowSource ? "" : " or hold in the --artifacts folder") and which is neither a folder on this machine nor an s3:// location with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY set; copy them separately"))
            }
            return (0, 0)
        }
        let root = origin.root
        var files = 0
        var bytes: Int64 = 0
        for file in try await origin.list(source) {
            let path: String
            do {
                path = try ArtifactPath(validating: root + "/" + file.path).string
            } catch {
                report.unrepresentable.append(Unrepresentable(what: "artifact '\(file.path)' of \(owner)", reason: "its path is not a valid artifact path (\(error))"))
                continue
            }
            expected.files[path] = file
            if let existing = try await store.fetchArtifact(path: path) {
                if let size = file.size, size != existing.size {
                    report.conflicts.append(ImportConflict(what: "artifact '\(path)'", differences: ["it has \(existing.size) bytes here, \(size) in the source"]))
                } else {
                    report.presentFiles += 1
                }
                continue
            }
            let blob = try await origin.withFile(file.path, from: source) { body in
                try await blobs.write(body, maxBytes: nil)
            }
            if let size = file.size, size != blob.size {
                throw CairnError(.invalidState, "The artifact '\(path)' of \(owner) arrived with \(blob.size) bytes, but the source lists \(size); it was not recorded. Run the import again to retry it.")
            }
            try await store.recordArtifact(ArtifactEntry(path: path, digest: blob.digest, size: blob.size), now: now())
            files += 1
            bytes += blob.size
        }
        report.writtenFiles += files
        report.writtenBytes += bytes
        return (files, bytes)
    }

    /// Re-reads the target: runs, params, tags and metric points per run, logged models,
    /// versions per registered model, each artifact's size, and each blob re-hashed against
    /// its SHA-256 (MLflow reports no digests; the blob's is the one of the bytes received).
    func verify(_ expected: Expected, into report: inout ImportReport) async throws {
        // Runs are counted by id: the target's experiment may hold runs of its own (Default).
        var runCounts: (Int64, Int64) = (Int64(expected.runIDs.count), 0)
        for runID in expected.runIDs {
            if (try? await store.fetchRunInfo(id: runID)) != nil { runCounts.1 += 1 }
        }
        var params: (Int64, Int64) = (0, 0)
        var tags: (Int64, Int64) = (0, 0)
        var points: (Int64, Int64) = (0, 0)
        var series: (Int64, Int64) = (0, 0)
        for (runID, sourcePoints) in expected.points {
            let run = try await store.fetchRun(id: runID)
            let stored = try await store.metricPointCounts(runID: runID)
            params.0 += Int64(expected.params[runID] ?? 0)
            params.1 += Int64(run.params.count)
            tags.0 += Int64(expected.tags[runID] ?? 0)
            tags.1 += Int64(run.tags.count)
            points.0 += Int64(sourcePoints.values.reduce(0, +))
            points.1 += Int64(stored.values.reduce(0, +))
            series.0 += Int64(sourcePoints.count)
            series.1 += Int64(sourcePoints.keys.filter { stored[$0] == sourcePoints[$0] }.count)
        }
        var models: Int64 = 0
        for modelID in expected.loggedModels {
            if (try? await store.fetchLoggedModel(id: modelID, allowDeleted: true)) != nil { models += 1 }
        }
        var versions: (Int64, Int64) = (0, 0)
        for (name, numbers) in expected.versions {
            versions.0 += Int64(numbers.count)
            for number in numbers {
                if (try? await store.fetchModelVersion(name: name, version: number)) != nil { versions.1 += 1 }
            }
        }
        var bytes: (Int64, Int64) = (0, 0)
        var files: Int64 = 0
        var verifiedDigests = Set<String>()
        for (path, file) in expected.files.sorted(by: { $0.key < $1.key }) {
            bytes.0 += file.size ?? 0
            guard let entry = try await store.fetchArtifact(path: path) else {
                report.artifactMismatches.append("\(path): missing here")
                continue
            }
            files += 1
            bytes.1 += entry.size
            if let size = file.size, size != entry.size {
                report.artifactMismatches.append("\(path): \(entry.size) bytes here, \(size) in the source")
            } else if verifiedDigests.insert(entry.digest).inserted {
                // Re-hashed once per distinct content: the stored bytes are the ones received.
                switch try await blobs.verify(entry.digest) {
                case .ok: break
                case .missing: report.artifactMismatches.append("\(path): its content (sha256 \(entry.digest)) is missing from the blob store")
                case .damaged(let actual): report.artifactMismatches.append("\(path): its content hashes to \(actual), not \(entry.digest)")
                }
            }
        }
        report.checks = [
            ImportCheck(what: "runs", source: runCounts.0, target: runCounts.1),
            ImportCheck(what: "params", source: params.0, target: params.1),
            ImportCheck(what: "tags", source: tags.0, target: tags.1),
            ImportCheck(what: "metric series", source: series.0, target: series.1),
            ImportCheck(what: "metric points", source: points.0, target: points.1),
            ImportCheck(what: "logged models", source: Int64(expected.loggedModels.count), target: models),
            ImportCheck(what: "model versions", source: versions.0, target: versions.1),
            ImportCheck(what: "artifact files", source: Int64(expected.files.count), target: files),
            ImportCheck(what: "artifact bytes", source: bytes.0, target: bytes.1),
        ]
    }
}

/// Where one entity's artifact files are read from, and the manifest root they are stored under.
enum ArtifactOrigin: Sendable {
    /// Through the reader: its artifact proxy or `--artifacts` folder, at `root`.
    case source(root: String)
    /// A folder on this machine (a `file:` location), stored under `root`.
    case folder(path: String, root: String)
    /// An `s3://` location, stored under `root`.
    case s3(S3SourceFolder, root: String)

    var root: String {
        switch self {
        case .source(let root), .folder(_, let root), .s3(_, let root): root
        }
    }

    /// The entity's artifact URI after the import, when it changes (the files moved into Cairn).
    var movedURI: String? {
        switch self {
        case .source: nil
        case .folder(_, let root), .s3(_, let root): "mlflow-artifacts:/" + root
        }
    }

    func list(_ source: any MLflowReader) async throws -> [SourceArtifact] {
        switch self {
        case .source(let root): try await source.listArtifacts(root: root)
        case .folder(let path, _): try LocalArtifactFolder(base: path).list(root: "")
        case .s3(let bucket, _): try await bucket.list().map { SourceArtifact(path: $0.path, size: $0.size) }
        }
    }

    func withFile<T: Sendable>(_ path: String, from source: any MLflowReader, _ body: (ArtifactChunks) async throws -> T) async throws -> T {
        switch self {
        case .source(let root): try await source.withArtifact(root: root, path: path, body)
        case .folder(let folder, _): try await body(LocalArtifactFolder(base: folder).chunks(root: "", path: path))
        case .s3(let bucket, _): try await bucket.withObject(path) { try await body(ArtifactChunks(source: .http($0))) }
        }
    }
}
