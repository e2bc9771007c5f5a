import ArgumentParser
import CairnArtifacts
import CairnCore
import CairnServer
import CairnServices
import Foundation

/// Where a CLI command finds the server's data: the same flags and variables as `cairn server`.
struct StoreOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: ArgumentHelp("Folder with the database and artifacts (env CAIRN_DATA_DIR, default ./cairn-data).", valueName: "path"))
    var dataDirectory: String?

    @Option(name: .customLong("backend-store-uri"), help: ArgumentHelp("Database, if not <data-dir>/cairn.sqlite: a SQLite path or URI, or postgresql://… (env CAIRN_BACKEND_STORE_URI).", valueName: "uri"))
    var backendStoreURI: String?

    @OptionGroup var artifactsDestination: ArtifactsDestinationOptions

    @Option(name: .customLong("audit-key-file"), help: ArgumentHelp("The key that signs the audit log's head (env CAIRN_AUDIT_KEY_FILE, default <data-dir>/audit.key; on PostgreSQL the file the servers use).", valueName: "path"))
    var auditKeyFile: String?

    func configuration() throws -> CairnServerConfiguration {
        let environment = ProcessInfo.processInfo.environment
        var configuration = CairnServerConfiguration()
        if let dir = dataDirectory ?? environment["CAIRN_DATA_DIR"] { configuration.dataDirectory = dir }
        configuration.backendStoreURI = backendStoreURI ?? environment["CAIRN_BACKEND_STORE_URI"]
        configuration.auditKeyFile = auditKeyFile ?? environment["CAIRN_AUDIT_KEY_FILE"]
        configuration.auditKeyRequired = false
        configuration.s3Artifacts = try artifactsDestination.resolve(environment: environment)
        return configuration
    }

    /// The artifact service over the existing data folder; refuses to create a new one, so a
    /// mistyped path is reported instead of "verified".
    func openArtifactService() throws -> ArtifactService {
        try openServices().artifacts
    }

    /// The services over the existing data folder; refuses to create a new one unless
    /// `creating` (a command that may come before the first `cairn server`, such as making the
    /// first administrator), which then makes it as `cairn server` would and says so.
    func openServices(creating: Bool = false) throws -> CairnServiceSet {
        let configuration = try configuration()
        if case .sqlite(let database)? = try? configuration.database(), !FileManager.default.fileExists(atPath: database) {
            guard creating else {
                throw fail("No Cairn database at '\(database)'. Point --data-dir (or CAIRN_DATA_DIR) at the folder `cairn server` uses.")
            }
            FileHandle.standardError.write(Data("Creating a new store at '\(database)' (what `cairn server --data-dir \(configuration.dataDirectory)` will use).\n".utf8))
        }
        do {
            return try CairnServer.openServices(configuration)
        } catch let error as ConfigurationError {
            throw fail(error.message)
        }
    }
}

/// Where artifacts go when not in the data folder: `cairn server` and the CLI commands that
/// read the store take the same flags and variables.
struct ArtifactsDestinationOptions: ParsableArguments {
    @Option(name: .customLong("artifacts-destination"),
            help: ArgumentHelp("Keep artifacts in an S3-compatible bucket, s3://bucket/prefix, instead of <data-dir>/artifacts; credentials and region come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION (env CAIRN_ARTIFACTS_DESTINATION).", valueName: "uri"))
    var destination: String?

    @Option(name: .customLong("s3-endpoint-url"),
            help: ArgumentHelp("The S3 server when it is not AWS, e.g. http://127.0.0.1:9000 for MinIO (env CAIRN_S3_ENDPOINT_URL, MLFLOW_S3_ENDPOINT_URL).", valueName: "url"))
    var endpointURL: String?

    /// The bucket settings, or nil for the local folder; a bad setting is one `error:` line.
    func resolve(environment: [String: String]) throws -> S3Configuration? {
        guard let destination = destination ?? environment["CAIRN_ARTIFACTS_DESTINATION"], !destination.isEmpty else { return nil }
        do {
            return try S3Configuration.resolve(destination: destination, endpointURL: endpointURL, environment: environment)
        } catch {
            throw fail(error.message)
        }
    }
}

/// Runs `body` as a change made on this machine by its OS user (not a signed-in one), so that
/// the audit events of a command that changes the store directly say who ran it.
func withLocalIdentity<T>(_ body: () async throws -> T) async rethrows -> T {
    let user = ProcessInfo.processInfo.environment["USER"].flatMap { $0.isEmpty ? nil : $0 }
        ?? getpwuid(geteuid()).map { String(cString: $0.pointee.pw_name) } ?? "unknown"
    let identity = RequestIdentity(user: user, isAuthenticated: false, isAdmin: false, clientAddress: "local",
                                   requestID: "cli-" + UUID().uuidString.lowercased())
    return try await RequestIdentity.$current.withValue(identity) { try await body() }
}

func formatBytes(_ bytes: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024, unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}

func printJSON(_ object: Any) {
    if let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) {
        try? FileHandle.standardOutput.write(contentsOf: data)
        try? FileHandle.standardOutput.write(contentsOf: Data("\n".utf8))
    }
}
