import AsyncHTTPClient
import CairnClient
import CairnCore
import Foundation
import NIOCore

/// What `ImportService` reads from an MLflow installation: a running server through its REST
/// API (`MLflowSource`), or its stores read directly (`MLflowStoreReader`: the SQL store's
/// SQLite file, or an `mlruns` folder). Every reader answers the same entities the same way,
/// so an import gives the same store whichever reader it went through.
public protocol MLflowReader: Sendable {
    /// The source as shown in messages and the report.
    var uri: String { get }
    /// The experiments (active and deleted) that MLflow's search `filter` selects, or all.
    func experiments(filter: String?) async throws -> [Experiment]
    func experiment(named name: String) async throws -> Experiment?
    func experiment(id: String) async throws -> Experiment
    /// Every run of the experiment, active and deleted, oldest first, with its latest metric
    /// values (their keys name the series to read), params, tags, inputs and outputs.
    func runs(experimentID: String) async throws -> [Run]
    /// Every point of one series.
    func metricHistory(runID: String, key: String) async throws -> [Metric]
    func loggedModels(experimentIDs: [String]) async throws -> [LoggedModel]
    func registeredModels() async throws -> [RegisteredModel]
    /// Every version of the registered model, by number.
    func modelVersions(name: String) async throws -> [ModelVersion]
    /// The root (`<experiment>/<run>/artifacts`, the path Cairn serves `mlflow-artifacts:/`
    /// URIs from) of an artifact location this reader can read, or nil.
    func artifactRoot(_ artifactURI: String) -> String?
    /// Every file below `root` (recursive), paths relative to it, with sizes.
    func listArtifacts(root: String) async throws -> [SourceArtifact]
    /// Streams one file (`root` + `/` + `path`) to `body`, never held whole in memory.
    func withArtifact<T: Sendable>(root: String, path: String, _ body: (ArtifactChunks) async throws -> T) async throws -> T
}

/// The bytes of one source artifact as they arrive: an HTTP response body or a local file.
public struct ArtifactChunks: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    enum Source: Sendable {
        case http(HTTPClientResponse.Body)
        case file(LocalFileChunks)
    }
    let source: Source

    public func makeAsyncIterator() -> Iterator {
        switch source {
        case .http(let body): Iterator(http: body.makeAsyncIterator(), file: nil)
        case .file(let file): Iterator(http: nil, file: file.makeAsyncIterator())
        }
    }

    public struct Iterator: AsyncIteratorProtocol {
        var http: HTTPClientResponse.Body.AsyncIterator?
        var file: LocalFileChunks.Iterator?

        public mutating func next() async throws -> ByteBuffer? {
            if http != nil { return try await http!.next() }
            return try await file?.next()
        }
    }
}

/// A local file in chunks of at most 1 MiB.
struct LocalFileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String

    func makeAsyncIterator() -> Iterator { Iterator(path: path) }

    struct Iterator: AsyncIteratorProtocol {
        let path: String
        var handle: FileHandle?
        var done = false

        init(path: String) { self.path = path }

        mutating func next() async throws -> ByteBuffer? {
            guard !done else { return nil }
            try Task.checkCancellation()
            if handle == nil {
                guard let opened = FileHandle(forReadingAtPath: path) else {
                    throw CairnError.notFound("The artifact file '\(path)' cannot be read.")
                }
                handle = opened
            }
            let data = try handle!.read(upToCount: 1 << 20) ?? Data()
            if data.isEmpty {
                done = true
                try? handle?.close()
                return nil
            }
            return ByteBuffer(bytes: data)
        }
    }
}

extension MLflowSource: MLflowReader {
    public func registeredModels() async throws -> [RegisteredModel] {
        try await registeredModels(filter: nil)
    }

    public func artifactRoot(_ artifactURI: String) -> String? {
        Self.proxyPath(artifactURI)
    }

    public func withArtifact<T: Sendable>(root: String, path: String, _ body: (ArtifactChunks) async throws -> T) async throws -> T {
        try await withArtifact(root: root, path: path) { (response: HTTPClientResponse.Body) in
            try await body(ArtifactChunks(source: .http(response)))
        }
    }
}

/// The artifact files of a local folder: what an MLflow server's `--artifacts-destination`
/// holds behind `mlflow-artifacts:/<path>`, or an `mlruns` folder's run folders.
struct LocalArtifactFolder: Sendable {
    let base: String

    func list(root: String) throws -> [SourceArtifact] {
        let folder = root.isEmpty ? base : base + "/" + root
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else { return [] }
        var result: [SourceArtifact] = []
        var folders = [""]
        while let relative = folders.popLast() {
            let full = relative.isEmpty ? folder : folder + "/" + relative
            for name in try FileManager.default.contentsOfDirectory(atPath: full) {
                let path = relative.isEmpty ? name : relative + "/" + name
                let attributes = try FileManager.default.attributesOfItem(atPath: full + "/" + name)
                if attributes[.type] as? FileAttributeType == .typeDirectory {
                    folders.append(path)
                } else if attributes[.type] as? FileAttributeType == .typeRegular {
                    result.append(SourceArtifact(path: path, size: (attributes[.size] as? NSNumber)?.int64Value))
                }
            }
        }
        return result.sorted { $0.path < $1.path }
    }

    func chunks(root: String, path: String) -> ArtifactChunks {
        ArtifactChunks(source: .file(LocalFileChunks(path: (root.isEmpty ? base : base + "/" + root) + "/" + path)))
    }
}
