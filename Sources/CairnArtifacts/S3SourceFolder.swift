import AsyncHTTPClient
import CairnCore
import Foundation

/// The objects below an `s3://bucket/prefix` location of another tracker (an MLflow run's
/// artifact URI), read with the usual variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`, `AWS_REGION`, `MLFLOW_S3_ENDPOINT_URL`): what `cairn import mlflow`
/// copies for runs whose artifacts MLflow keeps in S3 itself rather than behind its proxy.
public struct S3SourceFolder: Sendable {
    let client: S3Client
    /// The key prefix the folder's files lie under, with its trailing `/` (empty: the bucket).
    let keyPrefix: String

    /// Resolves `uri` (`s3://bucket/prefix`) against `environment`; a `CairnError` names the
    /// setting to fix (never a credential).
    public init(uri: String, environment: [String: String]) throws {
        let configuration = try S3Configuration.resolve(destination: uri, endpointURL: nil, environment: environment)
        client = S3Client(configuration: configuration)
        keyPrefix = configuration.prefix.isEmpty ? "" : configuration.prefix + "/"
    }

    /// Every object below the location: its path relative to it and its size.
    public func list() async throws -> [(path: String, size: Int64)] {
        try await client.listObjects(prefix: keyPrefix)
            .filter { !$0.key.hasSuffix("/") }
            .map { (path: String($0.key.dropFirst(keyPrefix.count)), size: $0.size) }
            .sorted { $0.path < $1.path }
    }

    /// Streams the object at `path` (relative to the location) to `body`.
    public func withObject<T: Sendable>(_ path: String, _ body: (HTTPClientResponse.Body) async throws -> T) async throws -> T {
        guard let (_, object) = try await client.getObject(keyPrefix + path, range: nil) else {
            throw CairnError.notFound("The S3 object '\(keyPrefix + path)' is gone.")
        }
        return try await body(object)
    }
}
