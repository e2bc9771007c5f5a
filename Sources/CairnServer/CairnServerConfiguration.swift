import CairnArtifacts
import CairnStore
import Foundation

/// Where the server listens and keeps its data. Filled from flags, then `CAIRN_*`
/// environment variables, then these defaults (see `cairn server --help`).
public struct CairnServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Holds the SQLite database and the artifact folder unless overridden.
    public var dataDirectory: String
    /// An SQLAlchemy-style SQLite URI as MLflow users write it (`sqlite:///relative.db`,
    /// `sqlite:////absolute/path.db`) or a plain path; nil means `<dataDirectory>/cairn.sqlite`.
    public var backendStoreURI: String?
    /// What an acknowledged write survives: a server crash (`normal`, the default) or also
    /// power loss (`full`).
    public var durability: SQLiteTrackingStore.Durability
    /// The bucket for artifacts (`--artifacts-destination s3://bucket/prefix`); nil keeps them
    /// in `<dataDirectory>/artifacts`.
    public var s3Artifacts: S3Configuration?

    public init(host: String = "127.0.0.1", port: Int = 5000, dataDirectory: String = "./cairn-data", backendStoreURI: String? = nil,
                durability: SQLiteTrackingStore.Durability = .normal) {
        self.host = host
        self.port = port
        self.dataDirectory = dataDirectory
        self.backendStoreURI = backendStoreURI
        self.durability = durability
    }

    /// The SQLite file the configuration points at.
    public func databasePath() throws -> String {
        guard let uri = backendStoreURI, !uri.isEmpty else {
            return (dataDirectory as NSString).appendingPathComponent("cairn.sqlite")
        }
        if uri.hasPrefix("sqlite:///") {
            let path = String(uri.dropFirst("sqlite:///".count))
            if !path.isEmpty { return path }
        } else if !uri.contains(":") {
            return uri
        }
        throw ConfigurationError(message: "Unsupported backend store URI '\(uri)': this version of Cairn stores metadata in SQLite. Use sqlite:///relative/file.sqlite, sqlite:////absolute/file.sqlite or a file path.")
    }

    /// Where artifacts are, for messages: the folder, or `s3://bucket/prefix at <endpoint>`.
    public var artifactsDescription: String {
        s3Artifacts.map { "\($0) at \($0.endpointDescription)" } ?? artifactDirectory
    }

    public var artifactDirectory: String {
        (dataDirectory as NSString).appendingPathComponent("artifacts")
    }
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }

    public init(message: String) {
        self.message = message
    }
}
